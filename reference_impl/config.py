"""Cluster configuration: one YAML file read by the launcher and by every node.

Loading validates every key and names the offending one (``config error:
engines[1].role: must be one of primary, secondary (got 'leader')``), so a
typo fails at start-up instead of as a silent default. A key the schema does
not know is an error too (``cluster.durabilty: unknown key (did you mean
durability?)``), and so is a ``faults:`` name outside ``BROKEN_VARIANTS``:
either would otherwise run the default silently. The keys of each section
are the fields of its dataclass below (one home); ``load`` puts the file's
name in front of the message. Relative data paths are resolved against the
run directory, which the launcher passes to every node.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from reference_impl.core.durability import POLICIES as DURABILITY
from reference_impl.core.rules import Instruments, valid_account

TRANSPORTS = ("unicast", "multicast")
IDLE = ("block", "spin", "backoff")
EVENT_LOOPS = ("auto", "uvloop", "asyncio")
ROLES = ("primary", "secondary")
COORDINATION = ("none", "etcd")  #: arbiter.coordination: one arbiter, or a pair whose active one etcd decides
HOST = "127.0.0.1"
#: The test-only broken variants a ``faults:`` list may switch on (docs/config.md): the one list
#: of their names, which loading checks and ``ClusterConfig.broken`` asks.
BROKEN_VARIANTS = ("ack_before_durable", "skip_dedup", "nondeterministic_tiebreak", "unmuted_secondary",
                   "ignore_wal_crc", "no_gap_rerequest", "seq_without_message", "stall_after_fault",
                   "fok_partial_fill", "min_qty_ignored", "market_remainder_rests",
                   "soupbin_resume_after", "sse_resume_at_id",
                   "reduce_loses_priority", "replace_keeps_priority", "dedup_forgets",
                   "gateway_skips_output_gap", "forward_refused")


class ConfigError(ValueError):
    """A config key is unknown, missing, of the wrong type or out of range."""

    def __init__(self, key: str, problem: str, file: str | None = None) -> None:
        self.key, self.problem, self.file = key, problem, file
        where = f"{file}: " if file else ""
        super().__init__(f"{where}config error: {key}: {problem}")

    def in_file(self, file: str) -> ConfigError:
        """The same error, naming the file it came from."""
        return ConfigError(self.key, self.problem, file)


def unknown_name(name: str, known: Iterable[str], what: str = "key") -> str:
    """The problem text for a name outside ``known``: a close match when there is one, and the list."""
    known = list(known)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"unknown {what}{hint}; known: {', '.join(known)}"


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
class ArbiterConfig:
    """The failover arbiter (docs/arbiter.md); ``enabled: false`` starts none."""

    enabled: bool = False
    silence_us: int = 200  #: the primary's output silent this long: suspect, probe its process
    stall_ms: int = 5  #: silent this long while alive: promote away from it
    admin_port: int = 17305
    output_port: int = 17213  #: output stream subscription (unicast mode)
    coordination: str = "none"  #: none: a single arbiter; etcd: a pair, the launcher starts a local etcd
    etcd_client_port: int = 17501
    etcd_peer_port: int = 17502


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    durability: str
    transport: str
    idle: str
    event_loop: str
    backoff_spin_us: int
    fine_timers: bool
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
    arbiter: ArbiterConfig = field(default=ArbiterConfig())
    #: the primary's idle output-stream heartbeat, in µs (None: every ``heartbeat_ms``)
    output_heartbeat_us: int | None = None

    def __post_init__(self) -> None:
        for i, name in enumerate(self.faults):  # also guards with_overrides(faults=...)
            if name not in BROKEN_VARIANTS:
                raise ConfigError(f"faults[{i}]", unknown_name(str(name), BROKEN_VARIANTS, "fault"))

    def broken(self, name: str) -> bool:
        """Whether the test-only variant ``name`` is on; a name outside the list is a bug of the caller."""
        if name not in BROKEN_VARIANTS:
            raise ValueError(f"no broken variant {name!r}; known: {', '.join(BROKEN_VARIANTS)}")
        return name in self.faults

    def output_heartbeat_ns(self) -> int:
        """How often an idle primary sends an output-stream heartbeat (what the arbiter's silence sees)."""
        us = self.output_heartbeat_us
        return (us if us is not None else self.heartbeat_ms * 1000) * 1000

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
        if self.arbiter.enabled:
            out += [self.arbiter.admin_port, self.arbiter.output_port]
        if self.arbiter.coordination == "etcd":
            out += [self.arbiter.etcd_client_port, self.arbiter.etcd_peer_port]
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
            arbiter=move(self.arbiter),
        )


