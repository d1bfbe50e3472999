"""OUCH 4.2 <-> the project's vocabulary, and which outbound message answers which request.

Pure: no sockets, no clocks. ``ouch_client`` does the I/O.

Requests: ``enter_order`` / ``replace_order`` / ``cancel_order`` build the
OUCH messages for replay-format request fields (``tif`` DAY is OUCH's system
hours 99999, IOC is 0, FOK is IOC with ``min_qty = qty``; a market order
carries ``MARKET_PRICE``).

Outbound messages become replay-format output dicts (``output_from_ouch``),
so a history holds one vocabulary whichever door was used. What OUCH does
not carry is marked, not invented: ``seq`` (the input seq) is None; a reject
reason OUCH shares between several causes ('O', other) reads ``ouch_O``; a
Cancel Reject is a ``rejected`` with reason ``cancel_reject``; a short sale
side ('T', 'E') reads ``S``, as the engine treats it.

``Matcher`` pairs outcomes with the requests still waiting for one, per
token, oldest first: an Order Accepted answers a pending Enter of its token;
an Order Replaced a pending Replace of its new token; an Order Canceled with
reason user a pending Cancel; a Cancel Reject a pending Cancel (else any
request of that token); an Order Rejected a pending Enter or Replace (else a
Cancel). Executions and IOC remainders answer nothing: they are stream events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from reference_impl.core.ouch_codec import CANCEL_CODES, REJECT_CODES
from reference_impl.core.ouch_messages import (
    MARKET_PRICE,
    TIF_IOC,
    TIF_SYSTEM_HOURS,
    CancelOrder,
    CancelReject,
    EnterOrder,
    OrderAccepted,
    OrderCanceled,
    OrderExecuted,
    OrderRejected,
    OrderReplaced,
    OutboundMessage,
    ReplaceOrder,
)


def _unambiguous(codes: Mapping[Any, bytes]) -> dict[bytes, str]:
    """Inverts a core reason -> OUCH code table, keeping the codes only one reason uses."""
    reasons: dict[bytes, list[str]] = {}
    for reason, code in codes.items():
        reasons.setdefault(code, []).append(reason.value)
    return {code: names[0] for code, names in reasons.items() if len(names) == 1}


#: OUCH reject code -> the core reason it stands for, where that is unambiguous
#: (the door's own table read backwards: S X Z N C; 'O' stands for several).
REJECT_REASONS = _unambiguous(REJECT_CODES)
CANCEL_REASONS = _unambiguous(CANCEL_CODES)
CANCEL_REJECT = "cancel_reject"
_SIDE_IN = {"B": b"B", "S": b"S"}
_SIDE_OUT = {b"B": "B", b"S": "S", b"T": "S", b"E": "S"}


# ------------------------------------------------------------------ requests


def enter_order(token: str, symbol: str, side: str, qty: int, price: int | None = None,
                ord_type: str = "limit", tif: str = "DAY", min_qty: int | None = None) -> EnterOrder:
    """The Enter Order for replay-format fields; ``ValueError`` for what OUCH cannot say."""
    if side not in _SIDE_IN:
        raise ValueError(f"side must be B or S (got {side!r})")
    if ord_type == "market":
        if price is not None:
            raise ValueError("a market order has no price")
        wire_price = MARKET_PRICE
    elif ord_type == "limit":
        if price is None:
            raise ValueError("a limit order needs a price")
        wire_price = price
    else:
        raise ValueError(f"ord_type must be limit or market (got {ord_type!r})")
    if tif == "FOK":
        if min_qty is not None:
            raise ValueError("min_qty is not allowed with FOK")
        wire_tif, min_qty = TIF_IOC, qty
    elif tif in ("DAY", "IOC"):
        wire_tif = TIF_SYSTEM_HOURS if tif == "DAY" else TIF_IOC
    else:
        raise ValueError(f"tif must be DAY, IOC or FOK (got {tif!r})")
    return EnterOrder(token, _SIDE_IN[side], qty, symbol, wire_price, wire_tif,
                      min_qty=min_qty or 0)


def replace_order(token: str, new_token: str, qty: int, price: int) -> ReplaceOrder:
    return ReplaceOrder(token, new_token, qty, price)


def cancel_order(token: str, qty: int = 0) -> CancelOrder:
    """Cancel down to the intended size ``qty`` (executed shares count; 0: cancel all)."""
    return CancelOrder(token, qty)


# ------------------------------------------------------------------ outputs


def _reason(code: bytes, table: dict[bytes, str]) -> str:
    return table.get(code, "ouch_" + code.decode("ascii", "replace"))


def output_from_ouch(msg: OutboundMessage, account: str) -> dict[str, Any] | None:
    """The replay-format output dict for one outbound message (None: not an order event)."""
    kind = type(msg)
    if kind is OrderAccepted:
        return {"seq": None, "type": "accepted", "account": account, "token": msg.order_token,
                "symbol": msg.stock, "side": _SIDE_OUT[msg.side], "qty": msg.shares,
                "price": 0 if msg.price == MARKET_PRICE else msg.price,
                "order_ref": msg.order_reference_number}
    if kind is OrderExecuted:
        return {"seq": None, "type": "executed", "account": account, "token": msg.order_token,
                "qty": msg.executed_shares, "price": msg.execution_price,
                "match_id": msg.match_number, "liquidity": msg.liquidity_flag.decode("ascii")}
    if kind is OrderCanceled:
        return {"seq": None, "type": "canceled", "account": account, "token": msg.order_token,
                "qty": msg.decrement_shares, "reason": _reason(msg.reason, CANCEL_REASONS)}
    if kind is OrderReplaced:
        return {"seq": None, "type": "replaced", "account": account,
                "token": msg.replacement_order_token, "old_token": msg.previous_order_token,
                "qty": msg.shares, "price": msg.price, "order_ref": msg.order_reference_number}
    if kind is OrderRejected:
        return {"seq": None, "type": "rejected", "account": account, "token": msg.order_token,
                "reason": _reason(msg.reason, REJECT_REASONS)}
    if kind is CancelReject:
        return {"seq": None, "type": "rejected", "account": account, "token": msg.order_token,
                "reason": CANCEL_REJECT}
    return None  # System Event


# ------------------------------------------------------------------ matching


def request_token(f: str, value: dict[str, Any]) -> str:
    """The token an outcome of this request names: the new token for a replace."""
    return value["new_token"] if f == "replace" else value["token"]


def _answers(output: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(request kinds this output answers, kinds it may answer when none of those waits)."""
    kind = output["type"]
    if kind == "accepted":
        return ("new",), ()
    if kind == "replaced":
        return ("replace",), ()
    if kind == "canceled":
        return (("cancel",), ()) if output.get("reason") == "user" else ((), ())
    if kind == "rejected":
        if output.get("reason") == CANCEL_REJECT:
            return ("cancel",), ("new", "replace")
        return ("new", "replace"), ("cancel",)
    return (), ()


