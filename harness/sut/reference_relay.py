"""The reference cluster wired through the bus relay: the sequencer's config, the relay's routes.

The fault-injecting relay (``harness.nemesis.udp_relay``) knows ports only.
``relayed(cfg, relay_ports)`` builds the wiring from the reference's config
alone: the sequencer gets a copy of the config whose engine/logger
``input_port``s are the relay's listen ports (its unicast fan-out targets
exactly those), while every subscriber keeps the original config and binds
its own port (docs/config.md, "A relayed input stream").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from reference_impl.config import ClusterConfig


def input_subscriber_ports(cfg: ClusterConfig) -> list[int]:
    """The input stream's unicast targets, in the sequencer's order: engines, then the logger."""
    return [e.input_port for e in cfg.engines] + [cfg.logger.input_port]


def relayed(cfg: ClusterConfig, relay_ports: Sequence[int]) -> tuple[ClusterConfig, dict[int, int]]:
    """The sequencer's config for a relayed input stream, and ``{relay_port: subscriber_port}``.

    Subscribers keep ``cfg``; only the sequencer is given the returned config,
    whose engine and logger ``input_port`` values are the relay's listen ports.
    """
    if cfg.transport != "unicast":
        raise ValueError("the bus relay needs cluster.transport: unicast")
    subscribers = input_subscriber_ports(cfg)
    relay_ports = list(relay_ports)
    if len(relay_ports) != len(subscribers):
        raise ValueError(f"need {len(subscribers)} relay ports (engines + logger), "
                         f"got {len(relay_ports)}")
    taken = set(cfg.ports())
    clash = sorted(set(relay_ports) & taken)
    if clash or len(set(relay_ports)) != len(relay_ports):
        raise ValueError(f"relay ports must be distinct and unused by the cluster (clash: {clash})")
    n = len(cfg.engines)
    engines = tuple(dataclasses.replace(e, input_port=p) for e, p in zip(cfg.engines, relay_ports))
    logger = dataclasses.replace(cfg.logger, input_port=relay_ports[n])
    return cfg.with_overrides(engines=engines, logger=logger), dict(zip(relay_ports, subscribers))
