"""Start the logger: ``python -m reference_impl.logger --config FILE --run-dir DIR``."""

from __future__ import annotations

import sys

from reference_impl.edges import process
from reference_impl.logger.node import LoggerAgent
from reference_impl.logger.wal import WalCorruptError


def main(argv: list[str] | None = None) -> int:
    args = process.parse_args("Crucible logger: appends the input stream to the WAL, serves the archive.",
                           argv)
    cfg = process.load_config(args)
    stop = process.StopFlag()
    try:
        agent = LoggerAgent(cfg, process.data_path(args, cfg.logger.data_dir))
    except WalCorruptError as exc:
        print(f"logger: refusing to start: the WAL is corrupt: {exc}", file=sys.stderr,
              flush=True)
        return 2
    try:
        agent.run(stop)
    finally:
        agent.close()
    return 0

