"""The one HTTP client: a blocking keep-alive connection to an HTTP/JSON door.

The harness's recorded client (``http_client.HttpClient``), the suites and
the tests all speak to the HTTP door through ``HttpConnection``. It does no
interpretation beyond HTTP/1.1 itself: ``request()`` returns a ``Reply``
(status, headers, raw bytes, the body as JSON when it is JSON, and the
latency the client measured), whatever the status. What went wrong on the
way is one of two exceptions, because the history needs to tell them apart:

- ``NotSent``: the connection could not be opened; no byte of the request
  left (refused, no route);
- ``NoAnswer``: the request may have reached the server, but no complete
  answer came (timeout, reset, closed mid-request, not HTTP).

Both are ``ConnectionError``s. A reused keep-alive connection is checked
before each request (an idle socket only becomes readable when the server
closed it) and reopened, so a restarted server costs a reconnect, not a
``NoAnswer``.

For the bad-input suites, ``send_raw(bytes)`` writes a request exactly as
given on the same keep-alive connection and reads the status, and
``send_garbage(bytes)`` writes bytes on a connection of its own, half-closes
it and reads until the server closes. ``events()`` opens ``GET /v1/events``
(Server-Sent Events) on a connection of its own.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

RECV_BYTES = 65536


class NotSent(ConnectionError):
    """No byte of the request reached the server."""


class NoAnswer(ConnectionError):
    """The request may have reached the server; no complete answer came."""


class ClientError(RuntimeError):
    """A query (not an order op) could not be answered."""


def basic_auth(account: str, password: str) -> str:
    """The ``Authorization`` header value for HTTP Basic credentials."""
    return "Basic " + base64.b64encode(f"{account}:{password}".encode()).decode()


def split_url(base_url: str) -> tuple[str, int, str]:
    """``(host, port, path prefix)`` of an ``http://`` base URL."""
    url = urlsplit(base_url)
    if url.scheme != "http" or not url.hostname:
        raise ValueError(f"need an http:// base URL (got {base_url!r})")
    return url.hostname, url.port or 80, url.path.rstrip("/")


class Reply:
    """One HTTP response: ``body`` is the parsed JSON, the raw bytes if not JSON, None if empty."""

    __slots__ = ("body", "data", "headers", "latency_s", "status")

    def __init__(self, status: int, headers: dict[str, str], data: bytes,
                 latency_s: float) -> None:
        self.status, self.headers, self.data, self.latency_s = status, headers, data, latency_s
        body: Any = None
        if data:
            try:
                body = json.loads(data)
            except ValueError:
                body = data
        self.body = body

    def doc(self) -> dict[str, Any]:
        """The body if it is a JSON object, else an empty one."""
        return self.body if isinstance(self.body, dict) else {}

    def __repr__(self) -> str:
        return f"Reply({self.status}, {self.body!r:.200})"


@dataclass(slots=True)
class Event:
    """One Server-Sent Event of ``GET /v1/events``."""

    id: int | None
    event: str
    data: dict[str, Any] = field(default_factory=dict)


class EventStream:
    """``GET /v1/events`` as an iterator of ``Event``; a read timeout ends it (reopen with
    ``last_event_id``). ``comments`` counts the comment lines (keepalives) seen."""

    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse) -> None:
        self.conn, self.resp = conn, resp
        self.last_id: int | None = None
        self.comments = 0

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
                self.comments += 1  # a comment: keepalive
                continue
            name, _, value = text.partition(":")
            value = value.removeprefix(" ")
            if name == "data" and "data" in fields:
                value = fields["data"] + "\n" + value  # multi-line data joins with newlines
            fields[name] = value

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.sock.shutdown(socket.SHUT_RDWR)  # a reader blocked in readline sees EOF
        self.conn.close()


class HttpConnection:
    """See the module doc. ``auth`` (account, password) goes on every request unless a
    request's ``headers`` carry their own ``Authorization``."""

    def __init__(self, host: str, port: int, auth: tuple[str, str] | None = None,
                 timeout_s: float = 10.0, keep_alive: bool = True, prefix: str = "") -> None:
        self.host, self.port, self.prefix = host, port, prefix
        self.timeout_s, self.keep_alive = timeout_s, keep_alive
        self.auth = {"Authorization": basic_auth(*auth)} if auth is not None else {}
        self._conn: http.client.HTTPConnection | None = None

    @classmethod
    def from_url(cls, base_url: str, auth: tuple[str, str] | None = None,
                 **kw: Any) -> HttpConnection:
        host, port, prefix = split_url(base_url)
        return cls(host, port, auth, prefix=prefix, **kw)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> HttpConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------- the connection

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

    def _connection(self, timeout_s: float | None) -> http.client.HTTPConnection:
        conn = self._usable()
        if conn is None:
            conn = http.client.HTTPConnection(self.host, self.port,
                                              timeout=timeout_s or self.timeout_s)
            try:
                conn.connect()
            except OSError as exc:
                conn.close()
                raise NotSent(f"{type(exc).__name__}: {exc}") from None
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._conn = conn
        conn.sock.settimeout(timeout_s or self.timeout_s)
        return conn

    def _answer(self, resp: http.client.HTTPResponse, t0: float) -> Reply:
        data = resp.read()
        reply = Reply(resp.status, dict(resp.getheaders()), data, time.monotonic() - t0)
        if not self.keep_alive or resp.will_close:
            self.close()
        return reply

    # -------------------------------------------------------------- requests

    def request(self, method: str, path: str, body: Any = None, raw: bytes | None = None,
                headers: dict[str, str] | None = None, timeout_s: float | None = None) -> Reply:
        """``body`` is sent as JSON, ``raw`` as it is (both as ``application/json`` unless
        ``headers`` say otherwise); ``NotSent`` or ``NoAnswer`` when no reply came."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        hdrs = dict(self.auth)
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        conn = self._connection(timeout_s)
        t0 = time.monotonic()
        try:
            conn.request(method, self.prefix + path, body=data, headers=hdrs)
            return self._answer(conn.getresponse(), t0)
        except TimeoutError:
            self.close()
            raise NoAnswer("timeout") from None
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise NoAnswer(f"{type(exc).__name__}: {exc}") from None

    def send_raw(self, data: bytes, method: str) -> Reply | None:
        """Request bytes exactly as given, on the keep-alive connection (``method`` tells the
        parser whether a body follows); the reply, None if the server answered nothing readable."""
        conn = self._connection(None)
        t0 = time.monotonic()
        try:
            conn.sock.sendall(data)
            resp = http.client.HTTPResponse(conn.sock, method=method)
            resp.begin()
            return self._answer(resp, t0)
        except (OSError, http.client.HTTPException):
            self.close()
            return None

    def send_garbage(self, data: bytes) -> None:
        """Bytes on a fresh connection, then EOF; read until the server closes."""
        with socket.create_connection((self.host, self.port), timeout=self.timeout_s) as sock:
            try:
                sock.sendall(data)
                sock.shutdown(socket.SHUT_WR)
                while sock.recv(RECV_BYTES):
                    pass
            except OSError:
                pass

    def events(self, last_event_id: int | None = None,
               timeout_s: float | None = None) -> EventStream:
        """``GET /v1/events`` on a connection of its own (None: new events only)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout_s or self.timeout_s)
        headers = {**self.auth, "Accept": "text/event-stream"}
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
