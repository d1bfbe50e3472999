"""Book invariants: a SUT's outputs against the independent naive model.

``check_book`` runs ``harness.model.Model`` over the sequenced inputs, one
message at a time, and checks after every step:

- **agreement**: the SUT's outputs for that seq equal the model's, output for
  output and fill for fill. Since the model matches best price first, then
  earliest ``order_ref``, and fills at the resting price, agreement *is*
  price-time priority; the model shares no code with the reference engine.
- **never crossed**: on the symbol the step touched, the model's best bid is
  below its best ask.
- **quantity conserved**: for every order the model holds,
  ``filled + open + canceled == original`` (a replaced remainder counts as
  canceled); and, from the SUT's outputs alone, no order lost more to fills
  and cancels than its accepted qty.

Outputs are replay-format dicts or core ``Output`` tuples, in stream order;
they are grouped by their ``seq``. An output for a seq that is not among the
inputs is a disagreement. Inputs with a gap are UNKNOWN (the model cannot
apply them). Evidence names the first disagreeing seq with its input and both
output lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reference_impl.core.messages import NewOrder, Replace, Sequenced, Side
from reference_impl.core.replay_format import input_to_json

from harness.model import Model, ModelGapError

from .exactly_once import check_reported_once, output_dicts
from .verdict import MAX_EXAMPLES, Verdict

REQUIREMENT = "book_invariants"

__all__ = ["check_book"]


def _ticks(instruments: Any) -> dict[str, int] | None:
    """The model's ``tick_by_symbol`` from a mapping or a ``rules.Instruments``."""
    if instruments is None:
        return None
    if isinstance(instruments, Mapping):
        return dict(instruments)
    items = instruments.items()
    if not items and instruments.tick("A") is not None:
        return None  # Instruments(None): any well-formed symbol, default tick
    return dict(items)


def _input_json(msg: Sequenced) -> Any:
    try:
        return input_to_json(msg)
    except ValueError:
        return repr(msg)


def _crossed(model: Model, symbol: str) -> dict | None:
    rows = model.resting(symbol)
    bids = [r for r in rows if r[0] == Side.BUY]
    asks = [r for r in rows if r[0] == Side.SELL]
    if bids and asks and bids[0][1] >= asks[0][1]:
        return {"symbol": symbol, "best_bid": bids[0][1], "best_ask": asks[0][1]}
    return None


def _symbol_of(model: Model, msg: Sequenced) -> str | None:
    body = msg.body
    if isinstance(body, NewOrder):
        return body.symbol
    if isinstance(body, Replace) and isinstance(body.token, str):
        order = model.find_live(msg.account, body.token)
        return order.symbol if order is not None else None
    return None  # a cancel or a control message cannot cross a book


def check_book(inputs: Sequence[Sequenced], outputs: Iterable[Any],
               instruments: Any = None, requirement: str = REQUIREMENT) -> Verdict:
    """Outputs agree with the model; the book never crossed; quantity conserved."""
    got_by_seq: dict[int, list[dict]] = {}
    outs = output_dicts(outputs)
    for o in outs:
        got_by_seq.setdefault(o.get("seq"), []).append(o)
    model = Model(_ticks(instruments))
    steps = differing = 0
    first_difference = crossed = None
    input_seqs: set[int] = set()
    evidence: dict[str, Any] = {"inputs": len(inputs), "outputs": len(outs)}
    gap = None  #: why the check stopped early; judged only after the problems found before it
    for msg in inputs:
        symbol = _symbol_of(model, msg)
        try:
            expected = output_dicts(model.apply(msg))
        except ModelGapError as exc:
            evidence["gap_at"] = msg.seq
            gap = f"inputs are not contiguous ({exc}); checked {steps} steps"
            break
        steps += 1
        input_seqs.add(msg.seq)
        got = got_by_seq.get(msg.seq, [])
        if got != expected:
            differing += 1
            if first_difference is None:
                first_difference = {"seq": msg.seq, "input": _input_json(msg),
                                    "expected": expected, "got": got}
        if symbol is not None and crossed is None:
            c = _crossed(model, symbol)
            if c is not None:
                crossed = {"seq": msg.seq, **c}
    checked_to = max(input_seqs, default=0) if gap else None  # outputs past a gap are unjudged
    stray = sorted(s for s in got_by_seq
                   if s not in input_seqs and (checked_to is None or s <= checked_to))
    if stray and first_difference is None:
        first_difference = {"seq": stray[0], "input": None, "expected": [],
                            "got": got_by_seq[stray[0]]}
    unconserved = [{"order": list(k), "original": v[0], "filled": v[1], "open": v[2],
                    "canceled": v[3]}
                   for k, v in model.orders().items() if v[1] + v[2] + v[3] != v[0]]
    overdrawn = check_reported_once(outs).evidence.get("overdrawn", []) if outs else []
    evidence.update(
        steps=steps, differing_seqs=differing + len(stray), stray_output_seqs=stray[:MAX_EXAMPLES],
        first_difference=first_difference, crossed=crossed,
        unconserved=unconserved[:MAX_EXAMPLES], unconserved_count=len(unconserved),
        overdrawn=overdrawn, orders=len(model.orders()),
    )
    problems = []
    if first_difference is not None:
        problems.append(f"outputs disagree with the model at seq {first_difference['seq']} "
                        f"({differing + len(stray)} seqs differ)")
    if crossed is not None:
        problems.append(f"book crossed after seq {crossed['seq']} on {crossed['symbol']} "
                        f"(bid {crossed['best_bid']} >= ask {crossed['best_ask']})")
    if unconserved:
        problems.append(f"quantity not conserved for {len(unconserved)} orders "
                        f"(first: {unconserved[0]['order']})")
    if overdrawn:
        problems.append(f"{len(overdrawn)} orders lost more than their qty in the SUT's "
                        f"outputs (first: {overdrawn[0]['order']})")
    if problems:
        return Verdict.failed(requirement, "; ".join(problems), evidence)
    if gap:
        return Verdict.unknown(requirement, gap, evidence)
    if not steps:
        return Verdict.unknown(requirement, "no inputs to check", evidence)
    return Verdict.passed(requirement, f"{steps} inputs, {len(outs)} outputs agree with the "
                          f"model; never crossed; {len(model.orders())} orders conserved",
                          evidence)
