from __future__ import annotations

import json

from harness import hardware

CI_BOX = {
    "cpu_model": "AMD EPYC", "logical_cpus": 2, "physical_cores": 2,
    "governor": {"cpu0": "unknown", "cpu1": "unknown"}, "isolated_cpus": [],
    "kernel": "6.1.0-18-amd64", "clocksource": "tsc", "memory_bytes": 8 * 2**30,
    "virtualization": "kvm",
}


def fake_tree(tmp_path, *, governor="performance", isolated="2-3", hypervisor_flag=True):
    proc, sys_root = tmp_path / "proc", tmp_path / "sys"
    cpu = sys_root / "devices/system/cpu"
    for n in range(4):
        (cpu / f"cpu{n}/cpufreq").mkdir(parents=True)
        if governor:
            (cpu / f"cpu{n}/cpufreq/scaling_governor").write_text(governor + "\n")
    (cpu / "online").write_text("0-3\n")
    (cpu / "isolated").write_text(isolated + "\n")
    (sys_root / "devices/system/clocksource/clocksource0").mkdir(parents=True)
    (sys_root / "devices/system/clocksource/clocksource0/current_clocksource").write_text("tsc\n")
    (sys_root / "devices/system/clocksource/clocksource0/available_clocksource").write_text("tsc hpet\n")
    proc.mkdir()
    flags = "fpu tsc hypervisor avx2" if hypervisor_flag else "fpu tsc avx2"
    (proc / "cpuinfo").write_text(f"processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: {flags}\n")
    (proc / "cmdline").write_text("quiet isolcpus=2-3 nohz_full=2-3\n")
    return proc, sys_root


def test_parse_cpu_list():
    assert hardware.parse_cpu_list("0-3,6,8-9\n") == [0, 1, 2, 3, 6, 8, 9]
    assert hardware.parse_cpu_list("") == []
    assert hardware.parse_cpu_list(None) == []


def test_collect_reads_proc_and_sys(tmp_path):
    proc, sys_root = fake_tree(tmp_path)
    hw = hardware.collect(proc, sys_root)
    assert hw["cpu_model"] == "Test CPU 9000"
    assert hw["online_cpus"] == [0, 1, 2, 3]
    assert hw["governor"] == {f"cpu{n}": "performance" for n in range(4)}
    assert hw["isolated_cpus"] == [2, 3]
    assert hw["nohz_full"] == "2-3"
    assert hw["clocksource"] == "tsc"
    assert hw["virtualization"] == "vm"  # a hypervisor flag, no known clock source or DMI vendor
    assert hw["logical_cpus"] >= 1 and hw["memory_bytes"] > 0 and hw["python"].count(".") == 2
    json.dumps(hw)  # plain JSON data


def test_collect_says_unknown_for_what_it_cannot_read(tmp_path):
    proc, sys_root = fake_tree(tmp_path, governor=None, hypervisor_flag=False)
    hw = hardware.collect(proc, sys_root)
    assert set(hw["governor"].values()) == {"unknown"}
    assert hw["virtualization"] == "none"
    empty = hardware.collect(tmp_path / "nope", tmp_path / "nope")
    assert empty["virtualization"] == "unknown" and empty["clocksource"] == "unknown"


def test_kvm_clock_means_kvm(tmp_path):
    proc, sys_root = fake_tree(tmp_path)
    (sys_root / "devices/system/clocksource/clocksource0/available_clocksource").write_text("tsc kvm-clock\n")
    assert hardware.virtualization(proc, sys_root) == "kvm"


def test_this_machine_collects_and_writes(tmp_path):
    hw = hardware.write(tmp_path / "hardware.json")
    assert json.loads((tmp_path / "hardware.json").read_text()) == hw


def test_ci_profile_matches_a_2_vcpu_kvm_guest():
    ci = {"name": "hardware-ci", "target": {"logical_cpus": {"min": 2}, "virtualization": ["kvm", "vm"],
                                            "governor": "any", "memory_gb": 2}}
    assert hardware.matches(ci, CI_BOX) == (True, [])


def test_target_profile_lists_every_mismatch():
    target = {"logical_cpus": {"min": 8}, "isolated_cpus": {"min": 2}, "virtualization": "none",
              "governor": "performance", "clocksource": ["tsc"], "cpu_model_contains": "Xeon",
              "kernel_min": "6.8", "memory_gb": {"min": 32}}
    ok, reasons = hardware.matches(target, CI_BOX)
    assert not ok
    keys = [r.split(":")[0] for r in reasons]
    assert keys == ["logical_cpus", "isolated_cpus", "memory_gb", "virtualization", "governor",
                    "cpu_model", "kernel"]


def test_exact_counts_and_any():
    assert hardware.matches({"logical_cpus": 2, "governor": ["any"]}, CI_BOX) == (True, [])
    ok, reasons = hardware.matches({"logical_cpus": 4}, CI_BOX)
    assert not ok and reasons == ["logical_cpus: 2 < 4"]
    ok, reasons = hardware.matches({"physical_cores": {"max": 1}}, CI_BOX)
    assert reasons == ["physical_cores: 2 > 1"]
