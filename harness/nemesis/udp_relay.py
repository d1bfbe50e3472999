"""Fault-injecting UDP relay for the bus: drop, duplicate, reorder and delay.

The kernel here has no netem, so bus faults come from a user-space relay that
sits between the sequencer and the input-stream subscribers (unicast mode):
it listens on one port per subscriber and forwards what arrives to that
subscriber's real port, carrying out a seeded plan (``udp_plan``). Only the
data path goes through it: MoldUDP64 re-requests travel from each
subscriber's recovery socket straight to ``sequencer.retransmit_port`` or
``logger.archive_port`` and come back to the requester's address, so gap
fill always works while the relay misbehaves.

The relay knows ports only; wiring the reference cluster through it (the
sequencer's config pointed at the relay's listen ports) is the reference
adapter's business: ``harness.sut.reference_relay.relayed``.

Two ways to run it:

- in a test or the harness, as a thread: ``UdpFaultRelay(routes, seed,
  rates).start()`` ... ``.stop()`` (returns the counts);
- as a process: ``python -m harness.nemesis.udp_relay --route 27101:17101
  --route ... --seed 7 --drop 0.01 --duplicate 0.01 --reorder 0.01`` runs
  until SIGTERM/SIGINT, then prints its counts as one JSON line (and writes
  them to ``--stats FILE``). It prints ``ready`` once every port is bound.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import selectors
import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping, Sequence

from harness.nemesis.udp_plan import LaneSchedule, RelayCounts, UdpFaultRates, iter_udp_faults

RECV_BYTES = 65535
SOCKET_BUFFER = 4 << 20
POLL_MAX_S = 0.02
_SEND_ERRORS = (errno.ECONNREFUSED, errno.ENOBUFS, errno.EAGAIN)
LOOPBACK = "127.0.0.1"

# ------------------------------------------------------------------ sockets


def _bind(port: int, host: str) -> socket.socket:
    """A non-blocking UDP listen socket with ``SOCKET_BUFFER`` each way.

    The relay's own, not the reference's ``edges.transport.bind_udp``: a
    nemesis sits between any SUT's processes, so the harness takes nothing
    from the reference's edges (and the reference nothing from the harness).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER)
        except OSError:
            pass
    sock.bind((host, port))
    sock.setblocking(False)
    return sock


