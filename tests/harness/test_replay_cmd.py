"""The main job of issue 2: the replay CLI is deterministic and reports malformed lines precisely."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli.main import main

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "orders.jsonl"


def test_sample_replays_byte_identically_twice(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert main(["engine", "replay", str(SAMPLE), "--out", str(a)]) == 0
    assert main(["engine", "replay", str(SAMPLE), "--out", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()
    end = json.loads(a.read_text().splitlines()[-1])
    assert end["type"] == "end" and end["last_seq"] == 5000 and len(end["state_hash"]) == 64
    kinds = {json.loads(line)["type"] for line in a.read_text().splitlines()}
    assert {"accepted", "executed", "canceled", "replaced", "rejected"} <= kinds


@pytest.mark.parametrize("line,message", [
    ('{"seq":1,"ts":1,"type":"new"', "line 2: field line:"),
    ('{"seq":1,"ts":1,"type":"cancel","account":"A1","token":"X","qty":"5"}', "line 2: field qty:"),
    ('{"seq":1,"ts":1,"type":"nuke","account":"A1"}', "line 2: field type:"),
])
def test_malformed_line_exits_2_naming_line_and_field(tmp_path, line, message):
    good = '{"seq":1,"ts":1,"type":"cancel","account":"A1","token":"X","qty":0}'
    path = tmp_path / "in.jsonl"
    path.write_text(good.replace('"seq":1', '"seq":1') + "\n" + line.replace('"seq":1', '"seq":2') + "\n")
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "engine", "replay", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert message in proc.stderr


def test_gap_in_input_is_reported(tmp_path):
    path = tmp_path / "gap.jsonl"
    path.write_text('{"seq":1,"ts":1,"type":"cancel","account":"A1","token":"X","qty":0}\n'
                    '{"seq":3,"ts":1,"type":"cancel","account":"A1","token":"X","qty":0}\n')
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "engine", "replay", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "line 2: field seq:" in proc.stderr
