"""How late a node's blocking wait wakes up: overshoot = actual − requested.

Each *waiter* blocks on an idle UDP socket (nothing ever arrives) for a
requested timeout and records ``monotonic_ns`` after − before − timeout:

- ``epoll``: today's wait, ``Inbox(fine_timers=False)`` at the default timer
  slack (epoll takes whole ms, the kernel adds the slack);
- ``epoll_slack1``: the same after ``prctl(PR_SET_TIMERSLACK, 1)``;
- ``select_slack1``: ``select.select`` (a µs timeout) at slack 1, the
  candidate that needs no timerfd;
- ``fine_slack50``: ``Inbox(fine_timers=True)`` with the slack put back to
  the default, to show what the slack alone costs a timerfd;
- ``fine``: ``Inbox(fine_timers=True)`` as the nodes run it (slack 1).

The waiters take turns in rounds (``--batch`` waits of each timeout each), so
background load falls on all of them alike. Per cell it prints p50/p99/max
overshoot in µs and the thread CPU time per wait; the JSON (``results/bench/``
by default) holds the same plus the raw overshoots. On a shared 2-vCPU guest
the tails are noisy: compare columns of one run, not runs.

What fine timers cost a busy node: a last line times the waiting thread's
CPU per wake-up while a sender thread sends a datagram every 300 µs, ``epoll``
against ``fine`` in alternating rounds, for two kinds of deadline: ``far``
(100 ms away, as a heartbeat's: the fine wait stays in its epoll stage) and
``paced`` (the next whole ms, as a status pacer's while publishing: the fine
wait arms its timerfd, once per deadline, and ends on time).

    python benchmarks/timer_overshoot.py [--samples 300] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import threading
import time
from collections.abc import Callable
from pathlib import Path

from harness.report.samples import percentile_us
from reference_impl.edges import transport
from reference_impl.edges.timer import lower_timer_slack

TIMEOUTS_US = (50, 200, 1000, 10_000)  #: 10 ms: a fine wait's epoll stage, then its timerfd
SEND_EVERY_S = 0.0003
DEADLINES: dict[str, Callable[[int], int]] = {
    "far": lambda now: now + 100_000_000,
    "paced": lambda now: (now // 1_000_000 + 1) * 1_000_000,
}
DEFAULT_SLACK = 0  #: prctl value that restores the thread's inherited slack (50 µs by default)


def _waiters(sock, coarse: transport.Inbox, fine: transport.Inbox
             ) -> dict[str, tuple[int, Callable[[int], object]]]:
    """name -> (timer slack to set before its turn, wait(timeout_ns))."""

    def select_wait(timeout_ns: int) -> object:
        return select.select([sock], [], [], timeout_ns / 1e9)

    def until(inbox: transport.Inbox) -> Callable[[int], object]:
        return lambda timeout_ns: inbox.poll_until(time.monotonic_ns() + timeout_ns)

    return {
        "epoll": (DEFAULT_SLACK, until(coarse)),
        "epoll_slack1": (1, until(coarse)),
        "select_slack1": (1, select_wait),
        "fine_slack50": (DEFAULT_SLACK, until(fine)),
        "fine": (1, until(fine)),
    }



def measure(samples: int, batch: int) -> dict:
    """Interleaved rounds until every (waiter, timeout) cell holds ``samples`` overshoots."""
    sock = transport.bind_udp(0)
    coarse, fine = transport.Inbox([sock], fine_timers=False), transport.Inbox([sock], fine_timers=True)
    waiters = _waiters(sock, coarse, fine)
    raw = {(w, t): [] for w in waiters for t in TIMEOUTS_US}
    cpu = {k: 0 for k in raw}
    try:
        for _ in range(-(-samples // batch)):
            for name, (slack, wait) in waiters.items():
                lower_timer_slack(slack)
                for t_us in TIMEOUTS_US:
                    timeout_ns, cell = t_us * 1000, raw[(name, t_us)]
                    c0 = time.thread_time_ns()
                    for _ in range(batch):
                        t0 = time.monotonic_ns()
                        wait(timeout_ns)
                        cell.append(time.monotonic_ns() - t0 - timeout_ns)
                    cpu[(name, t_us)] += time.thread_time_ns() - c0
    finally:
        lower_timer_slack(DEFAULT_SLACK)
        coarse.close()
        fine.close()
        sock.close()
    cells = []
    for (name, t_us), xs in raw.items():
        s = sorted(xs)
        cells.append({"waiter": name, "timeout_us": t_us, "n": len(s),
                      "p50_us": percentile_us(s, 50), "p99_us": percentile_us(s, 99), "max_us": s[-1] / 1e3,
                      "min_us": s[0] / 1e3, "cpu_us_per_wait": cpu[(name, t_us)] / len(s) / 1e3,
                      "overshoot_ns": xs})
    return {"samples": samples, "batch": batch, "timeouts_us": list(TIMEOUTS_US),
            "loadavg": os.getloadavg(), "kernel": platform.release(),
            "python": platform.python_version(), "cells": cells}


def wake_cost(wakes: int, batch: int, deadline: Callable[[int], int]) -> dict[str, float]:
    """Thread CPU µs per wake-up of a blocking wait under a steady stream, epoll vs fine, alternating."""
    rx, tx = transport.bind_udp(0), transport.bind_udp(0)
    inboxes = {"epoll": transport.Inbox([rx], fine_timers=False),
               "fine": transport.Inbox([rx], fine_timers=True)}
    stop = threading.Event()

    def send() -> None:
        while not stop.is_set():
            tx.sendto(b"x", rx.getsockname())
            time.sleep(SEND_EVERY_S)

    cpu, n = dict.fromkeys(inboxes, 0), dict.fromkeys(inboxes, 0)
    monotonic_ns = time.monotonic_ns
    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        lower_timer_slack(1)
        for _ in range(-(-wakes // batch)):
            for name, inbox in inboxes.items():
                c0 = time.thread_time_ns()
                for _ in range(batch):
                    inbox.poll_until(deadline(monotonic_ns()))
                cpu[name] += time.thread_time_ns() - c0
                n[name] += batch
    finally:
        stop.set()
        sender.join()
        lower_timer_slack(DEFAULT_SLACK)
        for inbox in inboxes.values():
            inbox.close()
        rx.close()
        tx.close()
    return {name: cpu[name] / max(n[name], 1) / 1e3 for name in inboxes}


def table(res: dict) -> str:
    lines = [(f"overshoot (actual - requested), µs; n={res['samples']} per cell; "
              f"load average {res['loadavg'][0]:.2f} (noisy on a shared guest)"),
             f"{'waiter':<14} {'timeout':>8} {'p50':>8} {'p99':>8} {'max':>8} {'min':>8} {'cpu/wait':>9}"]
    for c in res["cells"]:
        lines.append(f"{c['waiter']:<14} {c['timeout_us']:>6}µs {c['p50_us']:>8.1f} {c['p99_us']:>8.1f} "
                     f"{c['max_us']:>8.1f} {c['min_us']:>8.1f} {c['cpu_us_per_wait']:>9.1f}")
    for kind, cost in res["cpu_us_per_wake"].items():
        lines.append(f"thread CPU per wake-up under a datagram per 300 µs, {kind} deadline, µs: " +
                     ", ".join(f"{k} {v:.1f}" for k, v in cost.items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=300, help="waits per (waiter, timeout) cell")
    ap.add_argument("--batch", type=int, default=20, help="waits of one cell per turn")
    ap.add_argument("--wakes", type=int, default=10000, help="wake-ups per waiter for the CPU lines")
    ap.add_argument("--json", metavar="OUT",
                    help="JSON path (default results/bench/timer-overshoot-<time>.json)")
    args = ap.parse_args(argv)
    res = measure(max(args.samples, 1), max(args.batch, 1))
    res["cpu_us_per_wake"] = {kind: wake_cost(max(args.wakes, 1), 100 * max(args.batch, 1), deadline)
                              for kind, deadline in DEADLINES.items()}
    print(table(res))
    out = Path(args.json or f"results/bench/timer-overshoot-{time.strftime('%Y%m%d-%H%M%S')}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
