"""Seeded bad input for the doors, and the verdict on one door's fuzzing run.

``fuzz`` feeds hypothesis-generated examples to a callback: generation only
(no shrinking, no database), seeded from ``--seed``, ``frames_wanted`` of
them (the profile's ``fuzz_frames_per_door``). A frame is judged by the
door's answer, not by an assertion, so the callback only counts; ``judge``
turns the counts into the door's verdict. The strategies, one per door:

- ``http_requests``: raw HTTP/1.1 requests with fuzzed methods, paths,
  queries, credentials and bodies (``json_values``, ``broken_orders``), and
  now and then raw garbage;
- ``ouch_frames``: garbage before login, or SoupBinTCP packets and
  Unsequenced Data that is not an OUCH 4.2 client message after one;
- ``rerequests``: random datagrams and MoldUDP64 requests for the
  sequencer's retransmission port.
"""

from __future__ import annotations

import contextlib
import json

import _support as s
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from harness.checkers import Verdict
from harness.clients import basic_auth
from harness.coverage import covered
from reference_impl.core import ouch_codec
from reference_impl.core.errors import DecodeError

ORDER_VERBS = {("POST", "orders"), ("DELETE", "order"), ("POST", "replace")}


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

    with seed_only_generation():
        run()


@contextlib.contextmanager
def seed_only_generation():
    """Generation that depends on the seed and the strategies only.

    hypothesis (6.131 and later) also draws literal constants found in every
    project module loaded at the time, so the same seed gave different
    frames after ``-k``, an extra import or any edit elsewhere. While
    fuzzing, that pool is empty (hypothesis' built-in constants stay). The
    hook is internal to hypothesis: if it is gone, generation is unchanged
    and tests/harness/test_fuzz_seed.py fails, which says so.
    """
    try:
        from hypothesis.internal.conjecture import providers

        original = providers._get_local_constants
        empty = providers.Constants()
        cache = providers.CONSTANTS_CACHE.cache
    except (ImportError, AttributeError):
        yield
        return
    cache.clear()  # allowed constants cached from the project's pool
    providers._get_local_constants = lambda: empty
    try:
        yield
    finally:
        providers._get_local_constants = original
        cache.clear()


def sequenced(sut) -> int | None:
    head = s.sequenced_head(sut)
    if head is None and sut.offers("journal"):
        head = len(sut.journal() or [])
    return head


def judge(rid: str, frames: int, wanted: int, problems: list[str], evidence: dict,
          summary: str, profile: dict) -> None:
    """Fail on problems; else UNKNOWN when fewer frames than asked were generated, or the
    evidence misses a situation (``harness.coverage``: inputs sent, sequencing counted)."""
    evidence.update(frames=frames, frames_wanted=wanted)
    counted = evidence.get("sequenced_before") is not None and evidence.get("sequenced_after") is not None
    seen = {"inputs": frames, "sequencing_counted": int(counted)}
    if problems:
        s.judge(covered(Verdict.failed(rid, "; ".join(problems), evidence), seen, profile))
    if frames < wanted:
        s.judge(covered(Verdict.unknown(rid, f"only {frames} of {wanted} frames were generated",
                                        evidence), seen, profile))
    s.judge(covered(Verdict.passed(rid, summary, evidence), seen, profile))


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


# ------------------------------------------------------------------ re-request port


@st.composite
def rerequests(draw, session: bytes):
    if draw(st.booleans()):
        return draw(st.binary(min_size=0, max_size=64))
    sess = draw(st.sampled_from([session, b"WRONGSESSN", b"\x00" * 10]) |
                st.binary(min_size=10, max_size=10))
    return sess + draw(st.integers(0, 2**64 - 1)).to_bytes(8, "big") + \
        draw(st.integers(0, 0xFFFF)).to_bytes(2, "big")
