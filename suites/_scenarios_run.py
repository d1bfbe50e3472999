"""Run the matching-rules scenarios through one door of a SUT and gather what each account saw.

Per door, one recorded client per account (``HttpClient`` or ``OuchClient``,
every request an op of the run's ``History``) and one event stream per
account (the HTTP door's ``GET /v1/events``, opened before the first
request; the OUCH session's own stream). Scenarios run one after another,
each request waiting for its answer, so the SUT sequences them in the
scenario's order. Then the streams are read until every account shows at
least as many events as the scenarios expect (or a short wait ends), and each
scenario keeps the events of its own tokens, in stream order.

The expected events are put in the door's words here: levels become prices,
and a reject reads as the door renders it (OUCH shares one code among several
reasons and answers a cancel with a Cancel Reject). A request that got no
answer (``info``) makes its scenario unknown. Nothing here judges: that is
``harness.checkers.rule_conformance``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any

from _doors import http_url, ouch_address
from _scenarios import ACCOUNTS, BAD_PRICE, NO_SYMBOL, SCENARIOS, Scenario, Step

from harness.checkers.rule_conformance import normalize
from harness.clients import ClientError, HttpClient, HttpConnection, OuchClient, ouch_map
from harness.history import INFO, History
from harness.sut.base import Sut
from reference_impl.core.messages import MAX_PRICE, RejectReason
from reference_impl.core.ouch_codec import REJECT_CODES

BAND_LEVELS = 20  #: price levels per scenario band; scenario i trades levels of band i
BAND_BASE = 1000  #: the first band starts this many ticks up
STREAM_WAIT_S = 5.0
SSE_READ_S = 0.15  #: a stream this quiet after the expected events has no more
SHORT_QUIET_S = 0.5  #: a stream this quiet while short of the expected events has no more


class Layout:
    """Where a scenario trades: its symbol, its band of prices, its unique token prefix."""

    def __init__(self, sut: Sut, door: str, nonce: str) -> None:
        self.instruments = sut.instruments()
        self.symbols = sorted(self.instruments)
        self.door, self.nonce = door, nonce
        self.no_symbol = next(f"NOSYM{n}" for n in range(100)
                              if f"NOSYM{n}" not in self.instruments)

    def prefix(self, i: int) -> str:
        return f"{self.door[0].upper()}{i:03d}{self.nonce}"

    def symbol(self, i: int) -> str:
        return self.symbols[i % len(self.symbols)]

    def price(self, i: int, level: int | str | None) -> int | None:
        """A level's price in scenario ``i``'s band (None: market; ``BAD_PRICE``: off tick)."""
        tick = self.instruments[self.symbol(i)]
        if level is None:
            return None
        if level == BAD_PRICE:
            return (BAND_BASE + BAND_LEVELS * i) * tick + 1 if tick > 1 else MAX_PRICE + 1
        return (BAND_BASE + BAND_LEVELS * i + int(level)) * tick

    def expected(self, i: int, sc: Scenario) -> dict[str, list[list]]:
        """The scenario's expected events, in this door's words."""
        out: dict[str, list[list]] = {}
        for account, events in sc.expect.items():
            rows = []
            for ev in events:
                kind, token, *rest = ev
                if kind == "accepted":
                    side, qty, level = rest
                    rows.append([kind, token, side, qty, self.price(i, level) or 0])
                elif kind == "executed":
                    qty, level, liq = rest
                    rows.append([kind, token, qty, self.price(i, level), liq])
                elif kind == "replaced":
                    old, qty, level = rest
                    rows.append([kind, token, old, qty, self.price(i, level)])
                elif kind in ("rejected", "cancel_rejected"):
                    rows.append(["rejected", token, self.reject_reads(rest[0], kind)])
                else:
                    rows.append([kind, token, *rest])
            out[account] = rows
        return out

    def reject_reads(self, reason: str, kind: str) -> str:
        if self.door != "ouch":
            return reason
        if kind == "cancel_rejected":
            return ouch_map.CANCEL_REJECT
        code = REJECT_CODES[RejectReason(reason)]
        return ouch_map.REJECT_REASONS.get(code, "ouch_" + code.decode("ascii"))


def send(client: HttpClient | OuchClient, lay: Layout, i: int, step: Step) -> Any:
    """One step through the account's client; its ``Result``."""
    f, pre = step.fields, lay.prefix(i)
    if step.kind == "cancel":
        return client.cancel(pre + f["token"], f["qty"])
    if step.kind == "replace":
        return client.replace(pre + f["token"], pre + f["new_token"], f["qty"],
                              lay.price(i, f["price"]))
    symbol = lay.no_symbol if f["symbol"] == NO_SYMBOL else lay.symbol(i)
    price = lay.price(i, f["price"])
    return client.new_order(pre + f["token"], symbol, f["side"], f["qty"], price,
                            "market" if price is None else "limit", f["tif"], f["min_qty"])


