"""Cluster launcher: the whole pipeline on one host, every process handled by pid.

Theory of operation
-------------------
``Cluster(cfg, run_dir).start()`` writes the effective config to
``run_dir/cluster.yaml`` (``config.dump``) and starts one process per
component, in dependency order: the logger, the engines (secondary first,
then the primary), the sequencer, the gateways, and the arbiter when
``arbiter.enabled`` (it reads the engines' pids from the pidfile). Each is
``python -m reference_impl.<node> --config FILE --run-dir DIR [--id N]``
with stdout and stderr in ``run_dir/logs/<component>.log``, in its own
session (a Ctrl-C in the launcher's terminal does not reach it; the
launcher stops it in order). After each spawn the launcher polls the
component's admin port with ``health`` until the reply comes from *that*
pid (a stale process from an earlier run holding the port is an error, not
readiness). Any failure stops what was started and raises
``ClusterStartError`` with the tail of the failing component's log.

``run_dir/cluster.pids`` (JSON: launcher pid, and each component's pid,
process start time and command) is rewritten after every spawn, so ``crucible
down`` can stop a detached cluster. A pid is only ever signalled after its
start time matches the recorded one: a recycled pid is never hit, and no
process is ever looked up by name.

With ``arbiter.coordination: etcd`` the first component is a local etcd
(``launch/etcd.py``: loopback, data in ``run_dir/etcd``), ready when its HTTP
``/health`` says so, stopped last; it is in the pidfile like the others.

``stop()`` goes in reverse start order, one component at a time: SIGCONT (a
paused process cannot act on SIGTERM), SIGTERM, wait up to the grace period,
then SIGKILL. ``kill``/``pause``/``resume``/``restart`` act on one
component (the nemesis's verbs). A component can be given its own config
(``component_configs``), e.g. a sequencer whose fan-out goes through the bus
relay (``harness.nemesis.udp_relay.relayed``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

from reference_impl import config as config_mod
from reference_impl.config import ClusterConfig
from reference_impl.edges import process
from reference_impl.launch import etcd

PIDFILE = "cluster.pids"
CONFIG_FILE = "cluster.yaml"
LOG_DIR = "logs"
PACKAGE_ROOT = Path(__file__).resolve().parent.parent  #: so nodes import from any cwd


class ClusterStartError(RuntimeError):
    """A component did not come up; carries the tail of its log.

    The launcher's side of "a SUT failed to start". Suites never see this
    class: the reference adapter (``harness.sut.reference``) turns it into
    the harness's ``SutError`` with the same component, reason and log tail,
    so a reference and an external SUT that failed to start read alike;
    only ``crucible up``, which runs the launcher itself, catches it as is.
    """

    def __init__(self, component: str, reason: str, log_tail: str = "") -> None:
        self.component, self.reason, self.log_tail = component, reason, log_tail
        text = f"{component}: {reason}"
        if log_tail:
            text += f"\n--- last lines of {component}.log ---\n{log_tail}"
        super().__init__(text)


class ClusterAborted(RuntimeError):
    """``start`` was cancelled (Ctrl-C/SIGTERM) before the cluster was up."""


@dataclass(frozen=True, slots=True)
class Component:
    name: str  #: sequencer, engine-<id>, logger, gateway-<id>
    module: str  #: python -m MODULE (etcd: its binary's name)
    admin_port: int  #: health is asked here (etcd: its client port)
    node_id: int | None = None


def plan_components(cfg: ClusterConfig) -> list[Component]:
    """Every component of ``cfg`` in start order (pure)."""
    out = [Component(etcd.COMPONENT, etcd.BINARY, cfg.arbiter.etcd_client_port)] \
        if cfg.arbiter.coordination == "etcd" else []
    out.append(Component("logger", "reference_impl.logger", cfg.logger.admin_port))
    for e in sorted(cfg.engines, key=lambda e: (e.role != "secondary", e.id)):
        out.append(Component(f"engine-{e.id}", "reference_impl.engine", e.admin_port, e.id))
    out.append(Component("sequencer", "reference_impl.sequencer", cfg.sequencer.admin_port))
    for g in cfg.gateways:
        out.append(Component(f"gateway-{g.id}", "reference_impl.gateway", g.admin_port, g.id))
    if cfg.arbiter.enabled:  # last: it reads the engines' pids and the sequencer's epoch at start
        out.append(Component("arbiter", "reference_impl.arbiter", cfg.arbiter.admin_port))
    return out


# ------------------------------------------------------------------ processes by pid


class _Proc:
    """One started process: a pid plus its start time (identity), and the Popen if ours."""

    __slots__ = ("pid", "create_time", "popen")

    def __init__(self, pid: int, create_time: float, popen: subprocess.Popen | None = None) -> None:
        self.pid, self.create_time, self.popen = pid, create_time, popen

    @classmethod
    def spawn(cls, cmd: list[str], log_path: Path, env: dict[str, str]) -> _Proc:
        with open(log_path, "ab") as log:
            popen = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            created = psutil.Process(popen.pid).create_time()
        except psutil.Error:
            created = 0.0  # already gone; alive() sees that through the Popen
        return cls(popen.pid, created, popen)

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        try:
            p = psutil.Process(self.pid)
            return (abs(p.create_time() - self.create_time) < 0.05
                    and p.status() != psutil.STATUS_ZOMBIE)
        except psutil.Error:
            return False

    def signal(self, sig: int) -> bool:
        """Send ``sig`` if this very process still runs (never to a recycled pid)."""
        if not self.alive():
            return False
        try:
            os.kill(self.pid, sig)
            return True
        except ProcessLookupError:
            return False

    def wait_gone(self, deadline: float) -> bool:
        while self.alive():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def as_json(self) -> dict:
        return {"pid": self.pid, "create_time": self.create_time}


def terminate(procs: list[tuple[str, _Proc]], grace_s: float) -> dict[str, str]:
    """Stop each process in turn: SIGCONT+SIGTERM, and SIGKILL if it outlives its grace.

    One at a time, in the given order, so that a component whose peers are
    already gone (the logger after the sequencer) still gets its whole grace.
    """
    outcome: dict[str, str] = {}
    for name, proc in procs:
        if not proc.alive():
            outcome[name] = "not running"
            continue
        proc.signal(signal.SIGCONT)
        proc.signal(signal.SIGTERM)
        if proc.wait_gone(time.monotonic() + grace_s):
            outcome[name] = "stopped"
        else:
            proc.signal(signal.SIGKILL)
            proc.wait_gone(time.monotonic() + 5.0)
            outcome[name] = "killed"
    return outcome


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        data = path.read_bytes()[-16384:]
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


# ------------------------------------------------------------------ the cluster


class Cluster:
    """A whole pipeline on localhost. A context manager: ``with Cluster(cfg, d) as c: ...``."""

    def __init__(self, cfg: ClusterConfig, run_dir: str | Path, *,
                 component_configs: Mapping[str, ClusterConfig] | None = None,
                 health_timeout_s: float = 20.0, stop_grace_s: float = 5.0,
                 python: str = sys.executable) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir).resolve()
        self.plan = plan_components(cfg)
        self._by_name = {c.name: c for c in self.plan}
        unknown = set(component_configs or {}) - set(self._by_name)
        if unknown:
            raise ValueError(f"component_configs for unknown components: {sorted(unknown)}")
        self.component_configs = dict(component_configs or {})
        self.health_timeout_s = health_timeout_s
        self.stop_grace_s = stop_grace_s
        self.python = python
        self._procs: dict[str, _Proc] = {}

    # -------------------------------------------------------------- paths

    @property
    def pidfile(self) -> Path:
        return self.run_dir / PIDFILE

    def log_path(self, name: str) -> Path:
        return self.run_dir / LOG_DIR / f"{name}.log"

    def config_path(self, name: str) -> Path:
        own = name in self.component_configs
        return self.run_dir / (f"{name}.yaml" if own else CONFIG_FILE)

    def command(self, name: str) -> list[str]:
        c = self._by_name[name]
        if name == etcd.COMPONENT:
            return etcd.command(etcd.find_binary(), self.run_dir, c.admin_port, self.cfg.arbiter.etcd_peer_port)
        cmd = [self.python, "-m", c.module, "--config", str(self.config_path(name)),
               "--run-dir", str(self.run_dir)]
        return cmd + (["--id", str(c.node_id)] if c.node_id is not None else [])

    # -------------------------------------------------------------- lifecycle

    def start(self, abort: Callable[[], bool] | None = None) -> Cluster:
        """Start every component in order, each ready before the next; see the module doc."""
        (self.run_dir / LOG_DIR).mkdir(parents=True, exist_ok=True)
        (self.run_dir / CONFIG_FILE).write_text(config_mod.dump(self.cfg))
        for name, own in self.component_configs.items():
            (self.run_dir / f"{name}.yaml").write_text(config_mod.dump(own))
        try:
            for c in self.plan:
                self._spawn(c.name)
                self._await_health(c.name, abort)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> dict[str, str]:
        """Stop everything started, in reverse start order; the outcome per component."""
        order = [(c.name, self._procs[c.name]) for c in reversed(self.plan) if c.name in self._procs]
        outcome = terminate(order, self.stop_grace_s)
        self._procs.clear()
        try:
            self.pidfile.unlink()
        except FileNotFoundError:
            pass
        return outcome

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -------------------------------------------------------------- queries

    def components(self) -> dict[str, int]:
        """``{name: pid}`` of every component started (the latest pid after a restart)."""
        return {name: p.pid for name, p in self._procs.items()}

    def alive(self, name: str) -> bool:
        return self._proc(name).alive()

    def exited(self) -> dict[str, int | None]:
        """Components that are no longer running, with their exit code when known."""
        return {name: (p.popen.returncode if p.popen else None)
                for name, p in self._procs.items() if not p.alive()}

    def health(self, name: str, timeout_s: float = 1.0) -> dict:
        port = self._by_name[name].admin_port
        if name == etcd.COMPONENT:  # etcd answers HTTP /health, not the nodes' admin protocol
            return {"ok": etcd.healthy(port, timeout_s)}
        return process.admin_query(port, "health", timeout_s)

    # -------------------------------------------------------------- nemesis verbs

    def kill(self, name: str) -> None:
        """SIGKILL (kill -9); waits until the process is gone."""
        proc = self._proc(name)
        proc.signal(signal.SIGKILL)
        proc.wait_gone(time.monotonic() + 5.0)

    def pause(self, name: str) -> None:
        self._proc(name).signal(signal.SIGSTOP)

    def resume(self, name: str) -> None:
        self._proc(name).signal(signal.SIGCONT)

    def restart(self, name: str) -> int:
        """Stop (gracefully, else SIGKILL) and start again, waiting for health; the new pid."""
        terminate([(name, self._proc(name))], self.stop_grace_s)
        self._spawn(name)
        self._await_health(name, None)
        return self._procs[name].pid

    # -------------------------------------------------------------- internals

    def _proc(self, name: str) -> _Proc:
        if name not in self._procs:
            raise KeyError(f"no started component {name!r} (have: {', '.join(self._procs)})")
        return self._procs[name]

    def _spawn(self, name: str) -> None:
        if name == etcd.COMPONENT:
            try:
                etcd.preflight(self._by_name[name].admin_port)
            except (etcd.EtcdMissing, etcd.EtcdStartError) as exc:
                raise ClusterStartError(name, str(exc)) from None
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(
            [str(PACKAGE_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        with open(self.log_path(name), "ab") as log:
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(self.command(name))}\n"
                      .encode())
        self._procs[name] = _Proc.spawn(self.command(name), self.log_path(name), env)
        self._write_pidfile()

    def _await_health(self, name: str, abort: Callable[[], bool] | None) -> None:
        proc, port = self._procs[name], self._by_name[name].admin_port
        deadline = time.monotonic() + self.health_timeout_s
        last = "no reply"
        while True:
            if abort is not None and abort():
                raise ClusterAborted(f"start cancelled while waiting for {name}")
            if not proc.alive():
                code = proc.popen.returncode if proc.popen else None
                raise ClusterStartError(name, f"exited with code {code} before it was ready",
                                        log_tail(self.log_path(name)))
            try:
                reply = self.health(name, 0.2)
            except (OSError, ValueError) as exc:  # not bound yet, timeout, garbage
                last = f"{type(exc).__name__}: {exc}"
            else:
                if reply.get("pid") not in (None, proc.pid):
                    raise ClusterStartError(
                        name, f"admin port {port} is answered by another process "
                              f"(pid {reply.get('pid')}): a cluster from an earlier run?",
                        log_tail(self.log_path(name)))
                if reply.get("ok") is True:
                    return
                last = f"health reply {reply}"
            if time.monotonic() >= deadline:
                raise ClusterStartError(
                    name, f"not healthy after {self.health_timeout_s:g} s on admin port {port} "
                          f"({last})", log_tail(self.log_path(name)))
            time.sleep(0.05)

    def _write_pidfile(self) -> None:
        launcher = psutil.Process()
        doc = {
            "version": 1,
            "run_dir": str(self.run_dir),
            "launcher": {"pid": launcher.pid, "create_time": launcher.create_time()},
            "components": {name: {**p.as_json(), "cmd": self.command(name)}
                           for name, p in self._procs.items()},
        }
        tmp = self.pidfile.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
        os.replace(tmp, self.pidfile)


# ------------------------------------------------------------------ a detached cluster


def read_pidfile(run_dir: str | Path) -> dict:
    return json.loads((Path(run_dir) / PIDFILE).read_text())


def stop_detached(run_dir: str | Path, grace_s: float = 5.0) -> dict[str, str]:
    """Stop the cluster recorded in ``run_dir/cluster.pids`` (``crucible down``).

    A foreground launcher still running is asked to stop first (it stops its
    own components in order); whatever is left is stopped here, newest first.
    """
    doc = read_pidfile(run_dir)
    launcher = doc.get("launcher") or {}
    if launcher.get("pid") not in (None, os.getpid()):
        lp = _Proc(launcher["pid"], launcher["create_time"])
        if lp.signal(signal.SIGTERM):
            lp.wait_gone(time.monotonic() + grace_s + 2.0)
    entries = list(doc.get("components", {}).items())
    procs = [(name, _Proc(e["pid"], e["create_time"])) for name, e in reversed(entries)]
    outcome = terminate(procs, grace_s)
    try:
        (Path(run_dir) / PIDFILE).unlink()
    except FileNotFoundError:
        pass
    return outcome
