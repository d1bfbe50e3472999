"""The SUT's doors for the suites that talk to them directly (bad input, auth, backpressure).

The clients are the kit's one HTTP client and one SoupBinTCP client
(``harness.clients.HttpConnection``, ``harness.clients.SoupBinClient``),
which also send what a proper client would not (raw request bytes, garbage
connections, malformed SoupBinTCP frames). Here: the way to a SUT's door,
``N/A`` for a SUT without it (``http_door``, ``ouch_door``), and one valid
order through the HTTP door (``valid_order_roundtrip``).
"""

from __future__ import annotations

from _support import na

from harness.clients import HttpConnection, SoupBinClient
from harness.sut.base import Sut

HTTP_TIMEOUT_S = 2.0  #: a request unanswered this long is ``info`` (outcome unknown)
OUCH_TIMEOUT_S = 2.0


def http_url(sut: Sut) -> str:
    """The HTTP door's base URL (``N/A`` without one)."""
    url = sut.endpoints().get("http")
    if not url:
        na(f"{sut.name} has no HTTP door")
    return url


def http_door(sut: Sut, auth: tuple[str, str] | None = None,
              timeout_s: float = HTTP_TIMEOUT_S) -> HttpConnection:
    """A keep-alive connection to the HTTP door, with ``auth`` on every request if given."""
    return HttpConnection.from_url(http_url(sut), auth, timeout_s=timeout_s)


def ouch_address(sut: Sut) -> tuple[str, int]:
    addr = sut.endpoints().get("ouch")
    if not addr:
        na(f"{sut.name} has no OUCH door")
    return tuple(addr)  # type: ignore[return-value]


def ouch_door(sut: Sut, timeout_s: float = OUCH_TIMEOUT_S) -> SoupBinClient:
    """A new SoupBinTCP connection to the OUCH door, not logged in."""
    return SoupBinClient(*ouch_address(sut), timeout_s=timeout_s)


def valid_order_roundtrip(sut: Sut, token: str) -> tuple[int, list]:
    """One valid order through the HTTP door: ``(status, outputs)`` (0 and the error if none)."""
    account, password = next(iter(sut.accounts().items()))
    symbol = next(iter(sut.instruments()), "ACME")
    body = {"token": token, "symbol": symbol, "side": "S", "qty": 1,
            "price": 10_000 * sut.instruments().get(symbol, 100)}
    with http_door(sut, (account, password), timeout_s=5.0) as door:
        try:
            reply = door.request("POST", "/v1/orders", body)
        except OSError as exc:
            return 0, [str(exc)]
    return reply.status, reply.doc().get("outputs", [])
