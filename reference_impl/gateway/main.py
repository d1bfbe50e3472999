"""Start one gateway: ``python -m reference_impl.gateway --config F --run-dir D --id N``.

The composition root: it builds the node (``node``: the event-loop callbacks
around the desk) and its two doors (``ouch_door``, ``http_door``), handing
each door the node as its ``GatewayPort`` and its own settings, and decides
what is decided once per process: the command line, which event loop runs
(``event_loop_name``), the incarnation and the garbage collector's settings.

Incarnation: a u32 that grows with every start of this gateway id, so the
sequencer tells a restarted gateway's request seqs from the old ones':
``max(unix seconds, previous + 1)``, the previous value kept in
``<run-dir>/gateway-<id>.incarnation`` (``next_incarnation``).

Garbage collection: the gateway keeps every journal entry (replay) and order,
so its heap only grows, and CPython's full collections scan all of it: about
100 ms per pause after 20k orders, every order in flight waiting behind it.
``freeze_gc_survivors`` moves what survives the young generations into the
permanent generation (``gc.freeze``), so a full collection scans only what is
new. The cost: cyclic garbage that outlives two young collections is kept
(the long-lived state is acyclic; refcounting still frees the rest).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import signal
import sys
import time
from pathlib import Path

from reference_impl.config import HOST, ClusterConfig, ConfigError
from reference_impl.edges import process
from reference_impl.gateway import http_door, ouch_door
from reference_impl.gateway.http_door import REQUEST_TIMEOUT_S, HttpSettings
from reference_impl.gateway.node import GatewayNode
from reference_impl.gateway.ouch_door import IDLE_TIMEOUT_S, OuchSettings


def next_incarnation(run_dir: Path, gateway_id: int, now_s: int) -> int:
    """``max(now_s, previous + 1)`` as a u32, remembered in the run directory."""
    path = run_dir / f"gateway-{gateway_id}.incarnation"
    try:
        previous = int(path.read_text().strip())
    except (OSError, ValueError):
        previous = 0
    inc = max(now_s, previous + 1) & 0xFFFF_FFFF
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{inc}\n")
    except OSError:
        pass
    return inc


def _freeze_after_young(phase: str, info: dict) -> None:
    if phase == "stop" and info["generation"] == 1:
        gc.freeze()  # the survivors would go to generation 2: make them permanent


def freeze_gc_survivors() -> None:
    """Start-up objects and, from now on, every survivor of a generation-1 collection are frozen."""
    gc.collect()
    gc.freeze()
    if _freeze_after_young not in gc.callbacks:
        gc.callbacks.append(_freeze_after_young)


def event_loop_name(choice: str) -> str:
    """The loop ``cluster.event_loop`` asks for: ``uvloop`` or ``asyncio``.

    uvloop (libuv underneath) costs the gateway about a sixth less CPU per
    order than the standard loop; ``auto`` takes it when it is installed.
    """
    if choice == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        if choice == "uvloop":
            raise ConfigError("cluster.event_loop", "uvloop is not installed") from None
        return "asyncio"
    return "uvloop"


def _extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--id", type=int, default=1, help="gateway id in the config (default 1)")
    parser.add_argument("--request-timeout-s", type=float, default=REQUEST_TIMEOUT_S,
                        help="HTTP: answer 504 (outcome unknown) after this long")
    parser.add_argument("--ouch-idle-timeout-s", type=float, default=IDLE_TIMEOUT_S,
                        help="SoupBinTCP: drop a client silent this long (spec: 15 s)")


async def _main(args: argparse.Namespace, cfg: ClusterConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    incarnation = next_incarnation(Path(args.run_dir), args.id, int(time.time()))
    node = GatewayNode(cfg, args.id, incarnation)
    gw = node.gw
    ouch = await ouch_door.start(
        node, OuchSettings(node.session, args.ouch_idle_timeout_s,
                           resume_after=cfg.broken("soupbin_resume_after")), HOST, gw.ouch_port)
    node.ouch_counters = ouch.counters
    http = await http_door.start(
        node, HttpSettings(gw.id, cfg.durability, args.request_timeout_s,
                           resume_at_id=cfg.broken("sse_resume_at_id")), HOST, gw.http_port)
    freeze_gc_survivors()
    await node.run(stop, (ouch, http))


def main(argv: list[str] | None = None) -> int:
    args = process.parse_args("Crucible gateway: OUCH and HTTP doors, ack gate, backpressure.",
                           argv, _extra)
    cfg = process.load_config(args)
    try:
        cfg.gateway(args.id)
        loop_name = event_loop_name(cfg.event_loop)
    except Exception as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        if loop_name == "uvloop":
            import uvloop
            uvloop.run(_main(args, cfg))
        else:
            asyncio.run(_main(args, cfg))
    except OSError as exc:  # a port in use, most likely
        print(f"gateway {args.id}: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0
