"""The pipeline benchmark's OUCH client: four SoupBinTCP sessions sending Enter Orders open loop.

Kept apart from the run's orchestration (``pipeline_latency``) so that what
is sent, and how each reply is stamped, reads in one place. The receiver
parses SoupBinTCP framing by hand at fixed offsets (checked once against the
codec by ``self_check_parser``): the codec's objects would cost the client
CPU that the pipeline, sharing the 2 vCPUs, would pay for.
"""

from __future__ import annotations

import selectors
import socket
import struct
import threading
import time

from relay_chain import OpenLoop

from harness.clients import SoupBinClient
from reference_impl.config import HOST
from reference_impl.core import ouch_codec
from reference_impl.core import soupbin_codec as sb
from reference_impl.core.ouch_messages import EnterOrder, OrderAccepted

ACCOUNTS = (("DEMO1", "demo1pw"), ("DEMO2", "demo2pw"), ("DEMO3", "demo3pw"), ("DEMO4", "demo4pw"))
SYMBOLS = ("ACME", "GLOBEX")
BID, ASK = 990_000, 1_010_000  #: $99.00 and $101.00 (tick 100 = $0.01)
QTY = 100
_REF = struct.Struct(">Q")
_TOKEN = slice(9, 23)  #: order token in Accepted / Rejected / Executed (after type and ts)
_REF_AT = 49  #: order reference number in Order Accepted


def order_frame(i: int, tag: str) -> tuple[int, bytes]:
    """(session index, SoupBinTCP Unsequenced Data bytes) of order ``i``."""
    symbol = SYMBOLS[i % 2]
    k = i // 2  # position in this symbol's stream
    side, price = ((b"B", BID), (b"S", ASK), (b"B", ASK), (b"S", BID))[k % 4]
    session = (k + k // 4) % 4  # rotate who rests and who crosses
    msg = EnterOrder(f"{tag}{i}", side, QTY, symbol, price)
    return session, sb.encode(sb.UnsequencedData(ouch_codec.encode(msg)))


def login(port: int, user: str, password: str) -> socket.socket:
    """A logged-in session's socket (blocking), logged in by the kit's SoupBinTCP client."""
    c = SoupBinClient(HOST, port, timeout_s=5)
    try:
        c.send(sb.LoginRequest(user, password))
        c.logged_in()
        if c.pending or c.framer.buffered:
            raise RuntimeError("unexpected bytes after Login Accepted")
    except BaseException:
        c.close()
        raise
    c.sock.settimeout(None)
    return c.sock


class OuchReceiver:
    """One thread: stamps each session's Accepted/Rejected by token, keeps order refs."""

    def __init__(self, socks: list[socket.socket]) -> None:
        self.socks = socks
        self.loop: OpenLoop | None = None
        self.tag = b""
        self.refs: list[int] = []
        self.counts = {"accepted": 0, "rejected": 0, "executed": 0, "other": 0, "foreign": 0}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="ouch-receiver", daemon=True)

    def arm(self, loop: OpenLoop, tag: str) -> None:
        self.loop, self.tag, self.refs = loop, tag.encode(), [0] * loop.count

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        bufs = {}
        for s in self.socks:  # left blocking: the sender thread shares them
            sel.register(s, selectors.EVENT_READ)
            bufs[s] = b""
        mono = time.monotonic_ns
        while not self.stop.is_set():
            for key, _ in sel.select(0.2):
                s = key.fileobj
                try:
                    data = s.recv(65536)
                except BlockingIOError:
                    continue
                now = mono()
                if not data:
                    sel.unregister(s)
                    continue
                buf = bufs[s] + data
                pos, size = 0, len(buf)
                while size - pos >= 2:
                    end = pos + 2 + ((buf[pos] << 8) | buf[pos + 1])
                    if end > size:
                        break
                    if buf[pos + 2] == 0x53:  # 'S' Sequenced Data: one OUCH message
                        self._on_message(buf[pos + 3:end], now)
                    pos = end
                bufs[s] = buf[pos:]
        sel.close()

    def _on_message(self, msg: bytes, now: int) -> None:
        kind = msg[0]
        counts = self.counts
        if kind == 0x45:  # 'E' executed (ours or the passive side's)
            counts["executed"] += 1
            return
        if kind not in (0x41, 0x4A):  # 'A' accepted, 'J' rejected
            counts["other"] += 1
            return
        token = msg[_TOKEN].rstrip(b" ")
        loop, tag = self.loop, self.tag
        if loop is None or not token.startswith(tag):
            counts["foreign"] += 1
            return
        i = int(token[len(tag):])
        if kind == 0x41:
            counts["accepted"] += 1
            if 0 <= i < loop.count:
                self.refs[i] = _REF.unpack_from(msg, _REF_AT)[0]
        else:
            counts["rejected"] += 1
        loop.arrived(i, now)


def self_check_parser() -> None:
    """The receiver's fixed offsets agree with the codec's Order Accepted layout."""
    raw = ouch_codec.encode(OrderAccepted(1, "T123", b"B", 1, "ACME", 100, 0, "", b"Y", 987654321,
                                          b"A", b"N", 0, b"N", b"L"))
    assert raw[0] == 0x41 and raw[_TOKEN].rstrip(b" ") == b"T123"
    assert _REF.unpack_from(raw, _REF_AT)[0] == 987654321


def run_orders(socks: list[socket.socket], rx: OuchReceiver, rate: float, duration_s: float,
               tag: str, drain_s: float, during=None) -> OpenLoop:
    count = max(1, int(rate * duration_s))
    frames = [order_frame(i, tag) for i in range(count)]
    sends = [socks[k].sendall for k in range(len(socks))]
    loop = OpenLoop(count, rate)
    rx.arm(loop, tag)

    def send(i: int) -> None:
        k, frame = frames[i]
        sends[k](frame)  # blocking TCP send: a full buffer stalls us, and it counts

    sender = loop.run_sender(send)
    if during is not None:
        during(loop)
    loop.wait(sender, drain_s)
    return loop
