"""Helpers for tests that run one reference node as a real process on loopback.

The test plays the node's peers; these start nothing themselves: they wait
for a node's health over its admin port, stop it by its own pid, and open a
UDP socket where a peer would listen, and read MoldUDP64 streams there.
"""

from __future__ import annotations

import socket
import subprocess
import time

from reference_impl.config import HOST
from reference_impl.core import mold_codec
from reference_impl.edges.process import admin_query


def listen(port: int, timeout_s: float = 2.0, rcvbuf: int | None = None) -> socket.socket:
    """A UDP socket bound on ``HOST:port`` (``rcvbuf``: a larger receive buffer)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind((HOST, port))
    sock.settimeout(timeout_s)
    return sock


def wait_healthy(proc: subprocess.Popen, admin_port: int, timeout_s: float = 10.0,
                 what: str = "node") -> None:
    """Until the node answers ``health`` ok; fails if it exits first (with its piped stderr)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            detail = f": {proc.stderr.read().decode()}" if proc.stderr is not None else ""
            raise AssertionError(f"{what} exited {proc.returncode}{detail}")
        try:
            if admin_query(admin_port, "health", 0.2).get("ok"):
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"{what} never answered health")


def stop(proc: subprocess.Popen) -> None:
    """Terminate the process, kill it after 5 s, and reap it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def receive_mold(sock: socket.socket, want: int, timeout_s: float = 3.0,
                 session: bytes | None = None,
                 twice: str = "a seq published twice") -> dict[int, bytes]:
    """MoldUDP64 messages by seq (heartbeats skipped) until ``want`` distinct seqs arrived.

    Every packet must fit 1400 bytes (and be of ``session`` when given); a seq
    seen twice fails with ``twice``.
    """
    got: dict[int, bytes] = {}
    deadline = time.monotonic() + timeout_s
    while len(got) < want and time.monotonic() < deadline:
        try:
            data = sock.recv(65535)
        except socket.timeout:
            break
        assert len(data) <= 1400
        packet = mold_codec.decode_packet(data)
        if session is not None:
            assert packet.session == session
        for i, m in enumerate(packet.messages):
            assert packet.seq + i not in got, twice
            got[packet.seq + i] = m
    return got
