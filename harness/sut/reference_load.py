"""``ReferenceSut`` options for a load profile: its durability policy, and enough instruments.

It sits beside the reference adapter because it builds a reference cluster
config: ``crucible load`` asks it for the reference SUT only, and an
external SUT trades what its descriptor lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reference_impl import config as config_mod

MANY_SYMBOLS_TICK = 100


def reference_options(profile: Mapping[str, Any]) -> dict[str, Any]:
    """``ReferenceSut`` options for a profile: its durability policy, and enough instruments
    for ``workload.symbols`` (``SYM0001``... added to the packaged config's)."""
    opts: dict[str, Any] = {}
    if profile.get("durability"):
        opts["durability"] = str(profile["durability"])
    want = (profile.get("workload") or {}).get("symbols")
    if isinstance(want, int):
        cfg = config_mod.load(None)
        instruments = dict(cfg.instruments)
        n = 1
        while len(instruments) < want:
            instruments.setdefault(f"SYM{n:04d}", MANY_SYMBOLS_TICK)
            n += 1
        if len(instruments) != len(cfg.instruments):
            opts["config"] = cfg.with_overrides(instruments=instruments)
    return opts
