"""Power-off nemesis: drive the lossy filesystem (``lossyfs``) from the harness.

``LossyMount(data_dir)`` starts ``python -m harness.nemesis.lossyfs`` over a
SUT data dir (by default mounted over the directory itself, so the SUT keeps
its paths) and talks to it over its control socket. A power-off is
``power_off(mounts, pids)``: the power goes at one instant, with the SUT
still running and writing. Every mount is armed (``arm``: it crashes as the
next flush of un-synced data would complete), and as soon as one crashes, or after
``cut_within`` seconds, every mount is crashed (each file back to its
last-synced state; a flush in flight fails; further changes fail with EIO).
Only then is every SUT process killed (-9) and waited for, and every mount
unmounted. The data dirs then hold what a power loss would have left, and a
cold restart reads them directly. Each crash report says what it discarded
(``bytes_discarded``, ``writes_discarded``, ``flushes_cut``): a power-off that
discarded nothing cut nothing, and shows nothing about durability.

``fuse_available()`` says whether this machine can do any of that, and if not,
exactly why (no /dev/fuse, no fusermount3, mfusepy or libfuse3 missing, no
mount privilege). Callers turn ``(False, reason)`` into an UNKNOWN verdict,
never a pass.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 15.0
UNMOUNT_TIMEOUT_S = 10.0
CUT_WITHIN_S = 2.0  #: how long a power-off waits for a flush of un-synced data to cut


class LossyFsError(RuntimeError):
    """The lossy filesystem failed to mount, answer or unmount (the kit's or the machine's fault)."""


def fuse_available(probe: bool = True) -> tuple[bool, str]:
    """``(True, "")`` when a lossy mount works here, else ``(False, why)``.

    The cheap checks name the missing piece; ``probe`` then mounts and unmounts
    a scratch lossyfs once per process, which is the only honest test of the
    mount privilege (root, CAP_SYS_ADMIN, or a setuid fusermount3 may or may not
    be enough inside a container).
    """
    if not sys.platform.startswith("linux"):
        return False, f"FUSE power-off needs Linux (this is {sys.platform})"
    if not os.path.exists("/dev/fuse"):
        return False, "/dev/fuse is missing (no FUSE device in this container or VM)"
    try:
        os.close(os.open("/dev/fuse", os.O_RDWR))
    except OSError as e:
        return False, f"cannot open /dev/fuse: {e.strerror} (needs access to the FUSE device)"
    if shutil.which("fusermount3") is None:
        return False, "fusermount3 not found (install the Debian package fuse3; .ci/run does)"
    try:
        importlib.import_module("mfusepy")
    except ImportError as e:
        return False, f"mfusepy is not installed ({e}; pip install -e '.[fuse]')"
    except OSError as e:
        return False, f"mfusepy cannot load libfuse3 ({e}; install the Debian package fuse3)"
    if os.geteuid() != 0 and not os.stat(shutil.which("fusermount3")).st_mode & 0o4000:
        return False, "no mount privilege: not root and fusermount3 is not setuid"
    return _probe_mount() if probe else (True, "")


@functools.lru_cache(maxsize=1)
def _probe_mount() -> tuple[bool, str]:
    with tempfile.TemporaryDirectory(prefix="lossyfs-probe-") as tmp:
        backing, mnt = Path(tmp, "backing"), Path(tmp, "mnt")
        backing.mkdir()
        mnt.mkdir()
        m = LossyMount(backing, mnt, ready_timeout=READY_TIMEOUT_S)
        try:
            m.mount()
            Path(mnt, "probe").write_bytes(b"x")
            m.stats()
        except (LossyFsError, OSError) as e:
            return False, f"a probe mount of lossyfs failed: {e}"
        finally:
            m.unmount()
    return True, ""


def control(sock_path: str | os.PathLike, command: str, timeout: float = 10.0) -> dict:
    """Send one control command to a running lossyfs and return its JSON reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(os.fspath(sock_path))
        s.sendall(command.encode() + b"\n")
        line = s.makefile("rb").readline()
    if not line:
        raise LossyFsError(f"lossyfs at {sock_path} closed the control socket on {command!r}")
    reply = json.loads(line)
    if not reply.get("ok"):
        raise LossyFsError(f"lossyfs {command!r} failed: {reply.get('error')}")
    return reply


