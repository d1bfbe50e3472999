"""The system-under-test interface every suite drives, whatever the exchange is.

A ``Sut`` is a handful of processes with doors (HTTP, OUCH/SoupBinTCP) that
clients talk to, named components the nemesis can kill, pause, resume and
restart, and optional windows into its state (a digest per component, replica
checkpoints, its journal as replay-format input lines, its data directories).
Suites never assume more than ``offers(feature)`` says: a requirement whose
feature the SUT does not offer is ``N/A``, never a pass and never a fail.

Two adapters implement it: ``ReferenceSut`` (``reference_impl`` launched by
its own launcher) and ``ExternalSut`` (any implementation, described by a
YAML descriptor, see docs/certify-your-exchange.md).

Lifecycle: construct, ``start()``, use, ``stop()``; a ``Sut`` is also a
context manager. ``start()`` after ``stop()`` starts it again on the same
run and data directories (a cold restart).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: Features a suite may ask ``offers()`` about.
FEATURES = frozenset({
    "http",  # an HTTP/JSON door (endpoints()["http"])
    "ouch",  # an OUCH 4.2 / SoupBinTCP 3.0 door (endpoints()["ouch"])
    "digest",  # digest(name) of at least one component
    "checkpoints",  # checkpoints(name) of the engine replicas
    "journal",  # journal(): the sequenced input as replay-format dicts
    "bus_relay",  # a fault-injecting UDP relay sits on the input bus (``relay``)
    "power_off",  # data_dirs() can be put on the lossy filesystem before start
    "kill", "pause", "restart",  # the nemesis verbs on components
    "recover",  # cold recovery of a component (a later issue)
    "faults",  # the test-only broken variants (reference only)
})

#: Conventional component roles (``roles()``); suites look components up by role.
ROLES = ("gateway", "sequencer", "primary", "secondary", "logger", "other")


class NotSupported(Exception):
    """The SUT does not offer this (suites turn it into an ``N/A`` verdict)."""


class SutError(RuntimeError):
    """A SUT did something an adapter cannot carry on from (a start that failed, ...)."""

    def __init__(self, component: str, reason: str, log_tail: str = "") -> None:
        self.component, self.reason, self.log_tail = component, reason, log_tail
        text = f"{component}: {reason}"
        if log_tail:
            text += f"\n--- last lines of {component}'s log ---\n{log_tail}"
        super().__init__(text)


class Sut(abc.ABC):
    """One exchange under test; see the module doc."""

    name: str = "sut"
    run_dir: Path

    # -------------------------------------------------------------- lifecycle

    @abc.abstractmethod
    def start(self) -> Sut:
        """Start every component, each ready before the next; returns self."""

    @abc.abstractmethod
    def stop(self) -> dict[str, str]:
        """Stop everything started, in reverse order; ``{component: outcome}``."""

    def __enter__(self) -> Sut:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -------------------------------------------------------------- description

    @property
    @abc.abstractmethod
    def durability(self) -> str:
        """The durability policy under test: ``fsync``, ``replicated`` or ``none``."""

    @abc.abstractmethod
    def endpoints(self) -> dict[str, Any]:
        """``{"http": base URL | None, "ouch": (host, port) | None}``."""

    @abc.abstractmethod
    def accounts(self) -> dict[str, str]:
        """``{account: password}`` the doors accept."""

    def instruments(self) -> dict[str, int]:
        """``{symbol: tick}`` the SUT trades (empty when the descriptor does not say)."""
        return {}

    @abc.abstractmethod
    def components(self) -> dict[str, int]:
        """``{component: pid}`` of every started component."""

    @abc.abstractmethod
    def roles(self) -> dict[str, list[str]]:
        """``{role: [component, ...]}`` (``ROLES``)."""

    @abc.abstractmethod
    def offers(self, feature: str) -> bool:
        """Whether the SUT offers ``feature`` (one of ``FEATURES``)."""

    def data_dirs(self) -> dict[str, Path]:
        """``{component: directory}`` holding what each component persists."""
        return {}

    # -------------------------------------------------------------- nemesis verbs

    @abc.abstractmethod
    def kill(self, name: str) -> None:
        """SIGKILL the component; returns once it is gone."""

    @abc.abstractmethod
    def pause(self, name: str) -> None:
        """SIGSTOP the component."""

    @abc.abstractmethod
    def resume(self, name: str) -> None:
        """SIGCONT the component."""

    @abc.abstractmethod
    def restart(self, name: str) -> int:
        """Stop the component (gracefully, else SIGKILL), start it, wait until ready; its pid."""

    def recover(self, name: str) -> int:
        """Cold recovery of a component from its data (a later issue)."""
        raise NotSupported(f"{self.name}: recover({name!r}) is not offered yet")

    # -------------------------------------------------------------- state

    def digest(self, name: str) -> dict[str, Any]:
        """The component's state digest (engines: ``applied_seq``, ``state_hash``, ...)."""
        raise NotSupported(f"{self.name}: no digest endpoint for {name!r}")

    def checkpoints(self, name: str) -> list[tuple[int, str]]:
        """Every ``(seq, state_hash)`` checkpoint the replica recorded, oldest first."""
        raise NotSupported(f"{self.name}: no checkpoints endpoint for {name!r}")

    def journal(self) -> list[dict] | None:
        """The sequenced input as replay-format dicts (None: the SUT does not offer it)."""
        return None

    # -------------------------------------------------------------- helpers

    def role(self, role: str) -> str:
        """The single component with ``role``; ``NotSupported`` if there is none."""
        names = self.roles().get(role, [])
        if not names:
            raise NotSupported(f"{self.name}: no component with role {role!r}")
        return names[0]

    def require(self, *features: str) -> None:
        """Raise ``NotSupported`` naming the first feature the SUT does not offer."""
        for f in features:
            if not self.offers(f):
                raise NotSupported(f"{self.name} does not offer {f!r}")


def check_feature(feature: str) -> None:
    if feature not in FEATURES:
        raise ValueError(f"unknown feature {feature!r} (known: {', '.join(sorted(FEATURES))})")


def journal_orders(entries: Iterable[dict]) -> set[tuple[str, str]]:
    """``(account, token)`` of every new order and every replace's new token in a journal."""
    out: set[tuple[str, str]] = set()
    for e in entries:
        if e.get("type") == "new":
            out.add((e["account"], e["token"]))
        elif e.get("type") == "replace":
            out.add((e["account"], e["new_token"]))
    return out
