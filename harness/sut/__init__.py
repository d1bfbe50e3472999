"""SUT adapters: what the suites drive (``base.Sut``), for the reference and for anyone else.

``load_sut("reference", run_dir, seed)`` gives a ``ReferenceSut`` (the
packaged default config, moved to a free port block at start);
``load_sut("path/to/sut.yaml", run_dir, seed)`` an ``ExternalSut`` from that
descriptor (docs/certify-your-exchange.md). Extra keyword options (durability,
transport, faults, fsync_delay_ms, bus_relay, relay_rates, output_relay,
port_offset) go to the adapter. An external SUT accepts ``bus_relay``,
``relay_rates`` and ``output_relay`` but does not offer the relays
(``offers("bus_relay")`` is False), and raises
``NotSupported`` for an option that would change what is under test (another
durability policy, faults, transport, fsync delay), so a suite can mark the
requirement ``N/A``. The suites reach a SUT through ``base.Sut`` alone: its
optional capabilities are listed in ``base``'s module doc.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.sut.base import (
    FEATURES,
    ROLES,
    WAL_DAMAGE,
    NotSupported,
    StreamPort,
    Sut,
    SutError,
    journal_orders,
)

__all__ = [
    "FEATURES",
    "ROLES",
    "SUT_NAMES",
    "WAL_DAMAGE",
    "NotSupported",
    "StreamPort",
    "Sut",
    "SutError",
    "journal_orders",
    "load_sut",
]

SUT_NAMES = ("reference",)


def load_sut(name_or_path: str | Path, run_dir: str | Path, seed: int = 0, **options: Any) -> Sut:
    """The SUT named ``reference`` or described by the YAML file at ``name_or_path``."""
    text = str(name_or_path)
    if text == "reference":
        from harness.sut.reference import ReferenceSut

        return ReferenceSut(run_dir, seed, **options)
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise FileNotFoundError(f"no SUT descriptor at {path}")
        from harness.sut.external import ExternalSut

        return ExternalSut(path, run_dir, seed, **options)
    raise ValueError(f"unknown SUT {text!r}: give one of {', '.join(SUT_NAMES)} "
                     "or the path of a YAML descriptor")
