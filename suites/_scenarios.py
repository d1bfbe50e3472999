"""The matching-rules conformance scenarios, one or more per rule of docs/matching-rules.md.

Each ``Scenario`` cites its rule (``R1`` ...) and holds a short list of
client requests (``new``, ``cancel``, ``replace``, each by account ``A``,
``B`` or ``C``) and, per account, the order events that account must see on
its stream, in order: written from the rule by hand, never recorded from an
engine. Accounts see only their own events, so a scenario compares each
account's list exactly; the order between accounts is not a client's to see.

Tokens are short names (``a1``) that the runner makes unique per run, door
and scenario; prices are levels of the scenario's own band of its symbol
(``2`` is its second level, ``MKT`` a market order); quantities are literal.
Every scenario ends with nothing left on the book (its last steps cancel
what rests), so scenarios run one after another on shared symbols without
touching each other. ``BAD_PRICE`` is a price off the symbol's tick and
``NO_SYMBOL`` a well-formed symbol the SUT does not trade (the runner picks them).

Expected events (``acc``, ``exe``, ``cxl``, ``rpl``, ``rej``, ``cxl_rej``)
are tuples of the client-visible fields: order refs and match ids are the
SUT's to number, so they are not compared.
"""

from __future__ import annotations

from dataclasses import dataclass, field

A, B, C = "A", "B", "C"
ACCOUNTS = (A, B, C)
MKT = None  #: the price of a market order
BAD_PRICE = "bad_price"  #: a limit price off the symbol's tick
NO_SYMBOL = "no_symbol"  #: a symbol the SUT does not trade


@dataclass(frozen=True)
class Step:
    """One client request: ``kind`` new | cancel | replace, by ``account``, with its fields."""

    account: str
    kind: str
    fields: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    rule: str
    title: str
    steps: tuple[Step, ...]
    expect: dict[str, tuple[tuple, ...]]  #: account -> its events, in order


def new(account: str, token: str, side: str, qty: int, price: int | str | None,
        tif: str = "DAY", min_qty: int | None = None, symbol: str | None = None) -> Step:
    return Step(account, "new", {"token": token, "side": side, "qty": qty, "price": price,
                                 "tif": tif, "min_qty": min_qty, "symbol": symbol})


def cancel(account: str, token: str, qty: int = 0) -> Step:
    return Step(account, "cancel", {"token": token, "qty": qty})


def replace(account: str, token: str, new_token: str, qty: int, price: int | str) -> Step:
    return Step(account, "replace", {"token": token, "new_token": new_token, "qty": qty,
                                     "price": price})


def acc(token: str, side: str, qty: int, price: int | None) -> tuple:
    return ("accepted", token, side, qty, price)


def exe(token: str, qty: int, price: int, liquidity: str) -> tuple:
    return ("executed", token, qty, price, liquidity)


def cxl(token: str, qty: int, reason: str = "user") -> tuple:
    return ("canceled", token, qty, reason)


def rpl(token: str, old_token: str, qty: int, price: int) -> tuple:
    return ("replaced", token, old_token, qty, price)


def rej(token: str, reason: str) -> tuple:
    """The reject of a new order or a replace (a replace's names its new token)."""
    return ("rejected", token, reason)


def cxl_rej(token: str, reason: str) -> tuple:
    """The reject of a cancel (OUCH has a message of its own for it)."""
    return ("cancel_rejected", token, reason)


def sc(rule: str, title: str, steps: list[Step], **expect: list[tuple]) -> Scenario:
    return Scenario(rule, title, tuple(steps), {k: tuple(v) for k, v in expect.items()})


