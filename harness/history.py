"""A Jepsen-style history: the contract between the clients and the checkers.

Every client operation is recorded twice: an ``invoke`` when it is sent and a
completion when its fate is known: ``ok`` (the SUT acknowledged it), ``fail``
(the SUT definitely did not do it: a reject, a 4xx) or ``info`` (unknown: a
timeout, a crash mid-request). An ``info`` op stays open: the SUT may still
have done it, so a checker must treat it as "maybe" and let later evidence
(a fill, the final order state) decide. Nemesis faults are ops too
(process ``"nemesis"``, f ``fault``), whose invoke/ok pair is the fault
window that reports shade.

Times are monotonic ns from an injected clock. ``history.jsonl`` holds one op
per line, in recording order.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

INVOKE, OK, FAIL, INFO = "invoke", "ok", "fail", "info"
COMPLETIONS = (OK, FAIL, INFO)
NEMESIS = "nemesis"


@dataclass(frozen=True, slots=True)
class Op:
    index: int
    process: int | str  #: a client id, or "nemesis"
    type: str  #: invoke | ok | fail | info
    f: str  #: new | cancel | replace | query | fault | ...
    value: dict[str, Any] = field(default_factory=dict)
    time_ns: int = 0
    invoke_index: int | None = None  #: on a completion: the index of its invoke

    def to_json(self) -> str:
        d = asdict(self)
        if d["invoke_index"] is None:
            del d["invoke_index"]
        return json.dumps(d, separators=(",", ":"), sort_keys=True)

    @staticmethod
    def from_json(text: str) -> Op:
        d = json.loads(text)
        if d.get("type") not in (INVOKE, *COMPLETIONS):
            raise ValueError(f"history op has a bad type: {d.get('type')!r}")
        return Op(d["index"], d["process"], d["type"], d["f"], d.get("value", {}),
                  d.get("time_ns", 0), d.get("invoke_index"))


class History:
    """An append-only, thread-safe op log with an injected monotonic clock."""

    def __init__(self, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self._clock = clock
        self._ops: list[Op] = []
        self._lock = threading.Lock()

    def _append(self, process: int | str, type_: str, f: str, value: dict, invoke_index: int | None) -> Op:
        with self._lock:
            op = Op(len(self._ops), process, type_, f, value, self._clock(), invoke_index)
            self._ops.append(op)
            return op

    def invoke(self, process: int | str, f: str, value: dict[str, Any]) -> Op:
        return self._append(process, INVOKE, f, value, None)

    def complete(self, invoked: Op, type_: str, value: dict[str, Any] | None = None) -> Op:
        if type_ not in COMPLETIONS:
            raise ValueError(f"completion type must be one of {COMPLETIONS}, got {type_!r}")
        return self._append(invoked.process, type_, invoked.f,
                            value if value is not None else invoked.value, invoked.index)

    @property
    def ops(self) -> list[Op]:
        with self._lock:
            return list(self._ops)

    def write(self, path: str | Path) -> None:
        Path(path).write_text("".join(op.to_json() + "\n" for op in self.ops))


def read(path: str | Path) -> list[Op]:
    return [Op.from_json(line) for line in Path(path).read_text().splitlines() if line.strip()]


def pairs(ops: Iterable[Op]) -> Iterator[tuple[Op, Op | None]]:
    """Each invoke with its completion (None while it is still open)."""
    ops = list(ops)
    done = {op.invoke_index: op for op in ops if op.type != INVOKE}
    for op in ops:
        if op.type == INVOKE:
            yield op, done.get(op.index)


def fault_windows(ops: Iterable[Op]) -> list[tuple[str, int, int | None]]:
    """(fault name, start ns, end ns or None) for every nemesis op, for report shading."""
    return [(inv.value.get("name", "fault"), inv.time_ns, end.time_ns if end else None)
            for inv, end in pairs(op for op in ops if op.process == NEMESIS)]
