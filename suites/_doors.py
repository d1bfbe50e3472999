"""Bare clients for the doors, for the suites that send what a proper client would not.

``HttpSession`` is one keep-alive HTTP connection that hands back status,
headers and raw body (``basic_auth`` builds its credentials, ``json_of``
reads a body that may not be JSON; ``valid_order_roundtrip`` sends one valid
order through it); ``RawHttp`` writes raw request bytes (or garbage on a
connection of its own) and reads only the status; ``OuchSession`` is a bare
SoupBinTCP 3.0 client that sends packets or raw bytes and reads packets or
EOF. A SUT without the door is ``N/A`` (``http_address``, ``ouch_address``).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import socket
from typing import Any

from _support import na

from harness.sut.base import Sut

HTTP_TIMEOUT_S = 2.0  #: a request unanswered this long is ``info`` (outcome unknown)

# ------------------------------------------------------------------ HTTP


def basic_auth(account: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{account}:{password}".encode()).decode()


def http_address(sut: Sut) -> tuple[str, int]:
    url = sut.endpoints().get("http")
    if not url:
        na(f"{sut.name} has no HTTP door")
    hostport = url.split("://", 1)[-1].split("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    return host, int(port)


class HttpSession:
    """One keep-alive connection; reconnects after an error."""

    def __init__(self, host: str, port: int, timeout_s: float = HTTP_TIMEOUT_S) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
        try:
            self.conn.request(method, path, body=body, headers=headers or {})
            resp = self.conn.getresponse()
            data = resp.read()
            return resp.status, dict(resp.getheaders()), data
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def json_of(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


class RawHttp:
    """One keep-alive socket; a new one whenever the server closes."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.sock: socket.socket | None = None

    def exchange(self, data: bytes, method: str) -> int | None:
        if self.sock is None:
            self.sock = socket.create_connection(self.address, timeout=3.0)
        try:
            self.sock.sendall(data)
            resp = http.client.HTTPResponse(self.sock, method=method)
            resp.begin()
            resp.read()
            if resp.will_close:
                self.close()
            return resp.status
        except (OSError, http.client.HTTPException):
            self.close()
            return None

    def garbage(self, data: bytes) -> None:
        """Raw bytes on a fresh connection, then EOF; read until the server closes."""
        with socket.create_connection(self.address, timeout=3.0) as sock:
            try:
                sock.sendall(data)
                sock.shutdown(socket.SHUT_WR)
                while sock.recv(65536):
                    pass
            except OSError:
                pass

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def valid_order_roundtrip(sut: Sut, token: str) -> tuple[int, list]:
    """One valid order through the HTTP door: ``(status, outputs)`` (0 and the error if none)."""
    account, password = next(iter(sut.accounts().items()))
    symbol = next(iter(sut.instruments()), "ACME")
    session = HttpSession(*http_address(sut), timeout_s=5.0)
    try:
        status, _, data = session.request(
            "POST", "/v1/orders",
            json.dumps({"token": token, "symbol": symbol, "side": "S", "qty": 1,
                        "price": 10_000 * sut.instruments().get(symbol, 100)}).encode(),
            {"Authorization": basic_auth(account, password),
             "Content-Type": "application/json"})
    except OSError as exc:
        return 0, [str(exc)]
    finally:
        session.close()
    return status, (json_of(data) or {}).get("outputs", [])


# ------------------------------------------------------------------ OUCH / SoupBinTCP


class OuchSession:
    """A bare SoupBinTCP 3.0 client: send packets or raw bytes, read packets or EOF."""

    def __init__(self, address: tuple[str, int], timeout_s: float = 2.0) -> None:
        from reference_impl.core import soupbin_codec

        self.sb = soupbin_codec
        self.sock = socket.create_connection(address, timeout=timeout_s)
        self.framer = soupbin_codec.SoupBinFramer(from_client=False)
        self.queue: list = []

    def login(self, account: str, password: str, session: str = "", seq: int = 0) -> Any:
        self.send(self.sb.LoginRequest(account, password, session, seq))
        return self.next()

    def send(self, packet: Any) -> None:
        self.sock.sendall(self.sb.encode(packet))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def next(self, skip_heartbeats: bool = True) -> Any:
        """The next server packet; None once the server closed the connection."""
        while True:
            while self.queue:
                packet = self.queue.pop(0)
                if not (skip_heartbeats and isinstance(packet, self.sb.ServerHeartbeat)):
                    return packet
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                return None
            if not data:
                return None
            self.queue += self.framer.feed(data)

    def until_closed(self) -> list:
        """Every packet the server sends before it closes the connection (raises on timeout)."""
        seen = []
        while (packet := self.next()) is not None:
            seen.append(packet)
        return seen

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def ouch_address(sut: Sut) -> tuple[str, int]:
    addr = sut.endpoints().get("ouch")
    if not addr:
        na(f"{sut.name} has no OUCH door")
    return tuple(addr)  # type: ignore[return-value]