# ------------------------------------------------------------------ loading


#: the keys of the ``cluster:`` section: the ClusterConfig fields that are policies and tuning
CLUSTER_KEYS = ("durability", "transport", "idle", "event_loop", "backoff_spin_us",
                "fine_timers", "capacity",
                "backpressure_ratio", "checkpoint_every", "heartbeat_ms", "resend_ms",
                "output_heartbeat_us")
ROOT_KEYS = ("cluster", "instruments", "accounts", "sequencer", "streams", "engines", "logger", "gateways",
             "faults", "arbiter")


def _known(d: dict, path: str, known: Iterable[str]) -> None:
    """Refuse a key outside ``known`` (a typo would otherwise run under the default)."""
    known = tuple(known)
    for key in d:
        if key not in known:
            raise ConfigError(f"{path}{key}", unknown_name(str(key), known))


def _fields(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


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
    _known(d, path, _fields(StreamConfig))
    session = _get(d, "session", path, str)
    if len(session) != 10 or not session.isalnum() or not session.isascii():
        raise ConfigError(f"{path}session", f"must be 10 ASCII letters/digits (got {session!r})")
    return StreamConfig(session, _get(d, "group", path, str), _port(d, "port", path))


def _list(raw: dict, key: str) -> list[dict]:
    value = raw.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
        raise ConfigError(key, "must be a non-empty list of mappings")
    return value


def _arbiter(raw: dict, heartbeat_ns: int) -> ArbiterConfig:
    """The optional ``arbiter:`` section; its timeouts must leave room for the idle heartbeat."""
    if "arbiter" not in raw:
        return ArbiterConfig()
    a, p = _section(raw, "arbiter"), "arbiter."
    _known(a, p, _fields(ArbiterConfig))
    d = ArbiterConfig()
    arb = ArbiterConfig(_get(a, "enabled", p, bool, d.enabled), _positive(a, "silence_us", p, d.silence_us),
                        _positive(a, "stall_ms", p, d.stall_ms),
                        _port(a, "admin_port", p) if "admin_port" in a else d.admin_port,
                        _port(a, "output_port", p) if "output_port" in a else d.output_port,
                        _choice(a, "coordination", p, COORDINATION, d.coordination),
                        _port(a, "etcd_client_port", p) if "etcd_client_port" in a else d.etcd_client_port,
                        _port(a, "etcd_peer_port", p) if "etcd_peer_port" in a else d.etcd_peer_port)
    if arb.coordination == "etcd" and not arb.enabled:
        raise ConfigError(f"{p}coordination", "etcd coordinates an arbiter pair: needs arbiter.enabled: true")
    if arb.silence_us >= arb.stall_ms * 1000:
        raise ConfigError(f"{p}silence_us", f"must be below stall_ms ({arb.stall_ms} ms)")
    if arb.enabled and 2 * heartbeat_ns > arb.stall_ms * 1_000_000:
        raise ConfigError("cluster.output_heartbeat_us",
                          f"must be at most half of arbiter.stall_ms with an arbiter (got {heartbeat_ns // 1000} µs "
                          f"against {arb.stall_ms} ms): an idle primary would be promoted away from")
    return arb


def parse(raw: Any) -> ClusterConfig:
    """Validate a loaded YAML document into a ``ClusterConfig``."""
    if not isinstance(raw, dict):
        raise ConfigError("<root>", "must be a mapping")
    _known(raw, "", ROOT_KEYS)
    c = _section(raw, "cluster")
    p = "cluster."
    _known(c, p, CLUSTER_KEYS)
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
    _known(s, "sequencer.", _fields(SequencerConfig))
    streams = _section(raw, "streams")
    _known(streams, "streams.", ("input", "output"))
    engines = []
    for i, e in enumerate(_list(raw, "engines")):
        ep = f"engines[{i}]."
        _known(e, ep, _fields(EngineConfig))
        engines.append(EngineConfig(_positive(e, "id", ep, 1), _choice(e, "role", ep, ROLES, ""),
                                    _port(e, "input_port", ep), _port(e, "output_port", ep),
                                    _port(e, "retransmit_port", ep), _port(e, "admin_port", ep)))
    roles = [e.role for e in engines]
    if roles.count("primary") != 1 or roles.count("secondary") > 1:
        raise ConfigError("engines", f"need exactly one primary and at most one secondary (got {roles})")
    lg = _section(raw, "logger")
    lp = "logger."
    _known(lg, lp, _fields(LoggerConfig))
    gateways = []
    for i, g in enumerate(_list(raw, "gateways")):
        gp = f"gateways[{i}]."
        _known(g, gp, _fields(GatewayConfig))
        gateways.append(GatewayConfig(
            _positive(g, "id", gp, 1), _port(g, "ouch_port", gp), _port(g, "http_port", gp),
            _port(g, "output_port", gp), _port(g, "status_port", gp), _port(g, "admin_port", gp)))
    faults = tuple(_get(raw, "faults", "", list, []))
    output_heartbeat_us = _positive(c, "output_heartbeat_us", p, 1) if "output_heartbeat_us" in c else None
    cfg = ClusterConfig(
        durability=_choice(c, "durability", p, DURABILITY, "fsync"),
        transport=_choice(c, "transport", p, TRANSPORTS, "unicast"),
        idle=_choice(c, "idle", p, IDLE, "block"),
        event_loop=_choice(c, "event_loop", p, EVENT_LOOPS, "auto"),
        backoff_spin_us=_positive(c, "backoff_spin_us", p, 50),
        fine_timers=_get(c, "fine_timers", p, bool, True),
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
        output_heartbeat_us=output_heartbeat_us,
    )
    cfg = cfg.with_overrides(arbiter=_arbiter(raw, cfg.output_heartbeat_ns()))
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
            raise ConfigError("<file>", f"cannot read: {exc.strerror}", str(path)) from None
    file = str(path or "default.yaml")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(*_yaml_problem(exc), file) from None
    try:
        return parse(raw)
    except ConfigError as exc:
        raise exc.in_file(file) from None


def _yaml_problem(exc: yaml.YAMLError) -> tuple[str, str]:
    """(``line L, column C``, ``not valid YAML: problem``) of a YAML syntax error, in one line."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return (f"line {mark.line + 1}, column {mark.column + 1}" if mark else "<yaml>"), f"not valid YAML: {problem}"


def dump(cfg: ClusterConfig) -> str:
    """The YAML text of ``cfg`` (written into the run directory for every node to read)."""
    c = dataclasses.asdict(cfg)
    streams = {"input": c.pop("input_stream"), "output": c.pop("output_stream")}
    out = {
        "cluster": {k: v for k in CLUSTER_KEYS if (v := c.pop(k)) is not None},
        "instruments": c.pop("instruments"),
        "accounts": c.pop("accounts"),
        "sequencer": c.pop("sequencer"),
        "streams": streams,
        "engines": list(c.pop("engines")),
        "logger": c.pop("logger"),
        "gateways": list(c.pop("gateways")),
        "faults": list(c.pop("faults")),
        "arbiter": c.pop("arbiter"),
    }
    return yaml.safe_dump(out, sort_keys=False)
