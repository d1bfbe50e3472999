"""Evidence for the checkers, read from a SUT through its adapter: sequenced input, digests, outputs.

``wal_records`` / ``sequenced_messages`` read the sequenced input (the
stored WAL where the SUT offers ``wal``, else its journal), ``wal_orders``
the orders in it (what survived a fault), ``engine_digests`` each engine's
digest, ``published_outputs`` every output stream on the bus (where the
SUT offers ``output_streams``), ``replay_end`` the final state of an
offline replay by the SUT's own engine (``offline_replay``), and
``liveness_evidence`` what ``check_liveness`` judges once a fault window
closed. Everything here gathers evidence; nothing judges it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from _doors import http_door
from _support import component, engines, na, safe_digest, settle, sub_history, unknown

from harness.checkers.zero_loss import wal_orders_from_records
from harness.clients.settle import open_orders
from harness.clients.settle import settle as order_fates
from harness.history import History
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


LIVENESS_BOUND_S = 10.0  #: after a fault window, the time every component has to reach the head
FATE_DEADLINE_S = 3.0  #: the time the SUT has to name the final state of an open order
PROBE_TIMEOUT_S = 2.0  #: the time a live exchange has to answer the probe order


def probe_order(sut: Sut, token: str) -> dict[str, Any] | None:
    """One immediate-or-cancel buy at one tick, through the HTTP door.

    Below every ask and resting nowhere, it leaves the books as they were.
    ``accepted``: the answer holds its acceptance. None without an HTTP door.
    """
    if not sut.endpoints().get("http"):
        return None
    account, password = next(iter(sut.accounts().items()))
    symbol = next(iter(sut.instruments()), "ACME")
    body = {"token": token, "symbol": symbol, "side": "B", "qty": 1, "tif": "IOC",
            "price": sut.instruments().get(symbol, 100)}
    with http_door(sut, (account, password), timeout_s=PROBE_TIMEOUT_S) as door:
        try:
            reply = door.request("POST", "/v1/orders", body)
        except OSError as exc:
            return {"token": token, "accepted": False, "status": None, "error": str(exc)}
    outputs = reply.doc().get("outputs", []) if reply.status == 200 else []
    accepted = any(o.get("type") == "accepted" and o.get("token") == token for o in outputs)
    return {"token": token, "accepted": accepted, "status": reply.status,
            "outputs": [o.get("type") for o in outputs]}


def liveness_evidence(sut: Sut, history: History, since: int,
                      progress: dict[str, Any] | None = None,
                      bound_s: float = LIVENESS_BOUND_S) -> dict[str, Any]:
    """What ``check_liveness`` judges for the trial whose ops start at ``since``.

    Waits up to ``bound_s`` for every replica and the logger to reach the
    sequencer's head (``progress``: the trial's own ``settle`` result, which
    waited ``bound_s`` already), sends a probe order, and asks the SUT the
    final state of every order the trial left open (``info`` or never
    completed).
    """
    if progress is None:
        progress = settle(sut, timeout_s=bound_s)
    reached = dict(progress.get("applied") or {})
    logger = component(sut, "logger")
    if logger is not None and sut.offers("digest"):
        digest = safe_digest(sut, logger)
        if digest is None or "durable_seq" in digest:  # silent, or names what it wrote
            reached[logger] = progress.get("durable")
    ops = sub_history(history, since)
    probe = probe_order(sut, f"LV{len(history.ops)}")
    fates: dict = {}
    if open_orders(ops) and sut.endpoints().get("http"):
        fates = order_fates(sut, ops, deadline_s=FATE_DEADLINE_S)
    return {"head": progress.get("head"), "reached": reached, "probe": probe, "ops": ops,
            "fates": fates, "bound_s": bound_s}
