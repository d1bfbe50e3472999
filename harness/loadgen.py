"""The open-loop load generator: a schedule fixed in advance, latency from the intended send time.

Theory of operation
-------------------
``run_load`` plans the whole run before the first request leaves: the send
offsets (``harness.schedule.plan_schedule``) and the request of each slot
(``harness.workload.OrderFlow``, seeded), so a run is reproducible from its
seed and bounded in count and time. Then:

- **the sender** (one thread) sends slot ``i`` at ``t0 + offset[i]``, or at
  once when it is late; it never skips a slot and never waits for a
  response. Each invoke carries ``intended_ns``, and every latency is
  measured from it, so a stall of the SUT (or of the generator) shows up as
  latency of every request that should have left during it: no coordinated
  omission. OUCH: one pipelined SoupBinTCP session per account
  (``OuchClient.submit_*``). HTTP: the sender hands each slot, on time, to a
  pool of blocking workers (time spent queueing for a worker counts too).
- **the receivers** timestamp responses: the OUCH sessions' reader threads,
  the HTTP workers. The history records invoke / ok / fail / info per the
  convention (docs/checkers.md).
- **stage stamps**: HTTP responses carry ``stages``; for OUCH a poller reads
  the gateway's ``stages`` admin command (``Sut.admin``) every
  ``STAGE_POLL_S`` and the gateway's ``answered`` counter says how many rows
  there should be (``expected``), so a verdict never rests on a subset.
- **drain**: after the last send, responses are awaited until ``drain_s``
  past the last intended send time; what is still open completes ``info``.
  Every thread is joined before ``run_load`` returns.

Raw values go into preallocated lists while the run is hot and come back
as a ``LoadResult`` (``harness.load_result``: per-stage samples, counts,
throughput); HdrHistograms (``harness.latency_budget.histograms``) are built
from them afterwards, never with ``record_corrected_value``, and the pure
budget verdict over those is ``harness.latency_budget.judge_budget``. This
module only runs the load.
"""

from __future__ import annotations

import ctypes
import gc
import queue
import random
import threading
import time
from collections.abc import Mapping
from typing import Any

from harness.clients.http_client import HttpClient
from harness.clients.ouch_client import OuchClient
from harness.history import History, Op
from harness.load_result import LoadResult
from harness.schedule import NS, plan_schedule, segments
from harness.workload import OrderFlow, WorkloadSpec
from reference_impl.core.messages import Cancel, NewOrder, OrdType, Side, Tif

STAGE_POLL_S = 0.05
STAGES_MAX = 400  #: the reference gateway's limit per ``stages`` command
LEAD_NS = 50_000_000  #: t0 is this far after the clients are ready


class LoadError(RuntimeError):
    """The run could not start (no such door, no accounts, a bad profile)."""


# ------------------------------------------------------------------ requests and clients


def request_call(body: Any, token_prefix: str = "") -> tuple[str, dict[str, Any]]:
    """``(method, kwargs)`` of a client call (``new_order``/``cancel``/``replace``) for a body.

    ``token_prefix`` replaces the first characters of every token (the flow's are ``T0...``),
    so runs against one long-lived SUT do not reuse tokens.
    """
    def tok(t: str) -> str:
        return token_prefix + t[len(token_prefix):] if token_prefix else t

    if isinstance(body, NewOrder):
        kw: dict[str, Any] = {"token": tok(body.token), "symbol": body.symbol,
                              "side": Side(body.side).value, "qty": body.qty}
        if body.ord_type == OrdType.MARKET:
            kw["ord_type"] = "market"
        else:
            kw["price"] = body.price
        if body.tif == Tif.IOC and body.min_qty and body.min_qty == body.qty:
            kw["tif"] = "FOK"
        else:
            kw["tif"] = "IOC" if body.tif == Tif.IOC else "DAY"
            if body.min_qty:
                kw["min_qty"] = body.min_qty
        return "new_order", kw
    if isinstance(body, Cancel):
        return "cancel", {"token": tok(body.token), "qty": body.qty}
    return "replace", {"token": tok(body.token), "new_token": tok(body.new_token), "qty": body.qty,
                       "price": body.price}


_SUBMIT = {"new_order": "submit_new", "cancel": "submit_cancel", "replace": "submit_replace"}


class TimedOuch(OuchClient):
    """An OuchClient whose invokes carry ``intended_ns`` (set by the one sender before each submit)."""

    intended_ns = 0
    responses = 0  #: outcomes received (the stage poller sizes its reads with it)

    def _submit(self, f, fields, build):  # type: ignore[override]
        return super()._submit(f, {**fields, "intended_ns": self.intended_ns}, build)

    def _complete(self, ticket, type_, value):  # type: ignore[override]
        self.responses += 1
        super()._complete(ticket, type_, value)


class TimedHttp(HttpClient):
    """An HttpClient whose invokes carry ``intended_ns`` (one worker thread per client)."""

    intended_ns = 0

    def _op(self, f, invoke, method, path, body, token):  # type: ignore[override]
        return super()._op(f, {**invoke, "intended_ns": self.intended_ns}, method, path, body, token)


