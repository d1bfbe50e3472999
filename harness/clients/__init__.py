"""Clients for the SUT's doors; each order op is recorded in a ``harness.history.History``.

- ``HttpClient`` (``http_client``): the HTTP/JSON door, blocking, one keep-alive connection;
- ``OuchClient`` (``ouch_client``): SoupBinTCP 3.0 + OUCH 4.2, a reader thread per session;
- ``settle`` (``settle``): the final state of the orders that ops left open.

Both clients record the same vocabulary (docs/checkers.md, "History convention"):
invoke values hold ``door``, ``account``, ``token`` (a replace also ``new_token``)
and the request's fields; completions hold ``outputs``, replay-format output
dicts; ok = acknowledged, fail = definitely not done, info = unknown.
"""

from harness.clients.http_client import ClientError, HttpClient, Result
from harness.clients.ouch_client import LoginRejectedError, OuchClient, Ticket
from harness.clients.settle import open_orders, settle

__all__ = ["ClientError", "HttpClient", "LoginRejectedError", "OuchClient", "Result", "Ticket",
           "open_orders", "settle"]
