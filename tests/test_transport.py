"""Inbox: reads only the sockets epoll reports ready, in the order given, under every idle strategy,
with ms (epoll) or µs (fine timers) deadlines."""

from __future__ import annotations

import errno
import os
import threading
import time

import pytest

from reference_impl import config
from reference_impl.edges import transport
from reference_impl.edges.timer import lower_timer_slack


@pytest.fixture
def socks():
    rx = [transport.bind_udp(0) for _ in range(3)]
    tx = transport.bind_udp(0)
    yield rx, tx
    for s in rx + [tx]:
        s.close()
    lower_timer_slack(0)  # a fine-timer Inbox lowered this thread's slack: give pytest its own back


@pytest.mark.parametrize("fine", [False, True], ids=["epoll", "fine"])
@pytest.mark.parametrize("idle", ["block", "spin", "backoff"])
def test_poll_returns_every_ready_datagram_in_socket_order(socks, idle, fine) -> None:
    rx, tx = socks
    inbox = transport.Inbox(rx, idle, spin_us=50, fine_timers=fine)
    try:
        tx.sendto(b"c1", rx[2].getsockname())
        tx.sendto(b"a1", rx[0].getsockname())
        tx.sendto(b"c2", rx[2].getsockname())
        time.sleep(0.01)
        got = inbox.poll(1.0)
        assert [(rx.index(s), d) for s, d, _ in got] == [(0, b"a1"), (2, b"c1"), (2, b"c2")]
        assert all(addr == tx.getsockname() for _, _, addr in got)
        t0 = time.monotonic()
        assert inbox.poll(0.05) == []  # nothing left: waits (or spins) up to the timeout
        assert time.monotonic() - t0 >= 0.04
    finally:
        inbox.close()


def test_limit_leaves_the_rest_for_the_next_poll(socks) -> None:
    rx, tx = socks
    inbox = transport.Inbox(rx)
    try:
        for i in range(5):
            tx.sendto(bytes([i]), rx[1].getsockname())
        time.sleep(0.01)
        assert [d for _, d, _ in inbox.poll(1.0, limit=3)] == [b"\0", b"\1", b"\2"]
        assert [d for _, d, _ in inbox.poll(1.0)] == [b"\3", b"\4"]
    finally:
        inbox.close()


@pytest.mark.parametrize("fine", [False, True], ids=["epoll", "fine"])
def test_block_wakes_on_a_datagram_sent_while_waiting(socks, fine) -> None:
    rx, tx = socks
    inbox = transport.Inbox(rx, fine_timers=fine)
    try:
        timer = threading.Timer(0.05, tx.sendto, (b"late", rx[1].getsockname()))
        timer.start()
        t0 = time.monotonic()
        got = inbox.poll(5.0)
        assert [d for _, d, _ in got] == [b"late"] and time.monotonic() - t0 < 2.0
        timer.join()
    finally:
        inbox.close()


@pytest.mark.parametrize("fine", [False, True], ids=["epoll", "fine"])
@pytest.mark.parametrize("timeout_us", [50, 200, 1000, 3000, 12000])  # 12 ms: epoll first, then the timerfd
def test_an_empty_wait_ends_at_its_deadline_not_before(socks, fine, timeout_us) -> None:
    rx, _ = socks
    inbox = transport.Inbox(rx, fine_timers=fine)
    try:
        for _ in range(5):
            deadline = time.monotonic_ns() + timeout_us * 1000
            assert inbox.poll_until(deadline) == []
            assert time.monotonic_ns() >= deadline
    finally:
        inbox.close()


