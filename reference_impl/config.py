"""Cluster configuration: one YAML file read by the launcher and by every node.

Loading validates every key and names the offending one (``config error:
engines[1].role: must be one of primary, secondary (got 'leader')``), so a
typo fails at start-up instead of as a silent default. Relative data paths are
resolved against the run directory, which the launcher passes to every node.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from reference_impl.core.rules import Instruments, valid_account

DURABILITY = ("fsync", "replicated", "none")
TRANSPORTS = ("unicast", "multicast")
IDLE = ("block", "spin", "backoff")
EVENT_LOOPS = ("auto", "uvloop", "asyncio")
ROLES = ("primary", "secondary")
HOST = "127.0.0.1"


class ConfigError(ValueError):
    """A config key is missing, of the wrong type or out of range."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        super().__init__(f"config error: {key}: {problem}")


@dataclass(frozen=True, slots=True)
class StreamConfig:
    session: str
    group: str
    port: int


@dataclass(frozen=True, slots=True)
class EngineConfig:
    id: int
    role: str
    input_port: int  #: input stream subscription (unicast mode)
    output_port: int  #: output stream subscription, used while secondary (unicast mode)
    retransmit_port: int  #: MoldUDP64 re-requests for the output stream, served while primary
    admin_port: int


@dataclass(frozen=True, slots=True)
class LoggerConfig:
    input_port: int
    archive_port: int
    admin_port: int
    data_dir: str
    segment_bytes: int
    index_every: int
    fsync_delay_ms: int = 0  #: test-only: sleep before each fdatasync


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    id: int
    ouch_port: int
    http_port: int
    output_port: int
    status_port: int
    admin_port: int


@dataclass(frozen=True, slots=True)
class SequencerConfig:
    request_port: int
    admin_port: int
    retransmit_port: int


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    durability: str
    transport: str
    idle: str
    event_loop: str
    backoff_spin_us: int
    capacity: int
    backpressure_ratio: float
    checkpoint_every: int
    heartbeat_ms: int
    resend_ms: int
    instruments: dict[str, int]
    accounts: dict[str, str]
    sequencer: SequencerConfig
    input_stream: StreamConfig
    output_stream: StreamConfig
    engines: tuple[EngineConfig, ...]
    logger: LoggerConfig
    gateways: tuple[GatewayConfig, ...]
    #: test-only switches for the deliberately broken variants (docs/config.md)
    faults: tuple[str, ...] = field(default=())

    def instrument_table(self) -> Instruments:
        return Instruments(self.instruments)

    def engine(self, engine_id: int) -> EngineConfig:
        for e in self.engines:
            if e.id == engine_id:
                return e
        raise ConfigError("engines", f"no engine with id {engine_id}")

    def gateway(self, gateway_id: int) -> GatewayConfig:
        for g in self.gateways:
            if g.id == gateway_id:
                return g
        raise ConfigError("gateways", f"no gateway with id {gateway_id}")

    def ports(self) -> list[int]:
        """Every port the cluster binds, for collision checks and offsets."""
        out = [self.sequencer.request_port, self.sequencer.admin_port,
               self.sequencer.retransmit_port, self.input_stream.port, self.output_stream.port,
               self.logger.input_port, self.logger.archive_port, self.logger.admin_port]
        for e in self.engines:
            out += [e.input_port, e.output_port, e.retransmit_port, e.admin_port]
        for g in self.gateways:
            out += [g.ouch_port, g.http_port, g.output_port, g.status_port, g.admin_port]
        return out

    def with_overrides(self, **changes: Any) -> ClusterConfig:
        return dataclasses.replace(self, **changes)

    def shifted(self, offset: int) -> ClusterConfig:
        """The same cluster with every port moved by ``offset`` (parallel test clusters)."""

        def move(obj: Any) -> Any:
            names = [f.name for f in dataclasses.fields(obj) if f.name.endswith("port")]
            return dataclasses.replace(obj, **{n: getattr(obj, n) + offset for n in names})

        return dataclasses.replace(
            self,
            sequencer=move(self.sequencer),
            input_stream=move(self.input_stream),
            output_stream=move(self.output_stream),
            engines=tuple(move(e) for e in self.engines),
            logger=move(self.logger),
            gateways=tuple(move(g) for g in self.gateways),
        )


