"""The arbiter's state machine, driven by literal timelines and by hypothesis.

Properties (each fails when its rule in ``core.failover_detector`` breaks):
output within every silence never causes a probe or a promotion; a promotion
names exactly epoch + 1 and a candidate secondary; at most one promotion per
epoch; an alive-but-silent primary is never promoted before the stall timeout.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference_impl.core.failover_detector import (
    NOTHING,
    PROBE,
    FailoverDetector,
    ProbeAnswer,
    Promote,
    State,
)

US = 1_000
SILENCE, STALL = 200 * US, 5_000 * US


def detector(secondaries=(2,), now=0) -> FailoverDetector:
    return FailoverDetector(1, secondaries, epoch=1, now_ns=now, silence_ns=SILENCE, stall_ns=STALL)


def test_kill_is_suspected_confirmed_and_promoted():
    d = detector()
    d.on_output(1_000)
    assert d.wake_ns() == 1_000 + SILENCE
    assert d.on_tick(1_000 + SILENCE - 1) is NOTHING
    assert d.on_tick(1_000 + SILENCE) is PROBE and d.state is State.SUSPECT
    assert d.on_probe(ProbeAnswer.EXITING, 1_000 + SILENCE + 5) == Promote(2, 2)
    assert (d.suspected_ns, d.confirmed_ns, d.promoted_ns) == (
        1_000 + SILENCE, 1_000 + SILENCE + 5, 1_000 + SILENCE + 5)
    assert d.on_tick(10 * STALL) is NOTHING  # one promotion in flight at a time
    d.on_promoted(2, 2, 1_000 + SILENCE + 50)
    assert (d.epoch, d.primary, d.state) == (2, 2, State.NO_SECONDARY)
    assert d.wake_ns() is None and d.on_tick(100 * STALL) is NOTHING


def test_stall_waits_for_the_stall_timeout_and_reprobes():
    d = detector()
    assert d.on_tick(SILENCE) is PROBE
    assert d.on_probe(ProbeAnswer.ALIVE, SILENCE) is NOTHING and d.state is State.STALLED
    assert d.wake_ns() == 2 * SILENCE
    assert d.on_tick(2 * SILENCE) is PROBE  # a kill during the stall is still confirmed fast
    assert d.on_probe(ProbeAnswer.ALIVE, 2 * SILENCE) is NOTHING
    d.on_output(3 * SILENCE)  # it spoke again: back to watching
    assert d.state is State.WATCHING
    assert d.on_tick(4 * SILENCE) is PROBE
    d.on_probe(ProbeAnswer.ALIVE, 4 * SILENCE)
    t = 4 * SILENCE
    while True:
        t += SILENCE // 2
        action = d.on_tick(t)
        assert action in (NOTHING, PROBE)  # a promotion always follows a fresh probe
        if action is PROBE:
            action = d.on_probe(ProbeAnswer.ALIVE, t)
            if isinstance(action, Promote):
                break
    assert action == Promote(2, 2) and t - 3 * SILENCE >= STALL and d.confirmed_ns == 0


def test_promotion_with_two_secondaries_leaves_one_candidate():
    d = detector(secondaries=(3, 2))
    d.on_tick(SILENCE)
    assert d.on_probe(ProbeAnswer.GONE, SILENCE) == Promote(2, 3)
    d.on_promoted(2, 3, SILENCE + 1)
    assert (d.primary, d.candidates, d.state) == (3, (2,), State.WATCHING)
    assert d.on_tick(SILENCE + 1 + SILENCE) is PROBE  # the new primary is watched in turn
    assert d.on_probe(ProbeAnswer.EXITING, 2 * SILENCE + 1) == Promote(3, 2)


def test_refused_promotion_stands_down():
    d = detector()
    d.on_tick(SILENCE)
    d.on_probe(ProbeAnswer.EXITING, SILENCE)
    d.on_refused(2)
    assert (d.state, d.epoch) == (State.SUPERSEDED, 2)
    assert d.on_tick(100 * STALL) is NOTHING and d.wake_ns() is None


def test_unasked_answers_and_promotions_are_refused():
    d = detector()
    assert d.on_probe(ProbeAnswer.EXITING, 5) is NOTHING  # nobody asked: no promotion
    with pytest.raises(ValueError):
        d.on_promoted(2, 2, 5)
    with pytest.raises(ValueError):
        FailoverDetector(1, (2,), 1, 0, silence_ns=STALL, stall_ns=SILENCE)
    with pytest.raises(ValueError):
        FailoverDetector(1, (1,), 1, 0)


# ------------------------------------------------------------------ properties

answers = st.sampled_from(list(ProbeAnswer))
#: an event: ("out" | "tick", gap since the previous event in ns) or ("probe", answer)
events = st.lists(st.one_of(
    st.tuples(st.sampled_from(["out", "tick"]), st.integers(0, 3 * STALL // 2)),
    st.tuples(st.just("probe"), answers)), max_size=80)


def run(evts, secondaries=(2, 3), accept=True):
    """Feed ``evts``; the node's duties done as the arbiter does them. (time, action, last output)."""
    d = FailoverDetector(1, secondaries, epoch=1, now_ns=0, silence_ns=SILENCE, stall_ns=STALL)
    now, out = 0, []
    for kind, arg in evts:
        if kind == "probe":
            action = d.on_probe(arg, now)
        else:
            now += arg
            action = d.on_output(now) if kind == "out" else d.on_tick(now)
        out.append((now, action, d.last_output_ns, d.epoch, d.candidates))
        if isinstance(action, Promote) and accept:
            d.on_promoted(action.epoch, action.engine_id, now)
    return out