class LossyMount:
    """One lossyfs process: ``backing`` seen through ``mountpoint`` (default: the same dir)."""

    def __init__(self, backing: str | os.PathLike, mountpoint: str | os.PathLike | None = None, *,
                 work_dir: str | os.PathLike | None = None, allow_other: bool = False,
                 real_sync: bool = True, ready_timeout: float = READY_TIMEOUT_S,
                 fsync_delay_ms: float = 0.0) -> None:
        self.backing = Path(backing).resolve()
        self.mountpoint = Path(mountpoint).resolve() if mountpoint is not None else self.backing
        self._own_work = work_dir is None
        self.work_dir = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="lossyfs-"))
        self.control_path = self.work_dir / "control.sock"
        self.log_path = self.work_dir / "lossyfs.log"
        self.allow_other, self.real_sync, self.ready_timeout = allow_other, real_sync, ready_timeout
        self.fsync_delay_ms = fsync_delay_ms
        self.proc: subprocess.Popen | None = None
        self.last_crash: dict | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def mounted(self) -> bool:
        return self.proc is not None and os.path.ismount(self.mountpoint)

    # ---------------------------------------------------------- lifecycle

    def mount(self) -> LossyMount:
        if self.proc is not None:
            raise LossyFsError(f"{self.mountpoint} is already mounted by pid {self.proc.pid}")
        if os.path.ismount(self.mountpoint):
            raise LossyFsError(f"{self.mountpoint} is already a mount point")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "harness.nemesis.lossyfs", str(self.backing), str(self.mountpoint),
               "--control", str(self.control_path)]
        if self.allow_other:
            cmd.append("--allow-other")
        if not self.real_sync:
            cmd.append("--no-real-sync")
        if self.fsync_delay_ms:
            cmd += ["--fsync-delay-ms", str(self.fsync_delay_ms)]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p))
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=log, cwd="/", env=env)
        try:
            self._wait_ready()
        except BaseException:
            self.unmount()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + self.ready_timeout
        line = b""
        while time.monotonic() < deadline and not line.endswith(b"\n"):
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.05)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 256)
                if not chunk:
                    break
                line += chunk
        if line.strip() != b"ready":
            self.proc.poll()
            raise LossyFsError(f"lossyfs did not mount {self.mountpoint} within {self.ready_timeout}s "
                               f"(exit code {self.proc.returncode}): {self._log_tail()}")
        while not os.path.ismount(self.mountpoint) and time.monotonic() < deadline:
            time.sleep(0.01)
        if not os.path.ismount(self.mountpoint):
            raise LossyFsError(f"lossyfs said ready but {self.mountpoint} is not a mount point")

    def _log_tail(self, limit: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:].strip() or "(no output)"
        except OSError:
            return "(no log)"

    def unmount(self, timeout: float = UNMOUNT_TIMEOUT_S) -> None:
        """Unmount and make sure the lossyfs process is gone. Idempotent; safe in any teardown."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            if os.path.ismount(self.mountpoint):
                self._fusermount(timeout)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _stop(proc)
            if os.path.ismount(self.mountpoint):   # the process died without unmounting
                subprocess.run(["fusermount3", "-u", "-z", str(self.mountpoint)], capture_output=True)
        finally:
            if proc.poll() is None:
                _stop(proc)
            if proc.stdout:
                proc.stdout.close()
            if self._own_work:
                shutil.rmtree(self.work_dir, ignore_errors=True)

    def _fusermount(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            r = subprocess.run(["fusermount3", "-u", str(self.mountpoint)], capture_output=True, text=True)
            if r.returncode == 0 or not os.path.ismount(self.mountpoint):
                return
            if time.monotonic() > deadline:   # still busy: detach lazily rather than hang
                subprocess.run(["fusermount3", "-u", "-z", str(self.mountpoint)], capture_output=True)
                return
            time.sleep(0.05)

    def __enter__(self) -> LossyMount:
        return self.mount()

    def __exit__(self, *exc: object) -> None:
        self.unmount()

    # ---------------------------------------------------------- control

    def _control(self, command: str) -> dict:
        if self.proc is None:
            raise LossyFsError(f"{self.mountpoint} is not mounted")
        return control(self.control_path, command)

    def crash(self) -> dict:
        """Drop every write not yet fsynced; from now on changes fail with EIO. Returns what was lost."""
        self.last_crash = self._control("crash")
        return self.last_crash

    def arm(self, timeout: float) -> bool:
        """Crash as the next flush of un-synced data would complete; True once crashed, False after ``timeout``."""
        if self.proc is None:
            raise LossyFsError(f"{self.mountpoint} is not mounted")
        return bool(control(self.control_path, f"arm {timeout}", timeout=timeout + 10.0)["crashed"])

    def stats(self) -> dict:
        return self._control("stats")

    def slow_fsync(self, delay_ms: float) -> None:
        """From now on every file fsync/fdatasync takes ``delay_ms`` longer."""
        self._control(f"slow {delay_ms}")

    def durable_log(self) -> list[tuple[int, int, int]]:
        """Every file commit so far: ``(st_ino, end of the highest write, monotonic ns)``, oldest first."""
        return [tuple(e) for e in self._control("durable")["log"]]

    def reset(self) -> dict:
        """Accept changes again, taking the current contents as synced."""
        return self._control("reset")


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM (lossyfs then unmounts itself), then SIGKILL, this one process by pid."""
    for sig, wait_s in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            return
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            continue


