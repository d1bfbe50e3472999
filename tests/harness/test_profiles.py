"""Profiles are refused, naming the file, the key and the known names, unless every key and name is known."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import profiles
from harness.kit import kit_dir
from harness.profiles import ZERO_LOSS_FAULTS, ProfileError, load_profile

KIT = kit_dir("profiles")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "schemas.md"


def edited(tmp_path: Path, name: str, old: str, new: str) -> str:
    text = (KIT / f"{name}.yaml").read_text()
    assert old in text
    path = tmp_path / f"{name}.yaml"
    path.write_text(text.replace(old, new, 1))
    return str(path)


def refused(path: str, kind: str = "certify") -> ProfileError:
    with pytest.raises(ProfileError) as err:
        load_profile(path, kind)
    assert str(err.value).startswith(f"{path}: {err.value.key}: ")
    return err.value


@pytest.mark.parametrize(("name", "kind"), [
    ("certify-quick", "certify"), ("certify-full", "certify"), ("steady", "load"), ("micro-burst", "load"),
    ("ramp", "load"), ("cancel-storm", "load"), ("many-symbols", "load"), ("hardware-ci", "hardware"),
    ("hardware-target", "hardware")])
def test_every_shipped_profile_is_valid(name, kind) -> None:
    data, path = load_profile(name, kind)
    assert data["name"] == name and path.parent == KIT


def test_a_misspelled_fault_is_an_error_naming_the_known_faults(tmp_path) -> None:
    err = refused(edited(tmp_path, "certify-quick", "- kill-secondary", "- kill-secondry"))
    assert err.key == "faults[0]" and "did you mean kill-secondary?" in err.reason
    assert all(f in err.reason for f in ZERO_LOSS_FAULTS)


def test_an_unknown_certify_key_is_an_error(tmp_path) -> None:
    err = refused(edited(tmp_path, "certify-quick", "trials: 1", "trails: 1"))
    assert err.key == "trails" and "did you mean trials?" in err.reason and "orders_per_trial" in err.reason


@pytest.mark.parametrize(("old", "new", "key"), [
    ("  drop: 0.02", "  dorp: 0.02", "relay.dorp"),
    ("  drop: 0.02", "  drop: 2", "relay"),
    ("  cross_rate: 0.15", "  crossrate: 0.15", "load.crossrate"),
    ("durability: fsync", "durability: fsnc", "durability"),
    ("orders_per_trial: 300", "orders_per_trial: many", "orders_per_trial"),
    ("engine_p99_us: 50", "engine_p99_ms: 50", "budgets.engine_p99_ms"),
    ("hardware_profile: hardware-ci", "hardware_profile: hardware-cl", "hardware_profile"),
])
def test_nested_keys_values_and_names_are_checked(tmp_path, old, new, key) -> None:
    assert refused(edited(tmp_path, "certify-quick", old, new)).key == key


def test_a_yaml_syntax_error_names_the_line(tmp_path) -> None:
    err = refused(edited(tmp_path, "certify-quick", "trials: 1", "trials: [1"))
    assert err.key.startswith("line ") and err.reason.startswith("not valid YAML")


@pytest.mark.parametrize(("old", "new", "key"), [
    ("  rate_per_s: 1000", "  rate_per_sec: 1000", "shape.rate_per_sec"),
    ("  cross_rate: 0.15", "  crossrate: 0.15", "workload.crossrate"),
    ("ioc: 10", "iock: 10", "workload.mix.iock"),
    ("door: ouch", "door: fix", "door"),
    ("drain_s: 5", "drian_s: 5", "drian_s"),
])
def test_load_profile_keys_are_checked(tmp_path, old, new, key) -> None:
    assert refused(edited(tmp_path, "steady", old, new), "load").key == key


def test_a_hardware_target_key_is_checked(tmp_path) -> None:
    err = refused(edited(tmp_path, "hardware-ci", "  governor: any", "  govenor: any"), "hardware")
    assert err.key == "target.govenor" and "did you mean governor?" in err.reason


def test_an_unknown_profile_name_lists_the_known_ones() -> None:
    with pytest.raises(ProfileError, match=r"did you mean certify-quick\?.*known: .*steady"):
        load_profile("certify-quik")


def test_every_schema_key_is_published() -> None:
    doc = DOCS.read_text()
    for kind, schema in profiles.SCHEMAS.items():
        for key, _ in profiles.schema_rows(schema):
            assert f"`{key}`" in doc, f"{kind} profile key {key} missing from docs/schemas.md"
    assert all(f"`{f}`" in doc for f in ZERO_LOSS_FAULTS)


def test_suites_ask_the_one_list_whether_a_fault_is_scheduled() -> None:
    assert profiles.scheduled({}, "power-off") and profiles.scheduled({"faults": ["power-off"]}, "power-off")
    assert not profiles.scheduled({"faults": ["kill-logger"]}, "power-off")
    with pytest.raises(ValueError, match="did you mean power-off"):
        profiles.scheduled({}, "power-of")
