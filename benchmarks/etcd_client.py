"""Which Python etcd v3 client the arbiters use: latency of a lease keep-alive and a compare-and-set.

    python benchmarks/etcd_client.py [--rounds 20] [--batch 50]

Starts its own etcd on loopback (reference_impl.launch.etcd, ports 29911/29912,
data in a temporary directory), then measures each candidate client that
imports here, in interleaved rounds (client A's batch, client B's batch, ...)
so that the machine's noise falls on every client alike:

- keep-alive: one lease refresh, request to reply (the arbiter's duty every TTL/3);
- CAS: a transaction "if the key's value is V, put V+1" that succeeds (a
  campaign is the same shape: "if the key does not exist, put it").

Candidates: etcd3gw (HTTP/JSON gateway, synchronous, requests), aetcd (asyncio,
gRPC). python-etcd3 (``etcd3``, last released 2020) is listed when it imports;
with a current protobuf it does not. Install a candidate into the environment
(``pip install aetcd``) to measure it. Figures on a shared 2-vCPU machine are noisy:
compare the clients within one run, not across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.report.samples import percentile_us
from reference_impl.launch.etcd import EtcdServer

CLIENT_PORT, PEER_PORT = 29911, 29912


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


class Etcd3gw:
    """etcd3gw: one requests.Session, JSON over HTTP/1.1 keep-alive connections."""

    name = "etcd3gw"

    def __init__(self, port: int) -> None:
        from etcd3gw.client import Etcd3Client
        self.client = Etcd3Client(host="127.0.0.1", port=port, api_path="/v3/", timeout=2)
        self.lease = self.client.lease(10)
        self.key, self.value = f"/bench/{self.name}", 0
        self.client.put(self.key, "0")

    def batch(self, op: str, n: int) -> list[int]:
        fn: Callable[[], object] = self.lease.refresh if op == "keepalive" else self._cas
        out = []
        for _ in range(n):
            t = time.perf_counter_ns()
            fn()
            out.append(time.perf_counter_ns() - t)
        return out

    def _cas(self) -> None:
        old, new = str(self.value), str(self.value + 1)
        reply = self.client.transaction({
            "compare": [{"key": _b64(self.key), "result": "EQUAL", "target": "VALUE", "value": _b64(old)}],
            "success": [{"request_put": {"key": _b64(self.key), "value": _b64(new)}}], "failure": []})
        assert reply.get("succeeded"), reply
        self.value += 1

    def close(self) -> None:
        self.lease.revoke()


class Aetcd:
    """aetcd: asyncio over gRPC (grpcio), one channel; each batch runs in one event-loop call."""

    name = "aetcd"

    def __init__(self, port: int) -> None:
        import aetcd
        self.loop = asyncio.new_event_loop()
        self.client = aetcd.Client(host="127.0.0.1", port=port, timeout=2)
        self.lease = self.loop.run_until_complete(self.client.lease(10))
        self.key, self.value = f"/bench/{self.name}".encode(), 0
        self.loop.run_until_complete(self.client.put(self.key, b"0"))

    def batch(self, op: str, n: int) -> list[int]:
        return self.loop.run_until_complete(self._batch(op, n))

    async def _batch(self, op: str, n: int) -> list[int]:
        out = []
        for _ in range(n):
            t = time.perf_counter_ns()
            if op == "keepalive":
                await self.client.refresh_lease(self.lease.id)
            else:
                await self._cas()
            out.append(time.perf_counter_ns() - t)
        return out

    async def _cas(self) -> None:
        tx = self.client.transactions
        ok, _ = await self.client.transaction(
            compare=[tx.value(self.key) == str(self.value).encode()],
            success=[tx.put(self.key, str(self.value + 1).encode())], failure=[])
        assert ok
        self.value += 1

    def close(self) -> None:
        self.loop.run_until_complete(self.lease.revoke())
        self.loop.run_until_complete(self.client.close())
        self.loop.close()


CANDIDATES = (Etcd3gw, Aetcd)



def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--batch", type=int, default=50)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, EtcdServer(tmp, CLIENT_PORT, PEER_PORT):
        clients = []
        for cls in CANDIDATES:
            try:
                clients.append(cls(CLIENT_PORT))
            except ImportError as exc:
                print(f"{cls.name}: not installed ({exc.name}); skipped")
        samples: dict[tuple[str, str], list[int]] = {}
        for _ in range(args.rounds):
            for c in clients:
                for op in ("keepalive", "cas"):
                    samples.setdefault((c.name, op), []).extend(c.batch(op, args.batch))
        for c in clients:
            c.close()
    print(f"{'client':10} {'op':10} {'n':>6} {'p50 us':>8} {'p99 us':>8} {'mean us':>8}")
    for (name, op), xs in samples.items():
        print(f"{name:10} {op:10} {len(xs):6d} {percentile_us(xs, 50):8.0f} {percentile_us(xs, 99):8.0f} "
              f"{statistics.fmean(xs) / 1000:8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