def kill_and_wait(pids: Iterable[int], timeout: float = 10.0) -> list[int]:
    """kill -9 each pid and wait until it is dead (gone or a zombie). Returns the pids still alive."""
    procs = []
    for pid in pids:
        try:
            p = psutil.Process(pid)
            p.send_signal(signal.SIGKILL)
            procs.append(p)
        except psutil.NoSuchProcess:
            pass
    deadline = time.monotonic() + timeout
    alive = procs
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _running(p)]
        if alive:
            time.sleep(0.005)
    return [p.pid for p in alive]


def _running(p: psutil.Process) -> bool:
    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def power_off(mounts: Sequence[LossyMount], pids: Iterable[int], unmount: bool = True,
              cut_within: float = CUT_WITHIN_S, slow_fsync_ms: float = 0.0) -> list[dict]:
    """The power-off fault: crash every mount at one instant under load, then kill -9 the SUT.

    The instant is the completion of the first flush of un-synced data begun
    on any mount within ``cut_within`` seconds (else the end of that wait).
    ``slow_fsync_ms`` slows the flushes from then on (not the load before):
    an acknowledgement released before its flush then has that long to get
    out before the flush is cut. Returns one crash
    report per mount (``files``, ``bytes_discarded``, ``writes_discarded``,
    ``flushes_cut``, ``namespace_undone``, ``errors``...). Raises
    ``LossyFsError`` if a mount does not answer or a process survives kill -9;
    the data dirs then do not show a power loss, so the caller's verdict is
    UNKNOWN. The mounts are unmounted either way.
    """
    pids = list(pids)
    reports: list[dict] = []
    try:
        for m in mounts:
            if slow_fsync_ms:
                m.slow_fsync(slow_fsync_ms)
        with ThreadPoolExecutor(max_workers=max(1, len(mounts))) as pool:
            armed = [pool.submit(m.arm, cut_within) for m in mounts]
            wait(armed, return_when=FIRST_COMPLETED)
            reports = [m.crash() for m in mounts]   # the instant: the rest follow the first
            for f in armed:
                f.result()
        survivors = kill_and_wait(pids)
        if survivors:
            raise LossyFsError(f"processes {survivors} survived kill -9")
    finally:
        if unmount:
            for m in mounts:
                m.unmount()
    return reports


def durable_at(dirs: Iterable[Path], log: Iterable[tuple[int, int, int]],
               needles: Iterable[bytes]) -> dict[bytes, int | None]:
    """When each needle (an order's token) found in ``dirs`` became durable, in monotonic ns.

    Each needle is looked up by its first occurrence in the files under
    ``dirs`` (read after unmount: the same inodes lossyfs logged); it became
    durable at the first commit of that inode that covers its last byte, and
    is None when no commit did. A needle not found is left out. This needs
    nothing of the SUT's WAL format but that the token is in the record.
    """
    commits: dict[int, list[tuple[int, int]]] = {}
    for ino, end, at in log:
        commits.setdefault(ino, []).append((end, at))
    files = [(p.stat().st_ino, p.read_bytes()) for d in dirs for p in sorted(Path(d).rglob("*"))
             if p.is_file()]
    found: dict[bytes, int | None] = {}
    for needle in needles:
        for ino, data in files:
            at = data.find(needle)
            if at >= 0:
                end = at + len(needle)
                found[needle] = next((t for covered, t in commits.get(ino, []) if covered >= end), None)
                break
    return found
