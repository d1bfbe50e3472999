"""The arbiter pair's active lease against a real etcd (started by reference_impl.launch.etcd).

Campaigners are processes of their own (tests/arbiter/campaigner.py) so that a
test can kill -9 or SIGSTOP the active one; the test samples both over the
takeover and checks that they are never active at once.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reference_impl.arbiter.lease import ActiveLease, Tenure
from reference_impl.launch.etcd import PACKAGE, EtcdServer

CLIENT_PORT, PEER_PORT = 29801, 29802
TTL_S = 1
#: etcd checks for expired leases every 500 ms; a campaigner polls every 50 ms; the rest is a slow machine
TAKEOVER_BOUND_S = TTL_S + 2.5
ROOT = Path(__file__).resolve().parents[2]

needs_etcd = pytest.mark.skipif(shutil.which("etcd") is None,
                                reason=f"etcd is not installed (Debian package {PACKAGE})")


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    with EtcdServer(tmp_path_factory.mktemp("etcd"), CLIENT_PORT, PEER_PORT) as server:
        yield server


class Campaigner:
    """One campaigner process, asked over its stdin; a dead or stopped one answers None."""

    def __init__(self, name: str, key: str) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.arbiter.campaigner", str(CLIENT_PORT), name, str(TTL_S), key],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        assert self._line(15.0) == "ready", f"{name} did not start"

    def _line(self, timeout_s: float) -> str | None:
        assert self.proc.stdout is not None
        if not select.select([self.proc.stdout], [], [], timeout_s)[0]:
            return None
        return self.proc.stdout.readline().strip() or None

    def ask(self, timeout_s: float = 0.2) -> str | None:
        """``A <fence>``, ``S``, or None (dead, or paused: it cannot act either way)."""
        if self.proc.poll() is not None:
            return None
        try:
            self.proc.stdin.write("?\n")
        except BrokenPipeError:
            return None
        return self._line(timeout_s)

    def fence(self) -> int | None:
        reply = self.ask()
        return int(reply.split()[1]) if reply and reply.startswith("A ") else None

    def wait_active(self, timeout_s: float) -> int:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            fence = self.fence()
            if fence is not None:
                return fence
            time.sleep(0.02)
        raise AssertionError(f"{self.name} not active within {timeout_s} s")

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def close(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(5)


@pytest.fixture
def pair(request: pytest.FixtureRequest, etcd: EtcdServer) -> Iterator[tuple[Campaigner, Campaigner]]:
    """Campaigner ``a`` active, then ``b`` started as its standby, on a key of this test's own."""
    key = f"/test/{request.node.name}"
    a = Campaigner("a", key)
    b = None
    try:
        a.wait_active(5.0)
        b = Campaigner("b", key)
        yield a, b
    finally:
        for c in (a, b):
            if c is not None:
                c.close()


def sample_takeover(a: Campaigner, b: Campaigner, until_s: float) -> list[tuple[float, str | None, str | None]]:
    """Ask both, alternately, until ``b`` is active or ``until_s`` passed: (t, a's, b's) per sample."""
    t0, samples = time.monotonic(), []
    while time.monotonic() - t0 < until_s:
        sample = (time.monotonic() - t0, a.ask(0.05), b.ask(0.05))
        samples.append(sample)
        if sample[2] and sample[2].startswith("A "):
            break
    return samples


def both_active(samples: list[tuple[float, str | None, str | None]]) -> list:
    return [s for s in samples if s[1] and s[2] and s[1].startswith("A ") and s[2].startswith("A ")]


def test_tenure_lasts_until_its_deadline() -> None:
    assert Tenure(fence=7, until_ns=1_000).active(999)
    assert not Tenure(fence=7, until_ns=1_000).active(1_000)


def test_lease_refuses_a_ttl_etcd_cannot_hold() -> None:
    with pytest.raises(ValueError, match="ttl_s"):
        ActiveLease(CLIENT_PORT, "x", ttl_s=0)
    with pytest.raises(ValueError, match="poll_s"):
        ActiveLease(CLIENT_PORT, "x", ttl_s=1, poll_s=0.5)


@needs_etcd
def test_kill9_of_the_active_one_lets_the_standby_in_within_the_ttl(pair) -> None:
    a, b = pair
    fence_a = a.fence()
    standby = [b.ask() for _ in range(10)]
    assert standby == ["S"] * 10, "the second campaigner must stay standby while the first holds the lease"
    a.signal(signal.SIGKILL)
    killed = time.monotonic()
    samples = sample_takeover(a, b, TAKEOVER_BOUND_S)
    took = time.monotonic() - killed
    fence_b = b.fence()
    assert fence_b is not None, f"no takeover within {TAKEOVER_BOUND_S} s: {samples[-3:]}"
    assert fence_b > fence_a, "a later holder's fence must be higher"
    assert not both_active(samples)
    assert took >= TTL_S * 0.5, f"took over after {took:.2f} s: before the dead one's lease could lapse"


@needs_etcd
def test_a_paused_holder_stands_down_before_the_standby_takes_over(pair) -> None:
    """SIGSTOP: the holder's keep-alives stop; when it resumes its deadline has passed (a zombie arbiter)."""
    a, b = pair
    fence_a = a.fence()
    a.signal(signal.SIGSTOP)
    samples = sample_takeover(a, b, TAKEOVER_BOUND_S)
    fence_b = b.fence()
    assert fence_b is not None and fence_b > fence_a, samples[-3:]
    a.signal(signal.SIGCONT)
    after = [(0.0, a.ask(1.0), b.ask(1.0)) for _ in range(25)]
    assert after[0][1] == "S", f"a resumed holder must answer standby at once, got {after[0][1]!r}"
    assert not both_active(samples + after)
    assert all(s[1] == "S" and s[2] == f"A {fence_b}" for s in after), after


@needs_etcd
def test_a_resigning_holder_hands_over_without_waiting_out_the_ttl(pair) -> None:
    a, b = pair
    a.proc.stdin.write("q\n")
    assert a.proc.wait(5) == 0
    b.wait_active(TAKEOVER_BOUND_S)


@needs_etcd
def test_a_lease_in_process_reports_active_and_resigns(etcd: EtcdServer) -> None:
    with ActiveLease(CLIENT_PORT, "solo", ttl_s=TTL_S, key="/test/solo", poll_s=0.05) as lease:
        assert lease.wait_active(5.0)
        tenure = lease.tenure()
        assert tenure is not None and tenure.fence > 0
    assert not lease.is_active()
    with ActiveLease(CLIENT_PORT, "next", ttl_s=TTL_S, key="/test/solo", poll_s=0.05) as nxt:
        assert nxt.wait_active(TTL_S * 0.9), "the resigned lease was revoked: no TTL to wait out"
        assert nxt.tenure().fence > tenure.fence


@needs_etcd
def test_a_put_whose_reply_was_lost_is_taken_as_won(etcd: EtcdServer) -> None:
    """The campaign's put landed but its reply did not: the next campaign finds our lease on the key."""
    lease = ActiveLease(CLIENT_PORT, "lost", ttl_s=TTL_S, key="/test/lost-reply", poll_s=0.05)
    lease._grant()
    try:
        assert lease._client.create("/test/lost-reply", "lost", lease=lease._lease)  # the put, reply dropped
        lease._campaign()
        tenure = lease.tenure()
        assert tenure is not None and tenure.fence > 0, "holding the key without knowing it: nobody would act"
    finally:
        lease._lease.revoke()
