"""What srun and salloc share: asking for an allocation, waiting for it, giving it back.

Both print Slurm's progress lines (``job N queued and waiting for resources``,
``job N has been allocated resources``) and both give the allocation back with
the command's exit status, which becomes the job's state and ExitCode.
"""

from __future__ import annotations

import _signal as signal  # the signal package loads enum: milliseconds of srun's start-up
import os
import sys

from orchestrator.commands._common import Exit, error
from orchestrator.lazylog import get_logger

TYPE_CHECKING = False  # importing typing costs a user command milliseconds
if TYPE_CHECKING:
    from typing import Any

log = get_logger(__name__)

__all__ = ["LONG_POLL", "Interrupted", "info", "relinquish", "request_allocation", "wait_allocation", "which"]

FIRST_WAIT = 0.5
"""How long a new allocation may take before it is reported as queued (the controller schedules at once)."""

LONG_POLL = 20.0
"""How long one ``alloc_wait`` may block in the controller: under the client's 30 s socket timeout,
so that a request pending for minutes polls again rather than failing with a timed-out socket."""


class Interrupted(Exception):
    """A signal arrived while waiting for resources."""

    def __init__(self, signo: int) -> None:
        super().__init__(signo)
        self.signo = signo


QUIET = False
"""-Q/--quiet: informational lines are not printed (errors still are)."""


def info(prog: str, text: str) -> None:
    """Slurm's ``info()``: ``prog: text`` on stderr."""
    if QUIET:
        return
    sys.stderr.write(f"{prog}: {text}\n")
    sys.stderr.flush()


def parse_cli(prog: str, argv: list[str], usage: str) -> tuple[list[tuple[str, str | None]], list[str]]:
    """srun's and salloc's getopt pass: Slurm's option errors, ``--help``/``--usage`` and ``--version``."""
    from orchestrator.commands._common import argv0, print_version
    from orchestrator.slurm.options import OptionError, getopt_long, job_longopts, job_shortopts

    try:
        cli, positionals = getopt_long(argv0(prog), argv, job_shortopts(prog), job_longopts(prog))
    except OptionError as exc:
        sys.stderr.write(exc.message + "\n")
        sys.stderr.write(f'Try "{prog} --help" for more information\n')
        raise Exit(255) from None
    for key, _value in cli:
        if key in ("h", "usage"):
            try:
                from orchestrator.commands import helptext

                text = (helptext.HELP if key == "h" else helptext.USAGE).get(prog)
            except ImportError:
                text = None
            sys.stdout.write(text or usage)
            raise Exit(0)
        if key == "V":
            print_version()
            raise Exit(0)
    return cli, positionals


_WITHDRAW_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def _raise(signo: int, _frame: Any) -> None:
    """Withdraw once: later signals are absorbed, so that withdrawing is never itself interrupted.

    timeout(1) sends its signal to the command and then to its process group, so one Ctrl-C-like
    event often arrives twice; the second must not cut short the request that cancels the job.
    """
    for s in _WITHDRAW_SIGNALS:
        signal.signal(s, _absorb)
    raise Interrupted(signo)


def _absorb(_signo: int, _frame: Any) -> None:
    pass


def request_allocation(prog: str, client: Any, job: dict[str, Any], argv: list[str]) -> int:
    """Submit a job without a batch script; returns its id or exits with Slurm's message."""
    from orchestrator.scheduler.protocol import RpcError

    try:
        reply = client.call("allocate", {"job": job, "env": {}, "argv": argv})
    except RpcError as exc:
        if exc.err_msg:
            error(prog, exc.err_msg)
        what = "Job submit/allocate failed" if prog == "salloc" else "Unable to allocate resources"
        error(prog, f"{what}: {exc.message}")
        raise Exit(1) from None
    return int(reply["job_id"])


