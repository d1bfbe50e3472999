"""Bad input: fuzzed doors keep serving, and nothing is sequenced from garbage.

Hypothesis generates ``profile["fuzz_frames_per_door"]`` frames for each of
three doors of one SUT (seeded from ``--seed``; generation only, no
shrinking: a frame is judged by the door's answer, not by an assertion):

- **HTTP door**: requests with fuzzed methods, paths, queries, credentials
  and bodies (arbitrary JSON, valid orders with one field broken, raw
  bytes), framed with a correct ``Content-Length`` and sent on one
  keep-alive connection (a new one whenever the server closes it), plus raw
  garbage connections. No answer may be a 500. Each request the door
  answered 200 to an order verb was a well-formed request and is sequenced
  once; nothing else may be.
- **OUCH door**: raw bytes before login, and after a valid login random
  SoupBinTCP packets and Unsequenced Data payloads that are not OUCH 4.2
  client messages. Each connection must be closed by the server, and
  nothing sequenced.
- **re-request port** (the sequencer's MoldUDP64 retransmission port):
  random datagrams and MoldUDP64 requests with random sessions, seqs and
  counts. Nothing sequenced.

After each door's run the component must still serve: the door answers a
valid order (HTTP, OUCH) or the sequencer answers ``health`` and a
re-request for seq 1 (re-request port).
"""

from __future__ import annotations

import http.client
import json
import socket
import time

import _support as s
import pytest
from _doors import (
    HttpSession,
    OuchSession,
    basic_auth,
    http_address,
    json_of,
    ouch_address,
)
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from harness.checkers import Verdict
from reference_impl.core import mold_codec, ouch_codec
from reference_impl.core.errors import DecodeError
from reference_impl.core.ouch_messages import EnterOrder, OrderAccepted

ORDER_VERBS = {("POST", "orders"), ("DELETE", "order"), ("POST", "replace")}


@pytest.fixture(scope="module")
def fuzz_sut(sut_name, seed, profile, tmp_path_factory):
    with s.open_sut(sut_name, tmp_path_factory.mktemp("bad_input"), seed, profile) as sut:
        yield sut


def frames_wanted(profile: dict) -> int:
    return int(profile.get("fuzz_frames_per_door", 2000))


def fuzz(strategy, count: int, seed: int, on_example) -> None:
    """Feed ``count`` generated examples to ``on_example`` (generation only, seeded)."""

    @settings(max_examples=count, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @hypothesis_seed(seed)
    @given(strategy)
    def run(example):
        on_example(example)

    run()


def sequenced(sut) -> int | None:
    head = s.sequenced_head(sut)
    if head is None and sut.offers("journal"):
        head = len(sut.journal() or [])
    return head


def judge(rid: str, frames: int, wanted: int, problems: list[str], evidence: dict,
          summary: str) -> None:
    evidence.update(frames=frames, frames_wanted=wanted)
    if problems:
        s.judge(Verdict.failed(rid, "; ".join(problems), evidence))
    if frames < wanted:
        s.judge(Verdict.unknown(rid, f"only {frames} of {wanted} frames were generated",
                                evidence))
    s.judge(Verdict.passed(rid, summary, evidence))


# ------------------------------------------------------------------ HTTP


def json_values():
    scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | \
        st.floats(allow_nan=False) | st.text(max_size=20)
    return st.recursive(scalars, lambda kids: st.lists(kids, max_size=4) |
                        st.dictionaries(st.text(max_size=10), kids, max_size=4), max_leaves=8)


@st.composite
def broken_orders(draw, symbols: list[str]):
    order = {"token": draw(st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1,
                                   max_size=16)),
             "symbol": draw(st.sampled_from(symbols + ["", "acme", "TOOLONGSYMBOL"])),
             "side": draw(st.sampled_from(["B", "S", "X", "b"])),
             "qty": draw(st.integers(-5, 2**40)), "price": draw(st.integers(-5, 2**40)),
             "ord_type": draw(st.sampled_from(["limit", "market", "stop"])),
             "tif": draw(st.sampled_from(["DAY", "IOC", "FOK", "GTC"]))}
    key = draw(st.sampled_from(sorted(order) + ["extra"]))
    action = draw(st.sampled_from(["drop", "replace"]))
    if action == "drop":
        order.pop(key, None)
    else:
        order[key] = draw(json_values())
    return order


