"""``minihpc-daemon controller|noded``: start a scheduler daemon from the cluster config.

The same entry point serves the containers (defaults fit the image layout) and
local mode (which overrides addresses, spool and state directories).
"""

from __future__ import annotations

import sys

# The daemons speak plain TCP authenticated by munge and never TLS: keep asyncio from loading
# OpenSSL, which costs each daemon about 4 MB of resident memory (it imports ``ssl`` only if present).
if "ssl" not in sys.modules:
    sys.modules["ssl"] = None  # type: ignore[assignment]

import argparse
import asyncio
import logging
import os
import signal
import socket
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = ["main"]


def _addr(text: str, default_port: int) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host:
        return text, default_port
    return host, int(port)


# Timer slack for everything a node daemon starts (prctl PR_SET_TIMERSLACK; children inherit it).
# A laptop's two cores carry up to 96 ranks: Open MPI waits in MPI_Init/Finalize with
# usleep(100) loops, and 96 of those at ~7,000 wake-ups a second each saturate the CPU with
# context switches, starving the orted that would end the wait (a 96-rank hello took 10-150 s).
# With 1 ms of slack the kernel batches those wake-ups; a job's sleeps may end up to 1 ms late.
JOB_TIMER_SLACK_NS = 1_000_000
_PR_SET_TIMERSLACK = 29


def _set_timer_slack(ns: int) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_TIMERSLACK, ns, 0, 0, 0) != 0:
        log.warning("could not set the timer slack: %s", os.strerror(ctypes.get_errno()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="minihpc-daemon", description="Run a minihpc scheduler daemon.")
    parser.add_argument("role", choices=["controller", "noded"])
    parser.add_argument("--config", default="/etc/minihpc/cluster.yaml")
    parser.add_argument("--cluster", required=True)
    parser.add_argument("--node", help="node name (noded; default: the host name)")
    parser.add_argument("--state-dir", default="/var/lib/minihpc", help="controller state directory")
    parser.add_argument("--spool", default="/var/spool/minihpc", help="node daemon spool directory")
    parser.add_argument("--listen", help="HOST:PORT to listen on (default 0.0.0.0 and the configured port)")
    parser.add_argument("--advertise", help="host name the controller should use to reach this node")
    parser.add_argument("--controller", help="HOST:PORT of the controller (default from the config)")
    parser.add_argument("--tmp-base", default="/tmp", help="where per-job TMPDIRs are made")
    parser.add_argument("--scratch-base", default="", help="shared scratch root for per-job SCRATCH dirs")
    parser.add_argument("--kill-wait", type=int, default=30)
    parser.add_argument("--slurmd-timeout", type=int, default=300)
    parser.add_argument("--min-job-age", type=int, default=300)
    parser.add_argument("--requeue-delay", type=int, default=121, help="seconds before a requeued job may start")
    parser.add_argument("--log-file")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)

    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if args.log_file:
        handlers = [logging.FileHandler(args.log_file)]
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, handlers=handlers,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")

    from orchestrator.cluster.config import ConfigError, load

    try:
        config = load(args.config)
        cluster = config.cluster(args.cluster)
    except (ConfigError, KeyError) as exc:
        print(f"minihpc-daemon: {exc}", file=sys.stderr)
        return 1

    if args.role == "controller":
        from orchestrator.scheduler.controller import Controller, Settings

        listen = _addr(args.listen, cluster.controller_port) if args.listen else ("0.0.0.0", cluster.controller_port)
        settings = Settings(kill_wait=args.kill_wait, slurmd_timeout=args.slurmd_timeout,
                            min_job_age=args.min_job_age, requeue_delay=args.requeue_delay)
        ctl = Controller(config, cluster, Path(args.state_dir), listen, settings)
        from orchestrator.scheduler.plugins import PLUGINS

        for factory in PLUGINS:
            ctl.add_plugin(factory(ctl))
        coro = ctl.run()
    else:
        from orchestrator.scheduler.noded import NodeDaemon

        _set_timer_slack(JOB_TIMER_SLACK_NS)  # before any thread starts, so all inherit it

        name = args.node or socket.gethostname().split(".")[0]
        try:
            node = cluster.node(name)
        except KeyError:
            print(f"minihpc-daemon: node {name} is not declared in cluster {cluster.name}", file=sys.stderr)
            return 1
        listen = _addr(args.listen, node.port) if args.listen else ("0.0.0.0", node.port)
        controller = _addr(args.controller, cluster.controller_port) if args.controller else (
            cluster.controller_hostname, cluster.controller_port)
        extra = {k: v for k, v in os.environ.items() if k.startswith("MINIHPC_")}
        nd = NodeDaemon(cluster, node, Path(args.spool), controller, listen, args.advertise or name,
                            tmp_base=args.tmp_base, scratch_base=args.scratch_base, kill_wait=args.kill_wait,
                            extra_env=extra)
        coro = nd.run()

    async def runner() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(coro)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            log.info("stopping")

    asyncio.run(runner())
    return 0


if __name__ == "__main__":
    sys.exit(main())
