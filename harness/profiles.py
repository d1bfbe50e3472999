"""Profiles: find one by name, load it, and refuse it unless every key and name is known.

Three kinds of profile YAML (docs/schemas.md lists every key): a
certification profile (``crucible certify``, the suites' ``--profile``), a
load profile (``crucible load``) and a target-hardware profile (what the
others' ``hardware_profile`` names). Each kind's schema below is the one
home of its keys; ``load_profile`` checks a document against it before
anything runs, so a typo is an error naming the file, the key and the known
names, never a silent default. A certification that schedules
``kill-secondry`` would otherwise turn a requirement N/A and pass.

``ZERO_LOSS_FAULTS`` is the one list of the faults a certification profile
may schedule; the suites that inject them ask it.

Profiles are found by name in ``$CRUCIBLE_PROFILES``, ``./profiles`` and the
kit's own (``harness.kit``), or given as a YAML path.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.coverage import NEEDS
from harness.hardware import TARGET_KEYS
from harness.kit import kit_dir
from harness.latency_budget import parse_budgets
from harness.nemesis.udp_plan import UdpFaultRates
from harness.schedule import segments
from harness.workload import STANDARD_MIX, WorkloadSpec
from reference_impl.core.durability import POLICIES

#: the faults a certification profile's ``faults:`` may schedule (the zero-loss suites' trials)
ZERO_LOSS_FAULTS = ("kill-secondary", "kill-logger", "kill-gateway", "power-off", "torn-wal-tail",
                    "bitflip-wal-tail", "bitflip-wal-middle")
KINDS = ("certify", "load", "hardware")
REQUIRED = "required"  #: the default of a key that has none
_TYPES = {"int": (int,), "number": (int, float), "str": (str,), "map": (dict,), "list": (list,),
          "int or list": (int, list), "any": (object,)}


class ProfileError(ValueError):
    """A profile that cannot run as written: ``FILE: KEY: reason`` (a usage error)."""

    def __init__(self, file: str | Path, key: str, reason: str) -> None:
        self.file, self.key, self.reason = str(file), key, reason
        super().__init__(f"{file}: {key}: {reason}")


@dataclass(frozen=True, slots=True)
class Key:
    """One key of a schema: its type, default and meaning; ``keys`` when it is a mapping of known keys."""

    type: str
    default: Any
    doc: str
    choices: tuple[str, ...] = ()  #: for a str, or for each item of a list
    keys: Mapping[str, Key] | None = None
    low: float | None = None
    high: float | None = None
    check: Callable[[Any], object] | None = None  #: raises ValueError on a bad value
    what: str = "value"  #: what a choice is, for the message


def unknown_name(name: str, known: Iterable[str], what: str = "key") -> str:
    """The reason for a name outside ``known``: a close match when there is one, and the list."""
    known = list(known)
    close = difflib.get_close_matches(name, known, n=1)
    return f"unknown {what}" + (f" (did you mean {close[0]}?)" if close else "") + f"; known: {', '.join(known)}"


def _any_of(*names: str, doc: str) -> dict[str, Key]:
    return {n: Key("any", None, doc) for n in names}


_RELAY_DEFAULTS = {f.name: f.default for f in dataclasses.fields(UdpFaultRates)}
_COMMON = {
    "name": Key("str", "the file's stem", "the name reports use"),
    "description": Key("str", "", "one line for people"),
    "durability": Key("str", "the SUT's own", "the durability policy under test", choices=POLICIES, what="policy"),
    "hardware_profile": Key("str", "none", "a target-hardware profile: budget verdicts say whether this "
                                           "machine matched it"),
    "budgets": Key("map", "none", "``<stage>_p<percentile>_us: µs`` (harness/latency_budget.py)",
                   check=parse_budgets),
}
CERTIFY: dict[str, Key] = {
    **_COMMON,
    "trials": Key("int", 1, "independent trials per fault", low=1),
    "orders_per_trial": Key("int", REQUIRED, "orders sent per trial (open loop)", low=1),
    "fuzz_frames_per_door": Key("int", 2000, "generated frames per door (OUCH, HTTP, re-request)", low=1),
    "load": Key("map", "{}", "the trials' open-loop order flow", keys={
        "rate_per_s": Key("number", "as fast as the workers go", "requests per second", low=0),
        "symbols": Key("int", "all the SUT's", "how many of the SUT's symbols to trade", low=1),
        "accounts": Key("int", "all the SUT's", "how many of the SUT's accounts to use", low=1),
        "cross_rate": Key("number", 0.15, "share of limit orders priced through the touch", low=0, high=1)}),
    "relay": Key("map", "no faults", "bus faults per datagram for the exactly-once suite", keys={
        name: Key("number", default, "see harness/nemesis/udp_plan.py", low=0)
        for name, default in _RELAY_DEFAULTS.items()}, check=lambda d: UdpFaultRates(**d)),
    "faults": Key("list", "all of them", "zero-loss faults, one trial each (times trials)",
                  choices=ZERO_LOSS_FAULTS, what="fault"),
    "power_off_policies": Key("list", "[fsync]", "the durability policies a power-off trial runs under",
                              choices=POLICIES, what="policy"),
    "slow_fsync_ms": Key("number", 20, "every fsync on the lossy filesystem takes this much longer (power-off "
                         "and durability-timing trials; 0: no timing trial, N/A)", low=0),
    "evidence": Key("map", "harness/coverage.py's", "per requirement, the minimum count of each situation it "
                    "must have seen; below it the verdict is UNKNOWN naming what is missing", keys={
                        rid: Key("map", "{}", f"the situations {rid} needs", keys={
                            n.situation: Key("int", n.minimum, n.doc, low=0) for n in needs})
                        for rid, needs in NEEDS.items()}, what="requirement"),
    "power_off_required": Key("list", "[]", "policies that do not promise to survive power loss but "
                              "must here: a lost ack FAILs instead of being shown N/A", choices=POLICIES,
                              what="policy"),
}
LOAD: dict[str, Key] = {
    **_COMMON,
    "door": Key("str", "ouch", "the front door the load goes through", choices=("ouch", "http"), what="door"),
    "shape": Key("map", REQUIRED, "when each request is meant to leave (harness/schedule.py)",
                 check=segments),
    "workload": Key("map", "{}", "what is sent (harness/workload.py, seeded)", keys={
        "symbols": Key("int or list", "all the SUT's", "how many of the SUT's symbols, or a list of them"),
        "accounts": Key("int", "all the SUT's", "how many of the SUT's accounts", low=1),
        "mix": Key("map", "the standard mix", "weight per request kind",
                   keys={k: Key("int", w, "weight", low=0) for k, w in STANDARD_MIX.items()}),
        "cross_rate": Key("number", WorkloadSpec.cross_rate, "share of limit orders priced through the touch",
                          low=0, high=1),
        **{k: Key("int", getattr(WorkloadSpec, k), "see harness/workload.py", low=1)
           for k in ("mid", "tick", "depth_ticks", "max_qty", "live_window")}}),
    "drain_s": Key("number", 5, "wait this long after the last intended send; then open ops are info",
                   low=0),
    "http_workers": Key("int", 16, "HTTP door only: the sender's blocking workers", low=1),
}
HARDWARE: dict[str, Key] = {
    "name": _COMMON["name"],
    "description": _COMMON["description"],
    "target": Key("map", REQUIRED, "what the machine must be (harness/hardware.py)",
                  keys=_any_of(*TARGET_KEYS, doc="an exact value, {min, max}, a list or any")),
}
SCHEMAS = {"certify": CERTIFY, "load": LOAD, "hardware": HARDWARE}


def schema_rows(schema: Mapping[str, Key], prefix: str = "") -> Iterator[tuple[str, Key]]:
    """Every (dotted key, Key) of a schema, nested keys after their mapping (for the docs)."""
    for name, key in schema.items():
        yield prefix + name, key
        if key.keys is not None:
            yield from schema_rows(key.keys, f"{prefix}{name}.")


def validate(doc: Mapping[str, Any], schema: Mapping[str, Key], file: str | Path, prefix: str = "") -> None:
    """Raise ``ProfileError`` on the first unknown, missing or ill-typed key of ``doc``."""
    for name in doc:
        if name not in schema:
            raise ProfileError(file, f"{prefix}{name}", unknown_name(str(name), schema))
    for name, key in schema.items():
        path = f"{prefix}{name}"
        if name not in doc:
            if key.default == REQUIRED:
                raise ProfileError(file, path, "missing (required)")
            continue
        value = doc[name]
        if isinstance(value, bool) or not isinstance(value, _TYPES[key.type]):
            raise ProfileError(file, path, f"must be {key.type} (got {value!r})")
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items if key.choices else ()):
            if item not in key.choices:
                where = f"{path}[{i}]" if isinstance(value, list) else path
                raise ProfileError(file, where, unknown_name(str(item), key.choices, key.what))
        if (key.low is not None and value < key.low) or (key.high is not None and value > key.high):
            raise ProfileError(file, path, f"must be in [{key.low}, {key.high}] (got {value!r})")
        if key.keys is not None:
            validate(value, key.keys, file, f"{path}.")
        if key.check is not None:
            try:
                key.check(value)
            except (TypeError, ValueError) as exc:
                text = str(exc)  # a checker that names the nested key (shape.kind: ...) keeps it
                nested = text.startswith(f"{name}.") and ": " in text
                where, reason = text.split(": ", 1) if nested else (name, text)
                raise ProfileError(file, prefix + where, reason) from None


def scheduled(profile: Mapping[str, Any], fault: str) -> bool:
    """Whether a certification profile schedules ``fault`` (every one when it lists none).

    The suites ask this rather than reading ``faults:`` themselves, so that a
    fault name misspelled in a suite is an error, not a requirement that is
    N/A in every run.
    """
    if fault not in ZERO_LOSS_FAULTS:
        raise ValueError(f"{fault!r}: " + unknown_name(fault, ZERO_LOSS_FAULTS, "fault"))
    return fault in profile.get("faults", ZERO_LOSS_FAULTS)


def profile_dirs() -> list[Path]:
    dirs = [Path(d) for d in [os.environ.get("CRUCIBLE_PROFILES")] if d]
    return dirs + [Path.cwd() / "profiles", kit_dir("profiles")]


def find_profile(name_or_path: str) -> Path:
    """A YAML path as given, else ``<name>.yaml`` in $CRUCIBLE_PROFILES, ./profiles, the kit's profiles."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or os.sep in name_or_path:
        if p.is_file():
            return p
        raise ProfileError(name_or_path, "profile", "no such file")
    dirs = profile_dirs()
    for d in dirs:
        if (d / f"{name_or_path}.yaml").is_file():
            return d / f"{name_or_path}.yaml"
    known = sorted({f.stem for d in dirs if d.is_dir() for f in d.glob("*.yaml")})
    raise ProfileError(name_or_path, "profile",
                       f"not in {', '.join(map(str, dirs))}; " + unknown_name(name_or_path, known, "profile"))


def yaml_problem(exc: yaml.YAMLError) -> tuple[str, str]:
    """(``line L, column C``, ``not valid YAML: problem``) of a YAML syntax error, in one line."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return (f"line {mark.line + 1}, column {mark.column + 1}" if mark else "<yaml>"), f"not valid YAML: {problem}"


def load_profile(name_or_path: str, kind: str = "certify") -> tuple[dict[str, Any], Path]:
    """The profile's settings (``name`` filled in) and its path; ``ProfileError`` unless it is valid."""
    path = find_profile(name_or_path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ProfileError(path, *yaml_problem(exc)) from None
    except OSError as exc:
        raise ProfileError(path, "profile", f"cannot read: {exc.strerror}") from None
    if not isinstance(data, dict):
        raise ProfileError(path, "<root>", f"a {kind} profile is a YAML mapping")
    validate(data, SCHEMAS[kind], path)
    if kind != "hardware" and data.get("hardware_profile"):
        try:
            load_profile(data["hardware_profile"], "hardware")
        except ProfileError as exc:
            raise ProfileError(path, "hardware_profile", exc.reason if exc.key == "profile" else str(exc)) from None
    data.setdefault("name", path.stem)
    return data, path
