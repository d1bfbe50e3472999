"""UDP edge of the bus: publishers, subscribers and the idle strategy.

The same MoldUDP64 bytes travel in either mode the config picks:

- ``unicast``: the publisher sends each datagram to every subscriber's own
  127.0.0.1 port (fan-out in the sender);
- ``multicast``: one send to the stream's group; subscribers bind the group
  port with SO_REUSEPORT and join on 127.0.0.1. ``IP_MULTICAST_IF = 127.0.0.1``
  is what keeps the traffic on the box (TTL 0 alone does not on this kernel).

Every subscriber also owns a *recovery* socket on an ephemeral 127.0.0.1
port: re-requests leave from it and retransmissions come back to it, which
works in both modes (a socket bound to a multicast group cannot receive
unicast replies).

``Inbox`` waits on several sockets with the configured idle strategy:
``block`` (epoll; the right default with more processes than vCPUs),
``spin`` (non-blocking polling, costs a whole vCPU) or ``backoff`` (spin for
N µs, then block). With ``fine_timers`` its blocking wait ends at a deadline
in ns to within tens of µs (``edges/timer.py``) instead of epoll's whole
milliseconds.
"""

from __future__ import annotations

import select
import selectors
import socket
import time
from collections.abc import Iterable, Sequence

from reference_impl.config import HOST, ClusterConfig, StreamConfig
from reference_impl.edges.timer import DeadlineTimer, lower_timer_slack

RECV_BYTES = 65535
#: with fine timers, the last stretch before a deadline that the timerfd times (epoll's whole ms before it)
FINE_SPAN_NS = 4_000_000
SOCKET_BUFFER = 8 << 20


