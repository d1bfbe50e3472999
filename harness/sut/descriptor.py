"""The external-SUT descriptor: YAML in, a validated ``Descriptor`` out (pure, no I/O but reading).

Loading checks every key and names the offending one, the way the cluster
config does (``descriptor error: components.gateway.ready.tcp: must be a port
number or the name of one of this component's ports (got 'htp')``), so a typo
fails before anything starts. Unknown keys are errors too.

Ports are stored as declared (before ``port_offset``). A port field is an
integer, or a name: inside a component, one of its own ``ports``; at the top
level, ``COMPONENT.NAME``. Strings (commands, URLs, paths, env values) are
templates filled at start with ``str.format`` placeholders
(``descriptor_fields.PLACEHOLDERS``); each template is tried here against
sample values, so an unknown placeholder is a load error naming the key.
Write ``{{`` and ``}}`` for literal braces. The format is documented in
docs/certify-your-exchange.md. The typed key readers, ``DescriptorError`` and
the template filling are in ``descriptor_fields``; the optional capability
keys (a component's ``wal`` and ``stream``, the top-level ``replay``) in
``descriptor_capabilities``.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.sut.base import ROLES
from harness.sut.descriptor_capabilities import StreamSpec, WalSpec, parse_replay, parse_stream, parse_wal
from harness.sut.descriptor_fields import (
    DescriptorError,
    _command,
    _env,
    _get,
    _mapping,
    _no_unknown,
    _port_number,
    _port_ref,
    _positive,
    fill,
    sample_context,
)
from reference_impl.core.durability import POLICIES

READY_KINDS = ("tcp", "http", "udp_health", "none")
_STOP_SIGNALS = ("TERM", "INT", "HUP", "QUIT")
_TOP_KEYS = ("version", "name", "durability", "port_offset", "accounts", "instruments", "doors",
             "env", "cwd", "setup", "setup_timeout_s", "components", "journal",
             "journal_timeout_s", "replay", "replay_timeout_s", "in_flight_limit")
_COMPONENT_KEYS = ("start", "role", "ports", "ready", "digest", "checkpoints", "data_dir", "env",
                   "cwd", "stop_signal", "stop_timeout_s", "wal", "stream")


@dataclass(frozen=True, slots=True)
class Ready:
    kind: str  #: tcp | http | udp_health | none
    host: str = "127.0.0.1"
    port: int | None = None  #: tcp, udp_health (declared, before the offset)
    url: str | None = None  #: http (a template)
    timeout_s: float = 30.0


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A JSON endpoint: a UDP admin command, or an HTTP GET."""

    kind: str  #: udp | http
    host: str = "127.0.0.1"
    port: int | None = None
    command: str = ""
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Door:
    host: str = "127.0.0.1"
    port: int | None = None
    url: str | None = None  #: http only: a template instead of host/port


@dataclass(frozen=True, slots=True)
class ComponentSpec:
    name: str
    start: tuple[str, ...]  #: argv templates
    role: str = "other"
    ports: dict[str, int] = field(default_factory=dict)
    ready: Ready = Ready("none")
    digest: Endpoint | None = None
    checkpoints: Endpoint | None = None
    data_dir: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    stop_signal: int = signal.SIGTERM
    stop_timeout_s: float = 5.0
    wal: WalSpec | None = None
    stream: StreamSpec | None = None


@dataclass(frozen=True, slots=True)
class Descriptor:
    name: str
    durability: str
    port_offset: int | str  #: an int, or "auto"
    accounts: dict[str, str]
    components: tuple[ComponentSpec, ...]
    doors: dict[str, Door]
    instruments: dict[str, int] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    setup: tuple[tuple[str, ...], ...] = ()
    setup_timeout_s: float = 60.0
    journal: tuple[str, ...] | None = None
    journal_timeout_s: float = 120.0
    replay: tuple[str, ...] | None = None
    replay_timeout_s: float = 120.0
    in_flight_limit: int | None = None  #: declared backpressure threshold (Sut.in_flight_limit)
    path: Path | None = None

    def all_ports(self) -> list[int]:
        """Every declared port (before the offset): what a port block must hold."""
        out = [p for c in self.components for p in c.ports.values()]
        for c in self.components:
            out += [e.port for e in (c.ready, c.digest, c.checkpoints)
                    if e is not None and e.port is not None]
            out += [c.stream.rerequest] if c.stream is not None else []
        out += [d.port for d in self.doors.values() if d.port is not None]
        return sorted(set(out))

    def component(self, name: str) -> ComponentSpec:
        for c in self.components:
            if c.name == name:
                return c
        have = ", ".join(c.name for c in self.components)
        raise KeyError(f"no component {name!r} (have: {have})")


# ------------------------------------------------------------------ parts


