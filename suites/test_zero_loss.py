"""Zero acknowledged loss: every acknowledged order survives kill -9 and a damaged WAL.

One SUT (the profile's durability policy) serves the kill and WAL trials,
in this order. Power-off, whose SUTs sit on the lossy filesystem, is in
``test_zero_loss_power``; the WAL surgery is the adapter's (``Sut.damage_wal``,
N/A where the SUT offers no ``wal_damage``).

- **kill -9 under load** (secondary, logger, gateway). A seeded load runs;
  once most of the trial's ``orders_per_trial`` are sent (at least
  ``acked_before_fault`` acknowledged: the profile's ``evidence:``, else the
  verdict is UNKNOWN), the component is
  killed while the rest of the load keeps arriving. Every order a client was
  told is accepted must be in the WAL that survives (read before the
  component comes back) and in the recovered state (each account's orders
  from the HTTP door once the component is restarted and the SUT settled).
- **torn / bit-flipped WAL tail.** The logger is killed, the last record of
  the last segment is cut short (the file truncated inside it) or has one
  bit flipped; ``crucible wal verify`` must report it, and the restarted
  logger must resume right after the last intact record
  (``check_no_corrupt_accepted``).
- **bit flip in the middle of a segment** (``zero_loss.bitflip_wal_middle``).
  The logger is killed and one bit is flipped in a record that intact records
  follow. No crash explains that: ``crucible wal verify`` must report it
  (exit 1) and the logger must REFUSE to start, since cutting the log there
  would drop durable records (``check_corrupt_middle_refused``). The WAL is
  then put back and the logger restarted. Scheduled when the profile lists
  ``bitflip-wal-middle`` or ``bitflip-wal-tail``.

After every fault window the exchange must be live again (``check_liveness``,
joined into the trial's verdict): every replica and the logger at the
sequencer's head, a probe order accepted, every order of the trial settled.
"""

from __future__ import annotations

import _support as s
import pytest
from _continuity import CONTINUITY, TITLE, module_continuity
from _doors import http_door, http_url
from _evidence import liveness_evidence, wal_orders
from _load import Load, rate, start_fault_load, workload

from harness.checkers import Verdict, check_no_corrupt_accepted, check_zero_acked_loss
from harness.checkers.liveness import check_liveness, with_liveness
from harness.checkers.zero_loss import check_corrupt_middle_refused
from harness.coverage import covered, minimums
from harness.profiles import scheduled
from harness.sut.base import SutError

KILLS = {"kill-secondary": "secondary", "kill-logger": "logger", "kill-gateway": "gateway"}
RECOVER_WAIT_S = 10.0
TAIL_ORDERS = 40


@pytest.fixture(scope="module")
def zl_sut(sut_name, seed, profile, tmp_path_factory):
    with s.open_sut(sut_name, tmp_path_factory.mktemp("zero_loss"), seed, profile) as sut:
        yield sut


def recovered_orders(sut, expect: set) -> dict:
    """Each account's orders as the SUT reports them (HTTP), once the expected ones show up."""
    http_url(sut)  # N/A without an HTTP door
    found: dict = {}

    def poll() -> bool:
        found.clear()
        for account, password in sut.accounts().items():
            with http_door(sut, (account, password)) as door:
                try:
                    reply = door.request("GET", "/v1/orders?state=all")
                except OSError:
                    return False
            if reply.status != 200:
                return False
            for o in reply.doc().get("orders", []):
                found[(account, o.get("token"))] = o.get("state")
        return expect <= {k for k, st in found.items() if st not in (None, "rejected")}

    s.wait_for(poll, RECOVER_WAIT_S, 0.2)
    return dict(found)


