"""Determinism: replicas agree, the journal replays to the live state, runs repeat byte for byte.

One SUT for the module. A seeded load (``orders_per_trial`` requests through
the HTTP door) runs once; when every engine has applied and the logger has
made durable all that was sequenced, the module gathers the artefacts every
requirement here judges: each replica's checkpoints and final digest, the
sequenced input (WAL or journal) and the primary's published output stream.

The book-invariant requirement lives here too: it judges the same live run's
input and the primary's outputs against the independent model.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import _support as s
import pytest
import yaml
from _evidence import engine_digests, published_outputs, wal_records
from _load import Load, workload

from harness.checkers import (
    check_book,
    check_checkpoints,
    check_offline_replay,
    check_output_streams,
)
from harness.checkers.continuity import check_stream_coverage
from reference_impl.core import sequenced_codec
from reference_impl.core.replay_format import format_line

BOOK_MAX_INPUTS = 3000  #: bound on the book-invariant check's input (the model is naive)
REPLAY_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def live(sut_name, seed, profile, history, tmp_path_factory):
    """One seeded load on one SUT, settled; the artefacts every test here judges."""
    run_dir = tmp_path_factory.mktemp("determinism")
    with s.open_sut(sut_name, run_dir, seed, profile) as sut:
        flow = workload(sut, seed, profile, prefix="D")
        stats = Load(sut, history, flow, workers=4).run(int(profile["orders_per_trial"]))
        settled = s.settle(sut)
        artefacts = {"sut": sut, "run_dir": run_dir, "load": stats.as_dict(), "settled": settled,
                     "digests": engine_digests(sut)}
        yield artefacts


@pytest.mark.requirement("determinism.replica_checkpoints",
                         title="engine replicas report the same state hash at every common seq")
def test_replica_checkpoints(live):
    sut = live["sut"]
    s.require_features(sut, "digest")
    replicas = s.engines(sut)
    if len(replicas) < 2:
        s.na(f"{sut.name} runs {len(replicas)} engine replica; nothing to compare")
    by_replica: dict[str, list] = {}
    for name in replicas:
        points = list(sut.checkpoints(name)) if sut.offers("checkpoints") else []
        d = live["digests"].get(name)
        if d and d.get("state_hash"):
            points.append((int(d["applied_seq"]), d["state_hash"]))  # the settled final state
        by_replica[name] = points
    v = check_checkpoints(by_replica, requirement="determinism.replica_checkpoints")
    v.evidence.update(load=live["load"], settled=live["settled"]["settled"])
    s.judge(v)


@pytest.mark.requirement("determinism.offline_replay",
                         title="an offline replay of the journal reaches the live primary's state hash")
def test_offline_replay(live):
    sut = live["sut"]
    s.require_features(sut, "digest", "journal")
    primary = s.component(sut, "primary")
    digest = live["digests"].get(primary)
    if not digest:
        s.unknown(f"no digest from the primary {primary}")
    v = check_offline_replay(wal_records(sut), digest, instruments=sut.instruments() or None,
                             requirement="determinism.offline_replay")
    v.evidence.update(primary=primary, load=live["load"])
    s.judge(v)


def _replay_twice(journal: list[dict], instruments: dict, work: Path) -> tuple[list[str], list[str], dict]:
    inputs = work / "input.jsonl"
    inputs.write_text("".join(format_line(e) + "\n" for e in journal))
    cmd = [sys.executable, "-m", "harness.cli", "engine", "replay", str(inputs)]
    if instruments:
        (work / "instruments.yaml").write_text(yaml.safe_dump(dict(instruments)))
        cmd += ["--instruments", str(work / "instruments.yaml")]
    runs = []
    for name in ("a", "b"):
        out = work / f"outputs-{name}.jsonl"
        r = subprocess.run(cmd + ["--out", str(out)], check=False, capture_output=True, text=True,
                           timeout=REPLAY_TIMEOUT_S)
        if r.returncode != 0:
            s.unknown(f"`crucible engine replay` exited {r.returncode}: {r.stderr.strip()[-300:]}")
        runs.append(out.read_bytes().decode().splitlines())
    return runs[0], runs[1], {"input": str(inputs), "inputs": len(journal)}


@pytest.mark.requirement("determinism.output_streams",
                         title="two replays of one input file give byte-identical outputs")
def test_two_replays_identical(live, tmp_path):
    sut = live["sut"]
    s.require_features(sut, "journal")
    if sut.name != "reference" and not hasattr(sut, "offline_replay"):
        s.na(f"{sut.name} offers no offline replay of an input file")
    journal = sut.journal()
    if not journal:
        s.unknown("the journal is empty: no input to replay")
    if hasattr(sut, "offline_replay") and sut.name != "reference":
        a, b = sut.offline_replay(journal, tmp_path / "a"), sut.offline_replay(journal, tmp_path / "b")
        info = {"inputs": len(journal)}
    else:
        a, b, info = _replay_twice(journal, sut.instruments(), tmp_path)
    v = check_output_streams(a, b, requirement="determinism.output_streams")
    v.evidence.update(info)
    s.judge(v)


@pytest.mark.requirement("book_invariants",
                         title="the primary's outputs match the naive model: never crossed, "
                               "quantity conserved, price-time priority")
def test_book_invariants(live):
    sut = live["sut"]
    s.require_features(sut, "journal")
    primary = s.component(sut, "primary")
    coverage: dict = {}
    streams = published_outputs(sut, coverage=coverage)
    if primary not in streams:
        s.na(f"{sut.name}: the primary's output stream is not observable from the harness")
    # outputs the retransmission ring no longer holds would read as differences from the
    # model: a partial stream is UNKNOWN outright, neither a pass nor a fail
    covered = check_stream_coverage({primary: coverage[primary]},
                                    requirement="book_invariants")
    if covered.status != "pass":
        s.judge(covered)
    inputs = [sequenced_codec.decode(p) for _, p in wal_records(sut)][:BOOK_MAX_INPUTS]
    if not inputs:
        s.unknown("no sequenced input to check")
    last = inputs[-1].seq
    outputs = [o for o in streams[primary] if 0 < o.get("seq", 0) <= last]
    v = check_book(inputs, outputs, instruments=sut.instruments() or None)
    v.evidence.update(inputs_checked=len(inputs), outputs_checked=len(outputs),
                      load=live["load"], stream_coverage=coverage[primary])
    s.judge(v)