def _ready(raw: Any, key: str, own: Mapping[str, int], ctx: Mapping) -> Ready:
    if raw is None:
        return Ready("none")
    if not isinstance(raw, dict):
        raise DescriptorError(key, "must be a mapping with one of " + ", ".join(READY_KINDS))
    kinds = [k for k in READY_KINDS if k in raw]
    if len(kinds) != 1:
        raise DescriptorError(key, f"needs exactly one of {', '.join(READY_KINDS)} (got "
                                   f"{', '.join(kinds) or 'none'})")
    _no_unknown(raw, (*READY_KINDS, "host", "timeout_s"), key + ".")
    kind, path = kinds[0], key + "."
    timeout = _positive(raw, "timeout_s", path, 30.0)
    host = _get(raw, "host", path, (str,), "127.0.0.1")
    if kind == "http":
        url = _get(raw, "http", path, (str,))
        fill(url, ctx, path + "http")
        return Ready("http", url=url, timeout_s=timeout)
    if kind == "none":
        return Ready("none", timeout_s=timeout)
    port = _port_ref(raw[kind], path + kind, own, "one of this component's ports")
    return Ready(kind, host=host, port=port, timeout_s=timeout)


def _endpoint(raw: Any, key: str, own: Mapping[str, int], ctx: Mapping, command: str) -> Endpoint:
    if not isinstance(raw, dict) or ("udp" in raw) == ("http" in raw):
        raise DescriptorError(key, "must be a mapping with either udp: PORT or http: URL")
    path = key + "."
    if "http" in raw:
        _no_unknown(raw, ("http",), path)
        url = _get(raw, "http", path, (str,))
        fill(url, ctx, path + "http")
        return Endpoint("http", url=url)
    _no_unknown(raw, ("udp", "host", "command"), path)
    port = _port_ref(raw["udp"], path + "udp", own, "one of this component's ports")
    return Endpoint("udp", host=_get(raw, "host", path, (str,), "127.0.0.1"), port=port,
                    command=_get(raw, "command", path, (str,), command))


def _component(name: str, raw: Any, all_ports: Mapping[str, int]) -> ComponentSpec:
    key = f"components.{name}"
    if not isinstance(raw, dict):
        raise DescriptorError(key, "must be a mapping")
    _no_unknown(raw, _COMPONENT_KEYS, key + ".")
    path = key + "."
    own = {n: all_ports[f"{name}.{n}"] for n in _mapping(raw, "ports", path)}
    ctx = sample_context(all_ports, own)
    start = _command(raw.get("start"), path + "start") if "start" in raw else None
    if start is None:
        raise DescriptorError(path + "start", "missing")
    for i, arg in enumerate(start):
        fill(arg, ctx, f"{path}start[{i}]")
    role = _get(raw, "role", path, (str,), "other")
    if role not in ROLES:
        raise DescriptorError(path + "role", f"must be one of {', '.join(ROLES)} (got {role!r})")
    env = _env(raw, "env", path)
    for k, v in env.items():
        fill(v, ctx, f"{path}env.{k}")
    strings = {k: _get(raw, k, path, (str,), None) for k in ("data_dir", "cwd")}
    for k, v in strings.items():
        if v is not None:
            fill(v, ctx, path + k)
    stop_name = _get(raw, "stop_signal", path, (str,), "TERM").upper().removeprefix("SIG")
    if stop_name not in _STOP_SIGNALS:
        raise DescriptorError(path + "stop_signal", f"must be one of {', '.join(_STOP_SIGNALS)}")
    return ComponentSpec(
        name=name, start=start, role=role, ports=own,
        ready=_ready(raw.get("ready"), path + "ready", own, ctx),
        digest=(_endpoint(raw["digest"], path + "digest", own, ctx, "digest")
                if raw.get("digest") is not None else None),
        checkpoints=(_endpoint(raw["checkpoints"], path + "checkpoints", own, ctx, "checkpoints")
                     if raw.get("checkpoints") is not None else None),
        data_dir=strings["data_dir"], env=env, cwd=strings["cwd"],
        stop_signal=signal.Signals["SIG" + stop_name],
        stop_timeout_s=_positive(raw, "stop_timeout_s", path, 5.0),
        wal=(parse_wal(raw["wal"], path + "wal", role, strings["data_dir"], ctx)
             if raw.get("wal") is not None else None),
        stream=(parse_stream(raw["stream"], path + "stream", own)
                if raw.get("stream") is not None else None))


def _doors(raw: Any, all_ports: Mapping[str, int], ctx: Mapping) -> dict[str, Door]:
    if not isinstance(raw, dict) or not raw:
        raise DescriptorError("doors", "must be a mapping with http and/or ouch")
    _no_unknown(raw, ("http", "ouch"), "doors.")
    out = {}
    for kind, spec in raw.items():
        key = f"doors.{kind}"
        if not isinstance(spec, dict):
            raise DescriptorError(key, "must be a mapping (host, port" +
                                  (", or url)" if kind == "http" else ")"))
        _no_unknown(spec, ("host", "port", "url") if kind == "http" else ("host", "port"),
                    key + ".")
        url = _get(spec, "url", key + ".", (str,), None) if kind == "http" else None
        if url is not None:
            if "port" in spec:
                raise DescriptorError(key, "give either url or host/port, not both")
            fill(url, ctx, key + ".url")
            out[kind] = Door(url=url)
            continue
        if "port" not in spec:
            raise DescriptorError(key + ".port", "missing")
        port = _port_ref(spec["port"], key + ".port", all_ports, "a declared port (COMPONENT.NAME)")
        out[kind] = Door(host=_get(spec, "host", key + ".", (str,), "127.0.0.1"), port=port)
    return out


