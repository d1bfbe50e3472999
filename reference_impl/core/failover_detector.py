"""When to suspect, probe and promote away from the primary engine: the arbiter's decisions.

Theory of operation
-------------------
The arbiter (``reference_impl/arbiter``) feeds this state machine events and
carries out what it answers; the machine itself reads no clock and touches
no process (time enters as ``now_ns``, monotonic ns). Events:

- ``on_output(now)``: a packet of the primary's output stream (data or an
  idle heartbeat) arrived: the primary is speaking.
- ``on_tick(now)``: time passed; the node calls it whenever it wakes, and
  ``wake_ns()`` says when it must wake at the latest.
- ``on_probe(answer, now)``: the confirmation probe's answer about the
  primary's process (``ALIVE``, ``EXITING``, ``GONE``).
- ``on_promoted(epoch, engine_id, now)`` / ``on_refused(current_epoch)``:
  the sequencer sequenced our ``LeaderChange``, or refused it as stale.

Each returns an ``Action``: ``NOTHING``, ``PROBE`` (read the primary's
process state now and call ``on_probe``) or a ``Promote(epoch, engine_id)``
(ask the sequencer to sequence ``LeaderChange(epoch, engine_id)``).

States::

    WATCHING ──silence──▶ SUSPECT ──probe: exiting/gone──▶ PROMOTING ──promoted──▶ WATCHING
       ▲                   ▲   │      (or alive, silent ≥ stall_ns) ▲  (new primary, grace)
       │ output     re-probe   │ probe: alive                      │      or NO_SECONDARY
       ├─────────────────── STALLED ───────────────────────────────┘
       │                     │ (re-probes every silence_ns)          refused ──▶ SUPERSEDED
       └─────────────────────┘

- ``WATCHING``: the primary spoke less than ``silence_ns`` ago. A tick past
  that is a *suspicion*: ``SUSPECT`` and ``PROBE``.
- ``SUSPECT`` → ``EXITING`` or ``GONE`` is a *confirmation*: the process is
  dead, so promote at once. ``ALIVE`` means a stall (SIGSTOP, a hang, a long
  pause): ``STALLED``.
- ``STALLED``: promote only once the primary has been silent for
  ``stall_ns`` (a live primary that is merely slow must not be fenced off
  for a hiccup); until then every tick ``silence_ns`` after the last probe
  probes again, so a primary killed during a stall is still confirmed within
  one silence. The tick that reaches ``stall_ns`` probes too: a promotion
  always follows a fresh probe, which then says whether it was for a death
  (``confirmed_ns`` set) or for a stall. Any output returns to ``WATCHING``.
- ``PROMOTING``: one ``Promote(epoch + 1, secondary)`` was asked for; no
  other until the sequencer answers. ``on_promoted`` makes the named engine
  the primary and drops the old one from the candidates for good (it is dead
  or a fenced zombie; it comes back only by a rejoin): ``WATCHING`` with a
  fresh ``silence_ns`` grace, or ``NO_SECONDARY`` when no candidate is left,
  where the machine only watches (nothing to promote to). ``on_refused``
  means another promotion took that epoch (an operator, another arbiter):
  ``SUPERSEDED``, which never promotes again (the arbiter pair decides who
  acts, not this machine).

Hence: a promotion always names exactly ``epoch + 1`` and a candidate
secondary; at most one promotion is asked for per epoch; an alive primary is
promoted away from only after ``stall_ns`` of silence; output that keeps
coming within ``silence_ns`` never even causes a probe.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

DEFAULT_SILENCE_NS = 200_000  #: 200 µs of silence: suspect
DEFAULT_STALL_NS = 5_000_000  #: 5 ms of silence from a live primary: promote away from it


class ProbeAnswer(Enum):
    """What the confirmation probe saw of the primary's process."""

    ALIVE = "alive"  #: running, sleeping or stopped: a stall, not a death
    EXITING = "exiting"  #: PF_EXITING: killed, tearing down its memory
    GONE = "gone"  #: no such process (or a zombie): dead


class State(Enum):
    WATCHING = "watching"
    SUSPECT = "suspect"
    STALLED = "stalled"
    PROMOTING = "promoting"
    NO_SECONDARY = "no_secondary"
    SUPERSEDED = "superseded"


@dataclass(frozen=True, slots=True)
class Promote:
    """Ask the sequencer to sequence ``LeaderChange(epoch, engine_id)``."""

    epoch: int
    engine_id: int