class UdpFaultRelay:
    """Forwards each ``(listen_port, target_port)`` route through a seeded fault plan.

    Listen port 0 binds an ephemeral port (see ``listen_ports`` after
    ``start``). Lane ``i`` (the i-th route) plans from ``(seed, i)``.
    """

    def __init__(self, routes: Sequence[tuple[int, int]] | Mapping[int, int], seed: int = 0,
                 rates: UdpFaultRates = UdpFaultRates(), host: str = LOOPBACK,
                 max_hold_ms: float = 20.0) -> None:
        self.routes = list(routes.items() if isinstance(routes, Mapping) else routes)
        if not self.routes:
            raise ValueError("a relay needs at least one route")
        self.seed = seed
        self.rates = rates
        self.host = host
        self._generation = 0
        self._lanes = [LaneSchedule(iter_udp_faults(seed, rates, i), int(max_hold_ms * 1e6))
                       for i in range(len(self.routes))]
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -------------------------------------------------------------- lifecycle

    def bind(self) -> UdpFaultRelay:
        """Bind every listen port (raises at once if one is taken)."""
        try:
            for listen, _ in self.routes:
                self._socks.append(_bind(listen, self.host))
        except OSError:
            self.close()
            raise
        return self

    def start(self) -> UdpFaultRelay:
        """Bind and run in a daemon thread; returns self once every port is bound."""
        self.bind()
        self._thread = threading.Thread(target=self.run, args=(self._stop.is_set,),
                                        name="udp-fault-relay", daemon=True)
        self._thread.start()
        return self

    def stop(self, flush: bool = True) -> RelayCounts:
        """Stop the thread, release what is still held (``flush``), close; the total counts."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        if flush and self._socks:
            for i, lane in enumerate(self._lanes):
                self._send(i, lane.flush())
        self.close()
        return self.counts()

    def close(self) -> None:
        for s in self._socks:
            s.close()
        self._socks = []

    def __enter__(self) -> UdpFaultRelay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def listen_ports(self) -> list[int]:
        return [s.getsockname()[1] for s in self._socks]

    # -------------------------------------------------------------- control

    def set_rates(self, rates: UdpFaultRates) -> None:
        """Switch every lane to ``rates`` from its next datagram (``CLEAN`` heals the bus)."""
        with self._lock:
            self._generation += 1
            self.rates = rates
            for i, lane in enumerate(self._lanes):
                lane.replan(iter_udp_faults(self.seed, rates, i, self._generation))

    def lane_counts(self) -> list[RelayCounts]:
        with self._lock:
            return [dataclasses.replace(lane.counts) for lane in self._lanes]

    def counts(self) -> RelayCounts:
        total = RelayCounts()
        for c in self.lane_counts():
            total.add(c)
        return total

    # -------------------------------------------------------------- duty loop

    def _send(self, lane: int, datagrams: list[bytes]) -> None:
        if not datagrams:
            return
        sock, target = self._socks[lane], (self.host, self.routes[lane][1])
        for d in datagrams:
            try:
                sock.sendto(d, target)
            except OSError as exc:
                if exc.errno not in _SEND_ERRORS:
                    raise
                self._lanes[lane].counts.send_errors += 1

    def run(self, should_stop=lambda: False) -> None:
        """The relay loop (the thread's body; the process calls it directly)."""
        sel = selectors.DefaultSelector()
        for i, s in enumerate(self._socks):
            sel.register(s, selectors.EVENT_READ, i)
        lanes, lock = self._lanes, self._lock
        try:
            while not should_stop():
                dues = [d for d in (lane.next_due_ns() for lane in lanes) if d is not None]
                timeout = POLL_MAX_S
                if dues:
                    timeout = min(timeout, max(0.0, (min(dues) - time.monotonic_ns()) / 1e9))
                for key, _ in sel.select(timeout):
                    i, sock = key.data, key.fileobj
                    for _ in range(256):  # bounded, so one busy lane cannot starve the others
                        try:
                            data = sock.recv(RECV_BYTES)
                        except (BlockingIOError, InterruptedError):
                            break
                        except ConnectionRefusedError:  # ICMP from an earlier send
                            continue
                        with lock:
                            out = lanes[i].on_datagram(data, time.monotonic_ns())
                        self._send(i, out)
                now = time.monotonic_ns()
                for i, lane in enumerate(lanes):
                    if lane.pending:
                        with lock:
                            out = lane.on_tick(now)
                        self._send(i, out)
        finally:
            sel.close()


# ------------------------------------------------------------------ process


def _route(text: str) -> tuple[int, int]:
    try:
        listen, target = text.split(":")
        return int(listen), int(target)
    except ValueError:
        raise argparse.ArgumentTypeError(f"route must be LISTEN:TARGET (got {text!r})") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fault-injecting UDP relay (bus nemesis).")
    parser.add_argument("--route", type=_route, action="append", required=True,
                        help="LISTEN:TARGET port pair on 127.0.0.1 (repeat per subscriber)")
    parser.add_argument("--seed", type=int, default=0)
    for name in ("drop", "duplicate", "reorder", "delay"):
        parser.add_argument(f"--{name}", type=float, default=0.0, help=f"{name} rate in [0, 1]")
    parser.add_argument("--delay-ms", type=float, default=5.0, help="maximum delay (default 5)")
    parser.add_argument("--reorder-depth", type=int, default=3)
    parser.add_argument("--stats", help="write the final counts here as JSON")
    args = parser.parse_args(argv)
    try:
        rates = UdpFaultRates(args.drop, args.duplicate, args.reorder, args.delay,
                              args.delay_ms, args.reorder_depth)
    except ValueError as exc:
        parser.error(str(exc))
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    relay = UdpFaultRelay(args.route, args.seed, rates).bind()
    print("ready " + " ".join(f"{p}:{t}" for p, (_, t) in zip(relay.listen_ports, relay.routes)),
          flush=True)
    relay.run(stopping.is_set)
    counts = relay.stop().as_dict()
    text = json.dumps(counts)
    if args.stats:
        with open(args.stats, "w") as f:
            f.write(text + "\n")
    print(text, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