class Matcher:
    """Requests waiting for their outcome, per token, oldest first (see the module doc)."""

    def __init__(self) -> None:
        self._waiting: dict[str, list[tuple[str, Any]]] = {}

    def add(self, f: str, token: str, handle: Any) -> None:
        self._waiting.setdefault(token, []).append((f, handle))

    def on_output(self, output: dict[str, Any]) -> Any | None:
        """The handle of the request ``output`` answers (removed), or None."""
        queue = self._waiting.get(output.get("token", ""))
        if not queue:
            return None
        first, fallback = _answers(output)
        for kinds in (first, fallback):
            for i, (f, handle) in enumerate(queue):
                if f in kinds:
                    del queue[i]
                    if not queue:
                        del self._waiting[output["token"]]
                    return handle
        return None

    def remove_if(self, pred: Callable[[Any], bool]) -> list[Any]:
        """Remove and return every waiting handle for which ``pred`` holds."""
        out = []
        for token in list(self._waiting):
            keep = []
            for f, h in self._waiting[token]:
                if pred(h):
                    out.append(h)
                else:
                    keep.append((f, h))
            if keep:
                self._waiting[token] = keep
            else:
                del self._waiting[token]
        return out

    def __len__(self) -> int:
        return sum(len(q) for q in self._waiting.values())
