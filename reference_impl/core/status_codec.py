"""Binary codec of the status channel: small fixed-size UDP datagrams.

Components announce progress here so that gateways can gate acks and measure
backpressure, and the harness (and later the arbiter) can watch the cluster
without touching the data path. One datagram, one record; every record opens
with a type byte and the sender's component id, and carries the sender's
monotonic clock so a watcher can tell a silent component from a slow one.

- ``E`` EngineStatus: role, epoch, applied seq, the last input seq the primary
  has fully emitted (as the secondary sees it on the output stream).
- ``K`` Checkpoint: ``(seq, state_hash)`` every N messages, to catch divergence live.
- ``W`` LoggerWatermark: written seq (after write()) and durable seq (after fdatasync).
- ``Q`` SequencerStatus: the last seq published (the head of the core's ring).
"""

from __future__ import annotations

import struct
from typing import NamedTuple, Union

from .errors import DecodeError

PROTOCOL = "status"


class EngineStatus(NamedTuple):
    component_id: int
    primary: bool
    epoch: int
    applied_seq: int
    primary_emitted_seq: int
    mono_ns: int


class Checkpoint(NamedTuple):
    component_id: int
    seq: int
    state_hash: bytes  #: 32 bytes (sha256 digest)
    mono_ns: int


class LoggerWatermark(NamedTuple):
    component_id: int
    written_seq: int
    durable_seq: int
    mono_ns: int


class SequencerStatus(NamedTuple):
    component_id: int
    published_seq: int
    mono_ns: int


Status = Union[EngineStatus, Checkpoint, LoggerWatermark, SequencerStatus]

_LAYOUTS: dict[bytes, tuple[struct.Struct, type]] = {
    b"E": (struct.Struct(">cH?IQQQ"), EngineStatus),
    b"K": (struct.Struct(">cHQ32sQ"), Checkpoint),
    b"W": (struct.Struct(">cHQQQ"), LoggerWatermark),
    b"Q": (struct.Struct(">cHQQ"), SequencerStatus),
}
_TAGS = {kind: (tag, layout) for tag, (layout, kind) in _LAYOUTS.items()}


def encode(record: Status) -> bytes:
    tag, layout = _TAGS[type(record)]
    return layout.pack(tag, *record)


def decode(data: bytes) -> Status:
    if not data:
        raise DecodeError(PROTOCOL, "type", data, "empty datagram")
    entry = _LAYOUTS.get(data[:1])
    if entry is None:
        raise DecodeError(PROTOCOL, "type", data[:1], "unknown status type")
    layout, kind = entry
    if len(data) != layout.size:
        raise DecodeError(PROTOCOL, "length", len(data), f"type {data[:1]!r} needs {layout.size}")
    return kind(*layout.unpack(data)[1:])
