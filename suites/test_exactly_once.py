"""Exactly-once: bus faults and gateway resends change nothing clients or replicas see.

One SUT for the module, built with the fault-injecting relay on the input bus
(sequencer -> engines and logger) when the SUT offers it.

- **Bus faults.** The relay drops, duplicates and reorders datagrams at the
  profile's ``relay`` rates while a seeded load runs, then turns clean. Each
  engine must end in the state of a clean run of the same sequenced input
  (the SUT's own offline replay of the whole journal; N/A without one), and
  every order and fill is
  reported once: on the output bus (the union of every stream an engine
  published, which is what subscribers receive) and to clients (the history).
  Both need every kind of fault injected (dropped, duplicated, reordered:
  the coverage table; below it UNKNOWN).
- **Gateway resends, over long horizons and across a restart.** The
  sequencer is paused (SIGSTOP) for longer than the gateway's resend
  interval while HTTP workers and pipelined OUCH sessions hold hundreds of
  requests in flight, so the gateway sends them all again, each resend
  behind more than a thousand other requests (``_resend``: how that is
  counted). Then the gateway is killed under load and restarted, and new
  orders go through both doors. Over the whole trial no client request may
  be sequenced twice (``check_sequenced_once`` over the sequenced input) and
  every answer must name its own request (``check_history_once``). The
  gateway's resend counter must show that something was resent (a counter
  that reads 0 or cannot be read is UNKNOWN; a SUT that exposes none shows
  no resend), and the coverage table (``harness.coverage``) needs the
  resends, the long-horizon resends, the requests in flight at the pause and
  the orders accepted under the restarted gateway's new incarnation: below
  a minimum the verdict is UNKNOWN. A request sequenced twice fails
  regardless.
- **Liveness.** After each fault window every replica and the logger must
  reach the sequencer's head, a probe order must be accepted and every order
  of the trial must settle (``check_liveness``, joined into the trial's
  verdicts): a fault that leaves the exchange stalled fails the trial.
- **Sequence continuity.** Last, after a short load of its own, every seq
  the sequencer handed out must be in the sequenced input (the stored WAL,
  else the journal) exactly once and in order, each record holding its own
  seq (``_continuity``, as every module ends): no seq consumed without a
  message, none reused, over everything the module sequenced.
"""

from __future__ import annotations

from collections import Counter

import _support as s
import pytest
from _continuity import CONTINUITY, TITLE, module_continuity
from _evidence import engine_digests, liveness_evidence, published_outputs, replay_end, sequenced_messages
from _load import Load, workload
from _resend import HORIZON, gateway_counters, pause_trial, restart_trial

from harness.checkers import (
    check_history_once,
    check_reported_once,
    check_same_final_state,
    check_sequenced_once,
)
from harness.checkers.continuity import check_stream_coverage
from harness.checkers.exactly_once import require_resends
from harness.checkers.liveness import check_liveness, with_liveness
from harness.checkers.resend_evidence import requests_under_new_incarnation
from harness.checkers.verdict import too_thin
from harness.checkers.zero_loss import acknowledged_orders
from harness.coverage import covered
from harness.nemesis.udp_plan import CLEAN, UdpFaultRates

BUS_WINDOW_BASE_S = 5.0  #: the faulty load stops issuing after this plus 10 ms per order
SETTLE_S = 10.0  #: after the bus faults, the time every component has to reach the head
RESEND_SETTLE_S = 5.0  #: after the pause (nothing was lost) and the restart, the same
RESEND_RID = "exactly_once.gateway_resend.sequenced_once"
CONTINUITY_ORDERS = 40  #: enough to cross a seq a skipping sequencer would consume


@pytest.fixture(scope="module")
def eo_sut(sut_name, seed, profile, tmp_path_factory):
    with s.open_sut(sut_name, tmp_path_factory.mktemp("exactly_once"), seed, profile,
                    bus_relay=True) as sut:
        yield sut


def clean_replay(sut, upto: int | None, work) -> dict:
    """The final digest of a clean run: the SUT's own offline replay of the journal (to ``upto``)."""
    entries = [e for e in sut.journal() or [] if upto is None or int(e["seq"]) <= upto]
    if not entries:
        s.unknown("the journal is empty: no input to replay")
    end = replay_end(sut, entries, work)
    return {"applied_seq": end.get("last_seq"), "state_hash": end.get("state_hash")}


