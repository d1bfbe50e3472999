"""A run's report directory: ``report.json``, ``report.html`` and the artefacts they point at.

``write_run`` is the one place a run directory is filled in (the pytest
plugin calls it at session end): ``history.jsonl``, ``latencies.csv`` and one
``latency-<stage>.hgrm`` per stage (when there are latencies),
``hardware.json``, then ``report.json`` (schema: ``schema.py``,
docs/report.md) and ``report.html`` (``html.py``). Artefact paths in the
report are relative to the run directory. ``junit.xml`` is pytest's own
(``--junitxml``) and ``pytest.log`` its terminal output under ``crucible
certify``; both are listed when present.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness import hardware as hw_mod
from harness.history import Op, fault_windows
from harness.report import samples as samples_mod
from harness.report.schema import SCHEMA_VERSION, TestOutcome, build_report, dump, load, validate

__all__ = ["SCHEMA_VERSION", "TestOutcome", "build_report", "kit_commit", "kit_version", "load", "make_run_dir",
           "new_run_id", "point_latest", "utc_now", "validate", "write_run"]

FIXED_ARTEFACTS = {"html": "report.html", "history": "history.jsonl", "hardware": "hardware.json",
                   "junit": "junit.xml", "latencies": "latencies.csv", "pytest_log": "pytest.log"}


def utc_now() -> str:
    """Wall-clock UTC time, ISO 8601 with milliseconds and a ``Z``."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_run_id(seed: int, now: _dt.datetime | None = None) -> str:
    """``20261125T101500Z-s42``: UTC start time to the second, then the seed."""
    now = now or _dt.datetime.now(_dt.UTC)
    return f"{now.astimezone(_dt.UTC):%Y%m%dT%H%M%SZ}-s{seed}"


def make_run_dir(results_dir: str | Path, run_id: str) -> Path:
    """Create ``results_dir/run_id`` (``-2``, ``-3``... if that run id is taken) and return it."""
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        run_dir = results_dir / (run_id if n == 1 else f"{run_id}-{n}")
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            continue
    raise FileExistsError(f"{results_dir}: no free run directory for {run_id}")


def point_latest(results_dir: str | Path, run_dir: str | Path) -> Path:
    """Point ``results_dir/latest`` at ``run_dir`` (a relative symlink, replaced atomically)."""
    results_dir, run_dir = Path(results_dir), Path(run_dir)
    latest = results_dir / "latest"
    target = os.path.relpath(run_dir.resolve(), results_dir.resolve())
    tmp = results_dir / f".latest.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target, target_is_directory=True)
    os.replace(tmp, latest)  # rename(2) over the old link: readers never see it missing
    return latest


def kit_version() -> str:
    try:
        from importlib.metadata import version

        return version("exchange-crucible")
    except Exception:  # noqa: BLE001 - not installed: a source checkout
        return "unknown"


def kit_commit() -> str | None:
    """The kit checkout's git commit, ``+dirty`` if it has local changes; None outside git.

    The package version does not change per commit; replaying a run takes
    the same code and the report's seed (docs/suites.md), so the commit says
    which code ran.
    """
    import subprocess

    root = Path(__file__).resolve().parents[2]

    def git(*args: str) -> str | None:
        try:
            r = subprocess.run(["git", "--no-optional-locks", "-C", str(root), *args],
                               capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.SubprocessError):
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != root:  # installed, or inside someone else's repo
        return None
    head, status = git("rev-parse", "HEAD"), git("status", "--porcelain")
    if head is None or status is None:
        return None
    return head + ("+dirty" if status else "")


def _relative(run_dir: Path, path: str | Path) -> str | None:
    p = Path(path)
    p = p if p.is_absolute() else run_dir / p
    if not p.exists():
        return None
    try:
        return p.resolve().relative_to(run_dir.resolve()).as_posix()
    except ValueError:
        return str(p.resolve())  # outside the run directory: keep it absolute


def write_run(run_dir: str | Path, *, run_id: str, started: str, seed: int,
              profile: Mapping[str, Any], sut: Mapping[str, Any], durability_policy: str | None,
              outcomes: Iterable[TestOutcome], ops: Sequence[Op] = (),
              samples: Mapping[str, Sequence[tuple[int, int]]] | None = None,
              hardware: Mapping[str, Any] | None = None,
              hardware_target: Mapping[str, Any] | None = None,
              extra_artefacts: Mapping[str, str | Path] | None = None,
              pytest_exit_code: int = 0, pytest_args: Sequence[str] = ()) -> dict[str, Any]:
    """Write every file of a run into ``run_dir`` and return the report dict."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "history.jsonl").write_text("".join(op.to_json() + "\n" for op in ops))

    recorded = {k: list(v) for k, v in (samples or {}).items() if v}
    series = recorded or samples_mod.from_history(ops)
    latency: dict[str, Any] = {}
    hgrms: dict[str, str] = {}
    if series:
        samples_mod.write_csv(run_dir / "latencies.csv", series)
        for stage, pts in series.items():
            name = samples_mod.hgrm_name(stage)
            if samples_mod.write_hgrm(run_dir / name, pts):
                hgrms[f"hgrm:{stage}"] = name
        latency = {"source": "recorded" if recorded else "history (client ok completions)",
                   "stages": samples_mod.summarize(series)}

    machine = hw_mod.write(run_dir / "hardware.json", hardware)
    match: dict[str, Any] = {}
    if hardware_target:
        matched, reasons = hw_mod.matches(hardware_target, machine)
        match = {"profile": hardware_target.get("name", "unnamed"), "matched": matched, "reasons": reasons}

    candidates: dict[str, str | Path] = {**FIXED_ARTEFACTS, **hgrms, **(extra_artefacts or {})}
    (run_dir / "report.html").touch()
    artefacts = {k: rel for k, p in candidates.items() if (rel := _relative(run_dir, p)) is not None}
    faults = [{"name": name, "start_ns": start, "end_ns": end} for name, start, end in fault_windows(ops)]
    report = build_report(
        run_id=run_id, started=started, finished=utc_now(), seed=seed, profile=profile, sut=sut,
        durability_policy=durability_policy, outcomes=outcomes, hardware=machine,
        hardware_match=match, artefacts=artefacts, latency=latency, faults=faults,
        pytest_exit_code=pytest_exit_code, pytest_args=pytest_args, kit_version=kit_version(),
        kit_commit=kit_commit())
    problems = validate(report)
    if problems:  # a bug in the kit, not in the SUT: say so loudly
        raise AssertionError("report.json would break its own schema: " + "; ".join(problems))
    dump(report, run_dir / "report.json")
    (run_dir / "report.html").write_text(_html(report, ops, series))
    return report


def _html(report: Mapping[str, Any], ops: Sequence[Op], series: Mapping[str, list]) -> str:
    from html import escape

    from harness.report import html

    try:
        return html.render(report, ops, dict(series))
    except Exception as exc:  # noqa: BLE001 - a plot must not cost the run its report
        page = html.render(report, (), {})
        note = f'<p class="muted">Plots could not be drawn: {escape(type(exc).__name__)}: {escape(str(exc))}</p>'
        return page.replace("<h2>Latency</h2>", "<h2>Latency</h2>" + note, 1)
