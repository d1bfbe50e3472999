"""The gateway's per-process start-up: incarnation and garbage-collector settings.

(``event_loop_name`` is tested with the config it reads, in test_config.py.)
"""

from __future__ import annotations

import gc

from reference_impl.gateway import main as gateway_main


def test_incarnation_grows_even_within_one_second(tmp_path) -> None:
    run_dir = tmp_path / "run"
    assert gateway_main.next_incarnation(run_dir, 1, 1_700_000_000) == 1_700_000_000
    assert gateway_main.next_incarnation(run_dir, 1, 1_700_000_000) == 1_700_000_001
    assert gateway_main.next_incarnation(run_dir, 1, 1_800_000_000) == 1_800_000_000
    assert gateway_main.next_incarnation(run_dir, 2, 5) == 5  # per gateway id
    assert (run_dir / "gateway-1.incarnation").read_text() == "1800000000\n"


def test_an_unreadable_previous_incarnation_counts_as_none(tmp_path) -> None:
    (tmp_path / "gateway-1.incarnation").write_text("garbage\n")
    assert gateway_main.next_incarnation(tmp_path, 1, 7) == 7
    assert gateway_main.next_incarnation(tmp_path, 1, 2**32 + 3) == 3  # kept to a u32


def test_freeze_gc_survivors_installs_its_callback_once() -> None:
    try:
        gateway_main.freeze_gc_survivors()
        gateway_main.freeze_gc_survivors()
        assert gc.callbacks.count(gateway_main._freeze_after_young) == 1
        assert gc.get_freeze_count() > 0
    finally:
        if gateway_main._freeze_after_young in gc.callbacks:
            gc.callbacks.remove(gateway_main._freeze_after_young)
        gc.unfreeze()
