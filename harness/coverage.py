"""Evidence coverage: the situations a requirement must have seen before it may pass.

A requirement that passes because nothing in the run could have failed it
is a false certificate. So every requirement declares here, in ``NEEDS``,
the situations its check needs to have met (a resend after a thousand other
requests, a fill-or-kill that could only partly fill, an acknowledgement
with its flush still pending...), each with a default minimum that
certify-quick meets. The suite counts what its run really showed and calls
``covered``: the verdict gets a coverage table (``evidence["coverage"]``:
situation, seen, needed, what it means) and a PASS below any minimum
becomes UNKNOWN naming every missing count. A FAIL stays a FAIL: what the
evidence shows broken is judged before whether there was enough of it.

The minimums are profile settings: ``evidence: {<requirement>: {<situation>: N}}``
(``harness.profiles`` builds that key's schema from ``NEEDS``, so an
unknown requirement or situation name is an error naming the file and the
key). This module is the one home of the names and the defaults; the
report shows the table per requirement, and the certify plugin turns a pass
of a requirement listed here that reported no coverage into UNKNOWN, so a
suite that forgets to count cannot pass by it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.checkers.verdict import PASS, Verdict, too_thin
from reference_impl.core.durability import POLICIES

__all__ = ["NEEDS", "Need", "coverage_rows", "covered", "merge_rows", "minimums"]


@dataclass(frozen=True, slots=True)
class Need:
    """One situation a requirement must have seen ``minimum`` times."""

    situation: str
    minimum: int
    doc: str


def _needs(*needs: Need) -> tuple[Need, ...]:
    names = [n.situation for n in needs]
    if len(set(names)) != len(names):
        raise ValueError(f"a situation is declared twice: {names}")
    return needs


_ACKED = Need("acked_before_fault", 100, "orders acknowledged before the fault (what could be lost)")
_KILL = _needs(_ACKED, Need("trials", 1, "trials whose component was killed under load"))
_WAL_DAMAGE = _needs(Need("damaged_records", 1, "records the harness damaged (torn or bit-flipped)"),
                     Need("intact_records", 10, "intact records beside the damage, each to be kept"))
_FUZZ = _needs(Need("inputs", 1000, "generated inputs sent"),
               Need("sequencing_counted", 1, "the SUT's sequenced count was read before and after, so "
                                             "anything sequenced from garbage would show"))
_BUS_FAULTS = (Need("dropped", 1, "bus datagrams dropped"), Need("duplicated", 1, "bus datagrams duplicated"),
               Need("reordered", 1, "bus datagrams reordered"))
_RULES = tuple(f"R{i}" for i in range(1, 18))  #: docs/matching-rules.md

#: requirement id -> the situations it must have seen (defaults: what certify-quick meets)
NEEDS: dict[str, tuple[Need, ...]] = {
    "auth.foreign_token": _needs(
        Need("foreign_requests", 3, "cancel, replace and read of another account's order")),
    "auth.bad_password": _needs(Need("doors", 1, "doors that were tried with a wrong password")),
    "auth.no_login": _needs(Need("doors", 1, "doors that were sent a request without credentials")),
    "auth.wrong_session": _needs(Need("resumes", 1, "logins naming a session that is not current")),
    "backpressure.refuse_at_once": _needs(
        Need("refused", 1, "orders refused at once past the limit"),
        Need("admitted", 100, "orders admitted before the limit, each to complete"),
        Need("sessions", 2, "client sessions (both doors where offered) sending at once")),
    "backpressure.refused_never_sequenced": _needs(
        Need("refused_checked", 1, "refused orders looked up in the sequenced input"),
        Need("admitted_checked", 100, "admitted orders found sequenced exactly once")),
    "bad_input.http_door": _FUZZ,
    "bad_input.ouch_door": _FUZZ,
    "bad_input.rerequest_port": _FUZZ,
    "determinism.replica_checkpoints": _needs(
        Need("common_checkpoints", 1, "seqs at which two replicas both reported a state hash"),
        Need("replicas", 2, "engine replicas compared")),
    "determinism.offline_replay": _needs(
        Need("journal_entries", 250, "sequenced messages replayed offline")),
    "determinism.output_streams": _needs(Need("output_lines", 250, "output records compared")),
    "book_invariants": _needs(
        Need("inputs", 250, "sequenced messages checked against the model"),
        Need("fills", 40, "executions checked for quantity and priority")),
    "exactly_once.bus_faults.same_final_state": _needs(
        *_BUS_FAULTS, Need("replicas", 2, "engine replicas compared with the clean replay")),
    "exactly_once.bus_faults.reported_once": _needs(
        *_BUS_FAULTS, Need("orders", 100, "orders whose reports were counted"),
        Need("fills", 10, "fills whose reports were counted")),
    "exactly_once.gateway_resend.sequenced_once": _needs(
        Need("resends", 1, "requests the gateway sent again"),
        Need("requests", 100, "client requests checked for one sequencing each"),
        Need("in_flight_at_pause", 200, "client requests unanswered when the paused sequencer resumed"),
        Need("resends_after_1000", 1, "resends the sequencer met behind 1000 or more other requests"),
        Need("orders_after_restart", 20, "orders accepted after the gateway was killed and restarted"),
        Need("new_incarnation", 1, "requests sequenced under the restarted gateway's new incarnation")),
    "exactly_once.output_faults.reported_once": _needs(
        Need("dropped", 1, "output datagrams dropped on the way to the gateways"),
        Need("duplicated", 1, "output datagrams duplicated on the way to the gateways"),
        Need("reordered_or_delayed", 1, "output datagrams reordered or delayed on the way"),
        Need("requests", 100, "client requests checked for exactly one outcome")),
    "exactly_once.sequence_continuity": _needs(
        Need("records", 1, "sequenced records checked up to the sequencer's head, in each module")),
    **{f"exactly_once.session_resume.{door}": _needs(
        Need("resumes", 20, "re-logins judged against the account's full outbound history"),
        Need("edge_points", 5, "edge points tried: the first, the last, the next, past the next, current"),
        Need("mid_traffic", 10, "re-logins made while traffic was being released"),
        Need("messages", 2000, "replayed and live messages compared with the history"))
       for door in ("soupbintcp", "sse")},
    "matching.rule_conformance": _needs(
        *(Need(rule, 1, f"scripted scenarios of rule {rule} (docs/matching-rules.md)") for rule in _RULES),
        Need("doors", 1, "doors every scenario ran through")),
    "matching.dense_workload": _needs(
        Need("fok_meets_too_little", 1, "fill-or-kill orders that met less than their quantity (R6)"),
        Need("min_qty_meets_too_little", 1, "minimum-quantity orders that met less than their minimum (R7)"),
        Need("market_remainder", 1, "market orders with a remainder left after sweeping (R8)"),
        Need("reduce_ahead_of_others", 1, "reduces of an order with others behind it at its level (R9)"),
        Need("replace_behind_others", 1, "replaces at a level where other orders rest (R11)")),
    "zero_loss.kill_secondary": _KILL,
    "zero_loss.kill_logger": _KILL,
    "zero_loss.kill_gateway": _KILL,
    "zero_loss.torn_wal_tail": _WAL_DAMAGE,
    "zero_loss.bitflip_wal_tail": _WAL_DAMAGE,
    "zero_loss.bitflip_wal_middle": _WAL_DAMAGE,
    **{f"zero_loss.power_off.{policy}": _needs(
        _ACKED, Need("trials", 1, "trials powered off under load"),
        Need("bytes_discarded", 1, "bytes of writes in flight the power-off discarded, in every trial"))
       for policy in POLICIES},
    "zero_loss.ack_after_flush": _needs(
        Need("timed_acks", 100, "acknowledgements timed against the flush covering their order")),
}


def minimums(profile: Mapping[str, Any] | None, requirement: str) -> dict[str, int]:
    """The minimum per situation of ``requirement``: the profile's ``evidence:`` over the defaults."""
    if requirement not in NEEDS:
        raise KeyError(f"{requirement!r} declares no needed evidence in harness/coverage.py NEEDS")
    chosen = ((profile or {}).get("evidence") or {}).get(requirement) or {}
    return {n.situation: int(chosen.get(n.situation, n.minimum)) for n in NEEDS[requirement]}


