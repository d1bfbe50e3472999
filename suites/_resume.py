"""Re-logins at arbitrary points of an account's outbound history, on either door.

Theory of operation
-------------------
One account per door. A *recorder* follows the account from its first
message for the whole trial (SoupBinTCP: a login at sequence number 1; SSE:
``Last-Event-ID: 0``): its messages are the account's full outbound history.
A warm-up builds a history first; then each step

1. waits until the recorder is quiet (nothing in flight), and opens one
   resumed session at a point decided now: the edge points first (the first
   message, the last one, the next one, past the next one, "current"), then
   seeded-random points from 0 to a few past the next; what comes first is
   exactly known, since nothing moves;
2. starts a burst of traffic (each round: a buy that rests, a sell that
   trades part of it, a cancel of the rest: accepts, executions, a cancel) and,
   once the recorder shows the burst being released, opens a second session
   at a seeded-random point inside the history: its replay races the live
   releases;
3. waits for the burst's answers and a quiet recorder, reads every open session
   up to the recorder's head, and closes the sessions opened in the previous
   step: each has then seen its replay *and* a whole live burst after it.

A session's messages are (number, content): the SoupBinTCP number is Login
Accepted's plus the message's place in the stream, the SSE number is the
event id; the content is the payload (hex) or the event's data (canonical
JSON). ``harness.checkers.session_resume`` judges them against the recorder's.
Every session has a reader thread, so the server never waits for us.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from _doors import http_door, ouch_door
from _support import na, wait_for

from harness.checkers.session_resume import EDGES, SOUPBINTCP, SSE, Resume
from harness.clients import ClientError, HttpConnection, SoupBinClient
from harness.sut.base import Sut
from reference_impl.core import soupbin_codec as sb
from reference_impl.core.ouch_messages import CancelOrder, EnterOrder, OrderCanceled

QUIET_S = 0.08  #: the recorder is settled after this long without a message
SETTLE_S = 10.0  #: a burst's answers must be in by then
DRAIN_QUIET_S = 0.25  #: a session short of the recorder's head and silent this long stays short
DRAIN_S = 3.0  #: at most this long to read the sessions up to the recorder's head
STREAM_TIMEOUT_S = 30.0  #: an SSE read timeout (keepalives come every 5 s)
HEARTBEAT_S = 1.0


@dataclass(slots=True)
class Follower:
    """One session following the account: a reader thread appends (number, content)."""

    requested: int | None
    next_at_login: int
    edge: str
    mid_traffic: bool
    announced: int | None = None
    messages: list[tuple[int, str]] = field(default_factory=list)
    closer: Callable[[], None] | None = None
    thread: threading.Thread | None = None

    def last(self) -> int:
        return self.messages[-1][0] if self.messages else 0

    def close(self) -> None:
        if self.closer is not None:
            self.closer()
        if self.thread is not None:
            self.thread.join(2.0)

    def resume(self, door: str, must_reach: int) -> Resume:
        return Resume(door, self.requested, self.next_at_login, self.announced,
                      list(self.messages), must_reach, self.edge, self.mid_traffic)


def follow_ouch(client: SoupBinClient, number: int, f: Follower, stop: threading.Event) -> None:
    """A SoupBinTCP session's reader: number each Sequenced Data, heartbeat while idle."""
    beat = time.monotonic()
    while not stop.is_set():
        try:
            packets = client.receive(HEARTBEAT_S / 2)
        except TimeoutError:
            packets = []
        except OSError:
            return
        if packets is None:
            return
        for p in packets:
            if type(p) is sb.SequencedData:
                f.messages.append((number, p.payload.hex()))
                number += 1
        if time.monotonic() - beat >= HEARTBEAT_S:
            beat = time.monotonic()
            try:
                client.send(sb.ClientHeartbeat())
            except OSError:
                return


