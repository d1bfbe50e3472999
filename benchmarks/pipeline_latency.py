"""Wire-to-wire latency of the reference pipeline through the OUCH door, open loop.

Theory of operation
-------------------
One run, one process:

1. The bare relay chain (``relay_chain.run_chain``: 4 relays, 5 socket hops,
   the same count as client -> gateway -> sequencer -> engine -> gateway ->
   client) at the same rate and duration: the floor.
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
import platform
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import relay_chain
from relay_chain import CpuMeter, OpenLoop, format_cpu, format_line, summarize

from reference_impl import config as config_mod
from reference_impl.cluster import Cluster
from reference_impl.core import ouch_codec
from reference_impl.core import soupbin_codec as sb
from reference_impl.core.ouch_messages import EnterOrder, OrderAccepted
from reference_impl.node import admin_query

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent
#: Default port offset: the default config's ports 15000..18080 become
#: 29500..32580, below the ephemeral range (32768+) and disjoint from the
#: ports of the test modules' offsets (0, +-4000, +-8000, +-12000), which
#: ``check_ports`` verifies along with binding each port once.
DEFAULT_OFFSET = 14500
TEST_OFFSETS = (0, -4000, -8000, -12000, 4000, 8000, 12000)
TEST_EXTRA_PORTS = (29701, 29702, 29703)  #: tests/test_cluster.py's bus relay
ACCOUNTS = (("DEMO1", "demo1pw"), ("DEMO2", "demo2pw"), ("DEMO3", "demo3pw"), ("DEMO4", "demo4pw"))
SYMBOLS = ("ACME", "GLOBEX")
BID, ASK = 990_000, 1_010_000  #: $99.00 and $101.00 (tick 100 = $0.01)
QTY = 100
STAGES_ROWS = 400
STAGE_FIELDS = ("request_seq", "input_seq", "gateway_in_ns", "sequenced_ns", "decided_ns",
                "durable_ns", "gateway_out_ns")
SEGMENTS = (  # (name, from field, to field)
    ("gateway_in->sequenced", "gateway_in_ns", "sequenced_ns"),
    ("sequenced->decided", "sequenced_ns", "decided_ns"),
    ("decided->durable", "decided_ns", "durable_ns"),
    ("durable->gateway_out", "durable_ns", "gateway_out_ns"),
    ("gateway_in->gateway_out", "gateway_in_ns", "gateway_out_ns"),
)
_LEN = struct.Struct(">H")
_REF = struct.Struct(">Q")
_TOKEN = slice(9, 23)  #: order token in Accepted / Rejected / Executed (after type and ts)
_REF_AT = 49  #: order reference number in Order Accepted


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
                try:
                    s.bind((HOST, port))
                except OSError as exc:
                    raise SystemExit(f"port {port} is in use ({exc}); pick another --offset")
    return ports


# ------------------------------------------------------------------ the client


def order_frame(i: int, tag: str) -> tuple[int, bytes]:
    """(session index, SoupBinTCP Unsequenced Data bytes) of order ``i``."""
    symbol = SYMBOLS[i % 2]
    k = i // 2  # position in this symbol's stream
    side, price = ((b"B", BID), (b"S", ASK), (b"B", ASK), (b"S", BID))[k % 4]
    session = (k + k // 4) % 4  # rotate who rests and who crosses
    msg = EnterOrder(f"{tag}{i}", side, QTY, symbol, price)
    return session, sb.encode(sb.UnsequencedData(ouch_codec.encode(msg)))


def login(port: int, user: str, password: str) -> socket.socket:
    s = socket.create_connection((HOST, port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(sb.encode(sb.LoginRequest(user, password)))
    framer = sb.SoupBinFramer(from_client=False)
    while True:
        data = s.recv(4096)
        if not data:
            raise RuntimeError(f"{user}: connection closed during login")
        for p in framer.feed(data):
            if isinstance(p, sb.LoginAccepted):
                if framer.buffered:
                    raise RuntimeError("unexpected bytes after Login Accepted")
                s.settimeout(None)
                return s
            if not isinstance(p, (sb.ServerHeartbeat, sb.Debug)):
                raise RuntimeError(f"{user}: login answered with {p!r}")  # noqa: TRY004


class OuchReceiver:
    """One thread: stamps each session's Accepted/Rejected by token, keeps order refs."""

    def __init__(self, socks: list[socket.socket]) -> None:
        self.socks = socks
        self.loop: OpenLoop | None = None
        self.tag = b""
        self.refs: list[int] = []
        self.counts = {"accepted": 0, "rejected": 0, "executed": 0, "other": 0, "foreign": 0}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="ouch-receiver", daemon=True)

    def arm(self, loop: OpenLoop, tag: str) -> None:
        self.loop, self.tag, self.refs = loop, tag.encode(), [0] * loop.count

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        bufs = {}
        for s in self.socks:  # left blocking: the sender thread shares them
            sel.register(s, selectors.EVENT_READ)
            bufs[s] = b""
        mono = time.monotonic_ns
        while not self.stop.is_set():
            for key, _ in sel.select(0.2):
                s = key.fileobj
                try:
                    data = s.recv(65536)
                except BlockingIOError:
                    continue
                now = mono()
                if not data:
                    sel.unregister(s)
                    continue
                buf = bufs[s] + data
                pos, size = 0, len(buf)
                while size - pos >= 2:
                    end = pos + 2 + ((buf[pos] << 8) | buf[pos + 1])
                    if end > size:
                        break
                    if buf[pos + 2] == 0x53:  # 'S' Sequenced Data: one OUCH message
                        self._on_message(buf[pos + 3:end], now)
                    pos = end
                bufs[s] = buf[pos:]
        sel.close()

    def _on_message(self, msg: bytes, now: int) -> None:
        kind = msg[0]
        counts = self.counts
        if kind == 0x45:  # 'E' executed (ours or the passive side's)
            counts["executed"] += 1
            return
        if kind not in (0x41, 0x4A):  # 'A' accepted, 'J' rejected
            counts["other"] += 1
            return
        token = msg[_TOKEN].rstrip(b" ")
        loop, tag = self.loop, self.tag
        if loop is None or not token.startswith(tag):
            counts["foreign"] += 1
            return
        i = int(token[len(tag):])
        if kind == 0x41:
            counts["accepted"] += 1
            if 0 <= i < loop.count:
                self.refs[i] = _REF.unpack_from(msg, _REF_AT)[0]
        else:
            counts["rejected"] += 1
        loop.arrived(i, now)


