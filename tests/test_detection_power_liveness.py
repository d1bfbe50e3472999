"""Detection power for liveness and sequence continuity: each variant fails its named requirement.

Like ``test_detection_power`` (whose ``certify`` runs the selected suite
tests in a subprocess with the fault flag on): ``stall_after_fault`` (the
sequencer stops publishing after a pause) must fail the gateway-resend
trial through its liveness part, and ``seq_without_message`` (the sequencer
consumes a seq without a message) must fail ``exactly_once.sequence_continuity``.
The clean reference, run once over the same selection, passes both.
"""

from __future__ import annotations

import pytest

from tests.test_detection_power import certify

pytestmark = pytest.mark.timeout(600)

MODULE = "test_exactly_once.py"
#: fault flag -> (-k expression, requirement that must fail, words its summary must start with)
VARIANTS = {
    "stall_after_fault": ("resend", "exactly_once.gateway_resend.sequenced_once",
                          "liveness after the fault: "),
    "seq_without_message": ("continuity", "exactly_once.sequence_continuity",
                            "WAL records: "),
}


@pytest.fixture(scope="module")
def clean_rows(tmp_path_factory):
    expr = " or ".join(k for k, _, _ in VARIANTS.values())
    return certify(tmp_path_factory.mktemp("clean"), [MODULE], expr)


@pytest.mark.parametrize("requirement", sorted(r for _, r, _ in VARIANTS.values()))
def test_clean_reference_passes(clean_rows, requirement):
    _code, rows, tail = clean_rows
    row = rows.get(requirement)
    assert row is not None, f"{requirement} was not run:\n{tail}"
    assert row["status"] == "pass", f"{requirement}: {row['status']}: {row['summary']}"


@pytest.mark.parametrize("fault", list(VARIANTS))
def test_broken_variant_fails_its_requirement(fault, tmp_path):
    expr, requirement, cause = VARIANTS[fault]
    code, rows, tail = certify(tmp_path, [MODULE], expr, faults=fault)
    row = rows.get(requirement)
    assert row is not None, f"{requirement} was not run with {fault}:\n{tail}"
    assert row["status"] == "fail", (f"{fault} was not caught: {requirement} is "
                                     f"{row['status']}: {row['summary']}\n{tail}")
    assert row["summary"].startswith(cause), row["summary"]
    assert code == 1, f"pytest exit code {code}, expected 1 (a failed requirement)\n{tail}"
