"""A blocking HTTP/JSON door client that records every order op in a ``History``.

One ``HttpClient`` is one Jepsen process: one account, one thread at a time,
one keep-alive connection (``http_connection.HttpConnection``, the one HTTP
client, which also tells "not sent" from "no answer"). For concurrency, run
several clients in threads.

How an exchange becomes a history op (docs/checkers.md, "History convention"):

- invoke value: ``door``, ``account``, ``token`` and the request's fields
  (a replace also ``new_token``); completion value: ``outputs`` (the
  replay-format output dicts of the response), ``status`` and, when there is
  one, ``error`` or ``reason``, and the SUT's ``stages``;
- **ok**: 200 whose outputs hold the request's outcome other than a reject
  (the engine accepted, replaced or canceled it);
- **fail**: the request definitely did not happen: a 200 whose outcome is
  ``rejected`` (stateful engine rejects), any 4xx (stateless reject, 429
  backpressure, auth), or a connection that could not be opened (refused,
  no route: not one byte of the request left);
- **info** (unknown): a timeout after sending, a connection reset or closed
  mid-request, a 504, any other 5xx, a 200 that is not the documented JSON.

A keep-alive connection the server closed while idle is reopened before the
next request (``HttpConnection``), so a restarted server costs a reconnect
rather than a spurious ``info``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from harness.clients.http_connection import ClientError, EventStream, HttpConnection, NoAnswer, NotSent
from harness.history import FAIL, INFO, OK, History, Op

DOOR = "http"
OUTCOME_TYPES = {"new": ("accepted", "rejected"), "replace": ("replaced", "rejected"),
                 "cancel": ("canceled", "rejected")}


@dataclass(frozen=True, slots=True)
class Result:
    """One order op's completion, as recorded (``invoke``/``complete`` None without a history)."""

    type: str  #: ok | fail | info
    value: dict[str, Any]
    invoke: Op | None = None
    complete: Op | None = None

    @property
    def outputs(self) -> list[dict]:
        return list(self.value.get("outputs") or [])

    @property
    def ok(self) -> bool:
        return self.type == OK


def classify(f: str, token: str, outputs: list[dict]) -> str:
    """``ok`` or ``fail`` for a 200: fail when the request's outcome is a reject."""
    for o in outputs:
        if o.get("token") == token and o.get("type") == "rejected" and f in OUTCOME_TYPES:
            return FAIL
    return OK


