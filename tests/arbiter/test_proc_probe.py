"""The confirmation probe on real processes: alive, stopped, exiting, gone.

The kill test is an ordering fact, not a timing threshold: when the probe
first says EXITING for a killed process holding 200 MB, its pidfd is not yet
readable (the kernel frees the address space before it reports the death).
Break the probe's flag test (``answer_of``) and it never says EXITING there.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time

import pytest

from reference_impl.core.failover_detector import ProbeAnswer
from reference_impl.edges.proc_probe import ProcProbe, parse_stat

HOLD = "import sys, time; b = bytearray({mb} << 20); b[::4096] = b'x' * len(b[::4096]); " \
       "print('ready', flush=True); time.sleep(60)"


def holder(mb: int) -> subprocess.Popen:
    """A Python process holding ``mb`` MB of touched memory, ready when it says so."""
    p = subprocess.Popen([sys.executable, "-c", HOLD.format(mb=mb)], stdout=subprocess.PIPE)
    assert p.stdout is not None and p.stdout.readline() == b"ready\n"
    return p


def test_parse_stat_counts_fields_after_the_last_parenthesis():
    line = b"123 (a) b (c)) S 1 123 123 0 -1 4194368 " + b"0 " * 12 + b"98765 rest\n"
    assert parse_stat(line) == (b"S", 4194368)


def test_alive_stopped_and_gone():
    p = holder(0)
    probe = ProcProbe(p.pid)
    try:
        assert probe.check() is ProbeAnswer.ALIVE
        os.kill(p.pid, signal.SIGSTOP)
        assert probe.check() is ProbeAnswer.ALIVE  # a stall is not a death
        os.kill(p.pid, signal.SIGKILL)
        p.wait(5)
        assert probe.check() is ProbeAnswer.GONE  # reaped: the bound file answers ESRCH
    finally:
        probe.close()
        if p.poll() is None:
            p.kill()
            p.wait(5)


def test_zombie_is_gone():
    p = holder(0)
    probe = ProcProbe(p.pid)
    try:
        os.kill(p.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while probe.check() is not ProbeAnswer.GONE and time.monotonic() < deadline:
            time.sleep(0.001)
        assert probe.check() is ProbeAnswer.GONE  # not reaped yet: a zombie is dead
    finally:
        probe.close()
        p.wait(5)


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs pidfd_open")
def test_exiting_is_seen_before_the_pidfd_is_readable():
    p = holder(200)
    probe = ProcProbe(p.pid)
    pidfd = os.pidfd_open(p.pid)
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    try:
        os.kill(p.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        answer = probe.check()
        while answer is ProbeAnswer.ALIVE and time.monotonic() < deadline:
            answer = probe.check()
        pidfd_ready = bool(poller.poll(0))
        assert answer is ProbeAnswer.EXITING
        assert not pidfd_ready
        assert poller.poll(5000)  # and it does become readable, later
    finally:
        probe.close()
        os.close(pidfd)
        p.wait(5)
