"""The durability rule, and that the three processes that must follow it agree with it.

``core.durability`` says which status an ack waits for under each policy.
The gateway's ack gate, the engines' status pacing and the logger's
watermarks each ask it; the agreement test below observes what each of them
actually does (not what it asks) and checks it against the rule, so a
consumer that spells a policy itself and gets it wrong fails here.
"""

from __future__ import annotations

import dataclasses

import pytest

from reference_impl import config as config_mod
from reference_impl.core import durability
from reference_impl.core.ack_gate import AckGate
from reference_impl.core.durability import POLICIES, UNGATED, Waits
from reference_impl.core.status_codec import EngineStatus, LoggerWatermark
from reference_impl.engine.node import STATUS_PACE_NS, status_pace_ns
from reference_impl.logger.node import LoggerAgent

# ------------------------------------------------------------------ the rule


def test_policies_and_what_each_waits_for() -> None:
    assert POLICIES == ("fsync", "replicated", "none")
    assert durability.waits_for("fsync") == Waits(durable=True, written=False, secondary_applied=False)
    assert durability.waits_for("replicated") == Waits(durable=False, written=True,
                                                       secondary_applied=True)
    assert durability.waits_for("none") == Waits(False, False, False)
    assert [durability.gates(p) for p in POLICIES] == [True, True, False]
    assert config_mod.DURABILITY == POLICIES  # the config schema lists the same names


@pytest.mark.parametrize("bad", ["sometimes", "FSYNC", "", None])
def test_an_unknown_policy_is_refused_by_name(bad) -> None:
    with pytest.raises(ValueError, match="fsync, replicated, none"):
        durability.waits_for(bad)
    with pytest.raises(ValueError):
        AckGate(bad)


def test_covered_seq_is_the_lowest_awaited_watermark() -> None:
    def covered(policy: str, has_secondary: bool = True) -> int:
        return durability.covered_seq(durability.waits_for(policy), written=9, durable=4,
                                      secondary_applied=7, has_secondary=has_secondary)

    assert covered("fsync") == 4
    assert covered("replicated") == 7
    assert covered("replicated", has_secondary=False) == 9  # no secondary: the written seq alone
    assert covered("none") == UNGATED
    assert durability.covered_seq(Waits(True, True, True), 9, 4, 7, True) == 4


def test_engine_and_logger_questions() -> None:
    assert [durability.engine_status_gates(p, primary=False) for p in POLICIES] == [False, True, False]
    assert not any(durability.engine_status_gates(p, primary=True) for p in POLICIES)
    assert [durability.logger_publishes_durable(p) for p in POLICIES] == [True, False, False]


# ---------------------------------------------------- the consumers agree


def gate_waits(policy: str) -> Waits:
    """Which watermarks the ack gate waits for, observed: hold one back, raise the others."""
    def waits_on(low: str) -> bool:
        seqs = {name: (5 if name == low else 100) for name in Waits._fields}
        gate = AckGate(policy)
        gate.on_logger(LoggerWatermark(0, seqs["written"], seqs["durable"], 0))
        gate.on_engine(EngineStatus(2, False, 0, seqs["secondary_applied"], 0, 0))
        gate.on_engine(EngineStatus(1, True, 0, 1, 0, 0))  # the primary's applied seq gates nothing
        return gate.threshold() == 5

    return Waits(*(waits_on(name) for name in Waits._fields))


def logger_sends_durable_after_sync(policy: str, tmp_path) -> bool:
    """Whether a real ``LoggerAgent``'s group commit sends the new durable seq at once."""
    cfg = config_mod.load().with_overrides(durability=policy)
    lg = dataclasses.replace(cfg.logger, input_port=0, archive_port=0, admin_port=0)
    agent = LoggerAgent(cfg.with_overrides(logger=lg), tmp_path / policy)
    sent: list[tuple[int, int]] = []
    agent.publish_watermark = lambda: sent.append((agent.wal.written_seq, agent.wal.durable_seq))
    try:
        agent.wal.append(1, b"\0" * 8)
        agent.commit()
    finally:
        agent.close()
    assert sent[0] == (1, 0)  # the written seq always leaves before the fdatasync
    return (1, 1) in sent


@pytest.mark.parametrize("policy", POLICIES)
def test_gate_engines_and_logger_agree_with_the_rule(policy: str, tmp_path) -> None:
    waits = durability.waits_for(policy)
    assert gate_waits(policy) == waits
    # an engine status the gate waits for goes out every turn; the others are paced
    assert (status_pace_ns(policy, primary=False) == 0) == waits.secondary_applied
    assert status_pace_ns(policy, primary=True) == STATUS_PACE_NS
    # a durable seq the gate waits for leaves right after the fdatasync
    assert logger_sends_durable_after_sync(policy, tmp_path) == waits.durable
