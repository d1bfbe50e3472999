"""The engine node's admin commands: ``health``, ``digest``, ``checkpoints [AFTER_SEQ]``.

Apart from ``node`` because answering an operator or the harness only
reads the agent's state and is not part of the per-message path (it still
runs in the duty loop, between turns: a ``digest`` hashes the whole state,
about 3 ms on the standard books); the reply
shapes and the limits that keep each reply in one datagram live here
(docs/engine-node.md, "Admin commands").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reference_impl.core_build import core_build

if TYPE_CHECKING:
    from reference_impl.engine.node import EngineAgent

CHECKPOINTS_PER_REPLY = 500  #: keeps a ``checkpoints`` reply well under a UDP datagram
DIGEST_CHECKPOINTS = 5
DIGEST_HOLES = 20  #: the first holes of the input stream, in a digest


def on_admin(agent: EngineAgent, command: str) -> dict:
    """The reply to one admin command, read from ``agent``."""
    words = command.split()
    verb = words[0] if words else ""
    if verb == "health":
        return {"ok": True, "component": f"engine{agent.id}", "role": agent.role,
                "core_build": core_build()}
    if verb == "digest":
        engine = agent.engine
        return {"component": f"engine{agent.id}", "role": agent.role,
                "applied_seq": engine.last_applied_seq,
                "state_hash": engine.state_hash(), "epoch": engine.epoch,
                "primary_emitted_seq": agent.tracker.primary_emitted_seq,
                "published_seq": agent.published_seq,
                "output_session": agent.out_session.decode("ascii"),
                "leader": agent.leader_id, "promotion": agent.promotion,
                "observed": None if agent.observed is None else {
                    "session": agent.observed.session.decode("ascii"),
                    "head": agent.observed.ring.head, **agent.observed.counters},
                "reemit_kept": len(agent.reemit),
                "checkpoints": [list(c) for c in list(agent.checkpoints)[-DIGEST_CHECKPOINTS:]],
                "receiver": agent.receiver.counters(),
                "missing": agent.receiver.missing()[:DIGEST_HOLES],
                "counters": dict(agent.counters)}
    if verb == "checkpoints" and len(words) <= 2:
        after = int(words[1]) if len(words) == 2 else 0
        newer = [list(c) for c in agent.checkpoints if c[0] > after]
        page = newer[:CHECKPOINTS_PER_REPLY]
        more = len(newer) > len(page)
        return {"checkpoints": page, "next_after": page[-1][0] if more else None}
    return {"error": f"unknown command {command!r} (health, digest, checkpoints [AFTER_SEQ])"}
