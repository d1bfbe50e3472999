"""``report.html``: one self-contained page per run (inline CSS, plots as base64 PNG).

Sections, top to bottom: the verdict and how to reproduce it; the run
(SUT, profile, seed, durability policy under test, hardware and whether it
matched the target profile); the verdict table (one row per requirement,
coloured by status, evidence as collapsible JSON); latency over time with the
fault windows shaded, and the percentile spectrum (when latencies exist);
the fault windows; links to the run's artefacts (relative, so the directory
can be moved or archived); the hardware as recorded.

``render`` is a pure function of the report dict, the history ops and the
latency samples; ``render_run`` reads them back from a run directory, so a
page can be rebuilt from the artefacts alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from harness import history as hist
from harness.report import plots
from harness.report.samples import PERCENTILES, Samples, from_history, read_csv

STATUS_COLOURS = {"pass": "#2e7d32", "fail": "#c62828", "unknown": "#ef6c00", "n/a": "#757575"}
EVIDENCE_MAX_CHARS = 20000

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;
color:#222;padding:0 1em}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;width:100%;font-size:14px} th,td{border:1px solid #ddd;padding:4px 8px;
text-align:left;vertical-align:top} th{background:#f5f5f5}
.status{color:#fff;font-weight:600;text-transform:uppercase;padding:2px 8px;border-radius:3px;
white-space:nowrap;display:inline-block}
.meta td:first-child{width:14em;color:#555} pre{white-space:pre-wrap;word-break:break-all;font-size:12px;
background:#fafafa;border:1px solid #eee;padding:6px;max-height:30em;overflow:auto}
.verdict{font-size:20px} details summary{cursor:pointer;color:#1565c0} img{max-width:100%}
.muted{color:#777} code{background:#f3f3f3;padding:1px 4px;border-radius:3px}
table.coverage{width:auto;font-size:12px;margin:4px 0} table.coverage tr.short td{color:#ef6c00;font-weight:600}
"""


def _badge(status: str) -> str:
    colour = STATUS_COLOURS.get(status, "#444")
    return f'<span class="status" style="background:{colour}">{escape(status)}</span>'


def _json_block(data: Any) -> str:
    text = json.dumps(data, indent=2, sort_keys=True, default=str)
    if len(text) > EVIDENCE_MAX_CHARS:
        text = text[:EVIDENCE_MAX_CHARS] + f"\n... ({len(text) - EVIDENCE_MAX_CHARS} more characters in report.json)"
    return f"<pre>{escape(text)}</pre>"


def _meta_rows(report: Mapping[str, Any]) -> str:
    sut = report.get("sut", {})
    profile = report.get("profile", {})
    hw = report.get("hardware", {})
    match = report.get("hardware_match") or {}
    sut_text = f"{sut.get('name')} ({sut.get('kind')})"
    if sut.get("descriptor"):
        sut_text += f" — descriptor {sut['descriptor']}"
    if match:
        matched = "matched" if match.get("matched") else "did not match"
        hw_match = f"{matched} target profile {match.get('profile')}"
        if match.get("reasons"):
            hw_match += ": " + "; ".join(match["reasons"])
    else:
        hw_match = "no target profile"
    mem_gb = hw.get("memory_bytes", 0) / 2**30
    rows = [
        ("Run", report.get("run_id")),
        ("Started / finished", f"{report.get('started')} / {report.get('finished')}"),
        ("SUT", sut_text),
        ("Profile", f"{profile.get('name')}" + (f" ({profile['path']})" if profile.get("path") else "")),
        ("Seed", report.get("seed")),
        ("Durability policy under test", report.get("durability_policy") or "not stated"),
        ("Hardware", f"{hw.get('cpu_model', '?')}, {hw.get('logical_cpus', '?')} logical CPUs, "
                     f"{mem_gb:.1f} GiB, {hw.get('virtualization', '?')}, kernel {hw.get('kernel', '?')}, "
                     f"clock {hw.get('clocksource', '?')}"),
        ("Hardware vs target", hw_match),
        ("pytest exit code", report.get("pytest", {}).get("exit_code")),
        ("Kit", f"{report.get('kit', {}).get('name')} {report.get('kit', {}).get('version')} "
                f"(commit {report.get('kit', {}).get('commit') or 'unknown'}), "
                f"report schema {report.get('schema_version')}"),
    ]
    return "".join(f"<tr><td>{escape(str(k))}</td><td>{escape(str(v))}</td></tr>" for k, v in rows)


