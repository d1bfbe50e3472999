"""Long-horizon resends and a gateway restart: the evidence of ``exactly_once.gateway_resend``.

Theory of operation
-------------------
A dedup that remembers only the last few dozen requests per gateway passes
a pause that holds eight requests in flight. So the pause trial
(``pause_trial``) holds hundreds, resent after a thousand others:

1. The sequencer is paused (SIGSTOP). HTTP workers start their requests and
   pipelined OUCH sessions (one per account) send ``BURST`` orders without
   waiting for answers: every one stays unsequenced.
2. Once the gateway has forwarded them (its digest's ``counters.forwarded``)
   the resend counter is read (``resends_at_mark``), and the sequencer stays
   paused until the gateway has resent them again. Every resend counted after
   that mark was sent behind all the originals forwarded before it, so when
   the sequencer reads it, it has already sequenced the ``forwarded - 1``
   others (one socket, read in order): a resend after ``HORIZON`` other
   requests when ``forwarded > HORIZON``. A dedup that forgets an old
   request sequences it again.
3. The sequencer resumes (after ``PAUSE_MIN_S`` at the least: a pause as
   long as an operator's, not only as long as the gateway needed); every
   answer is awaited, and the trial settles.

The restart trial (``restart_trial``) then kills the gateway under a light
HTTP load, restarts it, and sends new orders through both doors: they must be
accepted under the gateway's new incarnation (counted in the sequenced input
when it names incarnations), each answer naming its own request.

The counters come from the gateway's digest when the SUT offers one; a SUT
without it shows no resend (N/A or UNKNOWN, see ``require_resends``) and no
horizon (UNKNOWN by the coverage minimums). Everything here gathers
evidence; the test judges it.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import _support as s
from _load import Load, order_request

from harness.checkers.resend_evidence import in_flight_at, resends_behind
from harness.clients import OuchClient
from harness.clients.ouch_client import Ticket
from harness.history import History
from harness.sut.base import NotSupported, Sut, SutError

BURST = 1200  #: OUCH orders pipelined into the pause
PAUSE_MIN_S = 0.7  #: the pause lasts at least this: over three of the reference gateway's 200 ms resends
HORIZON = 1000  #: a resend counts as long-horizon once this many other requests precede it
HTTP_ORDERS = 80  #: HTTP requests into the pause (8 workers: 8 in flight at a time)
HTTP_WINDOW_S = 3.0  #: the HTTP load stops issuing then (a stalled SUT must not stall the suite)
FORWARD_WAIT_S = 3.0  #: the time the gateway has to forward the burst
RESEND_WAIT_S = 1.5  #: the time the gateway has, after the mark, to resend the burst once
ANSWER_WAIT_S = 8.0  #: the time every pipelined order has to be answered after the resume
OUCH_TIMEOUT_S = 10.0
RESTART_ORDERS = 40  #: HTTP orders around the gateway kill, and again after the restart
AFTER_RESTART_BURST = 200  #: OUCH orders after the restart
OUCH_PROCESS = 100  #: history process of the first OUCH session (HTTP workers are 0..)


def gateway_counters(sut: Sut, gateway: str | None) -> tuple[dict | None, bool, str]:
    """``(counters, offered, reason)``: the gateway digest's ``counters``.

    ``offered`` is False when the SUT exposes no resend counter (no gateway,
    no digest endpoint, or a digest without ``counters.resends``): the
    requirement is then N/A. Counters offered but unreadable are ``(None,
    True, reason)``.
    """
    if gateway is None:
        return None, False, f"{sut.name} names no gateway component"
    if not sut.offers("digest"):
        return None, False, f"{sut.name} offers no digest"
    try:
        digest = sut.digest(gateway)
    except NotSupported as exc:
        return None, False, str(exc)
    except (OSError, ValueError, KeyError, SutError) as exc:
        return None, True, f"the {gateway} digest could not be read: {exc}"
    counters = digest.get("counters") if isinstance(digest, dict) else None
    if not isinstance(counters, dict) or "resends" not in counters:
        return None, False, f"the {gateway} digest has no counters.resends"
    try:
        return {k: int(v) for k, v in counters.items() if isinstance(v, (int, str))}, True, ""
    except (TypeError, ValueError):
        return None, True, f"the {gateway} counters are not numbers: {counters!r}"


def _count(counters: dict | None, name: str) -> int | None:
    return None if counters is None or name not in counters else counters[name]


class OuchBurst:
    """Pipelined OUCH sessions, one per account: submit without waiting, then await every answer."""

    def __init__(self, sut: Sut, history: History, first_process: int = OUCH_PROCESS) -> None:
        self.host, self.port = sut.endpoints()["ouch"]
        self.passwords = sut.accounts()
        self.history, self.first_process = history, first_process
        self.clients: dict[str, OuchClient] = {}
        self.tickets: list[tuple[OuchClient, Ticket]] = []

    def _client(self, account: str) -> OuchClient:
        client = self.clients.get(account)
        if client is None:
            client = OuchClient(self.host, self.port, account, self.passwords[account], self.history,
                                self.first_process + len(self.clients), OUCH_TIMEOUT_S)
            client.connect()
            self.clients[account] = client
        return client

    def send(self, flow, count: int) -> None:
        """Submit ``count`` requests of ``flow``, each through its account's session."""
        for _ in range(count):
            account, body = flow.next()
            client = self._client(account)
            f, _, _, doc, value = order_request(account, body)
            if f == "new":
                ticket = client.submit_new(**doc)
            elif f == "cancel":
                ticket = client.submit_cancel(value["token"], body.qty)
            else:
                ticket = client.submit_replace(value["token"], value["new_token"], doc["qty"],
                                               doc["price"])
            self.tickets.append((client, ticket))

    def wait(self, timeout_s: float = ANSWER_WAIT_S) -> dict[str, int]:
        """Await every answer (``info`` past the shared deadline); the outcome counts."""
        deadline = time.monotonic() + timeout_s
        outcomes = {"ok": 0, "fail": 0, "info": 0}
        for client, ticket in self.tickets:
            result = client.wait(ticket, max(0.0, deadline - time.monotonic()))
            outcomes[result.type] = outcomes.get(result.type, 0) + 1
        return outcomes

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


