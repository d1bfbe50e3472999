"""Kill → suspicion → confirmation → LeaderChange sequenced, and what detection costs an idle cluster.

Trials (``--trials``, default 30): each starts a fresh cluster with an
arbiter (``output_heartbeat_us: 1000``, default silence and stall), lets it
idle ``--settle-s``, SIGKILLs the primary engine at a monotonic stamp, waits
for the arbiter to promote, and reads the arbiter's ``digest`` stamps (the
same clock, one host): suspicion (the last one before the promotion: while
an idle primary's heartbeat gap exceeds the silence the arbiter is already
suspecting, so this may precede the kill), confirmation (the probe's
EXITING/GONE; 0 when the promotion came from the stall timeout instead), the
leader_change request, and the sequencer's reply (the LeaderChange is
sequenced and on the bus). Prints p50/p99/max of each from the kill.

Cost (``--cost-s`` per setting, 0 to skip): CPU of the primary engine and
the arbiter over an idle interval, and the primary's output datagrams per
second, with the default idle heartbeat (100 ms, no arbiter) and with 1 ms
plus the arbiter. Bounded: every wait has a timeout; stops by itself.
Noisy on a shared 2-vCPU host: read ratios, not absolutes. A trial whose
arbiter already promoted before the kill (the primary was silent for the
stall timeout while alive: a false promotion) is counted, not timed.

    python benchmarks/failover_detection.py [--trials 30] [--cost-s 3]
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path

import psutil

from harness.report.samples import percentile_us
from reference_impl import config
from reference_impl.edges import process
from reference_impl.launch.cluster import Cluster

OFFSET = -10900  #: ports apart from the tests'


def arbiter_config(enabled: bool = True, heartbeat_us: int = 1000, stall_ms: int = 5) -> config.ClusterConfig:
    base = config.load().shifted(OFFSET)
    arb = config.ArbiterConfig(enabled=enabled, stall_ms=stall_ms, admin_port=17305 + OFFSET,
                               output_port=17213 + OFFSET)
    return base.with_overrides(arbiter=arb, output_heartbeat_us=heartbeat_us)


def until(check, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.005)
    return None


def trial(settle_s: float, stall_ms: int) -> dict | None:
    """The stamps from the kill; ``{"false": True}`` if the arbiter promoted before it (a stall)."""
    cfg = arbiter_config(stall_ms=stall_ms)
    with tempfile.TemporaryDirectory() as d, Cluster(cfg, Path(d)) as cluster:
        time.sleep(settle_s)
        if process.admin_query(cfg.arbiter.admin_port, "digest")["counters"]["promotions"]:
            return {"false": True}
        pid = cluster.components()["engine-1"]
        t0 = time.monotonic_ns()
        psutil.Process(pid).kill()
        dg = until(lambda: (x := process.admin_query(cfg.arbiter.admin_port, "digest"))
                   ["counters"]["promotions"] and x, 5.0)
        if not dg:
            return None
        return {k: dg[k] - t0 if dg[k] else None
                for k in ("suspected_ns", "confirmed_ns", "promoted_ns", "sequenced_ns")}


def cost(enabled: bool, heartbeat_us: int, seconds: float) -> str:
    cfg = arbiter_config(enabled, heartbeat_us)
    with tempfile.TemporaryDirectory() as d, Cluster(cfg, Path(d)) as cluster:
        time.sleep(0.5)
        pids = cluster.components()
        procs = {n: psutil.Process(pids[n]) for n in ("engine-1", "arbiter") if n in pids}
        before = {n: sum(p.cpu_times()[:2]) for n, p in procs.items()}
        beats0 = process.admin_query(cfg.engine(1).admin_port, "digest")["counters"]["output_heartbeats"]
        time.sleep(seconds)
        beats = process.admin_query(cfg.engine(1).admin_port, "digest")["counters"]["output_heartbeats"]
        cpu = {n: (sum(p.cpu_times()[:2]) - before[n]) / seconds * 100 for n, p in procs.items()}
        line = (f"heartbeat {heartbeat_us:>6} µs, arbiter {'on ' if enabled else 'off'}: "
                f"{(beats - beats0) / seconds:7.0f} heartbeats/s, "
                + ", ".join(f"{n} CPU {v:4.1f}%" for n, v in cpu.items()))
        if enabled:
            c = process.admin_query(cfg.arbiter.admin_port, "digest")["counters"]
            line += f"; arbiter probes so far {c['probes']} (suspicions {c['suspicions']})"
        return line



def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--settle-s", type=float, default=0.3)
    ap.add_argument("--cost-s", type=float, default=3.0)
    ap.add_argument("--stall-ms", type=int, default=5)
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # unwind: every cluster is stopped
    if args.cost_s > 0:
        print(cost(False, 100_000, args.cost_s))
        print(cost(True, 1000, args.cost_s))
    got = [trial(args.settle_s, args.stall_ms) for _ in range(args.trials)]
    false = sum(1 for r in got if r and r.get("false"))
    rows = [r for r in got if r and not r.get("false")]
    confirmed = [r for r in rows if r["confirmed_ns"] is not None]
    print(f"stall {args.stall_ms} ms: {false}/{args.trials} clusters promoted away from a live primary "
          f"within {args.settle_s:g} s of idling (a stall, before any kill; not timed)")
    print(f"{len(rows)} kills promoted: {len(confirmed)} confirmed dead by the probe, "
          f"{len(rows) - len(confirmed)} by the stall timeout")
    print(f"{'from the kill, µs':<28} {'p50':>8} {'p99':>8} {'max':>8}  n")
    for key, label in (("suspected_ns", "suspicion"), ("confirmed_ns", "confirmation"),
                       ("promoted_ns", "leader_change asked"), ("sequenced_ns", "LeaderChange sequenced")):
        vals = [r[key] for r in rows if r[key] is not None]
        if vals:
            print(f"{label:<28} {percentile_us(vals, 50):>8.0f} {percentile_us(vals, 99):>8.0f} {max(vals) / 1000:>8.0f}  {len(vals)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
