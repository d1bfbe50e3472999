"""The arbiter in a running cluster, with real processes and signals.

- kill -9 of the primary: the journal (the logger's WAL) holds exactly one
  LeaderChange, ``(2, secondary id)`` (fails if the arbiter never promotes,
  promotes twice, or names the wrong epoch or engine);
- a SIGSTOP shorter than the stall timeout, and an idle cluster: no
  promotion (fails if a stopped process is confirmed dead, or silence alone
  promotes); a SIGSTOP longer than the stall timeout: exactly one.

Correctness only: how fast is ``benchmarks/failover_detection.py``'s
business. The stall timeout is raised to 300 ms here so that a short pause
(20 ms) stays far below it whatever the scheduler does, and so that the
kill test's promotion is the probe's confirmation, not a stall (at the 5 ms
default a loaded 2-vCPU host does stall an idle Python engine that long:
``benchmarks/failover_detection.py`` counts those false promotions). Ports: the default
config shifted by -10700 (unique to this module).
"""

from __future__ import annotations

import time
from pathlib import Path

from reference_impl import config
from reference_impl.core import sequenced_codec
from reference_impl.core.messages import LeaderChange
from reference_impl.edges import process
from reference_impl.launch.cluster import Cluster
from reference_impl.logger.wal_reader import WalReader

OFFSET = -10700  #: ports 4300-7380, unique to this module


def arbiter_config(stall_ms: int = 5) -> config.ClusterConfig:
    base = config.load().shifted(OFFSET)
    arbiter = config.ArbiterConfig(enabled=True, stall_ms=stall_ms, admin_port=17305 + OFFSET,
                                   output_port=17213 + OFFSET)
    return base.with_overrides(arbiter=arbiter, output_heartbeat_us=1000)


def digest(cfg: config.ClusterConfig) -> dict:
    return process.admin_query(cfg.arbiter.admin_port, "digest")


def wait_for(check, timeout_s: float = 10.0):
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


def leader_changes(cfg: config.ClusterConfig, run_dir: Path) -> list[tuple[int, int]]:
    """Every LeaderChange the logger journaled, once it has journaled all the sequencer sequenced."""
    head = process.admin_query(cfg.sequencer.admin_port, "digest")["next_seq"] - 1
    if head == 0:
        return []
    reader = WalReader(run_dir / cfg.logger.data_dir)
    records = wait_for(lambda: (r := reader.read_range(1, head)) and len(r) == head and r)
    assert records and len(records) == head, "the logger never journaled the sequenced head"
    bodies = [sequenced_codec.decode(payload).body for _, payload in records]
    return [(b.epoch, b.engine_id) for b in bodies if isinstance(b, LeaderChange)]


def test_kill_primary_sequences_exactly_one_leader_change(tmp_path):
    cfg = arbiter_config(stall_ms=300)  # a loaded host's stalls must not promote before the kill
    with Cluster(cfg, tmp_path) as cluster:
        assert wait_for(lambda: digest(cfg)["counters"]["output_packets"] > 10)
        cluster.kill("engine-1")
        assert wait_for(lambda: digest(cfg)["state"] == "no_secondary")
        d = digest(cfg)
        assert (d["epoch"], d["primary"], d["counters"]["promotions"]) == (2, 2, 1)
        assert 0 < d["suspected_ns"] <= d["confirmed_ns"] == d["promoted_ns"] <= d["sequenced_ns"], str(d)
        assert d["counters"]["probe_exiting"] + d["counters"]["probe_gone"] == 1  # confirmed dead
        time.sleep(0.2)  # a second promotion, if any, would have come by now
        assert leader_changes(cfg, tmp_path) == [(2, 2)]


def test_short_pause_and_idle_never_promote_a_long_pause_does_once(tmp_path):
    cfg = arbiter_config(stall_ms=300)
    with Cluster(cfg, tmp_path) as cluster:
        time.sleep(2.0)  # idle: heartbeats only
        cluster.pause("engine-1")
        time.sleep(0.02)
        cluster.resume("engine-1")
        time.sleep(0.5)
        d = digest(cfg)
        assert d["counters"]["promotions"] == 0 and d["epoch"] == 1, d
        assert d["counters"]["probe_alive"] > 0  # it did suspect, and found the primary alive
        assert leader_changes(cfg, tmp_path) == []
        paused_ns = time.monotonic_ns()
        cluster.pause("engine-1")
        try:
            assert wait_for(lambda: digest(cfg)["counters"]["promotions"] > 0, 5.0)
        finally:
            cluster.resume("engine-1")
        d = digest(cfg)
        assert d["confirmed_ns"] == 0  # promoted for the stall, not for a death
        # never before the stall timeout (less a packet that was already on its way)
        assert d["promoted_ns"] - paused_ns >= d["stall_ns"] - 5_000_000
        time.sleep(0.2)
        assert leader_changes(cfg, tmp_path) == [(2, 2)]
