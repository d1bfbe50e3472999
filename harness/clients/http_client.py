"""A blocking HTTP/JSON door client that records every order op in a ``History``.

One ``HttpClient`` is one Jepsen process: one account, one thread at a time,
one keep-alive connection (``http.client``). For concurrency, run several
clients in threads.

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

A reused keep-alive connection is checked before each request (a readable
idle socket means the server closed it) and reopened, so a restarted server
costs a reconnect rather than a spurious ``info``.
"""

from __future__ import annotations

import base64
import http.client
import json
import select
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from harness.history import FAIL, INFO, OK, History, Op

DOOR = "http"
OUTCOME_TYPES = {"new": ("accepted", "rejected"), "replace": ("replaced", "rejected"),
                 "cancel": ("canceled", "rejected")}


class ClientError(RuntimeError):
    """A query (not an order op) could not be answered."""


class _NotSent(Exception):
    """No byte of the request reached the server."""


class _Unknown(Exception):
    """The request may have reached the server; its fate is unknown."""


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


@dataclass(slots=True)
class Event:
    """One Server-Sent Event of ``GET /v1/events``."""

    id: int | None
    event: str
    data: dict[str, Any] = field(default_factory=dict)


class EventStream:
    """``GET /v1/events`` as an iterator of ``Event``; a read timeout ends it (reopen with
    ``last_event_id``)."""

    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse) -> None:
        self.conn, self.resp = conn, resp
        self.last_id: int | None = None

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        ev = self.next()
        if ev is None:
            raise StopIteration
        return ev

    def next(self) -> Event | None:
        """The next event (None at the end of the stream); ``TimeoutError`` if none comes."""
        fields: dict[str, str] = {}
        while True:
            line = self.resp.readline()
            if not line:
                return None
            text = line.decode("utf-8").rstrip("\r\n")
            if text == "":
                if "data" in fields:
                    ev_id = int(fields["id"]) if fields.get("id", "").isdigit() else None
                    self.last_id = ev_id if ev_id is not None else self.last_id
                    return Event(ev_id, fields.get("event", "message"), json.loads(fields["data"]))
                fields = {}
                continue
            if text.startswith(":"):
                continue  # a comment: keepalive
            name, _, value = text.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data" and "data" in fields:
                value = fields["data"] + "\n" + value  # multi-line data joins with newlines
            fields[name] = value

    def close(self) -> None:
        self.conn.close()


class HttpClient:
    """See the module doc."""

    def __init__(self, base_url: str, account: str, password: str,
                 history: History | None = None, process: int | str = 0,
                 timeout_s: float = 10.0, keep_alive: bool = True) -> None:
        url = urlsplit(base_url)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"need an http:// base URL (got {base_url!r})")
        self.host, self.port = url.hostname, url.port or 80
        self.prefix = url.path.rstrip("/")
        self.account = account
        self.history = history
        self.process = process
        self.timeout_s = timeout_s
        self.keep_alive = keep_alive
        token = base64.b64encode(f"{account}:{password}".encode()).decode()
        self._auth = f"Basic {token}"
        self._conn: http.client.HTTPConnection | None = None

    # -------------------------------------------------------------- transport

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _usable(self) -> http.client.HTTPConnection | None:
        conn = self._conn
        if conn is None or conn.sock is None:
            return None
        try:
            readable, _, _ = select.select([conn.sock], [], [], 0)
        except (OSError, ValueError):
            readable = [True]
        if readable:  # an idle keep-alive socket only becomes readable when the server closed it
            self.close()
            return None
        return conn

    def _exchange(self, method: str, path: str, body: dict | None = None,
                  timeout_s: float | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = self._usable()
        if conn is None:
            conn = http.client.HTTPConnection(self.host, self.port,
                                              timeout=timeout_s or self.timeout_s)
            try:
                conn.connect()
            except OSError as exc:
                conn.close()
                raise _NotSent(f"{type(exc).__name__}: {exc}") from None
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._conn = conn
        conn.sock.settimeout(timeout_s or self.timeout_s)
        headers = {"Authorization": self._auth}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, self.prefix + path, body=data, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
        except TimeoutError:
            self.close()
            raise _Unknown("timeout") from None
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise _Unknown(f"{type(exc).__name__}: {exc}") from None
        if not self.keep_alive or resp.will_close:
            self.close()
        return resp.status, dict(resp.headers), payload

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
            status, headers, payload = self._exchange(method, path, body)
        except _NotSent as exc:
            return FAIL, {"outputs": [], "status": None, "reason": f"not sent: {exc}"}
        except _Unknown as exc:
            return INFO, {"outputs": [], "status": None, "reason": str(exc)}
        try:
            doc = json.loads(payload) if payload else {}
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            doc = {"error": {"code": None, "field": None, "message": payload[:200].decode(
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
                done["retry_after"] = headers.get("Retry-After")
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
            status, _, payload = self._exchange("GET", path)
        except (_NotSent, _Unknown) as exc:
            raise ClientError(f"GET {path}: {exc}") from None
        try:
            return status, json.loads(payload)
        except ValueError:
            raise ClientError(f"GET {path}: {status} with a body that is not JSON") from None

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
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout_s or self.timeout_s)
        headers = {"Authorization": self._auth, "Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        try:
            conn.request("GET", self.prefix + "/v1/events", headers=headers)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise ClientError(f"GET /v1/events: {type(exc).__name__}: {exc}") from None
        if resp.status != 200:
            body = resp.read()[:200]
            conn.close()
            raise ClientError(f"GET /v1/events: status {resp.status}: {body!r}")
        return EventStream(conn, resp)
