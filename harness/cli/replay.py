"""``crucible engine replay``: a replay-format file through the engine, offline.

This is the determinism reference: the same input file gives byte-identical
output lines and the same final state hash on any machine and any run. The
run stops at the first malformed line with exit code 2 and
``line N: field F: reason``; business rule violations are ``rejected``
outputs, not errors.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import IO

import yaml
from rich.console import Console
from rich.table import Table

from reference_impl.core.engine import Engine
from reference_impl.core.errors import SequenceGapError
from reference_impl.core.replay_format import (
    ReplayFormatError,
    end_to_json,
    format_line,
    output_to_json,
    parse_input_line,
)
from reference_impl.core.rules import Instruments


def load_instruments(path: str | None) -> Instruments | None:
    if path is None:
        return None
    raw = yaml.safe_load(Path(path).read_text())
    if isinstance(raw, dict) and isinstance(raw.get("instruments"), dict):
        raw = raw["instruments"]  # a whole cluster config works too
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping symbol -> tick")
    return Instruments(raw)


def replay_lines(lines: IO[str], engine: Engine, out: IO[str] | None) -> tuple[Counter, int]:
    """Apply every line; returns output counts by type and the number of inputs."""
    counts: Counter = Counter()
    inputs = 0
    for lineno, text in enumerate(lines, 1):
        if not text.strip():
            continue
        msg = parse_input_line(text, lineno)
        try:
            outputs = engine.apply(msg)
        except SequenceGapError as exc:
            raise ReplayFormatError(lineno, "seq", str(exc)) from None
        inputs += 1
        for o in outputs:
            counts[type(o).__name__.lower()] += 1
            if out is not None:
                out.write(format_line(output_to_json(o)) + "\n")
    return counts, inputs


def run_replay(input_path: str, out_path: str | None, instruments_path: str | None) -> int:
    err = Console(stderr=True)
    try:
        engine = Engine(load_instruments(instruments_path))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        err.print(f"[red]instruments:[/] {exc}")
        return 2
    out: IO[str] | None = None
    try:
        with open(input_path, encoding="utf-8", errors="strict") as lines:
            if out_path == "-":
                out = sys.stdout
            elif out_path:
                out = open(out_path, "w", encoding="utf-8")
            counts, inputs = replay_lines(lines, engine, out)
            last_seq, state_hash = engine.last_applied_seq, engine.state_hash()
            if out is not None:
                out.write(format_line(end_to_json(last_seq, state_hash)) + "\n")
    except ReplayFormatError as exc:
        err.print(str(exc), markup=False)
        return 2
    except UnicodeDecodeError as exc:
        err.print(f"{input_path}: not UTF-8 text: {exc.reason}", markup=False)
        return 2
    except OSError as exc:
        err.print(f"{exc.filename}: {exc.strerror}", markup=False)
        return 2
    finally:
        if out is not None and out is not sys.stdout:
            out.close()
    table = Table(title=f"replay of {input_path}")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("inputs applied", str(inputs))
    for kind in ("accepted", "executed", "canceled", "replaced", "rejected"):
        table.add_row(kind, str(counts.get(kind, 0)))
    table.add_row("last seq", str(last_seq))
    table.add_row("state hash", state_hash)
    Console(stderr=out is sys.stdout).print(table)
    return 0
