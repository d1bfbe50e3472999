"""Test clients for the pipeline tests: HTTP/JSON, SSE, SoupBinTCP + OUCH 4.2, admin.

Written for these tests from the core codecs (``soupbin_codec``,
``ouch_codec``), standard-library sockets and ``http.client``, so that what
the tests see is exactly what a client on the wire sees. Every client keeps
counts of what it sent and received (the wire-compliance test compares them
with what tshark decodes).
"""

from __future__ import annotations

import base64
import collections
import http.client
import json
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from harness.nemesis.udp_relay import UdpFaultRelay
from reference_impl.config import HOST, ClusterConfig
from reference_impl.core import ouch_codec
from reference_impl.core import soupbin_codec as sb
from reference_impl.edges.process import admin_query
from reference_impl.launch.cluster import Cluster

PASSWORDS = {f"DEMO{i}": f"demo{i}pw" for i in range(1, 5)}


def wait_until(predicate: Callable[[], object], timeout_s: float = 10.0,
               interval_s: float = 0.02, what: str = "condition") -> object:
    """Poll ``predicate`` until it returns something truthy; AssertionError on timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(interval_s)


def basic_auth(account: str, password: str | None = None) -> dict[str, str]:
    password = PASSWORDS[account] if password is None else password
    token = base64.b64encode(f"{account}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@dataclass
class HttpResult:
    status: int
    headers: dict[str, str]
    body: object
    latency_s: float  #: request written -> response read, measured here (client side)


class HttpClient:
    """One keep-alive HTTP/1.1 connection to the gateway's HTTP door."""

    def __init__(self, port: int, account: str | None = "DEMO1", password: str | None = None,
                 timeout_s: float = 10.0) -> None:
        self.port, self.timeout_s = port, timeout_s
        self.auth = basic_auth(account, password) if account else {}
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: object = None, raw: bytes | None = None,
                headers: dict[str, str] | None = None) -> HttpResult:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        hdrs = dict(self.auth)
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        if self.conn is None:
            self.conn = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout_s)
            self.conn.connect()
            self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t0 = time.monotonic()
        try:
            self.conn.request(method, path, body=data, headers=hdrs)
            resp = self.conn.getresponse()
            payload = resp.read()
        except Exception:
            self.close()
            raise
        latency = time.monotonic() - t0
        if resp.getheader("Connection", "").lower() == "close":
            self.close()
        try:
            parsed = json.loads(payload) if payload else None
        except ValueError:
            parsed = payload
        return HttpResult(resp.status, dict(resp.getheaders()), parsed, latency)

    def order(self, token: str, symbol: str = "ACME", side: str = "B", qty: int = 10,
              price: int | None = 10_000, **kw) -> HttpResult:
        body = {"token": token, "symbol": symbol, "side": side, "qty": qty, **kw}
        if price is not None:
            body["price"] = price
        return self.request("POST", "/v1/orders", body)

    def cancel(self, token: str, qty: int | None = None) -> HttpResult:
        query = "" if qty is None else f"?qty={qty}"
        return self.request("DELETE", f"/v1/orders/{token}{query}")

    def replace(self, token: str, new_token: str, qty: int, price: int) -> HttpResult:
        return self.request("POST", f"/v1/orders/{token}/replace",
                            {"new_token": new_token, "qty": qty, "price": price})

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class SseReader:
    """``GET /v1/events`` read by a thread into a queue of ``(id, event, data)``."""

    def __init__(self, port: int, account: str, last_event_id: int | None = None) -> None:
        self.conn = http.client.HTTPConnection(HOST, port, timeout=30)
        headers = basic_auth(account)
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.conn.request("GET", "/v1/events", headers=headers)
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200, self.resp.read()
        assert self.resp.getheader("Content-Type", "").startswith("text/event-stream")
        self.events: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        fields: dict[str, str] = {}
        try:
            for raw in self.resp:
                line = raw.decode().rstrip("\r\n")
                if not line:
                    if "data" in fields:
                        self.events.put((int(fields.get("id", "0")), fields.get("event"),
                                         json.loads(fields["data"])))
                    fields = {}
                elif not line.startswith(":"):
                    key, _, value = line.partition(":")
                    fields[key] = value.removeprefix(" ")
        except (OSError, ValueError, http.client.HTTPException):
            pass

    def next(self, timeout_s: float = 5.0) -> tuple[int, str, dict]:
        return self.events.get(timeout=timeout_s)

    def close(self) -> None:
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)  # the reader sees EOF and returns
        except (OSError, AttributeError):
            pass
        self.thread.join(timeout=5)
        self.conn.close()