@given(st.lists(st.tuples(st.integers(0, SILENCE - 1), st.integers(0, SILENCE - 1), answers),
                max_size=80))
def test_output_within_the_silence_never_probes_or_promotes(steps):
    d = detector()
    now = 0
    for gap, tick_at, answer in steps:
        now += gap
        d.on_output(now)
        assert d.on_probe(answer, now + tick_at) is NOTHING
        assert d.on_tick(now + tick_at) is NOTHING
        assert d.state is State.WATCHING


@settings(max_examples=300)
@given(events)
def test_a_promotion_names_the_next_epoch_and_a_candidate_at_most_once_per_epoch(evts):
    promotions = [(a, epoch, cands) for _, a, _, epoch, cands in run(evts, accept=False)
                  if isinstance(a, Promote)]
    assert len(promotions) <= 1  # unanswered: no second request for the same epoch
    for action, _, _ in promotions:
        assert action.epoch == 2 and action.engine_id in (2, 3)
    seen = {}
    for now, a, _, epoch_after, _ in run(evts):
        if isinstance(a, Promote):
            assert a.epoch not in seen
            seen[a.epoch] = a.engine_id
            assert a.engine_id != 1
    assert sorted(seen) == list(range(2, 2 + len(seen)))
    assert len(set(seen.values())) == len(seen)  # an engine is promoted to at most once


def run_probing(evts, answer_of):
    """Like ``run``, answering every PROBE at once with ``answer_of(now)``, as the node does."""
    d = FailoverDetector(1, (2,), epoch=1, now_ns=0, silence_ns=SILENCE, stall_ns=STALL)
    now, out = 0, []
    for kind, arg in evts:
        if kind == "probe":
            continue
        now += arg
        action = d.on_output(now) if kind == "out" else d.on_tick(now)
        if action is PROBE:
            action = d.on_probe(answer_of(now), now)
        out.append((now, action, d.last_output_ns))
        if isinstance(action, Promote):
            d.on_promoted(action.epoch, action.engine_id, now)
    return out


@settings(max_examples=300)
@given(events)
def test_an_alive_primary_answering_every_probe_is_promoted_only_after_the_stall(evts):
    for now, action, last_output in run_probing(evts, lambda now: ProbeAnswer.ALIVE):
        if isinstance(action, Promote):
            assert now - last_output >= STALL


@settings(max_examples=300)
@given(events.map(lambda es: [e if e[0] != "probe" else ("probe", ProbeAnswer.ALIVE) for e in es]))
def test_an_alive_primary_is_never_promoted_before_the_stall_timeout(evts):
    for now, action, last_output, _, _ in run(evts, secondaries=(2,)):
        if isinstance(action, Promote):
            assert now - last_output >= STALL
