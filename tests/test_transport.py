"""Inbox: reads only the sockets epoll reports ready, in the order given, under every idle strategy."""

from __future__ import annotations

import errno
import time

import pytest

from reference_impl.edges import transport


@pytest.fixture
def socks():
    rx = [transport.bind_udp(0) for _ in range(3)]
    tx = transport.bind_udp(0)
    yield rx, tx
    for s in rx + [tx]:
        s.close()


@pytest.mark.parametrize("idle", ["block", "spin", "backoff"])
def test_poll_returns_every_ready_datagram_in_socket_order(socks, idle) -> None:
    rx, tx = socks
    inbox = transport.Inbox(rx, idle, spin_us=50)
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


def test_block_wakes_on_a_datagram_sent_while_waiting(socks) -> None:
    import threading

    rx, tx = socks
    inbox = transport.Inbox(rx)
    try:
        timer = threading.Timer(0.05, tx.sendto, (b"late", rx[1].getsockname()))
        timer.start()
        t0 = time.monotonic()
        got = inbox.poll(5.0)
        assert [d for _, d, _ in got] == [b"late"] and time.monotonic() - t0 < 2.0
        timer.join()
    finally:
        inbox.close()


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
