"""The launcher: start order, readiness, stop by pid, nemesis verbs, ``crucible up``/``down``.

Two layers:

- ``Cluster`` mechanics against a *fake* node (a tiny script given as the
  launcher's ``python``: it reads the same config, answers ``health`` on the
  component's admin port and stops on SIGTERM), so they are tested whether or
  not the real nodes work;
- ``crucible up``/``down`` against the real nodes, skipped while any of the
  four node modules is missing.

Every test kills whatever it started, by pid, even when it fails (``reaper``).
Ports are the default config shifted by 12000 (unique to this module): 27000-30080,
below the ephemeral range (32768-60999), so no transient socket can hold one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from harness.nemesis.udp_relay import UdpFaultRelay
from harness.sut.reference_relay import input_subscriber_ports, relayed
from reference_impl import config
from reference_impl.launch.cluster import (
    PIDFILE,
    Cluster,
    ClusterStartError,
    plan_components,
    read_pidfile,
    stop_detached,
)

ROOT = Path(__file__).resolve().parent.parent
OFFSET = 12000  #: ports 27000-30080 (relay 29701-29703): below the ephemeral range
NAMES = ["logger", "engine-2", "engine-1", "sequencer", "gateway-1"]


def shifted_config(tmp_path: Path, **changes) -> Path:
    cfg = config.load().shifted(OFFSET).with_overrides(**changes)
    path = tmp_path / "shifted.yaml"
    path.write_text(config.dump(cfg))
    return path


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))


def running(pid: int, create_time: float) -> bool:
    try:
        p = psutil.Process(pid)
        return abs(p.create_time() - create_time) < 0.05 and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def all_gone(pids: dict[str, dict], timeout_s: float = 5.0) -> list[str]:
    """Names whose process still runs after ``timeout_s`` (empty: all gone)."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = [n for n, e in pids.items() if running(e["pid"], e["create_time"])]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


class Reaper:
    """Remembers every process and run dir a test started; SIGKILLs what is left at teardown."""

    def __init__(self) -> None:
        self.procs: list[tuple[int, float]] = []
        self.run_dirs: list[Path] = []
        self.clusters: list[Cluster] = []
        self.popens: list[subprocess.Popen] = []

    def note_pidfile(self, run_dir: Path) -> dict[str, dict]:
        doc = read_pidfile(run_dir)
        for e in doc["components"].values():
            self.procs.append((e["pid"], e["create_time"]))
        return doc["components"]

    def cleanup(self) -> None:
        for c in self.clusters:
            for p in c.components().values():
                try:
                    self.procs.append((p, psutil.Process(p).create_time()))
                except psutil.Error:
                    pass
            c.stop()
        for p in self.popens:
            if p.poll() is None:
                p.kill()
                p.wait()
        for d in self.run_dirs:
            if (d / PIDFILE).exists():
                self.note_pidfile(d)
                stop_detached(d, grace_s=1.0)
        for pid, created in self.procs:
            if running(pid, created):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def reaper():
    r = Reaper()
    try:
        yield r
    finally:
        r.cleanup()


# ------------------------------------------------------------------ a fake node

FAKE_NODE = textwrap.dedent("""\
    #!{python}
    # Stands in for `python -m reference_impl.<node> --config F --run-dir D [--id N]`.
    import json, os, signal, socket, sys, time, yaml
    argv = sys.argv[1:]
    module, rest = argv[1], argv[2:]
    opts = dict(zip(rest[::2], rest[1::2]))
    cfg = yaml.safe_load(open(opts["--config"]))
    kind = module.rsplit(".", 1)[1].replace("_node", "")
    if kind in ("engine", "gateway"):
        nid = int(opts["--id"])
        name = f"{{kind}}-{{nid}}"
        port = [x for x in cfg[kind + "s"] if x["id"] == nid][0]["admin_port"]
    else:
        name, port = kind, cfg[kind]["admin_port"]
    print(f"fake {{name}} up, config {{opts['--config']}}", flush=True)
    with open(os.path.join(opts["--run-dir"], "order.txt"), "a") as f:
        f.write(name + "\\n")
    if os.environ.get("FAKE_FAIL") == name:
        print(f"{{name}}: cannot bind, giving up", file=sys.stderr, flush=True)
        sys.exit(3)
    stop = []
    if os.environ.get("FAKE_STUBBORN") == name:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    if os.environ.get("FAKE_SLOW") == name:
        for _ in range(1200):
            if stop:
                sys.exit(0)
            time.sleep(0.05)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    sock.settimeout(0.05)
    while not stop:
        try:
            data, addr = sock.recvfrom(100)
        except (socket.timeout, InterruptedError):
            continue
        sock.sendto(json.dumps({{"ok": True, "component": name, "pid": os.getpid()}}).encode(), addr)
    """)


