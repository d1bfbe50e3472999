"""The system-under-test interface every suite drives, whatever the exchange is.

A ``Sut`` is a handful of processes with doors (HTTP, OUCH/SoupBinTCP) that
clients talk to, named components the nemesis can kill, pause, resume and
restart, and optional windows into its state. Suites never assume more than
``offers(feature)`` says, and reach the SUT through nothing but this class: a
requirement whose feature the SUT does not offer is ``N/A``, never a pass and
never a fail.

The vocabulary of optional capabilities (each a ``FEATURES`` name; the
method raises ``NotSupported`` by default):

- ``digest`` / ``checkpoints``: a component's state digest, a replica's
  ``(seq, state_hash)`` checkpoints; ``health``: its health answer.
- ``journal``: the sequenced input as replay-format input dicts.
- ``wal``: ``wal_records()``, the sequenced input *as stored*: ``(seq,
  payload)`` of every intact record (a ``sequenced_codec`` frame, with the
  request identity), up to the first defect, as recovery would read it.
- ``wal_damage``: ``damage_wal(how)`` cuts short (``torn``) or flips a bit of
  (``bitflip``) the last stored record, or flips a bit in a record that intact
  records follow (``bitflip-middle``), while the ``logger`` component is
  stopped; ``repair_wal()`` puts back what the last damage changed;
  ``verify_wal()`` runs the format's offline verifier.
- ``output_streams``: every output stream an engine published, fetched from
  the bus, as replay-format output dicts, with per-engine coverage.
- ``rerequest``: ``stream_port(name)``, where a component answers MoldUDP64
  re-requests for the stream it publishes (the sequencer's input stream).
- ``bus_relay``: a fault-injecting relay on the input bus:
  ``set_bus_faults(rates)``, ``bus_fault_counts()``.
- ``output_relay``: a fault-injecting relay on the output stream toward the
  gateways: ``set_output_faults(rates)``, ``output_fault_counts()``.
- ``offline_replay``: ``offline_replay(entries, work_dir)`` runs a
  replay-format input file through the SUT's *own* engine and returns the
  output lines (the last one ``{"type":"end","last_seq","state_hash"}``).
- ``stages``: ``stages(name, n)``, per-request stage timestamps of a gateway.
- ``in_flight_limit()``: the declared backpressure threshold, the most new
  orders one gateway admits in flight (both doors, every session) while
  nothing is sequenced; past it a new order is refused at once.
- ``power_off`` (``data_dirs()``), ``kill``/``pause``/``restart``,
  ``recover``, ``faults`` (the reference's test-only broken variants).

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
from typing import Any, NamedTuple

#: Features a suite may ask ``offers()`` about.
FEATURES = frozenset({
    "http",  # an HTTP/JSON door (endpoints()["http"])
    "ouch",  # an OUCH 4.2 / SoupBinTCP 3.0 door (endpoints()["ouch"])
    "digest",  # digest(name) of at least one component
    "checkpoints",  # checkpoints(name) of the engine replicas
    "health",  # health(name)
    "journal",  # journal(): the sequenced input as replay-format dicts
    "wal",  # wal_records(): the sequenced input as stored
    "wal_damage",  # damage_wal(how), repair_wal(), verify_wal()
    "output_streams",  # output_streams(): what each engine published, from the bus
    "rerequest",  # stream_port(name): a MoldUDP64 re-request port
    "offline_replay",  # offline_replay(entries, work_dir) by the SUT's own engine
    "stages",  # stages(name, n): per-request stage timestamps
    "bus_relay",  # a fault-injecting UDP relay on the input bus (set_bus_faults)
    "output_relay",  # a fault-injecting UDP relay on the output stream to the gateways
    "power_off",  # data_dirs() can be put on the lossy filesystem before start
    "kill", "pause", "restart",  # the nemesis verbs on components
    "recover",  # cold recovery of a component (a later issue)
    "faults",  # the test-only broken variants (reference only)
})

#: ``damage_wal`` kinds: what a crash can leave (a torn or bit-flipped last record), and what
#: no crash explains (a flipped bit with intact records after it).
WAL_DAMAGE = ("torn", "bitflip", "bitflip-middle")

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


class StreamPort(NamedTuple):
    """Where a MoldUDP64 stream's re-requests go, and the stream's session name."""

    host: str
    port: int
    session: bytes


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

    def health(self, name: str) -> bool:
        """Whether the component answers its health check with ok."""
        raise NotSupported(f"{self.name}: no health endpoint for {name!r}")

    def journal(self) -> list[dict] | None:
        """The sequenced input as replay-format dicts (None: the SUT does not offer it)."""
        return None

    def wal_records(self) -> list[tuple[int, bytes]]:
        """``(seq, sequenced_codec payload)`` of every intact stored record, oldest first."""
        raise NotSupported(f"{self.name} offers no WAL in a format the harness reads")

    def damage_wal(self, how: str) -> dict[str, Any]:
        """Damage the stored WAL (``WAL_DAMAGE``) with its writer stopped; what was done."""
        raise NotSupported(f"{self.name}: no WAL in a format the harness can damage")

    def repair_wal(self) -> None:
        """Put back the bytes the last ``damage_wal`` changed."""
        raise NotSupported(f"{self.name}: no WAL in a format the harness can damage")

    def verify_wal(self) -> tuple[int, str]:
        """The WAL format's offline verifier: ``(exit code, output)``; 1 means a bad record."""
        raise NotSupported(f"{self.name}: no WAL in a format the harness can verify")

    def output_streams(self, coverage: dict[str, dict] | None = None) -> dict[str, list[dict]]:
        """``{engine: [replay-format output dict, ...]}`` of every stream published.

        ``coverage`` (when given) gets ``{engine: {"published_seq", "fetched",
        "first_missing"}}``: a fetch may be partial, and partial evidence is
        UNKNOWN, never a pass (``check_stream_coverage``).
        """
        raise NotSupported(f"{self.name}: its output streams are not observable from the harness")

    def stream_port(self, name: str) -> StreamPort:
        """Where component ``name`` answers MoldUDP64 re-requests for the stream it publishes."""
        raise NotSupported(f"{self.name} does not expose a re-request port of {name!r}")

    def set_bus_faults(self, rates: Any) -> None:
        """Drop / duplicate / reorder input-bus datagrams at ``rates`` (a ``UdpFaultRates``)."""
        raise NotSupported(f"{self.name}: the bus relay is not reachable from the harness")

    def bus_fault_counts(self) -> dict[str, int]:
        """The bus relay's counts so far (``received``, ``dropped``, ``duplicated``, ...)."""
        raise NotSupported(f"{self.name}: the bus relay is not reachable from the harness")

    def set_output_faults(self, rates: Any) -> None:
        """Drop / duplicate / reorder / delay output-stream datagrams toward the gateways."""
        raise NotSupported(f"{self.name}: the output-stream relay is not reachable from the harness")

    def output_fault_counts(self) -> dict[str, int]:
        """The output relay's counts so far (the same keys as ``bus_fault_counts``)."""
        raise NotSupported(f"{self.name}: the output-stream relay is not reachable from the harness")

    def offline_replay(self, entries: list[dict], work_dir: Path) -> list[str]:
        """``entries`` (replay-format input dicts) through the SUT's own engine, offline.

        Returns the output lines, the last one the ``end`` line with the final
        ``last_seq`` and ``state_hash`` (docs/replay-format.md). ``work_dir``
        holds the files; a replay that fails raises ``SutError``.
        """
        raise NotSupported(f"{self.name} offers no offline replay of an input file")

    def stages(self, name: str, n: int) -> dict[str, Any]:
        """The gateway's stage timestamps of its last ``n`` answers (``fields``, ``stages``)."""
        raise NotSupported(f"{self.name}: no stage timestamps from {name!r}")

    def in_flight_limit(self) -> int:
        """The declared in-flight limit (module doc); backpressure is judged against it."""
        raise NotSupported(f"{self.name} declares no in-flight limit")

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
