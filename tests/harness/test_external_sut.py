"""ExternalSut: descriptor validation, port blocks, and a trivial external SUT run for real.

The trivial SUT is three components written here: ``web`` (``python -m
http.server``, ready on HTTP GET), ``admin`` (a small UDP admin script
answering ``health``, ``digest`` and paged ``checkpoints``) and ``shell`` (a
shell that starts a child, to show that verbs reach the whole process
group). Its ports are 15101/15102 moved by ``port_offset: 8000``. Every test
stops what it starts.
"""

from __future__ import annotations

import copy
import json
import textwrap
import time
from pathlib import Path

import psutil
import pytest
import yaml

from harness.sut import NotSupported, SutError, load_sut
from harness.sut import ports as port_alloc
from harness.sut.descriptor import DescriptorError, load, parse
from harness.sut.external import ExternalSut
from harness.sut.procs import _group_pids
from reference_impl import config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "reference-as-external.yaml"

ADMIN = textwrap.dedent("""\
    import json, os, socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", int(sys.argv[1])))
    points = [[i * 10, "h%d" % i] for i in range(1, 8)]
    while True:
        data, addr = s.recvfrom(1024)
        words = data.decode().split()
        if words[0] == "health":
            reply = {"ok": True, "pid": os.getpid()}
        elif words[0] == "digest":
            reply = {"applied_seq": 70, "state_hash": "abc"}
        else:  # checkpoints AFTER: pages of 3
            after = int(words[1])
            newer = [p for p in points if p[0] > after]
            page = newer[:3]
            reply = {"checkpoints": page, "next_after": page[-1][0] if len(newer) > 3 else None}
        s.sendto(json.dumps(reply).encode(), addr)
""")

JOURNAL = textwrap.dedent("""\
    import json
    print(json.dumps({"seq": 1, "ts": 5, "type": "new", "account": "A1", "token": "T1",
                      "symbol": "ACME", "side": "B", "qty": 1, "price": 100,
                      "ord_type": "limit", "tif": "DAY"}))
    print(json.dumps({"seq": 2, "ts": 6, "type": "replace", "account": "A1", "token": "T1",
                      "new_token": "T2", "qty": 1, "price": 200}))
""")


def descriptor(tmp: Path) -> dict:
    (tmp / "admin.py").write_text(ADMIN)
    (tmp / "journal.py").write_text(JOURNAL)
    return {
        "version": 1, "name": "trivial", "durability": "fsync", "port_offset": 8000,
        "accounts": {"A1": "pw1"}, "instruments": {"ACME": 100},
        "doors": {"http": {"port": "web.http"}},
        "setup": ["{python} -c \"open('{run_dir}/setup.txt', 'w').write('{offset}')\""],
        "components": {
            "web": {"role": "gateway",
                    "start": "{python} -m http.server {port} --bind 127.0.0.1 "
                             "--directory {run_dir}",
                    "ports": {"http": 15101},
                    "ready": {"http": "http://127.0.0.1:{ports[http]}/", "timeout_s": 20}},
            "admin": {"role": "primary", "start": ["{python}", "{descriptor_dir}/admin.py",
                                                   "{ports[admin]}"],
                      "ports": {"admin": 15102}, "ready": {"udp_health": "admin"},
                      "digest": {"udp": "admin"}, "checkpoints": {"udp": "admin"},
                      "data_dir": "data/admin"},
            "shell": {"start": ["sh", "-c", "sleep 300 & sleep 300"], "stop_signal": "TERM",
                      "stop_timeout_s": 2},
        },
        "journal": "{python} {descriptor_dir}/journal.py",
    }


def write(tmp: Path, doc: dict) -> Path:
    path = tmp / "sut.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


# ------------------------------------------------------------------ parsing


def test_the_worked_example_parses_and_matches_the_default_config():
    d = load(EXAMPLE)
    assert d.name == "reference-as-external" and d.port_offset == "auto"
    assert d.all_ports() == sorted(config.load().ports())
    assert [c.name for c in d.components] == ["logger", "engine-2", "engine-1", "sequencer",
                                              "gateway-1"]
    assert {c.role for c in d.components} == {"logger", "secondary", "primary", "sequencer",
                                              "gateway"}
    assert d.doors["ouch"].port == 15000 and d.doors["http"].port == 18080
    sut = ExternalSut(d, ROOT / "results" / "never-started")
    assert all(sut.offers(f) for f in ("wal", "wal_damage", "rerequest", "output_streams",
                                       "offline_replay", "health"))
    assert not any(sut.offers(f) for f in ("bus_relay", "stages", "faults"))
    assert d.component("logger").wal.dir == "wal" and d.replay is not None
    assert d.component("sequencer").stream.session_bytes() == b"CRUCIN0001"