@pytest.fixture
def fake_python(tmp_path):
    path = tmp_path / "fake_node"
    path.write_text(FAKE_NODE.format(python=sys.executable))
    path.chmod(0o755)
    return str(path)


def fake_cluster(tmp_path, fake_python, reaper, **kw) -> Cluster:
    cfg = config.load().shifted(OFFSET)
    c = Cluster(cfg, tmp_path / "run", python=fake_python, **kw)
    reaper.clusters.append(c)
    reaper.run_dirs.append(c.run_dir)
    return c


def test_plan_puts_the_secondary_before_the_primary():
    assert [c.name for c in plan_components(config.load())] == NAMES


def test_start_in_order_with_logs_pidfile_and_verbs(tmp_path, fake_python, reaper):
    c = fake_cluster(tmp_path, fake_python, reaper).start()
    assert (c.run_dir / "order.txt").read_text().split() == NAMES
    assert config.load(c.run_dir / "cluster.yaml") == c.cfg
    for name in NAMES:
        assert f"fake {name} up" in c.log_path(name).read_text()
    pids = c.components()
    assert list(pids) == NAMES
    recorded = read_pidfile(c.run_dir)["components"]
    assert {n: e["pid"] for n, e in recorded.items()} == pids
    assert recorded["engine-1"]["cmd"][-2:] == ["--id", "1"]

    c.pause("engine-1")
    time.sleep(0.1)
    assert psutil.Process(pids["engine-1"]).status() == psutil.STATUS_STOPPED
    c.resume("engine-1")
    assert c.health("engine-1")["ok"]
    c.kill("engine-2")
    assert not c.alive("engine-2") and c.exited() == {"engine-2": -signal.SIGKILL}
    new = c.restart("engine-2")
    assert new != pids["engine-2"] and c.health("engine-2")["pid"] == new
    assert read_pidfile(c.run_dir)["components"]["engine-2"]["pid"] == new

    c.pause("sequencer")  # a paused process must still stop
    outcome = c.stop()
    assert set(outcome.values()) == {"stopped"}
    assert all_gone(recorded) == []
    assert not psutil.pid_exists(new) or psutil.Process(new).status() == psutil.STATUS_ZOMBIE
    assert not (c.run_dir / PIDFILE).exists()


def test_failed_component_stops_the_rest_and_shows_its_log(tmp_path, fake_python, reaper,
                                                          monkeypatch):
    monkeypatch.setenv("FAKE_FAIL", "sequencer")
    c = fake_cluster(tmp_path, fake_python, reaper)
    with pytest.raises(ClusterStartError) as info:
        c.start()
    assert info.value.component == "sequencer"
    assert "exited with code 3" in str(info.value)
    assert "sequencer: cannot bind, giving up" in info.value.log_tail
    assert c.components() == {}
    started = (c.run_dir / "order.txt").read_text().split()
    assert started == NAMES[:4]
    assert not any(p.info["cmdline"] and str(c.run_dir) in " ".join(p.info["cmdline"])
                   for p in psutil.process_iter(["cmdline"]))


def test_health_timeout_names_the_component(tmp_path, fake_python, reaper, monkeypatch):
    monkeypatch.setenv("FAKE_SLOW", "engine-2")
    c = fake_cluster(tmp_path, fake_python, reaper, health_timeout_s=1.0)
    with pytest.raises(ClusterStartError, match=r"engine-2: not healthy after 1 s"):
        c.start()
    assert c.components() == {}


def test_sigkill_after_the_grace_period(tmp_path, fake_python, reaper, monkeypatch):
    monkeypatch.setenv("FAKE_STUBBORN", "gateway-1")
    c = fake_cluster(tmp_path, fake_python, reaper, stop_grace_s=0.5).start()
    recorded = read_pidfile(c.run_dir)["components"]
    outcome = c.stop()
    assert outcome["gateway-1"] == "killed" and outcome["logger"] == "stopped"
    assert all_gone(recorded) == []