def _start(target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


class OuchDriver:
    """The account's SoupBinTCP sessions, and its traffic as pipelined OUCH orders."""

    door = SOUPBINTCP

    def __init__(self, sut: Sut, account: str, password: str, symbol: str, price: int) -> None:
        self.sut, self.account, self.password = sut, account, password
        self.symbol, self.price = symbol, price
        self.traffic = ouch_door(sut, timeout_s=SETTLE_S)
        self.traffic.send(sb.LoginRequest(account, password, "", 0))
        self.traffic.logged_in()

    def follow(self, requested: int | None, next_at_login: int, edge: str = "",
               mid_traffic: bool = False) -> Follower:
        client = ouch_door(self.sut)
        accepted = client.login(self.account, self.password, sequence=requested or 0)
        if not isinstance(accepted, sb.LoginAccepted):
            client.close()
            raise ConnectionError(f"login at {requested} answered {accepted!r}")
        f = Follower(requested, next_at_login, edge, mid_traffic, accepted.sequence_number)
        stop = threading.Event()

        def read() -> None:
            try:
                follow_ouch(client, accepted.sequence_number, f, stop)
            finally:  # closed by its reader only
                client.close()

        def wake() -> None:
            stop.set()
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)

        f.closer, f.thread = wake, _start(read)
        return f

    def burst(self, tag: str, rounds: int) -> Callable[[], None]:
        """Pipeline ``rounds`` rounds; the waiter reads the traffic session to the last cancel."""
        last = ""
        for i in range(rounds):
            buy, sell = f"{tag}{i:03d}B", f"{tag}{i:03d}S"
            self.traffic.send_ouch(EnterOrder(buy, b"B", 10, self.symbol, self.price))
            self.traffic.send_ouch(EnterOrder(sell, b"S", 4, self.symbol, self.price))
            self.traffic.send_ouch(CancelOrder(buy, 0))
            last = buy

        def wait() -> None:
            deadline = time.monotonic() + SETTLE_S
            while time.monotonic() < deadline:
                try:
                    msg = self.traffic.message(max(deadline - time.monotonic(), 0.01))
                except (TimeoutError, ConnectionError):
                    return
                if type(msg) is OrderCanceled and msg.order_token.strip() == last:
                    return
        return wait

    def close(self) -> None:
        self.traffic.close()


class SseDriver:
    """The account's SSE streams, and its traffic as HTTP requests from a thread."""

    door = SSE

    def __init__(self, sut: Sut, account: str, password: str, symbol: str, price: int) -> None:
        self.sut, self.auth = sut, (account, password)
        self.symbol, self.price = symbol, price
        try:  # an HTTP door without the event stream: nothing to resume (N/A)
            http_door(sut, self.auth).events(None, timeout_s=SETTLE_S).close()
        except ClientError as exc:
            na(f"{sut.name}'s HTTP door offers no SSE event stream ({exc})")

    def follow(self, requested: int | None, next_at_login: int, edge: str = "",
               mid_traffic: bool = False) -> Follower:
        conn: HttpConnection = http_door(self.sut, self.auth)
        stream = conn.events(requested, timeout_s=STREAM_TIMEOUT_S)
        f = Follower(requested, next_at_login, edge, mid_traffic)

        def read() -> None:
            try:
                while (ev := stream.next()) is not None:
                    f.messages.append((ev.id if ev.id is not None else -1,
                                       json.dumps(ev.data, sort_keys=True)))
            except (OSError, ValueError):
                pass
            finally:  # closed by its reader only: http.client is not safe across threads
                stream.close()

        def wake() -> None:
            with contextlib.suppress(OSError, AttributeError):
                stream.conn.sock.shutdown(socket.SHUT_RDWR)

        f.closer, f.thread = wake, _start(read)
        return f

    def burst(self, tag: str, rounds: int) -> Callable[[], None]:
        def send() -> None:
            with http_door(self.sut, self.auth, timeout_s=SETTLE_S) as door:
                for i in range(rounds):
                    buy, sell = f"{tag}{i:03d}B", f"{tag}{i:03d}S"
                    order = {"symbol": self.symbol, "price": self.price}
                    try:
                        door.request("POST", "/v1/orders", {**order, "token": buy, "side": "B",
                                                            "qty": 10})
                        door.request("POST", "/v1/orders", {**order, "token": sell, "side": "S",
                                                            "qty": 4})
                        door.request("DELETE", f"/v1/orders/{buy}")
                    except ConnectionError:
                        return
        thread = _start(send)
        return lambda: thread.join(SETTLE_S * 3)

    def close(self) -> None:
        pass


