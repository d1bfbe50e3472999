"""What a benchmark run records about the machine and the processes besides latency.

``perf stat`` counters per component, a cProfile wrapper for chosen nodes,
the machine's model and load, and a wait for a quiet moment on the shared
machine. None of it is on the measured path.
"""

from __future__ import annotations

import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil


class PerfStat:
    """``perf stat`` counting syscalls and context switches per component (cheap: counters)."""

    EVENTS = ("raw_syscalls:sys_enter", "context-switches", "cpu-migrations")

    def __init__(self, pids: dict[str, int], run_dir: Path) -> None:
        self.names = {pid: name for name, pid in pids.items()}
        self.out = run_dir / "perf-stat.csv"
        self.proc = subprocess.Popen(
            ["perf", "stat", "-x", ",", "--per-thread", "-e", ",".join(self.EVENTS),
             "-p", ",".join(str(p) for p in pids.values()), "-o", str(self.out)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.2)  # attached before the first measured order (the schedule leads by 50 ms)

    def kill(self) -> None:
        """Make sure our perf child is gone (after an error mid-run)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def stop(self, per: int) -> dict:
        self.proc.send_signal(signal.SIGINT)  # our own child, by its pid
        self.proc.wait(10)
        totals: dict[str, dict[str, int]] = {}
        for line in self.out.read_text().splitlines():
            parts = line.split(",")
            if len(parts) < 4 or "-" not in parts[0] or not parts[1].isdigit():
                continue
            tid = int(parts[0].rsplit("-", 1)[1])
            name = self.names.get(tid, f"{self.names.get(self._tgid(tid), '?')}/thread")
            name = name.split("/")[0]
            ev = totals.setdefault(name, {})
            ev[parts[3]] = ev.get(parts[3], 0) + int(parts[1])
        return {"per_order": {n: {e: round(v / per, 2) for e, v in ev.items()}
                              for n, ev in totals.items()}, "orders": per}

    @staticmethod
    def _tgid(tid: int) -> int:
        try:
            for line in Path(f"/proc/{tid}/status").read_text().splitlines():
                if line.startswith("Tgid:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return tid


def profiling_python(run_dir: Path, modules: str) -> str:
    """An interpreter wrapper that runs the named node modules under cProfile.

    ``Cluster`` starts every component as ``PYTHON -m reference_impl.<node> ...``;
    the wrapper adds ``-m cProfile -o RUN_DIR/profile-<node>-<pid>.prof`` for
    the nodes in ``modules`` (comma-separated, e.g. ``gateway_node,engine_node``).
    The stats are written when the node exits cleanly (SIGTERM). cProfile
    slows a node down several times: use it to rank hot spots, not for latency.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    cases = "\n".join(
        f'  reference_impl.{m.strip()}) exec "{sys.executable}" -m cProfile '
        f'-o "{run_dir}/profile-{m.strip()}-$$.prof" "$@";;'
        for m in modules.split(",") if m.strip())
    wrapper = run_dir / "python-profiled"
    wrapper.write_text(f'#!/bin/sh\ncase "$2" in\n{cases}\nesac\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def machine() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu_model": model, "vcpus": psutil.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version(), "loadavg_1_5_15": list(psutil.getloadavg())}


def wait_quiet(max_s: float, limit_vcpu: float, window_s: float = 2.0) -> dict:
    """Wait (up to ``max_s``) for a window in which the machine is busy < ``limit_vcpu``.

    The machine is shared with other engineers' tests; this only picks a
    quieter moment to start, it cannot keep the run quiet (``cpu.others_s``
    records what competed during each measured window).
    """
    fields = ("user", "nice", "system", "irq", "softirq")
    samples = []
    deadline = time.monotonic() + max_s
    while True:
        a = psutil.cpu_times()
        time.sleep(window_s)
        b = psutil.cpu_times()
        busy = sum(getattr(b, f) - getattr(a, f) for f in fields) / window_s
        samples.append(round(busy, 2))
        if busy < limit_vcpu or time.monotonic() >= deadline:
            return {"limit_vcpu": limit_vcpu, "busy_vcpu_samples": samples,
                    "quiet": busy < limit_vcpu}