def play(clients: dict[str, Any], lay: Layout, i: int, steps: Sequence[Step]) -> str | None:
    """Send ``steps`` in order, each after the last one's answer; why it stopped, if it did."""
    for n, step in enumerate(steps):
        result = send(clients[step.account], lay, i, step)
        if result.type == INFO:
            return (f"step {n + 1} ({step.kind} {step.fields.get('token')}) got no answer: "
                    f"{result.value.get('reason') or result.value.get('status')}")
    return None


def events_of(seen: dict[str, list[dict]], prefix: str) -> dict[str, list[list]]:
    """Each account's events on the tokens that start with ``prefix``, normalized."""
    return {a: [normalize(o, prefix) for o in outs if str(o.get("token", "")).startswith(prefix)]
            for a, outs in seen.items()}


def door_accounts(sut: Sut) -> dict[str, tuple[str, str]]:
    """Scenario account (A, B, C) -> the SUT's (account, password)."""
    return dict(zip(ACCOUNTS, list(sut.accounts().items())[:len(ACCOUNTS)]))


def run_door(sut: Sut, door: str, history: History, nonce: str) -> list[dict[str, Any]]:
    """Every scenario through ``door``; one result dict per scenario (see the module doc)."""
    lay = Layout(sut, door, nonce)
    with contextlib.ExitStack() as stack:
        clients, read = open_door(sut, door, door_accounts(sut), history, stack)
        results = []
        for i, sc in enumerate(SCENARIOS):
            results.append({"rule": sc.rule, "title": sc.title, "door": door,
                            "prefix": lay.prefix(i), "expected": lay.expected(i, sc),
                            "unknown": play(clients, lay, i, sc.steps)})
        want = {a: sum(len(r["expected"].get(a, ())) for r in results) for a in clients}
        seen = read(want)
    for r in results:
        r["seen"] = {a: evs for a, evs in events_of(seen, r.pop("prefix")).items()
                     if evs or a in r["expected"]}
    return results


def open_door(sut: Sut, door: str, accounts: dict[str, tuple[str, str]], history: History,
              stack: contextlib.ExitStack) -> tuple[dict[str, Any], Any]:
    """The door's clients per account, and ``read(want, wait_s)``: each account's stream
    events (waiting at most ``wait_s`` for ``want`` of them)."""
    if door == "http":
        url = http_url(sut)
        clients = {a: stack.enter_context(HttpClient(url, name, pw, history, f"rules-{a}"))
                   for a, (name, pw) in accounts.items()}
        streams = {a: HttpConnection.from_url(url, (name, pw)).events(timeout_s=SSE_READ_S)
                   for a, (name, pw) in accounts.items()}
        for es in streams.values():
            stack.callback(es.conn.close)
        return clients, lambda want, wait_s=STREAM_WAIT_S: read_sse(streams, want, wait_s)
    host, port = ouch_address(sut)
    clients = {}
    for a, (name, pw) in accounts.items():
        c = OuchClient(host, port, name, pw, history, f"rules-{a}")
        c.connect()
        clients[a] = stack.enter_context(c)
    return clients, lambda want, wait_s=STREAM_WAIT_S: read_ouch(clients, want, wait_s)


def read_sse(streams: dict[str, Any], want: dict[str, int],
             wait_s: float = STREAM_WAIT_S) -> dict[str, list[dict]]:
    """Each account's SSE events: until ``want`` arrived (or the wait ends), then until quiet.

    A read that times out ends the stream (a timed-out socket file cannot be
    read again): it waits ``SHORT_QUIET_S`` for an event while fewer than
    ``want`` came (every request was answered before, so their events are
    due), ``SSE_READ_S`` once they all came (for one the rules do not expect).
    """
    seen: dict[str, list[dict]] = {a: [] for a in streams}
    deadline = time.monotonic() + wait_s
    for a, es in streams.items():
        while True:
            enough = len(seen[a]) >= want[a]
            es.conn.sock.settimeout(SSE_READ_S if enough else
                                    min(SHORT_QUIET_S, max(0.05, deadline - time.monotonic())))
            try:
                ev = es.next()
            except (OSError, ClientError):
                break
            if ev is None:
                break
            seen[a].append(ev.data)
    return seen


def read_ouch(clients: dict[str, OuchClient], want: dict[str, int],
              wait_s: float = STREAM_WAIT_S) -> dict[str, list[dict]]:
    deadline = time.monotonic() + wait_s
    count, quiet_from = -1, time.monotonic()
    while time.monotonic() < deadline and any(
            len(c.stream()) < want[a] for a, c in clients.items()):
        now, total = time.monotonic(), sum(len(c.stream()) for c in clients.values())
        if total != count:
            count, quiet_from = total, now
        elif now - quiet_from > SHORT_QUIET_S:
            break  # fewer than expected, and nothing more comes
        time.sleep(0.02)
    time.sleep(SSE_READ_S)  # time for an event the rules do not expect to show
    return {a: [out for _seq, out in c.stream()] for a, c in clients.items()}
