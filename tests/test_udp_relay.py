"""The bus nemesis: pure fault plans, the sans-I/O lane schedule, the relay over loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from harness.nemesis.udp_plan import Action, LaneSchedule, PacketFate, UdpFaultRates, plan_udp_faults
from harness.nemesis.udp_relay import UdpFaultRelay
from harness.sut.reference_relay import input_subscriber_ports, relayed
from reference_impl import config

ROOT = Path(__file__).resolve().parent.parent
RATES = UdpFaultRates(drop=0.05, duplicate=0.05, reorder=0.05, delay=0.02, delay_ms=2.0)
SEQ = struct.Struct(">I")

# ------------------------------------------------------------------ plan


def test_plan_is_a_function_of_seed_lane_and_generation():
    a = plan_udp_faults(7, RATES, 3000)
    assert a == plan_udp_faults(7, RATES, 3000)
    assert a != plan_udp_faults(8, RATES, 3000)
    assert a != plan_udp_faults(7, RATES, 3000, lane=1)
    assert a != plan_udp_faults(7, RATES, 3000, generation=1)
    assert a[:100] == plan_udp_faults(7, RATES, 100)  # a prefix does not depend on the length


def test_plan_hits_the_rates():
    n = 20_000
    counts = Counter(f.action for f in plan_udp_faults(1, RATES, n))
    for action, rate in ((Action.DROP, RATES.drop), (Action.DUPLICATE, RATES.duplicate),
                         (Action.REORDER, RATES.reorder), (Action.DELAY, RATES.delay)):
        expected = rate * n
        assert abs(counts[action] - expected) < 5 * (expected ** 0.5), (action, counts)


def test_plan_sizes_stay_in_bounds():
    fates = plan_udp_faults(3, UdpFaultRates(reorder=0.5, delay=0.5, delay_ms=4), 2000)
    assert {f.hold for f in fates if f.action is Action.REORDER} <= {1, 2, 3}
    assert all(0 < f.delay_ns <= 4_000_000 for f in fates if f.action is Action.DELAY)


def test_clean_rates_pass_everything():
    assert {f.action for f in plan_udp_faults(5, UdpFaultRates(), 1000)} == {Action.PASS}


@pytest.mark.parametrize("kwargs", [dict(drop=-0.1), dict(duplicate=1.5),
                                    dict(drop=0.6, reorder=0.6), dict(delay_ms=-1),
                                    dict(reorder_depth=0)])
def test_bad_rates_are_refused(kwargs):
    with pytest.raises(ValueError):
        UdpFaultRates(**kwargs)


# ------------------------------------------------------------------ lane schedule (manual clock)


def lane(*fates: PacketFate, max_hold_ns: int = 1000) -> LaneSchedule:
    return LaneSchedule(iter(fates), max_hold_ns=max_hold_ns)


def test_reorder_lets_later_datagrams_overtake():
    s = lane(PacketFate(Action.REORDER, hold=2), PacketFate(Action.PASS), PacketFate(Action.PASS))
    assert s.on_datagram(b"a", 0) == []
    assert s.on_datagram(b"b", 1) == [b"b"]
    assert s.on_datagram(b"c", 2) == [b"c", b"a"]
    assert s.counts.reordered == 1 and s.counts.forwarded == 3


def test_a_held_datagram_is_released_after_max_hold():
    s = lane(PacketFate(Action.REORDER, hold=3), max_hold_ns=500)
    assert s.on_datagram(b"a", 100) == []
    assert s.next_due_ns() == 600
    assert s.on_tick(599) == []
    assert s.on_tick(600) == [b"a"]
    assert s.pending == 0


def test_delay_drop_duplicate_and_flush():
    s = lane(PacketFate(Action.DELAY, delay_ns=50), PacketFate(Action.DROP),
             PacketFate(Action.DUPLICATE), PacketFate(Action.DELAY, delay_ns=1000))
    assert s.on_datagram(b"a", 0) == []
    assert s.on_datagram(b"b", 10) == []
    assert s.on_datagram(b"c", 60) == [b"c", b"c", b"a"]
    assert s.on_datagram(b"d", 70) == []
    assert s.flush() == [b"d"]
    c = s.counts
    assert (c.received, c.dropped, c.duplicated, c.delayed, c.forwarded) == (4, 1, 1, 2, 4)
    assert c.forwarded == c.received - c.dropped + c.duplicated


# ------------------------------------------------------------------ relay over loopback


def _receiver() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


def _drain(sock: socket.socket, into: list[int]) -> None:
    while True:
        try:
            into.append(SEQ.unpack(sock.recv(64))[0])
        except BlockingIOError:
            return


def _send_paced(n: int, port: int, progress, rx: socket.socket, got: list[int]) -> None:
    """Send ``n`` numbered datagrams in chunks, letting the relay keep up (no kernel loss)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        for start in range(0, n, 100):
            for i in range(start, min(start + 100, n)):
                tx.sendto(SEQ.pack(i), ("127.0.0.1", port))
            deadline = time.monotonic() + 5
            while progress() < min(start + 100, n) and time.monotonic() < deadline:
                _drain(rx, got)
                time.sleep(0.001)
            _drain(rx, got)


