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

The three doors share one SUT, fuzzed in this order (the re-request for
seq 1 needs what the doors before it sequenced). The strategies, the
generation-only driver and the verdict are in ``_fuzz``; the doors'
clients (the kit's own, in their raw modes) come from ``_doors``.
"""

from __future__ import annotations

import socket
import time

import _support as s
import pytest
from _continuity import CONTINUITY, TITLE, module_continuity
from _doors import http_door, ouch_door, valid_order_roundtrip
from _fuzz import frames_wanted, fuzz, http_requests, judge, ouch_frames, rerequests, sequenced

from harness.sut.base import NotSupported
from reference_impl.core import mold_codec, ouch_codec
from reference_impl.core import soupbin_codec as sb
from reference_impl.core.errors import DecodeError
from reference_impl.core.ouch_messages import EnterOrder, OrderAccepted


@pytest.fixture(scope="module")
def fuzz_sut(sut_name, seed, profile, tmp_path_factory):
    with s.open_sut(sut_name, tmp_path_factory.mktemp("bad_input"), seed, profile) as sut:
        yield sut


@pytest.mark.requirement("bad_input.http_door",
                         title="fuzzed HTTP requests: the door keeps serving, nothing is "
                               "sequenced from garbage")
def test_fuzz_http_door(fuzz_sut, seed, profile):
    sut = fuzz_sut
    s.require_features(sut, "http")
    wanted = frames_wanted(profile)
    raw = http_door(sut, timeout_s=3.0)
    statuses: dict[str, int] = {}
    counts = {"frames": 0, "order_200": 0, "order_504": 0, "server_errors": 0}
    examples: list = []
    before = sequenced(sut)

    def send(example) -> None:
        data, method, kind = example
        counts["frames"] += 1
        if method == "RAW":
            raw.send_garbage(data)
            statuses["closed"] = statuses.get("closed", 0) + 1
            return
        reply = raw.send_raw(data, method)
        status = reply.status if reply is not None else None
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
          "well-formed order requests sequenced; a valid order still accepted", profile)

@pytest.mark.requirement("bad_input.ouch_door",
                         title="fuzzed SoupBinTCP/OUCH frames: the door keeps serving, "
                               "nothing is sequenced from garbage")
def test_fuzz_ouch_door(fuzz_sut, seed, profile):
    sut = fuzz_sut
    s.require_features(sut, "ouch")
    wanted = frames_wanted(profile)
    account, password = list(sut.accounts().items())[-1]
    counts = {"frames": 0, "closed_by_server": 0, "not_closed": 0, "login_refused": 0,
              "served_data": 0}
    examples: list = []
    before = sequenced(sut)

    def send(example) -> None:
        login, data = example
        counts["frames"] += 1
        c = ouch_door(sut, timeout_s=3.0)
        try:
            if login and not isinstance(c.login(account, password), sb.LoginAccepted):
                counts["login_refused"] += 1
                return
            c.send_raw(data)
            c.shutdown()
            try:
                seen = c.until_closed()
                counts["closed_by_server"] += 1
            except (OSError, DecodeError):
                seen = []
                counts["not_closed"] += 1
            served = [p for p in seen if isinstance(p, (sb.SequencedData, sb.LoginAccepted))]
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
    with ouch_door(sut, timeout_s=5.0) as c:
        login = c.login(account, password)
        symbol = next(iter(sut.instruments()), "ACME")
        token = f"FZO{seed % 100000:05d}"
        c.send_ouch(EnterOrder(token, b"S", 1, symbol,
                               10_000 * sut.instruments().get(symbol, 100)))
        reply = c.packet()
        msg = ouch_codec.decode_outbound(reply.payload) if isinstance(
            reply, sb.SequencedData) else reply
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
    if not isinstance(login, sb.LoginAccepted) or not isinstance(msg, OrderAccepted):
        problems.append(f"after the fuzzing a valid login and order got {login!r} / {msg!r}")
    judge("bad_input.ouch_door", counts["frames"], wanted, problems, evidence,
          f"{counts['frames']} fuzzed frames, each connection closed by the server, nothing "
          "sequenced; a valid order still accepted", profile)


@pytest.mark.requirement("bad_input.rerequest_port",
                         title="fuzzed MoldUDP64 re-requests: the sequencer keeps serving, "
                               "nothing is sequenced from garbage")
def test_fuzz_rerequest_port(fuzz_sut, seed, profile):
    sut = fuzz_sut
    sequencer = s.component(sut, "sequencer")
    if sequencer is None or not sut.offers("rerequest"):
        s.na(f"{sut.name} does not expose its sequencer's re-request port")
    try:
        host, port, session = sut.stream_port(sequencer)
    except NotSupported as exc:
        s.na(str(exc))
    wanted = frames_wanted(profile)
    target = (host, port)
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
          "re-requests, nothing sequenced", profile)


@pytest.mark.requirement(CONTINUITY, title=TITLE)
def test_sequence_continuity(fuzz_sut, profile):
    """Last in the module: everything it sequenced is in the sequenced input once, in order."""
    s.judge(module_continuity(fuzz_sut, profile))
