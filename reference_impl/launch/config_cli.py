"""Write a cluster config file: the packaged default (or a given one), moved and overridden.

``python -m reference_impl.launch.config_cli OUT [--base FILE] [--offset N]
[--durability fsync|replicated|none] [--transport unicast|multicast]``

The setup step of the reference implementation described as an external SUT
(docs/examples/reference-as-external.yaml): every node then reads ``OUT``.
A bad base config exits 64 (``os.EX_USAGE``) with one line naming the file and the key.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

from reference_impl import config as config_mod


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a (shifted) cluster config.")
    parser.add_argument("out", help="the config file to write")
    parser.add_argument("--base", help="config to start from (default: the packaged default)")
    parser.add_argument("--offset", type=int, default=0, help="move every port by N")
    parser.add_argument("--durability", choices=config_mod.DURABILITY)
    parser.add_argument("--transport", choices=config_mod.TRANSPORTS)
    args = parser.parse_args(argv)
    try:
        cfg = config_mod.load(args.base).shifted(args.offset)
        changes = {k: v for k, v in (("durability", args.durability),
                                     ("transport", args.transport)) if v is not None}
        cfg = config_mod.parse(yaml.safe_load(
            config_mod.dump(cfg.with_overrides(**changes))))  # re-validate the moved ports
    except config_mod.ConfigError as exc:
        print(exc, file=sys.stderr)
        return os.EX_USAGE
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(config_mod.dump(cfg))
    return 0


if __name__ == "__main__":
    sys.exit(main())
