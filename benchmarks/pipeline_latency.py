"""Wire-to-wire latency of the reference pipeline through the OUCH door, open loop.

Theory of operation
-------------------
One run, one process:

1. The bare relay chain (``relay_chain.run_chain``: 4 relays, 5 socket hops,
   the same count as client -> gateway -> sequencer -> engine -> gateway ->
   client) at the same rate and duration: the floor. Under ``fsync`` also the
   same chain with a relay that group-commits each message with
   ``fdatasync`` to a file in the run directory (the WAL's filesystem): the
   floor of an ack that waits for a flush.
2. A fresh ``Cluster`` (the packaged default config, ports shifted by
   ``--offset``, durability and transport from the command line). Four
   SoupBinTCP sessions log in as DEMO1..DEMO4.
3. A short warm-up at the target rate, then the measured run: ``rate *
   duration`` OUCH Enter Orders whose send times are fixed in advance
   (``relay_chain.OpenLoop``: sent at the intended time or as soon as
   possible after it, never skipped). A receiver thread stamps the first
   Accepted/Rejected for each order token; latency = that stamp - the
   *intended* send time, so a stall is charged to every order it delays.
   The stream alternates ACME/GLOBEX, with a four-order cycle per symbol:
   a resting buy, a resting sell, a buy that fills against the sell, a sell
   that fills against the buy (half the orders cross; books stay small).
4. During the run the gateway's admin ``stages 400`` is polled every
   ``--stage-poll-s`` (raw bytes kept, parsed afterwards). Each row's
   ``input_seq`` is matched to an order through the Accepted's order
   reference number (the engine numbers accepted orders 1, 2, ... in input
   order, and every input here is one of our orders), which also gives the
   segments outside the gateway's stamps: client send -> gateway in, and
   gateway out -> client receive.
5. CPU seconds of every component, of this client and of the rest of the
   machine over the measured window (the machine is shared; see ``CpuMeter``).

All stamps are CLOCK_MONOTONIC ns of one host, so they compare across
processes; the engine's ``sequenced_ns`` is the sequencer's wall-clock stamp
moved to monotonic time by the engine's offset (sub-microsecond error).

    python benchmarks/pipeline_latency.py --rate 2000 --duration 10 \\
        --durability replicated --transport unicast --json results/bench/x.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import relay_chain
from ouch_load import ACCOUNTS, OuchReceiver, login, run_orders, self_check_parser
from pipeline_stages import SEGMENTS, StagePoller, stage_split
from relay_chain import CpuMeter, format_cpu, format_line, summarize
from run_probes import PerfStat, machine, profiling_python, wait_quiet

from reference_impl import config as config_mod
from reference_impl.config import HOST
from reference_impl.core import soupbin_codec as sb
from reference_impl.edges.process import admin_query
from reference_impl.launch.cluster import Cluster

ROOT = Path(__file__).resolve().parent.parent
#: Default port offset: the default config's ports 15000..18080 become
#: 29500..32580, below the ephemeral range (32768+) and disjoint from the
#: ports of the test modules' offsets (0, +-4000, +-8000, +-12000), which
#: ``check_ports`` verifies along with binding each port once.
DEFAULT_OFFSET = 14500
TEST_OFFSETS = (0, -4000, -8000, -12000, 4000, 8000, 12000)
TEST_EXTRA_PORTS = (29701, 29702, 29703)  #: tests/test_cluster.py's bus relay


# ------------------------------------------------------------------ ports


def check_ports(cfg: config_mod.ClusterConfig, offset: int) -> list[int]:
    """Every port of the shifted cluster: in 1024..32767, clear of the tests', free now."""
    ports = cfg.ports()
    if min(ports) < 1024 or max(ports) > 32767:
        raise SystemExit(f"offset {offset}: ports {min(ports)}..{max(ports)} leave 1024..32767")
    base = config_mod.load()
    theirs = set(TEST_EXTRA_PORTS)
    for o in TEST_OFFSETS:
        theirs |= set(base.shifted(o).ports())
    clash = sorted(set(ports) & theirs)
    if clash:
        raise SystemExit(f"offset {offset}: ports {clash} belong to a test module's cluster")
    for port in ports:
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            with socket.socket(socket.AF_INET, kind) as s:
                if kind == socket.SOCK_STREAM:  # as the doors bind: the last run's TIME_WAIT is fine
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((HOST, port))
                except OSError as exc:
                    raise SystemExit(f"port {port} is in use ({exc}); pick another --offset")
    return ports


