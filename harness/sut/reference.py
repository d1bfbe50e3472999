"""``ReferenceSut``: the reference implementation, launched by ``reference_impl.launch.cluster``.

The packaged default config (or a given one) gets the constructor's
overrides (durability, transport, the test-only ``faults`` and
``fsync_delay_ms``), then, at each ``start()``, every port is moved by one
offset taken from ``harness.sut.ports`` (the previous offset is tried first,
so a cold restart usually keeps its endpoints; ``port_offset=`` fixes it).
The offset is held from ``start()`` to ``stop()``.

``bus_relay=True`` puts ``harness.nemesis.udp_relay``'s fault-injecting relay
(a thread of this process, clean until ``set_bus_faults(...)``) between the
sequencer and the input-stream subscribers: the sequencer alone gets the
config from ``reference_relay.relayed`` whose fan-out targets are the relay's
ports, inside the same port block. Needs ``transport="unicast"``.
``output_relay=True`` does the same on the output stream toward the gateways
(``set_output_faults(...)``): the engines get the config from
``reference_relay.output_relayed`` whose gateway targets are a second
relay's ports; re-requests and their answers go around it, as on the bus.

Every optional capability of ``base.Sut`` is offered. The logger's WAL is
``crucible-wal-1``: ``journal()`` (``harness.sut.journal``), ``wal_records()``
and the WAL damage read and change it from the harness side
(``harness.sut.wal_files``). Digests, checkpoints, health and stage
timestamps come from each node's UDP admin endpoint; ``output_streams()``
fetches each engine's stream from its retransmission port and
``stream_port("sequencer")`` is the input stream's re-request port (both from
the effective config); ``offline_replay`` runs ``crucible engine replay``, the
reference engine being this SUT's own.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path
from typing import Any

from harness.nemesis.udp_plan import CLEAN, UdpFaultRates
from harness.nemesis.udp_relay import UdpFaultRelay
from harness.sut import offline, wal_files
from harness.sut import ports as port_alloc
from harness.sut.base import ROLES, NotSupported, StreamPort, Sut, SutError, check_feature
from harness.sut.journal import wal_journal
from harness.sut.mold_fetch import published_streams
from harness.sut.reference_relay import (
    input_subscriber_ports,
    output_relayed,
    output_subscriber_ports,
    relayed,
)
from reference_impl import config as config_mod
from reference_impl.config import HOST, ClusterConfig
from reference_impl.edges import process
from reference_impl.launch.cluster import Cluster, ClusterStartError, plan_components

RELAY_BASE_PORT = 17701  #: the relay's listen ports, before the offset (test_cluster agrees)
PORT_RETRIES = 3  #: port blocks given up because another process took a port while the cluster started
log = logging.getLogger(__name__)
_OFFERED = frozenset({"http", "ouch", "digest", "checkpoints", "health", "journal", "wal",
                      "wal_damage", "output_streams", "rerequest", "offline_replay", "stages",
                      "power_off", "kill", "pause", "restart", "faults"})


def _role(component: str, cfg: ClusterConfig) -> str:
    if component.startswith("engine-"):
        return cfg.engine(int(component.split("-", 1)[1])).role
    if component.startswith("gateway-"):
        return "gateway"
    return component if component in ROLES else "other"


def _as_sut_error(exc: ClusterStartError) -> SutError:
    """The launcher's start failure in the harness's words (the one translation point)."""
    return SutError(exc.component, exc.reason, exc.log_tail)


class ReferenceSut(Sut):
    """The reference cluster as a SUT; see the module doc."""

    name = "reference"

    def __init__(self, run_dir: str | Path, seed: int = 0, *,
                 config: ClusterConfig | str | Path | None = None,
                 durability: str | None = None, transport: str | None = None,
                 faults: tuple[str, ...] | list[str] | None = None,
                 fsync_delay_ms: int | None = None, bus_relay: bool = False,
                 relay_rates: UdpFaultRates = CLEAN, output_relay: bool = False,
                 port_offset: int | None = None,
                 health_timeout_s: float = 20.0, stop_grace_s: float = 5.0) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.seed = seed
        base = config if isinstance(config, ClusterConfig) else config_mod.load(config)
        changes: dict[str, Any] = {}
        if durability is not None:
            if durability not in config_mod.DURABILITY:
                raise ValueError(f"durability must be one of {config_mod.DURABILITY}")
            changes["durability"] = durability
        if transport is not None:
            if transport not in config_mod.TRANSPORTS:
                raise ValueError(f"transport must be one of {config_mod.TRANSPORTS}")
            changes["transport"] = transport
        if faults is not None:
            changes["faults"] = tuple(faults)
        if fsync_delay_ms is not None:
            changes["logger"] = dataclasses.replace(base.logger, fsync_delay_ms=fsync_delay_ms)
        self.base_config = base.with_overrides(**changes)
        for asked, what in ((bus_relay, "bus_relay"), (output_relay, "output_relay")):
            if asked and self.base_config.transport != "unicast":
                raise ValueError(f"{what} needs transport='unicast'")
        self.bus_relay = bus_relay
        self.output_relay = output_relay
        self.relay_rates = relay_rates
        self.port_offset = port_offset
        self.health_timeout_s = health_timeout_s
        self.stop_grace_s = stop_grace_s
        n_bus = len(input_subscriber_ports(self.base_config)) if bus_relay else 0
        n_out = len(output_subscriber_ports(self.base_config)) if output_relay else 0
        ports = self._relay_ports(self.base_config, n_bus + n_out)
        self.relay_ports_base, self.output_relay_ports_base = ports[:n_bus], ports[n_bus:]
        self.config: ClusterConfig | None = None  #: the effective (shifted) config once started
        self.cluster: Cluster | None = None
        self.relay: UdpFaultRelay | None = None
        self.relay_counts = None  #: the relay's final counts after ``stop()``
        self.out_relay: UdpFaultRelay | None = None
        self.out_relay_counts = None  #: the output relay's final counts after ``stop()``
        self._block: port_alloc.PortBlock | None = None
        self._last_offset: int | None = port_offset
        self._plan = {c.name: c for c in plan_components(self.base_config)}
        self._wal = wal_files.WalDir(self.data_dirs()["logger"])

    @staticmethod
    def _relay_ports(cfg: ClusterConfig, count: int) -> list[int]:
        taken, out, p = set(cfg.ports()), [], RELAY_BASE_PORT
        while len(out) < count:
            if p not in taken:
                out.append(p)
            p += 1
        return out

    # -------------------------------------------------------------- lifecycle

    def start(self) -> ReferenceSut:
        """Start on a free port block; when a node fails because another process took one of the
        block's ports after the check (a test with fixed ports, another tool), start again on the
        next block, up to ``PORT_RETRIES`` times. A fixed ``port_offset`` is never moved."""
        if self.cluster is not None:
            raise RuntimeError("ReferenceSut is already started")
        all_ports = self.base_config.ports() + self.relay_ports_base + self.output_relay_ports_base
        lost: list[int] = []  # offsets whose ports another process took while we started
        while True:
            if self.port_offset is not None:
                block = port_alloc.take(all_ports, self.port_offset)
            else:
                candidates = [c for c in port_alloc.CANDIDATES if c not in lost]
                prefer = self._last_offset if self._last_offset not in lost else None
                block = port_alloc.allocate(all_ports, prefer=prefer, candidates=candidates)
            try:
                return self._start_on(block)
            except SutError:
                # our nodes are stopped: a port still busy is another process's
                taken = port_alloc.busy_ports(all_ports, block.offset)
                if self.port_offset is not None or not taken or len(lost) >= PORT_RETRIES:
                    raise
                log.warning("ports %s were taken while the cluster started; trying another block",
                            taken[:5])
                lost.append(block.offset)

    def _start_on(self, block: port_alloc.PortBlock) -> ReferenceSut:
        self._block, self._last_offset = block, block.offset
        cfg = self.base_config.shifted(block.offset)
        own: dict[str, ClusterConfig] = {}
        try:
            if self.bus_relay:
                seq_cfg, routes = relayed(cfg, [p + block.offset for p in self.relay_ports_base])
                own["sequencer"] = seq_cfg
                self.relay = UdpFaultRelay(routes, self.seed, self.relay_rates).start()
            if self.output_relay:
                ports = [p + block.offset for p in self.output_relay_ports_base]
                engine_cfg, routes = output_relayed(cfg, ports)
                own.update({f"engine-{e.id}": engine_cfg for e in cfg.engines})
                self.out_relay = UdpFaultRelay(routes, self.seed).start()
            self.config = cfg
            self.cluster = Cluster(cfg, self.run_dir, component_configs=own,
                                   health_timeout_s=self.health_timeout_s,
                                   stop_grace_s=self.stop_grace_s)
            self.cluster.start()
        except BaseException as exc:
            self._teardown()
            if isinstance(exc, ClusterStartError):
                raise _as_sut_error(exc) from exc
            raise
        return self

    def stop(self) -> dict[str, str]:
        outcome: dict[str, str] = {}
        if self.cluster is not None:
            outcome, self.cluster = self.cluster.stop(), None
        self._teardown()
        return outcome

    def _teardown(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
            self.cluster = None
        if self.relay is not None:
            self.relay_counts = self.relay.stop()
            self.relay = None
        if self.out_relay is not None:
            self.out_relay_counts = self.out_relay.stop()
            self.out_relay = None
        if self._block is not None:
            self._block.release()
            self._block = None

    # -------------------------------------------------------------- description

    @property
    def durability(self) -> str:
        return self.base_config.durability

    def _cfg(self) -> ClusterConfig:
        if self.config is None:
            raise RuntimeError("ReferenceSut is not started: its ports are chosen by start()")
        return self.config

    def _cluster(self) -> Cluster:
        if self.cluster is None:
            raise RuntimeError("ReferenceSut is not started")
        return self.cluster

    def endpoints(self) -> dict[str, Any]:
        gws = self._cfg().gateways
        doors = {f"gateway-{g.id}": {"http": f"http://{HOST}:{g.http_port}",
                                     "ouch": (HOST, g.ouch_port)} for g in gws}
        first = doors[f"gateway-{gws[0].id}"]
        return {"http": first["http"], "ouch": first["ouch"], "gateways": doors}

    def accounts(self) -> dict[str, str]:
        return dict(self.base_config.accounts)

    def instruments(self) -> dict[str, int]:
        return dict(self.base_config.instruments)

    def components(self) -> dict[str, int]:
        return self.cluster.components() if self.cluster is not None else {}

    def roles(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name in self._plan:
            out.setdefault(_role(name, self.base_config), []).append(name)
        return out

    def offers(self, feature: str) -> bool:
        check_feature(feature)
        if feature == "bus_relay":
            return self.bus_relay
        if feature == "output_relay":
            return self.output_relay
        return feature in _OFFERED

    def data_dirs(self) -> dict[str, Path]:
        d = Path(self.base_config.logger.data_dir)
        return {"logger": d if d.is_absolute() else self.run_dir / d}

    def log_path(self, name: str) -> Path:
        return self.run_dir / "logs" / f"{name}.log"

    # -------------------------------------------------------------- nemesis verbs

    def kill(self, name: str) -> None:
        self._cluster().kill(name)

    def pause(self, name: str) -> None:
        self._cluster().pause(name)

    def resume(self, name: str) -> None:
        self._cluster().resume(name)

    def restart(self, name: str) -> int:
        try:
            return self._cluster().restart(name)
        except ClusterStartError as exc:
            raise _as_sut_error(exc) from exc

    # -------------------------------------------------------------- state

    def _admin_port(self, name: str) -> int:
        if name not in self._plan:
            raise KeyError(f"no component {name!r} (have: {', '.join(self._plan)})")
        self._cfg()
        return self._plan[name].admin_port + self._last_offset  # type: ignore[operator]

    def admin(self, name: str, command: str, timeout_s: float = 2.0) -> dict[str, Any]:
        """One admin command to a component's UDP admin endpoint (see docs/*-node.md)."""
        return process.admin_query(self._admin_port(name), command, timeout_s)

    def digest(self, name: str) -> dict[str, Any]:
        return self.admin(name, "digest")

    def checkpoints(self, name: str) -> list[tuple[int, str]]:
        if not name.startswith("engine-"):
            raise NotSupported(f"reference: only engines record checkpoints, not {name!r}")
        out: list[tuple[int, str]] = []
        after = 0
        while True:
            reply = self.admin(name, f"checkpoints {after}")
            out += [(int(s), str(h)) for s, h in reply["checkpoints"]]
            if reply.get("next_after") is None:
                return out
            after = int(reply["next_after"])

    def health(self, name: str) -> bool:
        return bool(self.admin(name, "health").get("ok"))

    def stages(self, name: str, n: int) -> dict[str, Any]:
        return self.admin(name, f"stages {n}")

    def in_flight_limit(self) -> int:
        """The first gateway's own figure (its digest), as its config and the desk make it."""
        return int(self.digest(self.role("gateway"))["in_flight_limit"])

    # -------------------------------------------------------------- the WAL (crucible-wal-1)

    def journal(self) -> list[dict]:
        return wal_journal(self._wal.directory)

    def wal_records(self) -> list[tuple[int, bytes]]:
        return self._wal.records()

    def damage_wal(self, how: str) -> dict[str, Any]:
        return self._wal.damage(how)

    def repair_wal(self) -> None:
        self._wal.repair()

    def verify_wal(self) -> tuple[int, str]:
        return self._wal.verify()

    # -------------------------------------------------------------- the bus

    def stream_port(self, name: str) -> StreamPort:
        cfg = self._cfg()
        if name == "sequencer":
            return StreamPort(HOST, cfg.sequencer.retransmit_port,
                              cfg.input_stream.session.encode("ascii"))
        if name.startswith("engine-"):
            return StreamPort(HOST, cfg.engine(int(name.split("-", 1)[1])).retransmit_port,
                              cfg.output_stream.session.encode("ascii"))
        raise NotSupported(f"reference: {name!r} publishes no MoldUDP64 stream")

    def output_streams(self, coverage: dict[str, dict] | None = None) -> dict[str, list[dict]]:
        roles = self.roles()
        engines = roles.get("primary", []) + roles.get("secondary", [])
        return published_streams(self, {e: self.stream_port(e) for e in engines}, coverage)

    def _relay(self) -> UdpFaultRelay:
        if self.relay is None:
            raise NotSupported("reference: no bus relay (built without bus_relay, or not started)")
        return self.relay

    def set_bus_faults(self, rates: UdpFaultRates) -> None:
        self._relay().set_rates(rates)

    def bus_fault_counts(self) -> dict[str, int]:
        return self._relay().counts().as_dict()

    def _out_relay(self) -> UdpFaultRelay:
        if self.out_relay is None:
            raise NotSupported("reference: no output relay (built without output_relay, "
                               "or not started)")
        return self.out_relay

    def set_output_faults(self, rates: UdpFaultRates) -> None:
        self._out_relay().set_rates(rates)

    def output_fault_counts(self) -> dict[str, int]:
        return self._out_relay().counts().as_dict()

    # -------------------------------------------------------------- offline replay

    def offline_replay(self, entries: list[dict], work_dir: Path) -> list[str]:
        files = offline.prepare(entries, self.instruments(), Path(work_dir))
        cmd = [sys.executable, "-m", "harness.cli", "engine", "replay", str(files.input)]
        if self.instruments():
            cmd += ["--instruments", str(files.instruments)]
        return offline.run(cmd + ["--out", str(files.output)], files)
