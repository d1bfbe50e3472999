"""``crucible up`` and ``crucible down``: the reference cluster on localhost.

``up`` loads the config (a bad or unknown key prints ``FILE: config error:
KEY: problem`` and exits 64, ``os.EX_USAGE``), starts every component through ``reference_impl.launch.cluster.Cluster``,
prints the endpoints, then either waits (foreground: Ctrl-C or SIGTERM stops
everything by pid, in order) or returns (``--detach``: the pidfile
``RUN_DIR/cluster.pids`` stays for ``down``). The default run directory is
``results/cluster-<timestamp>``; ``results/cluster-latest`` then points at
it, and ``down`` without ``--run-dir`` stops that one.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import TextIO

from reference_impl import config as config_mod
from reference_impl.config import HOST, ClusterConfig
from reference_impl.launch.cluster import PIDFILE, Cluster, ClusterAborted, ClusterStartError, stop_detached

RESULTS = Path("results")
LATEST = "cluster-latest"


def new_run_dir(results: Path = RESULTS) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, n = results / f"cluster-{stamp}", 1
    while path.exists():
        n += 1
        path = results / f"cluster-{stamp}-{n}"
    return path


def point_latest(run_dir: Path, results: Path = RESULTS) -> None:
    """Make ``results/cluster-latest`` a relative symlink to ``run_dir`` (atomically)."""
    link, tmp = results / LATEST, results / f".{LATEST}.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(os.path.relpath(run_dir.resolve(), results.resolve()))
    os.replace(tmp, link)


def endpoints_text(cfg: ClusterConfig, cluster: Cluster, detach: bool) -> str:
    account, password = next(iter(cfg.accounts.items()))
    symbol = "ACME" if "ACME" in cfg.instruments else next(iter(cfg.instruments))
    price = cfg.instruments[symbol] * 10_000
    lines = [f"Crucible cluster up: durability {cfg.durability}, transport {cfg.transport}",
             f"  run dir    {cluster.run_dir}",
             f"  logs       {cluster.run_dir / 'logs'}/<component>.log"]
    for g in cfg.gateways:
        lines += [f"  gateway-{g.id}  OUCH 4.2 / SoupBinTCP  {HOST}:{g.ouch_port}",
                  f"             HTTP/JSON             http://{HOST}:{g.http_port}"]
    lines.append("  components " + ", ".join(f"{n} (pid {p})" for n, p in cluster.components().items()))
    http = f"http://{HOST}:{cfg.gateways[0].http_port}"
    order = (f'{{"token":"T1","symbol":"{symbol}","side":"B","qty":100,"price":{price},'
             f'"ord_type":"limit","tif":"DAY"}}')
    lines += ["Try:",
              f"  curl -u {account}:{password} {http}/v1/health",
              f"  curl -u {account}:{password} -H 'Content-Type: application/json' "
              f"-d '{order}' {http}/v1/orders"]
    if detach:
        lines.append(f"Stop it with: crucible down --run-dir {cluster.run_dir}")
    else:
        lines.append("Ctrl-C stops the cluster.")
    return "\n".join(lines)


class _StopRequest:
    """SIGINT/SIGTERM set a flag (the launcher then stops every component itself)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._saved = {sig: signal.signal(sig, self._set) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _set(self, signum: int, frame: object) -> None:
        self.signum = signum

    def __call__(self) -> bool:
        return self.signum is not None

    def restore(self) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)


def run_up(config_path: str | None, run_dir: str | None, detach: bool,
           out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    try:
        cfg = config_mod.load(config_path)
    except config_mod.ConfigError as exc:
        print(exc, file=err)
        return os.EX_USAGE
    default_dir = run_dir is None
    path = new_run_dir() if default_dir else Path(run_dir)
    if (path / PIDFILE).exists():
        print(f"crucible up: {path} already holds a cluster ({PIDFILE}); "
              f"run `crucible down --run-dir {path}` first", file=err)
        return 1
    stop = _StopRequest()
    cluster = Cluster(cfg, path)
    try:
        try:
            cluster.start(abort=stop)
        except ClusterStartError as exc:
            print(f"crucible up: failed to start {exc}", file=err)
            print("crucible up: every component started so far was stopped", file=err)
            return 1
        except ClusterAborted:
            print("crucible up: cancelled; every component started so far was stopped", file=err)
            return 130
        if default_dir:
            point_latest(path)
        print(endpoints_text(cfg, cluster, detach), file=out, flush=True)
        if detach:
            return 0
        return _wait_foreground(cluster, stop, out)
    finally:
        if not detach:
            cluster.stop()  # a no-op once stopped; covers any unexpected exception
        stop.restore()


def _wait_foreground(cluster: Cluster, stop: _StopRequest, out: TextIO) -> int:
    reported: set[str] = set()
    code = 0
    while not stop():
        time.sleep(0.1)
        gone = cluster.exited()
        for name in sorted(set(gone) - reported):
            print(f"crucible up: {name} exited (code {gone[name]}); see "
                  f"{cluster.log_path(name)}", file=out, flush=True)
        reported |= set(gone)
        if gone and len(gone) == len(cluster.components()):
            print("crucible up: every component has exited", file=out, flush=True)
            code = 1
            break
    print("crucible up: stopping ...", file=out, flush=True)
    for name, outcome in cluster.stop().items():
        print(f"  {name}: {outcome}", file=out, flush=True)
    return code


def run_down(run_dir: str | None, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    if run_dir is None:
        link = RESULTS / LATEST
        if not link.exists():
            print(f"crucible down: no --run-dir given and no {link}", file=err)
            return 1
        path = link.resolve()
    else:
        path = Path(run_dir)
    if not (path / PIDFILE).exists():
        print(f"crucible down: no {PIDFILE} in {path}: no cluster to stop there", file=err)
        return 1
    print(f"crucible down: stopping the cluster in {path}", file=out, flush=True)
    for name, outcome in stop_detached(path).items():
        print(f"  {name}: {outcome}", file=out, flush=True)
    return 0