# ------------------------------------------------------------------ the run


def run_pipeline(args: argparse.Namespace, run_dir: Path) -> dict:
    cfg = config_mod.load().shifted(args.offset).with_overrides(
        durability=args.durability, transport=args.transport)
    check_ports(cfg, args.offset)
    gw = cfg.gateways[0]
    python = profiling_python(run_dir, args.profile) if args.profile else sys.executable
    cluster = Cluster(cfg, run_dir, python=python)
    t0 = time.monotonic()
    cluster.start()
    perf = None
    try:
        started_s = time.monotonic() - t0
        socks = [login(gw.ouch_port, u, p) for u, p in ACCOUNTS]
        rx = OuchReceiver(socks)
        rx.thread.start()
        warm = run_orders(socks, rx, args.rate, args.warmup, "W", args.drain)
        poller = StagePoller(gw.admin_port, args.stage_poll_s)
        pids = {**cluster.components(), "client": os.getpid()}
        perf = PerfStat(pids, run_dir) if args.perf_stat else None
        meter = CpuMeter(pids)
        loop = run_orders(socks, rx, args.rate, args.duration, "T", args.drain,
                          during=poller.poll_until)
        cpu = meter.stop(loop.count)
        kernel = perf.stop(loop.count) if perf else None
        poller.final()
        rx.stop.set()
        rx.thread.join(2)
        for s in socks:
            try:
                s.send(sb.encode(sb.LogoutRequest()))
            except OSError:
                pass
            s.close()
        rows = poller.rows()
        digest = admin_query(gw.admin_port, "digest", 2.0)
    finally:
        if perf is not None:
            perf.kill()
        outcome = cluster.stop()
    if not args.keep_wal:
        shutil.rmtree(run_dir / cfg.logger.data_dir, ignore_errors=True)
    lat = loop.latencies()
    last = max(loop.recv_ns) if lat else 0
    span_s = (last - loop.start_ns) / 1e9 if last else 0.0
    return {
        "throughput_per_s": round(len(lat) / span_s, 1) if span_s > 0 else None,
        "cluster_start_s": round(started_s, 2), "stop": outcome,
        "warmup": {"sent": warm.count, "answered": len(warm.latencies())},
        "sent": loop.count, "answered": len(lat), "missing": loop.count - len(lat),
        "responses": dict(rx.counts),
        "latency": summarize(lat, with_hist=True),
        "sender_lag": summarize(loop.sender_lag()),
        "stages": stage_split(rows, loop, rx.refs),
        "stage_polls": len(poller.raw),
        "cpu": cpu,
        **({"kernel_events": kernel} if kernel else {}),
        "gateway_counters": digest.get("counters", {}),
    }


def ratio(a: dict, b: dict, key: str) -> float | None:
    if a.get(key) and b.get(key):
        return round(a[key] / b[key], 2)
    return None