Driver = OuchDriver | SseDriver


def point(door: str, edge: str, head: int, rng: random.Random) -> int | None:
    """The requested number (SoupBinTCP) or Last-Event-ID (SSE) for an edge, or a random one."""
    past = head + 1 + rng.randint(1, 1000)
    if door == SOUPBINTCP:
        return {"first": 1, "last": max(head, 1), "next": head + 1, "past": past,
                "current": 0}.get(edge, rng.randint(0, head + 3))
    if edge == "current" or (not edge and rng.random() < 0.1):
        return None
    return {"first": 0, "last": max(head - 1, 0), "next": head,
            "past": past - 1}.get(edge, rng.randint(0, head + 3))


@dataclass(slots=True)
class Trial:
    """What a run of resumes produced: the recorder's history and one ``Resume`` per session."""

    history: list[tuple[int, str]]
    resumes: list[Resume]
    stalled: str | None = None  #: why the run stopped early: the exchange stopped answering


def _quiet(followers: list[Follower], window_s: float, limit_s: float,
           reach: int | None = None) -> None:
    """Wait until every follower has ``reach`` (when given), or none got anything for ``window_s``."""
    seen = [-1, time.monotonic()]

    def done() -> bool:
        if reach is not None and all(f.last() >= reach for f in followers):
            return True
        n = sum(len(f.messages) for f in followers)
        if n != seen[0]:
            seen[:] = [n, time.monotonic()]
        return time.monotonic() - seen[1] >= window_s

    wait_for(done, limit_s, 0.01)


def _head(recorder: Follower) -> int:
    """The recorder's head once it has seen nothing new for ``QUIET_S``."""
    _quiet([recorder], QUIET_S, SETTLE_S)
    return recorder.last()


def _drain(followers: list[Follower], reach: int) -> None:
    """Read the sessions up to ``reach``: a lagging one keeps receiving, a short one goes quiet."""
    _quiet(followers, DRAIN_QUIET_S, DRAIN_S, reach)


def _past(recorder: Follower, head: int) -> bool:
    return recorder.last() > head


def _retire(followers: list[Follower], door: str, reach: int) -> list[Resume]:
    """Close each session: judged as read up to the recorder's head ``reach``."""
    for f in followers:
        f.close()
    return [f.resume(door, reach) for f in followers]


def run_resumes(driver: Driver, rng: random.Random, steps: int, rounds: int,
                prefix: str) -> Trial:
    """The steps of the module doc; every session is closed before this returns."""
    first = 1 if driver.door == SOUPBINTCP else 0
    recorder = driver.follow(first, 1, "", False)
    resumes: list[Resume] = []
    previous: list[Follower] = []
    stalled = None
    try:
        for w in range(2):
            driver.burst(f"{prefix}W{w}", rounds)()
        head = _head(recorder)
        for step in range(steps):
            edge = EDGES[step] if step < len(EDGES) else ""
            opened = [driver.follow(point(driver.door, edge, head, rng), head + 1, edge)]
            wait = driver.burst(f"{prefix}{step:03d}", rounds)
            if not wait_for(partial(_past, recorder, head), SETTLE_S, 0.002):  # released, not all yet
                stalled = (f"the account's stream stayed at {head} for {SETTLE_S:.0f} s after "
                           f"{rounds} new order pairs (step {step + 1} of {steps})")
                previous += opened
                break
            opened.append(driver.follow(rng.randint(first, head), head + 1, "", True))
            wait()
            reach = _head(recorder)
            _drain(previous + opened, reach)
            resumes += _retire(previous, driver.door, reach)
            previous, head = opened, reach
        reach = _head(recorder)
        _drain(previous, reach)
        resumes += _retire(previous, driver.door, reach)
        previous = []
    finally:
        for f in [*previous, recorder]:
            f.close()
        driver.close()
    return Trial(list(recorder.messages), resumes, stalled)