class OuchClient:
    """A SoupBinTCP 3.0 client carrying OUCH 4.2, with per-type counts of what went by."""

    def __init__(self, port: int, account: str | None = None, password: str | None = None,
                 session: str = "", seq: int = 0, timeout_s: float = 5.0) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.framer = sb.SoupBinFramer(from_client=False)
        self.pending: collections.deque = collections.deque()
        self.sent: collections.Counter = collections.Counter()  #: OUCH type byte -> count
        self.received: collections.Counter = collections.Counter()
        self.login: sb.LoginAccepted | sb.LoginRejected | None = None
        if account is not None:
            password = PASSWORDS.get(account, "x") if password is None else password
            self.send(sb.LoginRequest(account, password, session, seq))

    # ---------------------------------------------------------------- out

    def send(self, packet) -> None:
        self.sock.sendall(sb.encode(packet))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_ouch(self, msg) -> None:
        payload = ouch_codec.encode(msg)
        self.sent[payload[:1].decode()] += 1
        self.send(sb.UnsequencedData(payload))

    # ----------------------------------------------------------------- in

    def packet(self, timeout_s: float = 5.0, heartbeats: bool = False):
        """The next server packet (None once the server closed), skipping heartbeats."""
        deadline = time.monotonic() + timeout_s
        while True:
            while self.pending:
                p = self.pending.popleft()
                if isinstance(p, sb.ServerHeartbeat) and not heartbeats:
                    continue
                if isinstance(p, sb.SequencedData):
                    self.received[p.payload[:1].decode()] += 1
                return p
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no SoupBinTCP packet from the server")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                return None
            if not data:
                return None
            self.pending.extend(self.framer.feed(data))

    def logged_in(self, timeout_s: float = 5.0) -> sb.LoginAccepted:
        p = self.packet(timeout_s)
        assert isinstance(p, sb.LoginAccepted), p
        self.login = p
        return p

    def message(self, timeout_s: float = 5.0):
        """The next OUCH message in a Sequenced Data packet."""
        p = self.packet(timeout_s)
        assert isinstance(p, sb.SequencedData), p
        return ouch_codec.decode_outbound(p.payload)

    def messages(self, n: int, timeout_s: float = 5.0) -> list:
        return [self.message(timeout_s) for _ in range(n)]

    def closed_by_server(self, timeout_s: float = 5.0) -> list:
        """Read to EOF; the packets seen on the way (a Debug, a Login Rejected)."""
        seen = []
        while True:
            p = self.packet(timeout_s)
            if p is None:
                return seen
            seen.append(p)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class Pipeline:
    """One running cluster, as the tests use it."""

    def __init__(self, cfg: ClusterConfig, cluster: Cluster,
                 relay: UdpFaultRelay | None = None) -> None:
        self.cfg, self.cluster, self.relay = cfg, cluster, relay
        gw = cfg.gateways[0]
        self.http_port, self.ouch_port = gw.http_port, gw.ouch_port
        self.admin_ports = {"sequencer": cfg.sequencer.admin_port, "logger": cfg.logger.admin_port,
                            "gateway-1": gw.admin_port,
                            **{f"engine-{e.id}": e.admin_port for e in cfg.engines}}
        self.primary = next(f"engine-{e.id}" for e in cfg.engines if e.role == "primary")
        self.secondary = next(f"engine-{e.id}" for e in cfg.engines if e.role == "secondary")

    def digest(self, name: str, timeout_s: float = 2.0) -> dict:
        return admin_query(self.admin_ports[name], "digest", timeout_s)

    def http(self, account: str | None = "DEMO1", password: str | None = None,
             timeout_s: float = 10.0) -> HttpClient:
        return HttpClient(self.http_port, account, password, timeout_s)

    def ouch(self, account: str | None = None, password: str | None = None, **kw) -> OuchClient:
        return OuchClient(self.ouch_port, account, password, **kw)

    def sse(self, account: str, last_event_id: int | None = None) -> SseReader:
        return SseReader(self.http_port, account, last_event_id)

    def settled(self, seq: int, timeout_s: float = 30.0) -> dict[str, dict]:
        """Wait until both engines applied and the logger made durable ``seq``; the digests."""
        last: dict[str, dict] = {}

        def check():
            last.update({n: self.digest(n) for n in (self.primary, self.secondary, "logger")})
            ok = (last[self.primary]["applied_seq"] >= seq
                  and last[self.secondary]["applied_seq"] >= seq
                  and last["logger"]["durable_seq"] >= seq)
            return dict(last) if ok else None

        try:
            return wait_until(check, timeout_s, 0.1, f"engines and logger at seq {seq}")
        except AssertionError as exc:
            where = {n: {k: d.get(k) for k in ("applied_seq", "written_seq", "durable_seq",
                                               "missing", "receiver", "counters")}
                     for n, d in last.items()}
            raise AssertionError(f"{exc}: {where}") from None
