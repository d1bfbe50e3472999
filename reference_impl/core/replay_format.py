"""The JSON-lines replay format: input lines to ``Sequenced``, outputs to JSON and back.

Theory of operation
-------------------
A replay file is one JSON object per line. Reading it separates two kinds of
bad input:

* **Malformed** lines break the *format*: not JSON, not an object, a missing
  or unknown field, a field of the wrong JSON type (a string qty, a float
  price, ``true`` where an int belongs), an unknown ``type`` / ``side`` /
  ``ord_type`` / ``tif``, a ``price`` on a market order, an account that is
  not 1–6 letters or digits. They raise ``ReplayFormatError(lineno, field,
  reason)`` and the replay stops: no engine could make sense of them.
* Values of the right type that break a *business rule* (a symbol with bad
  characters, an off-tick price, a qty out of range, a bad token) pass
  through untouched, so the engine rejects them deterministically with a
  ``rejected`` output, exactly as it would a request from a gateway.

``"tif": "FOK"`` is read as ``Tif.IOC`` with ``min_qty = qty`` (the engine has
no FOK of its own); ``min_qty`` beside FOK is malformed. Writers
(``input_to_json``) emit the normalised IOC + ``min_qty`` form, which reads
back to the same ``Sequenced``. Fields are checked in the documented order,
so the same bad line always names the same field.

Outputs serialise to the issue's objects with a fixed key order; enums become
their ``.value``. ``format_line`` is the one serialisation used for output
files, so two runs of one input give byte-identical files.
"""

from __future__ import annotations

import json
from typing import NamedTuple

from .messages import (
    Accepted,
    Cancel,
    CancelReason,
    Canceled,
    Executed,
    Heartbeat,
    LeaderChange,
    NewOrder,
    OrdType,
    Output,
    Rejected,
    RejectReason,
    Replace,
    Replaced,
    Sequenced,
    Side,
    SnapshotRequest,
    Tif,
)

__all__ = [
    "ORD_TYPES",
    "SIDES",
    "TIFS",
    "End",
    "ReplayFormatError",
    "end_to_json",
    "format_line",
    "input_to_json",
    "json_type",
    "output_from_json",
    "output_to_json",
    "parse_input_line",
    "parse_output_line",
]

U64_MAX = (1 << 64) - 1
_ACCOUNT_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_ACCOUNT_MAX = 6
#: The format's names for sides, order types and tifs (the HTTP door reads the same).
SIDES = {"B": Side.BUY, "S": Side.SELL}
ORD_TYPES = {"limit": OrdType.LIMIT, "market": OrdType.MARKET}
TIFS = ("DAY", "IOC", "FOK")
_LIQUIDITY = ("A", "R")
_REJECT_REASONS = {r.value: r for r in RejectReason}
_CANCEL_REASONS = {r.value: r for r in CancelReason}

_INPUT_FIELDS = {
    "new": ("seq", "ts", "type", "account", "token", "symbol", "side", "qty", "price",
            "ord_type", "tif", "min_qty"),
    "cancel": ("seq", "ts", "type", "account", "token", "qty"),
    "replace": ("seq", "ts", "type", "account", "token", "new_token", "qty", "price"),
    # Extensions (not in issue 2's list): control messages, so that a stream
    # exported from the WAL keeps gap-free seqs. They produce no outputs.
    "leader_change": ("seq", "ts", "type", "epoch", "engine_id"),
    "snapshot_request": ("seq", "ts", "type", "snapshot_id"),
    "heartbeat": ("seq", "ts", "type"),
}

_OUTPUT_FIELDS = {
    "accepted": ("seq", "type", "account", "token", "symbol", "side", "qty", "price", "order_ref"),
    "executed": ("seq", "type", "account", "token", "qty", "price", "match_id", "liquidity"),
    "canceled": ("seq", "type", "account", "token", "qty", "reason"),
    "replaced": ("seq", "type", "account", "token", "old_token", "qty", "price", "order_ref"),
    "rejected": ("seq", "type", "account", "token", "reason"),
    "end": ("type", "last_seq", "state_hash"),
}


class ReplayFormatError(ValueError):
    """A malformed replay line (the file's fault, not a business reject)."""

    def __init__(self, lineno: int, field: str, reason: str) -> None:
        self.lineno = lineno
        self.field = field
        self.reason = reason
        super().__init__(f"line {lineno}: field {field}: {reason}")


class End(NamedTuple):
    """The final line of an output file."""

    last_seq: int
    state_hash: str


# ------------------------------------------------------------------ helpers


