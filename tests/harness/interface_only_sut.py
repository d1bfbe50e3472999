"""A second SUT for the suites: the reference seen through the ``Sut`` interface alone.

``InterfaceOnly`` wraps a ``Sut`` and forwards every ``Sut`` method, except
the capabilities named in ``CRUCIBLE_FAKE_WITHHOLD`` (comma-separated
``FEATURES``): those it does not offer, and their methods raise
``NotSupported``. Any attribute that ``Sut`` does not define (``config``,
``relay``, ``admin``...) raises ``InterfaceBreach``, so a suite that reaches
past the adapter errors out instead of quietly working.

As a pytest plugin (``-p tests.harness.interface_only_sut``) it wraps every
SUT ``harness.sut.load_sut`` builds (``pytest_configure`` swaps it before the
suites import it; importing the module changes nothing).
"""

from __future__ import annotations

import abc
import os
from typing import Any

import harness.sut as sut_pkg
from harness.sut.base import FEATURES, NotSupported, Sut

WITHHOLD_ENV = "CRUCIBLE_FAKE_WITHHOLD"

#: the methods each optional capability consists of
METHODS = {
    "digest": ("digest",), "checkpoints": ("checkpoints",), "health": ("health",),
    "journal": ("journal",), "wal": ("wal_records",),
    "wal_damage": ("damage_wal", "repair_wal", "verify_wal"),
    "output_streams": ("output_streams",), "rerequest": ("stream_port",),
    "bus_relay": ("set_bus_faults", "bus_fault_counts"), "offline_replay": ("offline_replay",),
    "output_relay": ("set_output_faults", "output_fault_counts"),
    "stages": ("stages",), "power_off": ("data_dirs",), "recover": ("recover",),
}


#: what a withheld method returns instead of raising (the base class's "not offered")
WITHHELD_VALUE: dict[str, Any] = {"journal": None, "data_dirs": {}}
#: every other Sut method, forwarded to the wrapped SUT unless withheld
FORWARDED = ("stop", "endpoints", "accounts", "instruments", "components", "roles",
             "kill", "pause", "resume", "restart",
             *sorted({m for ms in METHODS.values() for m in ms}))


class InterfaceBreach(AssertionError):
    """A suite used an attribute that the ``Sut`` interface does not define."""


class InterfaceOnly(Sut):
    """``inner`` through the ``Sut`` interface only, without the ``withheld`` capabilities."""

    def __init__(self, inner: Sut, withheld: frozenset[str]) -> None:
        unknown = withheld - FEATURES
        if unknown:
            raise ValueError(f"unknown features to withhold: {sorted(unknown)}")
        self._inner, self._withheld = inner, withheld
        self.name, self.run_dir = f"interface-only {inner.name}", inner.run_dir
        self._blocked = {m for f in withheld for m in METHODS.get(f, ())}

    def __getattr__(self, attr: str) -> Any:  # only for names Sut does not define
        raise InterfaceBreach(f"a suite used {attr!r}, which is not part of the Sut interface")

    def _call(self, method: str, *args: Any) -> Any:
        if method in self._blocked:
            if method in WITHHELD_VALUE:
                return WITHHELD_VALUE[method]
            raise NotSupported(f"{self.name}: {method} is withheld")
        return getattr(self._inner, method)(*args)

    def offers(self, feature: str) -> bool:
        return feature not in self._withheld and self._inner.offers(feature)

    @property
    def durability(self) -> str:
        return self._inner.durability

    def start(self) -> Sut:
        self._inner.start()
        return self


def _forward(method: str) -> Any:
    def call(self: InterfaceOnly, *args: Any) -> Any:
        return self._call(method, *args)
    call.__name__ = method
    return call


for _method in FORWARDED:
    setattr(InterfaceOnly, _method, _forward(_method))
abc.update_abstractmethods(InterfaceOnly)


def withheld() -> frozenset[str]:
    return frozenset(f.strip() for f in os.environ.get(WITHHOLD_ENV, "").split(",") if f.strip())


_real_load_sut = sut_pkg.load_sut


def _load_interface_only(name_or_path: Any, run_dir: Any, seed: int = 0, **options: Any) -> Sut:
    return InterfaceOnly(_real_load_sut(name_or_path, run_dir, seed, **options), withheld())


def pytest_configure(config: Any) -> None:
    """As a ``-p`` plugin: wrap every SUT, before the suites import ``load_sut``."""
    sut_pkg.load_sut = _load_interface_only
