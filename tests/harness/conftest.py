"""Fixtures shared by the harness tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COLLECT = """\
import json, sys
import pytest

class Requirements:
    ids = set()

    def pytest_collection_modifyitems(self, items):
        self.ids.update(m.args[0] for i in items for m in i.iter_markers("requirement"))

plugin = Requirements()
code = pytest.main(["suites", "--collect-only", "-q", "-p", "no:cacheprovider"], plugins=[plugin])
print("REQUIREMENTS " + json.dumps(sorted(plugin.ids)))
sys.exit(code)
"""


@pytest.fixture(scope="session")
def suite_requirements() -> set[str]:
    """Every requirement id a suite test declares (``@pytest.mark.requirement``, parametrized ids
    included), collected in a subprocess so the suites' imports stay out of this one."""
    proc = subprocess.run([sys.executable, "-c", COLLECT], cwd=REPO, capture_output=True, text=True,
                          check=False, timeout=120)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("REQUIREMENTS ")), None)
    assert proc.returncode == 0 and line, (proc.stdout + proc.stderr)[-3000:]
    return set(json.loads(line.removeprefix("REQUIREMENTS ")))