def json_type(value: object) -> str:
    """The JSON type name of a decoded value, for messages (a bool is not an integer)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    obj: dict = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def _load_object(text: str | bytes, lineno: int) -> dict:
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError) as exc:
        raise ReplayFormatError(lineno, "line", f"not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise ReplayFormatError(lineno, "line", f"expected a JSON object, got {json_type(obj)}")
    return obj


class _Reader:
    """Typed field access on one decoded object, raising with the line number."""

    __slots__ = ("obj", "lineno")

    def __init__(self, obj: dict, lineno: int) -> None:
        self.obj = obj
        self.lineno = lineno

    def fail(self, field: str, reason: str) -> ReplayFormatError:
        return ReplayFormatError(self.lineno, field, reason)

    def integer(self, field: str, lo: int | None = None, hi: int | None = None) -> int:
        if field not in self.obj:
            raise self.fail(field, "missing")
        value = self.obj[field]
        if type(value) is not int:  # bool is an int subclass: rejected here
            raise self.fail(field, f"expected integer, got {json_type(value)}")
        if lo is not None and value < lo:
            raise self.fail(field, f"must be >= {lo}, got {value}")
        if hi is not None and value > hi:
            raise self.fail(field, f"must be <= {hi}, got {value}")
        return value

    def string(self, field: str) -> str:
        if field not in self.obj:
            raise self.fail(field, "missing")
        value = self.obj[field]
        if type(value) is not str:
            raise self.fail(field, f"expected string, got {json_type(value)}")
        return value

    def name(self, field: str, names) -> str:
        """A string field that must be one of ``names`` (a dict's keys or a tuple)."""
        value = self.string(field)
        if value not in names:
            raise self.fail(field, f"unknown value {value!r}")
        return value

    def account(self) -> str:
        value = self.string("account")
        if not 1 <= len(value) <= _ACCOUNT_MAX or not all(c in _ACCOUNT_CHARS for c in value):
            raise self.fail("account", f"must be 1-{_ACCOUNT_MAX} letters or digits, got {value!r}")
        return value

    def no_extra(self, allowed: tuple[str, ...]) -> None:
        for key in self.obj:
            if key not in allowed:
                raise self.fail(key, "unknown field")


# -------------------------------------------------------------------- input


def parse_input_line(text: str | bytes, lineno: int) -> Sequenced:
    """One input line -> ``Sequenced`` (gateway 0, incarnation 0, request_seq = seq)."""
    r = _Reader(_load_object(text, lineno), lineno)
    seq = r.integer("seq", 1, U64_MAX)
    ts = r.integer("ts", 0, U64_MAX)
    kind = r.name("type", _INPUT_FIELDS)
    account = ""
    if kind == "new":
        account = r.account()
        body = _parse_new(r)
    elif kind == "cancel":
        account = r.account()
        body = Cancel(r.string("token"), r.integer("qty"))
    elif kind == "replace":
        account = r.account()
        token, new_token = r.string("token"), r.string("new_token")
        body = Replace(token, new_token, r.integer("qty"), r.integer("price"))
    elif kind == "leader_change":
        body = LeaderChange(r.integer("epoch", 0, U64_MAX), r.integer("engine_id", 0, U64_MAX))
    elif kind == "snapshot_request":
        body = SnapshotRequest(r.integer("snapshot_id", 0, U64_MAX))
    else:
        body = Heartbeat()
    r.no_extra(_INPUT_FIELDS[kind])
    return Sequenced(seq, ts, 0, 0, seq, account, body)


def _parse_new(r: _Reader) -> NewOrder:
    token = r.string("token")
    symbol = r.string("symbol")
    side = SIDES[r.name("side", SIDES)]
    qty = r.integer("qty")
    ord_type = ORD_TYPES[r.name("ord_type", ORD_TYPES)]
    if ord_type is OrdType.MARKET:
        if "price" in r.obj:
            raise r.fail("price", "price not allowed for market orders")
        price = 0
    else:
        price = r.integer("price")
    tif_name = r.name("tif", TIFS)
    if tif_name == "FOK":
        if "min_qty" in r.obj:
            raise r.fail("min_qty", "min_qty not allowed with FOK (FOK means min_qty = qty)")
        return NewOrder(token, symbol, side, qty, price, ord_type, Tif.IOC, qty)
    min_qty = r.integer("min_qty") if "min_qty" in r.obj else 0
    tif = Tif.DAY if tif_name == "DAY" else Tif.IOC
    return NewOrder(token, symbol, side, qty, price, ord_type, tif, min_qty)


def input_to_json(msg: Sequenced) -> dict:
    """The input line for ``msg`` (gateway id, incarnation and request seq are not kept).

    Raises ``ValueError`` for what the format cannot express: a tif other than
    DAY/IOC, or a market order with a nonzero price.
    """
    body = msg.body
    out: dict = {"seq": msg.seq, "ts": msg.ts}
    if isinstance(body, NewOrder):
        if body.tif not in (Tif.DAY, Tif.IOC):
            raise ValueError(f"tif {body.tif!r} has no replay-format name")
        market = body.ord_type is OrdType.MARKET
        if market and body.price != 0:
            raise ValueError("a market order with a nonzero price has no replay-format form")
        out.update(type="new", account=msg.account, token=body.token, symbol=body.symbol,
                   side=Side(body.side).value, qty=body.qty)
        if not market:
            out["price"] = body.price
        out["ord_type"] = OrdType(body.ord_type).value
        out["tif"] = "DAY" if body.tif == Tif.DAY else "IOC"
        if body.min_qty:
            out["min_qty"] = body.min_qty
    elif isinstance(body, Cancel):
        out.update(type="cancel", account=msg.account, token=body.token, qty=body.qty)
    elif isinstance(body, Replace):
        out.update(type="replace", account=msg.account, token=body.token,
                   new_token=body.new_token, qty=body.qty, price=body.price)
    elif isinstance(body, LeaderChange):
        out.update(type="leader_change", epoch=body.epoch, engine_id=body.engine_id)
    elif isinstance(body, SnapshotRequest):
        out.update(type="snapshot_request", snapshot_id=body.snapshot_id)
    elif isinstance(body, Heartbeat):
        out["type"] = "heartbeat"
    else:
        raise ValueError(f"unknown body {body!r}")
    return out


# ------------------------------------------------------------------- output


def output_to_json(output: Output) -> dict:
    """The issue's output object for one engine output, keys in the fixed order."""
    kind = type(output)
    if kind is Accepted:
        return {"seq": output.seq, "type": "accepted", "account": output.account,
                "token": output.token, "symbol": output.symbol, "side": Side(output.side).value,
                "qty": output.qty, "price": output.price, "order_ref": output.order_ref}
    if kind is Executed:
        return {"seq": output.seq, "type": "executed", "account": output.account,
                "token": output.token, "qty": output.qty, "price": output.price,
                "match_id": output.match_id, "liquidity": output.liquidity}
    if kind is Canceled:
        return {"seq": output.seq, "type": "canceled", "account": output.account,
                "token": output.token, "qty": output.qty,
                "reason": CancelReason(output.reason).value}
    if kind is Replaced:
        return {"seq": output.seq, "type": "replaced", "account": output.account,
                "token": output.token, "old_token": output.old_token, "qty": output.qty,
                "price": output.price, "order_ref": output.order_ref}
    if kind is Rejected:
        return {"seq": output.seq, "type": "rejected", "account": output.account,
                "token": output.token, "reason": RejectReason(output.reason).value}
    raise ValueError(f"not an engine output: {output!r}")


def end_to_json(last_seq: int, state_hash: str) -> dict:
    return {"type": "end", "last_seq": last_seq, "state_hash": state_hash}


def format_line(obj: dict) -> str:
    """The canonical text of one output-file line (no trailing newline)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True)


def output_from_json(obj: dict, lineno: int = 0) -> Output:
    """Inverse of ``output_to_json``; raises ``ReplayFormatError`` on a bad object."""
    if not isinstance(obj, dict):
        raise ReplayFormatError(lineno, "line", f"expected a JSON object, got {json_type(obj)}")
    r = _Reader(obj, lineno)
    kind = r.name("type", _OUTPUT_FIELDS)
    if kind == "end":
        raise r.fail("type", "the end line is not an engine output (use parse_output_line)")
    seq = r.integer("seq", 1)
    account, token = r.string("account"), r.string("token")
    result: Output
    if kind == "accepted":
        symbol, side = r.string("symbol"), SIDES[r.name("side", SIDES)]
        result = Accepted(seq, account, token, symbol, side,
                          r.integer("qty"), r.integer("price"), r.integer("order_ref"))
    elif kind == "executed":
        qty, price, match_id = r.integer("qty"), r.integer("price"), r.integer("match_id")
        result = Executed(seq, account, token, qty, price, match_id,
                          r.name("liquidity", _LIQUIDITY))
    elif kind == "canceled":
        reason = _CANCEL_REASONS[r.name("reason", _CANCEL_REASONS)]
        result = Canceled(seq, account, token, r.integer("qty"), reason)
    elif kind == "replaced":
        old_token, qty, price = r.string("old_token"), r.integer("qty"), r.integer("price")
        result = Replaced(seq, account, token, old_token, qty, price, r.integer("order_ref"))
    else:
        reason = _REJECT_REASONS[r.name("reason", _REJECT_REASONS)]
        result = Rejected(seq, account, token, reason)
    r.no_extra(_OUTPUT_FIELDS[kind])
    return result


def parse_output_line(text: str | bytes, lineno: int) -> Output | End:
    """One output-file line: an engine output, or the final ``End``."""
    obj = _load_object(text, lineno)
    if obj.get("type") == "end":
        r = _Reader(obj, lineno)
        end = End(r.integer("last_seq", 0), r.string("state_hash"))
        r.no_extra(_OUTPUT_FIELDS["end"])
        return end
    return output_from_json(obj, lineno)
