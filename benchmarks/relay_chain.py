"""The floor for the pipeline: a bare UDP relay chain, timed open loop.

Theory of operation
-------------------
``client -> r1 -> r2 -> r3 -> r4 -> client``: four relay processes, each a
blocking ``recv`` then ``sendto`` the next hop, so a message crosses five
sockets, the same number as an order crossing client -> gateway -> sequencer
-> engine -> gateway -> client. Whatever the pipeline costs above this chain
is the cost of its own work (decoding, the book, the gate, asyncio), not of
the hops.

Open loop (no coordinated omission): message ``i``'s send time is fixed in
advance, ``start + i * period``. A sender thread sends each at that time, or
as soon as it can after it when it is behind; it never skips one. A receiver
thread stamps each reply; latency = receive time - *intended* send time, so a
stall is charged to every message it delays. Latencies go raw into
preallocated lists; the HdrHistogram is built after the run (recording costs
~0.6 us a value, a percentile ~1 ms: not on the hot path).

The open-loop machinery here (``OpenLoop``, ``summarize``) is shared with
``pipeline_latency.py``, so both sides of the ratio are timed the same way.

    python benchmarks/relay_chain.py --rate 2000 --duration 10 [--json OUT]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import multiprocessing
import os
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable

import psutil
from hdrh.histogram import HdrHistogram

HOST = "127.0.0.1"
MESSAGE_BYTES = 52  #: a SoupBinTCP Unsequenced Data packet holding an OUCH Enter Order
MAX_DURATION_S = 60.0
_TAG_IDX = struct.Struct(">II")  #: pass tag, message index
_PR_SET_TIMERSLACK = 29
HIST_LOW_NS, HIST_HIGH_NS, HIST_DIGITS = 1_000, 120 * 10**9, 3
PERCENTILES = (50.0, 90.0, 99.0, 99.9)
SYNC_FILE_BYTES = 8 << 20  #: the syncing relay's preallocated file


# ------------------------------------------------------------------ timing


def set_timer_slack(ns: int = 1_000) -> bool:
    """Tighten this thread's sleep overshoot (Linux default slack: 50 us)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_TIMERSLACK, ctypes.c_ulong(ns), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


class OpenLoop:
    """One open-loop run: a fixed schedule, raw per-message stamps, no skipping.

    ``send(i)`` puts message ``i`` on the wire; the caller's receiver calls
    ``arrived(i, now_ns)`` once per reply (the first call per ``i`` counts).
    """

    def __init__(self, count: int, rate: float) -> None:
        if count < 1 or rate <= 0:
            raise ValueError("count and rate must be positive")
        self.count = count
        self.period_ns = round(1e9 / rate)
        self.start_ns = 0
        self.sent_ns = [0] * count  #: when send(i) was called (>= the intended time)
        self.recv_ns = [0] * count  #: first reply, 0 = none
        self.received = 0
        self.done = threading.Event()

    def intended(self, i: int) -> int:
        return self.start_ns + i * self.period_ns

    def arrived(self, i: int, now_ns: int) -> None:
        if 0 <= i < self.count and not self.recv_ns[i]:
            self.recv_ns[i] = now_ns
            self.received += 1
            if self.received == self.count:
                self.done.set()

    def run_sender(self, send: Callable[[int], None], lead_s: float = 0.05) -> threading.Thread:
        """Fix the schedule (first send ``lead_s`` from now) and start the sender thread."""
        self.start_ns = time.monotonic_ns() + int(lead_s * 1e9)

        def pace() -> None:
            set_timer_slack()
            mono, sleep, sent = time.monotonic_ns, time.sleep, self.sent_ns
            start, period = self.start_ns, self.period_ns
            for i in range(self.count):
                wait = start + i * period - mono()
                if wait > 0:
                    sleep(wait / 1e9)
                sent[i] = mono()
                send(i)

        t = threading.Thread(target=pace, name="open-loop-sender", daemon=True)
        t.start()
        return t

    def wait(self, sender: threading.Thread, drain_s: float) -> None:
        """Until every reply is in, or ``drain_s`` after the last intended send."""
        last = self.intended(self.count - 1)
        sender.join(max(0.0, (last - time.monotonic_ns()) / 1e9) + drain_s + 5.0)
        left = (last - time.monotonic_ns()) / 1e9 + drain_s
        self.done.wait(max(left, 0.0))

    def latencies(self) -> list[int]:
        """Receive - intended send, ns, for every message that got a reply."""
        start, period, recv = self.start_ns, self.period_ns, self.recv_ns
        return [recv[i] - (start + i * period) for i in range(self.count) if recv[i]]

    def sender_lag(self) -> list[int]:
        """Actual - intended send, ns: how far behind schedule the sender ran."""
        start, period = self.start_ns, self.period_ns
        return [s - (start + i * period) for i, s in enumerate(self.sent_ns) if s]


