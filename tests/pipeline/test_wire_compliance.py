"""Wire compliance: Wireshark's own dissectors decode a loopback capture of the pipeline.

Issue 3, Tests, sixth bullet. ``dumpcap`` records ``lo`` while a short run
trades through the OUCH door (and the HTTP door, for bus traffic); ``tshark``
decodes the capture with ``-d udp.port==P,moldudp64`` for every port a
MoldUDP64 stream is sent to and ``-d tcp.port==P,soupbintcp`` for the OUCH
door (OUCH is found inside SoupBinTCP by Wireshark's heuristic). No frame may
be malformed or carry an expert error, and the counts must match, so that a
dissector that never fired cannot pass:

- every OUCH message each side sent, by direction and type, is decoded once;
- every SoupBinTCP packet type the test sent or received, counted the same way;
- each subscriber's copy of the input stream holds each seq 1..N exactly once
  (N from the sequencer), the output stream each seq 1..M (M from the primary).

A probe proves the malformed check itself works: one MoldUDP64 datagram whose
header claims more messages than it carries is sent to an unused port during
the capture, and it must be the one and only frame flagged.

Skipped, and reported as UNKNOWN, when tshark is not installed or this host
does not let the test capture on ``lo``.
"""

from __future__ import annotations

import collections
import shutil
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

from reference_impl.config import HOST
from reference_impl.core import soupbin_codec as sb
from reference_impl.core.ouch_messages import (
    MARKET_PRICE,
    CancelOrder,
    EnterOrder,
    ReplaceOrder,
)

TSHARK, DUMPCAP = shutil.which("tshark"), shutil.which("dumpcap")
pytestmark = pytest.mark.skipif(not (TSHARK and DUMPCAP), reason="UNKNOWN: tshark not installed")
PROBE_PORT = 21999  #: unused by the cluster: one malformed MoldUDP64 datagram goes here