def _coverage(rows: Sequence[Mapping[str, Any]]) -> str:
    """A requirement's evidence coverage: seen against needed per situation, short ones marked."""
    if not rows:
        return ""
    cells = "".join(
        f'<tr class="{"short" if r["seen"] < r["needed"] else ""}"><td>{escape(r["situation"])}</td>'
        f'<td>{r["seen"]}</td><td>{r["needed"]}</td><td>{escape(r.get("doc", ""))}</td></tr>' for r in rows)
    return ('<table class="coverage"><tr><th>situation</th><th>seen</th><th>needed</th><th></th></tr>'
            f"{cells}</table>")


def _verdict_table(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return '<p class="muted">No requirement was checked.</p>'
    out = ['<table id="verdicts"><tr><th>Status</th><th>Requirement</th><th>Suite</th>'
           '<th>Summary</th><th>Time (s)</th></tr>']
    for row in rows:
        tests = row.get("tests") or []
        evidence = (f"<details><summary>evidence ({len(tests)} test{'s' if len(tests) != 1 else ''})"
                    f"</summary>{_json_block({'tests': tests, 'evidence': row.get('evidence', {})})}</details>")
        out.append(
            f'<tr class="req-{escape(row["status"])}"><td>{_badge(row["status"])}</td>'
            f"<td><b>{escape(row['id'])}</b><br>{escape(row.get('title', ''))}</td>"
            f"<td>{escape(row.get('suite', ''))}</td>"
            f"<td>{escape(row.get('summary', ''))}{_coverage(row.get('coverage') or [])}{evidence}</td>"
            f"<td>{row.get('duration_s', 0):.2f}</td></tr>")
    out.append("</table>")
    return "".join(out)


def _latency_table(latency: Mapping[str, Any]) -> str:
    stages = latency.get("stages") or {}
    if not stages:
        return ""
    names = [f"{n}_us" for n, _ in PERCENTILES]
    head = "".join(f"<th>{escape(n.removesuffix('_us'))}</th>" for n in ["min_us", *names, "max_us"])
    out = [f"<table><tr><th>stage (µs)</th><th>count</th>{head}</tr>"]
    for stage, s in stages.items():
        cells = "".join(f"<td>{s.get(k, 0):.1f}</td>" for k in ["min_us", *names, "max_us"])
        out.append(f"<tr><td>{escape(stage)}</td><td>{s.get('count', 0)}</td>{cells}</tr>")
    out.append("</table>")
    if latency.get("source"):
        out.append(f'<p class="muted">source: {escape(str(latency["source"]))}</p>')
    return "".join(out)


def _plots(samples: Samples, ops: Sequence[hist.Op]) -> str:
    faults = hist.fault_windows(ops)
    if not samples and not faults:
        return '<p class="muted">No latency samples and no fault windows were recorded.</p>'
    if not plots.available():
        return '<p class="muted">matplotlib is not installed (pip install exchange-crucible[report]): no plots.</p>'
    throughput = [done.time_ns for inv, done in hist.pairs(ops)
                  if inv.process != hist.NEMESIS and done is not None and done.type == hist.OK]
    times = [t for pts in samples.values() for t, _ in pts] + [op.time_ns for op in ops]
    parts = []
    timeline = plots.latency_over_time(samples, faults, throughput, min(times) if times else None)
    if timeline:
        parts.append(f'<img alt="latency over time" src="data:image/png;base64,{timeline}">')
    spectrum = plots.percentile_spectrum(samples)
    if spectrum:
        parts.append(f'<img alt="latency percentile spectrum" src="data:image/png;base64,{spectrum}">')
    else:
        parts.append('<p class="muted">No latency samples were recorded: no percentile spectrum.</p>')
    return "".join(parts)


def _faults_table(faults: Sequence[Mapping[str, Any]], t0: int | None) -> str:
    if not faults:
        return '<p class="muted">No fault was injected.</p>'
    out = ["<table><tr><th>fault</th><th>start (s)</th><th>end (s)</th><th>duration (s)</th></tr>"]
    for f in faults:
        start, end = f.get("start_ns"), f.get("end_ns")
        rel = (lambda t: f"{(t - t0) / 1e9:.3f}") if t0 is not None else (lambda t: str(t))
        dur = f"{(end - start) / 1e9:.3f}" if end is not None else "still open"
        out.append(f"<tr><td>{escape(str(f.get('name')))}</td><td>{rel(start)}</td>"
                   f"<td>{rel(end) if end is not None else '—'}</td><td>{dur}</td></tr>")
    out.append("</table>")
    return "".join(out)


def _artefacts(artefacts: Mapping[str, str]) -> str:
    if not artefacts:
        return '<p class="muted">None.</p>'
    items = "".join(f'<li>{escape(k)}: <a href="{escape(v, quote=True)}">{escape(v)}</a></li>'
                    for k, v in sorted(artefacts.items()))
    return f'<ul id="artefacts">{items}</ul>'


def render(report: Mapping[str, Any], ops: Iterable[hist.Op] = (), samples: Samples | None = None) -> str:
    """The whole page as a string."""
    ops = list(ops)
    samples = {k: v for k, v in (samples or {}).items() if v} or from_history(ops)
    status = report.get("verdict", "unknown")
    sut, profile = report.get("sut", {}), report.get("profile", {})
    reproduce = (f"crucible certify --sut {sut.get('descriptor') or sut.get('name')} "
                 f"--profile {profile.get('path') or profile.get('name')} --seed {report.get('seed')}")
    starts = [op.time_ns for op in ops] + [t for pts in samples.values() for t, _ in pts]
    t0 = min(starts) if starts else None
    totals = report.get("totals", {})
    counts = " · ".join(f"{totals.get(s, 0)} {s}" for s in STATUS_COLOURS)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Crucible report {escape(str(report.get('run_id')))}: {escape(status)}</title>
<style>{CSS}</style></head><body>
<h1>Crucible certification {_badge(status)}</h1>
<p class="verdict">{escape(report.get('verdict_summary', ''))}</p>
<p>{escape(counts)} · exit code {report.get('exit_code')} · reproduce: <code>{escape(reproduce)}</code></p>
<h2>Run</h2><table class="meta">{_meta_rows(report)}</table>
<h2>Verdicts</h2>{_verdict_table(report.get('requirements', []))}
<h2>Latency</h2>{_latency_table(report.get('latency', {}))}{_plots(samples, ops)}
<h2>Fault windows</h2>{_faults_table(report.get('faults', []), t0)}
<h2>Artefacts</h2>{_artefacts(report.get('artefacts', {}))}
<h2>Hardware</h2><details><summary>hardware.json</summary>{_json_block(report.get('hardware', {}))}</details>
<details><summary>profile settings</summary>{_json_block(profile.get('settings', {}))}</details>
</body></html>
"""


def render_run(run_dir: str | Path) -> str:
    """Rebuild the page from a run directory's report.json, history.jsonl and latencies.csv."""
    from harness.report.schema import load

    run_dir = Path(run_dir)
    report = load(run_dir / "report.json")
    ops = hist.read(run_dir / "history.jsonl") if (run_dir / "history.jsonl").exists() else []
    samples = read_csv(run_dir / "latencies.csv") if (run_dir / "latencies.csv").exists() else {}
    return render(report, ops, samples)
