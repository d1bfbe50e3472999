"""An output stream fetched from its publisher with MoldUDP64 re-requests (docs/protocols-bus.md).

``published_streams(sut, ports)`` fetches, for each engine whose digest
reports ``published_seq > 0``, its whole stream from its re-request port:
what both adapters' ``output_streams()`` return. ``fetch_outputs(port,
head)`` asks the publisher's re-request port for
messages ``1..head`` (1000 per request, until five requests in a row bring
nothing new) and decodes each as an output record (``core.output_codec``,
docs/engine-node.md) into a replay-format output dict. The publisher's
retransmission ring holds only its latest messages, so a fetch may be
partial: ``coverage`` (when given) gets ``published_seq`` (the head),
``fetched`` (how many of ``1..head`` came back) and ``first_missing`` (None
when nothing is missing), so a checker can call partial evidence UNKNOWN.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping

from harness.sut.base import NotSupported, StreamPort, Sut, SutError
from reference_impl.core import mold_codec, output_codec
from reference_impl.core.replay_format import output_to_json

REQUEST_MAX = 1000  #: messages asked for per re-request
MISSES_MAX = 5  #: requests in a row that bring nothing new before giving up


def fetch_outputs(host: str, port: int, session: bytes, head: int, timeout_s: float = 0.5,
                  coverage: dict | None = None) -> list[dict]:
    """The stream's messages 1..``head`` the publisher still holds, in seq order."""
    got: dict[int, bytes] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        sock.settimeout(timeout_s)
        want, misses = 1, 0
        while want <= head and misses < MISSES_MAX:
            sock.sendto(mold_codec.encode_request(session, want, min(head - want + 1, REQUEST_MAX)),
                        (host, port))
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
    if coverage is not None:
        have = [seq for seq in got if 1 <= seq <= head]
        missing = next((seq for seq in range(1, head + 1) if seq not in got), None)
        coverage.update(published_seq=head, fetched=len(have), first_missing=missing)
    return [output_to_json(output_codec.decode(got[seq]).output) for seq in sorted(got)]


def published_streams(sut: Sut, ports: Mapping[str, StreamPort],
                      coverage: dict[str, dict] | None = None) -> dict[str, list[dict]]:
    """``{engine: outputs}`` for each engine in ``ports`` whose digest says it published."""
    streams: dict[str, list[dict]] = {}
    for name, where in ports.items():
        try:
            head = int(sut.digest(name).get("published_seq") or 0)
        except (NotSupported, SutError, OSError, ValueError, KeyError):
            continue
        if head <= 0:
            continue
        got: dict = {}
        streams[name] = fetch_outputs(where.host, where.port, where.session, head, coverage=got)
        if coverage is not None:
            coverage[name] = got
    return streams