def _set(doc: dict, dotted: str, value) -> dict:
    doc = copy.deepcopy(doc)
    *parents, last = dotted.split(".")
    node = doc
    for p in parents:
        node = node[p]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return doc


_DELETE = object()


@pytest.mark.parametrize("dotted, value, key, words", [
    ("version", 2, "version", "must be 1"),
    ("version", _DELETE, "version", "missing"),
    ("durability", "eventually", "durability", "must be one of"),
    ("colour", "red", "colour", "unknown key"),
    ("port_offset", "sometimes", "port_offset", "'auto'"),
    ("accounts", {}, "accounts", "at least one"),
    ("instruments", {"ACME": 0}, "instruments.ACME", "tick"),
    ("components.web.start", _DELETE, "components.web.start", "missing"),
    ("components.web.start", [], "components.web.start", "empty command"),
    ("components.web.role", "leader", "components.web.role", "must be one of"),
    ("components.web.ports", {"http": 70000}, "components.web.ports.http", "1..65535"),
    ("components.web.ready", {"tcp": 1, "http": "x"}, "components.web.ready", "exactly one"),
    ("components.admin.ready", {"udp_health": "admn"}, "components.admin.ready.udp_health",
     "name of one of this component's ports"),
    ("components.web.start", "{python} -m http.server {prot}", "components.web.start[3]",
     "unknown placeholder {prot}"),
    ("components.web.start", "run {ports[nope]}", "components.web.start[1]", "no such port"),
    ("components.admin.digest", {"udp": "admin", "http": "x"}, "components.admin.digest",
     "either udp"),
    ("components.shell.stop_signal", "USR1", "components.shell.stop_signal", "must be one of"),
    ("components.shell.sleep", 1, "components.shell.sleep", "unknown key"),
    ("doors.http.port", "web.https", "doors.http.port", "COMPONENT.NAME"),
    ("doors.fix", {"port": 1}, "doors.fix", "unknown key"),
    ("components.admin.ports", {"admin": 15101}, "components", "used more than once"),
    ("setup", ["echo {nothing}"], "setup[0]", "unknown placeholder"),
    ("journal", 5, "journal", "must be a command"),
    ("components.admin.wal", {"format": "crucible-wal-2"}, "components.admin.wal.format",
     "must be one of crucible-wal-1"),
    ("components.admin.wal", {"format": "crucible-wal-1"}, "components.admin.wal", "logger-role"),
    ("components.admin.wal", {"format": "crucible-wal-1", "size": 1}, "components.admin.wal.size",
     "unknown key"),
    ("components.admin.stream", {"session": "MUCH-TOO-LONG", "rerequest": "admin"},
     "components.admin.stream.session", "ASCII letters or digits"),
    ("components.admin.stream", {"session": "OUT1", "rerequest": "admn"},
     "components.admin.stream.rerequest", "one of this component's ports"),
    ("components.admin.stream", {"session": "OUT1"}, "components.admin.stream.rerequest", "missing"),
    ("replay", "{python} replay {inputs} --out {output}", "replay[2]", "unknown placeholder"),
    ("replay_timeout_s", 0, "replay_timeout_s", "must be > 0"),
])
def test_validation_errors_name_the_key(tmp_path, dotted, value, key, words):
    doc = _set(descriptor(tmp_path), dotted, value)
    with pytest.raises(DescriptorError) as info:
        parse(doc)
    assert info.value.key == key, str(info.value)
    assert words in str(info.value)


