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

Raw values go into preallocated lists while the run is hot; HdrHistograms
(``histograms``) are built afterwards, never with ``record_corrected_value``.
Stages: ``wire`` (intended send -> response received), ``sequence``
(gateway in -> sequenced), ``engine`` (sequenced -> decided: the budgeted
one), ``durable`` (decided -> durable), ``release`` (durable -> gateway
out), and ``send_lag`` (intended -> actually sent: the generator's own
delay, already inside ``wire``).

``judge_budget`` is the pure budget verdict over literal histograms.
"""

from __future__ import annotations

import ctypes
import gc
import math
import queue
import random
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.checkers.verdict import FAIL, PASS, UNKNOWN, Verdict
from harness.clients.http_client import HttpClient
from harness.clients.ouch_client import OuchClient
from harness.history import FAIL as OP_FAIL
from harness.history import INFO, OK, History, Op
from harness.schedule import NS, per_second, plan_schedule, segments
from harness.workload import OrderFlow, WorkloadSpec
from reference_impl.core.messages import Cancel, NewOrder, OrdType, Side, Tif

REQUIREMENT = "latency_budget"
WIRE, SEND_LAG = "wire", "send_lag"
#: (stage, from stamp, to stamp) of the gateway's stage stamps
STAGES = (("sequence", "gateway_in_ns", "sequenced_ns"), ("engine", "sequenced_ns", "decided_ns"),
          ("durable", "decided_ns", "durable_ns"), ("release", "durable_ns", "gateway_out_ns"))
HGRM_MAX_NS = 3_600 * NS
STAGE_POLL_S = 0.05
STAGES_MAX = 400  #: the reference gateway's limit per ``stages`` command
LEAD_NS = 50_000_000  #: t0 is this far after the clients are ready
MIN_COVERAGE = 0.99  #: stage rows / requests the SUT answered, below which a stage is UNKNOWN
_BUDGET_KEY = re.compile(r"^(?P<stage>[a-z][a-z0-9_]*?)_p(?P<pct>\d+(?:[._]\d+)?)_us$")


class LoadError(RuntimeError):
    """The run could not start (no such door, no accounts, a bad profile)."""


# ------------------------------------------------------------------ budget verdict (pure)


@dataclass(frozen=True, slots=True)
class BudgetCheck:
    key: str  #: as written in the profile, e.g. ``engine_p99_us``
    stage: str
    percentile: float
    limit_us: float


def parse_budgets(budgets: Mapping[str, Any]) -> list[BudgetCheck]:
    """``{"engine_p99_us": 50, "wire_p99.9_us": 2000}`` -> checks; ``ValueError`` on a bad key."""
    out = []
    for key, limit in (budgets or {}).items():
        m = _BUDGET_KEY.match(str(key))
        if m is None or isinstance(limit, bool) or not isinstance(limit, int | float) or limit <= 0:
            raise ValueError(f"budgets.{key}: want <stage>_p<percentile>_us: <µs > 0>, got {limit!r}")
        pct = float(m["pct"].replace("_", "."))
        if not 0 < pct < 100:
            raise ValueError(f"budgets.{key}: the percentile must be in (0, 100)")
        out.append(BudgetCheck(str(key), m["stage"], pct, float(limit)))
    return out


def min_samples(percentile: float) -> int:
    """Fewest samples for which the percentile is not simply the maximum: 100 for p99."""
    return math.ceil(1.0 / (1.0 - percentile / 100.0) - 1e-9)


def value_at_percentile(hist: Any, percentile: float) -> int:
    """The nearest-rank percentile (rank ``ceil(p/100 * n)``, as the report's table) read from an
    HdrHistogram as the highest value equivalent to its bucket. hdrh's own
    ``get_value_at_percentile`` rounds the rank half-up, one sample short at times."""
    n = int(hist.get_total_count())
    rank = max(1, math.ceil(percentile / 100.0 * n - 1e-9))
    for item in hist.get_recorded_iterator():
        if item.total_count_to_this_value >= rank:
            return int(item.value_iterated_to)
    return int(hist.get_max_value())


def _hardware_text(match: Mapping[str, Any]) -> str:
    if not match:
        return "hardware: no target profile"
    if match.get("matched"):
        return f"hardware matched {match.get('profile')}"
    return f"hardware did NOT match {match.get('profile')} ({len(match.get('reasons') or [])} reasons)"


def judge_budget(histograms: Mapping[str, Any], budget: Mapping[str, Any],
                 hardware_match: Mapping[str, Any] | None, *,
                 expected: Mapping[str, int] | None = None, unanswered: int = 0,
                 min_coverage: float = MIN_COVERAGE) -> Verdict:
    """PASS/FAIL of every ``<stage>_p<pct>_us`` budget, stating whether the hardware matched.

    A check is UNKNOWN when its stage has fewer than ``min_samples`` values or
    fewer than ``min_coverage`` of the ``expected`` count (the samples would be a
    subset). Any FAIL fails; else any UNKNOWN, or requests that got no answer
    (``unanswered``), make it UNKNOWN. The percentile is the nearest rank, read
    from the HdrHistogram (values in ns) as the highest value equivalent to it, so
    rounding never favours the SUT (``value_at_percentile``). The hardware match never changes the status: it is
    stated next to it (summary and evidence).
    """
    match = dict(hardware_match or {})
    hw = _hardware_text(match)
    evidence: dict[str, Any] = {"hardware_match": match, "hardware_matched": match.get("matched"),
                                "unanswered": unanswered, "checks": []}
    checks = parse_budgets(budget)
    if not checks:
        return Verdict.unknown(REQUIREMENT, f"the profile sets no latency budget; {hw}", evidence)
    for c in checks:
        hist = histograms.get(c.stage)
        count = int(hist.get_total_count()) if hist is not None else 0
        row: dict[str, Any] = {"budget": c.key, "stage": c.stage, "percentile": c.percentile,
                               "limit_us": c.limit_us, "count": count, "needed": min_samples(c.percentile)}
        want = (expected or {}).get(c.stage)
        if want is not None:
            row["expected"] = want
        if count < row["needed"]:
            row.update(status=UNKNOWN, why=f"{count} samples; p{c.percentile:g} needs >= {row['needed']}")
        elif want and count < min_coverage * want:
            row.update(status=UNKNOWN, why=f"stage stamps for {count} of {want} answered requests")
        else:
            value = value_at_percentile(hist, c.percentile)
            row.update(value_us=value / 1000, max_us=hist.get_max_value() / 1000,
                       status=PASS if value <= c.limit_us * 1000 else FAIL)
            row["why"] = (f"{c.stage} p{c.percentile:g} {value / 1000:.1f} µs "
                          f"{'<=' if row['status'] == PASS else '>'} {c.limit_us:g} µs (n={count})")
        evidence["checks"].append(row)
    rows = evidence["checks"]
    if any(r["status"] == FAIL for r in rows):
        status, parts = FAIL, [r["why"] for r in rows if r["status"] == FAIL]
    elif any(r["status"] == UNKNOWN for r in rows):
        status, parts = UNKNOWN, [r["why"] for r in rows if r["status"] == UNKNOWN]
    elif unanswered:
        status, parts = UNKNOWN, [r["why"] for r in rows] + [f"{unanswered} requests got no answer"]
    else:
        status, parts = PASS, [r["why"] for r in rows]
    return Verdict(REQUIREMENT, status, "; ".join(parts) + f"; {hw}", evidence)


def histograms(samples: Mapping[str, Sequence[tuple[int, int]]]) -> dict[str, Any]:
    """One HdrHistogram (ns, 1 ns .. 1 h, 3 digits) per stage, from raw values, after the run."""
    from hdrh.histogram import HdrHistogram

    out = {}
    for stage, pts in samples.items():
        h = HdrHistogram(1, HGRM_MAX_NS, 3)
        for _, lat in pts:
            h.record_value(min(max(lat, 1), HGRM_MAX_NS))
        out[stage] = h
    return out


def stage_samples(rows: Sequence[Mapping[str, int]]) -> tuple[dict[str, list[tuple[int, int]]], int]:
    """Per stage ``(gateway_in_ns, duration_ns)`` from stage-stamp rows; and how many durations
    were negative (clocks of different processes; recorded as 0)."""
    out: dict[str, list[tuple[int, int]]] = {name: [] for name, _, _ in STAGES}
    negative = 0
    for r in rows:
        for name, a, b in STAGES:
            if r.get(a) and r.get(b):
                d = r[b] - r[a]
                negative += d < 0
                out[name].append((r["gateway_in_ns"], max(d, 0)))
    return out, negative


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


@dataclass
class LoadResult:
    door: str
    shape: dict[str, Any]
    t0_ns: int
    offsets: list[int]
    invokes: list[Op | None]
    completions: list[Op | None]
    duration_s: float = 0.0  #: of the schedule: the shape's, or less under a duration cap
    stage_rows: list[dict[str, int]] = field(default_factory=list)
    answered: int | None = None  #: requests the SUT says it answered (stage rows expected)
    unsent: int = 0  #: slots never sent: the run hit its hard stop
    notes: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    def samples(self) -> dict[str, list[tuple[int, int]]]:
        wire, lag = [], []
        for i, done in enumerate(self.completions):
            inv = self.invokes[i]
            if inv is None:
                continue
            t = self.t0_ns + self.offsets[i]
            lag.append((t, inv.time_ns - t))
            if done is not None and not str(done.value.get("reason", "")).startswith("not sent"):
                wire.append((t, done.time_ns - t))
        stages, _ = stage_samples(self.stage_rows)
        return {WIRE: wire, **stages, SEND_LAG: lag}

    def counts(self) -> dict[str, int]:
        c = {"scheduled": len(self.offsets), "sent": sum(i is not None for i in self.invokes),
             OK: 0, OP_FAIL: 0, INFO: 0, "not_sent": 0, "backpressure": 0, "unsent": self.unsent}
        for done in self.completions:
            if done is None:
                continue
            c[done.type] += 1
            reason = str(done.value.get("reason", ""))
            c["not_sent"] += reason.startswith("not sent")
            c["backpressure"] += (done.value.get("status") == 429 or reason == "backpressure"
                                  or any(o.get("reason") == "backpressure" for o in done.value.get("outputs") or []))
        return c

    @property
    def unanswered(self) -> int:
        """Slots the SUT never answered: info (unknown), not sent, or past the hard stop."""
        c = self.counts()
        return c[INFO] + c["not_sent"] + c["unsent"]

    def expected(self) -> dict[str, int]:
        if self.answered is None:
            return {}
        return {name: self.answered for name, _, _ in STAGES}

    def throughput(self) -> list[dict[str, int]]:
        """Per second of the run: offered (scheduled), sent, and completions by type."""
        span = max(len(per_second(self.offsets)), 1)
        bins = [{"second": s, "offered": 0, "sent": 0, OK: 0, OP_FAIL: 0, INFO: 0} for s in range(span)]
        for i, n in enumerate(per_second(self.offsets)):
            bins[i]["offered"] = n
        for op, key in [(op, "sent") for op in self.invokes] + [(op, None) for op in self.completions]:
            if op is not None:
                s = (op.time_ns - self.t0_ns) // NS
                while s >= len(bins):
                    bins.append({"second": len(bins), "offered": 0, "sent": 0, OK: 0, OP_FAIL: 0, INFO: 0})
                bins[max(s, 0)][key or op.type] += 1
        return bins

    def summary(self) -> dict[str, Any]:
        c = self.counts()
        span_s = self.duration_s
        _, negative = stage_samples(self.stage_rows)
        return {"door": self.door, "shape": self.shape, "duration_s": self.duration_s, "counts": c,
                "offered_per_s": round(c["scheduled"] / span_s, 1) if span_s else None,
                "ok_per_s": round(c[OK] / self.elapsed_s, 1) if self.elapsed_s else None,
                "elapsed_s": round(self.elapsed_s, 3), "stage_rows": len(self.stage_rows),
                "answered_by_sut": self.answered, "negative_stage_durations": negative,
                "notes": self.notes, "throughput": self.throughput()}


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
        gws = sut.roles().get("gateway", []) if hasattr(sut, "roles") else []
        self.gateway = gws[0] if gws and callable(getattr(sut, "admin", None)) else None

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
            reply = self.sut.admin(self.gateway, f"stages {n}")
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
