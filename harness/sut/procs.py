"""Processes by process group: what ``ExternalSut`` starts, signals and waits for.

A component is started in its own session (``start_new_session=True``), so
its pid is its process group id and a signal to the group reaches whatever
its start command spawned. A group is *gone* when no live (non-zombie)
process is left in it: zombies do not count, because PID 1 in a container
may never reap orphans. Once a group is seen gone its id is never signalled
again (the kernel may hand the number to a new process). ``log_tail`` gives
the last lines of a component's log for a start error.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil

LOG_TAIL_BYTES = 16384


def log_tail(path: Path, lines: int = 25) -> str:
    """The last ``lines`` lines of a log file ('' when it cannot be read)."""
    try:
        data = path.read_bytes()[-LOG_TAIL_BYTES:]
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def _group_pids(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid``."""
    out = []
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p.pid)
        except (OSError, psutil.Error):
            pass
    return out


class ProcessGroup:
    """One started component: its leader's Popen and its process group."""

    def __init__(self, popen: subprocess.Popen) -> None:
        self.popen = popen
        self.pgid = popen.pid  # start_new_session: the leader's pid is the group id
        self.gone = False

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        """The leader runs (what readiness watches)."""
        return self.popen.poll() is None

    def members(self) -> list[int]:
        if self.gone:
            return []
        self.popen.poll()  # reap the leader if it exited
        pids = _group_pids(self.pgid)
        if not pids and self.popen.returncode is not None:
            self.gone = True  # never signal this pgid again: it may be reused
        return pids

    def signal(self, sig: int) -> None:
        if self.gone or not (self.alive() or self.members()):
            return
        try:
            os.killpg(self.pgid, sig)
        except ProcessLookupError:
            pass

    def wait_gone(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self.members():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def terminate(self, sig: int, grace_s: float) -> str:
        if not self.members():
            return "not running"
        self.signal(signal.SIGCONT)
        self.signal(sig)
        if self.wait_gone(grace_s):
            return "stopped"
        self.signal(signal.SIGKILL)
        self.wait_gone(5.0)
        return "killed"
