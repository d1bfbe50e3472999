"""What machine a run happened on (``hardware.json``) and whether it matches a target profile.

Latency verdicts only mean something next to the hardware that produced them,
so every certification run records the machine: CPU model, logical and
physical cores, the frequency governor of each CPU, isolated CPUs, kernel,
clock source, memory, a virtualization hint and the Python version. It reads
psutil, ``/proc`` and ``/sys`` and never fails: what it cannot read is
``"unknown"``.

``matches(profile, hw)`` compares a machine with a target-hardware profile
(``profiles/hardware-*.yaml``) and returns ``(matched, reasons)``, one reason
per key that does not hold. A budget verdict reports it next to PASS/FAIL.
Profile keys (every one optional; ``any`` or absent means no constraint):

- ``logical_cpus``, ``physical_cores``, ``isolated_cpus``: an int (exactly)
  or ``{min: N, max: M}``; ``isolated_cpus`` counts CPUs in
  ``/sys/devices/system/cpu/isolated``;
- ``memory_gb``: ``{min: N}`` or an int (at least);
- ``governor``, ``clocksource``, ``virtualization``: a string or a list of
  accepted values (``virtualization: none`` means bare metal); every CPU's
  governor must be accepted;
- ``cpu_model_contains``: a substring of the CPU model;
- ``kernel_min``: the lowest accepted kernel release, e.g. ``"5.15"``.
"""

from __future__ import annotations

import json
import platform
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

UNKNOWN = "unknown"
#: the keys of a target-hardware profile's ``target:`` (the profile loader refuses any other)
TARGET_KEYS = ("logical_cpus", "physical_cores", "isolated_cpus", "memory_gb", "governor", "clocksource",
               "virtualization", "cpu_model_contains", "kernel_min")
_VM_CLOCKSOURCES = {"kvm-clock": "kvm", "xen": "xen", "hyperv_clocksource_tsc_page": "hyperv"}


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def parse_cpu_list(text: str | None) -> list[int]:
    """``"0-3,6,8-9"`` -> ``[0, 1, 2, 3, 6, 8, 9]`` (the kernel's cpulist format)."""
    cpus: list[int] = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


def cpu_model(proc: Path) -> str:
    text = _read(proc / "cpuinfo") or ""
    for key in ("model name", "Processor", "cpu model", "Hardware"):
        m = re.search(rf"^{key}\s*:\s*(.+)$", text, re.MULTILINE)
        if m:
            return m.group(1).strip()
    return platform.processor() or UNKNOWN


def governors(sys_root: Path, cpus: list[int]) -> dict[str, str]:
    """``{"cpu0": "performance", ...}``; ``"unknown"`` where cpufreq is absent (most VMs)."""
    out = {}
    for cpu in cpus:
        gov = _read(sys_root / f"devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor")
        out[f"cpu{cpu}"] = gov or UNKNOWN
    return out


def virtualization(proc: Path, sys_root: Path) -> str:
    """A hint: ``kvm``, ``xen``, ``hyperv``, ``vmware``, ``vm`` (some hypervisor), ``none`` or ``unknown``."""
    hv = _read(sys_root / "hypervisor/type")
    if hv:
        return hv.lower()
    available = (_read(sys_root / "devices/system/clocksource/clocksource0/available_clocksource") or "").split()
    for name, kind in _VM_CLOCKSOURCES.items():
        if name in available:
            return kind
    vendor = " ".join(filter(None, (_read(sys_root / "class/dmi/id/sys_vendor"),
                                    _read(sys_root / "class/dmi/id/product_name")))).lower()
    for needle, kind in (("qemu", "kvm"), ("kvm", "kvm"), ("vmware", "vmware"),
                         ("microsoft", "hyperv"), ("xen", "xen"), ("virtualbox", "virtualbox")):
        if needle in vendor:
            return kind
    cpuinfo = _read(proc / "cpuinfo")
    if cpuinfo is None:
        return UNKNOWN
    flags = re.search(r"^flags\s*:(.*)$", cpuinfo, re.MULTILINE)
    if flags is None:
        return UNKNOWN
    return "vm" if "hypervisor" in flags.group(1).split() else "none"