SCENARIOS: tuple[Scenario, ...] = (
    sc("R1", "the best price executes first, each level at its own price",
       [new(A, "a1", "S", 5, 3), new(A, "a2", "S", 5, 2), new(B, "b1", "B", 7, 3),
        cancel(A, "a1")],
       A=[acc("a1", "S", 5, 3), acc("a2", "S", 5, 2), exe("a2", 5, 2, "A"), exe("a1", 2, 3, "A"),
          cxl("a1", 3)],
       B=[acc("b1", "B", 7, 3), exe("b1", 5, 2, "R"), exe("b1", 2, 3, "R")]),
    sc("R2", "at one price the earlier order executes first",
       [new(A, "a1", "S", 4, 2), new(B, "b1", "S", 4, 2), new(C, "c1", "B", 5, 2),
        cancel(B, "b1")],
       A=[acc("a1", "S", 4, 2), exe("a1", 4, 2, "A")],
       B=[acc("b1", "S", 4, 2), exe("b1", 1, 2, "A"), cxl("b1", 3)],
       C=[acc("c1", "B", 5, 2), exe("c1", 4, 2, "R"), exe("c1", 1, 2, "R")]),
    sc("R3", "an execution is at the resting order's price",
       [new(A, "a1", "B", 5, 4), new(B, "b1", "S", 5, 1)],
       A=[acc("a1", "B", 5, 4), exe("a1", 5, 4, "A")],
       B=[acc("b1", "S", 5, 1), exe("b1", 5, 4, "R")]),
    sc("R4", "a DAY remainder rests at its limit and trades later",
       [new(A, "a1", "S", 3, 2), new(B, "b1", "B", 5, 2), new(C, "c1", "S", 2, 2)],
       A=[acc("a1", "S", 3, 2), exe("a1", 3, 2, "A")],
       B=[acc("b1", "B", 5, 2), exe("b1", 3, 2, "R"), exe("b1", 2, 2, "A")],
       C=[acc("c1", "S", 2, 2), exe("c1", 2, 2, "R")]),
    sc("R5", "an IOC remainder is canceled and never rests",
       [new(A, "a1", "S", 3, 2), new(B, "b1", "B", 5, 2, tif="IOC"), new(C, "c1", "S", 2, 2),
        new(B, "b2", "B", 4, 1, tif="IOC"), cancel(C, "c1")],
       A=[acc("a1", "S", 3, 2), exe("a1", 3, 2, "A")],
       B=[acc("b1", "B", 5, 2), exe("b1", 3, 2, "R"), cxl("b1", 2, "ioc"),
          acc("b2", "B", 4, 1), cxl("b2", 4, "ioc")],
       C=[acc("c1", "S", 2, 2), cxl("c1", 2)]),
    sc("R6", "a fill-or-kill that cannot fill whole does not execute at all",
       [new(A, "a1", "S", 3, 2), new(B, "b1", "B", 5, 2, tif="FOK"),
        new(B, "b2", "B", 3, 2, tif="FOK")],
       A=[acc("a1", "S", 3, 2), exe("a1", 3, 2, "A")],
       B=[acc("b1", "B", 5, 2), cxl("b1", 5, "ioc"), acc("b2", "B", 3, 2), exe("b2", 3, 2, "R")]),
    sc("R6", "a fill-or-kill fills whole across levels within its limit",
       [new(A, "a1", "S", 2, 2), new(A, "a2", "S", 2, 3), new(A, "a3", "S", 2, 4),
        new(B, "b1", "B", 5, 3, tif="FOK"), new(B, "b2", "B", 4, 3, tif="FOK"), cancel(A, "a3")],
       A=[acc("a1", "S", 2, 2), acc("a2", "S", 2, 3), acc("a3", "S", 2, 4),
          exe("a1", 2, 2, "A"), exe("a2", 2, 3, "A"), cxl("a3", 2)],
       B=[acc("b1", "B", 5, 3), cxl("b1", 5, "ioc"), acc("b2", "B", 4, 3),
          exe("b2", 2, 2, "R"), exe("b2", 2, 3, "R")]),
    sc("R7", "below its minimum quantity an IOC does not execute; at or above it, it does",
       [new(A, "a1", "S", 3, 2), new(B, "b1", "B", 5, 2, tif="IOC", min_qty=4),
        new(B, "b2", "B", 5, 2, tif="IOC", min_qty=3)],
       A=[acc("a1", "S", 3, 2), exe("a1", 3, 2, "A")],
       B=[acc("b1", "B", 5, 2), cxl("b1", 5, "ioc"), acc("b2", "B", 5, 2),
          exe("b2", 3, 2, "R"), cxl("b2", 2, "ioc")]),
    sc("R7", "the minimum counts only what executes within the limit",
       [new(A, "a1", "S", 2, 2), new(A, "a2", "S", 2, 4), new(B, "b1", "B", 4, 3, tif="IOC",
                                                            min_qty=3),
        cancel(A, "a1"), cancel(A, "a2")],
       A=[acc("a1", "S", 2, 2), acc("a2", "S", 2, 4), cxl("a1", 2), cxl("a2", 2)],
       B=[acc("b1", "B", 4, 3), cxl("b1", 4, "ioc")]),
    sc("R8", "a market order executes at any price and its remainder is canceled",
       [new(A, "a1", "S", 2, 2), new(A, "a2", "S", 2, 5), new(B, "b1", "B", 6, MKT),
        new(C, "c1", "S", 2, 1), cancel(C, "c1")],
       A=[acc("a1", "S", 2, 2), acc("a2", "S", 2, 5), exe("a1", 2, 2, "A"), exe("a2", 2, 5, "A")],
       B=[acc("b1", "B", 6, MKT), exe("b1", 2, 2, "R"), exe("b1", 2, 5, "R"),
          cxl("b1", 2, "ioc")],
       C=[acc("c1", "S", 2, 1), cxl("c1", 2)]),
    sc("R8", "a market order against an empty side is canceled whole",
       [new(A, "a1", "S", 3, MKT)],
       A=[acc("a1", "S", 3, MKT), cxl("a1", 3, "ioc")]),
    sc("R9", "a reduce keeps the order's time priority",
       [new(A, "a1", "S", 5, 2), new(B, "b1", "S", 5, 2), cancel(A, "a1", 3),
        new(C, "c1", "B", 3, 2), cancel(B, "b1")],
       A=[acc("a1", "S", 5, 2), cxl("a1", 2), exe("a1", 3, 2, "A")],
       B=[acc("b1", "S", 5, 2), cxl("b1", 5)],
       C=[acc("c1", "B", 3, 2), exe("c1", 3, 2, "R")]),
    sc("R9", "the intended size counts executed shares; a size at or above it changes nothing",
       [new(A, "a1", "S", 5, 2), new(B, "b1", "B", 2, 2), cancel(A, "a1", 4),
        cancel(A, "a1", 6), cancel(A, "a1", 1)],
       A=[acc("a1", "S", 5, 2), exe("a1", 2, 2, "A"), cxl("a1", 1), cxl("a1", 0),
          cxl("a1", 2)],
       B=[acc("b1", "B", 2, 2), exe("b1", 2, 2, "R")]),
    sc("R10", "a full cancel removes the order; its token is then unknown",
       [new(A, "a1", "S", 4, 2), cancel(A, "a1"), new(B, "b1", "B", 4, 2, tif="IOC"),
        cancel(A, "a1"), replace(A, "a1", "a2", 4, 2)],
       A=[acc("a1", "S", 4, 2), cxl("a1", 4), cxl_rej("a1", "unknown_order"),
          rej("a2", "unknown_order")],
       B=[acc("b1", "B", 4, 2), cxl("b1", 4, "ioc")]),
    sc("R11", "a replace loses time priority, even at the same price and size",
       [new(A, "a1", "S", 3, 2), new(B, "b1", "S", 3, 2), replace(A, "a1", "a2", 3, 2),
        new(C, "c1", "B", 3, 2), cancel(A, "a2")],
       A=[acc("a1", "S", 3, 2), rpl("a2", "a1", 3, 2), cxl("a2", 3)],
       B=[acc("b1", "S", 3, 2), exe("b1", 3, 2, "A")],
       C=[acc("c1", "B", 3, 2), exe("c1", 3, 2, "R")]),
    sc("R11", "a replace may execute at once; the old token is gone without a cancel",
       [new(A, "a1", "B", 2, 1), new(B, "b1", "S", 2, 3), replace(A, "a1", "a2", 3, 3),
        cancel(A, "a1"), cancel(A, "a2")],
       A=[acc("a1", "B", 2, 1), rpl("a2", "a1", 3, 3), exe("a2", 2, 3, "R"),
          cxl_rej("a1", "unknown_order"), cxl("a2", 1)],
       B=[acc("b1", "S", 2, 3), exe("b1", 2, 3, "A")]),
    sc("R11", "a replaced order's open quantity is the new quantity, executed shares aside",
       [new(A, "a1", "S", 5, 2), new(B, "b1", "B", 2, 2, tif="IOC"),
        replace(A, "a1", "a2", 4, 2), new(B, "b2", "B", 5, 2, tif="IOC")],
       A=[acc("a1", "S", 5, 2), exe("a1", 2, 2, "A"), rpl("a2", "a1", 4, 2),
          exe("a2", 4, 2, "A")],
       B=[acc("b1", "B", 2, 2), exe("b1", 2, 2, "R"), acc("b2", "B", 5, 2),
          exe("b2", 4, 2, "R"), cxl("b2", 1, "ioc")]),
    sc("R12", "a token is used once per account; a rejected order does not use it",
       [new(A, "a1", "S", 1, 2), cancel(A, "a1"), new(A, "a1", "S", 1, 2),
        new(B, "a1", "S", 1, 2), cancel(B, "a1"), new(A, "x1", "S", 0, 2),
        new(A, "x1", "S", 1, 2), replace(A, "x1", "a1", 1, 2), cancel(A, "x1")],
       A=[acc("a1", "S", 1, 2), cxl("a1", 1), rej("a1", "duplicate_token"), rej("x1", "bad_qty"),
          acc("x1", "S", 1, 2), rej("a1", "duplicate_token"), cxl("x1", 1)],
       B=[acc("a1", "S", 1, 2), cxl("a1", 1)]),
    sc("R13", "a new order's checks run in order; the first that fails names the reject",
       [new(A, "n1", "S", 0, BAD_PRICE, symbol=NO_SYMBOL), new(A, "n2", "S", 0, BAD_PRICE),
        new(A, "n3", "S", 0, 2, min_qty=1), new(A, "n4", "S", 5, 2, min_qty=1),
        new(A, "n5", "S", 5, 2, tif="IOC", min_qty=6), new(A, "n6", "S", 5, MKT, min_qty=2)],
       A=[rej("n1", "unknown_symbol"), rej("n2", "bad_price"), rej("n3", "bad_qty"),
          rej("n4", "min_qty_not_ioc"), rej("n5", "bad_qty"), rej("n6", "min_qty_not_ioc")]),
    sc("R14", "a cancel of a token the account never used, or another account's, is unknown",
       [new(A, "a1", "S", 2, 2), cancel(B, "a1"), cancel(B, "zz"), cancel(A, "a1")],
       A=[acc("a1", "S", 2, 2), cxl("a1", 2)],
       B=[cxl_rej("a1", "unknown_order"), cxl_rej("zz", "unknown_order")]),
    sc("R15", "a replace's checks run in order and leave the original order as it was",
       [new(A, "a1", "S", 2, 2), new(A, "a2", "S", 1, 3), replace(A, "zz", "r0", 0, 2),
        replace(A, "zz", "r1", 1, BAD_PRICE),
        replace(A, "a1", "r2", 0, BAD_PRICE), replace(A, "a1", "r3", 0, 2),
        replace(A, "a1", "a2", 3, 2), replace(A, "a1", "a1", 3, 2),
        cancel(A, "a1"), cancel(A, "a2")],
       A=[acc("a1", "S", 2, 2), acc("a2", "S", 1, 3), rej("r0", "bad_qty"),
          rej("r1", "unknown_order"),
          rej("r2", "bad_price"), rej("r3", "bad_qty"), rej("a2", "duplicate_token"),
          rej("a1", "duplicate_token"), cxl("a1", 2), cxl("a2", 1)]),
    sc("R16", "an account's orders trade with each other (no self-trade prevention)",
       [new(A, "a1", "S", 2, 2), new(A, "a2", "B", 3, 2, tif="IOC")],
       A=[acc("a1", "S", 2, 2), acc("a2", "B", 3, 2), exe("a1", 2, 2, "A"), exe("a2", 2, 2, "R"),
          cxl("a2", 1, "ioc")]),
    sc("R17", "one request's events: accepted, then resting and aggressor per match, then the "
              "remainder's cancel",
       [new(A, "a1", "B", 1, 3), new(A, "a2", "B", 2, 2), new(B, "b1", "S", 5, 2, tif="IOC")],
       A=[acc("a1", "B", 1, 3), acc("a2", "B", 2, 2), exe("a1", 1, 3, "A"),
          exe("a2", 2, 2, "A")],
       B=[acc("b1", "S", 5, 2), exe("b1", 1, 3, "R"), exe("b1", 2, 2, "R"),
          cxl("b1", 2, "ioc")]),
)

RULES: tuple[str, ...] = tuple(sorted({s.rule for s in SCENARIOS}, key=lambda r: int(r[1:])))
