"""``ExternalSut``'s optional capabilities, as its descriptor declares them.

A mixin for ``ExternalSut`` (harness.sut.external), which provides the
descriptor, the port offset, ``instruments()`` and the command templates
(``_argv``, ``_env``, ``_cwd``, ``_commands_offset``). Each method carries
out one ``base.Sut`` capability from the descriptor's keys
(docs/certify-your-exchange.md, "Optional capabilities"), and raises
``NotSupported`` when the key is absent:

- ``health``: the component's ``udp_health`` readiness port;
- ``journal``: the top-level ``journal`` command (it runs while the SUT is
  stopped too, with the last port offset);
- ``wal_records``, ``damage_wal``, ``repair_wal``, ``verify_wal``: the
  logger's ``wal: {format: crucible-wal-1}`` (``harness.sut.wal_files``);
- ``stream_port``, ``output_streams``: a component's ``stream: {session,
  rerequest}`` (``harness.sut.mold_fetch``);
- ``offline_replay``: the top-level ``replay`` command (``harness.sut.offline``);
- ``in_flight_limit``: the top-level ``in_flight_limit`` number.
"""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.sut import offline, wal_files
from harness.sut.base import NotSupported, StreamPort, SutError
from harness.sut.mold_fetch import published_streams
from reference_impl.core.replay_format import ReplayFormatError, parse_input_line

if TYPE_CHECKING:
    from harness.sut.descriptor import Descriptor

ENGINE_ROLES = ("primary", "secondary")


def udp_json(host: str, port: int, command: str, timeout_s: float) -> Any:
    """One ASCII command to a UDP admin port; its JSON answer."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout_s)
        s.sendto(command.encode("ascii"), (host, port))
        data, _ = s.recvfrom(65535)
    return json.loads(data)


class DeclaredCapabilities:
    """The capabilities an external SUT's descriptor declares (see the module doc)."""

    name: str
    descriptor: Descriptor
    offset: int | None
    _wal: wal_files.WalDir | None

    # -------------------------------------------------------------- health

    def health(self, name: str) -> bool:
        r = self.descriptor.component(name).ready
        if r.kind != "udp_health" or r.port is None:
            raise NotSupported(f"{self.name}: component {name!r} has no udp_health port")
        reply = udp_json(r.host, r.port + (self.offset or 0), "health", 2.0)
        return isinstance(reply, dict) and reply.get("ok") is True

    def in_flight_limit(self) -> int:
        if self.descriptor.in_flight_limit is None:
            raise NotSupported(f"{self.name}: the descriptor declares no in_flight_limit")
        return self.descriptor.in_flight_limit

    # -------------------------------------------------------------- the sequenced input

    def journal(self) -> list[dict] | None:
        d = self.descriptor
        if d.journal is None:
            return None
        with self._commands_offset():
            return self._journal(d)

    def _journal(self, d: Descriptor) -> list[dict]:
        """The journal command's lines, each checked as replay-format input."""
        cmd = self._argv(d.journal or (), None, "journal")
        try:
            res = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, check=False,
                                 env=self._env(None), cwd=self._cwd(None),
                                 timeout=d.journal_timeout_s)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SutError("journal", f"{cmd!r} failed: {exc}") from None
        if res.returncode != 0:
            raise SutError("journal", f"{cmd!r} exited with code {res.returncode}",
                           res.stderr.decode("utf-8", "replace")[-4000:])
        out = []
        for lineno, line in enumerate(res.stdout.decode("utf-8", "replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                parse_input_line(line, lineno)
            except ReplayFormatError as exc:
                raise SutError("journal", f"not a replay-format input line: {exc}") from None
            out.append(json.loads(line))
        return out


    def _wal_dir(self) -> wal_files.WalDir:
        if self._wal is None:
            raise NotSupported(f"{self.name} declares no wal")
        return self._wal

    def wal_records(self) -> list[tuple[int, bytes]]:
        return self._wal_dir().records()

    def damage_wal(self, how: str) -> dict[str, Any]:
        return self._wal_dir().damage(how)

    def repair_wal(self) -> None:
        self._wal_dir().repair()

    def verify_wal(self) -> tuple[int, str]:
        return self._wal_dir().verify()

    # -------------------------------------------------------------- the bus

    def stream_port(self, name: str) -> StreamPort:
        stream = self.descriptor.component(name).stream
        if stream is None:
            raise NotSupported(f"{self.name}: component {name!r} declares no stream")
        return StreamPort(stream.host, stream.rerequest + (self.offset or 0),
                          stream.session_bytes())

    def output_streams(self, coverage: dict[str, dict] | None = None) -> dict[str, list[dict]]:
        engines = [c.name for role in ENGINE_ROLES for c in self.descriptor.components
                   if c.role == role and c.stream is not None and c.digest is not None]
        if not engines:
            raise NotSupported(f"{self.name}: no engine declares its output stream")
        ports = {e: self.stream_port(e) for e in engines}
        return published_streams(self, ports, coverage)  # type: ignore[arg-type]

    # -------------------------------------------------------------- offline replay

    def offline_replay(self, entries: list[dict], work_dir: Path) -> list[str]:
        d = self.descriptor
        if d.replay is None:
            raise NotSupported(f"{self.name} declares no replay command")
        files = offline.prepare(entries, self.instruments(), Path(work_dir))
        extra = {"input": str(files.input), "output": str(files.output),
                 "instruments": str(files.instruments)}
        with self._commands_offset():
            argv = self._argv(d.replay, None, "replay", extra)
            return offline.run(argv, files, env=self._env(None), cwd=self._cwd(None),
                               timeout_s=d.replay_timeout_s)