@pytest.fixture(scope="module")
def bus_trial(eo_sut, seed, profile, history):
    sut = eo_sut
    s.require_features(sut, "bus_relay")
    rates = UdpFaultRates(**profile.get("relay", {}))
    since = len(history.ops)
    orders = int(profile["orders_per_trial"])
    window_s = BUS_WINDOW_BASE_S + orders / 100  # a stalled replica must not stall the suite
    flow = workload(sut, seed + 1, profile, prefix="B")
    with s.fault(history, "bus-faults", **profile.get("relay", {})):
        sut.set_bus_faults(rates)
        stats = Load(sut, history, flow, workers=4).run(orders, duration_s=window_s)
        sut.set_bus_faults(CLEAN)
    settled = s.settle(sut, timeout_s=SETTLE_S)
    live = check_liveness(**liveness_evidence(sut, history, since, settled, SETTLE_S),
                          requirement="exactly_once.bus_faults.liveness")
    return {"sut": sut, "since": since, "load": stats.as_dict(), "settled": settled,
            "relay": sut.bus_fault_counts(), "rates": profile.get("relay", {}), "liveness": live}


def judge_bus_trial(v, trial: dict, seen: dict[str, int], profile: dict) -> None:
    """Judge ``v`` with the trial's liveness and its coverage: the relay's fault counts and ``seen``
    (UNKNOWN, unless it fails, when a kind of fault was never injected)."""
    r = trial["relay"]
    faults = {k: int(r.get(k, 0)) for k in ("dropped", "duplicated", "reordered")}
    s.judge(covered(with_liveness(v, trial["liveness"]), {**faults, **seen}, profile, v.requirement))


@pytest.mark.requirement("exactly_once.bus_faults.same_final_state",
                         title="under bus drop/duplicate/reorder every engine ends in the "
                               "state of a clean run of the same input")
def test_bus_faults_same_final_state(bus_trial, tmp_path, profile):
    sut = bus_trial["sut"]
    s.require_features(sut, "digest", "journal", "offline_replay")
    head = s.sequenced_head(sut)
    clean = clean_replay(sut, head, tmp_path)
    verdicts = []
    for name, digest in engine_digests(sut).items():
        verdicts.append(check_same_final_state(
            clean, digest, requirement=f"exactly_once.bus_faults.same_final_state.{name}"))
    v = s.fold(verdicts, "exactly_once.bus_faults.same_final_state")
    if head is not None and clean["applied_seq"] < head:
        v = too_thin(v, f"the journal ends at seq {clean['applied_seq']}, before the "
                     f"sequencer's head {head}")
    v.evidence.update(clean=clean, head=head, relay=bus_trial["relay"], load=bus_trial["load"],
                      settled=bus_trial["settled"])
    if v.status == "pass":
        r = bus_trial["relay"]
        v = type(v).passed(v.requirement, f"{', '.join(engine_digests(sut))} end at seq "
                           f"{clean['applied_seq']} with the clean replay's state hash (relay "
                           f"dropped {r['dropped']}, duplicated {r['duplicated']}, reordered "
                           f"{r['reordered']} datagrams)", v.evidence)
    judge_bus_trial(v, bus_trial, {"replicas": len(verdicts)}, profile)


@pytest.mark.requirement("exactly_once.bus_faults.reported_once",
                         title="under bus faults every order and fill is reported once, "
                               "on the output bus and to clients")
def test_bus_faults_reported_once(bus_trial, history, profile):
    sut = bus_trial["sut"]
    ops = s.sub_history(history, bus_trial["since"])
    verdicts = [check_history_once(ops, requirement="exactly_once.reported_once.clients")]
    client_outputs = [o for op in ops if op.type == "ok" for o in op.value.get("outputs", [])]
    verdicts.append(check_reported_once(client_outputs,
                                        requirement="exactly_once.reported_once.client_outputs"))
    coverage: dict = {}
    streams = published_outputs(sut, coverage=coverage)
    if streams:
        bus = [o for stream in streams.values() for o in stream]
        verdicts.append(check_reported_once(bus, requirement="exactly_once.reported_once.bus"))
        # a stream the ring no longer holds whole is partial evidence: UNKNOWN, never a pass
        # (a report seen twice in what was fetched still fails)
        verdicts.append(check_stream_coverage(
            coverage, requirement="exactly_once.reported_once.bus_coverage"))
    v = s.fold(verdicts, "exactly_once.bus_faults.reported_once")
    v.evidence.update(publishers=sorted(streams), relay=bus_trial["relay"],
                      load=bus_trial["load"], stream_coverage=coverage)
    kinds = Counter(o.get("type") for o in client_outputs)
    judge_bus_trial(v, bus_trial, {"orders": kinds["accepted"], "fills": kinds["executed"]}, profile)