def histogram(values_ns: list[int]) -> HdrHistogram:
    h = HdrHistogram(HIST_LOW_NS, HIST_HIGH_NS, HIST_DIGITS)
    for v in values_ns:
        h.record_value(min(max(v, HIST_LOW_NS), HIST_HIGH_NS))
    return h


def summarize(values_ns: list[int], with_hist: bool = False) -> dict:
    """Count, p50/p90/p99/p99.9 and max in microseconds (HdrHistogram, 3 digits)."""
    if not values_ns:
        return {"count": 0}
    h = histogram(values_ns)
    out = {"count": len(values_ns)}
    for p in PERCENTILES:
        out[f"p{p:g}_us"] = round(h.get_value_at_percentile(p) / 1000, 1)
    out["max_us"] = round(max(values_ns) / 1000, 1)
    out["mean_us"] = round(sum(values_ns) / len(values_ns) / 1000, 1)
    low = sum(1 for v in values_ns if v < HIST_LOW_NS)
    if low:  # recorded as 1 us; negative ones are stamps taken out of order across processes
        out["below_1us"] = low
        out["negative"] = sum(1 for v in values_ns if v < 0)
    if with_hist:
        out["hdr"] = h.encode().decode("ascii")  #: HdrHistogram V2 compressed, base64
    return out


class CpuMeter:
    """CPU seconds over a window: the whole machine's, ours (by name), and the rest.

    The machine is shared: ``others_s`` (busy time of processes that are not
    ours) and ``steal_s`` (the hypervisor's) say how much the run competed for.
    """

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = dict(pids)
        self._procs: dict[str, psutil.Process] = {}
        for name, pid in self.pids.items():
            try:
                self._procs[name] = psutil.Process(pid)
            except psutil.Error:
                pass
        self._t0 = time.monotonic()
        self._sys0 = psutil.cpu_times()
        self._own0 = {n: self._cpu(p) for n, p in self._procs.items()}

    @staticmethod
    def _cpu(p: psutil.Process) -> float:
        try:
            t = p.cpu_times()
            return t.user + t.system
        except psutil.Error:
            return float("nan")

    def stop(self, per: int = 0) -> dict:
        """The window's figures; ``per`` > 0 adds CPU microseconds per message."""
        wall = time.monotonic() - self._t0
        sys1 = psutil.cpu_times()
        d = {f: getattr(sys1, f) - getattr(self._sys0, f) for f in sys1._fields}
        busy = d["user"] + d["nice"] + d["system"] + d.get("irq", 0.0) + d.get("softirq", 0.0)
        own = {n: round(self._cpu(p) - self._own0[n], 3) for n, p in self._procs.items()}
        ours = sum(v for v in own.values() if not math.isnan(v))
        out = {"wall_s": round(wall, 3), "vcpus": psutil.cpu_count(),
               "machine_busy_s": round(busy, 3), "steal_s": round(d.get("steal", 0.0), 3),
               "iowait_s": round(d.get("iowait", 0.0), 3), "ours_s": round(ours, 3),
               "others_s": round(max(busy - ours, 0.0), 3), "by_process_s": own}
        if per:
            out["us_per_message"] = {n: round(v * 1e6 / per, 1) for n, v in own.items()}
        return out