def _udp() -> socket.socket:
    """An unbound UDP socket with ``SOCKET_BUFFER`` each way (a burst must not overrun it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER)
        except OSError:
            pass
    return sock


def bind_udp(port: int = 0, host: str = HOST) -> socket.socket:
    """A UDP socket bound on loopback (port 0: an ephemeral port).

    Every socket of the reference's nodes comes from here or ``_udp``: data,
    recovery, retransmit, status and admin alike.
    """
    sock = _udp()
    sock.bind((host, port))
    return sock


class Publisher:
    """Sends one datagram to every subscriber of a stream, in either mode."""

    __slots__ = ("sock", "_targets", "send_errors")

    def __init__(self, targets: Sequence[tuple[str, int]], multicast: bool) -> None:
        self.sock = _udp()
        if multicast:
            self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(HOST))
            self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
            self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 0)
        self.sock.bind((HOST, 0))
        self._targets = tuple(targets)
        self.send_errors = 0  #: datagrams a target refused (any OSError), per target

    def send(self, datagram: bytes) -> None:
        """Send to every target; an OSError for one target is counted, never raised.

        A subscriber that is down (ECONNREFUSED), a full queue (ENOBUFS,
        EAGAIN), a firewall drop (EPERM) or an oversized datagram (EMSGSIZE)
        must neither stop the other targets nor kill the publishing node: the
        stream's gap recovery makes up for a lost datagram.
        """
        sendto = self.sock.sendto
        for target in self._targets:
            try:
                sendto(datagram, target)
            except OSError:
                self.send_errors += 1

    def close(self) -> None:
        self.sock.close()


def stream_publisher(cfg: ClusterConfig, stream: StreamConfig, unicast_ports: Iterable[int]) -> Publisher:
    """The publisher of ``stream``: its group in multicast mode, else each subscriber port."""
    if cfg.transport == "multicast":
        return Publisher([(stream.group, stream.port)], multicast=True)
    return Publisher([(HOST, p) for p in unicast_ports], multicast=False)


def stream_subscriber(cfg: ClusterConfig, stream: StreamConfig, own_port: int) -> socket.socket:
    """The data socket of one subscriber of ``stream``."""
    if cfg.transport == "unicast":
        return bind_udp(own_port)
    sock = _udp()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((stream.group, stream.port))
    mreq = socket.inet_aton(stream.group) + socket.inet_aton(HOST)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    return sock


class Inbox:
    """Waits for datagrams on several sockets with a block/spin/backoff idle strategy.

    Every poll asks epoll which sockets are readable (one ``epoll_wait``; a
    zero timeout while spinning) and reads only those, each until it would
    block: a wake-up costs one ``epoll_wait``, one ``recvfrom`` per datagram
    and one empty ``recvfrom`` per ready socket, never a read of an idle
    socket. Within a batch, sockets keep the order they were given in.

    Deadlines are ``time.monotonic_ns()`` values. Without ``fine_timers`` a
    blocking wait is ``epoll_wait`` with a timeout rounded up to whole ms.
    With them (Linux), the Inbox owns a ``DeadlineTimer`` registered
    edge-triggered in its epoll set and lowers the constructing thread's
    timer slack (the thread that polls: every node polls from the thread that
    built its Inbox). A blocking wait has two stages:

    - while the deadline is more than ``FINE_SPAN_NS`` away, plain
      ``epoll_wait`` for the whole ms that end at least a margin before it
      (the margin covers the slack the kernel adds to long waits, 0.1% of
      them). A busy node's waits (a heartbeat deadline 100 ms away, data
      every few hundred µs) stay here and cost what they cost without fine
      timers: arming a timerfd on every wait measured about 6 µs of CPU more
      per wake-up (``benchmarks/timer_overshoot.py``);
    - then a zero-timeout poll (data already waiting costs no timer), else arm
      the timer at the deadline (unless it is armed there already: waits that
      data cuts short often share one deadline, such as a status pacer's) and
      ``epoll_wait`` without a timeout.

    The timer's own events are dropped, so a stale one (the expiry of a
    deadline armed for an earlier wait that data cut short) never ends a wait
    early.
    """

    def __init__(self, socks: Sequence[socket.socket], idle: str = "block", spin_us: int = 50,
                 fine_timers: bool = False) -> None:
        self.socks = list(socks)
        for s in self.socks:
            s.setblocking(False)
        self._idle = idle
        self._spin_ns = spin_us * 1000
        self._order = {s.fileno(): i for i, s in enumerate(self.socks)}
        self._epoll = select.epoll() if hasattr(select, "epoll") else None
        self._selector = None if self._epoll is not None else selectors.DefaultSelector()
        for s in self.socks:
            if self._epoll is not None:
                self._epoll.register(s.fileno(), select.EPOLLIN)
            else:
                self._selector.register(s, selectors.EVENT_READ)
        self._timer: DeadlineTimer | None = None
        self._timer_fd = -1
        self._armed_ns = 0
        if fine_timers and self._epoll is not None:
            lower_timer_slack()
            self._timer = DeadlineTimer()
            self._timer_fd = self._timer.fileno()
            self._epoll.register(self._timer_fd, select.EPOLLIN | select.EPOLLET)

    def _ready(self, deadline_ns: int) -> list[int]:
        """Indexes into ``socks`` of the readable sockets, in that order, waiting until ``deadline_ns``."""
        if self._epoll is None:
            keys = self._selector.select(max(deadline_ns - time.monotonic_ns(), 0) / 1e9)
            return sorted(self._order[k.fd] for k, _ in keys)
        if self._timer is None:
            return self._indexes(self._epoll.poll(max(deadline_ns - time.monotonic_ns(), 0) / 1e9))
        while True:
            left = deadline_ns - time.monotonic_ns()
            if left <= FINE_SPAN_NS:
                break
            whole_ms = (left - FINE_SPAN_NS // 2 - (left >> 9)) // 1_000_000
            ready = self._indexes(self._epoll.poll(whole_ms / 1e3))
            if ready:
                return ready
        ready = self._indexes(self._epoll.poll(0))
        if not ready and left > 0:
            if deadline_ns != self._armed_ns:  # else still pending: a future deadline has not fired
                self._timer.arm(deadline_ns)
                self._armed_ns = deadline_ns
            ready = self._indexes(self._epoll.poll(-1))
        return ready

    def _indexes(self, events: list[tuple[int, int]]) -> list[int]:
        """The socket indexes of epoll ``events``, sorted, without the timer's."""
        if not events:
            return []
        order, timer_fd = self._order, self._timer_fd
        if len(events) == 1:
            fd = events[0][0]
            return [] if fd == timer_fd else [order[fd]]
        return sorted(order[fd] for fd, _ in events if fd != timer_fd)

    def _drain(self, ready: list[int], out: list[tuple[socket.socket, bytes, tuple]],
               limit: int) -> None:
        socks = self.socks
        for i in ready:
            s = socks[i]
            recvfrom = s.recvfrom
            while len(out) < limit:
                try:
                    data, addr = recvfrom(RECV_BYTES)
                except (BlockingIOError, InterruptedError):
                    break
                except ConnectionRefusedError:  # ICMP from an earlier send on this socket
                    continue
                out.append((s, data, addr))

    def poll(self, timeout_s: float, limit: int = 4096) -> list[tuple[socket.socket, bytes, tuple]]:
        """``poll_until`` a deadline ``timeout_s`` from now."""
        return self.poll_until(time.monotonic_ns() + int(timeout_s * 1e9), limit)

    def poll_until(self, deadline_ns: int, limit: int = 4096) -> list[tuple[socket.socket, bytes, tuple]]:
        """Everything ready now (up to ``limit``), waiting until ``deadline_ns`` for the first.

        Returns as soon as a datagram is readable, and empty-handed not before
        the deadline (``idle: spin`` never blocks; ``backoff`` spins, then
        blocks until the same deadline).
        """
        out: list[tuple[socket.socket, bytes, tuple]] = []
        if self._idle != "block":
            spin_until = (min(deadline_ns, time.monotonic_ns() + self._spin_ns)
                          if self._idle == "backoff" else deadline_ns)
            while True:
                ready = self._ready(0)
                if ready:
                    self._drain(ready, out, limit)
                    if out:
                        return out
                if time.monotonic_ns() >= spin_until:
                    break
            if self._idle == "spin":
                return out
        ready = self._ready(deadline_ns)
        if ready:
            self._drain(ready, out, limit)
        return out

    def close(self) -> None:
        if self._timer is not None:
            self._timer.close()
        if self._epoll is not None:
            self._epoll.close()
        else:
            self._selector.close()


def node_inbox(cfg: ClusterConfig, socks: Sequence[socket.socket]) -> Inbox:
    """The Inbox of a node's duty loop, waiting as the cluster config says (idle strategy, fine timers).

    Build it in the thread that will poll it: fine timers lower that thread's timer slack.
    """
    return Inbox(socks, cfg.idle, cfg.backoff_spin_us, cfg.fine_timers)
