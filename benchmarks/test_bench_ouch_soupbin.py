"""Binary door codecs on the hot path: OUCH Enter Order and a SoupBinTCP data packet.

Run with ``pytest benchmarks/test_bench_ouch_soupbin.py --benchmark-only``;
compare runs with ``--benchmark-autosave`` / ``--benchmark-compare``.
"""

from __future__ import annotations

from reference_impl.core import ouch_codec as oc
from reference_impl.core import soupbin_codec as sb

ENTER = oc.EnterOrder("ORD0000012345", b"B", 100, "AAPL", 1_500_000, 99_998, "FIRM",
                      b"Y", b"A", b"N", 0, b"N", b" ")
ENTER_BYTES = oc.encode(ENTER)
SEQUENCED = sb.SequencedData(ENTER_BYTES)
SEQUENCED_BYTES = sb.encode(SEQUENCED)


def test_bench_ouch_encode_enter_order(benchmark):
    assert benchmark(oc.encode, ENTER) == ENTER_BYTES


def test_bench_ouch_decode_enter_order(benchmark):
    assert benchmark(oc.decode_inbound, ENTER_BYTES) == ENTER


def test_bench_ouch_enter_to_core(benchmark):
    assert benchmark(oc.enter_to_core, ENTER).qty == 100


def test_bench_soupbin_encode_sequenced(benchmark):
    assert benchmark(sb.encode, SEQUENCED) == SEQUENCED_BYTES


def test_bench_soupbin_decode_sequenced(benchmark):
    assert benchmark(sb.decode, SEQUENCED_BYTES, False) == SEQUENCED


def test_bench_soupbin_framer_sequenced(benchmark):
    framer = sb.SoupBinFramer(from_client=False)
    assert benchmark(framer.feed, SEQUENCED_BYTES) == [SEQUENCED]