@pytest.mark.requirement("exactly_once.gateway_resend.sequenced_once",
                         title="a request the gateway sends again, after a thousand others or "
                               "across a gateway restart, is sequenced once and answered as its own")
def test_gateway_resend_sequenced_once(eo_sut, seed, profile, history):
    sut = eo_sut
    s.require_features(sut, "pause", "journal")
    sequencer = s.component(sut, "sequencer")
    if sequencer is None:
        s.na(f"{sut.name} names no sequencer component to pause")
    gateway = s.component(sut, "gateway")
    since = len(history.ops)
    pause = pause_trial(sut, history, workload(sut, seed + 2, profile, prefix="R"), sequencer,
                        gateway, workload(sut, seed + 4, profile, prefix="RB"))
    settled = s.settle(sut, timeout_s=RESEND_SETTLE_S)
    live = check_liveness(**liveness_evidence(sut, history, since, settled, RESEND_SETTLE_S),
                          requirement="exactly_once.gateway_resend.liveness")
    after, offered_after, why_after = gateway_counters(sut, gateway)  # before a restart resets it
    before = pause["counters_before"]
    resends = None if before is None or after is None else after["resends"] - before["resends"]
    restart, restarted = None, None
    if live.status != "fail" and gateway is not None and sut.offers("kill") and sut.offers("restart"):
        # (after a stall the trial has failed already: a restart would show nothing more)
        restart = restart_trial(sut, history, workload(sut, seed + 5, profile, prefix="RR"),
                                gateway)
        settled = s.settle(sut, timeout_s=RESEND_SETTLE_S)
        restarted = check_liveness(**liveness_evidence(
            sut, history, restart["restarted_at"], settled, RESEND_SETTLE_S),
            requirement="exactly_once.gateway_restart.liveness")
    messages = sequenced_messages(sut)
    once = check_sequenced_once(messages, requirement=f"{RESEND_RID}.sequencer")
    v = s.fold([require_resends(once, resends, offered=pause["offered"] and offered_after,
                                reason=pause["reason"] or why_after),
                check_history_once(s.sub_history(history, since),
                                   requirement=f"{RESEND_RID}.answers")], RESEND_RID)
    v.evidence.update(pause={k: pause[k] for k in ("mark", "in_flight", "pause_s", "load", "ouch")},
                      restart=restart, gateway_resends=resends)
    if restarted is not None:
        v = with_liveness(v, restarted)
    v = with_liveness(v, live)  # the pause's liveness leads the summary
    seen = {"resends": max(resends or 0, 0), "requests": once.evidence["client_requests"],
            "in_flight_at_pause": pause["in_flight"],
            f"resends_after_{HORIZON}": pause["resends_after_horizon"],
            "orders_after_restart": 0, "new_incarnation": 0}
    if restart is not None:
        seen["orders_after_restart"] = len(acknowledged_orders(
            s.sub_history(history, restart["restarted_at"]))[0])
        if restart["head_at_restart"] is not None:
            seen["new_incarnation"] = requests_under_new_incarnation(
                messages, restart["head_at_restart"])
    s.judge(covered(v, seen, profile))


@pytest.mark.requirement(CONTINUITY, title=TITLE)
def test_sequence_continuity(eo_sut, seed, profile, history):
    """Runs last: the sequenced input then holds everything the module's trials sent."""
    sut = eo_sut
    flow = workload(sut, seed + 3, profile, prefix="C")
    stats = Load(sut, history, flow, workers=8).run(CONTINUITY_ORDERS)
    v = module_continuity(sut, profile)
    v.evidence.update(load=stats.as_dict())
    s.judge(v)
