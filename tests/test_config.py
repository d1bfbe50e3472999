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


# ------------------------------------------------------------------ every key and fault name is checked


def _load_edited(tmp_path, old: str, new: str) -> config.ClusterConfig:
    text = config.default_text()
    assert old in text
    path = tmp_path / "cluster.yaml"
    path.write_text(text.replace(old, new, 1))
    return config.load(path)


def test_a_misspelled_durability_key_names_the_file_the_key_and_the_known_keys(tmp_path) -> None:
    with pytest.raises(ConfigError) as err:
        _load_edited(tmp_path, "  durability: fsync", "  durabilty: none")
    text = str(err.value)
    assert text.startswith(f"{tmp_path / 'cluster.yaml'}: config error: cluster.durabilty: unknown key")
    assert "did you mean durability?" in text and "transport" in text


@pytest.mark.parametrize(("old", "new", "key"), [
    ("\ncluster:", "\nclustr: {}\ncluster:", "clustr"),
    ("  admin_port", "  admin_prot", "sequencer.admin_prot"),
    ("  data_dir:", "  datadir:", "logger.datadir"),
])
def test_an_unknown_key_in_any_section_is_an_error(tmp_path, old, new, key) -> None:
    with pytest.raises(ConfigError, match=rf"config error: {key}: unknown key") as err:
        _load_edited(tmp_path, old, new)
    assert err.value.key == key


def test_an_unknown_fault_name_is_an_error_and_lists_the_variants(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"faults\[1\]: unknown fault \(did you mean skip_dedup\?\)") as err:
        _load_edited(tmp_path, "\ncluster:", "\nfaults: [ignore_wal_crc, skip_dedupe]\ncluster:")
    assert all(name in str(err.value) for name in config.BROKEN_VARIANTS)


def test_overriding_faults_checks_the_names_too() -> None:
    cfg = config.load()
    assert cfg.with_overrides(faults=("skip_dedup",)).broken("skip_dedup")
    with pytest.raises(ConfigError, match="faults"):
        cfg.with_overrides(faults=("kill-secondary",))
    with pytest.raises(ValueError, match="skip_dedupe"):
        cfg.broken("skip_dedupe")


def test_a_yaml_syntax_error_names_the_file_and_the_line(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"cluster\.yaml: config error: line \d+, column \d+: not valid YAML"):
        _load_edited(tmp_path, "\ncluster:", "\ncluster: [\n")


def test_every_broken_variant_is_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "config.md").read_text()
    assert all(f"`{name}`" in doc for name in config.BROKEN_VARIANTS)