@st.composite
def http_requests(draw, accounts: dict[str, str], symbols: list[str]):
    """``(raw bytes, method, kind)``; kind names the order verb the route is (or None)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(min_size=1, max_size=300)), "RAW", None
    method = draw(st.sampled_from(["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"]) |
                  st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=8))
    token = draw(st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789%._-~", min_size=0, max_size=20))
    route = draw(st.sampled_from(["orders", "order", "replace", "health", "list", "other"]))
    path = {"orders": "/v1/orders", "order": f"/v1/orders/{token}",
            "replace": f"/v1/orders/{token}/replace", "health": "/v1/health",
            "list": "/v1/orders?state=" + token,
            "other": "/" + draw(st.text(st.characters(min_codepoint=33, max_codepoint=126),
                                        max_size=40))}[route]
    if route == "order" and draw(st.booleans()):
        path += "?qty=" + draw(st.text("0123456789-x", max_size=8))
    assume(not path.startswith("/v1/events"))  # an SSE stream never ends
    account, password = draw(st.sampled_from(sorted(accounts.items())))
    auth = draw(st.sampled_from(["valid", "wrong", "none", "garbage"]))
    headers = []
    if auth == "valid":
        headers.append("Authorization: " + basic_auth(account, password))
    elif auth == "wrong":
        headers.append("Authorization: " + basic_auth(account, password + "!"))
    elif auth == "garbage":
        headers.append("Authorization: " + draw(st.text(st.characters(min_codepoint=32,
                                                                       max_codepoint=126),
                                                        max_size=30)))
    shape = draw(st.sampled_from(["order", "json", "bytes", "none"]))
    if shape == "order":
        body = json.dumps(draw(broken_orders(symbols))).encode()
    elif shape == "json":
        body = json.dumps(draw(json_values())).encode()
    elif shape == "bytes":
        body = draw(st.binary(max_size=200))
    else:
        body = b""
    if body:
        headers.append("Content-Type: " + draw(st.sampled_from(
            ["application/json", "text/plain", "application/x-www-form-urlencoded"])))
    headers.append(f"Content-Length: {len(body)}")
    head = f"{method} {path} HTTP/1.1\r\nHost: fuzz\r\n" + "".join(h + "\r\n" for h in headers)
    kind = route if (method, route) in ORDER_VERBS and auth == "valid" else None
    return head.encode("latin-1") + b"\r\n" + body, method, kind


class RawHttp:
    """One keep-alive socket; a new one whenever the server closes."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.sock: socket.socket | None = None

    def exchange(self, data: bytes, method: str) -> int | None:
        if self.sock is None:
            self.sock = socket.create_connection(self.address, timeout=3.0)
        try:
            self.sock.sendall(data)
            resp = http.client.HTTPResponse(self.sock, method=method)
            resp.begin()
            resp.read()
            if resp.will_close:
                self.close()
            return resp.status
        except (OSError, http.client.HTTPException):
            self.close()
            return None

    def garbage(self, data: bytes) -> None:
        """Raw bytes on a fresh connection, then EOF; read until the server closes."""
        with socket.create_connection(self.address, timeout=3.0) as sock:
            try:
                sock.sendall(data)
                sock.shutdown(socket.SHUT_WR)
                while sock.recv(65536):
                    pass
            except OSError:
                pass

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def valid_order_roundtrip(sut, token: str) -> tuple[int, list]:
    account, password = next(iter(sut.accounts().items()))
    symbol = next(iter(sut.instruments()), "ACME")
    session = HttpSession(*http_address(sut), timeout_s=5.0)
    try:
        status, _, data = session.request(
            "POST", "/v1/orders",
            json.dumps({"token": token, "symbol": symbol, "side": "S", "qty": 1,
                        "price": 10_000 * sut.instruments().get(symbol, 100)}).encode(),
            {"Authorization": basic_auth(account, password),
             "Content-Type": "application/json"})
    except OSError as exc:
        return 0, [str(exc)]
    finally:
        session.close()
    return status, (json_of(data) or {}).get("outputs", [])


@pytest.mark.requirement("bad_input.http_door",
                         title="fuzzed HTTP requests: the door keeps serving, nothing is "
                               "sequenced from garbage")
