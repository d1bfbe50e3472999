"""Settle the ops a fault left open: ask the SUT what became of each order.

An ``info`` op (timeout, lost connection, 504) or an op that never completed
is neither acknowledged nor lost (docs/checkers.md): the final order state
decides it. ``settle`` asks ``GET /v1/orders/{token}`` for each open order,
as its own account, and returns ``{(account, token): status}``, ready for
``check_zero_acked_loss(..., recovered_orders=...)``:

- the order's ``state`` (``open``, ``filled``, ``canceled``, ``replaced``,
  ``rejected``);
- ``not_found`` for a 404 that is still a 404 ``confirm_s`` later (a
  gateway that has just restarted may still be reading the output stream);
- ``pending`` (a request for it is still in flight at the deadline) or
  ``unknown`` (no answer by the deadline).

The order of an op is its token; for a replace, its new token. Each query is
recorded in ``history`` (f ``query``) when one is given.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from harness.clients.http_client import ClientError, HttpClient
from harness.history import INFO, Op, pairs

NOT_FOUND, PENDING, UNKNOWN = "not_found", "pending", "unknown"
ORDER_FS = ("new", "replace", "cancel")

OrderKey = tuple[str, str]


def op_order(inv: Op) -> OrderKey:
    token = inv.value.get("new_token") if inv.f == "replace" else inv.value.get("token")
    return inv.value.get("account"), token


def open_orders(ops: Iterable[Op]) -> list[OrderKey]:
    """``(account, token)`` of every order op completed ``info`` or never completed."""
    out: dict[OrderKey, None] = {}
    for inv, done in pairs(ops):
        if inv.f in ORDER_FS and (done is None or done.type == INFO):
            out.setdefault(op_order(inv), None)
    return list(out)


def settle(target: Any, orders: Iterable[OrderKey] | Iterable[Op],
           accounts: Mapping[str, str] | None = None, history=None,
           process: int | str = "settle", deadline_s: float = 10.0, poll_s: float = 0.1,
           confirm_s: float = 0.5, timeout_s: float = 5.0) -> dict[OrderKey, str]:
    """See the module doc. ``target``: a ``Sut`` (its HTTP door and accounts) or a base URL;
    ``orders``: ``(account, token)`` keys, or history ops (their open orders are settled)."""
    if hasattr(target, "endpoints"):
        base_url = target.endpoints()["http"]
        accounts = accounts if accounts is not None else target.accounts()
    else:
        base_url = str(target)
    if base_url is None:
        raise ValueError("settle needs an HTTP door (GET /v1/orders/{token})")
    if accounts is None:
        raise ValueError("settle needs the accounts' passwords")
    items = list(orders)
    if items and isinstance(items[0], Op):
        keys = open_orders(op for op in items if isinstance(op, Op))
    else:
        keys = list(dict.fromkeys((str(a), str(t)) for a, t in items))  # type: ignore[misc]
    clients: dict[str, HttpClient] = {}
    result: dict[OrderKey, str] = {}
    first_missing: dict[OrderKey, float] = {}
    waiting = list(keys)
    deadline = time.monotonic() + deadline_s
    try:
        while waiting:
            again = []
            for key in waiting:
                account, token = key
                if account not in accounts:
                    result[key] = UNKNOWN
                    continue
                client = clients.get(account)
                if client is None:
                    client = clients[account] = HttpClient(
                        base_url, account, accounts[account], history, process, timeout_s)
                status = _status(client, token)
                now = time.monotonic()
                if status == NOT_FOUND:
                    seen = first_missing.setdefault(key, now)
                    if now - seen >= confirm_s:
                        result[key] = NOT_FOUND
                        continue
                elif status not in (PENDING, UNKNOWN):
                    result[key] = status
                    continue
                result[key] = status
                again.append(key)
            waiting = again
            if waiting:
                if time.monotonic() >= deadline:
                    break
                time.sleep(poll_s)
    finally:
        for c in clients.values():
            c.close()
    return {k: result.get(k, UNKNOWN) for k in keys}


def _status(client: HttpClient, token: str) -> str:
    try:
        order = client.order(token)
    except ClientError:
        return UNKNOWN
    if order is None:
        return NOT_FOUND
    state = order.get("state")
    return str(state) if state else UNKNOWN


__all__ = ["NOT_FOUND", "PENDING", "UNKNOWN", "open_orders", "op_order", "settle"]
