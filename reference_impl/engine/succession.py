"""The engine's role changes: promotion (re-emission, a new output session) and muting.

Theory of operation
-------------------
The role follows the input stream, never a command: every engine applies the
same sequenced ``LeaderChange(epoch, engine_id)`` at the same seq ``L``, and
``on_leader_change`` (called by the node right after ``Engine.apply``, so the
engine's epoch is already the new one) decides, from the engine id alone:

- **Promotion** (it names this engine, which was muted): the node becomes the
  publisher of the new epoch's output session (``core.output_sessions``),
  numbered from seq 1. Into it go first the outputs of every input after the
  old primary's last fully emitted one (``EmittedTracker.primary_emitted_seq``,
  ``P``), taken from ``core.reemit_ring.ReemitRing`` and stamped with the new
  epoch (an input partly sent is re-emitted whole), then the outputs of
  ``L + 1`` onwards as usual. The old session's messages it observed while
  muted (``ObservedStream.ring``: in order and gap-filled, so they are exactly
  the old stream's seqs ``1 .. end - 1``) stay served on this engine's
  retransmit port, and an end-of-session packet at ``end`` goes out right
  after the first outputs and then every ``heartbeat_ms``
  (``publish_old_end``), so a gateway learns where the old stream ends and
  re-requests what it missed of it from here.
  ``P`` is the last input complete within that observed prefix, so whatever
  the old primary published after ``end - 1`` is re-emitted.
- **Muting** (it names another engine while this one publishes: a deposed
  primary, a zombie once it resumes): the node stops publishing and follows
  the new session as a secondary (``ObservedStream``), keeping its outputs in
  a fresh ``ReemitRing`` so that it could be promoted again.
- A secondary that sees another secondary promoted follows the new session.

The EngineStatus after a role change goes out in the same turn (``forced``),
so gateways route re-requests to the new primary at once. The inbox is
rebuilt on the new sockets at the end of that turn (``sockets_changed``),
after the outputs: building one costs about 100 µs.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import TYPE_CHECKING

from reference_impl.config import HOST
from reference_impl.core import mold_codec, output_codec
from reference_impl.core.messages import LeaderChange, Sequenced
from reference_impl.core.output_codec import OutputRecord
from reference_impl.core.output_sessions import session_for
from reference_impl.core.output_tracker import EmittedTracker
from reference_impl.core.reemit_ring import ReemitRing
from reference_impl.edges import transport
from reference_impl.edges.mold_intake import MoldIntake
from reference_impl.edges.retransmit_ring import RetransmitRing, answer_rerequest

if TYPE_CHECKING:
    from reference_impl.engine.node import EngineAgent

log = logging.getLogger("crucible.engine")


class ObservedStream:
    """A muted engine's copy of the current output session, in order and gap-filled.

    The intake re-requests its own gaps from the current primary's retransmit
    port; every delivered message goes into ``ring`` (served after a
    promotion) and its header into the tracker.
    """

    __slots__ = ("session", "ring", "intake", "sock", "tracker", "counters")

    def __init__(self, session: bytes, capacity: int, leader_addr: tuple[str, int],
                 tracker: EmittedTracker) -> None:
        self.session = session
        self.ring = RetransmitRing(capacity)
        self.tracker = tracker
        self.counters: dict[str, int] = {}
        self.sock = transport.bind_udp(0)
        self.intake = MoldIntake(session, self.sock, lambda seq, count: leader_addr,
                                 self.counters, join_within=capacity, log=log,
                                 stream="output stream")

    def on_packet(self, data: bytes, now_ns: int) -> None:
        unpack = output_codec.HEADER.unpack_from
        size = output_codec.HEADER.size
        put, observe = self.ring.put, self.tracker.observe
        for seq, message in self.intake.on_packet(data, now_ns):
            put(seq, message)
            if len(message) >= size:
                input_seq, index, count, epoch = unpack(message)[:4]
                observe(input_seq, index, count, epoch)

    def on_tick(self, now_ns: int) -> None:
        self.intake.on_tick(now_ns)

    @property
    def next_wake_ns(self) -> int | None:
        receiver = self.intake.receiver
        return None if receiver is None else receiver.next_wake_ns

    def close(self) -> None:
        self.sock.close()


def leader_addr(agent: EngineAgent, engine_id: int) -> tuple[str, int]:
    return HOST, agent.cfg.engine(engine_id).retransmit_port


def observe(agent: EngineAgent) -> None:
    """Follow the current epoch's output session as a muted engine (sockets: see ``rebuild``)."""
    if agent.observed is not None:
        agent.observed.close()
    session = session_for(agent.base_session, agent.engine.epoch)
    agent.observed = ObservedStream(session, agent.cfg.capacity,
                                    leader_addr(agent, agent.leader_id), agent.tracker)