def test_fuzz_http_door(fuzz_sut, seed, profile):
    sut = fuzz_sut
    s.require_features(sut, "http")
    wanted = frames_wanted(profile)
    raw = RawHttp(http_address(sut))
    statuses: dict[str, int] = {}
    counts = {"frames": 0, "order_200": 0, "order_504": 0, "server_errors": 0}
    examples: list = []
    before = sequenced(sut)

    def send(example) -> None:
        data, method, kind = example
        counts["frames"] += 1
        if method == "RAW":
            raw.garbage(data)
            statuses["closed"] = statuses.get("closed", 0) + 1
            return
        status = raw.exchange(data, method)
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        if status == 200 and kind is not None:
            counts["order_200"] += 1
        elif status == 504 and kind is not None:
            counts["order_504"] += 1
        elif status is not None and status >= 500 and status != 504:
            counts["server_errors"] += 1
            if len(examples) < 5:
                examples.append({"status": status, "request": data[:300].decode("latin-1")})

    try:
        fuzz(http_requests(sut.accounts(), list(sut.instruments()) or ["ACME"]), wanted, seed,
             send)
    finally:
        raw.close()
    s.settle(sut, timeout_s=5.0)
    after = sequenced(sut)
    status, outputs = valid_order_roundtrip(sut, f"FZH{seed % 100000:05d}")
    evidence = {"statuses": statuses, **counts, "sequenced_before": before,
                "sequenced_after": after, "server_error_examples": examples,
                "after_fuzz_order": {"status": status, "outputs": outputs[:2]}}
    problems = []
    if counts["server_errors"]:
        problems.append(f"{counts['server_errors']} requests got a 5xx server error")
    if before is not None and after is not None:
        extra = after - before - counts["order_200"]
        if extra < 0 or extra > counts["order_504"]:
            problems.append(f"{after - before} messages sequenced for {counts['order_200']} "
                            "well-formed order requests")
    if status != 200 or not any(o.get("type") == "accepted" for o in outputs):
        problems.append(f"after the fuzzing a valid order got HTTP {status} {outputs[:1]}")
    judge("bad_input.http_door", counts["frames"], wanted, problems, evidence,
          f"{counts['frames']} fuzzed requests: no 5xx, only the {counts['order_200']} "
          "well-formed order requests sequenced; a valid order still accepted")


# ------------------------------------------------------------------ OUCH


def not_ouch(payload: bytes) -> bool:
    try:
        ouch_codec.decode_inbound(payload)
    except (DecodeError, ValueError):
        return True
    return False


@st.composite
def ouch_frames(draw):
    """``(login first?, bytes)``: garbage before login, or bad packets after one."""
    mode = draw(st.sampled_from(["prelogin", "packet", "unsequenced", "unsequenced-typed"]))
    if mode == "prelogin":
        return False, draw(st.binary(min_size=1, max_size=120))
    if mode == "packet":
        ptype = draw(st.binary(min_size=1, max_size=1))
        payload = draw(st.binary(max_size=80))
        length = draw(st.sampled_from([len(payload) + 1, len(payload) + 1,
                                       draw(st.integers(0, 0xFFFF))]))
        return True, length.to_bytes(2, "big") + ptype + payload
    if mode == "unsequenced-typed":
        payload = draw(st.sampled_from([b"O", b"U", b"X"])) + draw(st.binary(max_size=60))
    else:
        payload = draw(st.binary(min_size=0, max_size=100))
    assume(not_ouch(payload))
    return True, (len(payload) + 1).to_bytes(2, "big") + b"U" + payload


@pytest.mark.requirement("bad_input.ouch_door",
                         title="fuzzed SoupBinTCP/OUCH frames: the door keeps serving, "
                               "nothing is sequenced from garbage")
def test_fuzz_ouch_door(fuzz_sut, seed, profile):
    sut = fuzz_sut
    s.require_features(sut, "ouch")
    wanted = frames_wanted(profile)
    address = ouch_address(sut)
    account, password = list(sut.accounts().items())[-1]
    counts = {"frames": 0, "closed_by_server": 0, "not_closed": 0, "login_refused": 0,
              "served_data": 0}
    examples: list = []
    before = sequenced(sut)

    def send(example) -> None:
        login, data = example
        counts["frames"] += 1
        c = OuchSession(address, timeout_s=3.0)
        try:
            if login and not isinstance(c.login(account, password), c.sb.LoginAccepted):
                counts["login_refused"] += 1
                return
            c.send_raw(data)
            c.sock.shutdown(socket.SHUT_WR)
            try:
                seen = c.until_closed()
                counts["closed_by_server"] += 1
            except (OSError, DecodeError):
                seen = []
                counts["not_closed"] += 1
            served = [p for p in seen if isinstance(p, (c.sb.SequencedData, c.sb.LoginAccepted))]
            if served:
                counts["served_data"] += 1
                if len(examples) < 5:
                    examples.append({"sent": data[:120].hex(), "got": [repr(p) for p in served]})
        except OSError:
            counts["not_closed"] += 1
        finally:
            c.close()

    fuzz(ouch_frames(), wanted, seed, send)
    s.settle(sut, timeout_s=5.0)
    after = sequenced(sut)
    c = OuchSession(address, timeout_s=5.0)
    try:
        login = c.login(account, password)
        symbol = next(iter(sut.instruments()), "ACME")
        token = f"FZO{seed % 100000:05d}"
        c.send(c.sb.UnsequencedData(ouch_codec.encode(
            EnterOrder(token, b"S", 1, symbol, 10_000 * sut.instruments().get(symbol, 100)))))
        reply = c.next()
        msg = ouch_codec.decode_outbound(reply.payload) if isinstance(
            reply, c.sb.SequencedData) else reply
    finally:
        c.close()
    evidence = {**counts, "sequenced_before": before, "sequenced_after": after,
                "served_examples": examples, "after_fuzz": repr(msg)}
    problems = []
    if before is not None and after is not None and after != before:
        problems.append(f"{after - before} messages sequenced from garbage")
    if counts["served_data"]:
        problems.append(f"{counts['served_data']} garbage frames got data back "
                        f"(first: {examples[0] if examples else '?'})")
    if counts["login_refused"]:
        problems.append(f"{counts['login_refused']} valid logins refused during the fuzzing")
    if not isinstance(login, c.sb.LoginAccepted) or not isinstance(msg, OrderAccepted):
        problems.append(f"after the fuzzing a valid login and order got {login!r} / {msg!r}")
    judge("bad_input.ouch_door", counts["frames"], wanted, problems, evidence,
          f"{counts['frames']} fuzzed frames, each connection closed by the server, nothing "
          "sequenced; a valid order still accepted")


