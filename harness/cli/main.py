"""``crucible`` command line: one entry point, subcommands that import lazily.

Each subcommand lives in its own module; this file only wires argparse to
them so that ``crucible --help`` stays fast and a missing optional dependency
(matplotlib, locust, mfusepy) breaks only the command that needs it.

Exit codes, the same for every command: 0 pass, 1 a requirement failed, 2
unknown, 64 (``os.EX_USAGE``) a usage or configuration error. argparse's own
usage errors exit 64 too (``CrucibleParser``), not argparse's 2, which would
read as UNKNOWN. ``crucible --version`` prints the installed package's version.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from importlib import metadata
from typing import NoReturn

DISTRIBUTION = "exchange-crucible"


class CrucibleParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors exit 64 (EX_USAGE); subparsers inherit the class."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(os.EX_USAGE, f"{self.prog}: error: {message}\n")


def version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def _replay(args: argparse.Namespace) -> int:
    from harness.cli.replay import run_replay

    return run_replay(args.input, args.out, args.instruments)


def _add_engine(sub: argparse._SubParsersAction) -> None:
    engine = sub.add_parser("engine", help="run the deterministic engine offline")
    esub = engine.add_subparsers(dest="engine_cmd", required=True)
    replay = esub.add_parser("replay", help="apply a replay-format input file and print a summary")
    replay.add_argument("input", help="input JSON-lines file (docs/replay-format.md)")
    replay.add_argument("--out", help="write the outputs as JSON lines here ('-' for stdout)")
    replay.add_argument("--instruments", help="YAML/JSON mapping symbol -> tick (default: any symbol, tick 100)")
    replay.set_defaults(func=_replay)


def _up(args: argparse.Namespace) -> int:
    from harness.cli.up import run_up

    return run_up(args.config, args.run_dir, args.detach)


def _down(args: argparse.Namespace) -> int:
    from harness.cli.up import run_down

    return run_down(args.run_dir)


def _add_up(sub: argparse._SubParsersAction) -> None:
    up = sub.add_parser("up", help="start the reference cluster on localhost (docs/config.md)")
    up.add_argument("--config", help="cluster YAML (default: the packaged default config)")
    up.add_argument("--run-dir", help="logs, data, pidfile (default: results/cluster-<timestamp>)")
    up.add_argument("--detach", action="store_true",
                    help="return once every component is ready; stop it with `crucible down`")
    up.set_defaults(func=_up)
    down = sub.add_parser("down", help="stop a cluster started with `crucible up --detach`")
    down.add_argument("--run-dir", help="its run directory (default: results/cluster-latest)")
    down.set_defaults(func=_down)


def _add_wal(sub: argparse._SubParsersAction) -> None:
    from harness.cli.wal import register

    register(sub)


def _add_certify(sub: argparse._SubParsersAction) -> None:
    from harness.cli.certify import register

    register(sub)


def _add_load(sub: argparse._SubParsersAction) -> None:
    from harness.cli.load import register

    register(sub)


def _add_self_check(sub: argparse._SubParsersAction) -> None:
    from harness.cli.self_check import register

    register(sub)


REGISTRARS: list[Callable[[argparse._SubParsersAction], None]] = [_add_engine, _add_up, _add_wal, _add_certify,
                                                                  _add_self_check, _add_load]


def build_parser() -> argparse.ArgumentParser:
    parser = CrucibleParser(
        prog="crucible",
        description="Certification kit for fault-tolerant, sequencer-based exchange cores. "
                    "Exit codes: 0 pass, 1 fail, 2 unknown, 64 usage or configuration error.",
    )
    parser.add_argument("--version", action="version", version=f"crucible {version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    for register in REGISTRARS:
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