def kill_trial(sut, history, profile, seed: int, fault: str, trial: int) -> Verdict:
    role = KILLS[fault]
    name = s.component(sut, role)
    rid = f"zero_loss.{fault.replace('-', '_')}"
    if name is None:
        return Verdict.not_applicable(rid, f"{sut.name} has no {role} component")
    orders = int(profile["orders_per_trial"])
    min_acked = minimums(profile, rid)["acked_before_fault"]
    since = len(history.ops)
    flow = workload(sut, seed * 31 + trial, profile, prefix=f"K{trial}{role[:2].upper()}")
    before, load = start_fault_load(sut, history, flow, orders, rate(profile), first_process=10)
    with s.fault(history, fault, component=name, trial=trial):
        sut.kill(name)
        after = load.join()
        surviving = wal_orders(sut)
        sut.restart(name)
    settled = s.settle(sut)
    ops = s.sub_history(history, since)
    acked = {k for k in _acked_keys(ops)}
    recovered = recovered_orders(sut, acked) if sut.offers("http") else None
    v = check_zero_acked_loss(ops, surviving, recovered, min_acked=min_acked,
                              policy=sut.durability, requirement=f"{rid}.trial{trial}")
    v.evidence.update(component=name, load_before=before.as_dict(), load_during=after.as_dict(),
                      settled=settled["settled"], wal_orders=len(surviving),
                      recovered_orders=None if recovered is None else len(recovered))
    return with_liveness(v, liveness(sut, history, since, settled, f"{rid}.trial{trial}"))


def liveness(sut, history, since: int, settled: dict, rid: str) -> Verdict:
    """The trial's liveness once the fault window closed and ``settle`` waited its bound."""
    return check_liveness(**liveness_evidence(sut, history, since, settled, s.SETTLE_TIMEOUT_S),
                          requirement=f"{rid}.liveness")


def _acked_keys(ops) -> set:
    from harness.checkers.zero_loss import acknowledged_orders

    return set(acknowledged_orders(ops)[0])


@pytest.mark.parametrize("fault", [
    pytest.param(f, id=f, marks=pytest.mark.requirement(
        f"zero_loss.{f.replace('-', '_')}",
        title=f"kill -9 of the {role} under load loses no acknowledged order"))
    for f, role in KILLS.items()])
def test_kill_under_load(zl_sut, history, profile, seed, fault):
    rid = f"zero_loss.{fault.replace('-', '_')}"
    s.require_features(zl_sut, "kill", "restart")
    if not scheduled(profile, fault):
        s.na(f"profile {profile.get('name')} does not schedule {fault}")
    verdicts = [kill_trial(zl_sut, history, profile, seed, fault, t + 1)
                for t in range(int(profile.get("trials", 1)))]
    v = s.fold_trials(verdicts, rid)
    s.judge(covered(v, s.trials_seen(v, "acked_before_fault"), profile))


# ------------------------------------------------------------------ torn tail


@pytest.mark.parametrize("how", [
    pytest.param(h, id=h, marks=pytest.mark.requirement(
        f"zero_loss.{h}_wal_tail",
        title=f"a {what} WAL tail is reported and never applied by recovery"))
    for h, what in (("torn", "torn"), ("bitflip", "bit-flipped"))])