def wait_allocation(prog: str, client: Any, job_id: int, *, pending_line: bool, immediate: bool,
                    granted_lines: bool = False) -> dict[str, Any]:
    """Wait until the job runs; prints what Slurm prints while it waits.

    With ``granted_lines`` (salloc) it says ``Granted job allocation N`` and, when the nodes
    were not ready at once, waits for them between ``Waiting for resource configuration`` and
    ``Nodes ... are ready for job``, as salloc's _wait_nodes_ready. SIGINT/SIGTERM/SIGHUP while
    waiting withdraw the request (``Job allocation N has been revoked``, then salloc's ``Job aborted
    due to signal`` or srun's ``Force Terminated JobId=N``) and exit 1, as srun and salloc do.
    """
    from orchestrator.scheduler.protocol import RpcError

    old = {s: signal.signal(s, _raise) for s in _WITHDRAW_SIGNALS}
    queued = False
    try:
        try:
            state = client.call("alloc_wait", {"job_id": job_id, "timeout": FIRST_WAIT})
            while state["state"] in ("PENDING", "RUNNING") and "env" not in state:
                if state["state"] == "PENDING" and not queued:
                    if immediate:
                        relinquish(client, job_id, 0, 0)
                        error(prog, "Unable to allocate resources: Requested nodes are busy")
                        raise Exit(1)
                    if pending_line:
                        info(prog, f"Pending job allocation {job_id}")
                    if state.get("reason") in ("PartitionTimeLimit", "PartitionNodeLimit", "PartitionConfig"):
                        info(prog, "Requested partition configuration not available now")
                    info(prog, f"job {job_id} queued and waiting for resources")
                    queued = True
                state = client.call("alloc_wait", {"job_id": job_id, "timeout": LONG_POLL})
            if state["state"] == "RUNNING":
                if queued:
                    info(prog, f"job {job_id} has been allocated resources")
                if granted_lines:
                    state = _granted(prog, client, job_id, state)
        except Interrupted:
            salloc = prog == "salloc"  # salloc's words for it, then srun's (no full stop)
            info(prog, f"Job allocation {job_id} has been revoked{'.' if salloc else ''}")
            relinquish(client, job_id, 0, 0)
            info(prog, "Job aborted due to signal" if salloc else f"Force Terminated JobId={job_id}")
            raise Exit(1) from None
        except RpcError as exc:
            error(prog, f"Unable to allocate resources: {exc.message}")
            raise Exit(1) from None
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if state["state"] != "RUNNING":
        if queued:
            info(prog, "Job has been cancelled")
        error(prog, "Unable to allocate resources: Job/step already completing or completed")
        raise Exit(1)
    return state


def _granted(prog: str, client: Any, job_id: int, state: dict[str, Any]) -> dict[str, Any]:
    info(prog, f"Granted job allocation {job_id}")
    if state.get("ready", True):
        return state
    info(prog, "Waiting for resource configuration")
    while state["state"] == "RUNNING" and not state.get("ready", True):
        state = client.call("alloc_wait", {"job_id": job_id, "timeout": LONG_POLL})
    if state["state"] != "RUNNING":
        info(prog, f"Job allocation {job_id} has been revoked.")
        raise Exit(1)
    info(prog, f"Nodes {state['nodes']} are ready for job")
    return state


def relinquish(client: Any, job_id: int, exit_code: int, sig: int) -> bool:
    """End the allocation with the command's result; False if it had already ended."""
    from orchestrator.scheduler.protocol import RpcError

    try:
        client.call("alloc_complete", {"job_id": job_id, "exit_code": exit_code, "signal": sig})
    except RpcError as exc:
        log.debug("alloc_complete for %d: %s", job_id, exc)
        return False
    return True


def which(cmd: str, path: str, cwd: str) -> str | None:
    """srun(1) EXECUTABLE PATH RESOLUTION: ./x and a/b from the working directory, else PATH, else cwd."""
    if cmd.startswith("/"):
        return cmd
    if "/" in cmd:
        return os.path.normpath(os.path.join(cwd, cmd))
    for d in path.split(":"):
        full = os.path.join(d or ".", cmd)
        if os.path.isfile(full) and os.access(full, os.X_OK):
            return full if full.startswith("/") else os.path.join(cwd, full)
    here = os.path.join(cwd, cmd)
    if os.path.isfile(here) and os.access(here, os.X_OK):
        return here
    return None
