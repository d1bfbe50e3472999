"""The suites reach a SUT through the ``Sut`` interface alone, and a missing capability is N/A.

The second SUT is ``interface_only_sut.InterfaceOnly``: the reference seen
through the interface only, with some capabilities withheld, and an error on
any attribute the interface does not define. A small selection of the suites
runs against it in a subprocess: every requirement that needs a withheld
capability must be N/A, and the others must pass (a suite that reached past
the adapter would error out instead). The WAL's harness-side reader and
damage are checked on a literal WAL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.sut import NotSupported, wal_files
from reference_impl.core import wal_codec

REPO = Path(__file__).resolve().parents[2]
PLUGIN = "tests.harness.interface_only_sut"
WITHHELD = ("offline_replay", "output_streams", "wal_damage", "rerequest")
SELECTION = "checkpoints or offline_replay or two_replays or book or wal or rerequest"
#: requirement -> status with WITHHELD withheld
EXPECTED = {
    "determinism.replica_checkpoints": "pass",
    "determinism.offline_replay": "pass",  # the reference engine as the oracle, and it says so
    "determinism.output_streams": "n/a",  # offline_replay
    "book_invariants": "n/a",  # output_streams
    "zero_loss.torn_wal_tail": "n/a",  # wal_damage
    "zero_loss.bitflip_wal_tail": "n/a",
    "zero_loss.bitflip_wal_middle": "n/a",
    "bad_input.rerequest_port": "n/a",  # rerequest
}


@pytest.fixture(scope="module")
def rows(tmp_path_factory) -> tuple[dict, str]:
    results = tmp_path_factory.mktemp("interface-only") / "results"
    env = dict(os.environ, PYTHONPATH=str(REPO), CRUCIBLE_FAKE_WITHHOLD=",".join(WITHHELD))
    cmd = [sys.executable, "-m", "pytest", "suites/test_determinism.py", "suites/test_zero_loss.py",
           "suites/test_bad_input.py", "-k", SELECTION, "-p", PLUGIN, "-p", "no:cacheprovider",
           "--seed", "7", "--profile", "certify-quick", "--results-dir", str(results), "-q"]
    proc = subprocess.run(cmd, check=False, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    tail = (proc.stdout + proc.stderr)[-3000:]
    reports = sorted(results.glob("*/report.json"))
    if not reports:
        pytest.fail(f"no report.json from {' '.join(cmd)}\n{tail}")
    return {r["id"]: r for r in json.loads(reports[-1].read_text())["requirements"]}, tail


def test_withheld_capabilities_are_na_and_nothing_else_is_used(rows):
    got, tail = rows
    assert {rid: got.get(rid, {}).get("status") for rid in EXPECTED} == EXPECTED, tail
    assert "reference engine" in got["determinism.offline_replay"]["summary"]


def test_the_proxy_refuses_what_the_interface_does_not_define(tmp_path):
    from tests.harness.interface_only_sut import InterfaceBreach, InterfaceOnly, _real_load_sut

    sut = InterfaceOnly(_real_load_sut("reference", tmp_path), frozenset({"wal", "journal"}))
    assert not sut.offers("wal") and sut.offers("digest") and sut.journal() is None
    with pytest.raises(NotSupported):
        sut.wal_records()
    for name in ("config", "relay", "admin", "cluster"):
        with pytest.raises(InterfaceBreach):
            getattr(sut, name)


# ------------------------------------------------------------------ crucible-wal-1, harness side


def _wal(tmp: Path, n: int) -> Path:
    d = tmp / "wal"
    d.mkdir()
    body = b"".join(wal_codec.encode_record(s, bytes([s]) * 20) for s in range(1, n + 1))
    (d / "wal-00000000000000000001.seg").write_bytes(body + bytes(64))
    return d


@pytest.mark.parametrize("how, intact", [("torn", 4), ("bitflip", 4), ("bitflip-middle", 2)])
def test_damage_cuts_the_intact_prefix_and_repair_puts_it_back(tmp_path, how, intact):
    d = wal_files.WalDir(_wal(tmp_path, 5))
    assert [s for s, _ in d.records()] == [1, 2, 3, 4, 5]
    done = d.damage(how)
    assert [s for s, _ in d.records()] == list(range(1, intact + 1)), done
    assert d.verify()[0] == 1  # `crucible wal verify` names the bad record
    d.repair()
    assert [s for s, _ in d.records()] == [1, 2, 3, 4, 5]
    assert d.verify()[0] == 0


def test_damage_of_an_empty_wal_changes_nothing(tmp_path):
    d = wal_files.WalDir(tmp_path / "none")
    assert d.records() == [] and d.damage("torn") == {"segments": 0, "records": 0}
    with pytest.raises(ValueError, match="unknown WAL damage"):
        wal_files.WalDir(_wal(tmp_path, 3)).damage("shred")
