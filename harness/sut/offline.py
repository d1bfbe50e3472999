"""Offline replay by a SUT's own engine: write the input file, run the command, read the outputs.

Both adapters' ``offline_replay`` come here: ``ReferenceSut`` runs
``crucible engine replay``, ``ExternalSut`` the descriptor's ``replay``
command. ``prepare`` writes the replay-format input file and the instruments
file into the work directory; ``run`` runs the command and returns the lines
of its output file (the last one the ``end`` line with ``last_seq`` and
``state_hash``, docs/replay-format.md). A command that fails, times out or
writes no output file raises ``SutError`` with the tail of its stderr.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import yaml

from harness.sut.base import SutError
from reference_impl.core.replay_format import format_line

TIMEOUT_S = 120.0


class ReplayFiles(NamedTuple):
    input: Path
    output: Path
    instruments: Path


def prepare(entries: Sequence[dict], instruments: Mapping[str, int], work_dir: Path) -> ReplayFiles:
    """Write ``input.jsonl`` and ``instruments.yaml`` into ``work_dir``; the three paths."""
    work_dir.mkdir(parents=True, exist_ok=True)
    files = ReplayFiles(work_dir / "input.jsonl", work_dir / "outputs.jsonl",
                        work_dir / "instruments.yaml")
    files.input.write_text("".join(format_line(e) + "\n" for e in entries))
    files.instruments.write_text(yaml.safe_dump(dict(instruments)))
    return files


def run(argv: Sequence[str], files: ReplayFiles, *, env: Mapping[str, str] | None = None,
        cwd: str | None = None, timeout_s: float = TIMEOUT_S) -> list[str]:
    """Run the replay command; the lines of ``files.output``."""
    try:
        r = subprocess.run(list(argv), check=False, capture_output=True, text=True,
                           env=None if env is None else dict(env), cwd=cwd, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SutError("replay", f"{list(argv)!r} failed: {exc}") from None
    if r.returncode != 0:
        raise SutError("replay", f"{list(argv)!r} exited with code {r.returncode}",
                       r.stderr.strip()[-2000:])
    try:
        return files.output.read_bytes().decode().splitlines()
    except OSError as exc:
        raise SutError("replay", f"{list(argv)!r} wrote no output file: {exc}") from None
