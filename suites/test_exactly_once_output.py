"""Exactly-once on the way out: faults on the output stream toward the gateways change nothing clients see.

One SUT for the module, built with the fault-injecting relay on the output
stream (the primary engine -> the gateways) when the SUT offers it
(``output_relay``; N/A otherwise). The gateways' re-requests and their
answers go around the relay, as a subscriber's recovery path does on the bus.

- **Output faults.** The relay drops, duplicates, reorders and delays output
  datagrams at the profile's ``relay`` rates (the same per-datagram fault
  model as the input bus) through a whole seeded load, then turns clean. The
  primary batches its outputs, so a round of ``orders_per_trial`` orders
  makes only a few hundred datagrams: the load runs another round while the
  relay has not yet dropped, duplicated and reordered or delayed at least
  one each, up to ``MAX_ROUNDS``.
  Every client request answered must have had exactly one outcome, never
  contradicted (``check_history_once``), and no order or fill may have been
  reported twice to clients (``check_reported_once`` over what the clients
  received). A gateway that loses an output record (a gap given up instead of
  re-requested) leaves its request without an outcome: the liveness check
  joined into the verdict fails every order op of the trial that neither
  completed nor has a final state the SUT can name, and the probe order.
- **Coverage.** The relay must show that it dropped, duplicated and reordered
  or delayed output datagrams, and enough requests must have been judged
  (``harness.coverage`` ``NEEDS``): below the minimums the verdict is UNKNOWN
  naming what is missing; a FAIL stays a FAIL.
"""

from __future__ import annotations

import _support as s
import pytest
from _continuity import CONTINUITY, TITLE, module_continuity
from _evidence import liveness_evidence
from _load import Load, workload

from harness.checkers import check_history_once, check_reported_once
from harness.checkers.liveness import check_liveness, with_liveness
from harness.coverage import covered
from harness.nemesis.udp_plan import CLEAN, UdpFaultRates

REQUIREMENT = "exactly_once.output_faults.reported_once"
WINDOW_BASE_S = 5.0  #: the faulty load stops issuing after this plus 10 ms per order
SETTLE_S = 10.0  #: after the faults, the time every component has to reach the head
MAX_ROUNDS = 3  #: load rounds at most, while the relay has not shown every kind of fault
FAULT_KINDS = ("dropped", "duplicated", "reordered_or_delayed")  #: each must have been injected


@pytest.fixture(scope="module")
def out_sut(sut_name, seed, profile, tmp_path_factory):
    with s.open_sut(sut_name, tmp_path_factory.mktemp("exactly_once_output"), seed, profile,
                    output_relay=True) as sut:
        yield sut


def output_trial(sut, seed: int, profile: dict, history) -> dict:
    """A seeded load through the faulty output stream; the relay's counts and the liveness verdict."""
    s.require_features(sut, "output_relay")
    rates = profile.get("relay", {})
    since = len(history.ops)
    orders = int(profile["orders_per_trial"])
    flow = workload(sut, seed + 11, profile, prefix="O")
    load = Load(sut, history, flow, workers=4)
    rounds = 0
    with s.fault(history, "output-faults", **rates) as window:
        sut.set_output_faults(UdpFaultRates(**rates))
        while rounds < MAX_ROUNDS:
            rounds += 1
            stats = load.run(orders, duration_s=WINDOW_BASE_S + orders / 100)
            seen = output_situations(sut.output_fault_counts(), 0)
            if all(seen[kind] for kind in FAULT_KINDS):
                break
        sut.set_output_faults(CLEAN)
        window["rounds"] = rounds
    settled = s.settle(sut, timeout_s=SETTLE_S)
    live = check_liveness(**liveness_evidence(sut, history, since, settled, SETTLE_S),
                          requirement="exactly_once.output_faults.liveness")
    return {"since": since, "load": stats.as_dict(), "rounds": rounds,
            "relay": sut.output_fault_counts(), "liveness": live}


def output_situations(relay: dict[str, int], judged_requests: int) -> dict[str, int]:
    """The situations the requirement counts (``harness.coverage`` NEEDS) from the relay and the check."""
    return {"dropped": relay.get("dropped", 0), "duplicated": relay.get("duplicated", 0),
            "reordered_or_delayed": relay.get("reordered", 0) + relay.get("delayed", 0),
            "requests": judged_requests}


def judge_output_faults(ops: list, relay: dict[str, int], liveness, profile: dict):
    """The requirement's verdict from the trial's ops, the relay's counts and the liveness verdict."""
    once = check_history_once(ops, requirement="exactly_once.output_faults.clients")
    client_outputs = [o for op in ops if op.type == "ok" for o in op.value.get("outputs", [])]
    reported = check_reported_once(client_outputs,
                                   requirement="exactly_once.output_faults.client_outputs")
    v = s.fold([once, reported], REQUIREMENT)
    v.evidence.update(relay=relay)
    v = with_liveness(v, liveness)
    return covered(v, output_situations(relay, int(once.evidence.get("ok_ops_judged", 0))), profile,
                   requirement=REQUIREMENT)


@pytest.mark.requirement(REQUIREMENT,
                         title="under output-stream drop/duplicate/reorder/delay toward the "
                               "gateways every request gets one outcome, each order and fill "
                               "reported once to clients, none lost")
def test_output_faults_reported_once(out_sut, seed, profile, history):
    trial = output_trial(out_sut, seed, profile, history)
    v = judge_output_faults(s.sub_history(history, trial["since"]), trial["relay"],
                            trial["liveness"], profile)
    v.evidence.update(load=trial["load"], rounds=trial["rounds"])
    s.judge(v)


@pytest.mark.requirement(CONTINUITY, title=TITLE)
def test_sequence_continuity(out_sut, profile):
    """Last in the module: everything it sequenced is in the sequenced input once, in order."""
    s.judge(module_continuity(out_sut, profile))
