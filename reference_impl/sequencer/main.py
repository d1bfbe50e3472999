"""Start the sequencer: ``python -m reference_impl.sequencer --config FILE --run-dir DIR``."""

from __future__ import annotations

from reference_impl.edges import process
from reference_impl.sequencer.node import SequencerAgent


def main(argv: list[str] | None = None) -> int:
    args = process.parse_args("Crucible sequencer: stamps, dedups and publishes the input stream.",
                           argv)
    cfg = process.load_config(args)
    stop = process.StopFlag()
    agent = SequencerAgent(cfg)
    try:
        agent.run(stop)
    finally:
        agent.close()
    return 0

