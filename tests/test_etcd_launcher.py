"""reference_impl.launch.etcd: a real etcd on loopback, started and stopped by pid."""

from __future__ import annotations

import shutil
from pathlib import Path

import psutil
import pytest

from reference_impl.launch import etcd
from reference_impl.launch.etcd import PACKAGE, EtcdMissing, EtcdServer, EtcdStartError

CLIENT_PORT, PEER_PORT = 29803, 29804

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
