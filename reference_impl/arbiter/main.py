"""Start the arbiter: ``python -m reference_impl.arbiter --config F --run-dir D [--pids FILE]``.

The composition root (``__main__`` calls ``main``): ``node`` holds the duty
loop and this module the process around it: the command line (``--pids``:
the launcher's pidfile naming the engines' processes, by default the run
directory's), the log format and the exit statuses (0 stopped by a signal,
2 a configuration error or no arbiter configured, 4 the sequencer never
answered at start).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from reference_impl.arbiter.node import ArbiterAgent, SequencerUnreachable, log
from reference_impl.edges import process
from reference_impl.launch.cluster import PIDFILE


def _extra_args(parser) -> None:
    parser.add_argument("--pids", help=f"the launcher's pidfile (default: RUN_DIR/{PIDFILE})")


def main(argv: list[str] | None = None) -> int:
    args = process.parse_args("Crucible arbiter: detects a dead or stalled primary engine and "
                              "promotes the secondary.", argv, _extra_args)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s arbiter %(levelname)s %(message)s")
    cfg = process.load_config(args)
    if not cfg.arbiter.enabled:
        print("config error: arbiter.enabled is false", file=sys.stderr)
        return 2
    stop = process.StopFlag()
    try:
        agent = ArbiterAgent(cfg, Path(args.pids) if args.pids else Path(args.run_dir) / PIDFILE)
    except SequencerUnreachable as exc:
        log.critical("%s", exc)
        return 4
    log.info("arbiter up: primary engine %d, candidates %s, epoch %d, silence %d us, stall %d ms",
             agent.detector.primary, list(agent.detector.candidates), agent.detector.epoch,
             cfg.arbiter.silence_us, cfg.arbiter.stall_ms)
    try:
        agent.run(stop)
    finally:
        agent.close()
    return 0