class Capture:
    """``dumpcap`` on lo into a pcapng file, started and stopped by pid."""

    def __init__(self, path: Path, bpf: str) -> None:
        self.path = path
        self.proc = subprocess.Popen([DUMPCAP, "-i", "lo", "-q", "-w", str(path), "-f", bpf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        while not (path.exists() and path.stat().st_size > 0):
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().strip()
                pytest.skip(f"UNKNOWN: capture on lo not permitted here: {err[:300]}")
            if time.monotonic() > deadline:
                self.stop()
                pytest.skip("UNKNOWN: dumpcap did not start capturing on lo within 10 s")
            time.sleep(0.05)
        time.sleep(0.3)  # the file header is written before the capture is live

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def decode(path: Path, decode_as: list[str], fields: list[str]) -> list[list[str]]:
    cmd = [TSHARK, "-n", "-r", str(path), "-T", "fields", "-E", "separator=\t",
           "-E", "occurrence=a", "-E", "aggregator=|"]
    for d in decode_as:
        cmd += ["-d", d]
    for f in fields:
        cmd += ["-e", f]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return [line.split("\t") for line in r.stdout.splitlines()]


def values(cell: str) -> list[str]:
    """One field's occurrences in a frame (tshark prints a char field quoted: 'O')."""
    return [v.strip("'") for v in cell.split("|") if v] if cell else []


def trade(p) -> dict[str, collections.Counter]:
    """A short session through the OUCH door; the client-side counts by direction."""
    seller, buyer = p.ouch("DEMO3"), p.ouch("DEMO4")
    try:
        seller.logged_in()
        buyer.logged_in()
        seller.send_ouch(EnterOrder("w1", b"S", 100, "GLOBEX", 20_000))
        seller.messages(1)  # A
        buyer.send_ouch(EnterOrder("w2", b"B", 30, "GLOBEX", 20_000))
        buyer.messages(2)  # A, E
        seller.messages(1)  # E
        seller.send_ouch(CancelOrder("w1", 80))
        seller.messages(1)  # C
        seller.send_ouch(ReplaceOrder("w1", "w3", 40, 20_100))
        seller.messages(1)  # U (Order Replaced)
        buyer.send_ouch(EnterOrder("w4", b"B", 60, "GLOBEX", 20_100, time_in_force=0))
        buyer.messages(3)  # A, E, C
        seller.messages(1)  # E
        buyer.send_ouch(EnterOrder("w5", b"B", 5, "INITECH", MARKET_PRICE))
        buyer.messages(2)  # A, C (nothing to match)
        buyer.send_ouch(EnterOrder("w6", b"B", 5, "NOPE", 10_000))
        buyer.messages(1)  # J (stateless, from the gateway)
        buyer.send_ouch(CancelOrder("never", 0))
        buyer.messages(1)  # I (the engine's unknown_order)
        time.sleep(1.2)  # a Server Heartbeat or two while idle
        seller.send(sb.ClientHeartbeat())
        seller.send(sb.LogoutRequest())
        seller.until_closed()
        buyer.send(sb.LogoutRequest())
        buyer.until_closed()
        return {"client": seller.sent + buyer.sent, "server": seller.received + buyer.received}
    finally:
        seller.close()
        buyer.close()


@pytest.mark.parametrize("transport", ["unicast", "multicast"])
def test_capture_decodes_as_moldudp64_soupbintcp_and_ouch(cluster, tmp_path, transport):
    p = cluster(transport=transport)
    cfg = p.cfg
    if transport == "unicast":
        input_ports = [e.input_port for e in cfg.engines] + [cfg.logger.input_port]
        output_ports = [cfg.gateways[0].output_port] + [e.output_port for e in cfg.engines
                                                      if e.role == "secondary"]
    else:
        input_ports, output_ports = [cfg.input_stream.port], [cfg.output_stream.port]
    ouch_port = p.ouch_port
    mold_ports = input_ports + output_ports
    bpf = " or ".join([f"tcp port {ouch_port}"]
                      + [f"udp dst port {q}" for q in mold_ports + [PROBE_PORT]])
    pcap = tmp_path / "lo.pcapng"
    cap = Capture(pcap, bpf)
    try:
        head0 = p.digest("sequencer")["next_seq"] - 1
        counts = trade(p)
        http = p.http("DEMO1")
        try:
            for i in range(5):
                assert http.order(f"m{i}", qty=1 + i, price=9_000).status == 200
        finally:
            http.close()
        n = p.digest("sequencer")["next_seq"] - 1
        ds = p.settled(n)
        m = ds[p.primary]["published_seq"]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:  # claims 5, carries 1
            probe.sendto(cfg.input_stream.session.encode() + struct.pack(">QHH", 1, 5, 3) + b"abc",
                         (HOST, PROBE_PORT))
        time.sleep(0.3)  # heartbeats of both streams, and the last frames to the file
    finally:
        cap.stop()
    assert head0 == 0

    decode_as = [f"udp.port=={q},moldudp64" for q in mold_ports + [PROBE_PORT]] + [
        f"tcp.port=={ouch_port},soupbintcp"]
    rows = decode(pcap, decode_as, [
        "frame.number", "tcp.srcport", "udp.dstport", "soupbintcp.packet_type",
        "ouch.packet_type", "moldudp64.msgseq", "_ws.malformed", "_ws.expert.severity",
        "_ws.expert.message"])
    assert rows, "the capture is empty"

    problems = []
    soup = {"client": collections.Counter(), "server": collections.Counter()}
    ouch = {"client": collections.Counter(), "server": collections.Counter()}
    seqs: dict[int, collections.Counter] = {q: collections.Counter()
                                            for q in mold_ports + [PROBE_PORT]}
    for frame, tsrc, udst, soup_types, ouch_types, msgseqs, malformed, severity, message in rows:
        if malformed or any(int(s, 0) >= 0x00800000 for s in values(severity)):  # PI_ERROR
            problems.append((int(udst or 0), frame, malformed, severity, message))
        if tsrc:
            side = "server" if int(tsrc) == ouch_port else "client"
            soup[side].update(values(soup_types))
            ouch[side].update(values(ouch_types))
        if udst:
            seqs[int(udst)].update(int(s) for s in values(msgseqs))
    assert [q for q, *_ in problems] == [PROBE_PORT], problems[:10]
    assert "Invalid Message Count" in problems[0][-1]

    # OUCH: exactly what the clients sent and received, type by type, per direction
    assert ouch["client"] == counts["client"], (ouch["client"], counts["client"])
    assert ouch["server"] == counts["server"], (ouch["server"], counts["server"])
    assert set(counts["server"]) == {"A", "E", "C", "U", "J", "I"}
    assert set(counts["client"]) == {"O", "X", "U"}
    # SoupBinTCP: two logins, one data packet per OUCH message, heartbeats, logouts
    assert soup["client"]["L"] == 2 and soup["server"]["A"] == 2
    assert soup["client"]["U"] == sum(counts["client"].values())
    assert soup["server"]["S"] == sum(counts["server"].values())
    assert soup["client"]["R"] == 1 and soup["client"]["O"] == 2
    assert soup["server"]["H"] >= 1

    # MoldUDP64: every subscriber's copy of each stream, each seq exactly once
    assert n > 0 and m > 0
    for q in input_ports:
        assert sorted(seqs[q]) == list(range(1, n + 1)) and set(seqs[q].values()) == {1}, q
    for q in output_ports:
        assert sorted(seqs[q]) == list(range(1, m + 1)) and set(seqs[q].values()) == {1}, q