class HttpClient:
    """See the module doc."""

    def __init__(self, base_url: str, account: str, password: str,
                 history: History | None = None, process: int | str = 0,
                 timeout_s: float = 10.0, keep_alive: bool = True) -> None:
        self.http = HttpConnection.from_url(base_url, (account, password), timeout_s=timeout_s,
                                            keep_alive=keep_alive)
        self.account = account
        self.history = history
        self.process = process

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------- order ops

    def _op(self, f: str, invoke: dict[str, Any], method: str, path: str,
            body: dict | None, token: str) -> Result:
        value = {"door": DOOR, "account": self.account, **invoke}
        inv = self.history.invoke(self.process, f, value) if self.history else None
        type_, done = self._outcome(f, token, method, path, body)
        comp = self.history.complete(inv, type_, done) if inv is not None else None
        return Result(type_, done, inv, comp)

    def _outcome(self, f: str, token: str, method: str, path: str,
                 body: dict | None) -> tuple[str, dict[str, Any]]:
        try:
            reply = self.http.request(method, path, body)
        except NotSent as exc:
            return FAIL, {"outputs": [], "status": None, "reason": f"not sent: {exc}"}
        except NoAnswer as exc:
            return INFO, {"outputs": [], "status": None, "reason": str(exc)}
        status, doc = reply.status, reply.body if reply.data else {}
        if not isinstance(doc, dict):
            doc = {"error": {"code": None, "field": None, "message": reply.data[:200].decode(
                "utf-8", "replace")}} if 400 <= status < 500 else None
        if doc is None:
            return INFO, {"outputs": [], "status": status, "reason": "response is not a JSON object"}
        if status == 200:
            outputs = doc.get("outputs")
            if not isinstance(outputs, list):
                return INFO, {"outputs": [], "status": status, "reason": "200 without outputs"}
            done = {"outputs": outputs, "status": status}
            if isinstance(doc.get("stages"), dict):
                done["stages"] = doc["stages"]
            return classify(f, token, outputs), done
        done = {"outputs": [], "status": status, "error": doc.get("error")}
        if 400 <= status < 500:
            if status == 429:
                done["retry_after"] = reply.headers.get("Retry-After")
            return FAIL, done
        return INFO, done  # 504 timeout, any other 5xx: unknown

    def new_order(self, token: str, symbol: str, side: str, qty: int, price: int | None = None,
                  ord_type: str = "limit", tif: str = "DAY", min_qty: int | None = None) -> Result:
        body: dict[str, Any] = {"token": token, "symbol": symbol, "side": side, "qty": qty}
        if price is not None:
            body["price"] = price
        body["ord_type"] = ord_type
        body["tif"] = tif
        if min_qty is not None:
            body["min_qty"] = min_qty
        return self._op("new", body, "POST", "/v1/orders", body, token)

    def cancel(self, token: str, qty: int = 0) -> Result:
        """Cancel down to the intended size ``qty`` (executed shares count; 0: cancel all)."""
        return self._op("cancel", {"token": token, "qty": qty}, "DELETE",
                        f"/v1/orders/{quote(token, safe='')}?qty={qty}", None, token)

    def replace(self, token: str, new_token: str, qty: int, price: int) -> Result:
        body = {"new_token": new_token, "qty": qty, "price": price}
        return self._op("replace", {"token": token, **body}, "POST",
                        f"/v1/orders/{quote(token, safe='')}/replace", body, new_token)

    # -------------------------------------------------------------- queries

    def _get(self, path: str) -> tuple[int, Any]:
        try:
            reply = self.http.request("GET", path)
        except (NotSent, NoAnswer) as exc:
            raise ClientError(f"GET {path}: {exc}") from None
        if not reply.data or isinstance(reply.body, bytes):
            raise ClientError(f"GET {path}: {reply.status} with a body that is not JSON")
        return reply.status, reply.body

    def order(self, token: str) -> dict[str, Any] | None:
        """``GET /v1/orders/{token}``: the order's state, None for 404; recorded as f ``query``."""
        inv = (self.history.invoke(self.process, "query",
                                   {"door": DOOR, "account": self.account, "token": token})
               if self.history else None)
        try:
            status, doc = self._get(f"/v1/orders/{quote(token, safe='')}")
            if status not in (200, 404):
                raise ClientError(f"GET /v1/orders/{token}: status {status}: {doc}")
        except ClientError as exc:
            if inv is not None:
                self.history.complete(inv, INFO, {"reason": str(exc)})  # type: ignore[union-attr]
            raise
        found = doc if status == 200 else None
        if inv is not None:
            self.history.complete(inv, OK, {"order": found})  # type: ignore[union-attr]
        return found

    def orders(self, state: str = "all") -> list[dict[str, Any]]:
        status, doc = self._get(f"/v1/orders?state={quote(state)}")
        if status != 200 or not isinstance(doc, dict):
            raise ClientError(f"GET /v1/orders?state={state}: status {status}: {doc}")
        return list(doc.get("orders", []))

    def health(self) -> dict[str, Any]:
        status, doc = self._get("/v1/health")
        if status != 200:
            raise ClientError(f"GET /v1/health: status {status}: {doc}")
        return doc

    def events(self, last_event_id: int | None = None,
               timeout_s: float | None = None) -> EventStream:
        """``GET /v1/events`` on a connection of its own (None: new events only)."""
        return self.http.events(last_event_id, timeout_s)


__all__ = ["ClientError", "HttpClient", "Result", "classify"]
