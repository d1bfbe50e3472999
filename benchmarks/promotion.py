"""How soon a promoted secondary publishes: LeaderChange sequenced → the new primary's first output.

Each trial starts a fresh cluster (``config.load()`` moved by ``--offset``),
runs an open-loop trickle of orders (``--rate`` per second, as a foreign
gateway's datagrams straight to the sequencer, so nothing waits for an
answer), then SIGKILLs the primary and at once sends ``leader_change 2
<secondary>`` to the sequencer's admin port, as an arbiter would. The new
primary's ``digest`` reports, in monotonic ns on this host, when the
LeaderChange was sequenced (its stamp less the engine's clock offset) and
when it sent its first output packet; the script prints per-trial rows and
p50/p99/max of:

- kill → LeaderChange sequenced (here: this script's admin round trip; an
  arbiter's detection is another part's figure),
- LeaderChange sequenced → first output packet (promotion + re-emission),
  split into sequenced → applied by the secondary (its lag behind the
  stream, one bus hop) and applied → first packet (the promotion itself),
- the inputs re-emitted.

With nothing to re-emit, the first output waits for the next order (at most
``1 / rate``): the row says how many inputs were re-emitted. Noisy on a shared
2-vCPU guest. Stops by itself after ``--trials``.

    python benchmarks/promotion.py [--trials 30] [--rate 1000]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from harness.report.samples import percentile
from reference_impl import config
from reference_impl.config import HOST
from reference_impl.core import sequenced_codec
from reference_impl.core.messages import NewOrder, Sequenced, Side
from reference_impl.edges.process import admin_query
from reference_impl.launch.cluster import Cluster

GATEWAY_ID = 7  #: not a configured gateway: the orders come from this script


def trickle(port: int, rate: int, stop: threading.Event) -> None:
    """Crossing orders at ``rate`` per second, on schedule, until ``stop``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    period, start, i = 1e9 / rate, time.monotonic_ns(), 0
    while not stop.is_set():
        i += 1
        account = f"DEMO{1 + i % 4}"
        body = NewOrder(f"p{i}", "ACME", Side.BUY if i % 2 else Side.SELL, 10, 10_000)
        try:
            sock.sendto(sequenced_codec.encode(Sequenced(0, 0, GATEWAY_ID, 1, i, account, body)),
                        (HOST, port))
        except OSError:
            pass
        wait = start + int(i * period) - time.monotonic_ns()
        if wait > 0:
            time.sleep(wait / 1e9)
    sock.close()


def one_trial(offset: int, rate: int, warmup_s: float) -> dict:
    cfg = config.load().shifted(offset)
    primary = next(e for e in cfg.engines if e.role == "primary")
    secondary = next(e for e in cfg.engines if e.role == "secondary")
    with tempfile.TemporaryDirectory() as run_dir:
        cluster = Cluster(cfg, Path(run_dir)).start()
        stop = threading.Event()
        sender = threading.Thread(target=trickle, args=(cfg.sequencer.request_port, rate, stop))
        try:
            sender.start()
            time.sleep(warmup_s)
            pid = cluster.components()[f"engine-{primary.id}"]
            killed = time.monotonic_ns()
            os.kill(pid, signal.SIGKILL)
            reply = admin_query(cfg.sequencer.admin_port, f"leader_change 2 {secondary.id}")
            assert "seq" in reply, reply
            deadline = time.monotonic() + 5
            while True:  # the engine stamps the promotion itself: ask late, and rarely, since
                time.sleep(0.3)  # a digest hashes the whole state in the duty loop (ms)
                promotion = admin_query(secondary.admin_port, "digest")["promotion"]
                if promotion and promotion["first_packet_ns"] or time.monotonic() > deadline:
                    break
        finally:
            stop.set()
            sender.join()
            cluster.stop()
    assert promotion and promotion["first_packet_ns"], f"no promotion seen: {promotion}"
    sequenced = promotion["leader_change_sequenced_ns"]
    return {"kill_to_sequenced_us": (sequenced - killed) / 1e3,
            "sequenced_to_first_output_us": (promotion["first_packet_ns"] - sequenced) / 1e3,
            "sequenced_to_applied_us": (promotion["applied_ns"] - sequenced) / 1e3,
            "promoting_us": (promotion["promoted_ns"] - promotion["applied_ns"]) / 1e3,
            "promoted_to_first_output_us": (promotion["first_packet_ns"]
                                            - promotion["promoted_ns"]) / 1e3,
            "reemitted_inputs": promotion["reemitted_inputs"]}



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--rate", type=int, default=1000, help="orders per second during a trial")
    ap.add_argument("--warmup-s", type=float, default=0.5, help="load before the kill")
    ap.add_argument("--offset", type=int, default=-12600, help="port offset of the clusters")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the trial's cluster on the way out
    rows = []
    for trial in range(args.trials):
        row = one_trial(args.offset, args.rate, args.warmup_s)
        rows.append(row)
        print(f"trial {trial + 1:3d}: " + "  ".join(f"{k} {v:9.1f}" for k, v in row.items()),
              flush=True)
    for key in rows[0]:
        values = [r[key] for r in rows]
        print(f"{key:30s} p50 {percentile(sorted(values), 50):9.1f}  p99 {percentile(sorted(values), 99):9.1f}  "
              f"max {max(values):9.1f}")


if __name__ == "__main__":
    main()