def table(paths: list[str]) -> str:
    """Markdown tables (latency, then per-stage split) of saved ``--json`` results."""
    runs = [json.loads(Path(p).read_text()) for p in paths]
    head = ("| durability | rate/s | pipeline p50 / p99 / p99.9 / max (us) | chain p50 / p99 / "
            "p99.9 (us) | ratio p50 / p99 | chain+fdatasync p50 / p99 (us) | "
            "ratio to it p50 / p99 | answered/s | others' CPU (vCPU) | file |")
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|"]
    for p, r in zip(paths, runs):
        pl, ch = r["pipeline"]["latency"], r.get("chain", {}).get("latency", {})
        ra = r.get("ratio", {})
        fl, rf = r.get("chain_fsync", {}).get("latency"), r.get("ratio_fsync_floor", {})
        floor = (f"{fl['p50_us']:,.0f} / {fl['p99_us']:,.0f} | {rf.get('p50')} / {rf.get('p99')}"
                 if fl else "- | -")
        cpu = r["pipeline"]["cpu"]
        lines.append(
            f"| {r['durability']} | {r['rate']:g} | {pl['p50_us']:,.0f} / {pl['p99_us']:,.0f} / "
            f"{pl['p99.9_us']:,.0f} / {pl['max_us']:,.0f} | "
            f"{ch.get('p50_us', 0):,.0f} / {ch.get('p99_us', 0):,.0f} / {ch.get('p99.9_us', 0):,.0f} | "
            f"{ra.get('p50')} / {ra.get('p99')} | {floor} | "
            f"{r['pipeline'].get('throughput_per_s') or '-'} | "
            f"{cpu['others_s'] / cpu['wall_s']:.2f} | {Path(p).name} |")
    lines += ["", "| durability | rate/s | " + " | ".join(n for n, _, _ in SEGMENTS[:4]) +
              " | client->gw_in | gw_out->client | sampled |", "|---|---|" + "---|" * 7]
    for r in runs:
        seg = r["pipeline"]["stages"]["segments"]
        cells = [f"{seg[n]['p50_us']:,.0f} / {seg[n]['p99_us']:,.0f}" if seg[n].get("count")
                 else "-" for n in [n for n, _, _ in SEGMENTS[:4]] +
                 ["client_send->gateway_in", "gateway_out->client_recv"]]
        lines.append(f"| {r['durability']} | {r['rate']:g} | " + " | ".join(cells) +
                     f" | {r['pipeline']['stages']['rows_complete']} |")
    lines += ["", "| durability | rate/s | CPU us per order: " +
              ", ".join(r["pipeline"]["cpu"]["us_per_message"]) + " | total |", "|---|---|---|---|"]
    for r in runs:
        per = r["pipeline"]["cpu"]["us_per_message"]
        lines.append(f"| {r['durability']} | {r['rate']:g} | " +
                     " / ".join(f"{v:g}" for v in per.values()) + f" | {sum(per.values()):.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["--table"]:
        print(table(argv[1:]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 epilog="--table FILE.json ...: print markdown tables of saved runs")
    ap.add_argument("--rate", type=float, default=2000.0, help="orders per second (default 2000)")
    ap.add_argument("--duration", type=float, default=10.0, help="measured seconds (default 10, max 60)")
    ap.add_argument("--durability", choices=("replicated", "fsync", "none"), default="replicated")
    ap.add_argument("--transport", choices=("unicast", "multicast"), default="unicast")
    ap.add_argument("--offset", type=int, default=DEFAULT_OFFSET,
                    help=f"shift of the default config's ports (default {DEFAULT_OFFSET})")
    ap.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds, not measured (default 1)")
    ap.add_argument("--drain", type=float, default=3.0,
                    help="seconds to wait for late replies after the last send (default 3)")
    ap.add_argument("--stage-poll-s", type=float, default=0.5,
                    help="gateway 'stages 400' poll interval (default 0.5 s)")
    ap.add_argument("--no-chain", action="store_true", help="skip the relay chain")
    ap.add_argument("--quiet-wait", type=float, default=0.0, metavar="S",
                    help="first wait up to S seconds for the shared machine to be quiet (default 0)")
    ap.add_argument("--quiet-vcpu", type=float, default=0.3,
                    help="'quiet' = busy below this many vCPUs over 2 s (default 0.3)")
    ap.add_argument("--run-dir", help="cluster run directory (default results/bench/runs/<id>)")
    ap.add_argument("--profile", metavar="NODES",
                    help="run these node modules under cProfile, e.g. gateway_node,engine_node "
                         "(stats in the run dir; distorts latency)")
    ap.add_argument("--perf-stat", action="store_true",
                    help="count syscalls and context switches per component with perf stat")
    ap.add_argument("--keep-wal", action="store_true", help="keep the WAL (64 MiB segments)")
    ap.add_argument("--json", metavar="OUT", help="write everything measured as JSON")
    args = ap.parse_args(argv)
    if not 0 < args.duration + args.warmup <= relay_chain.MAX_DURATION_S:
        ap.error(f"--duration + --warmup must be in (0, {relay_chain.MAX_DURATION_S:g}] s")
    self_check_parser()
    run_id = time.strftime("%Y%m%d-%H%M%S") + f"-{args.durability}-{args.rate:g}"
    run_dir = Path(args.run_dir or ROOT / "results" / "bench" / "runs" / run_id)

    result: dict = {"version": 1, "run_id": run_id, "argv": argv,
                    "rate": args.rate, "duration_s": args.duration, "durability": args.durability,
                    "transport": args.transport, "offset": args.offset, "machine": machine(),
                    "note": "shared 2-vCPU machine: other engineers' tests ran concurrently; "
                            "see cpu.others_s for the competing load in each window"}
    if args.quiet_wait > 0:
        result["quiet_wait"] = q = wait_quiet(args.quiet_wait, args.quiet_vcpu)
        print(f"quiet wait: busy vCPU samples {q['busy_vcpu_samples']} (quiet: {q['quiet']})")
    if not args.no_chain:
        result["chain"] = relay_chain.run_chain(args.rate, args.duration)
        if args.durability == "fsync":  # the flush floor, on the WAL's filesystem
            run_dir.mkdir(parents=True, exist_ok=True)
            result["chain_fsync"] = relay_chain.run_chain(args.rate, args.duration,
                                                          sync_dir=str(run_dir))
    result["pipeline"] = run_pipeline(args, run_dir)
    result["machine"]["loadavg_after"] = list(psutil.getloadavg())
    pipe = result["pipeline"]
    for key, name in (("chain", "ratio"), ("chain_fsync", "ratio_fsync_floor")):
        if key in result:
            result[name] = {p: ratio(pipe["latency"], result[key]["latency"], f"{p}_us")
                            for p in ("p50", "p99", "p99.9")}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    report(result)
    if args.json:
        print(f"json: {args.json}")
    return 0


def report(r: dict) -> None:
    pipe = r["pipeline"]
    print(f"pipeline: {r['durability']}/{r['transport']}, {r['rate']:g} orders/s for "
          f"{r['duration_s']:g} s: sent {pipe['sent']}, answered {pipe['answered']}, "
          f"missing {pipe['missing']}, responses {pipe['responses']}")
    print(format_line("wire-to-wire", pipe["latency"]) +
          f"  (answered at {pipe['throughput_per_s']}/s)")
    print(format_line("  sender lag", pipe["sender_lag"]))
    st = pipe["stages"]
    print(f"per-stage split ({st['rows_complete']} of {pipe['sent']} orders sampled by "
          f"{pipe['stage_polls']} polls; seq shift {st['seq_shift']}, "
          f"{st['rows_nested']} nest inside client stamps):")
    print("  (decided->durable holds the output hop to the gateway and the wait for the gate; "
          "gateway_out is stamped after all of an input's writes, so a client may read first)")
    for name, s in st["segments"].items():
        print("  " + format_line(name, s))
    gc = pipe["gateway_counters"]
    print("gateway counters: " + ", ".join(f"{k} {gc.get(k)}" for k in
                                           ("forwarded", "answered", "resends", "backpressure")))
    orders = max(1, gc.get("forwarded") or 0)
    print("status datagrams per order at the gateway: " + ", ".join(
        f"{k} {gc.get('status_' + k, 0) / orders:.2f}" for k in ("engine", "logger", "sequencer")))
    print(format_cpu(pipe["cpu"]))
    print("  cpu us/order: " + ", ".join(f"{k} {v}" for k, v in pipe["cpu"]["us_per_message"].items()))
    for name, ev in pipe.get("kernel_events", {}).get("per_order", {}).items():
        print(f"  per order, {name}: " + ", ".join(f"{e} {v}" for e, v in ev.items()))
    if "chain" in r:
        ch = r["chain"]
        print(f"relay chain: {ch['relays']} relays ({ch['hops']} hops), same rate: "
              f"missing {ch['missing']}")
        print(format_line("chain", ch["latency"]))
        print(format_line("  sender lag", ch["sender_lag"]))
        print(format_cpu(ch["cpu"]))
        ra = r["ratio"]
        print(f"ratio pipeline/chain: p50 {ra['p50']}  p99 {ra['p99']}  p99.9 {ra['p99.9']} "
              f"(target <= 2.0)")
    if "chain_fsync" in r:
        ch, ra = r["chain_fsync"], r["ratio_fsync_floor"]
        print(f"flush floor: the same chain, relay {ch['fdatasync_relay']} group-commits with "
              f"fdatasync (the logger's place): missing {ch['missing']}")
        print(format_line("chain+fdatasync", ch["latency"]))
        print(format_cpu(ch["cpu"]))
        floor = ratio(ch["latency"], r["chain"]["latency"], "p50_us")
        print(f"ratio chain+fdatasync/chain: p50 {floor} (what one flush alone adds); "
              f"pipeline/chain+fdatasync: p50 {ra['p50']}  p99 {ra['p99']}  p99.9 {ra['p99.9']}")


if __name__ == "__main__":
    sys.exit(main())
