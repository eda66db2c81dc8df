"""``salloc``: get an allocation, run a command (or the user's shell) in it, give it back.

The command runs here, on the submitting host, with the allocation's SLURM_*
variables; srun inside it starts steps in the allocation. Like Slurm's salloc,
an interactive command gets the terminal's foreground, and the command is sent
SIGHUP (interactive) or SIGTERM when the allocation is revoked under it (time
limit, scancel).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from typing import Any

from orchestrator.commands._common import Exit, error, run
from orchestrator.lazylog import get_logger

log = get_logger(__name__)

PROG = "salloc"

# salloc(1) INPUT ENVIRONMENT VARIABLES -> option key
ENV_OPTIONS: dict[str, str] = {
    "SALLOC_ACCOUNT": "A", "SALLOC_CONSTRAINT": "C", "SALLOC_CLUSTERS": "M", "SLURM_CLUSTERS": "M",
    "SALLOC_EXCLUSIVE": "exclusive", "SALLOC_GPUS": "G", "SALLOC_GPUS_PER_NODE": "gpus-per-node",
    "SALLOC_GPUS_PER_TASK": "gpus-per-task", "SALLOC_GRES": "gres", "SALLOC_IMMEDIATE": "I",
    "SALLOC_MEM_PER_CPU": "mem-per-cpu", "SALLOC_MEM_PER_NODE": "mem", "SALLOC_NO_KILL": "k",
    "SALLOC_OVERCOMMIT": "O", "SALLOC_PARTITION": "p", "SALLOC_QOS": "q", "SALLOC_SIGNAL": "signal",
    "SALLOC_TIMELIMIT": "t", "SALLOC_WAIT_ALL_NODES": "wait-all-nodes",
}

# what salloc puts in its command's environment (env_array_for_job), of the job's variables
_JOB_VARS = ("SLURM_JOB_ID", "SLURM_JOBID", "SLURM_JOB_NAME", "SLURM_JOB_NODELIST", "SLURM_NODELIST",
             "SLURM_JOB_NUM_NODES", "SLURM_NNODES", "SLURM_JOB_PARTITION", "SLURM_JOB_ACCOUNT", "SLURM_JOB_QOS",
             "SLURM_JOB_CPUS_PER_NODE", "SLURM_TASKS_PER_NODE", "SLURM_NTASKS", "SLURM_NPROCS",
             "SLURM_NTASKS_PER_NODE", "SLURM_CPUS_PER_TASK", "SLURM_CLUSTER_NAME", "SLURM_JOB_GPUS",
             "SLURM_GPUS_ON_NODE")
# ... and the memory ones only for the option that was given (a partition's default is not exported)
_MEM_VARS = {"mem-per-cpu": "SLURM_MEM_PER_CPU", "mem": "SLURM_MEM_PER_NODE"}


def main(argv: list[str] | None = None) -> int:
    return run(PROG, lambda: _main(list(sys.argv[1:] if argv is None else argv)))


def info(text: str) -> None:
    from orchestrator.commands._alloc import info as _info

    _info(PROG, text)


def _parse(argv: list[str]) -> tuple[Any, list[str]]:
    from orchestrator.commands._alloc import parse_cli
    from orchestrator.slurm.options import JobOptions, OptionValueError

    cli, positionals = parse_cli(PROG, argv, "Usage: salloc [OPTIONS(0)...] [ : [OPTIONS(N)...]] "
                                             "[command(0) [args(0)...]]\n")
    o = JobOptions(command=PROG)
    try:
        for var, key in ENV_OPTIONS.items():
            value = os.environ.get(var)
            if value is None:
                continue
            if key in ("I", "O", "exclusive", "k") and value.lower() in ("0", "no", "false"):
                continue
            o.apply(key, value if key not in ("O",) else None, by_env=True)
        for key, value in cli:
            o.apply(key, value)
        o.validate()
        if o.verbose:
            from orchestrator.slurm.options import defined_options

            sys.stderr.write("".join(f"{PROG}: {line}\n" for line in defined_options(o, os.getcwd())))
    except OptionValueError as exc:
        error(PROG, exc.message)
        raise Exit(exc.exit_code) from None
    if o.quiet:
        from orchestrator.commands import _alloc

        _alloc.QUIET = True
    if o.nodes_set and o.ntasks_set and 0 < o.ntasks < o.min_nodes:
        info(f"Warning: can't run {o.ntasks} processes on {o.min_nodes} nodes, setting nnodes to {o.ntasks}")
        o.min_nodes = o.ntasks
    return o, positionals


def _shell() -> list[str]:
    import pwd

    try:
        shell = pwd.getpwuid(os.getuid()).pw_shell
    except KeyError:
        shell = ""
    return [shell or os.environ.get("SHELL") or "/bin/sh"]


def _main(argv: list[str]) -> int:
    o, command = _parse(argv)
    if "no-shell" in o.extra:
        command = []
    elif not command:
        command = _shell()
    from orchestrator.commands import _alloc
    from orchestrator.commands._common import make_client, resolve_clusters
    from orchestrator.scheduler.protocol import RpcError

    try:
        client = make_client(resolve_clusters(PROG, o.clusters)[0] if o.clusters else None)
    except RpcError as exc:
        error(PROG, exc.message)
        raise Exit(1) from None
    cwd = os.getcwd()
    if o.work_dir:
        try:
            os.chdir(o.work_dir)
        except OSError as exc:
            error(PROG, f"chdir({o.work_dir}): {exc.strerror}")
            raise Exit(1) from None
        cwd = o.work_dir
    job = o.job(cwd=cwd, submit_host=socket.gethostname().split(".")[0],
                command_path=command[0] if command else "")
    job["batch"] = False
    job.pop("export", None)
    if o.name is None:
        job["name"] = ""  # the controller names allocations "interactive", as Slurm does
    job_id = _alloc.request_allocation(PROG, client, job, command)
    state = _alloc.wait_allocation(PROG, client, job_id, pending_line=True, immediate="I" in o.extra,
                                   granted_lines=True)
    if not command:  # --no-shell: the allocation stays until it is cancelled or ends
        return 0
    found = _alloc.which(command[0], os.environ.get("PATH", os.defpath), cwd)
    if found is None:
        error(PROG, f'_fork_command: Unable to find command "{command[0]}"')
        info(f"Relinquishing job allocation {job_id}")
        _alloc.relinquish(client, job_id, 1, 0)
        return 1
    env = dict(os.environ)
    job_env = state.get("env") or {}
    for key in _JOB_VARS:
        if key in job_env:
            env[key] = job_env[key]
    for opt, key in _MEM_VARS.items():
        if (opt in o.cli_keys or opt in o.env_keys) and key in job_env:
            env[key] = job_env[key]
    env["SLURM_SUBMIT_DIR"] = cwd
    env["SLURM_SUBMIT_HOST"] = socket.gethostname().split(".")[0]
    env.setdefault("SLURM_NODE_ALIASES", "(null)")
    return _run_command(client, job_id, command, env, state)


def _run_command(client: Any, job_id: int, command: list[str], env: dict[str, str], state: dict[str, Any]) -> int:
    from orchestrator.commands import _alloc

    interactive = os.isatty(0) and os.getpgrp() == _tcgetpgrp()
    ignored = (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGUSR1,
               signal.SIGUSR2, signal.SIGALRM, signal.SIGPIPE)
    old = {s: signal.signal(s, signal.SIG_IGN) for s in ignored}
    pid = os.fork()
    if pid == 0:
        try:
            os.setpgid(0, 0)
            if interactive:
                os.tcsetpgrp(0, os.getpgrp())  # SIGTTOU is still ignored here
            for s, h in old.items():
                signal.signal(s, h)
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
            os.execvpe(command[0], command, env)
        except OSError as exc:
            what = "find" if exc.errno == 2 else "exec"
            detail = "" if exc.errno == 2 else f": {exc.strerror}"
            sys.stderr.write(f'{PROG}: error: _fork_command: Unable to {what} command "{command[0]}"{detail}\n')
            os._exit(1)
        os._exit(127)
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass
    if interactive:
        try:
            os.tcsetpgrp(0, pid)
        except OSError:
            pass
    revoked = threading.Event()

    def watch() -> None:
        from orchestrator.commands._alloc import LONG_POLL
        from orchestrator.commands._common import make_client
        from orchestrator.scheduler.protocol import RpcError

        watcher = make_client()
        while not revoked.is_set():
            try:
                st = watcher.call("alloc_wait", {"job_id": job_id, "until": "end", "timeout": LONG_POLL})
            except RpcError:
                if revoked.wait(5):
                    return
                continue
            if st["state"] in ("PENDING", "RUNNING", "COMPLETING", "SUSPENDED") or revoked.is_set():
                continue
            revoked.set()
            if st["state"] == "TIMEOUT":
                info(f"Job {job_id} has exceeded its time limit and its allocation has been revoked.")
            else:
                info(f"Job allocation {job_id} has been revoked.")
            sig = signal.SIGHUP if interactive else signal.SIGTERM
            try:
                os.killpg(pid, signal.SIGCONT)
                os.killpg(pid, sig)
            except OSError:
                pass
            return

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    old_hup = signal.signal(signal.SIGHUP, lambda s, f: _forward(pid, s))
    old_term = signal.signal(signal.SIGTERM, lambda s, f: _forward(pid, s))
    status = 0
    while True:
        try:
            _, status = os.waitpid(pid, os.WUNTRACED)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if os.WIFSTOPPED(status):
            continue
        break
    if interactive:
        try:
            os.tcsetpgrp(0, os.getpgrp())
        except OSError:
            pass
    for s, h in ((signal.SIGHUP, old_hup), (signal.SIGTERM, old_term), *old.items()):
        signal.signal(s, h)
    rc = 1
    code, sig = 0, 0
    if os.WIFEXITED(status):
        rc = code = os.WEXITSTATUS(status)
    elif os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        rc = 0 if sig in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGKILL) else 1
    if not revoked.is_set():
        revoked.set()
        info(f"Relinquishing job allocation {job_id}")
        _alloc.relinquish(client, job_id, code, sig)
    del state
    return rc


def _forward(pid: int, signo: int) -> None:
    try:
        os.killpg(pid, signo)
    except OSError:
        pass


def _tcgetpgrp() -> int:
    try:
        return os.tcgetpgrp(0)
    except OSError:
        return -1