# ------------------------------------------------------------------ the chain


def _relay(sock: socket.socket, nxt: tuple[str, int]) -> None:
    """A relay process: blocking recv, send on (the child of a fork)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    recv, sendto = sock.recv, sock.sendto
    while True:
        sendto(recv(2048), nxt)


def _sync_file(path: str) -> int:
    """The syncing relay's file, preallocated as the WAL preallocates a segment, and synced.

    Opened in the parent, so that a bad directory fails the run loudly
    instead of killing a forked relay (which would only show as missing
    replies).
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.posix_fallocate(fd, 0, SYNC_FILE_BYTES)
    except OSError:  # a filesystem without fallocate, as in wal.py
        os.ftruncate(fd, SYNC_FILE_BYTES)
    os.fsync(fd)
    return fd


def _syncing_relay(sock: socket.socket, nxt: tuple[str, int], fd: int) -> None:
    """A relay that makes messages durable before passing them on, as the WAL logger does.

    Group commit, like the logger: wait for one message, take every other one
    already queued, put them all down with one ``pwrite`` and one
    ``fdatasync``, then send each on. The file (``_sync_file``) is written
    front to back, wrapping before its end, so a flush never changes its size.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    recv, sendto, pwrite, fdatasync = sock.recv, sock.sendto, os.pwrite, os.fdatasync
    offset, wrap = 0, SYNC_FILE_BYTES // 2
    while True:
        batch = [recv(2048)]
        try:
            while len(batch) < 256:
                batch.append(recv(2048, socket.MSG_DONTWAIT))
        except BlockingIOError:
            pass
        data = b"".join(batch)
        pwrite(fd, data, offset)
        fdatasync(fd)
        offset = (offset + len(data)) % wrap
        for message in batch:
            sendto(message, nxt)


def _udp() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        s.setsockopt(socket.SOL_SOCKET, opt, 4 << 20)
    s.bind((HOST, 0))
    return s


def run_chain(rate: float, duration_s: float, relays: int = 4, drain_s: float = 2.0,
              warmup_s: float = 0.5, sync_dir: str | None = None) -> dict:
    """Measure the chain open loop at ``rate`` msg/s for ``duration_s``; a summary dict.

    With ``sync_dir``, the next-to-last relay (the logger's place in
    client -> gateway -> sequencer -> logger -> gateway -> client) writes and
    fdatasyncs each message to a file there before passing it on: the floor
    of an ack that waits for a flush.
    """
    ctx = multiprocessing.get_context("fork")
    client = _udp()
    hops = [_udp() for _ in range(relays)]
    addrs = [s.getsockname() for s in hops] + [client.getsockname()]
    syncing = relays - 2 if sync_dir is not None and relays >= 2 else None
    sync_path = os.path.join(sync_dir, f"relay{syncing + 1}.sync") if syncing is not None else ""
    sync_fd = _sync_file(sync_path) if syncing is not None else -1
    procs = []
    for k in range(relays):
        if k == syncing:
            procs.append(ctx.Process(target=_syncing_relay, args=(hops[k], addrs[k + 1], sync_fd),
                                     daemon=True))
        else:
            procs.append(ctx.Process(target=_relay, args=(hops[k], addrs[k + 1]), daemon=True))
    for p in procs:
        p.start()
    for s in hops:
        s.close()  # the children hold their own copies
    try:
        if warmup_s > 0:
            _chain_pass(client, addrs[0], rate, warmup_s, drain_s, tag=1)
        pids = {"client": os.getpid(), **{f"relay{k + 1}": p.pid for k, p in enumerate(procs)}}
        meter = CpuMeter(pids)
        loop = _chain_pass(client, addrs[0], rate, duration_s, drain_s, tag=2)
        cpu = meter.stop(loop.count)
    finally:
        for p in procs:  # our own children, by pid
            if p.pid is not None:
                try:
                    os.kill(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in procs:
            p.join(5)
        client.close()
        if syncing is not None:
            os.close(sync_fd)
            try:
                os.unlink(sync_path)
            except FileNotFoundError:
                pass
    lat = loop.latencies()
    return {
        "relays": relays, "hops": relays + 1, "rate": rate, "duration_s": duration_s,
        "fdatasync_relay": None if syncing is None else syncing + 1,
        "sent": loop.count, "answered": len(lat), "missing": loop.count - len(lat),
        "latency": summarize(lat, with_hist=True),
        "sender_lag": summarize(loop.sender_lag()),
        "cpu": cpu,
    }


def _chain_pass(client: socket.socket, first: tuple[str, int], rate: float,
                duration_s: float, drain_s: float, tag: int) -> OpenLoop:
    count = max(1, int(rate * duration_s))
    loop = OpenLoop(count, rate)
    pad = b"\0" * (MESSAGE_BYTES - _TAG_IDX.size)
    frames = [_TAG_IDX.pack(tag, i) + pad for i in range(count)]
    sendto = client.sendto
    stop = threading.Event()

    def receive() -> None:
        client.settimeout(0.2)
        recv, mono, unpack, arrived = client.recv, time.monotonic_ns, _TAG_IDX.unpack_from, loop.arrived
        while not stop.is_set():
            try:
                data = recv(2048)
            except TimeoutError:
                continue
            now = mono()
            got, i = unpack(data)
            if got == tag:  # a straggler of an earlier pass is not this pass's reply
                arrived(i, now)

    rx = threading.Thread(target=receive, name="chain-receiver", daemon=True)
    rx.start()
    sender = loop.run_sender(lambda i: sendto(frames[i], first))
    loop.wait(sender, drain_s)
    stop.set()
    rx.join(2)
    return loop


def format_line(name: str, s: dict) -> str:
    if not s.get("count"):
        return f"{name:<28} (no samples)"
    tail = f"  ({s['negative']} negative)" if s.get("negative") else ""
    return (f"{name:<28} n={s['count']:<6} p50={s['p50_us']:>8.1f}  p99={s['p99_us']:>8.1f}  "
            f"p99.9={s['p99.9_us']:>8.1f}  max={s['max_us']:>9.1f} us{tail}")


def format_cpu(c: dict) -> str:
    return (f"cpu over {c['wall_s']:.1f} s on {c['vcpus']} vCPUs: machine busy "
            f"{c['machine_busy_s']:.1f} s (ours {c['ours_s']:.1f}, others {c['others_s']:.1f}), "
            f"steal {c['steal_s']:.2f} s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Bare UDP relay chain, open loop (the pipeline's floor).")
    ap.add_argument("--rate", type=float, default=2000.0, help="messages per second (default 2000)")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds (default 10, max 60)")
    ap.add_argument("--relays", type=int, default=4, help="relay processes (default 4: 5 hops)")
    ap.add_argument("--fsync-dir", metavar="DIR",
                    help="the next-to-last relay group-commits what is queued (one pwrite, one "
                         "fdatasync) to a file in DIR before passing it on")
    ap.add_argument("--json", metavar="OUT", help="write the summary as JSON")
    args = ap.parse_args(argv)
    if not 0 < args.duration <= MAX_DURATION_S:
        ap.error(f"--duration must be in (0, {MAX_DURATION_S:g}]")
    res = run_chain(args.rate, args.duration, args.relays, sync_dir=args.fsync_dir)
    synced = (f", relay {res['fdatasync_relay']} group-commits with fdatasync"
              if res["fdatasync_relay"] else "")
    print(f"relay chain: {res['relays']} relays ({res['hops']} hops{synced}), {args.rate:g}/s for "
          f"{args.duration:g} s, sent {res['sent']}, missing {res['missing']}")
    print(format_line("chain latency", res["latency"]))
    print(format_line("sender lag", res["sender_lag"]))
    print(format_cpu(res["cpu"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
