"""Backpressure: past the in-flight limit new orders are refused at once, and refused ones never sequenced.

One SUT and one flood trial for the module (``flood``), judged twice. The
sequencer is paused (SIGSTOP), so nothing the gateway forwards can be
sequenced and every admitted request stays in flight. Then, at once,
``OUCH_SESSIONS`` OUCH sessions (one account each) pipeline their shares of
the flood, and ``HTTP_THREADS`` HTTP clients of the same accounts post
orders until one is admitted, so that together, on both doors, the requests
cross the limit. The HTTP clients stop posting ``STOP_GRACE_S`` before the
resume: a post the gateway decided after it could be admitted as slots free,
and would count as admitted past the limit (a false alarm seen on seed 8). The flood is the SUT's declared in-flight limit
(``Sut.in_flight_limit``: the reference's is its gateway's own figure) plus
a sixth of it; without a declared limit, ``FLOOD`` orders.

Past the limit each further order must be refused *at once*: an OUCH Order
Rejected with reason ``C`` that arrives while the core is still stopped (so
it did not wait for the core), an HTTP 429 with ``Retry-After``; one more
HTTP order sent once the flood is in must get that 429 within ``AT_ONCE_S``.
After the resume, every admitted order must be accepted (each exactly once)
within ``COMPLETE_S``.

- ``backpressure.refuse_at_once`` (``check_refuse_at_once``): the
  refusals, the completions, and with a declared limit the number admitted
  while the core was stopped: never more than the limit (a flood past it
  never refused FAILS), refusals not beginning far below it. Without a
  pausable sequencer or a declared limit, a flood never refused is UNKNOWN.
- ``backpressure.refused_never_sequenced``
  (``check_refused_never_sequenced``): once the SUT settled, every refused
  token is looked up in its sequenced input (the stored WAL, else the
  journal, through the adapter): a refused order that was still forwarded
  and sequenced, or accepted afterwards, FAILS; every admitted one must be
  there exactly once.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import _support as s
import pytest
from _continuity import CONTINUITY, TITLE, module_continuity
from _doors import http_door, ouch_door
from _evidence import sequenced_messages

from harness.checkers.backpressure import check_refuse_at_once, check_refused_never_sequenced
from harness.clients import SoupBinClient
from harness.coverage import covered
from harness.sut.base import NotSupported
from reference_impl.core import ouch_codec
from reference_impl.core import soupbin_codec as sb
from reference_impl.core.messages import NewOrder
from reference_impl.core.ouch_messages import EnterOrder, OrderAccepted, OrderRejected

FLOOD = 4200  #: without a declared limit: well past the reference gateway's 3,584
OUCH_SESSIONS = 3
HTTP_THREADS = 4
HTTP_EACH = 20  #: orders an HTTP client posts at most, stopping at its first admitted one
STOP_GRACE_S = 0.2  #: HTTP clients stop posting this long before the resume: all they sent is decided paused
AT_ONCE_S = 1.0
QUIET_S = 0.5  #: the door said all it will say while the core is stopped
SENTINEL_QUIET_S = 2.0  #: no answer to a session's closing invalid order this long: read no more
COMPLETE_S = 30.0
BACKPRESSURE_CODE = b"C"


@pytest.fixture(scope="module")
def bp_sut(sut_name, seed, profile, tmp_path_factory):
    with s.open_sut(sut_name, tmp_path_factory.mktemp("backpressure"), seed, profile) as sut:
        yield sut


def read_for(c: SoupBinClient, quiet_s: float, until: float, done=lambda packet: False) -> list:
    """Packets until ``done(packet)``, nothing but heartbeats for ``quiet_s``, or ``until``."""
    out = []
    last = time.monotonic()
    while (now := time.monotonic()) < until and now - last < quiet_s:
        try:
            packet = c.packet(max(0.01, min(quiet_s - (now - last), until - now)),
                              heartbeats=True)
        except TimeoutError:
            break
        if packet is None:
            break
        if isinstance(packet, sb.ServerHeartbeat):
            continue
        last = time.monotonic()
        out.append((last, packet))
        if done(packet):
            break
    return out


def messages(packets: list) -> list:
    return [(t, ouch_codec.decode_outbound(p.payload)) for t, p in packets
            if isinstance(p, sb.SequencedData)]


def declared_limit(sut) -> int | None:
    try:
        return sut.in_flight_limit()
    except NotSupported:
        return None


def http_order(sut, auth: tuple[str, str], token: str, price: int) -> dict:
    """One resting buy through the HTTP door: its status (None: no answer) and time."""
    symbol = next(iter(sut.instruments()), "ACME")
    body = {"token": token, "symbol": symbol, "side": "B", "qty": 1, "price": price}
    with http_door(sut, auth, timeout_s=COMPLETE_S) as door:
        t0 = time.monotonic()
        try:
            reply = door.request("POST", "/v1/orders", body)
        except OSError as exc:
            return {"token": token, "status": None, "error": str(exc),
                    "seconds": round(time.monotonic() - t0, 4)}
    return {"token": token, "status": reply.status, "retry_after": reply.headers.get("Retry-After"),
            "seconds": round(time.monotonic() - t0, 4)}


class Session:
    """One OUCH session's share of the flood: send it all at once, read what comes back.

    The share ends with a *sentinel*, an order of quantity 0: its stateless
    reject needs no core, and a door answers one session's frames in order,
    so once it is back every refusal of the share is too (the doors are
    busy with the other sessions meanwhile, longer than any quiet spell).
    """

    def __init__(self, sut, account: str, password: str, tokens: list[str], price) -> None:
        self.account, self.tokens = account, tokens
        self.client = ouch_door(sut, timeout_s=5.0)
        if not isinstance(self.client.login(account, password), sb.LoginAccepted):
            s.unknown(f"the OUCH login of {account} was refused; nothing to flood")
        symbol = next(iter(sut.instruments()), "ACME")
        self.sentinel = tokens[0][:-1] + "S"
        orders = [EnterOrder(t, b"B", 1, symbol, price(i)) for i, t in enumerate(tokens)]
        orders.append(EnterOrder(self.sentinel, b"B", 0, symbol, price(0)))
        self.frames = b"".join(sb.encode(sb.UnsequencedData(ouch_codec.encode(o))) for o in orders)
        self.early: list = []
        self.accepted: Counter[str] = Counter()

    def flood(self, t0: float) -> None:
        self.client.send_raw(self.frames)

        def sentinel_back(p) -> bool:
            return isinstance(p, sb.SequencedData) and \
                getattr(ouch_codec.decode_outbound(p.payload), "order_token", "") == self.sentinel

        early = messages(read_for(self.client, SENTINEL_QUIET_S, t0 + 10.0, sentinel_back))
        self.early = [(t, m) for t, m in early if getattr(m, "order_token", "") != self.sentinel]

    def complete(self, admitted: set[str], deadline: float) -> None:
        """Read until every admitted order of this account is accepted, then until quiet."""
        waiting = set(admitted)

        def done(p) -> bool:
            if isinstance(p, sb.SequencedData):
                m = ouch_codec.decode_outbound(p.payload)
                if isinstance(m, OrderAccepted):
                    self.accepted[m.order_token] += 1
                    waiting.discard(m.order_token)
            return not waiting

        read_for(self.client, 5.0, deadline, done)
        read_for(self.client, QUIET_S, deadline, done)  # anything accepted late (a refused order)


def _threads(targets, errors: list[str]) -> list[threading.Thread]:
    """Start one thread per target; what one of them raises goes to ``errors``."""

    def guarded(target) -> None:
        try:
            target()
        except Exception as exc:  # noqa: BLE001  the harness's own trouble, not the SUT's
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=guarded, args=(t,), daemon=True) for t in targets]
    for t in threads:
        t.start()
    return threads


@pytest.fixture(scope="module")
def flood(bp_sut, seed, history) -> dict:
    """The one concurrent flood trial of the module: the evidence both requirements judge."""
    sut = bp_sut
    s.require_features(sut, "ouch")
    limit = declared_limit(sut)
    size = limit + max(limit // 6, 64) if limit is not None else FLOOD
    accounts = list(sut.accounts().items())
    ouch_accounts = accounts[-OUCH_SESSIONS:]
    tick = sut.instruments().get(next(iter(sut.instruments()), "ACME"), 100)

    def price(i: int) -> int:
        return (1 + i % 50) * tick  # resting buys, below any ask

    shares = [list(range(k, size, len(ouch_accounts))) for k in range(len(ouch_accounts))]
    sessions = [Session(sut, a, pw, [f"BP{seed % 1000:03d}{k}{i:07d}" for i in share], price)
                for k, ((a, pw), share) in enumerate(zip(ouch_accounts, shares))]
    doors_http = HTTP_THREADS if sut.endpoints().get("http") else 0
    http_answers: list[dict] = []

    stop_http = threading.Event()  # set before the resume: a post after it could be admitted legitimately

    def http_client(j: int) -> None:
        auth = ouch_accounts[j % len(ouch_accounts)]
        for i in range(HTTP_EACH):
            if stop_http.is_set():
                return
            answer = http_order(sut, auth, f"BH{seed % 1000:03d}{j}{i:06d}", price(i))
            answer["account"] = auth[0]
            http_answers.append(answer)
            if answer["status"] != 429:
                return

    s.settle(sut)
    sequencer = s.component(sut, "sequencer") if sut.offers("pause") else None
    evidence: dict = {"flood": size, "declared_limit": limit, "paused": sequencer is not None,
                      "sessions": len(sessions) + doors_http,
                      "doors": 1 + (doors_http > 0)}
    probe: dict | None = None
    http_threads: list[threading.Thread] = []
    errors: list[str] = []
    try:
        with s.fault(history, "flood", component=sequencer, orders=size,
                     sessions=evidence["sessions"]) as window:
            if sequencer:
                sut.pause(sequencer)
            try:
                t0 = time.monotonic()
                http_threads = _threads((lambda j=j: http_client(j) for j in range(doors_http)),
                                        errors)
                for t in _threads((lambda sess=sess: sess.flood(t0) for sess in sessions), errors):
                    t.join()
                if doors_http:
                    probe = http_order(sut, accounts[0], f"BPH{seed % 100000:05d}", 100 * tick)
                window["http"] = probe
            finally:
                stop_http.set()
                if sequencer:
                    time.sleep(STOP_GRACE_S)
                    sut.resume(sequencer)
        for t in http_threads:
            t.join(COMPLETE_S)
        refused: dict[str, float] = {}
        other_early = []
        for sess in sessions:
            for t, m in sess.early:
                if isinstance(m, OrderRejected) and m.reason == BACKPRESSURE_CODE:
                    refused[m.order_token] = t - t0
                else:
                    other_early.append(repr(m))
        for a in http_answers:
            if a["status"] == 429:
                refused.setdefault(a["token"], a["seconds"])
        sent = [t for sess in sessions for t in sess.tokens] + [a["token"] for a in http_answers]
        admitted = {t for t in sent if t not in refused}
        owner = {t: sess.account for sess in sessions for t in sess.tokens}
        owner.update((a["token"], a["account"]) for a in http_answers)
        deadline = time.monotonic() + COMPLETE_S
        completing = (lambda sess=sess: sess.complete(
            {tok for tok in admitted if owner[tok] == sess.account}, deadline) for sess in sessions)
        for t in _threads(completing, errors):
            t.join()
        complete_s = round(time.monotonic() - t0, 3)
    finally:
        for sess in sessions:
            sess.client.close()
    settled = s.settle(sut)
    if errors:
        s.unknown(f"the flood's clients failed: {errors[0]}")
    accepted: Counter[str] = sum((sess.accepted for sess in sessions), Counter())
    if probe is not None and probe.get("status") == 429:
        refused.setdefault(probe["token"], probe["seconds"])
    missing = sorted(t for t in admitted if t not in accepted)
    evidence.update(
        flood=len(sent), refused=len(refused), admitted=len(admitted), accepted=len(accepted),
        accepted_twice=sum(1 for t in admitted if accepted[t] > 1),
        missing=missing[:10], missing_count=len(missing),
        slowest_refusal_s=round(max(refused.values()), 4) if refused else None,
        other_while_paused=other_early[:10] if sequencer else [], http=probe,
        http_concurrent=Counter(str(a["status"]) for a in http_answers),
        complete_after_s=complete_s, settled=settled.get("settled"))
    return {"evidence": evidence, "refused": set(refused), "admitted": admitted,
            "accepted": accepted}


@pytest.mark.requirement("backpressure.refuse_at_once",
                         title="past the in-flight limit new orders are refused at once "
                               "(OUCH reject 'C', HTTP 429), never more admitted than the "
                               "declared limit, and admitted orders complete")
def test_flood_is_refused_at_once_and_admitted_orders_complete(flood, profile):
    ev = flood["evidence"]
    v = check_refuse_at_once(ev, AT_ONCE_S)
    s.judge(covered(v, {"refused": ev["refused"], "admitted": ev["admitted"] - ev["missing_count"],
                        "sessions": ev["sessions"]}, profile))


@pytest.mark.requirement("backpressure.refused_never_sequenced",
                         title="a request refused by backpressure is never sequenced nor "
                               "accepted; every admitted one is sequenced exactly once")
def test_refused_requests_are_never_sequenced(bp_sut, flood, profile):
    ours = flood["refused"] | flood["admitted"]
    sequenced = sequenced_messages(bp_sut)
    counts = Counter(m.body.token for m in sequenced
                     if type(m.body) is NewOrder and m.body.token in ours)
    refused, admitted, accepted = flood["refused"], flood["admitted"], flood["accepted"]

    def first(tokens) -> dict:
        tokens = sorted(tokens)
        return {"list": tokens[:10], "count": len(tokens)}

    parts = {"refused_sequenced": first(t for t in refused if counts[t]),
             "refused_accepted": first(t for t in refused if accepted[t]),
             "admitted_unsequenced": first(t for t in admitted if not counts[t]),
             "admitted_sequenced_twice": first(t for t in admitted if counts[t] > 1)}
    ev = {"refused": len(refused), "admitted": len(admitted), "records": len(sequenced)}
    for key, part in parts.items():
        ev[key], ev[f"{key}_count"] = part["list"], part["count"]
    v = check_refused_never_sequenced(ev)
    s.judge(covered(v, {"refused_checked": len(refused),
                        "admitted_checked": len(admitted) - ev["admitted_unsequenced_count"]},
                    profile))


@pytest.mark.requirement(CONTINUITY, title=TITLE)
def test_sequence_continuity(bp_sut, profile):
    """Last in the module: everything it sequenced is in the sequenced input once, in order."""
    s.judge(module_continuity(bp_sut, profile))
