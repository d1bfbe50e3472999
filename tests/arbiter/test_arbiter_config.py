"""The ``arbiter:`` section and ``cluster.output_heartbeat_us``: validated like every other key."""

from __future__ import annotations

import pytest
import yaml

from reference_impl import config
from reference_impl.config import ConfigError


def raw(**arbiter) -> dict:
    doc = yaml.safe_load(config.default_text())
    doc["arbiter"] = arbiter
    return doc


def test_default_has_no_arbiter_and_the_heartbeat_follows_heartbeat_ms():
    cfg = config.load()
    assert not cfg.arbiter.enabled
    assert cfg.output_heartbeat_ns() == cfg.heartbeat_ms * 1_000_000
    assert cfg.with_overrides(heartbeat_ms=7).output_heartbeat_ns() == 7_000_000
    assert "output_heartbeat_us" not in config.dump(cfg)  # unset stays unset through the run dir


def test_an_enabled_arbiter_round_trips_and_moves_with_the_ports():
    doc = raw(enabled=True, silence_us=150, stall_ms=8)
    doc["cluster"]["output_heartbeat_us"] = 1000
    cfg = config.parse(doc)
    assert (cfg.arbiter.silence_us, cfg.arbiter.stall_ms, cfg.output_heartbeat_ns()) == (150, 8, 1_000_000)
    again = config.parse(yaml.safe_load(config.dump(cfg.shifted(10))))
    assert again.arbiter.admin_port == cfg.arbiter.admin_port + 10 and again.output_heartbeat_us == 1000
    assert cfg.arbiter.admin_port in cfg.ports() and cfg.arbiter.output_port in cfg.ports()


@pytest.mark.parametrize(("arbiter", "heartbeat_us", "key"), [
    ({"enabled": True}, None, "cluster.output_heartbeat_us"),  # 100 ms heartbeats, a 5 ms stall
    ({"enabled": True, "stall_ms": 4}, 2001, "cluster.output_heartbeat_us"),
    ({"silence_us": 5000, "stall_ms": 5}, None, "arbiter.silence_us"),
    ({"silenc_us": 100}, None, "arbiter.silenc_us"),
    ({"enabled": "yes"}, None, "arbiter.enabled"),
    ({"stall_ms": 0}, None, "arbiter.stall_ms"),
    ({"enabled": True, "admin_port": 17304}, 1000, "ports"),  # the gateway's admin port
])
def test_bad_arbiter_settings_name_their_key(arbiter, heartbeat_us, key):
    doc = raw(**arbiter)
    if heartbeat_us is not None:
        doc["cluster"]["output_heartbeat_us"] = heartbeat_us
    with pytest.raises(ConfigError) as err:
        config.parse(doc)
    assert err.value.key == key