def _tight_timer_slack() -> None:
    """Ask Linux for 1 ns timer slack on this thread (50 µs by default): sleeps end on time."""
    try:
        ctypes.CDLL(None).prctl(29, 1, 0, 0, 0)  # PR_SET_TIMERSLACK
    except (OSError, AttributeError):
        pass


# ------------------------------------------------------------------ the run


def workload_spec(sut: Any, workload: Mapping[str, Any]) -> tuple[WorkloadSpec, list[str]]:
    """The order flow's spec for this SUT's symbols and accounts, and notes on what was cut."""
    notes = []
    symbols = list(sut.instruments()) or list(WorkloadSpec().symbols)
    want = workload.get("symbols")
    if isinstance(want, list):
        symbols = [str(s) for s in want]
    elif isinstance(want, int):
        if want > len(symbols):
            notes.append(f"the profile asks for {want} symbols; the SUT trades {len(symbols)}")
        symbols = symbols[:want]
    accounts = list(sut.accounts())
    if isinstance(workload.get("accounts"), int):
        accounts = accounts[: workload["accounts"]]
    if not accounts or not symbols:
        raise LoadError("the SUT lists no accounts or no symbols to trade")
    extra = {k: workload[k] for k in ("mix", "mid", "tick", "depth_ticks", "cross_rate", "max_qty",
                                      "live_window") if k in workload}
    return WorkloadSpec(symbols=tuple(symbols), accounts=tuple(accounts), **extra), notes


class _Run:
    """One run's threads and buffers; ``run_load`` drives it."""

    def __init__(self, sut: Any, history: History, door: str, offsets: list[int],
                 requests: list[tuple[str, str, dict]], drain_s: float, http_workers: int) -> None:
        self.sut, self.history, self.door = sut, history, door
        self.offsets, self.requests = offsets, requests
        self.n = len(offsets)
        self.drain_ns = int(drain_s * NS)
        self.http_workers = http_workers
        self.invokes: list[Op | None] = [None] * self.n
        self.completions: list[Op | None] = [None] * self.n
        self.tickets: list[Any] = [None] * self.n
        self.abort = threading.Event()
        self.poll_stop = threading.Event()
        self.unsent = 0
        self.t0 = 0
        self.hard_stop = 0
        self.ouch: dict[str, TimedOuch] = {}
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.stage_map: dict[int, dict[str, int]] = {}
        self.polled_at = 0
        gws = sut.roles().get("gateway", [])
        self.gateway = gws[0] if gws and sut.offers("stages") else None

    # -- OUCH
    def connect_ouch(self) -> None:
        ep = self.sut.endpoints().get("ouch")
        if not ep:
            raise LoadError(f"{self.sut.name} has no OUCH door")
        passwords = self.sut.accounts()
        for k, account in enumerate(sorted({a for a, _, _ in self.requests})):
            c = TimedOuch(ep[0], ep[1], account, passwords[account], self.history, process=k)
            try:
                c.connect()
            except (OSError, ConnectionError) as exc:
                raise LoadError(f"OUCH login as {account} failed: {exc}") from exc
            self.ouch[account] = c

    def send(self) -> None:
        _tight_timer_slack()
        clock, sleep = time.monotonic_ns, time.sleep
        offsets, requests, t0, ouch = self.offsets, self.requests, self.t0, self.ouch
        i = 0
        try:
            for i in range(self.n):
                target = t0 + offsets[i]
                now = clock()
                if now < target:
                    sleep((target - now) / 1e9)
                elif now > self.hard_stop:
                    break
                if self.abort.is_set():
                    break
                account, method, kw = requests[i]
                if ouch:
                    c = ouch[account]
                    c.intended_ns = target
                    self.tickets[i] = getattr(c, _SUBMIT[method])(**kw)
                else:
                    self.queue.put(i)
            else:
                i = self.n
        finally:
            with self.lock:
                self.unsent += self.n - i
            for _ in range(self.http_workers if not ouch else 0):
                self.queue.put(None)

    def drain_ouch(self) -> None:
        deadline = max(time.monotonic_ns(), self.t0 + (self.offsets[-1] if self.offsets else 0)) + self.drain_ns
        for i, t in enumerate(self.tickets):
            if t is None:
                continue
            res = self.ouch[t.value["account"]].wait(t, max(0.0, (deadline - time.monotonic_ns()) / 1e9))
            self.invokes[i], self.completions[i] = res.invoke, res.complete

    def poll_stages(self) -> None:
        while not self.poll_stop.wait(STAGE_POLL_S):
            self.poll_once()

    def poll_once(self, n: int | None = None) -> None:
        total = sum(c.responses for c in self.ouch.values())
        n = n or min(STAGES_MAX, total - self.polled_at + 64)
        try:
            reply = self.sut.stages(self.gateway, n)
        except Exception:  # noqa: BLE001 - a slow admin reply: the next poll reads further back
            return
        fields = reply.get("fields") or []
        for row in reply.get("stages") or []:
            d = dict(zip(fields, row))
            if d.get("gateway_in_ns", 0) >= self.t0:
                self.stage_map[d["request_seq"]] = d
        self.polled_at = total

    def answered(self) -> int | None:
        try:
            return int(self.sut.digest(self.gateway)["counters"]["answered"])
        except Exception:  # noqa: BLE001 - no counter: coverage cannot be checked
            return None

    # -- HTTP
    def http_worker(self, w: int) -> None:
        url, passwords = self.sut.endpoints()["http"], self.sut.accounts()
        accounts = sorted(passwords)
        clients: dict[str, TimedHttp] = {}
        try:
            while (i := self.queue.get()) is not None:
                if self.abort.is_set() or time.monotonic_ns() > self.t0 + self.offsets[-1] + self.drain_ns:
                    with self.lock:
                        self.unsent += 1
                    continue
                account, method, kw = self.requests[i]
                c = clients.get(account)
                if c is None:
                    c = clients[account] = TimedHttp(url, account, passwords[account], self.history,
                                                     process=w * len(accounts) + accounts.index(account))
                c.intended_ns = self.t0 + self.offsets[i]
                res = getattr(c, method)(**kw)
                self.invokes[i], self.completions[i] = res.invoke, res.complete
        finally:
            for c in clients.values():
                c.close()