def coverage_rows(requirement: str, seen: Mapping[str, int],
                  profile: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The coverage table: one row per declared situation (seen, needed, what it means)."""
    unknown = sorted(set(seen) - {n.situation for n in NEEDS.get(requirement, ())})
    if unknown:
        raise KeyError(f"{requirement}: situations {unknown} are not declared in harness/coverage.py NEEDS")
    need = minimums(profile, requirement)
    return [{"situation": n.situation, "seen": int(seen.get(n.situation, 0)), "needed": need[n.situation],
             "doc": n.doc} for n in NEEDS[requirement]]


def covered(verdict: Verdict, seen: Mapping[str, int], profile: Mapping[str, Any] | None,
            requirement: str | None = None) -> Verdict:
    """``verdict`` with its coverage table; UNKNOWN naming the missing counts when a minimum is not met.

    ``requirement`` names the NEEDS entry when it differs from the verdict's
    own (a checker's sub-verdict). Problems beat thinness: a FAIL or N/A is
    returned as it is, with the table.
    """
    rows = coverage_rows(requirement or verdict.requirement, seen, profile)
    verdict.evidence["coverage"] = rows
    short = [r for r in rows if r["seen"] < r["needed"]]
    if not short or verdict.status != PASS:
        return verdict
    missing = "; ".join(f"{r['situation']}: {r['seen']} of {r['needed']}" for r in short)
    return too_thin(verdict, f"too little evidence ({missing}); {verdict.summary}")


def merge_rows(tables: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One table for a requirement checked by several tests: counts summed per situation."""
    merged: dict[str, dict[str, Any]] = {}
    for table in tables:
        for row in table:
            into = merged.setdefault(row["situation"], {**row, "seen": 0})
            into["seen"] += row["seen"]
    return list(merged.values())
