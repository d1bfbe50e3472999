"""The pipeline tests' view of a running cluster, and their shorthand for the kit's door clients.

The clients are the kit's one HTTP client and one SoupBinTCP client
(``harness.clients.HttpConnection``, ``harness.clients.SoupBinClient``),
written from the core codecs and standard-library sockets, so that what the
tests see is exactly what a client on the wire sees; ``PipelineHttp`` only
adds shorthand for the order requests these tests send.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from harness.clients import HttpConnection, Reply, SoupBinClient
from harness.clients.http_connection import EventStream
from harness.nemesis.udp_relay import UdpFaultRelay
from reference_impl.config import HOST, ClusterConfig
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


class PipelineHttp(HttpConnection):
    """The HTTP door as an account (``None``: no credentials), with order shorthand."""

    def __init__(self, port: int, account: str | None = "DEMO1", password: str | None = None,
                 timeout_s: float = 10.0) -> None:
        auth = None
        if account is not None:
            auth = (account, PASSWORDS[account] if password is None else password)
        super().__init__(HOST, port, auth, timeout_s)

    def order(self, token: str, symbol: str = "ACME", side: str = "B", qty: int = 10,
              price: int | None = 10_000, **kw) -> Reply:
        body = {"token": token, "symbol": symbol, "side": side, "qty": qty, **kw}
        if price is not None:
            body["price"] = price
        return self.request("POST", "/v1/orders", body)

    def cancel(self, token: str, qty: int | None = None) -> Reply:
        query = "" if qty is None else f"?qty={qty}"
        return self.request("DELETE", f"/v1/orders/{token}{query}")

    def replace(self, token: str, new_token: str, qty: int, price: int) -> Reply:
        return self.request("POST", f"/v1/orders/{token}/replace",
                            {"new_token": new_token, "qty": qty, "price": price})


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
             timeout_s: float = 10.0) -> PipelineHttp:
        return PipelineHttp(self.http_port, account, password, timeout_s)

    def ouch(self, account: str | None = None, password: str | None = None, session: str = "",
             seq: int = 0, timeout_s: float = 5.0) -> SoupBinClient:
        """A SoupBinTCP connection; with ``account``, its Login Request is sent (not awaited)."""
        c = SoupBinClient(HOST, self.ouch_port, timeout_s)
        if account is not None:
            password = PASSWORDS.get(account, "x") if password is None else password
            c.send(sb.LoginRequest(account, password, session, seq))
        return c

    def sse(self, account: str, last_event_id: int | None = None) -> EventStream:
        events = PipelineHttp(self.http_port, account).events(last_event_id, timeout_s=5.0)
        assert events.resp.getheader("Content-Type", "").startswith("text/event-stream")
        return events

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
