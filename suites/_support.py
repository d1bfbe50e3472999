"""Shared helpers for the conformance suites: the SUT, load, faults and artefacts.

The suites are Jepsen-shaped: a *workload* (``Load``: seeded ``OrderFlow``
requests through the HTTP door, each recorded in the run's ``History`` as
invoke then ok / fail / info), a *nemesis* (``fault``: a window around a
kill, a pause, relay rates, recorded as a nemesis op), and *artefacts* the
checkers judge (``wal_records``, ``sequenced_messages``, ``engine_digests``,
``published_outputs``). Everything here gathers evidence; nothing judges it.

One SUT per module (``open_sut`` in a module-scoped fixture) keeps the quick
certification short: a module restarts a component only when its fault
needs it, and starts a second SUT only for a different build (a bus relay, a
lossy filesystem, another durability policy).

Detection power: ``CRUCIBLE_SUT_FAULTS`` (comma-separated) switches on the
reference implementation's test-only broken variants (docs/config.md
``faults:``), passed to ``ReferenceSut(faults=...)``. Another SUT ignores it.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.checkers.verdict import Verdict, enforce
from harness.clients import HttpClient
from harness.history import NEMESIS, History
from harness.sut.base import NotSupported, Sut, SutError
from harness.workload import OrderFlow, WorkloadSpec
from reference_impl.core import mold_codec, output_codec, sequenced_codec
from reference_impl.core.messages import (
    Cancel,
    NewOrder,
    OrdType,
    Replace,
    Sequenced,
    Side,
    Tif,
)
from reference_impl.core.replay_format import (
    input_to_json,
    output_to_json,
    parse_input_line,
)

FAULTS_ENV = "CRUCIBLE_SUT_FAULTS"
HTTP_TIMEOUT_S = 2.0  #: a request unanswered this long is ``info`` (outcome unknown)
SETTLE_TIMEOUT_S = 15.0

# ------------------------------------------------------------------ the SUT


def sut_faults() -> tuple[str, ...]:
    """The test-only fault flags asked for through ``CRUCIBLE_SUT_FAULTS``."""
    return tuple(f.strip() for f in os.environ.get(FAULTS_ENV, "").split(",") if f.strip())


def na(reason: str) -> None:
    """Skip as not applicable (the report's ``N/A``)."""
    pytest.skip(f"N/A: {reason}")


def unknown(reason: str) -> None:
    """Skip as UNKNOWN: not enough evidence, never a pass."""
    pytest.skip(f"UNKNOWN: {reason}")


def require_features(sut: Sut, *features: str) -> None:
    """``N/A`` naming the first feature the SUT does not offer."""
    for f in features:
        if not sut.offers(f):
            na(f"{sut.name} does not offer {f!r}")


def _load(sut_name: str, run_dir: Path, seed: int, options: dict[str, Any]) -> Sut:
    if sut_name in ("reference", "", None):
        from harness.sut.reference import ReferenceSut

        faults = sut_faults()
        if faults:
            options = {**options, "faults": faults}
        return ReferenceSut(run_dir, seed, **options)
    from harness.sut import load_sut

    if options:  # reference-only knobs: an external SUT is built as described instead
        try:
            return load_sut(sut_name, run_dir, seed, **options)
        except (TypeError, NotSupported) as exc:
            wanted = options.get("durability")
            if wanted is not None:  # a policy it does not run: that requirement is N/A
                sut = load_sut(sut_name, run_dir, seed)
                if sut.durability != wanted:
                    na(f"{sut.name} runs durability {sut.durability!r}, not {wanted!r} ({exc})")
                return sut
    return load_sut(sut_name, run_dir, seed)


def start_sut(sut: Sut) -> Sut:
    """Start ``sut``; a SUT that does not start is UNKNOWN with the reason."""
    try:
        sut.start()
    except (SutError, NotSupported) as exc:
        sut.stop()
        reason = " | ".join(line for line in str(exc).splitlines() if line)
        unknown(f"the SUT did not start: {reason[:600]}")
    return sut


@contextlib.contextmanager
def open_sut(sut_name: str, run_dir: Path, seed: int, profile: dict | None = None,
             start: bool = True, **options: Any) -> Iterator[Sut]:
    """Build and start one SUT for a module; stop it afterwards.

    ``options`` are ``ReferenceSut`` constructor arguments (``bus_relay``,
    ``durability``); an external SUT that cannot take them is ``N/A``. The
    profile's durability policy applies unless ``options`` names another.
    A SUT that does not start makes every test that needs it UNKNOWN, with
    the reason (for example a test-only fault a node refuses to run).
    ``start=False`` yields it unstarted (start it with ``start_sut``), for a
    fault that must be in place first (the lossy filesystem).
    """
    if profile and profile.get("durability") and "durability" not in options \
            and sut_name in ("reference", "", None):
        options["durability"] = profile["durability"]
    sut = _load(sut_name, run_dir, seed, options)
    if start:
        start_sut(sut)
    try:
        yield sut
    finally:
        sut.stop()


def component(sut: Sut, role: str) -> str | None:
    names = sut.roles().get(role, [])
    return names[0] if names else None


def engines(sut: Sut) -> list[str]:
    """The engine replicas: primary first."""
    return sut.roles().get("primary", []) + sut.roles().get("secondary", [])


def safe_digest(sut: Sut, name: str | None) -> dict | None:
    if name is None or not sut.offers("digest"):
        return None
    try:
        return sut.digest(name)
    except (NotSupported, OSError, ValueError, KeyError):
        return None


def health_ok(sut: Sut, name: str) -> bool:
    admin = getattr(sut, "admin", None)
    if admin is None:
        return safe_digest(sut, name) is not None
    try:
        return bool(admin(name, "health").get("ok"))
    except (OSError, ValueError):
        return False


def wait_for(predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)


def sequenced_head(sut: Sut) -> int | None:
    """The highest seq the sequencer has handed out (None when it cannot be asked)."""
    d = safe_digest(sut, component(sut, "sequencer"))
    return None if d is None or "next_seq" not in d else int(d["next_seq"]) - 1


def settle(sut: Sut, timeout_s: float = SETTLE_TIMEOUT_S,
           replicas: list[str] | None = None) -> dict[str, Any]:
    """Wait until every engine applied, and the logger made durable, all that was sequenced.

    Returns what was seen (``head``, ``applied`` per engine, ``durable``,
    ``settled``); an unsettled SUT is evidence for the caller, not an error.
    """
    replicas = engines(sut) if replicas is None else replicas
    logger = component(sut, "logger")
    seen: dict[str, Any] = {}

    def done() -> bool:
        head = sequenced_head(sut)
        applied = {e: (safe_digest(sut, e) or {}).get("applied_seq") for e in replicas}
        durable = (safe_digest(sut, logger) or {}).get("durable_seq") if logger else None
        seen.update(head=head, applied=applied, durable=durable)
        if head is None:
            return True  # nothing to wait on: the SUT offers no digests
        return all(a is not None and a >= head for a in applied.values()) and (
            durable is None or durable >= head)

    seen["settled"] = wait_for(done, timeout_s, 0.05)
    return seen


# ------------------------------------------------------------------ artefacts


def wal_records(sut: Sut) -> list[tuple[int, bytes]]:
    """The sequenced input as ``(seq, payload)``: the raw WAL, else the journal re-encoded."""
    raw = getattr(sut, "wal_records", None)
    if raw is not None:
        return list(raw())
    return [(m.seq, sequenced_codec.encode(m)) for m in journal_messages(sut)]


def journal_messages(sut: Sut) -> list[Sequenced]:
    """The journal (replay-format dicts) as ``Sequenced`` messages."""
    entries = sut.journal() if sut.offers("journal") else None
    if entries is None:
        na(f"{sut.name} offers no journal of its sequenced input")
    return [parse_input_line(json.dumps(e), i) for i, e in enumerate(entries, 1)]


def sequenced_messages(sut: Sut) -> list[Sequenced]:
    """Decoded sequenced input with request identities.

    The raw WAL keeps ``(gateway_id, incarnation, request_seq)``. The journal
    does not, so there a request is named by what it asks (kind, account,
    tokens): the suites' clients never reuse a token, so one request asked
    twice is one request sequenced twice.
    """
    if getattr(sut, "wal_records", None) is not None:
        return [sequenced_codec.decode(p) for _, p in sut.wal_records()]
    out, ids = [], {}
    for m in journal_messages(sut):
        j = input_to_json(m)
        key = (j["type"], j.get("account"), j.get("token"), j.get("new_token"))
        rid = ids.setdefault(key, len(ids) + 1)
        out.append(Sequenced(m.seq, m.ts, 1, 1, rid, m.account, m.body))
    return out


def engine_digests(sut: Sut) -> dict[str, dict]:
    return {e: d for e in engines(sut) if (d := safe_digest(sut, e)) is not None}


def published_outputs(sut: Sut, timeout_s: float = 0.5) -> dict[str, list[dict]]:
    """Every output stream on the bus, per engine that published one (reference only).

    Each engine whose digest reports ``published_seq > 0`` is asked for its
    whole stream through MoldUDP64 re-requests on its ``retransmit_port``;
    the records decode to replay-format output dicts. Subscribers receive
    the union of these streams, so a second publisher is a second copy of
    every report.
    """
    cfg = getattr(sut, "config", None)
    if cfg is None:
        return {}
    session = cfg.output_stream.session.encode("ascii")
    streams: dict[str, list[dict]] = {}
    for name, d in engine_digests(sut).items():
        head = int(d.get("published_seq") or 0)
        if head <= 0:
            continue
        port = cfg.engine(int(name.split("-", 1)[1])).retransmit_port
        streams[name] = _fetch_stream(port, session, head, timeout_s)
    return streams


def _fetch_stream(port: int, session: bytes, head: int, timeout_s: float) -> list[dict]:
    got: dict[int, bytes] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(timeout_s)
        want, misses = 1, 0
        while want <= head and misses < 5:
            sock.sendto(mold_codec.encode_request(session, want, min(head - want + 1, 1000)),
                        ("127.0.0.1", port))
            before = len(got)
            try:
                while True:
                    pkt = mold_codec.decode_packet(sock.recv(65535))
                    for i, m in enumerate(pkt.messages):
                        got.setdefault(pkt.seq + i, m)
                    sock.settimeout(0.05)
            except TimeoutError:
                pass
            sock.settimeout(timeout_s)
            misses = misses + 1 if len(got) == before else 0
            while want in got:
                want += 1
    out = []
    for seq in sorted(got):
        rec = output_codec.decode(got[seq])
        out.append(output_to_json(rec.output))
    return out


# ------------------------------------------------------------------ HTTP load


def basic_auth(account: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{account}:{password}".encode()).decode()


def http_address(sut: Sut) -> tuple[str, int]:
    url = sut.endpoints().get("http")
    if not url:
        na(f"{sut.name} has no HTTP door")
    hostport = url.split("://", 1)[-1].split("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    return host, int(port)


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
        http_address(sut)  # N/A without an HTTP door
        self.base_url = sut.endpoints()["http"]
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


def acked_count(history: History, since: int = 0) -> int:
    """Order ops (new / replace) completed ok after op index ``since``."""
    return sum(1 for op in history.ops[since:]
               if op.type == "ok" and op.f in ("new", "replace") and op.value.get("outputs"))


# ------------------------------------------------------------------ faults


@contextlib.contextmanager
def fault(history: History, name: str, **value: Any) -> Iterator[dict]:
    """A nemesis window in the history: invoke at entry, ok (or info on error) at exit."""
    inv = history.invoke(NEMESIS, "fault", {"name": name, **value})
    result: dict[str, Any] = {"name": name, **value}
    try:
        yield result
    except BaseException as exc:
        history.complete(inv, "info", {**result, "error": f"{type(exc).__name__}: {exc}"})
        raise
    history.complete(inv, "ok", result)


def sub_history(history: History, since: int) -> list:
    """Ops recorded from index ``since`` on (one trial of a module's shared history)."""
    return history.ops[since:]


def fold(verdicts: list[Verdict], requirement: str) -> Verdict:
    """``combine`` the parts; a pass keeps the parts' own summaries (they carry the counts)."""
    from harness.checkers import combine

    v = combine(verdicts, requirement=requirement)
    if v.status == "pass":
        counted = [p.summary for p in verdicts if p.status == "pass"]
        v = Verdict.passed(requirement, "; ".join(counted), v.evidence)
    return v


def judge(verdict: Verdict) -> Verdict:
    """Record the verdict as the running test's evidence, then pass / fail / skip it."""
    try:
        from harness.certify_plugin import require
    except ImportError:  # the suites without the plugin: enforce only
        return enforce(verdict)
    return require(verdict)


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
