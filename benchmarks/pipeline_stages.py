"""Per-stage latency of the pipeline: the gateway's stage stamps matched to the client's orders.

The gateway keeps its last rows of monotonic stage stamps (gateway in,
sequenced, decided, durable, gateway out) behind the admin command
``stages N``; ``StagePoller`` collects them during a run and ``stage_split``
turns them into percentiles per segment, adding the two segments only the
client sees (client send -> gateway in, gateway out -> client receive).
"""

from __future__ import annotations

import json
import socket
import time

from relay_chain import OpenLoop, summarize

from reference_impl.config import HOST

STAGES_ROWS = 400
STAGE_FIELDS = ("request_seq", "input_seq", "gateway_in_ns", "sequenced_ns", "decided_ns",
                "durable_ns", "gateway_out_ns")
SEGMENTS = (  # (name, from field, to field)
    ("gateway_in->sequenced", "gateway_in_ns", "sequenced_ns"),
    ("sequenced->decided", "sequenced_ns", "decided_ns"),
    ("decided->durable", "decided_ns", "durable_ns"),
    ("durable->gateway_out", "durable_ns", "gateway_out_ns"),
    ("gateway_in->gateway_out", "gateway_in_ns", "gateway_out_ns"),
)


class StagePoller:
    """Polls ``stages 400`` on the gateway's admin port; raw replies, parsed later."""

    def __init__(self, admin_port: int, every_s: float) -> None:
        self.addr = (HOST, admin_port)
        self.every_s = every_s
        self.raw: list[bytes] = []

    def poll_until(self, loop: OpenLoop) -> None:
        end = loop.intended(loop.count - 1)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(1.0)
            while True:
                time.sleep(self.every_s)
                self._ask(s)
                if time.monotonic_ns() > end:
                    break

    def final(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(1.0)
            self._ask(s)

    def _ask(self, s: socket.socket) -> None:
        try:
            s.sendto(f"stages {STAGES_ROWS}".encode(), self.addr)
            self.raw.append(s.recv(65535))
        except OSError:
            pass

    def rows(self) -> list[dict]:
        seen: dict[int, dict] = {}
        for data in self.raw:
            doc = json.loads(data)
            fields = doc.get("fields", STAGE_FIELDS)
            for r in doc.get("stages", []):
                row = dict(zip(fields, r))
                seen[row["request_seq"]] = row
        return [seen[k] for k in sorted(seen)]


def stage_split(rows: list[dict], loop: OpenLoop, refs: list[int]) -> dict:
    """Per-stage percentiles of the measured orders' rows, plus the client-side segments."""
    by_ref = {ref: i for i, ref in enumerate(refs) if ref}
    # Every input is one of our orders and each is accepted, so input_seq == order ref.
    # A check, not a search (under overload every nearby shift nests too): count the
    # rows whose stamps nest inside the client's send and receive under each shift.
    nests = {}
    for k in range(-4, 5):
        ok = 0
        for r in rows:
            i = by_ref.get(r["input_seq"] - k)
            if i is not None and loop.recv_ns[i] and \
                    loop.sent_ns[i] <= r["gateway_in_ns"] <= r["gateway_out_ns"] <= loop.recv_ns[i]:
                ok += 1
        nests[k] = ok
    shift, ok = 0, nests[0]
    matched = [(r, by_ref[r["input_seq"] - shift]) for r in rows
               if r["input_seq"] - shift in by_ref]
    mine = [r for r, _ in matched]
    out: dict = {"rows_polled": len(rows), "rows_matched": len(matched), "seq_shift": shift,
                 "rows_nested": ok, "segments": {}}
    complete = [r for r in mine if all(r[f] for f in STAGE_FIELDS[2:])]
    out["rows_complete"] = len(complete)
    for name, a, b in SEGMENTS:
        out["segments"][name] = summarize([r[b] - r[a] for r in complete])
    nested = [(r, i) for r, i in matched if loop.recv_ns[i]]
    out["segments"]["client_send->gateway_in"] = summarize(
        [r["gateway_in_ns"] - loop.sent_ns[i] for r, i in nested])
    out["segments"]["gateway_out->client_recv"] = summarize(
        [loop.recv_ns[i] - r["gateway_out_ns"] for r, i in nested])
    out["segments"]["wire_to_wire_same_orders"] = summarize(
        [loop.recv_ns[i] - loop.intended(i) for r, i in nested])
    out["nests_by_shift"] = nests
    # raw rows with the client's stamps of the same order, for later analysis
    out["raw_fields"] = list(STAGE_FIELDS) + ["client_intended_ns", "client_sent_ns",
                                               "client_recv_ns"]
    out["raw"] = [[r[f] for f in STAGE_FIELDS] + [loop.intended(i), loop.sent_ns[i],
                                                 loop.recv_ns[i]] for r, i in matched]
    return out