def _poll(sut: Sut, gateway: str | None, name: str, target: int, timeout_s: float) -> dict | None:
    """The gateway's counters once ``name`` reached ``target`` (or the last read at the timeout)."""
    latest: dict[str, Any] = {}

    def reached() -> bool:
        latest["c"] = gateway_counters(sut, gateway)[0]
        value = _count(latest["c"], name)
        return value is None or value >= target

    s.wait_for(reached, timeout_s, 0.02)
    return latest.get("c")


def pause_trial(sut: Sut, history: History, flow, sequencer: str, gateway: str | None,
                burst_flow) -> dict[str, Any]:
    """The pause with hundreds of requests in flight (module doc); what it showed."""
    since = len(history.ops)
    before, offered, why = gateway_counters(sut, gateway)
    forwarded0 = _count(before, "forwarded")
    burst = OuchBurst(sut, history) if sut.endpoints().get("ouch") else None
    mark: dict[str, Any] = {}
    try:
        with s.fault(history, "pause-sequencer", component=sequencer) as window:
            sut.pause(sequencer)  # first: every request of the burst waits unsequenced
            paused_until = time.monotonic() + PAUSE_MIN_S
            try:
                load = Load(sut, history, flow, workers=8, timeout_s=5.0).start(
                    HTTP_ORDERS, duration_s=HTTP_WINDOW_S)
                if burst is not None:
                    burst.send(burst_flow, BURST)
                at_mark = (_poll(sut, gateway, "forwarded", (forwarded0 or 0) + BURST,
                                 FORWARD_WAIT_S) if forwarded0 is not None else None)
                mark = {"forwarded": _count(at_mark, "forwarded"),
                        "resends": _count(at_mark, "resends")}
                if mark["resends"] is not None:
                    after_mark = _poll(sut, gateway, "resends", mark["resends"] + BURST,
                                       RESEND_WAIT_S)
                    mark["resends_after"] = _count(after_mark, "resends")
                time.sleep(max(0.0, paused_until - time.monotonic()))
            finally:
                resumed_at = len(history.ops)
                sut.resume(sequencer)
                window["seconds"] = round(time.monotonic() - paused_until + PAUSE_MIN_S, 3)
            window["in_flight"] = in_flight_at(s.sub_history(history, since), resumed_at)
        ouch = burst.wait() if burst is not None else {}
        stats = load.join(30.0)
    finally:
        if burst is not None:
            burst.close()
    return {"counters_before": before, "offered": offered, "reason": why, "mark": mark,
            "in_flight": window["in_flight"], "pause_s": window["seconds"], "load": stats.as_dict(),
            "ouch": ouch,
            "resends_after_horizon": resends_behind(
                HORIZON, (forwarded0, mark.get("forwarded")),
                (mark.get("resends"), mark.get("resends_after")))}


def restart_trial(sut: Sut, history: History, flow, gateway: str) -> dict[str, Any]:
    """Kill the gateway under load, restart it, send new orders through both doors; what it showed."""
    head = s.sequenced_head(sut)
    load = Load(sut, history, flow, workers=4, timeout_s=2.0).start(RESTART_ORDERS, duration_s=3.0)
    load.wait_sent(RESTART_ORDERS // 2, timeout_s=5.0)
    with s.fault(history, "restart-gateway", component=gateway):
        sut.kill(gateway)
        during = load.join(30.0)
        sut.restart(gateway)
    restarted_at = len(history.ops)
    burst = OuchBurst(sut, history, OUCH_PROCESS + 50) if sut.endpoints().get("ouch") else None
    with contextlib.ExitStack() as stack:
        if burst is not None:
            stack.callback(burst.close)
            burst.send(flow, AFTER_RESTART_BURST)
        after = Load(sut, history, flow, workers=4, first_process=20).run(RESTART_ORDERS)
        ouch = burst.wait() if burst is not None else {}
    return {"head_at_restart": head, "restarted_at": restarted_at, "load_during": during.as_dict(),
            "load_after": after.as_dict(), "ouch_after": ouch}
