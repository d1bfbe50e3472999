"""The test-only tie-break variant really breaks determinism (else detection tests prove nothing)."""

from __future__ import annotations

import random

from harness.workload import OrderFlow, WorkloadSpec
from reference_impl.core.engine import Engine
from reference_impl.engine.broken_tiebreak import SaltedTiebreakEngine


def run(engine: Engine) -> tuple[list, str]:
    outputs = []
    for msg in OrderFlow(WorkloadSpec(), random.Random(7)).sequenced(3000):
        outputs.extend(engine.apply(msg))
    return outputs, engine.state_hash()


def test_same_salt_agrees_and_different_salts_diverge():
    a = run(SaltedTiebreakEngine(salt=1))
    assert a == run(SaltedTiebreakEngine(salt=1))
    assert a[1] != run(SaltedTiebreakEngine(salt=2))[1]
    assert run(Engine())[1] not in (a[1],)