def on_leader_change(agent: EngineAgent, msg: Sequenced) -> None:
    """The role ``msg``'s LeaderChange gives this engine, just applied (see the module doc)."""
    body = msg.body
    assert type(body) is LeaderChange
    agent.leader_id = body.engine_id
    agent.tracker.raise_epoch(agent.engine.epoch)
    if body.engine_id == agent.id:
        if not agent.primary:
            promote(agent, msg.seq, msg.ts - agent.clock_offset)
        return
    if agent.primary:
        mute(agent)
    else:
        observe(agent)
        agent.sockets_changed = True
    agent.status_now = True


def promote(agent: EngineAgent, seq: int, sequenced_ns: int) -> None:
    """Become the publisher of the new epoch: re-emit after ``P``, serve the old session."""
    start_ns = time.monotonic_ns()
    observed = agent.observed
    agent.primary = agent.publishing = True
    agent.role = "primary"
    old_session = agent.out_session
    agent.out_session = session_for(agent.base_session, agent.engine.epoch)
    if agent.ring.head:  # only a broken (unmuted) secondary has published into it
        agent.ring = RetransmitRing(agent.cfg.capacity)
    agent.published_seq = 0
    agent.served = {agent.out_session: agent.ring}
    if observed is not None:
        old_session = observed.session
        agent.served[old_session] = observed.ring
        agent.old_end = (old_session, observed.ring.head + 1)
        agent.observed = None
        observed.close()
        agent.sockets_changed = True
    emitted = agent.tracker.primary_emitted_seq
    ring = agent.reemit
    if not ring.complete_after(emitted):
        agent.counters["reemit_incomplete"] += 1
        log.error("promotion at seq %d: outputs after input %d fell out of the re-emission "
                  "ring (capacity %d); some answers are lost", seq, emitted, ring.capacity)
    inputs = outputs = 0
    epoch, append, encode = agent.engine.epoch, agent.pending.append, output_codec.encode
    for d in ring.after(emitted):
        count = len(d.outputs)
        for index, out in enumerate(d.outputs):
            append(encode(OutputRecord(index, count, epoch, d.gateway_id, d.request_seq, d.ts,
                                       d.sequenced_ns, d.decided_ns, out)))
        inputs += 1
        outputs += count
    agent.reemit = ReemitRing(agent.cfg.capacity)
    agent.counters["promotions"] += 1
    agent.counters["reemitted_inputs"] += inputs
    agent.counters["reemitted_outputs"] += outputs
    agent.promotion = {"leader_change_seq": seq, "epoch": epoch, "primary_emitted_seq": emitted,
                       "leader_change_sequenced_ns": sequenced_ns,
                       "applied_ns": start_ns, "promoted_ns": time.monotonic_ns(),
                       "first_packet_ns": 0,
                       "reemitted_inputs": inputs, "reemitted_outputs": outputs,
                       "old_session_end": agent.old_end[1] if agent.old_end else 0}
    agent.pacer = agent.new_pacer()
    agent.status_now = True
    agent.last_old_end_ns = 0  # the old session's end goes out this turn, after the outputs


def mute(agent: EngineAgent) -> None:
    """Deposed: stop publishing and follow the new primary's session."""
    agent.primary = False
    agent.publishing = agent.cfg.broken("unmuted_secondary")
    agent.role = "secondary"
    agent.pending.clear()  # a deposed primary's outputs count for nothing
    agent.old_end = None
    agent.reemit = ReemitRing(agent.cfg.capacity)
    agent.ring = RetransmitRing(agent.cfg.capacity)  # allocated now, not when promoted again
    agent.counters["mutes"] += 1
    agent.pacer = agent.new_pacer()
    observe(agent)
    if agent.output_sock is None:
        agent.output_sock = transport.stream_subscriber(
            agent.cfg, agent.cfg.output_stream, agent.cfg.engine(agent.id).output_port)
    agent.sockets_changed = True
    log.info("muted at epoch %d: engine %d is primary", agent.engine.epoch, agent.leader_id)


def publish_old_end(agent: EngineAgent, now_ns: int) -> None:
    """The old session's end-of-session packet (where its last seq is), to every subscriber."""
    if agent.old_end is None or agent.publisher is None:
        return
    session, end = agent.old_end
    agent.publisher.send(mold_codec.encode_end_of_session(session, end))
    agent.last_old_end_ns = now_ns


def serve_rerequest(agent: EngineAgent, sock: socket.socket, data: bytes, addr: tuple) -> None:
    """Answer a re-request of any session this engine serves (its own, the one it took over)."""
    session = data[:mold_codec.SESSION_LEN]
    ring = agent.served.get(session)
    if ring is None:
        agent.counters["retransmit_requests"] += 1
        agent.counters["bad_retransmit_requests"] += 1
        return
    answer_rerequest(sock, data, addr, session,
                     lambda s, count: ring.serve_request(session, s, count, agent.max_payload),
                     agent.counters, "retransmit")
