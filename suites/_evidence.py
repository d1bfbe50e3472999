"""Evidence for the checkers, read from a SUT: its sequenced input, digests and outputs.

``wal_records`` / ``sequenced_messages`` read the sequenced input (the raw
WAL, else the journal), ``wal_orders`` the orders in it (what survived a
fault), ``engine_digests`` each engine's digest, and
``published_outputs`` every output stream on the bus. Everything here
gathers evidence; nothing judges it.
"""

from __future__ import annotations

import json
import socket

from _support import engines, na, safe_digest

from harness.checkers.zero_loss import wal_orders_from_records
from harness.sut.base import Sut, journal_orders
from reference_impl.core import mold_codec, output_codec, sequenced_codec
from reference_impl.core.messages import Sequenced
from reference_impl.core.replay_format import (
    input_to_json,
    output_to_json,
    parse_input_line,
)


def wal_records(sut: Sut) -> list[tuple[int, bytes]]:
    """The sequenced input as ``(seq, payload)``: the raw WAL, else the journal re-encoded."""
    raw = getattr(sut, "wal_records", None)
    if raw is not None:
        return list(raw())
    return [(m.seq, sequenced_codec.encode(m)) for m in journal_messages(sut)]


def wal_orders(sut: Sut) -> set:
    """``(account, token)`` of every order in the surviving journal."""
    raw = getattr(sut, "wal_records", None)
    if raw is not None:
        return wal_orders_from_records(raw())
    return journal_orders(sut.journal() or [])


def journal_messages(sut: Sut) -> list[Sequenced]:
    """The journal (replay-format dicts) as ``Sequenced`` messages."""
    entries = sut.journal() if sut.offers("journal") else None
    if entries is None:
        na(f"{sut.name} offers no journal of its sequenced input")
    return [parse_input_line(json.dumps(e), i) for i, e in enumerate(entries, 1)]


def sequenced_messages(sut: Sut) -> list[Sequenced]:
    """Decoded sequenced input with request identities.

    The raw WAL keeps ``(gateway_id, incarnation, request_seq)``. The journal
    does not, so there a request is named by what it asks (kind, account,
    tokens): the suites' clients never reuse a token, so one request asked
    twice is one request sequenced twice.
    """
    if getattr(sut, "wal_records", None) is not None:
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


def published_outputs(sut: Sut, timeout_s: float = 0.5,
                      coverage: dict[str, dict] | None = None) -> dict[str, list[dict]]:
    """Every output stream on the bus, per engine that published one (reference only).

    Each engine whose digest reports ``published_seq > 0`` is asked for its
    whole stream through MoldUDP64 re-requests on its ``retransmit_port``;
    the records decode to replay-format output dicts. Subscribers receive
    the union of these streams, so a second publisher is a second copy of
    every report.

    The retransmission ring holds only the engine's latest messages, so a
    fetched stream may be partial. ``coverage``, when given, is filled with
    ``{engine: {"published_seq", "fetched", "first_missing"}}`` (``fetched``
    counts the seqs 1..published_seq actually got): pass it to
    ``check_stream_coverage`` so partial evidence is UNKNOWN, never a pass.
    """
    cfg = getattr(sut, "config", None)
    if cfg is None:
        return {}
    session = cfg.output_stream.session.encode("ascii")
    streams: dict[str, list[dict]] = {}
    for name, d in engine_digests(sut).items():
        head = int(d.get("published_seq") or 0)
        if head <= 0:
            continue
        port = cfg.engine(int(name.split("-", 1)[1])).retransmit_port
        got: dict = {}
        streams[name] = _fetch_stream(port, session, head, timeout_s, got)
        if coverage is not None:
            coverage[name] = got
    return streams


def _fetch_stream(port: int, session: bytes, head: int, timeout_s: float,
                  coverage: dict | None = None) -> list[dict]:
    """The stream's messages 1..``head`` that the engine's ring still holds, in seq order.

    ``coverage`` (when given) gets ``published_seq``, ``fetched`` and
    ``first_missing`` (None when nothing is missing).
    """
    got: dict[int, bytes] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(timeout_s)
        want, misses = 1, 0
        while want <= head and misses < 5:
            sock.sendto(mold_codec.encode_request(session, want, min(head - want + 1, 1000)),
                        ("127.0.0.1", port))
            before = len(got)
            try:
                while True:
                    pkt = mold_codec.decode_packet(sock.recv(65535))
                    for i, m in enumerate(pkt.messages):
                        got.setdefault(pkt.seq + i, m)
                    sock.settimeout(0.05)
            except TimeoutError:
                pass
            sock.settimeout(timeout_s)
            misses = misses + 1 if len(got) == before else 0
            while want in got:
                want += 1
    if coverage is not None:
        have = [seq for seq in got if 1 <= seq <= head]
        missing = next((seq for seq in range(1, head + 1) if seq not in got), None)
        coverage.update(published_seq=head, fetched=len(have), first_missing=missing)
    out = []
    for seq in sorted(got):
        rec = output_codec.decode(got[seq])
        out.append(output_to_json(rec.output))
    return out
