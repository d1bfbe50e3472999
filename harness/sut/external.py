"""``ExternalSut``: any exchange described by a YAML descriptor (harness.sut.descriptor).

Theory of operation
-------------------
``start()`` takes a port block (the declared ``port_offset``, or the first
free one for ``auto``, see ``harness.sut.ports``), runs the ``setup``
commands in order (each must exit 0), then starts the components in their
declared order, each ready before the next: ``tcp`` (the port accepts a
connection), ``http`` (GET answers 200), ``udp_health`` (the UDP admin port
answers ``health`` with ``{"ok": true}``, from the component's own process
group when the reply carries a ``pid``), or ``none``. A failure stops what
was started and raises ``SutError`` with the tail of the component's log
(``run_dir/logs/<component>.log``).

Each component runs in its own session, so its process group is its pgid,
and every verb signals the whole group (a start command that is a shell
script takes its children with it): ``kill`` is SIGKILL, ``pause`` SIGSTOP,
``resume`` SIGCONT, ``stop`` SIGCONT + the component's stop signal, then
SIGKILL after ``stop_timeout_s``. A group counts as gone when no live
(non-zombie) process is left in it. A string command is split like a shell
would (``shlex``), but no shell runs.

Optional capabilities follow the descriptor (``offers``): ``health`` from a
``udp_health`` readiness port; ``wal`` and ``wal_damage`` from a declared
``crucible-wal-1`` WAL (``harness.sut.wal_files``, which also works while
the SUT is stopped); ``rerequest`` and ``output_streams`` from declared
MoldUDP64 streams (``harness.sut.mold_fetch``); ``offline_replay`` from the
``replay`` command (``harness.sut.offline``). There is no bus relay, no
stage timestamps and no test-only fault: those stay ``NotSupported``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.clients.http_connection import HttpConnection, Reply, split_url
from harness.sut import descriptor as desc_mod
from harness.sut import ports as port_alloc
from harness.sut import wal_files
from harness.sut.base import NotSupported, Sut, SutError, check_feature
from harness.sut.descriptor import ComponentSpec, Descriptor, Endpoint, fill
from harness.sut.external_capabilities import ENGINE_ROLES, DeclaredCapabilities, udp_json
from harness.sut.procs import ProcessGroup, log_tail

LOG_DIR = "logs"
POLL_S = 0.05
_ALWAYS = frozenset({"kill", "pause", "restart"})
#: Options that add a harness instrument rather than change the SUT's behaviour: an
#: external SUT accepts them and answers ``offers(...)`` False, so the suite says N/A.
_INSTRUMENTS = frozenset({"bus_relay", "relay_rates", "output_relay"})


def _http_get(url: str, timeout_s: float) -> Reply:
    """One GET of a descriptor's URL with the kit's HTTP client (``ConnectionError`` if none came)."""
    host, port, _ = split_url(url)
    parts = urlsplit(url)
    with HttpConnection(host, port, timeout_s=timeout_s, keep_alive=False) as conn:
        return conn.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))


def _get_json(url: str, timeout_s: float) -> Any:
    reply = _http_get(url, timeout_s)
    if reply.status != 200:
        raise ConnectionError(f"GET {url}: HTTP {reply.status}")
    return json.loads(reply.data)


class ExternalSut(DeclaredCapabilities, Sut):
    """An exchange described by a descriptor (docs/certify-your-exchange.md)."""

    def __init__(self, descriptor: Descriptor | str | Path, run_dir: str | Path, seed: int = 0, *,
                 port_offset: int | None = None, python: str = sys.executable,
                 **options: Any) -> None:
        self.descriptor = (descriptor if isinstance(descriptor, Descriptor)
                           else desc_mod.load(descriptor))
        d = self.descriptor
        for key, value in options.items():  # reference-only knobs, asked for by a suite
            if key == "durability" and value not in (None, d.durability):
                raise NotSupported(f"{d.name} runs durability {d.durability!r}, not {value!r}")
            if key in _INSTRUMENTS or key == "durability" or not value:
                continue  # asked-for instruments are simply not offered: see offers()
            raise NotSupported(f"{d.name} is an external SUT: option {key}={value!r} "
                               "is offered by the reference implementation only")
        self.name = d.name
        self.run_dir = Path(run_dir).resolve()
        self.seed = seed
        self.python = python
        self.port_offset = port_offset if port_offset is not None else d.port_offset
        self.offset: int | None = None  #: the offset in use while started
        self._last_offset: int | None = None
        self._block: port_alloc.PortBlock | None = None
        self._groups: dict[str, ProcessGroup] = {}
        wal_owner = next((c for c in d.components if c.wal is not None), None)
        self._wal = (wal_files.WalDir(self._static_path(wal_owner.wal.dir,
                                                        f"components.{wal_owner.name}.wal.dir"))
                     if wal_owner is not None else None)

    # -------------------------------------------------------------- templates

    def _ports(self, offset: int) -> dict[str, int]:
        return {f"{c.name}.{n}": p + offset for c in self.descriptor.components
                for n, p in c.ports.items()}

    def _base_context(self) -> dict[str, Any]:
        """The placeholders that need no port (``offset`` 0 while stopped)."""
        d = self.descriptor
        return {"run_dir": str(self.run_dir), "python": self.python, "offset": self.offset or 0,
                "seed": self.seed, "descriptor_dir": str(d.path.parent if d.path else self.run_dir),
                "ports": {}}

    def _context(self, spec: ComponentSpec | None = None,
                 extra: dict[str, str] | None = None) -> dict[str, Any]:
        if self.offset is None:
            raise RuntimeError(f"{self.name} is not started: its ports are chosen by start()")
        off = self.offset
        ports = self._ports(off)
        ctx = {**self._base_context(), **(extra or {})}
        if spec is not None:
            own = {n: p + off for n, p in spec.ports.items()}
            ports.update(own)
            if own:
                ctx["port"] = next(iter(own.values()))
        ctx["ports"] = ports
        return ctx

    def _argv(self, argv: tuple[str, ...], spec: ComponentSpec | None, key: str,
              extra: dict[str, str] | None = None) -> list[str]:
        ctx = self._context(spec, extra)
        return [fill(a, ctx, key) for a in argv]

    @contextlib.contextmanager
    def _commands_offset(self) -> Iterator[None]:
        """Run a command (journal, replay) while stopped too: with the last offset used."""
        if self.offset is not None:
            yield
            return
        self.offset = self._last_offset if self._last_offset is not None else 0
        try:
            yield
        finally:
            self.offset = None

    def _env(self, spec: ComponentSpec | None) -> dict[str, str]:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        ctx = self._context(spec)
        for k, v in self.descriptor.env.items():
            env[k] = fill(v, ctx, f"env.{k}")
        for k, v in (spec.env.items() if spec else ()):
            env[k] = fill(v, ctx, f"components.{spec.name}.env.{k}")
        return env

    def _cwd(self, spec: ComponentSpec | None) -> str:
        raw = (spec.cwd if spec and spec.cwd else None) or self.descriptor.cwd
        ctx = self._context(spec)
        if raw is None:
            return ctx["descriptor_dir"]
        p = Path(fill(raw, ctx, "cwd"))
        return str(p if p.is_absolute() else self.run_dir / p)

    def log_path(self, name: str) -> Path:
        return self.run_dir / LOG_DIR / f"{name}.log"

    # -------------------------------------------------------------- lifecycle

    def start(self) -> ExternalSut:
        if self._block is not None:
            raise RuntimeError(f"{self.name} is already started")
        ports = self.descriptor.all_ports()
        if self.port_offset == "auto":  # NoFreePorts is a SutError
            block = port_alloc.allocate(ports, prefer=self._last_offset)
        else:
            block = port_alloc.take(ports, int(self.port_offset))
        self._block, self.offset, self._last_offset = block, block.offset, block.offset
        (self.run_dir / LOG_DIR).mkdir(parents=True, exist_ok=True)
        try:
            for i, argv in enumerate(self.descriptor.setup):
                self._run_setup(i, argv)
            for spec in self.descriptor.components:
                self._spawn(spec)
                self._await_ready(spec)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> dict[str, str]:
        outcome = {}
        for spec in reversed(self.descriptor.components):
            group = self._groups.pop(spec.name, None)
            if group is not None:
                outcome[spec.name] = group.terminate(spec.stop_signal, spec.stop_timeout_s)
        if self._block is not None:
            self._block.release()
            self._block = None
        self.offset = None
        return outcome

    def _run_setup(self, i: int, argv: tuple[str, ...]) -> None:
        cmd = self._argv(argv, None, f"setup[{i}]")
        log = self.log_path("setup")
        with open(log, "ab") as out:
            out.write(f"--- {' '.join(cmd)}\n".encode())
            out.flush()
            try:
                rc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, env=self._env(None),
                                    cwd=self._cwd(None),
                                    timeout=self.descriptor.setup_timeout_s).returncode
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise SutError("setup", f"setup[{i}] {cmd!r} failed: {exc}",
                               log_tail(log)) from None
        if rc != 0:
            raise SutError("setup", f"setup[{i}] {cmd!r} exited with code {rc}", log_tail(log))

    def _spawn(self, spec: ComponentSpec) -> None:
        cmd = self._argv(spec.start, spec, f"components.{spec.name}.start")
        log = self.log_path(spec.name)
        with open(log, "ab") as out:
            out.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
            out.flush()
            try:
                popen = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, env=self._env(spec),
                                         cwd=self._cwd(spec), start_new_session=True)
            except OSError as exc:
                raise SutError(spec.name, f"cannot start {cmd[0]!r}: {exc}") from None
        self._groups[spec.name] = ProcessGroup(popen)

    def _probe(self, spec: ComponentSpec, group: ProcessGroup) -> bool:
        r, off = spec.ready, self.offset or 0
        if r.kind == "none":
            return True
        if r.kind == "tcp":
            try:
                socket.create_connection((r.host, r.port + off), timeout=0.2).close()
                return True
            except OSError:
                return False
        if r.kind == "http":
            url = fill(r.url or "", self._context(spec), f"components.{spec.name}.ready.http")
            try:
                return _http_get(url, 1.0).status == 200
            except (OSError, ValueError):
                return False
        try:  # udp_health
            reply = udp_json(r.host, r.port + off, "health", 0.2)
        except (OSError, ValueError):
            return False
        pid = reply.get("pid") if isinstance(reply, dict) else None
        if pid is not None and pid != group.pid and pid not in group.members():
            raise SutError(spec.name, f"health on port {r.port + off} is answered by another "
                                      f"process (pid {pid}): an earlier run still running?",
                           log_tail(self.log_path(spec.name)))
        return isinstance(reply, dict) and reply.get("ok") is True

    def _await_ready(self, spec: ComponentSpec) -> None:
        group = self._groups[spec.name]
        deadline = time.monotonic() + spec.ready.timeout_s
        while True:
            if not group.alive():
                raise SutError(spec.name, f"exited with code {group.popen.returncode} before it "
                                          "was ready", log_tail(self.log_path(spec.name)))
            if self._probe(spec, group):
                return
            if time.monotonic() >= deadline:
                raise SutError(spec.name, f"not ready ({spec.ready.kind}) after "
                                          f"{spec.ready.timeout_s:g} s",
                               log_tail(self.log_path(spec.name)))
            time.sleep(POLL_S)

    # -------------------------------------------------------------- description

    @property
    def durability(self) -> str:
        return self.descriptor.durability

    def endpoints(self) -> dict[str, Any]:
        ctx, off = self._context(), self.offset or 0
        out: dict[str, Any] = {"http": None, "ouch": None}
        http = self.descriptor.doors.get("http")
        if http is not None:
            out["http"] = (fill(http.url, ctx, "doors.http.url").rstrip("/") if http.url
                           else f"http://{http.host}:{http.port + off}")
        ouch = self.descriptor.doors.get("ouch")
        if ouch is not None:
            out["ouch"] = (ouch.host, ouch.port + off)
        return out

    def accounts(self) -> dict[str, str]:
        return dict(self.descriptor.accounts)

    def instruments(self) -> dict[str, int]:
        return dict(self.descriptor.instruments)

    def components(self) -> dict[str, int]:
        return {name: g.pid for name, g in self._groups.items()}

    def roles(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for c in self.descriptor.components:
            out.setdefault(c.role, []).append(c.name)
        return out

    def offers(self, feature: str) -> bool:
        check_feature(feature)
        d, comps = self.descriptor, self.descriptor.components
        return {
            "http": "http" in d.doors, "ouch": "ouch" in d.doors,
            "digest": any(c.digest for c in comps),
            "checkpoints": any(c.checkpoints for c in comps),
            "health": any(c.ready.kind == "udp_health" for c in comps),
            "journal": d.journal is not None,
            "wal": self._wal is not None, "wal_damage": self._wal is not None,
            "rerequest": any(c.stream for c in comps),
            "output_streams": any(c.stream and c.digest and c.role in ENGINE_ROLES
                                  for c in comps),
            "offline_replay": d.replay is not None,
            "power_off": any(c.data_dir for c in comps),
        }.get(feature, feature in _ALWAYS)

    def _static_path(self, template: str, key: str) -> Path:
        """A path template filled without ports (it may be asked while stopped)."""
        p = Path(fill(template, self._base_context(), key))
        return p if p.is_absolute() else self.run_dir / p

    def data_dirs(self) -> dict[str, Path]:
        return {c.name: self._static_path(c.data_dir, f"components.{c.name}.data_dir")
                for c in self.descriptor.components if c.data_dir}

    # -------------------------------------------------------------- nemesis verbs

    def _group(self, name: str) -> ProcessGroup:
        if name not in self._groups:
            raise KeyError(f"no started component {name!r} (have: {', '.join(self._groups)})")
        return self._groups[name]

    def kill(self, name: str) -> None:
        group = self._group(name)
        group.signal(signal.SIGKILL)
        group.wait_gone(5.0)

    def pause(self, name: str) -> None:
        self._group(name).signal(signal.SIGSTOP)

    def resume(self, name: str) -> None:
        self._group(name).signal(signal.SIGCONT)

    def restart(self, name: str) -> int:
        spec = self.descriptor.component(name)
        self._group(name).terminate(spec.stop_signal, spec.stop_timeout_s)
        self._spawn(spec)
        self._await_ready(spec)
        return self._groups[name].pid

    # -------------------------------------------------------------- state

    def _query(self, spec: ComponentSpec, ep: Endpoint, command: str, key: str) -> Any:
        if ep.kind == "http":
            return _get_json(fill(ep.url or "", self._context(spec), key), 5.0)
        return udp_json(ep.host, (ep.port or 0) + (self.offset or 0), command, 2.0)

    def digest(self, name: str) -> dict[str, Any]:
        spec = self.descriptor.component(name)
        if spec.digest is None:
            raise NotSupported(f"{self.name}: component {name!r} has no digest endpoint")
        reply = self._query(spec, spec.digest, spec.digest.command, f"components.{name}.digest")
        if not isinstance(reply, dict):
            raise SutError(name, f"digest reply is not a JSON object: {reply!r:.200}")
        return reply

    def checkpoints(self, name: str) -> list[tuple[int, str]]:
        spec = self.descriptor.component(name)
        ep = spec.checkpoints
        if ep is None:
            raise NotSupported(f"{self.name}: component {name!r} has no checkpoints endpoint")
        key = f"components.{name}.checkpoints"
        out: list[tuple[int, str]] = []
        after = 0
        while True:  # UDP pages like the reference's admin command; HTTP answers at once
            reply = self._query(spec, ep, f"{ep.command} {after}", key)
            rows = reply.get("checkpoints", []) if isinstance(reply, dict) else reply
            out += [(int(s), str(h)) for s, h in rows]
            nxt = reply.get("next_after") if isinstance(reply, dict) else None
            if ep.kind == "http" or nxt is None:
                return out
            after = int(nxt)
