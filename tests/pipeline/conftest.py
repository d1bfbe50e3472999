"""Fixtures for the end-to-end pipeline tests: a real cluster per test, always stopped.

``cluster(durability=..., transport=..., faults=..., fsync_delay_ms=...,
relay=..., output_relay=..., capacity=...)`` starts the whole pipeline (logger, two engines,
sequencer, gateway) from the packaged default config with every port moved by
``OFFSET``, in the test's ``tmp_path``. With ``relay`` (a ``UdpFaultRates``)
the input stream goes through ``harness.nemesis.udp_relay`` (unicast only); with
``output_relay``, the engines' output stream toward the gateway does instead.

Teardown always stops the cluster in order and then SIGKILLs any component
pid that is still running (a paused or wedged node must not outlive its
test and hold ports the next test needs). The clusters of this package run
one at a time, so every module here shares ``OFFSET``.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from harness.nemesis.udp_plan import UdpFaultRates
from harness.nemesis.udp_relay import UdpFaultRelay
from harness.sut.reference_relay import (
    input_subscriber_ports,
    output_relayed,
    output_subscriber_ports,
    relayed,
)
from reference_impl import config
from reference_impl.launch.cluster import Cluster
from tests.pipeline.clients import Pipeline

OFFSET = 4000  #: ports 19000-22080 (relay 21701-21703): below the ephemeral range
RELAY_SHIFT = 600  #: relay listen port = subscriber port + this


def make_config(durability: str = "fsync", transport: str = "unicast", faults=(),
                fsync_delay_ms: int = 0, capacity: int | None = None,
                **overrides) -> config.ClusterConfig:
    cfg = config.load().shifted(OFFSET)
    changes = dict(durability=durability, transport=transport, faults=tuple(faults), **overrides)
    if capacity is not None:
        changes["capacity"] = capacity
    if fsync_delay_ms:
        changes["logger"] = dataclasses.replace(cfg.logger, fsync_delay_ms=fsync_delay_ms)
    return cfg.with_overrides(**changes)


def _reap(pids: dict[str, tuple[int, float]]) -> None:
    for pid, created in pids.values():
        try:
            p = psutil.Process(pid)
            if abs(p.create_time() - created) < 0.05 and p.status() != psutil.STATUS_ZOMBIE:
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
        except (psutil.Error, ProcessLookupError):
            pass


@pytest.fixture
def cluster(tmp_path: Path):
    """A factory: ``cluster(**config_changes) -> Pipeline`` (one running cluster per test)."""
    started: list[tuple[Cluster, UdpFaultRelay | None]] = []
    pids: dict[str, tuple[int, float]] = {}

    def start(*, relay: UdpFaultRates | None = None, output_relay: UdpFaultRates | None = None,
              seed: int = 7, **changes) -> Pipeline:
        assert not started, "one cluster per test: the package's ports are shared"
        cfg = make_config(**changes)
        fault_relay = None
        component_configs = {}
        if relay is not None:
            ports = [p + RELAY_SHIFT for p in input_subscriber_ports(cfg)]
            seq_cfg, routes = relayed(cfg, ports)
            component_configs["sequencer"] = seq_cfg
            fault_relay = UdpFaultRelay(routes, seed=seed, rates=relay).start()
        elif output_relay is not None:
            ports = [p + RELAY_SHIFT for p in output_subscriber_ports(cfg)]
            engine_cfg, routes = output_relayed(cfg, ports)
            component_configs.update({f"engine-{e.id}": engine_cfg for e in cfg.engines})
            fault_relay = UdpFaultRelay(routes, seed=seed, rates=output_relay).start()
        c = Cluster(cfg, tmp_path / "run", component_configs=component_configs)
        started.append((c, fault_relay))
        try:
            c.start()
        finally:  # remember what came up, even if the start failed half way
            for name, pid in c.components().items():
                try:
                    pids[f"{name}:{pid}"] = (pid, psutil.Process(pid).create_time())
                except psutil.Error:
                    pass
        return Pipeline(cfg, c, fault_relay)

    try:
        yield start
    finally:
        for c, fault_relay in started:
            for name, pid in c.components().items():  # restarts since start()
                try:
                    pids.setdefault(f"{name}:{pid}", (pid, psutil.Process(pid).create_time()))
                except psutil.Error:
                    pass
            c.stop()
            if fault_relay is not None:
                fault_relay.stop(flush=False)
        _reap(pids)
        time.sleep(0.05)  # let the kernel release the ports before the next test binds them
