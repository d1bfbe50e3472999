"""The engine's role changes, in process: promotion re-emits after the tracker's seq, muting drops.

Real ``EngineAgent`` objects (their sockets bound on loopback, nothing sent
anywhere that matters) fed sequenced messages through ``apply``, as the duty
loop would; no process is started.
"""

from __future__ import annotations

import time

import pytest

from reference_impl import config
from reference_impl.core import output_codec, sequenced_codec
from reference_impl.core.messages import LeaderChange, NewOrder, Sequenced, Side
from reference_impl.core.output_sessions import session_for
from reference_impl.engine.node import EngineAgent

OFFSET = -14000  #: only the engines' own ports (3101-3312) are bound here
BASE = b"CRUCOUT001"


@pytest.fixture
def cfg() -> config.ClusterConfig:
    return config.load().shifted(OFFSET)


def feed(agent: EngineAgent, seq: int, body, account: str = "DEMO1") -> None:
    agent.apply(seq, sequenced_codec.encode(Sequenced(seq, time.time_ns(), 1, 1, seq, account, body)))


def order(seq: int) -> NewOrder:
    return NewOrder(f"t{seq}", "ACME", Side.BUY if seq % 2 else Side.SELL, 10, 10_000)


def test_promotion_re_emits_whole_every_input_after_the_last_fully_emitted(cfg) -> None:
    agent = EngineAgent(cfg, 2, "secondary")
    try:
        for seq in range(1, 5):
            feed(agent, seq, order(seq), f"DEMO{seq}")
        assert agent.pending == [] and len(agent.reemit) == 4
        agent.tracker.observe(2, 0, 1, 1)  # the old primary's last complete input was 2
        agent.observed.ring.put(1, b"old-1")
        agent.observed.ring.put(2, b"old-2")
        feed(agent, 5, LeaderChange(2, 2), "")
        assert agent.primary and agent.role == "primary" and agent.engine.epoch == 2
        records = [output_codec.decode(m) for m in agent.pending]
        assert sorted({r.output.seq for r in records}) == [3, 4]
        assert {r.epoch for r in records} == {2}
        for seq in (3, 4):  # whole: every index of the input
            mine = [r for r in records if r.output.seq == seq]
            assert [r.index for r in mine] == list(range(mine[0].count))
        assert agent.out_session == session_for(BASE, 2)
        assert agent.old_end == (BASE, 3) and set(agent.served) == {BASE, session_for(BASE, 2)}
        assert agent.promotion["primary_emitted_seq"] == 2
        assert agent.promotion["reemitted_inputs"] == 2 and agent.observed is None
        feed(agent, 6, order(6), "DEMO2")  # then it publishes as usual, in the new epoch
        assert output_codec.decode(agent.pending[-1]).output.seq == 6
    finally:
        agent.close()


def test_a_deposed_primary_drops_what_it_had_not_sent_and_follows_the_new_session(cfg) -> None:
    agent = EngineAgent(cfg, 1, "primary")
    try:
        feed(agent, 1, order(1))
        assert agent.pending  # decided, not yet published: the turn is not over
        feed(agent, 2, LeaderChange(2, 2), "")
        assert agent.pending == [] and not agent.publishing and agent.role == "secondary"
        assert agent.observed is not None and agent.observed.session == session_for(BASE, 2)
        assert agent.counters["mutes"] == 1 and agent.output_sock is not None
        feed(agent, 3, order(3))
        assert agent.pending == [] and len(agent.reemit) == 1  # kept, for a later promotion
    finally:
        agent.close()
