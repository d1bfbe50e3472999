"""The detection table (``harness.detection``) and the reference's broken variants agree both ways.

A new variant in ``reference_impl/config.py``'s ``BROKEN_VARIANTS`` must get
a row (so detection power and ``crucible self-check`` try it), and every row
must name a real variant and a requirement some suite test declares with
``@pytest.mark.requirement`` (collected from suites/, so parametrized ids
count).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.detection import BY_VARIANT, DETECTIONS, UnknownVariant, select
from reference_impl.config import BROKEN_VARIANTS

REPO = Path(__file__).resolve().parents[2]


def test_every_broken_variant_has_a_row() -> None:
    missing = [v for v in BROKEN_VARIANTS if v not in BY_VARIANT]
    assert not missing, (
        f"broken variant(s) {missing} have no row in harness/detection.py DETECTIONS: add "
        + "; ".join(f'Detection("{v}", "<the mistake, in words>", "<suite module, e.g. test_exactly_once.py>", '
                    f'"<pytest -k expression selecting its test>", "<requirement id that must fail>")'
                    for v in missing)
        + " (and the flag's row in docs/config.md and docs/suites.md)")


def test_every_row_names_a_real_variant_once() -> None:
    names = [d.variant for d in DETECTIONS]
    assert len(names) == len(set(names)), f"a variant has two rows in harness/detection.py: {names}"
    stale = [n for n in names if n not in BROKEN_VARIANTS]
    assert not stale, (f"harness/detection.py DETECTIONS names {stale}, which reference_impl/config.py "
                       f"BROKEN_VARIANTS does not have: remove the row or add the variant")


def test_every_row_names_a_suite_requirement_and_module(suite_requirements: set[str]) -> None:
    bad = [f"{d.variant}: requirement {d.requirement!r}" for d in DETECTIONS
           if d.requirement not in suite_requirements]
    bad += [f"{d.variant}: module suites/{d.module}" for d in DETECTIONS if not (REPO / "suites" / d.module).is_file()]
    assert not bad, ("harness/detection.py names what the suites do not have: " + "; ".join(bad)
                     + f". Requirements the suites declare: {', '.join(sorted(suite_requirements))}")


def test_docs_show_every_row() -> None:
    doc = (REPO / "docs" / "suites.md").read_text()
    missing = [d.variant for d in DETECTIONS if f"| `{d.variant}` | `{d.module.removesuffix('.py')} -k " not in doc]
    assert not missing, f"docs/suites.md's detection-power table has no row for {missing}"


def test_select_names_the_known_variants_and_a_close_match() -> None:
    assert [d.variant for d in select(["skip_dedup", "fok_partial_fill"])] == ["skip_dedup", "fok_partial_fill"]
    with pytest.raises(UnknownVariant, match=r"'skip_dedupe' \(did you mean skip_dedup\?\); known: ack_before"):
        select(["skip_dedupe"])
