"""Determinism: replicas agree, the journal replays to the live state, runs repeat byte for byte.

One SUT for the module. A seeded load (``orders_per_trial`` requests through
the HTTP door) runs once; when every engine has applied and the logger has
made durable all that was sequenced, the module gathers the artefacts every
requirement here judges: each replica's checkpoints and final digest, the
sequenced input (WAL or journal) and the primary's published output stream.

Offline replays run on the SUT's own engine where it offers
``offline_replay`` (the reference: ``crucible engine replay``; an external
SUT: its descriptor's ``replay`` command). Without one, the offline-replay
requirement falls back on the reference engine as the oracle, and its
verdict says "agrees with the reference engine"; the two-replays requirement
is N/A.

The book-invariant requirement lives here too: it judges the same live run's
input and the primary's outputs against the independent model.
"""

from __future__ import annotations

from pathlib import Path

import _support as s
import pytest
from _continuity import CONTINUITY, TITLE, module_continuity
from _evidence import engine_digests, published_outputs, replay_end, wal_records
from _load import Load, workload

from harness.checkers import check_book, check_checkpoints, check_offline_replay, check_output_streams
from harness.checkers.continuity import check_stream_coverage
from harness.checkers.exactly_once import check_same_final_state
from harness.coverage import covered
from harness.sut.base import SutError
from reference_impl.core import sequenced_codec

BOOK_MAX_INPUTS = 3000  #: bound on the book-invariant check's input (the model is naive)


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
def test_replica_checkpoints(live, profile):
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
    s.judge(covered(v, {"common_checkpoints": v.evidence["seqs_compared"],
                        "replicas": len([p for p in by_replica.values() if p])}, profile))


@pytest.mark.requirement("determinism.offline_replay",
                         title="an offline replay of the journal reaches the live primary's state hash")
def test_offline_replay(live, tmp_path, profile):
    sut = live["sut"]
    s.require_features(sut, "digest", "journal")
    primary = s.component(sut, "primary")
    digest = live["digests"].get(primary)
    if not digest:
        s.unknown(f"no digest from the primary {primary}")
    rid = "determinism.offline_replay"
    if sut.offers("offline_replay"):
        v = own_replay_verdict(sut, digest, tmp_path, rid)
    else:
        v = check_offline_replay(wal_records(sut), digest, instruments=sut.instruments() or None,
                                 requirement=rid)
    v.evidence.update(primary=primary, load=live["load"])
    replayed = v.evidence.get("replayed_inputs", v.evidence.get("records_applied", 0))
    s.judge(covered(v, {"journal_entries": replayed}, profile))


def own_replay_verdict(sut, digest: dict, work: Path, rid: str):
    """The SUT's own offline replay of its journal, to the live applied seq, vs the live hash."""
    target = int(digest.get("applied_seq") or 0)
    if target <= 0:
        s.unknown(f"the live engine has applied seq {target}: nothing to replay")
    entries = [e for e in sut.journal() or [] if int(e["seq"]) <= target]
    if not entries:
        s.unknown("the journal is empty: no input to replay")
    end = replay_end(sut, entries, work)
    replayed = {"applied_seq": end.get("last_seq"), "state_hash": end.get("state_hash")}
    if replayed["applied_seq"] is not None and int(replayed["applied_seq"]) < target:
        s.unknown(f"the journal replays to seq {replayed['applied_seq']}, before the live "
                  f"applied seq {target}")
    v = check_same_final_state(replayed, digest, requirement=rid)
    v.evidence.update(replayed_inputs=len(entries), replay="the SUT's own")
    if v.status == "pass":
        return type(v).passed(rid, f"{sut.name}'s own offline replay of {len(entries)} journal "
                                   f"entries to seq {target} reaches the live state hash",
                              v.evidence)
    if v.status == "fail":
        got, live = v.evidence["clean_hash"], v.evidence["faulty_hash"]
        return type(v).failed(rid, f"{sut.name}'s own offline replay to seq {target} ends at seq "
                                   f"{replayed['applied_seq']} with hash {got[:16]}…, the live "
                                   f"primary has {live[:16]}…", v.evidence)
    return v


@pytest.mark.requirement("determinism.output_streams",
                         title="two replays of one input file give byte-identical outputs")
def test_two_replays_identical(live, tmp_path, profile):
    sut = live["sut"]
    s.require_features(sut, "journal", "offline_replay")
    journal = sut.journal()
    if not journal:
        s.unknown("the journal is empty: no input to replay")
    try:
        a = sut.offline_replay(journal, tmp_path / "a")
        b = sut.offline_replay(journal, tmp_path / "b")
    except SutError as exc:
        s.unknown(f"the offline replay failed: {str(exc)[-300:]}")
    v = check_output_streams(a, b, requirement="determinism.output_streams")
    v.evidence.update(inputs=len(journal))
    s.judge(covered(v, {"output_lines": min(len(a), len(b))}, profile))


@pytest.mark.requirement("book_invariants",
                         title="the primary's outputs match the naive model: never crossed, "
                               "quantity conserved, price-time priority")
def test_book_invariants(live, profile):
    sut = live["sut"]
    s.require_features(sut, "journal")
    primary = s.component(sut, "primary")
    coverage: dict = {}
    streams = published_outputs(sut, coverage=coverage)
    if primary not in streams:
        s.na(f"{sut.name}: the primary's output stream is not observable from the harness")
    # outputs the retransmission ring no longer holds would read as differences from the
    # model: a partial stream is UNKNOWN outright, neither a pass nor a fail
    whole = check_stream_coverage({primary: coverage[primary]}, requirement="book_invariants")
    if whole.status != "pass":
        s.judge(whole)
    inputs = [sequenced_codec.decode(p) for _, p in wal_records(sut)][:BOOK_MAX_INPUTS]
    if not inputs:
        s.unknown("no sequenced input to check")
    last = inputs[-1].seq
    outputs = [o for o in streams[primary] if 0 < o.get("seq", 0) <= last]
    v = check_book(inputs, outputs, instruments=sut.instruments() or None)
    v.evidence.update(inputs_checked=len(inputs), outputs_checked=len(outputs),
                      load=live["load"], stream_coverage=coverage[primary])
    fills = sum(1 for o in outputs if o.get("type") == "executed")
    s.judge(covered(v, {"inputs": len(inputs), "fills": fills}, profile))


@pytest.mark.requirement(CONTINUITY, title=TITLE)
def test_sequence_continuity(live, profile):
    """Last in the module: everything it sequenced is in the sequenced input once, in order."""
    s.judge(module_continuity(live["sut"], profile))
