"""The confirmation probe: is a process on this host alive, exiting or gone? (Linux /proc)

A killed process sets PF_EXITING (0x4) in the flags of ``/proc/<pid>/stat``
as soon as it starts to exit, tens of µs after the signal; a pidfd, a pipe or
a socket only report the death after the kernel has freed the whole address
space, which takes ms and grows with the memory (DESIGN.md §5;
``benchmarks/death_detection.py`` measures both). The arbiter asks this
probe only after a suspicion, so a stall (answer ``ALIVE``: running, sleeping
or stopped) is told apart from a death (``EXITING``, or ``GONE`` once the
process is a zombie or reaped) in one read.

``ProcProbe(pid)`` opens ``/proc/<pid>/stat`` once and re-reads it with
``pread``: a read costs one syscall, and the open file stays bound to *that*
process (once it is reaped the read fails with ESRCH even if the pid is
reused), so a recycled pid can never answer for the dead one: check the
pid's identity (its start time) once, *after* opening the probe.
"""

from __future__ import annotations

import os

from reference_impl.core.failover_detector import ProbeAnswer

PF_EXITING = 0x4
_READ = 1024
_DEAD_STATES = (b"Z", b"X", b"x")  #: zombie, dead: exited, not (yet) reaped


def parse_stat(text: bytes) -> tuple[bytes, int]:
    """(state, flags) of one ``/proc/<pid>/stat`` line.

    The command name (field 2) sits in parentheses and may hold spaces and
    parentheses itself, so the fields are counted after its *last* ``)``.
    """
    fields = text[text.rindex(b")") + 2:].split()
    return fields[0], int(fields[6])


def answer_of(state: bytes, flags: int) -> ProbeAnswer:
    if state in _DEAD_STATES:
        return ProbeAnswer.GONE
    if flags & PF_EXITING:
        return ProbeAnswer.EXITING
    return ProbeAnswer.ALIVE


class ProcProbe:
    """One process's liveness, read from /proc (see the module doc)."""

    __slots__ = ("_fd", "pid")

    def __init__(self, pid: int) -> None:
        self.pid = pid
        try:
            self._fd: int | None = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self._fd = None  # no such process: GONE from the start

    def _read_stat(self) -> tuple[bytes, int] | None:
        if self._fd is None:
            return None
        try:
            return parse_stat(os.pread(self._fd, _READ, 0))
        except (OSError, ValueError, IndexError):
            return None

    def check(self) -> ProbeAnswer:
        stat = self._read_stat()
        if stat is None:
            return ProbeAnswer.GONE
        return answer_of(stat[0], stat[1])

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