def self_check_parser() -> None:
    """The receiver's fixed offsets agree with the codec's Order Accepted layout."""
    raw = ouch_codec.encode(OrderAccepted(1, "T123", b"B", 1, "ACME", 100, 0, "", b"Y", 987654321,
                                          b"A", b"N", 0, b"N", b"L"))
    assert raw[0] == 0x41 and raw[_TOKEN].rstrip(b" ") == b"T123"
    assert _REF.unpack_from(raw, _REF_AT)[0] == 987654321


def run_orders(socks: list[socket.socket], rx: OuchReceiver, rate: float, duration_s: float,
               tag: str, drain_s: float, during=None) -> OpenLoop:
    count = max(1, int(rate * duration_s))
    frames = [order_frame(i, tag) for i in range(count)]
    sends = [socks[k].sendall for k in range(len(socks))]
    loop = OpenLoop(count, rate)
    rx.arm(loop, tag)

    def send(i: int) -> None:
        k, frame = frames[i]
        sends[k](frame)  # blocking TCP send: a full buffer stalls us, and it counts

    sender = loop.run_sender(send)
    if during is not None:
        during(loop)
    loop.wait(sender, drain_s)
    return loop


# ------------------------------------------------------------------ stages


class StagePoller:
    """Polls ``stages 400`` on the gateway's admin port; raw replies, parsed later."""

    def __init__(self, admin_port: int, every_s: float) -> None:
        self.addr = (HOST, admin_port)
        self.every_s = every_s
        self.raw: list[bytes] = []

    def poll_until(self, loop: OpenLoop) -> None:
        end = loop.intended(loop.count - 1)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(1.0)
            while True:
                time.sleep(self.every_s)
                self._ask(s)
                if time.monotonic_ns() > end:
                    break

    def final(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(1.0)
            self._ask(s)

    def _ask(self, s: socket.socket) -> None:
        try:
            s.sendto(f"stages {STAGES_ROWS}".encode(), self.addr)
            self.raw.append(s.recv(65535))
        except OSError:
            pass

    def rows(self) -> list[dict]:
        seen: dict[int, dict] = {}
        for data in self.raw:
            doc = json.loads(data)
            fields = doc.get("fields", STAGE_FIELDS)
            for r in doc.get("stages", []):
                row = dict(zip(fields, r))
                seen[row["request_seq"]] = row
        return [seen[k] for k in sorted(seen)]


def stage_split(rows: list[dict], loop: OpenLoop, refs: list[int]) -> dict:
    """Per-stage percentiles of the measured orders' rows, plus the client-side segments."""
    by_ref = {ref: i for i, ref in enumerate(refs) if ref}
    # Every input is one of our orders and each is accepted, so input_seq == order ref.
    # A check, not a search (under overload every nearby shift nests too): count the
    # rows whose stamps nest inside the client's send and receive under each shift.
    nests = {}
    for k in range(-4, 5):
        ok = 0
        for r in rows:
            i = by_ref.get(r["input_seq"] - k)
            if i is not None and loop.recv_ns[i] and \
                    loop.sent_ns[i] <= r["gateway_in_ns"] <= r["gateway_out_ns"] <= loop.recv_ns[i]:
                ok += 1
        nests[k] = ok
    shift, ok = 0, nests[0]
    matched = [(r, by_ref[r["input_seq"] - shift]) for r in rows
               if r["input_seq"] - shift in by_ref]
    mine = [r for r, _ in matched]
    out: dict = {"rows_polled": len(rows), "rows_matched": len(matched), "seq_shift": shift,
                 "rows_nested": ok, "segments": {}}
    complete = [r for r in mine if all(r[f] for f in STAGE_FIELDS[2:])]
    out["rows_complete"] = len(complete)
    for name, a, b in SEGMENTS:
        out["segments"][name] = summarize([r[b] - r[a] for r in complete])
    nested = [(r, i) for r, i in matched if loop.recv_ns[i]]
    out["segments"]["client_send->gateway_in"] = summarize(
        [r["gateway_in_ns"] - loop.sent_ns[i] for r, i in nested])
    out["segments"]["gateway_out->client_recv"] = summarize(
        [loop.recv_ns[i] - r["gateway_out_ns"] for r, i in nested])
    out["segments"]["wire_to_wire_same_orders"] = summarize(
        [loop.recv_ns[i] - loop.intended(i) for r, i in nested])
    out["nests_by_shift"] = nests
    # raw rows with the client's stamps of the same order, for later analysis
    out["raw_fields"] = list(STAGE_FIELDS) + ["client_intended_ns", "client_sent_ns",
                                               "client_recv_ns"]
    out["raw"] = [[r[f] for f in STAGE_FIELDS] + [loop.intended(i), loop.sent_ns[i],
                                                 loop.recv_ns[i]] for r, i in matched]
    return out


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


def ratio(a: dict, b: dict, key: str) -> float | None:
    if a.get(key) and b.get(key):
        return round(a[key] / b[key], 2)
    return None


def table(paths: list[str]) -> str:
    """Markdown tables (latency, then per-stage split) of saved ``--json`` results."""
    runs = [json.loads(Path(p).read_text()) for p in paths]
    head = ("| durability | rate/s | pipeline p50 / p99 / p99.9 / max (us) | chain p50 / p99 / "
            "p99.9 (us) | ratio p50 / p99 | answered/s | others' CPU (vCPU) | file |")
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for p, r in zip(paths, runs):
        pl, ch = r["pipeline"]["latency"], r.get("chain", {}).get("latency", {})
        ra = r.get("ratio", {})
        cpu = r["pipeline"]["cpu"]
        lines.append(
            f"| {r['durability']} | {r['rate']:g} | {pl['p50_us']:,.0f} / {pl['p99_us']:,.0f} / "
            f"{pl['p99.9_us']:,.0f} / {pl['max_us']:,.0f} | "
            f"{ch.get('p50_us', 0):,.0f} / {ch.get('p99_us', 0):,.0f} / {ch.get('p99.9_us', 0):,.0f} | "
            f"{ra.get('p50')} / {ra.get('p99')} | {r['pipeline'].get('throughput_per_s') or '-'} | "
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
    result["pipeline"] = run_pipeline(args, run_dir)
    result["machine"]["loadavg_after"] = list(psutil.getloadavg())
    pipe = result["pipeline"]
    if "chain" in result:
        result["ratio"] = {p: ratio(pipe["latency"], result["chain"]["latency"], f"{p}_us")
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


if __name__ == "__main__":
    sys.exit(main())
