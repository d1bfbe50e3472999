"""A SoupBinTCP 3.0 / OUCH 4.2 client that records every order op in a ``History``.

Theory of operation
-------------------
``connect()`` opens a ``SoupBinClient`` (the one SoupBinTCP client, in
``soupbin_client``) and logs in (username = account, password, requested
session, requested sequence number; blank and 0 mean the current session
from the next message). Then a reader thread owns the receiving side: it
reads whole packets from the connection (``SoupBinClient.receive``), numbers each
Sequenced Data message (from Login Accepted's number, so ``next_seq`` is
what a resume asks for), maps it to a replay-format output dict
(``ouch_map``), appends it to ``stream()``, and hands any outcome to the
request waiting for it (``ouch_map.Matcher``). It also sends a Client
Heartbeat after ``heartbeat_s`` without sending anything.

Requests go out as Unsequenced Data. ``submit_*`` records the invoke,
registers the request with the matcher *before* sending (an answer cannot
outrun it) and returns a ``Ticket``; ``wait(ticket)`` returns its ``Result``.
``new_order`` / ``cancel`` / ``replace`` do both. Completions (values as in
``http_client``: ``outputs`` and ``out_seq``, or ``reason``):

- **ok**: Order Accepted / Replaced, or Order Canceled (reason user);
- **fail**: Order Rejected or Cancel Reject; or the request never left
  (not connected, or a field OUCH cannot carry);
- **info**: no outcome within the timeout, the connection was lost or closed
  with the request pending, or the send itself failed part-way.

An op completed ``info`` on timeout stays in the matcher: if its outcome
arrives later it is kept in ``late`` (the history op is not completed twice;
the final order state, see ``settle``, decides it).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any

from harness.clients import ouch_map
from harness.clients.http_client import Result
from harness.clients.soupbin_client import LoginRejectedError, SoupBinClient
from harness.history import FAIL, INFO, OK, History, Op
from reference_impl.core import ouch_codec
from reference_impl.core import soupbin_codec as sb
from reference_impl.core.errors import DecodeError

DOOR = "ouch"
POLL_S = 0.1


class Ticket:
    """One request sent (or refused); ``result`` once completed."""

    __slots__ = ("f", "token", "value", "invoke", "result", "done", "expired", "late")

    def __init__(self, f: str, value: dict[str, Any], invoke: Op | None) -> None:
        self.f, self.value, self.invoke = f, value, invoke
        self.token = ouch_map.request_token(f, value)
        self.result: Result | None = None
        self.done = threading.Event()
        self.expired = False  #: completed info on timeout; a later outcome is only "late"
        self.late: list[dict] = []


class OuchClient:
    """See the module doc. One account per client; thread-safe."""

    def __init__(self, host: str, port: int, account: str, password: str,
                 history: History | None = None, process: int | str = 0,
                 timeout_s: float = 10.0, heartbeat_s: float = 1.0) -> None:
        self.host, self.port = host, port
        self.account, self.password = account, password
        self.history, self.process = history, process
        self.timeout_s, self.heartbeat_s = timeout_s, heartbeat_s
        self.session = ""
        self.next_seq = 1  #: the sequence number of the next Sequenced Data message
        self.closed_reason: str | None = "not connected"
        self.debug: list[str] = []  #: Debug packets from the server (why it closed, ...)
        self.late: list[tuple[int | None, dict]] = []  #: (invoke index, outcome) after a timeout
        self.undecodable = 0
        self._stream: list[tuple[int, dict]] = []
        self._lock = threading.RLock()
        self._send_lock = threading.Lock()
        self._matcher = ouch_map.Matcher()
        self._conn: SoupBinClient | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._last_send = 0.0

    # -------------------------------------------------------------- session

    def connect(self, session: str = "", sequence: int = 0) -> int:
        """Log in; returns Login Accepted's sequence number (the first message this session
        will number). Raises ``LoginRejectedError``, ``ConnectionError`` or ``OSError``."""
        if self._thread is not None:
            raise RuntimeError("already connected")
        conn = SoupBinClient(self.host, self.port, self.timeout_s)
        try:
            conn.send(sb.LoginRequest(self.account, self.password, session, sequence))
            accepted = conn.logged_in()
        except BaseException:
            conn.close()
            raise
        finally:
            self.debug += conn.debug
        with self._lock:
            self._conn = conn
            self.session, self.next_seq = accepted.session, accepted.sequence_number
            self.closed_reason = None
            self._last_send = time.monotonic()
            self._stop.clear()
        self._thread = threading.Thread(target=self._read_loop, name=f"ouch-{self.account}",
                                        daemon=True)
        self._thread.start()
        return accepted.sequence_number

    def reconnect(self) -> int:
        """Log in again after a lost connection, resuming at ``next_seq`` of this session;
        a server that no longer has the session (restarted) is joined afresh."""
        self.close()
        try:
            return self.connect(self.session, self.next_seq)
        except LoginRejectedError as exc:
            if exc.reason != sb.LOGIN_REJECT_SESSION_UNAVAILABLE:
                raise
        return self.connect()

    def logout(self, wait_s: float = 2.0) -> None:
        """Logout Request, then wait for the server to close."""
        try:
            self._send(sb.encode(sb.LogoutRequest()))
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(wait_s)
        self.close()

    def close(self) -> None:
        """Close the connection; requests still pending complete ``info``."""
        self._stop.set()
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5.0)
        self._thread = None
        self._lost("client closed the connection")
        if conn is not None:
            conn.close()
        self._conn = None

    def __enter__(self) -> OuchClient:
        if self._conn is None:
            self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        return self.closed_reason is None

    def stream(self) -> list[tuple[int, dict]]:
        """Every order event received so far: ``(sequence number, output dict)``."""
        with self._lock:
            return list(self._stream)

    # -------------------------------------------------------------- reading

    def _read_loop(self) -> None:
        conn = self._conn
        assert conn is not None
        while not self._stop.is_set():
            try:
                packets = conn.receive(POLL_S)
            except TimeoutError:
                packets = []
            except OSError as exc:
                self._lost(f"connection lost: {type(exc).__name__}: {exc}")
                return
            except DecodeError as exc:
                self._lost(f"protocol error from the server: {exc}")
                return
            if packets is None:
                why = f" ({self.debug[-1]})" if self.debug else ""
                self._lost("connection closed by the server" + why)
                return
            if packets:
                with self._lock:
                    self._on_packets(packets)
            if time.monotonic() - self._last_send >= self.heartbeat_s:
                try:
                    self._send(sb.encode(sb.ClientHeartbeat()))
                except OSError:
                    pass  # the next read tells

    def _on_packets(self, packets: list) -> None:
        for p in packets:
            kind = type(p)
            if kind is sb.SequencedData:
                seq = self.next_seq
                self.next_seq += 1
                try:
                    msg = ouch_codec.decode_outbound(p.payload)
                except DecodeError:
                    self.undecodable += 1
                    continue
                out = ouch_map.output_from_ouch(msg, self.account)
                if out is None:
                    continue
                self._stream.append((seq, out))
                ticket = self._matcher.on_output(out)
                if ticket is not None:
                    if ticket.expired:
                        ticket.late.append(out)
                        self.late.append((ticket.invoke.index if ticket.invoke else None, out))
                    else:
                        self._complete(ticket, FAIL if out["type"] == "rejected" else OK,
                                       {"outputs": [out], "out_seq": seq})
            elif kind is sb.Debug:
                self.debug.append(p.text)
            elif kind is sb.EndOfSession:
                self.debug.append("end of session")

    def _lost(self, reason: str) -> None:
        with self._lock:
            if self.closed_reason is None:
                self.closed_reason = reason
            pending = self._matcher.remove_if(lambda t: True)
            for t in pending:
                if not t.expired:
                    self._complete(t, INFO, {"outputs": [], "reason": reason})

    # -------------------------------------------------------------- requests

    def _complete(self, ticket: Ticket, type_: str, value: dict[str, Any]) -> None:
        with self._lock:
            if ticket.result is not None:
                return
            comp = (self.history.complete(ticket.invoke, type_, value)
                    if self.history is not None and ticket.invoke is not None else None)
            ticket.result = Result(type_, value, ticket.invoke, comp)
            ticket.done.set()

    def _send(self, data: bytes) -> None:
        conn = self._conn
        if conn is None:
            raise OSError("not connected")
        with self._send_lock:
            conn.send_raw(data)
            self._last_send = time.monotonic()

    def _submit(self, f: str, fields: dict[str, Any], build) -> Ticket:
        value = {"door": DOOR, "account": self.account, **fields}
        inv = self.history.invoke(self.process, f, value) if self.history is not None else None
        ticket = Ticket(f, value, inv)
        try:
            payload = ouch_codec.encode(build())
        except ValueError as exc:
            self._complete(ticket, FAIL, {"outputs": [], "reason": f"not sent: {exc}"})
            return ticket
        with self._lock:
            if self.closed_reason is not None:
                self._complete(ticket, FAIL, {"outputs": [], "reason":
                                              f"not sent: {self.closed_reason}"})
                return ticket
            self._matcher.add(f, ticket.token, ticket)
        try:
            self._send(sb.encode(sb.UnsequencedData(payload)))
        except OSError as exc:  # some bytes may have left: unknown
            with self._lock:
                self._matcher.remove_if(lambda t: t is ticket)
                self._complete(ticket, INFO, {"outputs": [], "reason": f"send failed: {exc}"})
        return ticket

    def wait(self, ticket: Ticket, timeout_s: float | None = None) -> Result:
        """The ticket's result; ``info`` (reason timeout) if none within the timeout."""
        if not ticket.done.wait(self.timeout_s if timeout_s is None else timeout_s):
            with self._lock:
                if ticket.result is None:
                    ticket.expired = True
                    self._complete(ticket, INFO, {"outputs": [], "reason": "timeout"})
        assert ticket.result is not None
        return ticket.result

    def submit_new(self, token: str, symbol: str, side: str, qty: int, price: int | None = None,
                   ord_type: str = "limit", tif: str = "DAY",
                   min_qty: int | None = None) -> Ticket:
        fields: dict[str, Any] = {"token": token, "symbol": symbol, "side": side, "qty": qty}
        if price is not None:
            fields["price"] = price
        fields.update(ord_type=ord_type, tif=tif)
        if min_qty is not None:
            fields["min_qty"] = min_qty
        return self._submit("new", fields, lambda: ouch_map.enter_order(
            token, symbol, side, qty, price, ord_type, tif, min_qty))

    def submit_cancel(self, token: str, qty: int = 0) -> Ticket:
        return self._submit("cancel", {"token": token, "qty": qty},
                            lambda: ouch_map.cancel_order(token, qty))

    def submit_replace(self, token: str, new_token: str, qty: int, price: int) -> Ticket:
        return self._submit("replace", {"token": token, "new_token": new_token, "qty": qty,
                                        "price": price},
                            lambda: ouch_map.replace_order(token, new_token, qty, price))

    def new_order(self, *args: Any, **kwargs: Any) -> Result:
        return self.wait(self.submit_new(*args, **kwargs))

    def cancel(self, token: str, qty: int = 0) -> Result:
        return self.wait(self.submit_cancel(token, qty))

    def replace(self, token: str, new_token: str, qty: int, price: int) -> Result:
        return self.wait(self.submit_replace(token, new_token, qty, price))
