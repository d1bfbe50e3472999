"""Inbox: reads only the sockets epoll reports ready, in the order given, under every idle strategy."""

from __future__ import annotations

import time

import pytest

from reference_impl import transport


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