# ------------------------------------------------------------------ loading


def _get(d: dict, key: str, path: str, kind: type, default: Any = ...) -> Any:
    if key not in d:
        if default is ...:
            raise ConfigError(f"{path}{key}", "missing")
        return default
    value = d[key]
    if kind is float and type(value) is int:
        value = float(value)
    if type(value) is not kind:
        raise ConfigError(f"{path}{key}", f"must be {kind.__name__} (got {value!r})")
    return value


def _port(d: dict, key: str, path: str) -> int:
    value = _get(d, key, path, int)
    if not 1024 <= value <= 65535:
        raise ConfigError(f"{path}{key}", f"port must be in 1024..65535 (got {value})")
    return value


def _choice(d: dict, key: str, path: str, choices: tuple[str, ...], default: str) -> str:
    value = _get(d, key, path, str, default)
    if value not in choices:
        raise ConfigError(f"{path}{key}", f"must be one of {', '.join(choices)} (got {value!r})")
    return value


def _positive(d: dict, key: str, path: str, default: int) -> int:
    value = _get(d, key, path, int, default)
    if value < 1:
        raise ConfigError(f"{path}{key}", f"must be >= 1 (got {value})")
    return value


def _section(raw: dict, key: str) -> dict:
    value = raw.get(key)
    if not isinstance(value, dict):
        raise ConfigError(key, "missing or not a mapping")
    return value


def _stream(raw: dict, key: str) -> StreamConfig:
    d = _section(raw, key)
    path = f"streams.{key}."
    session = _get(d, "session", path, str)
    if len(session) != 10 or not session.isalnum() or not session.isascii():
        raise ConfigError(f"{path}session", f"must be 10 ASCII letters/digits (got {session!r})")
    return StreamConfig(session, _get(d, "group", path, str), _port(d, "port", path))


def _list(raw: dict, key: str) -> list[dict]:
    value = raw.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
        raise ConfigError(key, "must be a non-empty list of mappings")
    return value