# ------------------------------------------------------------------ re-request port


@st.composite
def rerequests(draw, session: bytes):
    if draw(st.booleans()):
        return draw(st.binary(min_size=0, max_size=64))
    sess = draw(st.sampled_from([session, b"WRONGSESSN", b"\x00" * 10]) |
                st.binary(min_size=10, max_size=10))
    return sess + draw(st.integers(0, 2**64 - 1)).to_bytes(8, "big") + \
        draw(st.integers(0, 0xFFFF)).to_bytes(2, "big")


@pytest.mark.requirement("bad_input.rerequest_port",
                         title="fuzzed MoldUDP64 re-requests: the sequencer keeps serving, "
                               "nothing is sequenced from garbage")
def test_fuzz_rerequest_port(fuzz_sut, seed, profile):
    sut = fuzz_sut
    cfg = getattr(sut, "config", None)
    sequencer = s.component(sut, "sequencer")
    if cfg is None or sequencer is None:
        s.na(f"{sut.name} does not expose its sequencer's re-request port")
    wanted = frames_wanted(profile)
    session = cfg.input_stream.session.encode("ascii")
    target = ("127.0.0.1", cfg.sequencer.retransmit_port)
    before = sequenced(sut)
    counts = {"frames": 0, "replies": 0}
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)

    def drain() -> None:
        while True:
            try:
                sock.recv(65535)
                counts["replies"] += 1
            except BlockingIOError:
                return

    def send(datagram: bytes) -> None:
        counts["frames"] += 1
        try:
            sock.sendto(datagram, target)
        except OSError:
            pass
        if counts["frames"] % 50 == 0:
            time.sleep(0.002)  # let the sequencer keep up: a full socket buffer drops
        drain()

    try:
        fuzz(rerequests(session), wanted, seed, send)
        time.sleep(0.2)
        drain()
        healthy = s.wait_for(lambda: s.health_ok(sut, sequencer), 5.0)
        after = sequenced(sut)
        sock.setblocking(True)
        sock.settimeout(2.0)
        sock.sendto(mold_codec.encode_request(session, 1, 1), target)
        try:
            answer = mold_codec.decode_packet(sock.recv(65535))
            answered = {"seq": answer.seq, "messages": len(answer.messages)}
        except (OSError, DecodeError) as exc:
            answered = {"error": str(exc)}
    finally:
        sock.close()
    digest = s.safe_digest(sut, sequencer) or {}
    evidence = {**counts, "sequenced_before": before, "sequenced_after": after,
                "healthy": healthy, "rerequest_after": answered,
                "sequencer_counters": digest.get("counters")}
    problems = []
    if before is not None and after is not None and after != before:
        problems.append(f"{after - before} messages sequenced from re-request garbage")
    if not healthy:
        problems.append("the sequencer stopped answering health")
    if before and "error" in answered:
        problems.append(f"a valid re-request for seq 1 went unanswered ({answered['error']})")
    judge("bad_input.rerequest_port", counts["frames"], wanted, problems, evidence,
          f"{counts['frames']} fuzzed datagrams: the sequencer still serves health and "
          "re-requests, nothing sequenced")
