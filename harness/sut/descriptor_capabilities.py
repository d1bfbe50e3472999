"""The descriptor's optional capability keys: a component's WAL and bus stream, the replay command.

- ``wal: {format: crucible-wal-1, dir: DIR}`` on the ``logger``-role
  component: its sequenced input is stored in the reference WAL format
  (docs/wal-format.md) under ``DIR`` (a template, relative to the run
  directory; default the component's ``data_dir``). Gives the ``wal`` and
  ``wal_damage`` capabilities.
- ``stream: {session: NAME, rerequest: PORT}``: the component publishes a
  MoldUDP64 stream with that session and answers re-requests for it on
  ``PORT`` (docs/protocols-bus.md). On the sequencer it gives ``rerequest``;
  on the engines (whose digest reports ``published_seq``, and whose
  messages are output records, docs/engine-node.md) ``output_streams``.
- ``replay: CMD`` (top level): a command that runs a replay-format input
  file through the SUT's own engine and writes the output lines, ending with
  the ``end`` line (docs/replay-format.md). Gives ``offline_replay``.
  Besides the usual placeholders it takes ``{input}``, ``{output}`` and
  ``{instruments}`` (a YAML file ``{SYMBOL: tick}`` of the descriptor's
  instruments).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.sut.descriptor_fields import DescriptorError, _command, _get, _no_unknown, _port_ref, fill

WAL_FORMATS = ("crucible-wal-1",)
REPLAY_PLACEHOLDERS = ("input", "output", "instruments")
SESSION_LEN = 10  #: MoldUDP64 session: 10 ASCII letters or digits, space-padded


@dataclass(frozen=True, slots=True)
class WalSpec:
    format: str
    dir: str  #: a template, relative to the run directory


@dataclass(frozen=True, slots=True)
class StreamSpec:
    session: str  #: as declared (padded to 10 on the wire)
    rerequest: int  #: the re-request port (declared, before the offset)
    host: str = "127.0.0.1"

    def session_bytes(self) -> bytes:
        return self.session.ljust(SESSION_LEN).encode("ascii")


def parse_wal(raw: Any, key: str, role: str, data_dir: str | None, ctx: Mapping) -> WalSpec:
    if not isinstance(raw, dict):
        raise DescriptorError(key, f"must be a mapping with format ({', '.join(WAL_FORMATS)}) "
                                   "and dir")
    _no_unknown(raw, ("format", "dir"), key + ".")
    fmt = _get(raw, "format", key + ".", (str,))
    if fmt not in WAL_FORMATS:
        raise DescriptorError(key + ".format", f"must be one of {', '.join(WAL_FORMATS)} "
                                               f"(got {fmt!r})")
    if role != "logger":
        raise DescriptorError(key, f"only the logger-role component's WAL is read (this one's "
                                   f"role is {role!r})")
    directory = _get(raw, "dir", key + ".", (str,), data_dir)
    if directory is None:
        raise DescriptorError(key + ".dir", "missing (and the component has no data_dir)")
    fill(directory, ctx, key + ".dir")
    return WalSpec(fmt, directory)


def parse_stream(raw: Any, key: str, own: Mapping[str, int]) -> StreamSpec:
    if not isinstance(raw, dict):
        raise DescriptorError(key, "must be a mapping with session and rerequest")
    _no_unknown(raw, ("session", "rerequest", "host"), key + ".")
    session = _get(raw, "session", key + ".", (str,))
    if not (session.isascii() and session.isalnum() and len(session) <= SESSION_LEN):
        raise DescriptorError(key + ".session", f"must be 1 to {SESSION_LEN} ASCII letters or "
                                                f"digits (got {session!r})")
    if "rerequest" not in raw:
        raise DescriptorError(key + ".rerequest", "missing")
    port = _port_ref(raw["rerequest"], key + ".rerequest", own, "one of this component's ports")
    return StreamSpec(session, port, _get(raw, "host", key + ".", (str,), "127.0.0.1"))


def parse_replay(raw: Any, ctx: Mapping) -> tuple[str, ...] | None:
    if raw is None:
        return None
    argv = _command(raw, "replay")
    sample = type(ctx)(ctx)  # keeps the unknown-placeholder check
    sample.update({name: f"/{name}" for name in REPLAY_PLACEHOLDERS})
    for i, arg in enumerate(argv):
        fill(arg, sample, f"replay[{i}]")
    return argv
