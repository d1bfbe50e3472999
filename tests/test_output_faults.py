"""Faults on the output stream toward the gateways, in process: the wiring, the broken variant, the verdict.

- ``output_relayed`` points only the engines' fan-out at the relay;
- ``gateway_skips_output_gap``'s receiver gives a gap up where the real one re-requests it;
- ``exactly_once.output_faults.reported_once`` on literal evidence: PASS, FAIL, UNKNOWN.
The whole requirement against the reference and the variant is in the detection-power run
(``harness.detection``).
"""

from __future__ import annotations

import itertools
import sys
import warnings
from pathlib import Path

import pytest

from harness.checkers.verdict import Verdict
from harness.history import OK, History
from harness.sut.base import NotSupported
from harness.sut.reference import ReferenceSut
from harness.sut.reference_relay import output_relayed, output_subscriber_ports
from reference_impl import config
from reference_impl.core.receiver import Deliver, Receiver, RequestRetransmit
from reference_impl.gateway.broken_output import GapSkippingReceiver

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "suites"))
with warnings.catch_warnings():  # the certify plugin registers ``requirement``; not loaded here
    warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
    import test_exactly_once_output as suite

RELAY = {"received": 300, "forwarded": 300, "dropped": 4, "duplicated": 3, "reordered": 5,
         "delayed": 0, "send_errors": 0}
LIVE = Verdict.passed("exactly_once.output_faults.liveness", "all settled", {})


# ------------------------------------------------------------------ wiring


def test_output_relayed_points_only_the_engines_at_the_relay():
    cfg = config.load()
    ports = [30500 + i for i in range(len(cfg.gateways))]
    engine_cfg, routes = output_relayed(cfg, ports)
    assert [g.output_port for g in engine_cfg.gateways] == ports
    assert routes == dict(zip(ports, output_subscriber_ports(cfg)))
    # everything else stays: the secondary's own subscription, the gateways' other ports
    assert engine_cfg.engines == cfg.engines
    assert [g.status_port for g in engine_cfg.gateways] == [g.status_port for g in cfg.gateways]


def test_output_relayed_refuses_what_cannot_work():
    cfg = config.load()
    with pytest.raises(ValueError, match="unicast"):
        output_relayed(cfg.with_overrides(transport="multicast"), [30500])
    with pytest.raises(ValueError, match="one per gateway"):
        output_relayed(cfg, [30500, 30501])
    with pytest.raises(ValueError, match="clash"):
        output_relayed(cfg, [cfg.sequencer.request_port])


def test_the_output_relay_is_offered_only_when_asked_for(tmp_path):
    plain = ReferenceSut(tmp_path)
    assert not plain.offers("output_relay")
    with pytest.raises(NotSupported, match="no output relay"):
        plain.set_output_faults(None)
    relayed = ReferenceSut(tmp_path, output_relay=True, bus_relay=True)
    assert relayed.offers("output_relay") and relayed.offers("bus_relay")
    both = relayed.relay_ports_base + relayed.output_relay_ports_base
    assert len(relayed.output_relay_ports_base) == len(relayed.base_config.gateways)
    assert len(set(both)) == len(both) and not set(both) & set(relayed.base_config.ports())
    with pytest.raises(ValueError, match="output_relay needs transport='unicast'"):
        ReferenceSut(tmp_path, transport="multicast", output_relay=True)


# ------------------------------------------------------------------ the broken variant


def test_the_real_receiver_re_requests_a_gap_the_skipping_one_gives_it_up():
    real, skipping = Receiver(), GapSkippingReceiver()
    assert real.on_messages(1, [b"a"], 0) == [Deliver(1, b"a")]
    assert real.on_messages(3, [b"c"], 0) == [RequestRetransmit(2, 1)]
    assert real.on_messages(2, [b"b"], 1) == [Deliver(2, b"b"), Deliver(3, b"c")]
    assert skipping.on_messages(1, [b"a"], 0) == [Deliver(1, b"a")]
    assert skipping.on_messages(4, [b"d", b"e"], 0) == [Deliver(4, b"d"), Deliver(5, b"e")]
    assert skipping.on_messages(2, [b"b"], 1) == []  # late: below next_seq, a duplicate
    assert (skipping.next_seq, skipping.duplicates, skipping.missing()) == (6, 1, [])
    assert skipping.on_heartbeat(8, 2) == [] and skipping.next_seq == 8  # a lost tail, given up


def test_a_rejoining_gateway_still_replays_what_it_missed_then_gives_live_gaps_up():
    rejoined = GapSkippingReceiver()
    assert rejoined.on_messages(5, [b"e"], 0) == [RequestRetransmit(1, 4)]  # the join's replay
    assert not rejoined.joined
    assert rejoined.on_messages(1, [b"a", b"b", b"c", b"d"], 1)[-1] == Deliver(5, b"e")
    assert rejoined.joined
    assert rejoined.on_messages(7, [b"g"], 2) == [Deliver(7, b"g")]  # seq 6 given up


def test_the_variant_is_a_known_broken_variant():
    assert "gateway_skips_output_gap" in config.BROKEN_VARIANTS
    assert config.load().with_overrides(faults=("gateway_skips_output_gap",)).broken(
        "gateway_skips_output_gap")


# ------------------------------------------------------------------ the verdict


def acc(seq, token, account="ACC1"):
    return {"seq": seq, "type": "accepted", "account": account, "token": token,
            "symbol": "ACME", "side": "B", "qty": 10, "price": 10000, "order_ref": seq}


def trial(n: int, twice: int | None = None) -> list:
    """``n`` new orders answered ok, each accepted; order ``twice`` reported twice."""
    ticks = itertools.count()
    h = History(clock=lambda: next(ticks))
    for i in range(1, n + 1):
        value = {"account": "ACC1", "token": f"T{i}"}
        inv = h.invoke(1, "new", value)
        outputs = [acc(i, f"T{i}")] * (2 if i == twice else 1)
        h.complete(inv, OK, {**value, "outputs": outputs})
    return h.ops


def test_enough_faults_and_requests_each_answered_once_pass():
    v = suite.judge_output_faults(trial(120), RELAY, LIVE, {})
    assert v.status == "pass", v
    rows = {r["situation"]: r["seen"] for r in v.evidence["coverage"]}
    assert rows == {"dropped": 4, "duplicated": 3, "reordered_or_delayed": 5, "requests": 120}


def test_an_order_reported_twice_to_its_client_fails_even_without_faults():
    v = suite.judge_output_faults(trial(120, twice=7), dict(RELAY, duplicated=0), LIVE, {})
    assert v.status == "fail"
    assert "T7" in str(v.evidence) and "without exactly one outcome" in v.summary


def test_a_lost_outcome_fails_through_liveness():
    stuck = Verdict.failed("exactly_once.output_faults.liveness",
                           "1 of the trial's 121 order ops never settled", {})
    v = suite.judge_output_faults(trial(120), RELAY, stuck, {})
    assert v.status == "fail"
    assert v.summary.startswith("liveness after the fault: 1 of the trial's 121 order ops")


def test_a_relay_that_never_duplicated_is_unknown_naming_it():
    v = suite.judge_output_faults(trial(120), dict(RELAY, duplicated=0), LIVE, {})
    assert v.status == "unknown"
    assert "duplicated: 0 of 1" in v.summary


def test_the_profile_sets_the_minimums():
    profile = {"evidence": {suite.REQUIREMENT: {"requests": 500}}}
    v = suite.judge_output_faults(trial(120), RELAY, LIVE, profile)
    assert v.status == "unknown" and "requests: 120 of 500" in v.summary