def collect(proc: str | Path = "/proc", sys_root: str | Path = "/sys") -> dict[str, Any]:
    """The machine as plain JSON data (see the module docstring)."""
    import psutil

    proc, sys_root = Path(proc), Path(sys_root)
    logical = psutil.cpu_count(logical=True) or 0
    online = parse_cpu_list(_read(sys_root / "devices/system/cpu/online")) or list(range(logical))
    isolated = parse_cpu_list(_read(sys_root / "devices/system/cpu/isolated"))
    cmdline = _read(proc / "cmdline") or ""
    return {
        "cpu_model": cpu_model(proc),
        "logical_cpus": logical,
        "physical_cores": psutil.cpu_count(logical=False) or UNKNOWN,
        "online_cpus": online,
        "governor": governors(sys_root, online),
        "isolated_cpus": isolated,
        "nohz_full": _cmdline_value(cmdline, "nohz_full"),
        "kernel": platform.release(),
        "clocksource": _read(sys_root / "devices/system/clocksource/clocksource0/current_clocksource") or UNKNOWN,
        "memory_bytes": psutil.virtual_memory().total,
        "virtualization": virtualization(proc, sys_root),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
    }


def _cmdline_value(cmdline: str, key: str) -> str | None:
    m = re.search(rf"(?:^|\s){key}=(\S+)", cmdline)
    return m.group(1) if m else None


def write(path: str | Path, hw: Mapping[str, Any] | None = None) -> dict[str, Any]:
    data = dict(hw) if hw is not None else collect()
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return data


# ------------------------------------------------------------------ matching


def _accepted(want: Any) -> list[str] | None:
    """None when ``want`` puts no constraint, else the accepted values (lower case)."""
    if want is None:
        return None
    values = [str(v).lower() for v in (want if isinstance(want, list | tuple) else [want])]
    return None if "any" in values else values


def _check_range(key: str, want: Any, have: Any, reasons: list[str]) -> None:
    if want is None or want == "any":
        return
    if not isinstance(have, int | float):
        reasons.append(f"{key}: wanted {want}, but it is {have}")
        return
    lo, hi = (want, want) if isinstance(want, int | float) else (want.get("min"), want.get("max"))
    if lo is not None and have < lo:
        reasons.append(f"{key}: {have} < {lo}")
    if hi is not None and have > hi:
        reasons.append(f"{key}: {have} > {hi}")


def _release(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def matches(profile: Mapping[str, Any], hw: Mapping[str, Any] | None = None) -> tuple[bool, list[str]]:
    """``(True, [])`` when ``hw`` (default: this machine) meets every key of ``profile``."""
    hw = collect() if hw is None else hw
    want = profile.get("target", profile)  # a profile may nest its keys under ``target``
    reasons: list[str] = []
    _check_range("logical_cpus", want.get("logical_cpus"), hw.get("logical_cpus"), reasons)
    _check_range("physical_cores", want.get("physical_cores"), hw.get("physical_cores"), reasons)
    _check_range("isolated_cpus", want.get("isolated_cpus"), len(hw.get("isolated_cpus") or []), reasons)
    mem = want.get("memory_gb")
    if mem is not None and mem != "any":
        have_gb = round(hw.get("memory_bytes", 0) / 2**30, 1)
        _check_range("memory_gb", {"min": mem} if isinstance(mem, int | float) else mem, have_gb, reasons)
    for key in ("clocksource", "virtualization"):
        ok = _accepted(want.get(key))
        if ok is not None and str(hw.get(key, UNKNOWN)).lower() not in ok:
            reasons.append(f"{key}: {hw.get(key, UNKNOWN)} is not one of {ok}")
    ok = _accepted(want.get("governor"))
    if ok is not None:
        bad = {cpu: g for cpu, g in (hw.get("governor") or {}).items() if str(g).lower() not in ok}
        if bad or not hw.get("governor"):
            reasons.append(f"governor: {bad or 'none reported'} not in {ok}")
    model = want.get("cpu_model_contains")
    if model and str(model).lower() not in str(hw.get("cpu_model", "")).lower():
        reasons.append(f"cpu_model: {hw.get('cpu_model')!r} does not contain {model!r}")
    kmin = want.get("kernel_min")
    if kmin and _release(str(hw.get("kernel", ""))) < _release(str(kmin)):
        reasons.append(f"kernel: {hw.get('kernel')} older than {kmin}")
    return not reasons, reasons
