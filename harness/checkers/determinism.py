"""Determinism: replicas agree, the WAL replays to the live state, runs repeat byte for byte.

Three independent views of the one invariant (DESIGN.md §1: identical inputs
give byte-identical outputs and identical state hashes anywhere):

- ``check_checkpoints``: the ``(seq, state_hash)`` checkpoints each replica
  published agree at every seq that two or more replicas reported. A replica
  that reported two hashes for one seq disagrees with itself, which fails too.
- ``check_offline_replay``: a fresh reference ``Engine`` fed the WAL's
  messages up to the live engine's ``applied_seq`` reaches the live
  ``state_hash``. This is the one checker that runs the engine: it compares the
  live system with the reference engine's replay of its log, so for another
  SUT a pass says "agrees with the reference engine", and its verdict says so
  (a SUT with its own offline replay is judged on that instead, by the suite).
- ``check_output_streams``: two runs of one input file gave the same output
  lines, byte for byte (replay format; no stage timestamps in them).

Hashes are hex strings or raw bytes (a status-channel ``Checkpoint`` carries
32 raw bytes); ``hex_hash`` makes them comparable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reference_impl.core import sequenced_codec
from reference_impl.core.engine import Engine
from reference_impl.core.errors import DecodeError, SequenceGapError
from reference_impl.core.rules import Instruments

from .continuity import record_seq_payload
from .verdict import MAX_EXAMPLES, Verdict

REPLICAS = "determinism.replica_checkpoints"
REPLAY = "determinism.offline_replay"
STREAMS = "determinism.output_streams"

__all__ = ["check_checkpoints", "check_offline_replay", "check_output_streams", "hex_hash"]


def hex_hash(value: str | bytes | bytearray | None) -> str | None:
    """A state hash as lower-case hex (bytes are hex-encoded); None stays None."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return str(value).lower()


def check_checkpoints(by_replica: Mapping[str, Sequence[tuple[int, str | bytes]]],
                      requirement: str = REPLICAS) -> Verdict:
    """Replica checkpoint hashes agree at every seq two or more replicas reported.

    UNKNOWN when no seq is common to two replicas (nothing was compared).
    """
    hashes: dict[int, dict[str, set[str]]] = {}
    for replica, checkpoints in by_replica.items():
        for seq, h in checkpoints:
            hashes.setdefault(seq, {}).setdefault(replica, set()).add(hex_hash(h))
    compared = sorted(seq for seq, per in hashes.items()
                      if len(per) >= 2 or any(len(hs) > 1 for hs in per.values()))
    divergent = [seq for seq in compared
                 if len({h for hs in hashes[seq].values() for h in hs}) > 1]
    evidence: dict[str, Any] = {
        "replicas": sorted(by_replica),
        "checkpoints": {r: len(c) for r, c in sorted(by_replica.items())},
        "seqs_compared": len(compared),
        "highest_compared": compared[-1] if compared else None,
        "divergent_seqs": divergent[:MAX_EXAMPLES],
        "divergent_count": len(divergent),
    }
    if divergent:
        seq = divergent[0]
        evidence["first_divergence"] = {
            "seq": seq,
            "hashes": {r: sorted(hs) if len(hs) > 1 else next(iter(hs))
                       for r, hs in sorted(hashes[seq].items())},
        }
        return Verdict.failed(requirement, f"replica state hashes diverge at seq {seq} "
                              f"({len(divergent)} of {len(compared)} common seqs)", evidence)
    if not compared:
        return Verdict.unknown(requirement, "no checkpoint seq is common to two replicas; "
                               "nothing to compare", evidence)
    return Verdict.passed(requirement, f"{len(evidence['replicas'])} replicas agree at "
                          f"{len(compared)} common checkpoint seqs "
                          f"(up to {compared[-1]})", evidence)


def _instruments(instruments: Instruments | Mapping[str, int] | None) -> Instruments | None:
    if instruments is None or isinstance(instruments, Instruments):
        return instruments
    return Instruments(dict(instruments))