def parse(raw: Any) -> ClusterConfig:
    """Validate a loaded YAML document into a ``ClusterConfig``."""
    if not isinstance(raw, dict):
        raise ConfigError("<root>", "must be a mapping")
    c = _section(raw, "cluster")
    p = "cluster."
    ratio = _get(c, "backpressure_ratio", p, float, 0.9)
    if not 0.0 < ratio <= 1.0:
        raise ConfigError(f"{p}backpressure_ratio", f"must be in (0, 1] (got {ratio})")
    instruments = _section(raw, "instruments")
    try:
        Instruments(instruments)
    except ValueError as exc:
        raise ConfigError("instruments", str(exc)) from None
    accounts = _section(raw, "accounts")
    for name, password in accounts.items():
        if not valid_account(name):
            raise ConfigError(f"accounts.{name}", "account must be 1-6 letters or digits")
        if type(password) is not str or not 1 <= len(password) <= 10 or not password.isascii():
            raise ConfigError(f"accounts.{name}", "password must be 1-10 ASCII characters")
    s = _section(raw, "sequencer")
    streams = _section(raw, "streams")
    engines = []
    for i, e in enumerate(_list(raw, "engines")):
        ep = f"engines[{i}]."
        engines.append(EngineConfig(_positive(e, "id", ep, 1), _choice(e, "role", ep, ROLES, ""),
                                    _port(e, "input_port", ep), _port(e, "output_port", ep),
                                    _port(e, "retransmit_port", ep), _port(e, "admin_port", ep)))
    roles = [e.role for e in engines]
    if roles.count("primary") != 1 or roles.count("secondary") > 1:
        raise ConfigError("engines", f"need exactly one primary and at most one secondary (got {roles})")
    lg = _section(raw, "logger")
    lp = "logger."
    gateways = []
    for i, g in enumerate(_list(raw, "gateways")):
        gp = f"gateways[{i}]."
        gateways.append(GatewayConfig(
            _positive(g, "id", gp, 1), _port(g, "ouch_port", gp), _port(g, "http_port", gp),
            _port(g, "output_port", gp), _port(g, "status_port", gp), _port(g, "admin_port", gp)))
    faults = tuple(_get(raw, "faults", "", list, []))
    cfg = ClusterConfig(
        durability=_choice(c, "durability", p, DURABILITY, "fsync"),
        transport=_choice(c, "transport", p, TRANSPORTS, "unicast"),
        idle=_choice(c, "idle", p, IDLE, "block"),
        event_loop=_choice(c, "event_loop", p, EVENT_LOOPS, "auto"),
        backoff_spin_us=_positive(c, "backoff_spin_us", p, 50),
        capacity=_positive(c, "capacity", p, 65536),
        backpressure_ratio=ratio,
        checkpoint_every=_positive(c, "checkpoint_every", p, 1000),
        heartbeat_ms=_positive(c, "heartbeat_ms", p, 100),
        resend_ms=_positive(c, "resend_ms", p, 200),
        instruments=dict(instruments),
        accounts=dict(accounts),
        sequencer=SequencerConfig(_port(s, "request_port", "sequencer."),
                                  _port(s, "admin_port", "sequencer."),
                                  _port(s, "retransmit_port", "sequencer.")),
        input_stream=_stream(streams, "input"),
        output_stream=_stream(streams, "output"),
        engines=tuple(engines),
        logger=LoggerConfig(_port(lg, "input_port", lp), _port(lg, "archive_port", lp),
                            _port(lg, "admin_port", lp), _get(lg, "data_dir", lp, str, "wal"),
                            _positive(lg, "segment_bytes", lp, 64 << 20),
                            _positive(lg, "index_every", lp, 256),
                            _get(lg, "fsync_delay_ms", lp, int, 0)),
        gateways=tuple(gateways),
        faults=tuple(str(f) for f in faults),
    )
    ports = cfg.ports()
    dupes = sorted({x for x in ports if ports.count(x) > 1})
    if dupes:
        raise ConfigError("ports", f"used more than once: {dupes}")
    return cfg


def default_text() -> str:
    return resources.files("reference_impl.data").joinpath("default.yaml").read_text()


def load(path: str | Path | None = None) -> ClusterConfig:
    """Load ``path``, or the packaged default config when ``path`` is None."""
    if path is None:
        text = default_text()
    else:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(str(path), f"cannot read: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(str(path or "default.yaml"), f"not valid YAML: {exc}") from None
    return parse(raw)


def dump(cfg: ClusterConfig) -> str:
    """The YAML text of ``cfg`` (written into the run directory for every node to read)."""
    c = dataclasses.asdict(cfg)
    streams = {"input": c.pop("input_stream"), "output": c.pop("output_stream")}
    out = {
        "cluster": {k: c.pop(k) for k in ("durability", "transport", "idle", "event_loop",
                                          "backoff_spin_us",
                                          "capacity", "backpressure_ratio", "checkpoint_every",
                                          "heartbeat_ms", "resend_ms")},
        "instruments": c.pop("instruments"),
        "accounts": c.pop("accounts"),
        "sequencer": c.pop("sequencer"),
        "streams": streams,
        "engines": list(c.pop("engines")),
        "logger": c.pop("logger"),
        "gateways": list(c.pop("gateways")),
        "faults": list(c.pop("faults")),
    }
    return yaml.safe_dump(out, sort_keys=False)
