"""Evidence for the checkers, read from a SUT through its adapter: sequenced input, digests, outputs.

``wal_records`` / ``sequenced_messages`` read the sequenced input (the
stored WAL where the SUT offers ``wal``, else its journal), ``wal_orders``
the orders in it (what survived a fault), ``engine_digests`` each engine's
digest, ``published_outputs`` every output stream on the bus (where the
SUT offers ``output_streams``), and ``replay_end`` the final state of an
offline replay by the SUT's own engine (``offline_replay``). Everything here
gathers evidence; nothing judges it.
"""

from __future__ import annotations

import json
from pathlib import Path

from _support import engines, na, safe_digest, unknown

from harness.checkers.zero_loss import wal_orders_from_records
from harness.sut.base import Sut, SutError, journal_orders
from reference_impl.core import sequenced_codec
from reference_impl.core.messages import Sequenced
from reference_impl.core.replay_format import input_to_json, parse_input_line


def wal_records(sut: Sut) -> list[tuple[int, bytes]]:
    """The sequenced input as ``(seq, payload)``: the stored WAL, else the journal re-encoded."""
    if sut.offers("wal"):
        return list(sut.wal_records())
    return [(m.seq, sequenced_codec.encode(m)) for m in journal_messages(sut)]


def wal_orders(sut: Sut) -> set:
    """``(account, token)`` of every order in the surviving WAL (else journal)."""
    if sut.offers("wal"):
        return wal_orders_from_records(sut.wal_records())
    return journal_orders(sut.journal() or [])


def journal_messages(sut: Sut) -> list[Sequenced]:
    """The journal (replay-format dicts) as ``Sequenced`` messages."""
    entries = sut.journal() if sut.offers("journal") else None
    if entries is None:
        na(f"{sut.name} offers no journal of its sequenced input")
    return [parse_input_line(json.dumps(e), i) for i, e in enumerate(entries, 1)]


def sequenced_messages(sut: Sut) -> list[Sequenced]:
    """Decoded sequenced input with request identities.

    The stored WAL keeps ``(gateway_id, incarnation, request_seq)``. The
    journal does not, so there a request is named by what it asks (kind,
    account, tokens): the suites' clients never reuse a token, so one request
    asked twice is one request sequenced twice.
    """
    if sut.offers("wal"):
        return [sequenced_codec.decode(p) for _, p in sut.wal_records()]
    out, ids = [], {}
    for m in journal_messages(sut):
        j = input_to_json(m)
        key = (j["type"], j.get("account"), j.get("token"), j.get("new_token"))
        rid = ids.setdefault(key, len(ids) + 1)
        out.append(Sequenced(m.seq, m.ts, 1, 1, rid, m.account, m.body))
    return out


def engine_digests(sut: Sut) -> dict[str, dict]:
    return {e: d for e in engines(sut) if (d := safe_digest(sut, e)) is not None}


def published_outputs(sut: Sut, coverage: dict[str, dict] | None = None) -> dict[str, list[dict]]:
    """Every output stream on the bus, per engine that published one (``{}``: not observable).

    Subscribers receive the union of these streams, so a second publisher is
    a second copy of every report. A fetched stream may be partial:
    ``coverage`` gets ``{engine: {"published_seq", "fetched",
    "first_missing"}}`` for ``check_stream_coverage`` (``Sut.output_streams``).
    """
    if not sut.offers("output_streams"):
        return {}
    return sut.output_streams(coverage)


def replay_end(sut: Sut, entries: list[dict], work: Path) -> dict:
    """The ``end`` line (``last_seq``, ``state_hash``) of the SUT's own offline replay of ``entries``.

    UNKNOWN when the replay fails or ends without its ``end`` line.
    """
    try:
        lines = sut.offline_replay(entries, work)
    except SutError as exc:
        unknown(f"the offline replay failed: {str(exc)[-300:]}")
    try:
        end = json.loads(lines[-1]) if lines else {}
    except ValueError:
        end = {}
    if not isinstance(end, dict) or end.get("type") != "end":
        unknown("the offline replay's last output line is not the end line")
    return end