def check_offline_replay(wal_records: Sequence[Any], live_digest: Mapping[str, Any],
                         instruments: Instruments | Mapping[str, int] | None = None,
                         snapshot: bytes | None = None,
                         requirement: str = REPLAY) -> Verdict:
    """A fresh engine replaying the WAL up to ``live_digest["applied_seq"]`` reaches
    ``live_digest["state_hash"]``.

    ``wal_records`` are ``(seq, payload)`` pairs or ``WalRecord``s in log order
    (sequenced-codec payloads). Records past the live applied seq are ignored;
    a re-appended seq the engine already applied is a no-op, as on the bus.
    UNKNOWN when the replay cannot reach the live seq: the WAL ends first, has
    a gap, or holds a record that does not decode (the continuity and
    corruption checks judge those defects themselves). UNKNOWN too when there
    is nothing to replay: a live applied seq of 0, or a snapshot already at
    the live seq (no WAL record replayed is no evidence). ``snapshot`` (an
    ``Engine.snapshot()`` image) starts the replay from its seq instead of
    from an empty engine, for a WAL truncated after a snapshot.
    """
    target = int(live_digest["applied_seq"])
    live_hash = hex_hash(live_digest.get("state_hash"))
    if snapshot is not None:
        engine = Engine.restore(snapshot, _instruments(instruments))
    else:
        engine = Engine(_instruments(instruments))
    evidence: dict[str, Any] = {"live_applied_seq": target, "live_hash": live_hash,
                                "wal_records": len(wal_records), "records_applied": 0,
                                "started_at": engine.last_applied_seq}
    if live_hash is None:
        return Verdict.unknown(requirement, "the live digest has no state hash", evidence)
    if target <= 0:
        return Verdict.unknown(requirement, f"the live engine has applied seq {target}: "
                               "there is nothing to replay, so no evidence", evidence)
    applied = 0
    for record in wal_records:
        seq, payload = record_seq_payload(record)
        if seq > target or seq <= engine.last_applied_seq:
            continue
        try:
            msg = sequenced_codec.decode(payload)
        except DecodeError as exc:
            evidence.update(replayed_to=engine.last_applied_seq, undecodable_seq=seq)
            return Verdict.unknown(requirement, f"WAL record seq {seq} does not decode "
                                   f"({exc}); replay stopped at {engine.last_applied_seq}",
                                   evidence)
        try:
            engine.apply(msg)
        except SequenceGapError as exc:
            evidence.update(replayed_to=engine.last_applied_seq, gap_at=msg.seq)
            return Verdict.unknown(requirement, f"the WAL has a gap ({exc}); replay stopped "
                                   f"at {engine.last_applied_seq}", evidence)
        applied += 1
    replay_hash = engine.state_hash()
    evidence.update(records_applied=applied, replayed_to=engine.last_applied_seq,
                    replay_hash=replay_hash)
    if engine.last_applied_seq < target:
        return Verdict.unknown(requirement, f"the WAL ends at seq {engine.last_applied_seq}, "
                               f"before the live applied seq {target}", evidence)
    if applied == 0:
        return Verdict.unknown(requirement, f"no WAL record replayed (the replay started at "
                               f"seq {evidence['started_at']}, the live applied seq is "
                               f"{target}): no evidence", evidence)
    if replay_hash != live_hash:
        return Verdict.failed(requirement, f"the reference engine's offline replay to seq "
                              f"{target} gives hash {replay_hash[:16]}…, the live engine has "
                              f"{live_hash[:16]}…", evidence)
    return Verdict.passed(requirement, f"the reference engine's offline replay of {applied} WAL "
                          f"records to seq {target} agrees with the live state hash", evidence)


def check_output_streams(run_a: Sequence[str], run_b: Sequence[str],
                         requirement: str = STREAMS) -> Verdict:
    """Two runs of one input file gave byte-identical output lines.

    Lines are compared exactly as given (strip line endings the same way for
    both runs, or not at all). Two empty runs are UNKNOWN: nothing was shown.
    """
    run_a, run_b = list(run_a), list(run_b)
    evidence: dict[str, Any] = {"lines_a": len(run_a), "lines_b": len(run_b)}
    if not run_a and not run_b:
        return Verdict.unknown(requirement, "both runs produced no output lines", evidence)
    for i in range(max(len(run_a), len(run_b))):
        a = run_a[i] if i < len(run_a) else None
        b = run_b[i] if i < len(run_b) else None
        if a != b:
            evidence["first_difference"] = {"line": i + 1, "a": a, "b": b}
            differing = sum(1 for x, y in zip(run_a, run_b) if x != y)
            evidence["differing_lines"] = differing + abs(len(run_a) - len(run_b))
            if a is None or b is None:
                shorter = "a" if a is None else "b"
                summary = (f"run {shorter} ends after {i} lines; the other has "
                           f"{max(len(run_a), len(run_b))}")
            else:
                summary = f"output line {i + 1} differs between the two runs"
            return Verdict.failed(requirement, summary, evidence)
    return Verdict.passed(requirement, f"{len(run_a)} output lines identical in both runs",
                          evidence)