@pytest.mark.timeout(20)  # a wait that never ends fails here, not after 300 s
def test_a_stale_timer_expiry_neither_ends_a_wait_early_nor_shows_up_as_a_socket(socks, monkeypatch) -> None:
    """Data cuts a fine wait short; its deadline then expires unobserved, before the next wait."""
    monkeypatch.setattr(transport, "FINE_SPAN_NS", 10**9)  # the timerfd times the whole wait
    rx, tx = socks
    inbox = transport.Inbox(rx, fine_timers=True)
    try:
        timer = threading.Timer(0.005, tx.sendto, (b"early", rx[0].getsockname()))
        timer.start()
        stale = time.monotonic_ns() + 50_000_000
        assert [d for _, d, _ in inbox.poll_until(stale)] == [b"early"]
        timer.join()
        time.sleep(max(stale - time.monotonic_ns(), 0) / 1e9 + 0.01)
        deadline = time.monotonic_ns() + 20_000_000
        assert inbox.poll_until(deadline) == []
        assert time.monotonic_ns() >= deadline
        tx.sendto(b"next", rx[2].getsockname())
        assert [(rx.index(s), d) for s, d, _ in inbox.poll_until(deadline + 10**9)] == [(2, b"next")]
    finally:
        inbox.close()


@pytest.mark.timeout(20)  # a wait that never ends fails here, not after 300 s
def test_a_deadline_armed_for_a_wait_that_data_cut_short_still_ends_the_next_wait(socks, monkeypatch) -> None:
    """Two waits for one deadline (a pacer's): the second reuses the armed timer and ends at the deadline."""
    monkeypatch.setattr(transport, "FINE_SPAN_NS", 10**9)
    rx, tx = socks
    inbox = transport.Inbox(rx, fine_timers=True)
    try:
        timer = threading.Timer(0.005, tx.sendto, (b"early", rx[1].getsockname()))
        timer.start()
        deadline = time.monotonic_ns() + 60_000_000
        assert [d for _, d, _ in inbox.poll_until(deadline)] == [b"early"]
        timer.join()
        assert inbox.poll_until(deadline) == []
        assert time.monotonic_ns() >= deadline
    finally:
        inbox.close()


def _timerfds() -> int:
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[timerfd]"
        except OSError:
            pass
    return n


@pytest.mark.parametrize("fine", [False, True])
def test_a_nodes_inbox_follows_the_fine_timers_key(socks, fine) -> None:
    before = _timerfds()
    inbox = transport.node_inbox(config.load().with_overrides(fine_timers=fine), socks[0])
    try:
        assert _timerfds() - before == int(fine)
    finally:
        inbox.close()
    assert _timerfds() == before


class _FailingSocket:
    """Stands in for a publisher's socket: raises ``errnos[target]`` for some targets."""

    def __init__(self, errnos: dict) -> None:
        self.errnos = errnos
        self.sent: list = []

    def sendto(self, datagram: bytes, target) -> int:
        err = self.errnos.get(target)
        if err is not None:
            raise OSError(err, "injected")
        self.sent.append(target)
        return len(datagram)

    def close(self) -> None:
        pass


@pytest.mark.parametrize("err", [errno.EPERM, errno.EMSGSIZE, errno.ECONNREFUSED, errno.EACCES])
def test_publisher_send_counts_every_oserror_and_reaches_the_other_targets(err) -> None:
    targets = [("127.0.0.1", 1), ("127.0.0.1", 2), ("127.0.0.1", 3)]
    pub = transport.Publisher(targets, multicast=False)
    real = pub.sock
    try:
        pub.sock = _FailingSocket({targets[0]: err})
        pub.send(b"x")  # must not raise
        pub.send(b"y")
        assert pub.sock.sent == [targets[1], targets[2]] * 2
        assert pub.send_errors == 2
    finally:
        real.close()


def test_publisher_send_survives_a_real_oversized_datagram() -> None:
    rx = transport.bind_udp(0)
    pub = transport.Publisher([rx.getsockname()], multicast=False)
    try:
        pub.send(b"z" * 70000)  # EMSGSIZE from the kernel
        assert pub.send_errors == 1
    finally:
        pub.close()
        rx.close()
