"""Port-block allocation for SUTs that can be shifted: one offset, every port moved by it.

A SUT whose ports can all be moved by one offset (the reference cluster via
``ClusterConfig.shifted``, an external SUT with ``port_offset: auto``) takes
a whole block at a time. Offsets are multiples of 4000 that keep every port
in 1024..32767 (the ephemeral range starts at 32768, so no transient socket
can hold one). A block is taken when

1. no other ``PortBlock`` of any process holds it (an ``flock`` on
   ``$TMPDIR/crucible-ports/offset<N>.lock``, released when the block is
   released or the process dies), and
2. every port of it binds right now, TCP (with ``SO_REUSEADDR``, as the
   doors bind) and UDP.

Tests with fixed offsets do not take the lock; the bind check catches them
while they run.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from harness.sut.base import SutError

HOST = "127.0.0.1"
STEP = 4000
LOWEST_PORT, HIGHEST_PORT = 1024, 32767
#: Tried in this order: the brief's -12000 + 4000*i.
CANDIDATES = tuple(-12000 + STEP * i for i in range(7))
LOCK_DIR = Path(tempfile.gettempdir()) / "crucible-ports"

Probe = Callable[[int], bool]


class NoFreePorts(SutError):
    """No candidate offset has every port free (a ``SutError`` of component ``ports``)."""

    def __init__(self, reason: str) -> None:
        super().__init__("ports", reason)


def port_free(port: int, host: str = HOST) -> bool:
    """Whether ``port`` binds now for both TCP (SO_REUSEADDR) and UDP."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            if kind == socket.SOCK_STREAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def offset_fits(ports: Iterable[int], offset: int) -> bool:
    return all(LOWEST_PORT <= p + offset <= HIGHEST_PORT for p in ports)


class PortBlock:
    """A held offset; ``release()`` (or process exit) gives it back."""

    def __init__(self, offset: int, lock_fd: int | None) -> None:
        self.offset = offset
        self._fd = lock_fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None


def _lock(offset: int) -> int | None:
    """The lock's fd, or None when another holder has it."""
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    fd = os.open(LOCK_DIR / f"offset{offset}.lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        raise
    return fd


def busy_ports(ports: Iterable[int], offset: int, probe: Probe = port_free) -> list[int]:
    return [p + offset for p in ports if not probe(p + offset)]


def take(ports: Sequence[int], offset: int, probe: Probe = port_free) -> PortBlock:
    """Hold exactly ``offset`` (a fixed choice); ``NoFreePorts`` naming what is busy."""
    if not offset_fits(ports, offset):
        raise NoFreePorts(f"offset {offset} moves ports outside {LOWEST_PORT}..{HIGHEST_PORT}")
    fd = _lock(offset)
    if fd is None:
        raise NoFreePorts(f"offset {offset} is held by another SUT (lock in {LOCK_DIR})")
    busy = busy_ports(ports, offset, probe)
    if busy:
        os.close(fd)
        raise NoFreePorts(f"offset {offset}: ports already in use: {busy[:10]}")
    return PortBlock(offset, fd)


def allocate(ports: Sequence[int], prefer: int | None = None,
             candidates: Sequence[int] = CANDIDATES, probe: Probe = port_free) -> PortBlock:
    """The first free offset (``prefer`` first, then ``candidates``); see the module doc."""
    order = ([prefer] if prefer is not None else []) + [c for c in candidates if c != prefer]
    tried = []
    for offset in order:
        if not offset_fits(ports, offset):
            tried.append(f"{offset}: out of range")
            continue
        try:
            return take(ports, offset, probe)
        except NoFreePorts as exc:
            tried.append(exc.reason)
    raise NoFreePorts("no free port block; tried " + "; ".join(tried))
