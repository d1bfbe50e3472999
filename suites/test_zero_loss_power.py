"""Zero acknowledged loss through a power-off: the writes never fsynced are gone.

Each trial gets its own SUT, its data dirs on the lossy FUSE filesystem from
the start (UNKNOWN with the reason where FUSE is unavailable). During the
load the power goes at one instant: from the fault on, every fsync is slowed
by the profile's ``slow_fsync_ms``, and the lossy filesystem crashes as the
first flush of un-synced data begun then would complete (so that flush and
any write in flight are cut, after the longest time an early acknowledgement
had to get out), then every process is killed. What is left of the WAL must hold every
acknowledged order; the crash reports say what each trial discarded, and a
trial that discarded nothing is UNKNOWN. The profile's ``power_off_policies``
lists the policies tried (``fsync`` by default). Only ``fsync`` promises to
survive power loss: under ``replicated`` the loss is measured and shown
(orders lost, RPO) as N/A, outside that promise, unless the profile's
``power_off_required`` lists the policy (``check_power_off``).

The moment of durability, measured from outside the SUT: on the lossy
filesystem with every fsync slowed by the profile's ``slow_fsync_ms``, no
acknowledgement may reach its client before the flush that covers its
order's WAL record has completed (``check_ack_after_flush``; the record is
found by its token in the data dirs, its flush in the filesystem's log of
commits). The delay makes a premature acknowledgement show on every order,
not by chance. N/A under a policy other than ``fsync``.
"""

from __future__ import annotations

from pathlib import Path

import _support as s
import pytest
from _evidence import wal_orders
from _load import Load, rate, start_fault_load, workload

from harness.checkers import Verdict
from harness.checkers.zero_loss import CUT_KEYS, acknowledged_orders, check_ack_after_flush, check_power_off
from harness.coverage import covered, minimums
from harness.profiles import scheduled
from reference_impl.core.durability import FSYNC


def pytest_generate_tests(metafunc):
    """One requirement per policy in the profile's ``power_off_policies``."""
    if "power_policy" not in metafunc.fixturenames:
        return
    try:
        from harness.cli.certify_plugin import RUN_KEY

        prof = metafunc.config.stash[RUN_KEY].profile
    except (ImportError, KeyError):
        prof = {}
    metafunc.parametrize("power_policy", [
        pytest.param(p, id=p, marks=pytest.mark.requirement(
            f"zero_loss.power_off.{p}",
            title=f"power-off under durability '{p}' loses no acknowledged order"))
        for p in prof.get("power_off_policies", [FSYNC])])


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
                crash = power_off(mounts, list(sut.components().values()),
                                  slow_fsync_ms=float(profile.get("slow_fsync_ms", 20)))
                window["discarded"] = [{k: c.get(k) for k in ("files", *CUT_KEYS)} for c in crash]
            after = load.join()
        except LossyFsError as exc:
            s.unknown(f"the lossy filesystem failed: {exc}")
        finally:
            for m in mounts:
                if m.mounted:
                    m.unmount()
        surviving = wal_orders(sut)
    v = check_power_off(s.sub_history(history, since), surviving, crash, policy,
                        required=policy in profile.get("power_off_required", []),
                        min_acked=minimums(profile, f"zero_loss.power_off.{policy}")["acked_before_fault"],
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
    seen = {**s.trials_seen(v, "acked_before_fault"),
            "bytes_discarded": s.trials_seen(v, "bytes_discarded")["bytes_discarded"]}
    s.judge(covered(v, seen, profile))



@pytest.mark.requirement("zero_loss.ack_after_flush",
                         title="no acknowledgement reaches a client before the flush of its order")
def test_ack_after_flush(sut_name, seed, profile, history, tmp_path_factory):
    """every acknowledgement comes after the flush that makes its order durable (fsync slowed)"""
    from harness.nemesis.power import LossyFsError, LossyMount, durable_at, fuse_available

    delay_ms = float(profile.get("slow_fsync_ms", 20))
    if not delay_ms:
        s.na(f"profile {profile.get('name')} sets slow_fsync_ms to 0: no durability-timing trial")
    ok, why = fuse_available()
    if not ok:
        s.unknown(f"durability timing needs the lossy FUSE filesystem: {why}")
    run_dir = tmp_path_factory.mktemp("ack_after_flush")
    mounts: list[LossyMount] = []
    try:
        with s.open_sut(sut_name, run_dir, seed + 7919, profile, start=False, durability=FSYNC) as sut:
            s.require_features(sut, "power_off")
            if sut.durability != FSYNC:
                s.na(f"{sut.name} runs policy {sut.durability}: only fsync waits for the flush")
            dirs = [Path(d) for d in sut.data_dirs().values()]
            for d in dirs:
                d.mkdir(parents=True, exist_ok=True)
                mounts.append(LossyMount(d, work_dir=run_dir / f"lossyfs-{len(mounts)}",
                                         fsync_delay_ms=delay_ms).mount())
            s.start_sut(sut)
            since = len(history.ops)
            flow = workload(sut, seed * 47, profile, prefix="DT")
            Load(sut, history, flow, workers=4, rate_per_s=rate(profile)).run(
                int(profile["orders_per_trial"]))
            log = [e for m in mounts for e in m.durable_log()]   # every ack is in by now
    except LossyFsError as exc:
        s.unknown(f"the lossy filesystem failed: {exc}")
    finally:
        for m in mounts:
            m.unmount()
    ops = s.sub_history(history, since)
    keys = {k[1].encode(): k for k in acknowledged_orders(ops)[0]}
    found = durable_at(dirs, log, keys)
    v = check_ack_after_flush(ops, {keys[n]: t for n, t in found.items()}, sut.durability,
                              min_acked=minimums(profile, "zero_loss.ack_after_flush")["timed_acks"])
    v.evidence.update(slow_fsync_ms=delay_ms, commits=len(log))
    s.judge(covered(v, {"timed_acks": v.evidence.get("timed", 0)}, profile))
