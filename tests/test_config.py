"""Config parsing: the event-loop choice, and that a dump reads back the same."""

from __future__ import annotations

import pytest

from reference_impl import config
from reference_impl.config import ConfigError
from reference_impl.gateway.main import event_loop_name


def test_event_loop_defaults_to_auto_and_survives_a_dump() -> None:
    cfg = config.load()
    assert cfg.event_loop == "auto"
    changed = config.parse(config.yaml.safe_load(
        config.dump(cfg).replace("event_loop: auto", "event_loop: asyncio")))
    assert changed.event_loop == "asyncio"
    assert config.parse(config.yaml.safe_load(config.dump(changed))) == changed


def test_a_bad_event_loop_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"cluster\.event_loop.*trio"):
        config.parse(config.yaml.safe_load(
            config.default_text().replace("event_loop: auto", "event_loop: trio")))


def test_event_loop_name_follows_the_choice() -> None:
    pytest.importorskip("uvloop")
    assert event_loop_name("auto") == "uvloop"
    assert event_loop_name("uvloop") == "uvloop"
    assert event_loop_name("asyncio") == "asyncio"


def test_uvloop_required_but_missing_is_a_config_error(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "uvloop", None)  # makes ``import uvloop`` fail
    assert event_loop_name("auto") == "asyncio"
    with pytest.raises(ConfigError, match=r"cluster\.event_loop: uvloop is not installed"):
        event_loop_name("uvloop")
