"""The one SoupBinTCP 3.0 client: a blocking connection to an OUCH door, packets in and out.

The harness's recorded client (``ouch_client.OuchClient``), the suites and
the tests all speak to an OUCH door through this class, so what they see is
what a client on the wire sees. One ``SoupBinClient`` is one TCP connection
(``TCP_NODELAY``), framed by the core's ``soupbin_codec`` in the server to
client direction.

- out: ``send(packet)``, ``send_ouch(message)`` (an Unsequenced Data
  packet), ``login(...)``, and ``send_raw(bytes)`` with ``shutdown()`` for
  what a proper client never sends (bad-input tests: malformed frames, a
  half-close after a truncated one);
- in: ``receive()`` is one read (the packets it completed, ``None`` at end
  of stream), for a caller that runs its own loop; ``packet()`` is the next
  packet (heartbeats skipped unless asked, ``None`` once the server closed
  or reset the connection, ``TimeoutError`` if none comes in time);
  ``message()`` the next OUCH message; ``until_closed()`` what the server
  says before it closes;
- ``login()`` returns the server's answer as a packet (evidence for a
  suite); ``logged_in()`` insists on Login Accepted and raises
  ``LoginRejectedError`` or ``ConnectionError`` otherwise. Debug packets met
  on the way to the answer are kept in ``debug``;
- ``sent`` / ``received`` count OUCH messages by type byte, as a capture
  shows them (the wire-compliance test compares them with tshark).
"""

from __future__ import annotations

import collections
import contextlib
import socket
import time
from typing import Any

from reference_impl.core import ouch_codec
from reference_impl.core import soupbin_codec as sb

RECV_BYTES = 65536


class LoginRejectedError(ConnectionError):
    """Login Rejected: ``reason`` b"A" (not authorized) or b"S" (session not available)."""

    def __init__(self, reason: bytes) -> None:
        self.reason = reason
        what = {b"A": "not authorized", b"S": "session not available"}.get(reason, "?")
        super().__init__(f"login rejected: {reason.decode('ascii', 'replace')} ({what})")


class SoupBinClient:
    """See the module doc. Not thread-safe: a caller with a reader thread locks its sends."""

    def __init__(self, host: str, port: int, timeout_s: float = 5.0) -> None:
        self.timeout_s = timeout_s
        self.sock = socket.create_connection((host, port), timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._read_timeout_s: float | None = timeout_s
        self.framer = sb.SoupBinFramer(from_client=False)
        self.pending: collections.deque = collections.deque()  #: read, not yet handed out
        self.debug: list[str] = []  #: Debug texts met while waiting for the login answer
        self.sent: collections.Counter = collections.Counter()  #: OUCH type -> count
        self.received: collections.Counter = collections.Counter()

    # ---------------------------------------------------------------- out

    def send(self, packet: Any) -> None:
        self.sock.sendall(sb.encode(packet))

    def send_ouch(self, message: Any) -> None:
        payload = ouch_codec.encode(message)
        self.sent[payload[:1].decode()] += 1
        self.send(sb.UnsequencedData(payload))

    def send_raw(self, data: bytes) -> None:
        """Bytes as they are: malformed frames for the bad-input tests, or pre-encoded floods."""
        self.sock.sendall(data)

    def shutdown(self, how: int = socket.SHUT_WR) -> None:
        """Half-close (default) or, with ``SHUT_RDWR``, wake a thread blocked reading."""
        self.sock.shutdown(how)

    def login(self, account: str, password: str, session: str = "",
              sequence: int = 0) -> sb.LoginAccepted | sb.LoginRejected | None:
        """Send a Login Request (blank session and 0: the current session, next message)."""
        self.send(sb.LoginRequest(account, password, session, sequence))
        return self.login_reply()

    # ----------------------------------------------------------------- in

    def receive(self, timeout_s: float | None = None) -> list | None:
        """One read: what was queued, else the packets the next bytes complete (maybe [])."""
        if self.pending:
            out = list(self.pending)
            self.pending.clear()
            return out
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        if timeout_s != self._read_timeout_s:  # settimeout costs two fcntl calls: only on change
            self.sock.settimeout(timeout_s)
            self._read_timeout_s = timeout_s
        data = self.sock.recv(RECV_BYTES)
        if not data:
            return None
        packets = self.framer.feed(data)
        for p in packets:
            if type(p) is sb.SequencedData:
                self.received[p.payload[:1].decode("latin-1")] += 1
        return packets

    def packet(self, timeout_s: float | None = None, heartbeats: bool = False) -> Any:
        """The next server packet; None once the server closed (or reset) the connection."""
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        while True:
            while self.pending:
                p = self.pending.popleft()
                if heartbeats or type(p) is not sb.ServerHeartbeat:
                    return p
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no SoupBinTCP packet from the server")
            try:
                packets = self.receive(left)
            except ConnectionResetError:
                return None
            if packets is None:
                return None
            self.pending.extend(packets)

    def login_reply(self, timeout_s: float | None = None) -> Any:
        """The answer to a Login Request: the first packet that is not a heartbeat or Debug."""
        while True:
            p = self.packet(timeout_s)
            if type(p) is not sb.Debug:
                return p
            self.debug.append(p.text)

    def logged_in(self, timeout_s: float | None = None) -> sb.LoginAccepted:
        """The Login Accepted; ``LoginRejectedError``, or ``ConnectionError`` if none came."""
        try:
            p = self.login_reply(timeout_s)
        except TimeoutError:
            raise ConnectionError("no login reply within the timeout") from None
        if isinstance(p, sb.LoginAccepted):
            return p
        if isinstance(p, sb.LoginRejected):
            raise LoginRejectedError(p.reason)
        what = "server closed before answering the login" if p is None else f"login answered {p!r}"
        raise ConnectionError(f"{what}: {' | '.join(self.debug)}" if self.debug else what)

    def message(self, timeout_s: float | None = None) -> Any:
        """The next OUCH message, which must come in a Sequenced Data packet."""
        p = self.packet(timeout_s)
        if not isinstance(p, sb.SequencedData):
            raise ConnectionError(f"expected an OUCH message in Sequenced Data, got {p!r}")
        return ouch_codec.decode_outbound(p.payload)

    def messages(self, n: int, timeout_s: float | None = None) -> list:
        return [self.message(timeout_s) for _ in range(n)]

    def until_closed(self, timeout_s: float | None = None) -> list:
        """Every packet (heartbeats aside) before the server closes; TimeoutError if it does not."""
        seen = []
        while (p := self.packet(timeout_s)) is not None:
            seen.append(p)
        return seen

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> SoupBinClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