def test_bad_yaml_and_missing_file_name_the_path(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: [1\n")
    with pytest.raises(DescriptorError, match="not valid YAML"):
        load(bad)
    with pytest.raises(DescriptorError, match="cannot read"):
        load(tmp_path / "nope.yaml")


def test_load_sut_dispatch(tmp_path):
    from harness.sut.reference import ReferenceSut

    assert isinstance(load_sut("reference", tmp_path / "r", 3), ReferenceSut)
    path = write(tmp_path, descriptor(tmp_path))
    sut = load_sut(path, tmp_path / "run", 3, bus_relay=True, faults=(), durability="fsync")
    assert isinstance(sut, ExternalSut) and sut.name == "trivial"
    assert not sut.offers("bus_relay")  # asked for, not offered: the suite says N/A
    with pytest.raises(NotSupported, match="reference implementation only"):
        load_sut(path, tmp_path / "run", faults=("skip_dedup",))
    with pytest.raises(NotSupported, match="durability"):
        load_sut(path, tmp_path / "run", durability="replicated")
    with pytest.raises(ValueError, match="unknown SUT"):
        load_sut("nonesuch", tmp_path)
    with pytest.raises(FileNotFoundError):
        load_sut(tmp_path / "missing.yaml", tmp_path)


# ------------------------------------------------------------------ port blocks


def test_allocate_skips_busy_and_held_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(port_alloc, "LOCK_DIR", tmp_path / "locks")  # not the real SUTs' locks
    busy = {3000}  # 15000 moved by -12000
    probe = lambda p: p not in busy  # noqa: E731
    ports = [15000, 18080]
    a = port_alloc.allocate(ports, probe=probe, candidates=(-12000, -8000, -4000))
    try:
        assert a.offset == -8000
        b = port_alloc.allocate(ports, probe=probe, candidates=(-12000, -8000, -4000))
        try:
            assert b.offset == -4000  # -8000 is held (flock), even within one process
        finally:
            b.release()
        with pytest.raises(port_alloc.NoFreePorts, match="ports already in use: \\[3000\\]"):
            port_alloc.take(ports, -12000, probe=probe)
        with pytest.raises(port_alloc.NoFreePorts, match="outside"):
            port_alloc.take(ports, 20000, probe=probe)
    finally:
        a.release()
    assert port_alloc.allocate(ports, probe=probe, candidates=(-8000,)).offset == -8000


# ------------------------------------------------------------------ a real run


def _status(pid: int) -> str | None:
    try:
        return psutil.Process(pid).status()
    except psutil.Error:
        return None


def test_start_verbs_state_and_stop(tmp_path):
    run = tmp_path / "run"
    sut = ExternalSut(write(tmp_path, descriptor(tmp_path)), run, seed=5)
    sut.start()
    try:
        pids = sut.components()
        assert list(pids) == ["web", "admin", "shell"]
        deadline = time.monotonic() + 5  # ready "none": the shell may not have forked yet
        while len(_group_pids(pids["shell"])) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        shell_group = _group_pids(pids["shell"])
        assert len(shell_group) == 3  # the shell and the two sleeps it started
        assert sut.endpoints() == {"http": "http://127.0.0.1:23101", "ouch": None}
        assert (run / "setup.txt").read_text() == "8000"
        assert sut.roles() == {"gateway": ["web"], "primary": ["admin"], "other": ["shell"]}
        assert [f for f in ("http", "ouch", "digest", "checkpoints", "journal", "power_off",
                            "kill", "bus_relay", "recover") if sut.offers(f)] == [
            "http", "digest", "checkpoints", "journal", "power_off", "kill"]
        assert sut.digest("admin") == {"applied_seq": 70, "state_hash": "abc"}
        assert sut.checkpoints("admin") == [(i * 10, f"h{i}") for i in range(1, 8)]
        with pytest.raises(NotSupported):
            sut.digest("web")
        with pytest.raises(NotSupported):
            sut.recover("admin")
        assert [e["type"] for e in sut.journal()] == ["new", "replace"]
        assert sut.data_dirs() == {"admin": run / "data" / "admin"}

        sut.pause("shell")
        deadline = time.monotonic() + 5
        while (any(_status(p) != psutil.STATUS_STOPPED for p in shell_group)
               and time.monotonic() < deadline):
            time.sleep(0.02)
        assert all(_status(p) == psutil.STATUS_STOPPED for p in shell_group)
        sut.resume("shell")

        sut.kill("admin")
        assert _status(pids["admin"]) in (None, psutil.STATUS_ZOMBIE)
        new_pid = sut.restart("admin")
        assert new_pid != pids["admin"] and sut.digest("admin")["applied_seq"] == 70
    finally:
        outcome = sut.stop()
    assert outcome == {"shell": "stopped", "admin": "stopped", "web": "stopped"}
    assert not _group_pids(pids["shell"]) and not _group_pids(new_pid)
    assert [e["type"] for e in sut.journal()] == ["new", "replace"]  # readable after stop too
    assert "http.server" in (run / "logs" / "web.log").read_text()


def test_a_component_that_exits_stops_the_rest_and_names_itself(tmp_path):
    doc = descriptor(tmp_path)
    doc["components"]["shell"]["start"] = ["sh", "-c", "echo boom; exit 3"]
    doc["components"]["shell"]["ready"] = {"tcp": 15103, "timeout_s": 5}
    sut = ExternalSut(write(tmp_path, doc), tmp_path / "run")
    with pytest.raises(SutError) as info:
        sut.start()
    assert info.value.component == "shell" and "exited with code 3" in str(info.value)
    assert "boom" in info.value.log_tail
    assert sut.components() == {}


def test_readiness_timeout_and_failed_setup(tmp_path):
    doc = descriptor(tmp_path)
    doc["components"] = {"web": doc["components"]["web"]}
    doc["components"]["web"]["ready"] = {"tcp": 15109, "timeout_s": 0.5}
    doc["components"]["web"]["ports"]["spare"] = 15109
    sut = ExternalSut(write(tmp_path, doc), tmp_path / "run")
    with pytest.raises(SutError, match="not ready \\(tcp\\) after 0.5 s"):
        sut.start()
    doc["setup"] = ["sh -c 'echo no; exit 1'"]
    sut = ExternalSut(write(tmp_path, doc), tmp_path / "run2")
    with pytest.raises(SutError, match="setup\\[0\\].*exited with code 1"):
        sut.start()
    assert sut.components() == {}


def test_stop_escalates_to_sigkill(tmp_path):
    doc = descriptor(tmp_path)
    doc["components"] = {"stubborn": {
        "start": ["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"],
        "stop_timeout_s": 0.5}}
    doc["doors"] = {"ouch": {"port": 15105}}
    sut = ExternalSut(write(tmp_path, doc), tmp_path / "run")
    sut.start()
    time.sleep(0.2)  # let the shell install its trap
    pid = sut.components()["stubborn"]
    assert sut.stop() == {"stubborn": "killed"}
    assert not _group_pids(pid)


# ------------------------------------------------------------------ declared capabilities

REPLAY = textwrap.dedent("""\
    import json, sys
    lines = open(sys.argv[1]).read().splitlines()
    with open(sys.argv[2], "w") as out:
        out.write(json.dumps({"type": "end", "last_seq": len(lines), "state_hash": "ab"}) + "\\n")
""")


def test_declared_wal_and_replay_work_while_stopped(tmp_path):
    from reference_impl.core import wal_codec

    (tmp_path / "replay.py").write_text(REPLAY)
    doc = descriptor(tmp_path)
    doc["components"]["keeper"] = {"role": "logger", "start": ["sleep", "300"],
                                   "data_dir": "data/keeper",
                                   "wal": {"format": "crucible-wal-1"}}
    doc["replay"] = "{python} {descriptor_dir}/replay.py {input} {output}"
    run = tmp_path / "run"
    sut = ExternalSut(write(tmp_path, doc), run)
    assert sut.offers("wal") and sut.offers("offline_replay") and not sut.offers("rerequest")
    wal = run / "data" / "keeper"
    wal.mkdir(parents=True)
    (wal / "wal-00000000000000000001.seg").write_bytes(
        b"".join(wal_codec.encode_record(s, b"x" * 30) for s in (1, 2, 3)))
    assert [s for s, _ in sut.wal_records()] == [1, 2, 3]
    assert sut.damage_wal("torn")["last_seq"] == 3 and len(sut.wal_records()) == 2
    sut.repair_wal()
    assert len(sut.wal_records()) == 3
    lines = sut.offline_replay([{"seq": 1}, {"seq": 2}], tmp_path / "replay")
    assert json.loads(lines[-1]) == {"type": "end", "last_seq": 2, "state_hash": "ab"}
    with pytest.raises(NotSupported):
        sut.stream_port("admin")
    with pytest.raises(NotSupported):
        sut.output_streams()