def test_corrupt_wal_tail(zl_sut, history, profile, seed, how):
    rid = f"zero_loss.{how}_wal_tail"
    sut = zl_sut
    s.require_features(sut, "kill", "restart", "digest", "wal", "wal_damage")
    logger = s.component(sut, "logger")
    if logger is None:
        s.na(f"{sut.name} has no logger component")
    if not scheduled(profile, f"{how}-wal-tail"):
        s.na(f"profile {profile.get('name')} does not schedule {how}-wal-tail")
    since = len(history.ops)
    flow = workload(sut, seed * 37 + len(how), profile, prefix=f"W{how[0].upper()}")
    Load(sut, history, flow, workers=2).run(TAIL_ORDERS)
    s.settle(sut)
    with s.fault(history, f"{how}-wal-tail", component=logger) as window:
        sut.kill(logger)
        window.update(sut.damage_wal(how))
        valid = [seq for seq, _ in sut.wal_records()]
        verify_exit, verify_output = sut.verify_wal()
        sut.restart(logger)
        recovery = (s.safe_digest(sut, logger) or {}).get("recovery")
    settled = s.settle(sut)
    evidence = {"corruption": window, "verify_exit": verify_exit,
                "verify_output": verify_output.strip()[-400:], "recovery": recovery}
    reported = Verdict.passed(f"{rid}.verify", "`crucible wal verify` reports the bad record")
    if verify_exit != 1:
        reported = Verdict.failed(f"{rid}.verify", f"`crucible wal verify` exited "
                                  f"{verify_exit} on a corrupt tail; it must report it")
    if not recovery:
        applied = Verdict.unknown(f"{rid}.recovery", "the restarted logger reports no recovery")
    else:
        applied = check_no_corrupt_accepted(int(recovery["next_seq"]) - 1, valid,
                                            requirement=f"{rid}.recovery")
    v = s.fold([reported, applied], rid)
    v.evidence.update(evidence)
    seen = {"damaged_records": int("last_seq" in window), "intact_records": len(valid)}
    s.judge(covered(with_liveness(v, liveness(sut, history, since, settled, rid)), seen, profile))


# ------------------------------------------------------------ mid-segment bit flip


@pytest.mark.requirement(
    "zero_loss.bitflip_wal_middle",
    title="a bit flip in the middle of a WAL segment is reported and the logger refuses to start")
def test_bitflip_wal_middle(zl_sut, history, profile, seed):
    """Expected: `crucible wal verify` exits 1, and the logger REFUSES to start (exits).

    A bad record with intact records after it is no crash's torn tail: durable
    (acknowledged) records follow it, so recovering by cutting the log there
    would lose them. Starting on it in any way is a FAIL; so is a verify that
    does not report it. Afterwards the WAL is put back and the logger
    restarted, so the module's SUT serves the next trials.
    """
    rid = "zero_loss.bitflip_wal_middle"
    sut = zl_sut
    s.require_features(sut, "kill", "restart", "wal_damage")
    logger = s.component(sut, "logger")
    if logger is None:
        s.na(f"{sut.name} has no logger component")
    if not (scheduled(profile, "bitflip-wal-middle") or scheduled(profile, "bitflip-wal-tail")):
        s.na(f"profile {profile.get('name')} schedules no WAL bit flip")
    since = len(history.ops)
    flow = workload(sut, seed * 43 + 7, profile, prefix="WM")
    Load(sut, history, flow, workers=2).run(TAIL_ORDERS)
    s.settle(sut)
    started, start_error, recovery = False, None, None
    with s.fault(history, "bitflip-wal-middle", component=logger) as window:
        sut.kill(logger)
        done = sut.damage_wal("bitflip-middle")
        window.update(done)
        try:
            verify_exit, verify_output = sut.verify_wal()
            try:
                sut.restart(logger)
                started = True
                recovery = (s.safe_digest(sut, logger) or {}).get("recovery")
            except SutError as exc:
                start_error = f"{exc}"
        finally:
            if "flipped_seq" in done:  # put the WAL back; the logger serves the next trials
                if started:
                    sut.kill(logger)
                sut.repair_wal()
            try:
                sut.restart(logger)
            except SutError as exc:
                window["restore_error"] = str(exc)
    settled = s.settle(sut)
    v = check_corrupt_middle_refused(verify_exit, int(done.get("records_after", 0)),
                                     started, start_error, requirement=rid)
    v.evidence.update(corruption=window, verify_output=verify_output.strip()[-400:],
                      recovery=recovery, start_error=start_error)
    seen = {"damaged_records": int("flipped_seq" in done), "intact_records": int(done.get("records_after", 0))}
    s.judge(covered(with_liveness(v, liveness(sut, history, since, settled, rid)), seen, profile))


@pytest.mark.requirement(CONTINUITY, title=TITLE)
def test_sequence_continuity(zl_sut, profile):
    """Last in the module: everything it sequenced is in the sequenced input once, in order."""
    s.judge(module_continuity(zl_sut, profile))
