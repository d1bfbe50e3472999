"""How soon a SIGKILLed process can be seen dead: PF_EXITING in /proc versus a pidfd.

For each memory size (``--sizes``, MB of touched memory the victim holds) and
each trial, a fresh Python process is started, a ``ProcProbe`` and a pidfd
are opened on it, and it is SIGKILLed; a tight loop then records, in
monotonic ns from the kill, when the probe first says EXITING (or GONE) and
when the pidfd first polls readable. The sizes take turns within each round
so background load falls on all alike. Prints p50/p99/max per size and
column; on a shared 2-vCPU guest the tails are noisy. Stops by itself
(``--trials`` rounds, ``--timeout-s`` per kill).

    python benchmarks/death_detection.py [--trials 15] [--sizes 0,50,500]
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import subprocess
import sys
import time

from harness.report.samples import percentile_us
from reference_impl.core.failover_detector import ProbeAnswer
from reference_impl.edges.proc_probe import ProcProbe

HOLD = ("b = bytearray({mb} << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\n"
        "import sys, time; sys.stdout.write('ready\\n'); sys.stdout.flush(); time.sleep(120)")


def one_kill(mb: int, timeout_s: float) -> tuple[int, int]:
    """(kill → probe not ALIVE, kill → pidfd readable), in ns."""
    p = subprocess.Popen([sys.executable, "-c", HOLD.format(mb=mb)], stdout=subprocess.PIPE)
    try:
        assert p.stdout is not None and p.stdout.readline() == b"ready\n"
        probe = ProcProbe(p.pid)
        pidfd = os.pidfd_open(p.pid)
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        exiting = readable = 0
        t0 = time.monotonic_ns()
        os.kill(p.pid, signal.SIGKILL)
        deadline = t0 + int(timeout_s * 1e9)
        while not readable and time.monotonic_ns() < deadline:
            if not exiting and probe.check() is not ProbeAnswer.ALIVE:
                exiting = time.monotonic_ns() - t0
            if poller.poll(0):
                readable = time.monotonic_ns() - t0
        probe.close()
        os.close(pidfd)
        return exiting, readable
    finally:
        if p.poll() is None:
            p.kill()
        p.wait(10)



def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=15)
    ap.add_argument("--sizes", default="0,50,500", help="MB held by the victim, comma-separated")
    ap.add_argument("--timeout-s", type=float, default=5.0)
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    got: dict[int, list[tuple[int, int]]] = {mb: [] for mb in sizes}
    for _ in range(args.trials):
        for mb in sizes:
            got[mb].append(one_kill(mb, args.timeout_s))
    print(f"kill -9 → seen dead, µs ({args.trials} trials per size; noisy shared host)")
    print(f"{'MB':>5} | {'PF_EXITING p50':>14} {'p99':>8} {'max':>8} | {'pidfd p50':>10} {'p99':>8} {'max':>8}")
    for mb in sizes:
        ex = [e for e, _ in got[mb] if e]
        rd = [r for _, r in got[mb] if r]
        print(f"{mb:>5} | {percentile_us(ex, 50):>14.0f} {percentile_us(ex, 99):>8.0f} {max(ex) / 1000:>8.0f} | "
              f"{percentile_us(rd, 50):>10.0f} {percentile_us(rd, 99):>8.0f} {max(rd) / 1000:>8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
