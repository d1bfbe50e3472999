"""The arbiter process: ``python -m reference_impl.arbiter --config F --run-dir D``.

This module is the duty loop; ``main`` parses the command line and sets the
exit status. One arbiter, no etcd (a single point of failure, docs/arbiter.md);
the arbiter pair wraps this same loop later.

Theory of operation
-------------------
The decisions are ``core.failover_detector.FailoverDetector``'s; this loop
feeds it and carries out its actions. One single-threaded duty loop over
two sockets:

- the output stream subscription (``arbiter.output_port``, or the group):
  every MoldUDP64 packet on it, data or idle heartbeat, is ``on_output``
  (the primary spoke). The session is not checked: a new epoch's primary
  may publish under another session, and before a promotion only the
  primary publishes; after one, a resumed zombie's packets could mask a
  silence of the new primary, which matters once there is a candidate left
  to promote to (a rejoin, a later part) and is why the check by epoch's
  session belongs there. The primary sends an
  idle heartbeat every ``cluster.output_heartbeat_us``, which the config
  holds to at most half of ``arbiter.stall_ms``.
- ``arbiter.admin_port``: ``health``, ``digest`` (state, epoch, primary,
  candidates, the last suspicion, confirmation, promotion request and
  sequenced-reply stamps in monotonic ns, counters).

After every wake-up the loop ticks the detector. ``PROBE`` reads the
primary's ``/proc/<pid>/stat`` (``edges.proc_probe``, opened at start from
the launcher's pidfile and checked against the recorded start time; an
engine the pidfile does not name, or names with another start time, cannot
be confirmed dead, so it answers ``ALIVE`` and only the stall timeout can
promote away from it). ``Promote(epoch, engine)`` sends ``leader_change
EPOCH ENGINE`` to the sequencer's admin port and waits for the reply (the
loop has nothing better to do meanwhile): ``{"seq": N}`` means sequenced
(``on_promoted``); a stale-epoch refusal means another promotion took that
epoch (``on_refused``, with the sequencer's current epoch), unless a retry
after a lost reply finds the sequencer already at our epoch. At start the
epoch comes from the sequencer's ``digest`` and the primary from the
config's roles.

The loop's one blocking wait is ``wait``: ``Inbox.poll_until`` on the
node's Inbox (``transport.node_inbox``), which with ``cluster.fine_timers``
wakes at a deadline to within tens of µs (a timerfd, timer slack 1 ns)
instead of epoll's whole milliseconds; without them a 200 µs silence is
noticed only about a millisecond late.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from pathlib import Path

import psutil

from reference_impl.config import ClusterConfig
from reference_impl.core.failover_detector import PROBE, Action, FailoverDetector, ProbeAnswer, Promote
from reference_impl.edges import process, transport
from reference_impl.edges.proc_probe import ProcProbe

POLL_MAX_NS = 50_000_000
SEQUENCER_TIMEOUT_S = 0.2  #: one leader_change attempt
PROMOTE_ATTEMPTS = 3
START_WAIT_S = 10.0  #: how long start-up waits for the sequencer's epoch
MOLD_HEADER = 20  #: session, seq, count: the least a MoldUDP64 packet holds

log = logging.getLogger("crucible.arbiter")


class SequencerUnreachable(RuntimeError):
    """The sequencer's admin port never answered ``digest`` at start: no epoch to build on."""


def wait(inbox: transport.Inbox, deadline_ns: int | None) -> list[tuple[socket.socket, bytes, tuple]]:
    """The loop's one blocking wait: until a datagram, or ``deadline_ns`` (at most ``POLL_MAX_NS`` away)."""
    latest = time.monotonic_ns() + POLL_MAX_NS
    return inbox.poll_until(latest if deadline_ns is None else min(deadline_ns, latest))


def engine_probes(cfg: ClusterConfig, pidfile: Path) -> dict[int, ProcProbe]:
    """A probe per engine the pidfile names whose process is still the recorded one."""
    try:
        components = json.loads(pidfile.read_text()).get("components", {})
    except (OSError, ValueError) as exc:
        log.warning("no engine pids (%s): deaths cannot be confirmed, only stalls", exc)
        return {}
    probes = {}
    for e in cfg.engines:
        entry = components.get(f"engine-{e.id}")
        if not entry:
            continue
        probe = ProcProbe(entry["pid"])  # open first: the file is bound to the process we check next
        try:
            same = abs(psutil.Process(entry["pid"]).create_time() - entry["create_time"]) < 0.05
        except psutil.Error:
            same = False
        if same:
            probes[e.id] = probe
        else:
            probe.close()
            log.warning("engine %d: pid %d is not the recorded process", e.id, entry["pid"])
    return probes


