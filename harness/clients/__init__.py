"""Clients for the SUT's doors: one per protocol, used by the harness, the suites and the tests.

The wire clients speak a door and nothing more (the suites and the tests use
them as they are, malformed bytes included):

- ``HttpConnection`` (``http_connection``): one keep-alive HTTP/1.1
  connection; ``Reply`` per request, ``NotSent`` / ``NoAnswer`` when none
  came, raw request bytes, Server-Sent Events;
- ``SoupBinClient`` (``soupbin_client``): one SoupBinTCP 3.0 connection;
  packets, OUCH 4.2 messages or raw bytes out, packets in.

The recorded clients are one Jepsen process each, built on those; each order
op is recorded in a ``harness.history.History``:

- ``HttpClient`` (``http_client``): the HTTP/JSON door, one thread at a time;
- ``OuchClient`` (``ouch_client``): SoupBinTCP + OUCH, a reader thread per session;
- ``settle`` (``settle``): the final state of the orders that ops left open.

Both record the same vocabulary (docs/checkers.md, "History convention"):
invoke values hold ``door``, ``account``, ``token`` (a replace also ``new_token``)
and the request's fields; completions hold ``outputs``, replay-format output
dicts; ok = acknowledged, fail = definitely not done, info = unknown.
"""

from harness.clients.http_client import HttpClient, Result
from harness.clients.http_connection import (
    ClientError,
    HttpConnection,
    NoAnswer,
    NotSent,
    Reply,
    basic_auth,
)
from harness.clients.ouch_client import OuchClient, Ticket
from harness.clients.settle import open_orders, settle
from harness.clients.soupbin_client import LoginRejectedError, SoupBinClient

__all__ = ["ClientError", "HttpClient", "HttpConnection", "LoginRejectedError", "NoAnswer",
           "NotSent", "OuchClient", "Reply", "Result", "SoupBinClient", "Ticket", "basic_auth",
           "open_orders", "settle"]