def test_relay_thread_drops_duplicates_and_reorders_at_the_plan():
    n, seed = 5000, 11
    rx = _receiver()
    relay = UdpFaultRelay([(0, rx.getsockname()[1])], seed=seed, rates=RATES)
    got: list[int] = []
    try:
        relay.start()
        _send_paced(n, relay.listen_ports[0], lambda: relay.counts().received, rx, got)
        time.sleep(0.05)  # delays (<= 2 ms) and max holds (20 ms) run out
        counts = relay.stop()
        time.sleep(0.01)
        _drain(rx, got)
    finally:
        relay.stop()
        rx.close()
    plan = plan_udp_faults(seed, RATES, n)
    planned = Counter(f.action for f in plan)
    assert counts.received == n and counts.send_errors == 0
    assert counts.dropped == planned[Action.DROP]
    assert counts.duplicated == planned[Action.DUPLICATE]
    assert counts.reordered == planned[Action.REORDER]
    assert counts.delayed == planned[Action.DELAY]
    for kind, rate in (("dropped", RATES.drop), ("duplicated", RATES.duplicate),
                       ("reordered", RATES.reorder)):
        assert 0.6 * rate * n < getattr(counts, kind) < 1.4 * rate * n, counts
    # what came out of the socket is what the plan says
    assert len(got) == counts.forwarded == n - counts.dropped + counts.duplicated
    seen = Counter(got)
    assert set(range(n)) - set(seen) == {i for i, f in enumerate(plan) if f.action is Action.DROP}
    assert sum(c - 1 for c in seen.values()) == counts.duplicated
    inversions = sum(1 for a, b in zip(got, got[1:]) if b < a)
    assert inversions >= 0.5 * (counts.reordered + counts.delayed)


def test_set_rates_heals_the_bus():
    rx = _receiver()
    got: list[int] = []
    relay = UdpFaultRelay([(0, rx.getsockname()[1])], seed=2, rates=UdpFaultRates(drop=1.0))
    try:
        relay.start()
        _send_paced(100, relay.listen_ports[0], lambda: relay.counts().received, rx, got)
        assert got == []
        relay.set_rates(UdpFaultRates())
        _send_paced(100, relay.listen_ports[0], lambda: relay.counts().received - 100, rx, got)
        time.sleep(0.01)
        _drain(rx, got)
        assert got == list(range(100))
    finally:
        relay.stop()
        rx.close()


def test_relay_process_reports_its_counts_on_sigterm(tmp_path):
    rx = _receiver()
    got: list[int] = []
    stats = tmp_path / "stats.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.nemesis.udp_relay", "--route", f"0:{rx.getsockname()[1]}",
         "--seed", "4", "--drop", "0.1", "--stats", str(stats)],
        stdout=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        ready = proc.stdout.readline().split()
        assert ready[0] == "ready", ready
        port = int(ready[1].split(":")[0])
        dropped = sum(f.action is Action.DROP for f in plan_udp_faults(4, UdpFaultRates(drop=0.1), 300))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for i in range(300):
                tx.sendto(SEQ.pack(i), ("127.0.0.1", port))
                if i % 20 == 19:
                    time.sleep(0.002)
                    _drain(rx, got)
        deadline = time.monotonic() + 5
        while len(got) < 300 - dropped and time.monotonic() < deadline:
            time.sleep(0.005)
            _drain(rx, got)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0
        counts = json.loads(out.strip().splitlines()[-1])
        assert counts == json.loads(stats.read_text())
        assert counts["received"] == 300 and counts["dropped"] == dropped
        assert len(got) == 300 - dropped
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        rx.close()


# ------------------------------------------------------------------ wiring


def test_relayed_points_only_the_sequencer_at_the_relay():
    cfg = config.load()
    subs = input_subscriber_ports(cfg)
    relay_ports = [p + 700 for p in subs]
    seq_cfg, mapping = relayed(cfg, relay_ports)
    assert mapping == dict(zip(relay_ports, subs))
    assert input_subscriber_ports(seq_cfg) == relay_ports
    assert seq_cfg.sequencer == cfg.sequencer and seq_cfg.gateways == cfg.gateways
    # the sequencer's copy is a valid config file of its own
    assert config.parse(yaml.safe_load(config.dump(seq_cfg))) == seq_cfg


def test_relayed_refuses_what_cannot_work():
    cfg = config.load()
    n = len(input_subscriber_ports(cfg))
    with pytest.raises(ValueError, match="unicast"):
        relayed(cfg.with_overrides(transport="multicast"), range(30000, 30000 + n))
    with pytest.raises(ValueError, match="relay ports"):
        relayed(cfg, [30000])
    with pytest.raises(ValueError, match="clash"):
        relayed(cfg, [cfg.sequencer.request_port] + list(range(30001, 30000 + n)))