def _all_ports(components: Mapping) -> dict[str, int]:
    out = {}
    for name, raw in components.items():
        ports = raw.get("ports") if isinstance(raw, dict) else None
        if ports is None:
            continue
        if not isinstance(ports, dict):
            raise DescriptorError(f"components.{name}.ports", "must be a mapping NAME: PORT")
        for pname, value in ports.items():
            out[f"{name}.{pname}"] = _port_number(value, f"components.{name}.ports.{pname}")
    return out


# ------------------------------------------------------------------ top level


def parse(raw: Any, path: Path | None = None) -> Descriptor:
    """Validate a loaded YAML document into a ``Descriptor``."""
    if not isinstance(raw, dict):
        raise DescriptorError("<root>", "must be a mapping")
    _no_unknown(raw, _TOP_KEYS, "")
    if _get(raw, "version", "", (int,)) != 1:
        raise DescriptorError("version", f"must be 1 (got {raw['version']!r})")
    durability = _get(raw, "durability", "", (str,))
    if durability not in POLICIES:
        raise DescriptorError("durability", f"must be one of {', '.join(POLICIES)} "
                                            f"(got {durability!r})")
    offset = _get(raw, "port_offset", "", (int, str), 0)
    if isinstance(offset, str) and offset != "auto":
        raise DescriptorError("port_offset", f"must be an integer or 'auto' (got {offset!r})")
    accounts = _mapping(raw, "accounts", "", required=True)
    if not accounts:
        raise DescriptorError("accounts", "must name at least one account")
    for acct, pw in accounts.items():
        if not isinstance(pw, str) or not pw:
            raise DescriptorError(f"accounts.{acct}", "password must be a non-empty string")
    instruments = _mapping(raw, "instruments", "")
    for sym, tick in instruments.items():
        if isinstance(tick, bool) or not isinstance(tick, int) or tick < 1:
            raise DescriptorError(f"instruments.{sym}",
                                  f"tick must be an integer >= 1 (got {tick!r})")
    comps = _mapping(raw, "components", "", required=True)
    if not comps:
        raise DescriptorError("components", "must hold at least one component")
    all_ports = _all_ports(comps)
    dupes = sorted({p for p in all_ports.values() if list(all_ports.values()).count(p) > 1})
    if dupes:
        raise DescriptorError("components", f"ports used more than once: {dupes}")
    ctx = sample_context(all_ports)
    components = tuple(_component(str(n), c, all_ports) for n, c in comps.items())
    wal_owners = [c.name for c in components if c.wal is not None]
    if len(wal_owners) > 1:
        raise DescriptorError(f"components.{wal_owners[1]}.wal",
                              f"only one component may declare a wal (also: {wal_owners[0]})")
    setup_raw = _get(raw, "setup", "", (list, str), [])
    setup = tuple(_command(c, f"setup[{i}]") for i, c in
                  enumerate([setup_raw] if isinstance(setup_raw, str) else setup_raw))
    journal = _command(raw["journal"], "journal") if raw.get("journal") is not None else None
    env = _env(raw, "env", "")
    cwd = _get(raw, "cwd", "", (str,), None)
    limit = _get(raw, "in_flight_limit", "", (int,), None)
    if limit is not None and limit < 1:
        raise DescriptorError("in_flight_limit", f"must be an integer >= 1 (got {limit!r})")
    for key, templates in ([(f"setup[{i}]", c) for i, c in enumerate(setup)]
                           + [("journal", journal or ()), ("cwd", (cwd,) if cwd else ())]
                           + [(f"env.{k}", (v,)) for k, v in env.items()]):
        for t in templates:
            fill(t, ctx, key)
    return Descriptor(
        name=_get(raw, "name", "", (str,), path.stem if path else "external"),
        durability=durability, port_offset=offset,
        accounts={str(k): v for k, v in accounts.items()},
        components=components, doors=_doors(raw.get("doors"), all_ports, ctx),
        instruments={str(k): v for k, v in instruments.items()}, env=env, cwd=cwd, setup=setup,
        setup_timeout_s=_positive(raw, "setup_timeout_s", "", 60.0), journal=journal,
        journal_timeout_s=_positive(raw, "journal_timeout_s", "", 120.0),
        replay=parse_replay(raw.get("replay"), ctx),
        replay_timeout_s=_positive(raw, "replay_timeout_s", "", 120.0),
        in_flight_limit=limit, path=path)


def load(path: str | Path) -> Descriptor:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise DescriptorError(str(path), f"cannot read: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DescriptorError(str(path), f"not valid YAML: {exc}") from None
    return parse(raw, path.resolve())
