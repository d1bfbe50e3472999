"""Which arbiter of the pair is active: a lease on one etcd key, decided by etcd alone.

Theory of operation
-------------------
Each arbiter runs an ``ActiveLease``. Its thread holds one etcd lease of
``ttl_s`` seconds for the arbiter's whole life and keeps it alive every
``ttl_s / 4`` (due-checked every ``poll_s``). To campaign it runs one
transaction, every ``poll_s`` while standby::

    if create_revision(KEY) == 0:  put(KEY, name, lease=our lease)
    else:                          get(KEY)

Whoever's put succeeds is the active arbiter; etcd serializes the
transactions, so two can never both succeed. The key is bound to the lease,
so when the holder dies (kill -9, host gone, partitioned from etcd) its
keep-alives stop, etcd expires the lease after the TTL and deletes the key
(etcd checks for expired leases every 500 ms), and the standby's next
campaign wins. A holder that stops cleanly revokes its lease (``stop``), so
the standby takes over at its next poll instead of after the TTL. A reply
lost after a successful put is harmless: the ``get`` branch shows our own
lease id on the key, and we take it as won.

States: STANDBY (no tenure) -> ACTIVE (a ``Tenure``) -> STANDBY when a
keep-alive reports the lease gone (TTL <= 0), or merely *inactive* while
keep-alives fail: ``is_active()`` is computed from the clock at the call.

The acting deadline. etcd expires the lease no earlier than ``t_sent + TTL``,
where ``t_sent`` is when we *sent* the last keep-alive that succeeded (the
server received it later and counts the TTL from then). The holder acts only
until ``t_sent + TTL - ttl/4`` (``Tenure.until_ns``): healthy keep-alives every
TTL/4 keep that deadline at least TTL/2 ahead, and when they stop (etcd
unreachable, a partition, this process paused by SIGSTOP or a long GC) the
holder stops acting at least TTL/4 before etcd can let the standby in. The
margin covers clock-rate differences between the hosts and the moment
between the check and the act; it cannot cover a pause *between*
``is_active()`` and the act itself (a classic lease limit), which is what the
fence is for.

Fencing. ``Tenure.fence`` is the etcd revision at which this arbiter created
the key: every later holder's fence is higher. The arbiter puts it in what it
does (a promotion request, a log line), so a receiver can refuse a stale
holder's late act. For the promotion itself the sequencer's epoch rule (it
accepts only ``LeaderChange(epoch + 1)``) already makes two promotions from
one epoch impossible; the fence tells who asked.

Nothing here is consensus: etcd decides, this module only asks and keeps time.
The arbiter's duty loop calls ``is_active()``/``tenure()`` (a clock read and an
attribute load, no I/O); all etcd traffic is on this module's thread.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

import requests
from etcd3gw.client import Etcd3Client
from etcd3gw.exceptions import Etcd3Exception
from etcd3gw.lease import Lease

from reference_impl.config import HOST

KEY = "/crucible/arbiter/active"
log = logging.getLogger("crucible.arbiter.lease")
_ERRORS = (Etcd3Exception, requests.RequestException, ValueError, KeyError)


@dataclass(frozen=True, slots=True)
class Tenure:
    """This arbiter's hold on the key: its fence, and until when (monotonic ns) it may act."""

    fence: int
    until_ns: int

    def active(self, now_ns: int) -> bool:
        return now_ns < self.until_ns


def _b64(data: str) -> str:
    return base64.b64encode(data.encode()).decode()


