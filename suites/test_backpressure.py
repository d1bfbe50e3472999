"""Backpressure: past the limit a new order is refused at once, and what was admitted completes.

One SUT for the module. The sequencer is paused (SIGSTOP), so nothing the
gateway forwards can be sequenced and every admitted request stays in
flight; one OUCH session then floods the door with ``FLOOD`` resting orders,
pipelined. Past the gateway's limit (its in-flight window: 3,584 new orders
for the reference) each further order must be refused *at once*: an Order
Rejected with reason ``C`` that arrives while the core is still stopped, so
it did not wait for the core. An HTTP order sent then must get 429 with
``Retry-After`` within ``AT_ONCE_S``. After the resume, every admitted order
must be accepted (each exactly once) within ``COMPLETE_S``.

A SUT without a pausable sequencer is flooded without the pause; if the flood
never reaches its limit the verdict is UNKNOWN, never a pass, unless what it
did show is wrong (an HTTP answer other than 429, an admitted order that never
completed): ``check_refuse_at_once`` judges problems before thinness.
"""

from __future__ import annotations

import time

import _support as s
import pytest
from _doors import http_door, ouch_door

from harness.checkers.backpressure import check_refuse_at_once
from harness.clients import SoupBinClient
from reference_impl.core import ouch_codec
from reference_impl.core import soupbin_codec as sb
from reference_impl.core.ouch_messages import EnterOrder, OrderAccepted, OrderRejected

FLOOD = 4200  #: well past the reference gateway's 3,584 in-flight new orders
AT_ONCE_S = 1.0
QUIET_S = 0.5  #: the door said all it will say while the core is stopped
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


def http_429(sut, token: str) -> dict:
    account, password = next(iter(sut.accounts().items()))
    symbol = next(iter(sut.instruments()), "ACME")
    body = {"token": token, "symbol": symbol, "side": "B", "qty": 1,
            "price": 100 * sut.instruments().get(symbol, 100)}
    with http_door(sut, (account, password), timeout_s=AT_ONCE_S * 5) as door:
        t0 = time.monotonic()
        try:
            reply = door.request("POST", "/v1/orders", body)
        except OSError as exc:
            return {"status": None, "error": str(exc), "seconds": time.monotonic() - t0}
    return {"status": reply.status, "retry_after": reply.headers.get("Retry-After"),
            "seconds": round(time.monotonic() - t0, 4)}


@pytest.mark.requirement("backpressure.refuse_at_once",
                         title="past the in-flight limit new orders are refused at once "
                               "(OUCH reject 'C', HTTP 429) and admitted orders complete")
def test_flood_is_refused_at_once_and_admitted_orders_complete(bp_sut, seed, history):
    sut = bp_sut
    s.require_features(sut, "ouch")
    account, password = list(sut.accounts().items())[-1]
    symbol = next(iter(sut.instruments()), "ACME")
    tick = sut.instruments().get(symbol, 100)
    sequencer = s.component(sut, "sequencer") if sut.offers("pause") else None
    tokens = [f"BP{seed % 1000:03d}{i:07d}" for i in range(FLOOD)]
    c = ouch_door(sut, timeout_s=5.0)
    evidence: dict = {"flood": FLOOD, "paused": sequencer}
    try:
        if not isinstance(c.login(account, password), sb.LoginAccepted):
            s.unknown("the OUCH login was refused; nothing to flood")
        frames = b"".join(sb.encode(sb.UnsequencedData(ouch_codec.encode(
            EnterOrder(t, b"B", 1, symbol, (1 + i % 50) * tick))))
            for i, t in enumerate(tokens))
        with s.fault(history, "flood", component=sequencer, orders=FLOOD) as window:
            if sequencer:
                sut.pause(sequencer)
            try:
                t0 = time.monotonic()
                c.send_raw(frames)
                early = read_for(c, QUIET_S, t0 + 10.0)
                window["http"] = http = http_429(sut, f"BPH{seed % 100000:05d}")
            finally:
                if sequencer:
                    sut.resume(sequencer)
        early_msgs = [(t, ouch_codec.decode_outbound(p.payload)) for t, p in early
                      if isinstance(p, sb.SequencedData)]
        refused = {m.order_token: t - t0 for t, m in early_msgs
                   if isinstance(m, OrderRejected) and m.reason == BACKPRESSURE_CODE}
        other_early = [repr(m) for _, m in early_msgs if not (
            isinstance(m, OrderRejected) and m.reason == BACKPRESSURE_CODE)]
        admitted = [t for t in tokens if t not in refused]
        accepted: dict[str, int] = {}
        deadline = time.monotonic() + COMPLETE_S

        def complete(p) -> bool:
            if isinstance(p, sb.SequencedData):
                m = ouch_codec.decode_outbound(p.payload)
                if isinstance(m, OrderAccepted):
                    accepted[m.order_token] = accepted.get(m.order_token, 0) + 1
            return len(accepted) >= len(admitted)

        read_for(c, 5.0, deadline, complete)
        complete_s = round(time.monotonic() - t0, 3)
    finally:
        c.close()
    s.settle(sut)
    missing = [t for t in admitted if t not in accepted]
    evidence.update(
        refused=len(refused), admitted=len(admitted), accepted=len(accepted),
        accepted_twice=sum(1 for n in accepted.values() if n > 1),
        missing=missing[:10], missing_count=len(missing),
        slowest_refusal_s=round(max(refused.values()), 4) if refused else None,
        other_while_paused=other_early[:10] if sequencer else [], http=http,
        complete_after_s=complete_s)
    s.judge(check_refuse_at_once(evidence, AT_ONCE_S))