def run_load(sut: Any, profile: Mapping[str, Any], history: History, seed: int, *,
             door: str = "ouch", duration_s: float | None = None, drain_s: float | None = None,
             http_workers: int | None = None, token_prefix: str = "") -> LoadResult:
    """Run the profile's shape and workload against a started SUT, open loop (module doc).

    ``duration_s`` caps the run to the schedule's first seconds (a ramp keeps its slope).
    """
    if door not in ("ouch", "http"):
        raise LoadError(f"door must be ouch or http, got {door!r}")
    shape = dict(profile.get("shape") or {})
    segments(shape)  # a bad shape fails here, before anything starts
    offsets = plan_schedule(shape, seed)
    span_s = float(shape["duration_s"])
    if duration_s is not None and duration_s < span_s:  # the profile's first seconds, same slope
        offsets = [t for t in offsets if t < duration_s * NS]
        span_s = float(duration_s)
    if not offsets:
        raise LoadError("the shape schedules no request")
    spec, notes = workload_spec(sut, profile.get("workload") or {})
    flow = OrderFlow(spec, random.Random(seed))
    requests = []
    for _ in offsets:
        account, body = flow.next()
        requests.append((account, *request_call(body, token_prefix)))
    if door == "http" and not sut.endpoints().get("http"):
        raise LoadError(f"{sut.name} has no HTTP door")
    workers = int(http_workers or profile.get("http_workers", 16))
    run = _Run(sut, history, door, offsets, requests,
               float(drain_s if drain_s is not None else profile.get("drain_s", 5.0)), workers)
    threads: list[threading.Thread] = []
    answered0 = None
    failed = True
    gc.collect()
    gc.freeze()  # the planned requests leave the collector's view: fewer, shorter pauses
    try:
        if door == "ouch":
            run.connect_ouch()
            if run.gateway is not None:
                answered0 = run.answered()
                threads.append(threading.Thread(target=run.poll_stages, name="loadgen-stages"))
            else:
                notes.append("the SUT exposes no stage stamps over OUCH: only wire latency")
        else:
            threads += [threading.Thread(target=run.http_worker, args=(w,), name=f"loadgen-http-{w}")
                        for w in range(workers)]
        span = offsets[-1]
        run.t0 = time.monotonic_ns() + LEAD_NS
        run.hard_stop = run.t0 + span + max(span, 10 * NS)
        threads.append(threading.Thread(target=run.send, name="loadgen-sender"))
        for t in threads:
            t.start()
        while threads[-1].is_alive():  # the sender; joined in slices so Ctrl-C gets through
            threads[-1].join(0.2)
        if door == "ouch":
            run.drain_ouch()
        failed = False
    finally:
        if failed:
            run.abort.set()
        run.poll_stop.set()
        for t in threads:
            if t.ident is not None:
                t.join()
        if run.gateway is not None and run.ouch and not failed:
            run.poll_once(STAGES_MAX)
        for c in run.ouch.values():
            c.logout(1.0)
        gc.unfreeze()
    result = LoadResult(door, shape, run.t0, offsets, run.invokes, run.completions, span_s, notes=notes,
                        unsent=run.unsent, elapsed_s=(time.monotonic_ns() - run.t0) / 1e9)
    if door == "ouch":
        result.stage_rows = sorted(run.stage_map.values(), key=lambda d: d["request_seq"])
        answered1 = run.answered() if answered0 is not None else None
        result.answered = answered1 - answered0 if answered1 is not None else None
    else:
        done = [c for c in run.completions if c is not None and c.value.get("status") == 200]
        result.stage_rows = [c.value["stages"] for c in done if isinstance(c.value.get("stages"), dict)]
        result.answered = len(done)
    return result
