"""A load run's bookkeeping (harness.load_result), checked on literal ops."""

from __future__ import annotations

from harness import history as hist
from harness.history import History
from harness.load_result import LoadResult


def test_result_bookkeeping_on_literal_ops() -> None:
    h = History(clock=iter(range(0, 10**12, 1000)).__next__)
    t0, offsets = 0, [0, 1_000_000, 2_000_000]
    a = h.invoke(0, "new", {"token": "A", "intended_ns": 0})
    b = h.invoke(0, "new", {"token": "B", "intended_ns": 1_000_000})
    c = h.invoke(0, "cancel", {"token": "A", "intended_ns": 2_000_000})
    done = [h.complete(a, hist.OK, {"outputs": []}),
            h.complete(b, hist.FAIL, {"outputs": [{"type": "rejected", "reason": "backpressure"}]}),
            h.complete(c, hist.INFO, {"outputs": [], "reason": "timeout"})]
    r = LoadResult("ouch", {"duration_s": 3}, t0, offsets, [a, b, c], done, 3.0)
    counts = r.counts()
    assert (counts["ok"], counts["fail"], counts["info"], counts["backpressure"]) == (1, 1, 1, 1)
    assert r.unanswered == 1
    samples = r.samples()
    assert [t for t, _ in samples["wire"]] == [0, 1_000_000, 2_000_000]  # timed from the intended send
    assert samples["send_lag"][1] == (1_000_000, b.time_ns - 1_000_000)

