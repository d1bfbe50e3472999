"""Start one engine: ``python -m reference_impl.engine --config F --run-dir D --id N``.

The composition root (``__main__`` calls ``main``): ``node`` holds the duty
loop and this module the process around it: the
command line (``--id``, ``--role``), the log format and the exit statuses
(0 stopped by a signal, 2 a configuration error, 3 ``InputCorrupt``).
"""

from __future__ import annotations

import logging
import sys

from reference_impl.edges import process
from reference_impl.engine.node import EngineAgent, InputCorrupt, log


def _extra_args(parser) -> None:
    parser.add_argument("--id", type=int, default=1, help="engine id in the config (default: 1)")
    parser.add_argument("--role", choices=("primary", "secondary"),
                        help="override the config's role for this engine")


def main(argv: list[str] | None = None) -> int:
    args = process.parse_args("Crucible matching engine: applies the input stream, publishes outputs.",
                           argv, _extra_args)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s engine{args.id} %(levelname)s %(message)s")
    cfg = process.load_config(args)
    try:
        role = args.role or cfg.engine(args.id).role
    except Exception as exc:
        print(exc, file=sys.stderr)
        return 2
    stop = process.StopFlag()
    agent = EngineAgent(cfg, args.id, role)
    log.info("engine %d up as %s (faults: %s)", args.id, role, list(cfg.faults) or "none")
    try:
        agent.run(stop)
    except InputCorrupt as exc:
        log.critical("%s; applied_seq=%d; stopping", exc, agent.engine.last_applied_seq)
        return 3
    finally:
        agent.close()
    return 0
