"""A single-member etcd on loopback, for the arbiter pair's coordination.

Theory of operation
-------------------
Which of the two arbiters is active is decided by etcd (a lease on one key,
``reference_impl.arbiter.lease``), not by anything home-made. The cluster
needs one etcd, on this host, that lives exactly as long as the cluster:
Debian's ``etcd-server`` binary, started with

- both its URLs on ``127.0.0.1`` (the client port and the peer port come from
  the cluster's port block, ``arbiter.etcd_client_port`` / ``etcd_peer_port``),
  so it never listens beyond loopback and two test clusters never collide;
- its data under the run directory (``RUN_DIR/etcd``), so a run leaves nothing
  elsewhere and ``crucible down`` + ``rm -r RUN_DIR`` is a clean slate;
- a 50 ms raft heartbeat and a 500 ms election timeout: with one member there
  is no election to tune for, and etcd refuses lease TTLs under 1.5 election
  timeouts, so this is what lets the arbiters hold 1 s leases.

It is ready when ``GET /health`` answers ``{"health": "true"}`` (the member has
a raft leader: itself). ``EtcdServer`` starts and stops one by pid for code
that runs no ``Cluster`` (the lease's tests, the client benchmark); the
``Cluster`` launcher starts it as its first component with the same
``preflight``, ``command`` and ``healthy`` and stops it last, so its pid is in the pidfile and
``crucible down`` stops it too.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Self

from reference_impl.config import HOST

COMPONENT = "etcd"  #: its name among a Cluster's components (logs/etcd.log, the pidfile)
PACKAGE = "etcd-server"  #: the Debian package that ships the binary
BINARY = "etcd"
DATA_DIR = "etcd"  #: under the run directory
LOG_NAME = f"{COMPONENT}.log"  #: under the run directory's logs/
HEARTBEAT_MS = 50
ELECTION_MS = 500


class EtcdMissing(RuntimeError):
    """The etcd binary is not installed: names the package that provides it."""

    def __init__(self) -> None:
        super().__init__(f"the {BINARY} binary is not on PATH: install the Debian package {PACKAGE} "
                         f"(apt-get install {PACKAGE}, or scripts/bootstrap), or set "
                         f"arbiter.coordination: none for a single arbiter without etcd")


class EtcdStartError(RuntimeError):
    """etcd did not answer its health check in time, or exited: carries its log's tail."""


def find_binary() -> str:
    """The etcd binary's path, or ``EtcdMissing``."""
    path = shutil.which(BINARY)
    if path is None:
        raise EtcdMissing()
    return path


def preflight(client_port: int) -> str:
    """The binary's path, once sure a start can work: ``EtcdMissing``, or ``EtcdStartError`` when an
    etcd (from an earlier run?) already answers on the port and would pass for ours."""
    binary = find_binary()
    if healthy(client_port, 0.2):
        raise EtcdStartError(f"port {client_port} already answers as etcd: one from an earlier run?")
    return binary


def url(port: int) -> str:
    return f"http://{HOST}:{port}"


def command(binary: str, run_dir: Path, client_port: int, peer_port: int) -> list[str]:
    """etcd's command line: one member, loopback only, data in ``run_dir/etcd`` (pure)."""
    client, peer = url(client_port), url(peer_port)
    return [binary, "--name", "crucible", "--data-dir", str(run_dir / DATA_DIR),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"crucible={peer}", "--initial-cluster-state", "new",
            "--heartbeat-interval", str(HEARTBEAT_MS), "--election-timeout", str(ELECTION_MS)]


def healthy(client_port: int, timeout_s: float = 0.5) -> bool:
    """Whether the etcd on ``client_port`` answers ``/health`` with a leader."""
    try:
        with urllib.request.urlopen(f"{url(client_port)}/health", timeout=timeout_s) as reply:
            return json.loads(reply.read()).get("health") == "true"
    except (OSError, ValueError, urllib.error.URLError):
        return False


class EtcdServer:
    """One etcd process of our own, handled by pid: ``with EtcdServer(d, 2379, 2380) as e: ...``."""

    def __init__(self, run_dir: str | Path, client_port: int, peer_port: int, *,
                 ready_timeout_s: float = 15.0, stop_grace_s: float = 5.0) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.client_port, self.peer_port = client_port, peer_port
        self.ready_timeout_s, self.stop_grace_s = ready_timeout_s, stop_grace_s
        self._popen: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    @property
    def log_path(self) -> Path:
        return self.run_dir / "logs" / LOG_NAME

    def endpoint(self) -> str:
        return url(self.client_port)

    def start(self) -> EtcdServer:
        """Spawn etcd and return once it is healthy; ``EtcdMissing``/``EtcdStartError`` otherwise."""
        cmd = command(preflight(self.client_port), self.run_dir, self.client_port, self.peer_port)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._popen = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + self.ready_timeout_s
        while not healthy(self.client_port, 0.2):
            code = self._popen.poll()
            if code is not None or time.monotonic() >= deadline:
                self.stop()
                what = f"exited with code {code}" if code is not None else \
                    f"not healthy after {self.ready_timeout_s:g} s"
                raise EtcdStartError(f"etcd {what}\n--- last lines of {LOG_NAME} ---\n{self._tail()}")
            time.sleep(0.02)
        return self

    def alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def stop(self) -> str:
        """SIGTERM, then SIGKILL after the grace; reaps the child. ``stopped``/``killed``/``not running``."""
        popen, self._popen = self._popen, None
        if popen is None or popen.poll() is not None:
            return "not running"
        os.kill(popen.pid, signal.SIGTERM)  # our own unreaped child: its pid cannot be recycled
        try:
            popen.wait(self.stop_grace_s)
            return "stopped"
        except subprocess.TimeoutExpired:
            os.kill(popen.pid, signal.SIGKILL)
            popen.wait(5.0)
            return "killed"

    def _tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_bytes()[-8192:].decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
