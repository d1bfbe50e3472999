"""The engine's admin replies, on a stand-in agent: shapes, paging, unknown verbs."""

from __future__ import annotations

import collections
from types import SimpleNamespace

from reference_impl import core_build
from reference_impl.engine import admin as engine_admin


def _agent(checkpoints: int) -> SimpleNamespace:
    engine = SimpleNamespace(last_applied_seq=12, epoch=1, state_hash=lambda: "ab" * 32)
    receiver = SimpleNamespace(counters=lambda: {"delivered": 12},
                               missing=lambda: [[20 + 2 * i, 1] for i in range(30)])
    return SimpleNamespace(
        id=2, role="secondary", engine=engine, receiver=receiver,
        tracker=SimpleNamespace(primary_emitted_seq=11), published_seq=0,
        checkpoints=collections.deque((s, f"h{s}") for s in range(1, checkpoints + 1)),
        counters={"packets": 3}, out_session=b"CRUCOUT001", leader_id=1, promotion=None,
        observed=None, reemit=[])


def test_health_and_digest() -> None:
    agent = _agent(8)
    assert engine_admin.on_admin(agent, "health") == {
        "ok": True, "component": "engine2", "role": "secondary",
        "core_build": core_build.core_build()}
    digest = engine_admin.on_admin(agent, "digest")
    assert digest["applied_seq"] == 12 and digest["state_hash"] == "ab" * 32
    assert digest["checkpoints"] == [[s, f"h{s}"] for s in range(4, 9)]
    assert len(digest["missing"]) == engine_admin.DIGEST_HOLES
    assert digest["counters"] == {"packets": 3} and digest["counters"] is not agent.counters


def test_checkpoints_page_from_after_seq() -> None:
    agent = _agent(engine_admin.CHECKPOINTS_PER_REPLY + 10)
    first = engine_admin.on_admin(agent, "checkpoints")
    assert len(first["checkpoints"]) == engine_admin.CHECKPOINTS_PER_REPLY
    assert first["next_after"] == engine_admin.CHECKPOINTS_PER_REPLY
    rest = engine_admin.on_admin(agent, f"checkpoints {first['next_after']}")
    assert [s for s, _ in rest["checkpoints"]] == list(range(501, 511))
    assert rest["next_after"] is None


def test_unknown_commands_are_named() -> None:
    for command in ("", "stages", "checkpoints 1 2"):
        assert "unknown command" in engine_admin.on_admin(_agent(0), command)["error"]
