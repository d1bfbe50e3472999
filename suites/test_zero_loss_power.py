"""Zero acknowledged loss through a power-off: the writes never fsynced are gone.

Each trial gets its own SUT, its data dirs on the lossy FUSE filesystem from
the start (UNKNOWN with the reason where FUSE is unavailable). During the
load every process is killed and every write never fsynced is dropped; what
is left of the WAL must hold every acknowledged order. Under ``fsync`` none
may be lost. Under ``replicated`` acks do not wait for fsync, so a power loss
can lose them: that requirement FAILS naming the policy, whatever this trial
happened to lose (full profile only; the profile's ``power_off_policies``
overrides both).
"""

from __future__ import annotations

from pathlib import Path

import _support as s
import pytest
from _evidence import wal_orders
from _load import rate, start_fault_load, workload

from harness.checkers import Verdict, check_zero_acked_loss
from harness.profiles import scheduled


def pytest_generate_tests(metafunc):
    """Power-off policies: ``fsync`` always; ``replicated`` (expected to lose) in full runs."""
    if "power_policy" not in metafunc.fixturenames:
        return
    policies = ["fsync"]
    try:
        from harness.cli.certify_plugin import RUN_KEY

        prof = metafunc.config.stash[RUN_KEY].profile
    except (ImportError, KeyError):
        prof = {}
    wanted = prof.get("power_off_policies")
    if wanted:
        policies = list(wanted)
    elif "full" in str(prof.get("name", "")):
        policies = ["fsync", "replicated"]
    metafunc.parametrize("power_policy", [
        pytest.param(p, id=p, marks=pytest.mark.requirement(
            f"zero_loss.power_off.{p}",
            title=f"power-off under durability '{p}' loses no acknowledged order"))
        for p in policies])


def power_off_trial(sut_name, seed, profile, history, run_dir: Path, policy: str,
                    trial: int) -> Verdict:
    """One SUT on the lossy filesystem, loaded, then powered off; its surviving WAL judged."""
    from harness.nemesis.power import LossyFsError, LossyMount, power_off

    orders = int(profile["orders_per_trial"])
    with s.open_sut(sut_name, run_dir, seed + trial, profile, start=False,
                    durability=policy) as sut:
        s.require_features(sut, "power_off")
        if sut.durability != policy:
            s.na(f"{sut.name} runs policy {sut.durability}, not {policy}")
        mounts = []
        try:
            for d in sut.data_dirs().values():
                Path(d).mkdir(parents=True, exist_ok=True)
                mounts.append(LossyMount(d, work_dir=run_dir / f"lossyfs-{len(mounts)}").mount())
            s.start_sut(sut)
            since = len(history.ops)
            flow = workload(sut, seed * 41 + trial, profile,
                            prefix=f"P{trial}{policy[0].upper()}")
            before, load = start_fault_load(sut, history, flow, orders, rate(profile),
                                            first_process=20)
            with s.fault(history, "power-off", policy=policy, trial=trial) as window:
                crash = power_off(mounts, list(sut.components().values()))
                window["discarded"] = [{k: c.get(k) for k in ("files", "bytes_discarded")}
                                       for c in crash]
            after = load.join()
        except LossyFsError as exc:
            s.unknown(f"the lossy filesystem failed: {exc}")
        finally:
            for m in mounts:
                if m.mounted:
                    m.unmount()
        surviving = wal_orders(sut)
    v = check_zero_acked_loss(s.sub_history(history, since), surviving, None,
                              min_acked=int(profile.get("min_acked", 100)), policy=policy,
                              requirement=f"zero_loss.power_off.{policy}.trial{trial}")
    v.evidence.update(load_before=before.as_dict(), load_during=after.as_dict(),
                      wal_orders=len(surviving), crash=window.get("discarded"))
    return v


def test_power_off(sut_name, seed, profile, history, tmp_path_factory, power_policy):
    """power-off (unsynced writes dropped) loses no acknowledged order"""
    rid = f"zero_loss.power_off.{power_policy}"
    if not scheduled(profile, "power-off"):
        s.na(f"profile {profile.get('name')} does not schedule power-off")
    from harness.nemesis.power import fuse_available

    ok, why = fuse_available()
    if not ok:
        s.unknown(f"power-off needs the lossy FUSE filesystem: {why}")
    verdicts = [power_off_trial(sut_name, seed, profile, history,
                                tmp_path_factory.mktemp(f"power_off_{power_policy}"),
                                power_policy, t + 1)
                for t in range(int(profile.get("trials", 1)))]
    v = s.fold_trials(verdicts, rid)
    if power_policy == "replicated" and v.status != "fail":
        v = Verdict.failed(rid, "durability policy 'replicated' acknowledges before fsync, so a "
                           "power-off can lose acknowledged orders; the seed asks that none is "
                           f"ever lost (this run: {v.summary})", v.evidence)
    s.judge(v)