def test_stop_detached_from_the_pidfile(tmp_path, fake_python, reaper):
    c = fake_cluster(tmp_path, fake_python, reaper).start()
    recorded = read_pidfile(c.run_dir)["components"]
    c.pause("logger")
    outcome = stop_detached(c.run_dir, grace_s=2.0)
    assert set(outcome.values()) == {"stopped"}
    assert all_gone(recorded) == []
    assert not (c.run_dir / PIDFILE).exists()


def test_a_recycled_pid_is_never_signalled(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    me = psutil.Process()
    (run_dir / PIDFILE).write_text(json.dumps({"launcher": None, "components": {
        "logger": {"pid": me.pid, "create_time": me.create_time() - 1000.0}}}))
    assert stop_detached(run_dir, grace_s=0.1) == {"logger": "not running"}


# ------------------------------------------------------------------ crucible up / down


def crucible(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd, env=env(),
                          capture_output=True, text=True, timeout=timeout)


def test_config_error_names_the_file_and_the_key_and_exits_64(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(config.default_text().replace("durability: fsync", "durability: maybe"))
    r = crucible("up", "--config", str(bad), "--run-dir", str(tmp_path / "run"), cwd=tmp_path)
    assert r.returncode == os.EX_USAGE, r.stderr
    assert str(bad) in r.stderr and "cluster.durability" in r.stderr and "maybe" in r.stderr
    assert not (tmp_path / "run" / PIDFILE).exists()
    r = crucible("up", "--config", str(tmp_path / "nope.yaml"), cwd=tmp_path)
    assert r.returncode == os.EX_USAGE and "nope.yaml" in r.stderr


def test_down_without_a_cluster_says_so(tmp_path):
    r = crucible("down", cwd=tmp_path)
    assert r.returncode == 1 and "cluster-latest" in r.stderr


def test_up_detach_then_down_leaves_no_process(tmp_path, reaper):
    cfg_path = shifted_config(tmp_path)
    reaper.run_dirs.append(tmp_path / "results" / "cluster-latest")
    r = crucible("up", "--config", str(cfg_path), "--detach", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"127.0.0.1:{15000 + OFFSET}" in r.stdout
    assert f"curl -u DEMO1:demo1pw http://127.0.0.1:{18080 + OFFSET}" in r.stdout
    run_dir = (tmp_path / "results" / "cluster-latest").resolve()
    assert run_dir.name.startswith("cluster-") and str(run_dir) in r.stdout
    reaper.run_dirs.append(run_dir)
    pids = reaper.note_pidfile(run_dir)
    assert list(pids) == NAMES
    assert all_gone(pids, timeout_s=0) == NAMES  # all running after `up` returned
    r = crucible("down", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert all_gone(pids) == []
    assert not (run_dir / PIDFILE).exists()


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "crucible down"])
def test_foreground_up_stops_everything(tmp_path, reaper, how):
    cfg_path = shifted_config(tmp_path)
    run_dir = tmp_path / "run"
    reaper.run_dirs.append(run_dir)
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "up", "--config", str(cfg_path), "--run-dir", str(run_dir)],
        cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    reaper.popens.append(proc)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "Ctrl-C stops the cluster" in line:
            break
    assert proc.poll() is None, "".join(lines)
    pids = reaper.note_pidfile(run_dir)
    assert list(pids) == NAMES
    if how == "crucible down":  # asks the launcher to stop its own cluster
        r = crucible("down", "--run-dir", str(run_dir), cwd=tmp_path)
        assert r.returncode == 0, r.stdout + r.stderr
    else:
        proc.send_signal(getattr(signal, how))
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, "".join(lines) + out
    assert all_gone(pids) == []
    assert not (run_dir / PIDFILE).exists()


def test_relayed_sequencer_feeds_subscribers_through_the_relay(tmp_path, reaper):
    cfg = config.load().shifted(OFFSET)
    subs = input_subscriber_ports(cfg)
    seq_cfg, mapping = relayed(cfg, [p + 600 for p in subs])
    relay = UdpFaultRelay(mapping, seed=1).start()
    try:
        c = Cluster(cfg, tmp_path / "run", component_configs={"sequencer": seq_cfg})
        reaper.clusters.append(c)
        c.start()
        deadline = time.monotonic() + 5
        while relay.counts().received < 2 * len(subs) and time.monotonic() < deadline:
            time.sleep(0.05)  # idle heartbeats every heartbeat_ms, through the relay
        lanes = relay.lane_counts()
        assert all(lane.received > 0 for lane in lanes), lanes
        assert "--config" in c.command("sequencer")
        assert c.config_path("sequencer").name == "sequencer.yaml"
        c.stop()
    finally:
        relay.stop()
