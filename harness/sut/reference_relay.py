"""The reference cluster wired through a fault relay: the publisher's config, the relay's routes.

The fault-injecting relay (``harness.nemesis.udp_relay``) knows ports only.
``relayed(cfg, relay_ports)`` builds the input-bus wiring from the
reference's config alone: the sequencer gets a copy of the config whose
engine/logger ``input_port``s are the relay's listen ports (its unicast
fan-out targets exactly those), while every subscriber keeps the original
config and binds its own port (docs/config.md, "A relayed input stream").
``output_relayed(cfg, relay_ports)`` does the same for the output stream
toward the gateways: the engines (the primary publishes) get a config whose
gateway ``output_port``s are the relay's ports; the secondary's own
subscription stays direct, and so do the gateways' re-requests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from reference_impl.config import ClusterConfig


def input_subscriber_ports(cfg: ClusterConfig) -> list[int]:
    """The input stream's unicast targets, in the sequencer's order: engines, then the logger."""
    return [e.input_port for e in cfg.engines] + [cfg.logger.input_port]


def output_subscriber_ports(cfg: ClusterConfig) -> list[int]:
    """The output stream's unicast targets toward the gateways, in config order."""
    return [g.output_port for g in cfg.gateways]


def _check_ports(cfg: ClusterConfig, relay_ports: list[int], subscribers: list[int],
                 what: str) -> None:
    if cfg.transport != "unicast":
        raise ValueError("a relayed stream needs cluster.transport: unicast")
    if len(relay_ports) != len(subscribers):
        raise ValueError(f"need {len(subscribers)} relay ports ({what}), got {len(relay_ports)}")
    clash = sorted(set(relay_ports) & set(cfg.ports()))
    if clash or len(set(relay_ports)) != len(relay_ports):
        raise ValueError(f"relay ports must be distinct and unused by the cluster (clash: {clash})")


def relayed(cfg: ClusterConfig, relay_ports: Sequence[int]) -> tuple[ClusterConfig, dict[int, int]]:
    """The sequencer's config for a relayed input stream, and ``{relay_port: subscriber_port}``.

    Subscribers keep ``cfg``; only the sequencer is given the returned config,
    whose engine and logger ``input_port`` values are the relay's listen ports.
    """
    subscribers = input_subscriber_ports(cfg)
    relay_ports = list(relay_ports)
    _check_ports(cfg, relay_ports, subscribers, "engines + logger")
    n = len(cfg.engines)
    engines = tuple(dataclasses.replace(e, input_port=p) for e, p in zip(cfg.engines, relay_ports))
    logger = dataclasses.replace(cfg.logger, input_port=relay_ports[n])
    return cfg.with_overrides(engines=engines, logger=logger), dict(zip(relay_ports, subscribers))


def output_relayed(cfg: ClusterConfig,
                   relay_ports: Sequence[int]) -> tuple[ClusterConfig, dict[int, int]]:
    """The engines' config for a relayed output stream, and ``{relay_port: gateway output_port}``.

    The gateways keep ``cfg`` and bind their own ``output_port``; the engines
    are given the returned config, whose gateway ``output_port`` values are the
    relay's listen ports (the primary's fan-out targets exactly those).
    """
    subscribers = output_subscriber_ports(cfg)
    relay_ports = list(relay_ports)
    _check_ports(cfg, relay_ports, subscribers, "one per gateway")
    gateways = tuple(dataclasses.replace(g, output_port=p) for g, p in zip(cfg.gateways, relay_ports))
    return cfg.with_overrides(gateways=gateways), dict(zip(relay_ports, subscribers))
