"""JSON request bodies of the HTTP door -> core request bodies, or a named error.

Shape only: types, required and unknown fields, enumerated values. Business
ranges (qty, price, tick, symbol, token format) are left to ``core.rules`` via
the gateway book, so a huge integer parses and then fails ``bad_qty`` or
``bad_price`` exactly as it would at the OUCH door. Field names and values
are the replay format's (docs/replay-format.md), with two conveniences for
hand-typed requests: ``ord_type`` defaults to ``"limit"`` and ``tif`` to
``"DAY"``. ``"FOK"`` is read as IOC with ``min_qty = qty``.
"""

from __future__ import annotations

from reference_impl.core.messages import NewOrder, OrdType, RejectReason, Replace, Tif
from reference_impl.core.replay_format import ORD_TYPES, SIDES, TIFS, json_type
from reference_impl.core.rules import check_qty, valid_token

_NEW_FIELDS = ("token", "symbol", "side", "qty", "price", "ord_type", "tif", "min_qty", "account")
_REPLACE_FIELDS = ("new_token", "qty", "price")


class RequestError(ValueError):
    """A request body that does not parse: HTTP 400 with ``code`` and ``field``."""

    def __init__(self, code: str, field: str, message: str) -> None:
        self.code = code
        self.field = field
        self.message = message
        super().__init__(f"{code}: {field}: {message}")


class _Fields:
    __slots__ = ("obj",)

    def __init__(self, obj: object, allowed: tuple[str, ...]) -> None:
        if not isinstance(obj, dict):
            raise RequestError("malformed_json", "body",
                               f"expected a JSON object, got {json_type(obj)}")
        for key in obj:
            if key not in allowed:
                raise RequestError("unknown_field", key, f"not a field of this request "
                                                         f"(fields: {', '.join(allowed)})")
        self.obj = obj

    def get(self, field: str, kind: type, default: object = ...) -> object:
        if field not in self.obj:
            if default is ...:
                raise RequestError("missing_field", field, "required")
            return default
        value = self.obj[field]
        if type(value) is not kind:  # bool is not an int here; 1.0 is not an int
            raise RequestError("wrong_type", field,
                               f"expected {'integer' if kind is int else 'string'}, "
                               f"got {json_type(value)}")
        return value

    def choice(self, field: str, names, default: object = ...) -> str:
        value = self.get(field, str, default)
        if value not in names:
            raise RequestError("bad_value", field, f"must be one of {', '.join(names)}, "
                                                   f"got {value!r}")
        return value  # type: ignore[return-value]


def parse_new_order(obj: object, account: str) -> NewOrder:
    f = _Fields(obj, _NEW_FIELDS)
    if "account" in f.obj and f.get("account", str) != account:
        raise RequestError("bad_value", "account", "must be the authenticated account")
    token = f.get("token", str)
    symbol = f.get("symbol", str)
    side = SIDES[f.choice("side", SIDES)]
    qty = f.get("qty", int)
    ord_type = ORD_TYPES[f.choice("ord_type", ORD_TYPES, "limit")]
    if ord_type is OrdType.MARKET:
        if "price" in f.obj:
            raise RequestError("bad_value", "price", "not allowed for a market order")
        price = 0
    else:
        price = f.get("price", int)
    tif_name = f.choice("tif", TIFS, "DAY")
    if tif_name == "FOK":
        if "min_qty" in f.obj:
            raise RequestError("bad_value", "min_qty", "not allowed with FOK (FOK is min_qty = qty)")
        return NewOrder(token, symbol, side, qty, price, ord_type, Tif.IOC, qty)  # type: ignore[arg-type]
    min_qty = f.get("min_qty", int, 0)
    tif = Tif.IOC if tif_name == "IOC" else Tif.DAY
    return NewOrder(token, symbol, side, qty, price, ord_type, tif, min_qty)  # type: ignore[arg-type]


def parse_replace(obj: object, token: str) -> Replace:
    f = _Fields(obj, _REPLACE_FIELDS)
    return Replace(token, f.get("new_token", str), f.get("qty", int),  # type: ignore[arg-type]
                   f.get("price", int))


def reject_field(reason: RejectReason, body: object) -> str:
    """The request field a stateless reject is about (for the error's ``field``)."""
    if reason is RejectReason.UNKNOWN_SYMBOL:
        return "symbol"
    if reason is RejectReason.BAD_PRICE:
        return "price"
    if reason is RejectReason.MIN_QTY_NOT_IOC:
        return "min_qty"
    if reason is RejectReason.BAD_TIF:
        return "tif"
    if reason is RejectReason.BAD_QTY:
        if isinstance(body, NewOrder) and check_qty(body.qty):
            return "min_qty"
        return "qty"
    if reason is RejectReason.BAD_TOKEN:
        if isinstance(body, Replace) and valid_token(body.token):
            return "new_token"
        return "token"
    return "body"