class ArbiterAgent:
    """The duty cycle's state: detector, probes, sockets, stamps, counters."""

    def __init__(self, cfg: ClusterConfig, pidfile: Path) -> None:
        self.cfg = cfg
        self.sequencer_port = cfg.sequencer.admin_port
        primary = next(e.id for e in cfg.engines if e.role == "primary")
        secondaries = tuple(e.id for e in cfg.engines if e.role != "primary")
        self.detector = FailoverDetector(
            primary, secondaries, self._start_epoch(), time.monotonic_ns(),
            silence_ns=cfg.arbiter.silence_us * 1_000, stall_ns=cfg.arbiter.stall_ms * 1_000_000)
        self.probes = engine_probes(cfg, pidfile)
        self.output_sock = transport.stream_subscriber(cfg, cfg.output_stream, cfg.arbiter.output_port)
        self.admin_sock = transport.bind_udp(cfg.arbiter.admin_port)
        self.inbox = transport.node_inbox(cfg, [self.output_sock, self.admin_sock])
        self.sequenced_ns = 0  #: when the sequencer's reply to our LeaderChange arrived
        self.leader_change_seq = 0
        self.counters = {"output_packets": 0, "foreign_packets": 0, "suspicions": 0, "probes": 0,
                         "probe_alive": 0, "probe_exiting": 0, "probe_gone": 0, "promotions": 0,
                         "promotion_attempts": 0, "refused": 0}

    def _start_epoch(self) -> int:
        deadline = time.monotonic() + START_WAIT_S
        while True:
            try:
                return int(process.admin_query(self.sequencer_port, "digest", 0.2)["epoch"])
            except (OSError, ValueError, KeyError) as exc:
                if time.monotonic() >= deadline:
                    raise SequencerUnreachable(
                        f"sequencer admin port {self.sequencer_port}: no digest ({exc})") from None
                time.sleep(0.05)

    # ------------------------------------------------------------- actions

    def act(self, action: Action) -> None:
        d = self.detector
        if action is PROBE:
            answer = self.probe(d.primary)
            action = d.on_probe(answer, time.monotonic_ns())
            if answer is not ProbeAnswer.ALIVE:
                log.warning("engine %d %s: confirmed dead", d.primary, answer.value)
        if isinstance(action, Promote):
            self.promote(action)

    def probe(self, engine_id: int) -> ProbeAnswer:
        self.counters["probes"] += 1
        probe = self.probes.get(engine_id)
        answer = probe.check() if probe is not None else ProbeAnswer.ALIVE
        self.counters[f"probe_{answer.value}"] += 1
        return answer

    def promote(self, action: Promote) -> None:
        d = self.detector
        command = f"leader_change {action.epoch} {action.engine_id}"
        log.warning("promoting engine %d to epoch %d (primary %d silent %.3f ms)", action.engine_id,
                    action.epoch, d.primary, (d.promoted_ns - d.last_output_ns) / 1e6)
        for attempt in range(PROMOTE_ATTEMPTS):
            self.counters["promotion_attempts"] += 1
            try:
                reply = process.admin_query(self.sequencer_port, command, SEQUENCER_TIMEOUT_S)
            except (OSError, ValueError) as exc:
                log.warning("leader_change attempt %d: %s", attempt + 1, exc)
                continue
            now = time.monotonic_ns()
            if "seq" in reply:
                self.sequenced_ns, self.leader_change_seq = now, int(reply["seq"])
                self.counters["promotions"] += 1
                d.on_promoted(action.epoch, action.engine_id, now)
                log.warning("LeaderChange(%d, %d) sequenced at seq %d", action.epoch,
                            action.engine_id, self.leader_change_seq)
                return
            current = self._sequencer_epoch()
            if attempt > 0 and current == action.epoch:  # an earlier attempt's reply was lost
                self.sequenced_ns = now
                self.counters["promotions"] += 1
                d.on_promoted(action.epoch, action.engine_id, now)
                return
            log.warning("leader_change refused: %s", reply.get("error"))
            self.counters["refused"] += 1
            d.on_refused(current if current is not None else action.epoch)
            return
        log.error("sequencer did not answer leader_change; standing down")
        self.counters["refused"] += 1
        d.on_refused(action.epoch)

    def _sequencer_epoch(self) -> int | None:
        try:
            return int(process.admin_query(self.sequencer_port, "digest", SEQUENCER_TIMEOUT_S)["epoch"])
        except (OSError, ValueError, KeyError):
            return None

    # ------------------------------------------------------------- admin

    def on_admin(self, command: str) -> dict:
        if command == "health":
            return {"ok": True, "component": "arbiter"}
        if command == "digest":
            d = self.detector
            return {"state": d.state.value, "epoch": d.epoch, "primary": d.primary,
                    "candidates": list(d.candidates), "silence_ns": d.silence_ns,
                    "stall_ns": d.stall_ns, "last_output_ns": d.last_output_ns,
                    "suspected_ns": d.suspected_ns, "confirmed_ns": d.confirmed_ns,
                    "promoted_ns": d.promoted_ns, "sequenced_ns": self.sequenced_ns,
                    "leader_change_seq": self.leader_change_seq,
                    "probed_engines": sorted(self.probes), "counters": dict(self.counters)}
        return {"error": f"unknown command {command!r} (health, digest)"}

    # ------------------------------------------------------------ duty loop

    def run(self, stop: process.StopFlag) -> None:
        d, output_sock = self.detector, self.output_sock
        counters = self.counters
        while not stop.is_set:
            batch = wait(self.inbox, d.wake_ns())
            now = time.monotonic_ns()
            for sock, data, addr in batch:
                if sock is output_sock:
                    if len(data) >= MOLD_HEADER:
                        counters["output_packets"] += 1
                        d.on_output(now)
                    else:
                        counters["foreign_packets"] += 1
                else:
                    process.answer_admin(sock, data, addr, self.on_admin)
            action = d.on_tick(now)
            if action is PROBE and d.suspected_ns == now:
                counters["suspicions"] += 1
            if action is not None:
                self.act(action)

    def close(self) -> None:
        self.inbox.close()
        self.output_sock.close()
        self.admin_sock.close()
        for probe in self.probes.values():
            probe.close()
