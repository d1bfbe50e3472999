"""``kill PID`` of a certification run stops the SUTs it started: nothing is left holding ports."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]


def nodes_of(proc: psutil.Process) -> list[psutil.Process]:
    """The reference nodes among ``proc``'s descendants."""
    out = []
    for child in proc.children(recursive=True):
        try:
            if any("reference_impl." in part for part in child.cmdline()):
                out.append(child)
        except psutil.NoSuchProcess:
            continue
    return out


@pytest.mark.timeout(120)
def test_sigterm_stops_the_clusters_the_run_started(tmp_path):
    nodes: list[psutil.Process] = []
    run = subprocess.Popen([sys.executable, "-m", "harness.cli", "certify", "--seed", "3", "-k", "auth",
                            "--results", str(tmp_path)], cwd=REPO, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        parent = psutil.Process(run.pid)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(nodes) < 5:  # sequencer, 2 engines, logger, gateway
            time.sleep(0.2)
            nodes = nodes_of(parent)
        assert len(nodes) >= 5, f"the run started {len(nodes)} nodes"
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=60)
        _, alive = psutil.wait_procs(nodes, timeout=15)
        assert not alive, f"still running after SIGTERM: {[p.pid for p in alive]}"
    finally:  # whatever happened, leave nothing running
        if run.poll() is None:
            run.kill()
            run.wait()
        for node in nodes:
            try:
                node.kill()
            except psutil.NoSuchProcess:
                pass