class _Probe:
    __slots__ = ()

    def __repr__(self) -> str:
        return "PROBE"


NOTHING = None
PROBE = _Probe()
Action = Promote | _Probe | None


class FailoverDetector:
    """The arbiter's state machine (see the module doc)."""

    __slots__ = (
        "candidates",
        "confirmed_ns",
        "epoch",
        "last_output_ns",
        "last_probe_ns",
        "primary",
        "promoted_ns",
        "silence_ns",
        "stall_ns",
        "state",
        "suspected_ns",
    )

    def __init__(self, primary: int, secondaries: tuple[int, ...], epoch: int, now_ns: int,
                 silence_ns: int = DEFAULT_SILENCE_NS, stall_ns: int = DEFAULT_STALL_NS) -> None:
        if not 0 < silence_ns < stall_ns:
            raise ValueError(f"need 0 < silence_ns < stall_ns (got {silence_ns}, {stall_ns})")
        if primary in secondaries:
            raise ValueError(f"engine {primary} cannot be both primary and secondary")
        self.primary = primary
        self.candidates = tuple(secondaries)  #: engines a promotion may name, first preferred
        self.epoch = epoch  #: the epoch of the last LeaderChange this machine knows of
        self.silence_ns = silence_ns
        self.stall_ns = stall_ns
        self.state = State.WATCHING if self.candidates else State.NO_SECONDARY
        self.last_output_ns = now_ns  #: start-up counts as output: a grace of one silence
        self.last_probe_ns = 0
        self.suspected_ns = 0  #: stamps of the last suspicion, confirmation, promotion (0: never)
        self.confirmed_ns = 0
        self.promoted_ns = 0

    # ---------------------------------------------------------------- events

    def on_output(self, now_ns: int) -> Action:
        self.last_output_ns = max(self.last_output_ns, now_ns)
        if self.state in (State.SUSPECT, State.STALLED):
            self.state = State.WATCHING
        return NOTHING

    def on_tick(self, now_ns: int) -> Action:
        state = self.state
        silent = now_ns - self.last_output_ns
        if state is State.WATCHING and silent >= self.silence_ns:
            self.state = State.SUSPECT
            self.suspected_ns = self.last_probe_ns = now_ns
            return PROBE
        if state is State.STALLED and (silent >= self.stall_ns
                                       or now_ns - self.last_probe_ns >= self.silence_ns):
            self.state = State.SUSPECT
            self.last_probe_ns = now_ns
            return PROBE
        return NOTHING

    def on_probe(self, answer: ProbeAnswer, now_ns: int) -> Action:
        """The probe's answer; ignored unless this machine asked for one (``SUSPECT``)."""
        if self.state is not State.SUSPECT:
            return NOTHING
        if answer is ProbeAnswer.ALIVE:
            if now_ns - self.last_output_ns < self.stall_ns:
                self.state = State.STALLED
                return NOTHING
            return self._promote(now_ns)  # alive, and silent for the whole stall timeout
        self.confirmed_ns = now_ns
        return self._promote(now_ns)

    def on_promoted(self, epoch: int, engine_id: int, now_ns: int) -> None:
        """The sequencer sequenced the LeaderChange this machine asked for."""
        if self.state is not State.PROMOTING or epoch != self.epoch + 1:
            raise ValueError(f"no promotion to epoch {epoch} was asked for (state {self.state.value}, "
                             f"epoch {self.epoch})")
        old = self.primary
        self.epoch, self.primary = epoch, engine_id
        self.candidates = tuple(e for e in self.candidates if e not in (old, engine_id))
        self.last_output_ns = max(self.last_output_ns, now_ns)
        self.state = State.WATCHING if self.candidates else State.NO_SECONDARY

    def on_refused(self, current_epoch: int) -> None:
        """The sequencer refused our LeaderChange: another promotion took that epoch."""
        self.epoch = max(self.epoch, current_epoch)
        self.state = State.SUPERSEDED

    # ---------------------------------------------------------------- timers

    def wake_ns(self) -> int | None:
        """When the next tick may change something (None: only an event can)."""
        state = self.state
        if state is State.WATCHING:
            return self.last_output_ns + self.silence_ns
        if state is State.STALLED:
            return min(self.last_output_ns + self.stall_ns, self.last_probe_ns + self.silence_ns)
        return None

    def _promote(self, now_ns: int) -> Promote:
        self.state = State.PROMOTING
        self.promoted_ns = now_ns
        return Promote(self.epoch + 1, self.candidates[0])
