"""Promotion with real processes: kill -9 then LeaderChange, gap fill from the new primary, the zombie.

Issue 11, items 2 and 3. Every test runs a small closed loop of HTTP orders
(four accounts, crossing at one price, so inputs have one to three outputs)
and judges what a client sees: every request answered, and each account's
event stream (the gateway's journal, replayed from the start) holding each
output exactly once. The promotion is a ``leader_change`` on the
sequencer's admin port, as an arbiter would ask for it.

- kill -9: the secondary re-emits what the dead primary had not sent;
- outputs dropped toward the gateway (the output relay drops everything for
  0.1 s, then the primary is killed): the gateway gets them by re-requesting
  the old session from the new primary, which observed it;
- the zombie: SIGSTOP, leader_change, SIGCONT: the old primary sends nothing
  it decided after its pause, mutes, follows the new session and agrees with
  the new primary's state; a stale leader_change is refused.
"""

from __future__ import annotations

import json
import threading
import time

from harness.nemesis.udp_plan import UdpFaultRates
from reference_impl.edges.process import admin_query
from tests.pipeline.clients import Pipeline, PipelineHttp, wait_until

ACCOUNTS = ("DEMO1", "DEMO2", "DEMO3", "DEMO4")


class Load:
    """One thread per account sending ``n`` orders back to back (each waits for its answer)."""

    def __init__(self, p: Pipeline, n: int, tag: str, gap_s: float = 0.004) -> None:
        self.p, self.n, self.tag, self.gap_s = p, n, tag, gap_s
        self.replies: dict[str, tuple[int, object]] = {}
        self.sent = 0
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(a, i), daemon=True)
                         for i, a in enumerate(ACCOUNTS)]

    def _run(self, account: str, i: int) -> None:
        http = PipelineHttp(self.p.http_port, account)
        for k in range(self.n):
            token = f"{self.tag}{i}x{k}"
            reply = http.order(token, side="BS"[i % 2], qty=10, price=10_000)
            with self._lock:
                self.replies[token] = (reply.status, reply.body)
                self.sent += 1
            time.sleep(self.gap_s)

    def start(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def join(self, timeout_s: float = 30.0) -> None:
        for t in self._threads:
            t.join(timeout_s)
        assert not any(t.is_alive() for t in self._threads), "the load did not finish"

    def tokens(self) -> set[str]:
        return {f"{self.tag}{i}x{k}" for i in range(len(ACCOUNTS)) for k in range(self.n)}


def leader_change(p: Pipeline, epoch: int, engine: str) -> dict:
    return admin_query(p.cfg.sequencer.admin_port, f"leader_change {epoch} {engine.split('-')[1]}")


def journal(p: Pipeline, account: str) -> list[dict]:
    """The account's whole event stream (``data`` of each event), replayed from the start."""
    events = PipelineHttp(p.http_port, account).events(0, timeout_s=0.5)
    out = []
    try:
        while (ev := events.next()) is not None:
            out.append(ev.data)
    except (TimeoutError, OSError):
        pass
    return out


def assert_exactly_once(p: Pipeline, *loads: Load) -> None:
    """Every request answered (200), and every output in the journals exactly once."""
    tokens: set[str] = set()
    for load in loads:
        bad = {t: r for t, r in load.replies.items() if r[0] != 200}
        assert not bad and len(load.replies) == len(load.tokens()), bad
        tokens |= load.tokens()
    accepted: list[str] = []
    for account in ACCOUNTS:
        entries = journal(p, account)
        keys = [json.dumps({k: v for k, v in e.items() if k not in ("out_seq", "id")},
                           sort_keys=True) for e in entries]
        assert len(keys) == len(set(keys)), f"{account}: an output delivered twice"
        accepted += [e["token"] for e in entries if e["type"] == "accepted"]
    assert sorted(accepted) == sorted(tokens)


def promoted(p: Pipeline, name: str) -> dict:
    return wait_until(lambda: (d := p.digest(name))["role"] == "primary" and d["epoch"] == 2 and d,
                      5.0, what=f"{name} primary at epoch 2")


def test_kill_primary_then_leader_change_answers_every_request_once(cluster) -> None:
    p = cluster()
    load = Load(p, 40, "k").start()
    wait_until(lambda: load.sent >= 40, 20.0, what="a third of the load")
    p.cluster.kill(p.primary)
    assert "seq" in leader_change(p, 2, p.secondary)
    load.join()
    assert_exactly_once(p, load)
    d = promoted(p, p.secondary)
    assert d["promotion"]["epoch"] == 2 and d["output_session"] != p.cfg.output_stream.session
    assert p.digest("gateway-1")["output_epoch"] == 2


def test_outputs_lost_around_the_kill_are_refilled_by_the_new_primary(cluster) -> None:
    p = cluster(output_relay=UdpFaultRates())
    load = Load(p, 30, "g").start()
    wait_until(lambda: load.sent >= 30, 20.0, what="a quarter of the load")
    p.relay.set_rates(UdpFaultRates(drop=1.0))  # the gateway misses the old primary's last outputs
    time.sleep(0.1)
    p.cluster.kill(p.primary)
    p.relay.set_rates(UdpFaultRates())
    assert p.relay.counts().dropped > 0
    assert "seq" in leader_change(p, 2, p.secondary)
    load.join()
    assert_exactly_once(p, load)
    new = promoted(p, p.secondary)
    assert new["counters"]["retransmit_packets"] > 0  # the old session, served from its copy
    gw = p.digest("gateway-1")
    assert gw["counters"]["retransmit_requests"] > 0 and gw["output_epoch"] == 2


def test_a_paused_deposed_primary_is_fenced_and_mutes(cluster) -> None:
    p = cluster()
    before = Load(p, 5, "b").start()
    before.join()
    base = p.digest("sequencer")["published_seq"]
    sent_before = p.digest(p.primary)["counters"]["outputs"]
    p.cluster.pause(p.primary)
    during = Load(p, 5, "d", gap_s=0.0).start()  # one per account sequenced, none answered
    wait_until(lambda: p.digest("sequencer")["published_seq"] >= base + len(ACCOUNTS), 5.0,
               what="orders sequenced while the primary is stopped")
    assert "seq" in leader_change(p, 2, p.secondary)
    during.join()
    promoted(p, p.secondary)
    p.cluster.resume(p.primary)
    old = wait_until(lambda: (d := p.digest(p.primary))["role"] == "secondary" and d, 5.0,
                     what="the old primary muted")
    assert old["epoch"] == 2 and old["counters"]["mutes"] == 1
    # it applied what queued up while it was stopped, LeaderChange included, and sent none of it
    assert old["counters"]["outputs"] == sent_before
    # a stale LeaderChange is refused and changes nothing
    assert "stale epoch" in leader_change(p, 2, p.primary)["error"]
    assert "stale epoch" in leader_change(p, 1, p.primary)["error"]
    after = Load(p, 5, "a").start()
    after.join()
    assert_exactly_once(p, before, during, after)
    # nothing of epoch 1 reached the ack gate after epoch 2 began (a zombie's packets, if any,
    # were dropped as a closed or stale session before it)
    assert p.digest("gateway-1")["counters"]["stale_epoch_outputs"] == 0
    seq = p.digest("sequencer")["published_seq"]
    digests = p.settled(seq)
    assert digests[p.primary]["state_hash"] == digests[p.secondary]["state_hash"]
    assert digests[p.primary]["role"] == "secondary" and digests[p.secondary]["role"] == "primary"
    assert p.digest("sequencer")["epoch"] == 2
    assert digests[p.primary]["observed"]["head"] > 0  # it follows the new session
