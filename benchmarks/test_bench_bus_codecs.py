"""Bus codecs on the hot path: a full MoldUDP64 packet, a sequenced NewOrder, a WAL record.

Run with ``pytest benchmarks/test_bench_bus_codecs.py --benchmark-only``;
compare runs with ``--benchmark-autosave`` / ``--benchmark-compare``.
"""

from __future__ import annotations

from reference_impl.core import mold_codec as mc
from reference_impl.core import sequenced_codec as sc
from reference_impl.core import wal_codec as wc
from reference_impl.core.messages import NewOrder, OrdType, Sequenced, Side, Tif
from reference_impl.core.receiver import Receiver

SESSION = b"CRUCIN0001"
ORDER = Sequenced(123_456, 1_700_000_000_000_000_000, 1, 1, 99, "DEMO1",
                  NewOrder("ORD0000012345", "ACME", Side.BUY, 100, 1_500_000,
                           OrdType.LIMIT, Tif.DAY, 0))
ORDER_BYTES = sc.encode(ORDER)
# 18 NewOrder blocks of 74 bytes: 20 + 18 * 76 = 1388 bytes, the most a 1400-byte packet holds.
BATCH = [ORDER_BYTES] * 18
PACKET = mc.encode_packet(SESSION, 123_456, BATCH)
assert len(PACKET) == 1388 and mc.plan_packets(BATCH) == [BATCH]


def test_bench_mold_encode_packet(benchmark):
    assert benchmark(mc.encode_packet, SESSION, 123_456, BATCH) == PACKET


def test_bench_mold_decode_packet(benchmark):
    assert len(benchmark(mc.decode_packet, PACKET).messages) == 18


def test_bench_mold_plan_packets(benchmark):
    assert len(benchmark(mc.plan_packets, BATCH * 10)) == 10


def test_bench_sequenced_encode_new_order(benchmark):
    assert benchmark(sc.encode, ORDER) == ORDER_BYTES


def test_bench_sequenced_decode_new_order(benchmark):
    assert benchmark(sc.decode, ORDER_BYTES) == ORDER


def test_bench_wal_encode_record(benchmark):
    assert len(benchmark(wc.encode_record, 123_456, ORDER_BYTES)) == 16 + 74


def test_bench_receiver_in_order_packet(benchmark):
    rx = Receiver()
    messages = list(BATCH)

    def feed():
        return rx.on_messages(rx.next_seq, messages, 0)

    assert len(benchmark(feed)) == 18
