"""What every node process shares: command line, admin endpoint, clean stop.

Each component runs alone as ``python -m reference_impl.<node> --config FILE``
(multi-host use) or under the launcher. A node is stopped by SIGTERM/SIGINT,
which sets a flag its duty loop checks between polls (the loop never blocks
longer than one poll timeout), so it closes its files and sockets itself.

The admin endpoint is a UDP request/response port on 127.0.0.1: a datagram
holding a command word (``health``, ``digest`` and node-specific ones) gets
one JSON datagram back. UDP keeps it inside the same single-threaded loop as
the data path, with no extra thread to perturb the latencies it reports.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reference_impl import config as config_mod
from reference_impl.config import HOST, ClusterConfig

AdminHandler = Callable[[str], dict[str, Any]]


class StopFlag:
    """Set by SIGTERM/SIGINT; duty loops test ``stop.is_set``."""

    __slots__ = ("is_set",)

    def __init__(self) -> None:
        self.is_set = False
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._set)

    def _set(self, signum: int, frame: object) -> None:
        self.is_set = True


def parse_args(description: str, argv: list[str] | None = None,
               extra: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", help="cluster YAML (default: the packaged default config)")
    parser.add_argument("--run-dir", default=".", help="directory for data and logs (default: .)")
    if extra:
        extra(parser)
    return parser.parse_args(argv)


def load_config(args: argparse.Namespace) -> ClusterConfig:
    try:
        return config_mod.load(args.config)
    except config_mod.ConfigError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None


def data_path(args: argparse.Namespace, path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else Path(args.run_dir) / p


def answer_admin(sock: socket.socket, data: bytes, addr: tuple, handler: AdminHandler) -> None:
    """Run one admin command and send the JSON reply (errors are replies, not crashes)."""
    try:
        command = data.decode("ascii").strip()
        reply = handler(command)
    except Exception as exc:  # an admin typo must not kill a node
        reply = {"error": f"{type(exc).__name__}: {exc}"}
    reply.setdefault("pid", os.getpid())
    try:
        sock.sendto(json.dumps(reply).encode(), addr)
    except OSError:
        pass


def admin_query(port: int, command: str, timeout_s: float = 1.0) -> dict[str, Any]:
    """Client side of the admin endpoint (launcher readiness, harness digests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout_s)
        sock.sendto(command.encode("ascii"), (HOST, port))
        data, _ = sock.recvfrom(65535)
    return json.loads(data)
