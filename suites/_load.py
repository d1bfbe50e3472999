"""The suites' workload: seeded ``OrderFlow`` requests through the HTTP door.

``Load`` runs HTTP workers that draw from one seeded flow, each request
recorded in the run's ``History`` as invoke then ok / fail / info, paced by
a schedule fixed in advance (the profile's ``load.rate_per_s``, ``rate``).
``workload`` builds the flow for a SUT's symbols and accounts;
``start_fault_load`` runs a trial's load with room for a fault in its middle.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from _doors import HTTP_TIMEOUT_S, http_url

from harness.clients import HttpClient
from harness.history import History
from harness.sut.base import Sut
from harness.workload import OrderFlow, WorkloadSpec
from reference_impl.core.messages import Cancel, NewOrder, OrdType, Replace, Side, Tif

FAULT_WINDOW_S = 1.5  #: the load keeps issuing this long after the fault (``start_fault_load``)


def order_request(account: str, body: Any) -> tuple[str, str, str, dict | None, dict]:
    """``(f, method, path, json body, invoke value)`` for one core request body."""
    if isinstance(body, NewOrder):
        doc: dict[str, Any] = {"token": body.token, "symbol": body.symbol,
                               "side": Side(body.side).value, "qty": body.qty}
        if body.ord_type == OrdType.MARKET:
            doc["ord_type"] = "market"
        else:
            doc["price"] = body.price
        if body.min_qty and body.min_qty == body.qty and body.tif == Tif.IOC:
            doc["tif"] = "FOK"
        else:
            doc["tif"] = "IOC" if body.tif == Tif.IOC else "DAY"
            if body.min_qty:
                doc["min_qty"] = body.min_qty
        return "new", "POST", "/v1/orders", doc, {"account": account, "token": body.token}
    if isinstance(body, Cancel):
        return ("cancel", "DELETE", f"/v1/orders/{body.token}?qty={body.qty}", None,
                {"account": account, "token": body.token})
    if isinstance(body, Replace):
        return ("replace", "POST", f"/v1/orders/{body.token}/replace",
                {"new_token": body.new_token, "qty": body.qty, "price": body.price},
                {"account": account, "token": body.token, "new_token": body.new_token})
    raise TypeError(f"not a client request body: {body!r}")



def send_body(client: HttpClient, body: Any) -> str:
    """One core request body through ``client`` (recorded in its history); the completion type."""
    f, _, _, doc, value = order_request(client.account, body)
    if f == "new":
        result = client.new_order(**doc)
    elif f == "cancel":
        result = client.cancel(value["token"], body.qty)
    else:
        result = client.replace(value["token"], value["new_token"], doc["qty"], doc["price"])
    return result.type


def workload(sut: Sut, seed: int, profile: dict | None = None, prefix: str = "") -> OrderFlow:
    """The seeded order flow for this SUT's symbols and accounts."""
    load = (profile or {}).get("load", {})
    symbols = tuple(sut.instruments()) or WorkloadSpec().symbols
    accounts = tuple(sut.accounts())
    spec = WorkloadSpec(symbols=symbols[: load.get("symbols", len(symbols))],
                        accounts=accounts[: load.get("accounts", len(accounts))],
                        cross_rate=load.get("cross_rate", 0.15))
    flow = OrderFlow(spec, random.Random(seed))
    if prefix:
        flow._token = _prefixed_tokens(prefix)  # type: ignore[method-assign]
    return flow


def _prefixed_tokens(prefix: str) -> Callable[[], str]:
    counter = iter(range(1, 1 << 62))
    width = 14 - len(prefix)
    return lambda: f"{prefix}{next(counter):0{width}d}"


@dataclass
class LoadStats:
    sent: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: {"ok": 0, "fail": 0, "info": 0})
    elapsed_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"sent": self.sent, **self.outcomes, "elapsed_s": round(self.elapsed_s, 3)}


def rate(profile: dict | None) -> float | None:
    """The profile's request rate (``load.rate_per_s``), None for as fast as possible."""
    value = ((profile or {}).get("load") or {}).get("rate_per_s")
    return float(value) if value else None