class ActiveLease:
    """Campaign for ``key`` with a TTL lease; say at any moment whether this arbiter is the active one.

    ``ActiveLease(port, "arbiter-1").start()``; then ``is_active()``, ``tenure()``,
    ``wait_active(timeout_s)``; ``stop()`` resigns. See the module doc.
    """

    def __init__(self, etcd_port: int, name: str, *, ttl_s: int = 2, key: str = KEY,
                 poll_s: float = 0.1, clock: Callable[[], int] = time.monotonic_ns) -> None:
        if ttl_s < 1 or not 0 < poll_s < ttl_s / 4:
            raise ValueError(f"need ttl_s >= 1 (etcd leases have whole seconds) and 0 < poll_s < ttl_s/4 "
                             f"(keep-alives are due every ttl_s/4), got {ttl_s}, {poll_s}")
        self.name, self.key, self.ttl_s, self.poll_s = name, key, ttl_s, poll_s
        self._clock = clock
        # every request ends within a quarter TTL, so a hung etcd never holds the thread past a deadline
        self._client = Etcd3Client(host=HOST, port=etcd_port, api_path="/v3/", timeout=ttl_s / 4)
        self._tenure: Tenure | None = None
        self._lease: Lease | None = None
        self._sent_ns = 0  #: when the last successful grant/keep-alive of ``_lease`` was sent
        self._granted_s = ttl_s
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=f"lease-{name}", daemon=True)

    # -------------------------------------------------------------- the arbiter's questions

    def tenure(self) -> Tenure | None:
        """The tenure while this arbiter is active (its deadline not passed), else None."""
        t = self._tenure
        return t if t is not None and t.active(self._clock()) else None

    def is_active(self) -> bool:
        return self.tenure() is not None

    def wait_active(self, timeout_s: float) -> bool:
        """Block until this arbiter is active, or ``timeout_s`` passed; whether it is."""
        with self._changed:
            return self._changed.wait_for(self.is_active, timeout_s)

    # -------------------------------------------------------------- lifecycle

    def start(self) -> ActiveLease:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop campaigning and resign: revoke the lease, so the standby need not wait out the TTL."""
        self._stop.set()
        self._thread.join()
        self._tenure = None
        if self._lease is not None:
            try:
                self._lease.revoke()
            except _ERRORS as exc:  # etcd gone: the lease lapses by itself
                log.warning("%s: could not revoke lease %x: %s", self.name, self._lease.id, exc)
            self._lease = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -------------------------------------------------------------- the thread

    def _run(self) -> None:
        refresh_every_ns = self.ttl_s * 1_000_000_000 // 4
        while not self._stop.is_set():
            try:
                if self._lease is None:
                    self._grant()
                elif self._clock() - self._sent_ns >= refresh_every_ns:
                    self._refresh()
                if self._lease is not None and self._tenure is None:
                    self._campaign()
            except _ERRORS as exc:  # etcd unreachable or slow: retry; the deadline runs on meanwhile
                log.warning("%s: etcd: %s", self.name, exc)
            self._stop.wait(self.poll_s)

    def _grant(self) -> None:
        sent = self._clock()
        reply = self._client.post(self._client.get_url("/lease/grant"), json={"TTL": self.ttl_s, "ID": 0})
        self._lease, self._sent_ns, self._granted_s = Lease(int(reply["ID"]), self._client), sent, \
            int(reply["TTL"])

    def _refresh(self) -> None:
        assert self._lease is not None
        sent = self._clock()
        ttl = self._lease.refresh()
        if ttl <= 0:  # expired at etcd: the key went with it
            log.warning("%s: lease %x expired at etcd", self.name, self._lease.id)
            self._lease = None
            self._set(None)
            return
        self._sent_ns, self._granted_s = sent, ttl
        if self._tenure is not None:
            self._set(Tenure(self._tenure.fence, self._deadline()))

    def _campaign(self) -> None:
        assert self._lease is not None
        key = _b64(self.key)
        reply = self._client.transaction({
            "compare": [{"key": key, "result": "EQUAL", "target": "CREATE", "create_revision": 0}],
            "success": [{"request_put": {"key": key, "value": _b64(self.name), "lease": self._lease.id}}],
            "failure": [{"request_range": {"key": key}}],
        })
        if reply.get("succeeded"):
            fence = int(reply["header"]["revision"])
        else:
            kvs = reply["responses"][0]["response_range"].get("kvs", [])
            if not kvs or int(kvs[0].get("lease", 0)) != self._lease.id:
                return  # another arbiter holds it (or it just lapsed: the next poll tries again)
            fence = int(kvs[0]["create_revision"])  # our own put, whose reply we lost
        self._set(Tenure(fence, self._deadline()))
        log.info("%s: active, fence %d", self.name, fence)

    def _deadline(self) -> int:
        """Act until a quarter TTL before the earliest moment etcd may expire the lease."""
        return self._sent_ns + self._granted_s * 1_000_000_000 * 3 // 4

    def _set(self, tenure: Tenure | None) -> None:
        with self._changed:
            self._tenure = tenure
            self._changed.notify_all()
