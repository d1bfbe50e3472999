"""reference_impl.launch.etcd: a real etcd on loopback, started and stopped by pid, alone and as
the first component of a Cluster whose config asks for an arbiter pair (``arbiter.coordination: etcd``).

The Cluster tests use test_cluster's fake nodes (etcd itself is real); ports are the default config
shifted by 13000 (unique to this module; etcd on 30501-30502).
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import yaml

from reference_impl import config
from reference_impl.config import ClusterConfig, ConfigError
from reference_impl.launch import etcd
from reference_impl.launch.cluster import (
    Cluster,
    ClusterStartError,
    plan_components,
    read_pidfile,
    stop_detached,
)
from reference_impl.launch.etcd import PACKAGE, EtcdMissing, EtcdServer, EtcdStartError
from tests.test_cluster import FAKE_NODE, Reaper, all_gone

CLIENT_PORT, PEER_PORT = 29803, 29804
OFFSET = 13000

needs_etcd = pytest.mark.skipif(shutil.which("etcd") is None,
                                reason=f"etcd is not installed (Debian package {PACKAGE})")


def test_command_keeps_etcd_on_loopback_with_its_data_in_the_run_directory() -> None:
    cmd = etcd.command("/usr/bin/etcd", Path("/run/x"), 2379, 2380)
    urls = [cmd[i + 1] for i, a in enumerate(cmd) if a.endswith("-urls")]
    assert urls and all(u.startswith("http://127.0.0.1:") for u in urls)
    assert cmd[cmd.index("--data-dir") + 1] == "/run/x/etcd"


def test_a_missing_binary_names_the_debian_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    server = EtcdServer(tmp_path, CLIENT_PORT, PEER_PORT)
    with pytest.raises(EtcdMissing, match=PACKAGE):
        server.start()
    assert server.pid is None and not (tmp_path / "logs").exists()


@needs_etcd
def test_starts_answers_and_stops_leaving_no_process(tmp_path: Path) -> None:
    server = EtcdServer(tmp_path, CLIENT_PORT, PEER_PORT).start()
    pid = server.pid
    try:
        assert etcd.healthy(CLIENT_PORT)
        assert (tmp_path / "etcd" / "member").is_dir()
        with pytest.raises(EtcdStartError, match="already answers"):  # a second one on the same port
            EtcdServer(tmp_path / "other", CLIENT_PORT, PEER_PORT).start()
    finally:
        assert server.stop() == "stopped"
    assert not psutil.pid_exists(pid)
    assert not etcd.healthy(CLIENT_PORT)
    assert server.stop() == "not running"


@needs_etcd
def test_an_etcd_that_exits_at_start_is_an_error_with_its_log(tmp_path: Path) -> None:
    (tmp_path / "etcd").write_text("a file where the data directory should be")
    server = EtcdServer(tmp_path, CLIENT_PORT, PEER_PORT)
    with pytest.raises(EtcdStartError, match="exited with code") as err:
        server.start()
    assert "last lines of etcd.log" in str(err.value)
    assert server.pid is None


# ------------------------------------------------------------------ the config key and the Cluster


@pytest.fixture
def fake_python(tmp_path: Path) -> str:
    path = tmp_path / "fake_node"
    path.write_text(FAKE_NODE.format(python=sys.executable))
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def reaper() -> Iterator[Reaper]:
    r = Reaper()
    try:
        yield r
    finally:
        r.cleanup()


def pair_config() -> ClusterConfig:
    cfg = config.load().shifted(OFFSET)
    return cfg.with_overrides(arbiter=dataclasses.replace(cfg.arbiter, enabled=True, coordination="etcd"))


def test_coordination_is_none_or_etcd_and_etcd_needs_an_arbiter() -> None:
    raw = yaml.safe_load(config.default_text())
    assert config.parse(raw).arbiter.coordination == "none"
    with pytest.raises(ConfigError, match="arbiter.coordination: must be one of none, etcd"):
        config.parse({**raw, "arbiter": {"enabled": True, "coordination": "zookeeper"}})
    with pytest.raises(ConfigError, match="arbiter.coordination: etcd coordinates an arbiter pair"):
        config.parse({**raw, "arbiter": {"coordination": "etcd"}})
    cfg = config.parse({**raw, "cluster": {**raw["cluster"], "output_heartbeat_us": 1000},
                        "arbiter": {"enabled": True, "coordination": "etcd", "etcd_client_port": 17600}})
    assert cfg.arbiter.etcd_client_port == 17600 and 17600 in cfg.ports()
    assert cfg.shifted(10).arbiter.etcd_peer_port == cfg.arbiter.etcd_peer_port + 10
    assert config.parse(yaml.safe_load(config.dump(cfg))) == cfg


def test_the_plan_starts_etcd_first_only_for_a_pair() -> None:
    assert "etcd" not in [c.name for c in plan_components(config.load())]
    assert plan_components(pair_config())[0].name == "etcd"


@needs_etcd
def test_a_cluster_starts_etcd_first_and_crucible_down_stops_it(tmp_path, fake_python, reaper) -> None:
    cfg = pair_config()
    c = Cluster(cfg, tmp_path / "run", python=fake_python)
    reaper.clusters.append(c)
    reaper.run_dirs.append(c.run_dir)
    c.start()
    assert next(iter(c.components())) == "etcd" and c.health("etcd") == {"ok": True}
    assert (c.run_dir / "etcd" / "member").is_dir() and c.log_path("etcd").exists()
    recorded = read_pidfile(c.run_dir)["components"]
    assert recorded["etcd"]["cmd"][0].endswith("etcd")
    outcome = stop_detached(c.run_dir, grace_s=2.0)  # what crucible down does: etcd goes last
    assert list(outcome)[-1] == "etcd" and set(outcome.values()) == {"stopped"}
    assert all_gone(recorded) == []
    assert not etcd.healthy(cfg.arbiter.etcd_client_port)


def test_a_cluster_without_the_etcd_binary_names_the_package(tmp_path, fake_python, reaper,
                                                             monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    c = Cluster(pair_config(), tmp_path / "run", python=fake_python)
    reaper.clusters.append(c)
    with pytest.raises(ClusterStartError, match=f"etcd: .*{PACKAGE}"):
        c.start()
    assert c.components() == {}