class Load:
    """HTTP workers drawing from one seeded flow, paced by a schedule fixed in advance.

    ``run(count, duration_s)`` sends up to ``count`` requests, the i-th not
    before ``start + i / rate_per_s`` (as fast as the workers go without a
    rate), and stops issuing after ``duration_s``; ``start`` does the same
    in a thread, and ``wait_sent(n)`` blocks until n requests have left (to
    put a fault in the middle of the load). Workers are history processes
    ``first_process .. + workers - 1``.
    """

    def __init__(self, sut: Sut, history: History, flow: OrderFlow, workers: int = 4,
                 first_process: int = 0, timeout_s: float = HTTP_TIMEOUT_S,
                 rate_per_s: float | None = None) -> None:
        self.sut, self.history, self.flow = sut, history, flow
        self.base_url = http_url(sut)  # N/A without an HTTP door
        self.passwords = sut.accounts()
        self.workers, self.first_process, self.timeout_s = workers, first_process, timeout_s
        self.interval = 1.0 / rate_per_s if rate_per_s else 0.0
        self.stats = LoadStats()
        self._lock = threading.Lock()
        self._sent = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._t0 = 0.0

    def _draw(self, budget: list[int], deadline: float) -> tuple[float, tuple[str, Any]] | None:
        with self._lock:
            if budget[0] <= 0 or time.monotonic() >= deadline:
                return None
            budget[0] -= 1
            slot = self._t0 + self.stats.sent * self.interval
            self.stats.sent += 1
            self._sent.notify_all()
            return slot, self.flow.next()

    def wait_sent(self, n: int, timeout_s: float = 30.0) -> bool:
        with self._sent:
            return self._sent.wait_for(lambda: self.stats.sent >= n, timeout_s)

    def run(self, count: int, duration_s: float = 3600.0) -> LoadStats:
        budget, deadline, t0 = [count], time.monotonic() + duration_s, time.monotonic()
        self._t0 = t0

        def worker(process: int) -> None:
            clients: dict[str, HttpClient] = {}
            try:
                while (item := self._draw(budget, deadline)) is not None:
                    slot, (account, body) = item
                    if (wait := slot - time.monotonic()) > 0:
                        time.sleep(wait)
                    client = clients.get(account)
                    if client is None:
                        client = clients[account] = HttpClient(
                            self.base_url, account, self.passwords[account], self.history,
                            process, self.timeout_s)
                    kind = send_body(client, body)
                    with self._lock:
                        self.stats.outcomes[kind] += 1
            finally:
                for c in clients.values():
                    c.close()

        threads = [threading.Thread(target=worker, args=(self.first_process + i,), daemon=True)
                   for i in range(self.workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.stats.elapsed_s += time.monotonic() - t0
        return self.stats

    def start(self, count: int, duration_s: float = 3600.0) -> Load:
        self._thread = threading.Thread(target=self.run, args=(count, duration_s), daemon=True)
        self._thread.start()
        return self

    def join(self, timeout_s: float | None = None) -> LoadStats:
        if self._thread is not None:
            self._thread.join(timeout_s)
        return self.stats


def start_fault_load(sut: Sut, history: History, flow: OrderFlow, orders: int,
                     rate_per_s: float | None, first_process: int) -> tuple[LoadStats, Load]:
    """Send two thirds of ``orders``, start the rest; return once a quarter of the rest is out.

    The caller's fault then lands in the middle of the load, which keeps
    issuing for ``FAULT_WINDOW_S``. Returns the first part's stats and the
    running ``Load`` (``join()`` it for the rest's). Four workers each; the
    second part's are processes ``first_process ..``.
    """
    first = orders * 2 // 3
    before = Load(sut, history, flow, workers=4, rate_per_s=rate_per_s).run(first)
    load = Load(sut, history, flow, workers=4, first_process=first_process,
                rate_per_s=rate_per_s)
    load.start(orders - first, duration_s=FAULT_WINDOW_S)
    load.wait_sent((orders - first) // 4)
    return before, load


def acked_count(history: History, since: int = 0) -> int:
    """Order ops (new / replace) completed ok after op index ``since``."""
    return sum(1 for op in history.ops[since:]
               if op.type == "ok" and op.f in ("new", "replace") and op.value.get("outputs"))
