"""``srun``: run a job step, inside an allocation or in one of its own.

Slurm's flow: inside an allocation (``SLURM_JOB_ID`` or ``--jobid``) srun asks the
controller for a step, connects to every node of the step and relays the tasks'
I/O and exit statuses; outside one it first gets an allocation (as salloc does)
and gives it back when the step is over. Option and environment handling follow
srun's opt.c, so node and task counts come out as Slurm computes them.

Start-up time matters (MPI launchers and workflow tools call srun in loops), so
only the standard library's light modules are imported here.
"""

from __future__ import annotations

# the C cores of signal, socket and struct, and select.epoll for selectors: their Python
# packages (with enum, typing and re behind them) cost every srun ~10 ms of start-up
import _signal as signal
import _socket as socket
import _struct as struct
import os
import select
import sys
import time

from orchestrator.commands._common import Exit, error, run
from orchestrator.lazylog import get_logger
from orchestrator.scheduler.protocol import dumps, loads

TYPE_CHECKING = False  # importing typing costs a user command milliseconds
if TYPE_CHECKING:
    from typing import Any

log = get_logger(__name__)

PROG = "srun"

# srun's input environment variables (srun(1) INPUT ENVIRONMENT VARIABLES) -> option key
ENV_OPTIONS: dict[str, str] = {
    "SLURM_ACCOUNT": "A", "SLURM_CONSTRAINT": "C", "SRUN_CPUS_PER_TASK": "c", "SLURM_CPU_BIND": "cpu-bind",
    "SLURM_DEPENDENCY": "d", "SLURM_DISABLE_STATUS": "X", "SLURM_DISTRIBUTION": "m", "SLURM_EXACT": "exact",
    "SLURM_EXCLUSIVE": "exclusive", "SLURM_EXPORT_ENV": "export", "SRUN_EXPORT_ENV": "export",
    "SLURM_GPUS": "G", "SLURM_GPUS_PER_NODE": "gpus-per-node", "SLURM_GPUS_PER_TASK": "gpus-per-task",
    "SLURM_GRES": "gres", "SLURM_JOB_ID": "jobid", "SLURM_JOB_NAME": "J", "SLURM_JOB_NUM_NODES": "N",
    "SLURM_KILL_BAD_EXIT": "K", "SLURM_LABELIO": "l", "SLURM_MEM_PER_CPU": "mem-per-cpu",
    "SLURM_MEM_PER_NODE": "mem", "SLURM_MPI_TYPE": "mpi", "SLURM_NO_KILL": "k", "SLURM_NPROCS": "n",
    "SLURM_NTASKS": "n", "SLURM_NTASKS_PER_NODE": "ntasks-per-node", "SLURM_OPEN_MODE": "open-mode",
    "SLURM_OVERCOMMIT": "O", "SLURM_OVERLAP": "overlap", "SLURM_PARTITION": "p", "SLURM_QOS": "q",
    "SLURM_REMOTE_CWD": "D", "SLURM_SIGNAL": "signal", "SLURM_STDERRMODE": "e", "SLURM_STDINMODE": "i",
    "SLURM_STDOUTMODE": "o", "SLURM_TIMELIMIT": "t", "SLURM_UNBUFFEREDIO": "u", "SLURM_WAIT": "W",
    "SLURM_WORKING_DIR": "D", "SLURM_DEBUG": "v",
}
# (applied in this order: SLURM_NTASKS overrides SLURM_NPROCS, SRUN_EXPORT_ENV overrides SLURM_EXPORT_ENV)

_FWD_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)
_END_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
_HDR = struct.Struct(">II")


def main(argv: list[str] | None = None) -> int:
    return run(PROG, lambda: _main(list(sys.argv[1:] if argv is None else argv)))


def info(text: str) -> None:
    from orchestrator.commands._alloc import info as _info

    _info(PROG, text)


# ---------------------------------------------------------------------------------------------- options

class Options:
    """srun's view of its options once environment and command line are merged."""

    def __init__(self, job: Any, extra: dict[str, str | None], cli: set[str]) -> None:
        self.job = job  # orchestrator.slurm.options.JobOptions
        self.extra = extra
        self.cli = cli
        self.label = "l" in extra
        self.unbuffered = "u" in extra
        self.pty = "pty" in extra
        self.kill_bad_exit = "K" in extra and (extra["K"] or "1") != "0"
        self.overlap = "overlap" in extra
        self.exact = "exact" in extra or job.exclusive
        self.disable_status = "X" in extra
        self.quit_on_interrupt = "quit-on-interrupt" in extra
        self.immediate = "I" in extra
        self.preserve_env = "E" in extra
        self.jobid = extra.get("jobid") or ""
        self.attach = "jobid" in cli
        self.cpu_bind = extra.get("cpu-bind") or ""
        self.mpi = extra.get("mpi") or ""
        self.max_wait = 0  # -W: seconds the other tasks may run on after the first one exits


def _parse(argv: list[str]) -> tuple[Options, list[str]]:
    from orchestrator.commands._alloc import parse_cli
    from orchestrator.slurm.options import JobOptions, OptionValueError

    cli, positionals = parse_cli(PROG, argv, SRUN_USAGE)
    o = JobOptions(command=PROG)
    env = os.environ
    try:
        in_alloc = "SLURM_JOB_ID" in env
        for var, key in ENV_OPTIONS.items():
            value = env.get(var)
            if value is None or (var == "SLURM_JOB_NAME" and in_alloc):
                continue  # inside an allocation the job's name is not each step's name
            if key in ("l", "u", "X", "O", "exact", "overlap"):
                if value.lower() in ("0", "no", "false"):
                    continue
                o.apply(key, None, by_env=True)
            elif key == "K":
                o.apply(key, value if value in ("0", "1") else "1", by_env=True)
            else:
                o.apply(key, value, by_env=True)
        for key, value in cli:
            o.apply(key, value)
        o.validate()
        if o.verbose:
            from orchestrator.slurm.options import defined_options

            sys.stderr.write("".join(f"{PROG}: {line}\n" for line in defined_options(o, os.getcwd())))
    except OptionValueError as exc:
        error(PROG, exc.message)
        raise Exit(exc.exit_code) from None
    extra = dict(o.extra)
    mpi = extra.get("mpi") or "" if "mpi" in extra else None
    if mpi == "list":
        sys.stdout.write("MPI plugin types are...\n\tnone\n\tpmi2\n\tcray_shasta\n")
        raise Exit(0)
    if mpi is not None and mpi not in ("none", "pmi2", "cray_shasta"):
        for line in (f"Couldn't find the specified plugin name for mpi/{mpi} looking at all files",
                     f"cannot find mpi plugin for mpi/{mpi}", f"MPI: Cannot create context for mpi/{mpi}",
                     "MPI: Unable to load any plugin", f"Invalid MPI type '{mpi}', --mpi=list for acceptable types"):
            error(PROG, line)
        raise Exit(1)
    if o.exclusive and "overlap" in o.cli_keys and "exclusive" in o.cli_keys:
        error(PROG, "--exclusive and --overlap are mutually exclusive")
        raise Exit(1)
    if extra.get("cpu-bind"):
        _check_cpu_bind(extra["cpu-bind"] or "")
    if o.quiet:
        from orchestrator.commands import _alloc

        _alloc.QUIET = True
    opts = Options(o, extra, set(o.cli_keys))
    waits = [v for k, v in cli if k == "W"] or ([env["SLURM_WAIT"]] if "SLURM_WAIT" in env else [])
    if waits:
        from orchestrator.slurm.options import parse_int

        try:
            opts.max_wait = parse_int("--wait", waits[-1], positive=False)
        except OptionValueError as exc:
            error(PROG, exc.message)
            raise Exit(1) from None
    if opts.pty and any(k in o.cli_keys for k in ("o", "e", "i")):
        error(PROG, "--error/--input/--output are incompatible with --pty")
        raise Exit(1)
    if opts.pty:
        opts.unbuffered = True
    return opts, positionals


def _check_cpu_bind(value: str) -> None:
    """Reject a --cpu-bind value srun would not parse, with its words and exit status."""
    from orchestrator.slurm.cpubind import check

    bad = check(value)
    if bad:
        error(PROG, bad)
        sys.stderr.write(f"{PROG}: fatal: Failed to parse --cpu-bind= values.\n")
        raise Exit(1)


SRUN_USAGE = ("Usage: srun [OPTIONS(0)... [executable(0) [args(0)...]]] [ : [OPTIONS(N)...]] "
              "executable(N) [args(N)...]\n")


def _massage(opts: Options, job_nodes: int | None) -> None:
    """srun's node/task arithmetic (opt.c ``_opt_verify``), with its warnings."""
    o = opts.job
    cli_nodes = "N" in o.cli_keys
    if o.req_nodes:
        from orchestrator.slurm.hostlist import HostlistError, expand

        try:
            count = len(set(expand(o.req_nodes)))
        except HostlistError:
            # as slurmctld answers an unparsable node list: a step cannot be placed, a job is refused
            if opts.jobid:
                error(PROG, f"Unable to create step for job {opts.jobid.split('.')[0]}: "
                            "Requested node configuration is not available")
            else:
                error(PROG, "Unable to allocate resources: Invalid node name specified")
            raise Exit(1) from None
        o.min_nodes = max(count, o.min_nodes) if cli_nodes else count
        if not cli_nodes:
            o.max_nodes = 0
        o.nodes_set = True
    if o.nodes_set and (o.min_nodes == o.max_nodes or o.max_nodes == 0) and not o.ntasks_set:
        o.ntasks = o.min_nodes
        if o.ntasks_per_node:
            o.ntasks *= o.ntasks_per_node
            o.ntasks_set = True
    elif o.nodes_set and o.ntasks_set:
        if o.ntasks < o.max_nodes:
            o.max_nodes = o.ntasks
        if 0 < o.ntasks < o.min_nodes:
            info(f"Warning: can't run {o.ntasks} processes on {o.min_nodes} nodes, setting nnodes to {o.ntasks}")
            o.min_nodes = o.ntasks
            if o.max_nodes and o.min_nodes > o.max_nodes:
                o.max_nodes = o.min_nodes
        if o.ntasks_per_node and o.min_nodes and o.ntasks_per_node != o.ntasks // o.min_nodes:
            if o.ntasks > o.ntasks_per_node:
                info(f"Warning: can't honor --ntasks-per-node set to {o.ntasks_per_node} which doesn't match the "
                     f"requested tasks {o.ntasks} with the number of requested nodes {o.min_nodes}. Ignoring "
                     "--ntasks-per-node.")
            o.ntasks_per_node = 0
    if o.ntasks_per_node and not o.ntasks_set:
        o.ntasks = o.min_nodes * o.ntasks_per_node
        o.ntasks_set = True
    if job_nodes is not None and o.nodes_set and o.min_nodes > job_nodes:
        error(PROG, f"Only allocated {job_nodes} nodes asked for {o.min_nodes}")
        raise Exit(1)


# ---------------------------------------------------------------------------------------------- environment

def _task_env(opts: Options) -> dict[str, str]:
    """The environment the tasks start from (``--export``)."""
    spec = opts.job.export or "ALL"
    items = [x for x in spec.split(",") if x]
    base = dict(os.environ)
    upper = [x.upper() for x in items]
    env = base if "ALL" in upper else {k: v for k, v in base.items() if k.startswith("SLURM_")}
    for item in items:
        if item.upper() in ("ALL", "NONE", "NIL"):
            continue
        name, eq, value = item.partition("=")
        if eq:
            env[name] = value
        elif name in base:
            env[name] = base[name]
    return env


def distribution_env(spec: str, ntasks: int, nnodes: int, mem_known: bool) -> dict[str, str]:
    """SLURM_DISTRIBUTION (and SLURM_DIST_PLANESIZE) as srun sets them for its tasks.

    -m is passed on as given (plane=N as ``plane`` and its size). Without it srun picks cyclic when
    there are no more tasks than nodes, else block, but leaves it unknown (unset) when the step's
    memory is unknown or zero: srun's own allocation with no --mem/--mem-per-cpu, or --mem=0
    (22.05 side by side: ``srun -n1`` unset, ``srun -n1 --mem=100`` cyclic).
    """
    if spec:
        base, _, _pack = spec.partition(",")
        if base.lower().startswith("plane="):
            return {"SLURM_DISTRIBUTION": "plane", "SLURM_DIST_PLANESIZE": base[6:]}
        return {"SLURM_DISTRIBUTION": base}
    if not mem_known:
        return {}
    return {"SLURM_DISTRIBUTION": "cyclic" if ntasks <= nnodes else "block"}


def _mem_known(o: Any, in_job: bool) -> bool:
    """Whether srun's step has a memory size: one given (not 0), or the allocation's (inside one)."""
    if any(k in o.cli_keys or k in o.env_keys for k in ("mem", "mem-per-cpu", "mem-per-gpu")):
        return bool(o.mem_per_cpu or o.mem_per_node)
    return in_job


# ---------------------------------------------------------------------------------------------- I/O layout

def _io_mode(spec: str, ntasks: int) -> tuple[str, int]:
    """srun's fname_create: ("all"|"none"|"one"|"file", task)."""
    if not spec or spec.lower().startswith("all") or spec.startswith("-"):
        return "all", -1
    if spec.lower() == "none":
        return "none", -1
    if spec.isdigit() and int(spec) < ntasks:
        return "one", int(spec)
    return "file", -1


def _check_stdin_file(opts: Options, cwd: str) -> None:
    """-i with a plain file name: srun opens it itself (to send to every task), so a missing one stops it."""
    o = opts.job
    spec = o.std_in if "i" in o.cli_keys or "i" in o.env_keys else ""
    if not spec or "%" in spec or _io_mode(spec, max(1, o.ntasks))[0] != "file":
        return
    try:
        os.close(os.open(os.path.join(cwd, spec), os.O_RDONLY))
    except OSError as exc:
        error(PROG, f"Could not open stdin file: {os.strerror(exc.errno or 0)}")
        raise Exit(1) from None


def _user() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def _plan_io(opts: Options, reply: dict[str, Any], cwd: str) -> tuple[dict[str, dict[str, list[str]]],
                                                                               dict[str, list[str]], bool]:
    """Per node: task -> [stdout, stderr, stdin] ("" streams through srun), files to truncate, node 0 first."""
    o = opts.job
    ntasks = int(reply["ntasks"])
    job = reply["job"]
    step_id = int(reply["step_id"])
    out_spec = o.std_out
    err_spec = o.std_err if o.std_err else out_spec
    in_spec = o.std_in if "i" in o.cli_keys or "i" in o.env_keys else ""
    if in_spec == "/dev/null" and "i" not in o.cli_keys and "i" not in o.env_keys:
        in_spec = ""
    modes = [_io_mode(s, ntasks) for s in (out_spec, err_spec, in_spec)]
    specs = (out_spec, err_spec, in_spec)
    append = o.open_mode == "append"
    out: dict[str, dict[str, list[str]]] = {}
    trunc: dict[str, list[str]] = {}
    shared: set[str] = set()
    first = reply["nodes"][0]
    for index, node in enumerate(reply["nodes"]):
        per: dict[str, list[str]] = {}
        for gtid in reply["tasks"][node]:
            row: list[str] = []
            for which, ((mode, one), spec) in enumerate(zip(modes, specs, strict=True)):
                if opts.pty:
                    row.append("" if gtid == 0 else "/dev/null")
                    continue
                if mode == "all":
                    row.append("")
                elif mode == "none":
                    row.append("/dev/null")
                elif mode == "one":
                    row.append("" if gtid == one else "/dev/null")
                else:
                    from orchestrator.slurm import patterns

                    path = patterns.expand(spec, job_id=int(job["job_id"]),
                                           array_job_id=int(job.get("array_job_id") or 0),
                                           array_task_id=job.get("array_task_id"), user=_user(),
                                           job_name=str(job.get("name") or ""), node=node, node_index=index,
                                           step_id=step_id, task_id=gtid)
                    if not path.startswith("/"):
                        path = os.path.join(cwd, path)
                    row.append(path)
                    if which < 2 and not append and path != "/dev/null":
                        node_free = not any(t in spec for t in ("%N", "%n", "%t"))
                        if node_free and len(reply["nodes"]) > 1:
                            shared.add(path)
                            target = first
                        else:
                            target = node
                        lst = trunc.setdefault(target, [])
                        if path not in lst:
                            lst.append(path)
            per[str(gtid)] = row
        out[node] = per
    return out, trunc, bool(shared)


# ---------------------------------------------------------------------------------------------- main

def _main(argv: list[str]) -> int:
    opts, command = _parse(argv)
    if not command:
        sys.stderr.write(f"{PROG}: fatal: No command given to execute.\n")
        raise Exit(1)
    from orchestrator.commands._common import make_client, resolve_clusters
    from orchestrator.scheduler.protocol import RpcError

    o = opts.job
    try:
        client = make_client(resolve_clusters(PROG, o.clusters)[0] if o.clusters else None)
    except RpcError as exc:
        error(PROG, exc.message)
        raise Exit(1) from None
    cwd = o.work_dir or os.getcwd()
    in_job = bool(opts.jobid)
    job_nodes = None
    if in_job and not opts.attach:
        nn = os.environ.get("SLURM_JOB_NUM_NODES") or os.environ.get("SLURM_NNODES")
        job_nodes = int(nn) if nn and nn.isdigit() else None
    _massage(opts, job_nodes)
    _check_stdin_file(opts, cwd)
    env = _task_env(opts)
    from orchestrator.commands._alloc import which

    # the tasks' PATH, not srun's: with --export=NONE there is none and a bare name fails in execve()
    command = [which(command[0], env.get("PATH", ""), cwd) or command[0], *command[1:]]
    name = o.name if o.name else os.path.basename(command[0])
    own_alloc = False
    if in_job:
        try:
            job_id = int(opts.jobid.split(".")[0].split("_")[0])
        except ValueError:
            error(PROG, f"Invalid job id specified: {opts.jobid}")
            raise Exit(1) from None
        if opts.attach and "overlap" not in o.cli_keys and not o.exclusive and "exact" not in o.cli_keys:
            opts.overlap = True  # attaching to a running job shares its CPUs
    else:
        from orchestrator.commands import _alloc

        job = o.job(cwd=cwd, submit_host=socket.gethostname().split(".")[0], command_path=command[0])
        job["batch"] = False
        job["name"] = name
        job.pop("export", None)
        job_id = _alloc.request_allocation(PROG, client, job, command)
        own_alloc = True
        _alloc.wait_allocation(PROG, client, job_id, pending_line=False, immediate=opts.immediate)
    rc = 1
    try:
        reply = _create_step(opts, client, job_id, name, in_job)
        runner = StepRunner(opts, client, job_id, reply, command, env, cwd, in_job)
        rc = runner.run()
    finally:
        if own_alloc:
            from orchestrator.commands import _alloc

            code, sig = (rc, 0) if rc < 128 or rc == 253 else (0, rc - 128)
            _alloc.relinquish(client, job_id, code, sig)
    return rc


def _create_step(opts: Options, client: Any, job_id: int, name: str, in_job: bool) -> dict[str, Any]:
    from orchestrator.scheduler.protocol import RpcError

    o = opts.job
    body = {"job_id": job_id, "ntasks": o.ntasks, "ntasks_set": o.ntasks_set, "min_nodes": o.min_nodes,
            "nodes_set": o.nodes_set, "ntasks_per_node": o.ntasks_per_node, "cpus_per_task": o.cpus_per_task,
            "nodelist": o.req_nodes, "exclude": o.exc_nodes, "overcommit": o.overcommit, "exact": opts.exact,
            "overlap": opts.overlap, "distribution": o.distribution, "name": name, "cpu_bind": opts.cpu_bind,
            "srun_host": socket.gethostname().split(".")[0], "srun_pid": os.getpid(), "pty": opts.pty}
    waiting = False
    delay = 0.1
    interrupted: list[int] = []

    def on_signal(signo: int, _frame: Any) -> None:
        interrupted.append(signo)

    while True:
        try:
            reply: dict[str, Any] = client.call("step_create", body)
        except RpcError as exc:
            if exc.code == "ESLURM_NODES_BUSY":
                if not waiting:
                    info(f"Job {job_id} step creation temporarily disabled, retrying ({exc.message})")
                    waiting = True
                    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, *_END_SIGNALS)}
                time.sleep(delay)
                delay = min(delay * 1.5, 1.0)
                if interrupted:
                    info(f"Cancelled pending job step with signal {interrupted[0]}")
                    raise Exit(1) from None
                continue
            if exc.code in ("ESLURM_INVALID_JOB_ID", "ESLURM_JOB_PENDING") and in_job:
                error(PROG, f"Unable to confirm allocation for job {job_id}: {exc.message}")
                info(f"Check SLURM_JOB_ID environment variable. Expired or invalid job {job_id}")
            elif exc.code == "ESLURM_ALREADY_DONE" and in_job and not waiting:
                error(PROG, f"Slurm job {job_id} has expired")
                info(f"Check SLURM_JOB_ID environment variable. Expired or invalid job {job_id}")
            else:
                error(PROG, f"Unable to create step for job {job_id}: {exc.message}")
            raise Exit(1) from None
        if waiting:
            for s, h in old.items():
                signal.signal(s, h)
            info(f"Step created for job {job_id}")
        return reply


# ---------------------------------------------------------------------------------------------- the step

def _task_list(ids: list[int]) -> str:
    """Slurm's bit_fmt of task ids (``0-3,7``): the array range form."""
    from orchestrator.slurm.arrays import format_ranges

    return format_ranges(ids)


class _Node:
    def __init__(self, name: str, index: int, sock: socket.socket) -> None:
        self.name = name
        self.index = index
        self.sock = sock
        self.buf = bytearray()
        self.done = False
        self.replied = False


class StepRunner:
    """Launch the step on its nodes and relay I/O, signals and exit statuses until it ends."""

    def __init__(self, opts: Options, client: Any, job_id: int, reply: dict[str, Any], command: list[str],
                 env: dict[str, str], cwd: str, in_job: bool) -> None:
        self.opts = opts
        self.client = client
        self.job_id = job_id
        self.reply = reply
        self.step_id = int(reply["step_id"])
        self.command = command
        self.cwd = cwd
        self.ntasks = int(reply["ntasks"])
        self.width = len(str(max(0, self.ntasks - 1)))
        self.nodes: list[_Node] = []
        self.sel = _Poller()
        self.status: dict[int, int] = {}
        self.oom: set[int] = set()
        self.partial: dict[tuple[int, int], bytes] = {}
        self.aborted = ""  # why the node said the step is ending
        self.force_terminated = False  # srun itself forced the end (Ctrl-C twice, SIGTERM)
        self.terminating = False  # --kill-on-bad-exit ended the step
        self.cancelled = False  # Ctrl-C twice: tasks killed by signals are not reported
        self.wait_deadline = 0.0
        self.last_intr = 0.0
        self.intr_count = 0
        self.stdin_open = False
        self.stdin_targets: list[_Node] = []
        self.saved_tty: Any = None
        self.kill_wait = int(reply.get("kill_wait", 30))
        # srun's message port (SLURM_SRUN_COMM_PORT): nothing is sent to it here (the step's traffic runs on
        # the connections srun opens to the nodes), but it is a real listener, as tools may check
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("", 0))
        self.listener.listen(8)
        self.listener.setblocking(False)
        self.env = self._env(env, in_job)

    @property
    def step_label(self) -> str:
        return f"StepId={self.job_id}.{self.step_id}"

    def _env(self, base: dict[str, str], in_job: bool) -> dict[str, str]:
        r = self.reply
        env = dict(base)
        job_vars = dict(r.get("env") or {})
        if not in_job:
            # srun's own allocation: slurmstepd does not add the job's memory (real srun's tasks lack it)
            for var in ("SLURM_MEM_PER_CPU", "SLURM_MEM_PER_NODE"):
                job_vars.pop(var, None)
        if not in_job or env.get("SLURM_JOB_ID") != str(self.job_id):
            env.update(job_vars)
        else:  # inside salloc: what slurmstepd adds to every task's environment, and srun's working cluster
            for var in ("SLURM_JOB_UID", "SLURM_JOB_USER", "SLURM_JOB_GID", "SLURM_PRIO_PROCESS",
                        "SLURM_WORKING_CLUSTER"):
                if var in job_vars:
                    env.setdefault(var, job_vars[var])
        if self.opts.label:
            env["SLURM_LABELIO"] = "1"
        nodes = r["nodelist"]
        env.update({
            "SLURM_STEP_ID": str(self.step_id), "SLURM_STEPID": str(self.step_id),
            "SLURM_STEP_NODELIST": nodes, "SLURM_STEP_NUM_NODES": str(len(r["nodes"])),
            "SLURM_STEP_NUM_TASKS": str(self.ntasks), "SLURM_STEP_TASKS_PER_NODE": r["tasks_per_node"],
            "SLURM_SRUN_COMM_PORT": str(self.listener.getsockname()[1]),
            "SLURM_STEP_LAUNCHER_PORT": str(self.listener.getsockname()[1]),
        })
        # (SLURM_SRUN_COMM_HOST and SLURM_LAUNCH_NODE_IPADDR are per node: the address each node is reached from)
        for var in ("SLURM_DISTRIBUTION", "SLURM_DIST_PLANESIZE"):
            env.pop(var, None)
        env.update(distribution_env(self.opts.job.distribution, self.ntasks, len(r["nodes"]),
                                    _mem_known(self.opts.job, in_job)))
        if in_job and "SLURM_JOB_CPUS_PER_NODE" in job_vars:
            # what srun sets from the allocation it joins (a heterogeneous job's component 0)
            env["SLURM_JOB_CPUS_PER_NODE_PACK_GROUP_0"] = job_vars["SLURM_JOB_CPUS_PER_NODE"]
        env.setdefault("SLURM_JOB_NODELIST", nodes)
        if not self.opts.preserve_env:
            env.update({"SLURM_NNODES": str(len(r["nodes"])), "SLURM_NTASKS": str(self.ntasks),
                        "SLURM_NPROCS": str(self.ntasks), "SLURM_TASKS_PER_NODE": r["tasks_per_node"]})
        o = self.opts.job
        if o.cpus_set:
            env["SLURM_CPUS_PER_TASK"] = str(o.cpus_per_task)
        mask = os.umask(0)
        os.umask(mask)
        self.umask = mask
        env["SLURM_UMASK"] = f"{mask:04o}"
        if self.opts.cpu_bind:
            env["SLURM_CPU_BIND"] = self.opts.cpu_bind
        return env

    # -- launch
    def _launch(self) -> None:
        from orchestrator.scheduler.client import open_tcp, signed_request
        from orchestrator.scheduler.protocol import ProtocolError, read_frame

        r = self.reply
        io, trunc, node0_first = _plan_io(self.opts, r, self.cwd)
        winsize = [24, 80]
        if self.opts.pty:
            winsize = _winsize()
        pending: list[_Node] = []
        failed: list[str] = []
        for index, name in enumerate(r["nodes"]):
            host, port = r["addrs"][name]
            try:
                sock = open_tcp((host, int(port)), 30.0)
                _keepalive(sock)
                here = sock.getsockname()[0]  # the address this node sees srun at
                env = {**self.env, "SLURM_LAUNCH_NODE_IPADDR": here, "SLURM_SRUN_COMM_HOST": here}
                body = {"job_id": self.job_id, "step_id": self.step_id, "node_index": index,
                        "tasks": r["tasks"][name], "argv": self.command, "env": env, "cwd": self.cwd,
                        "umask": self.umask, "cpus": r["cpus"][name], "pty": self.opts.pty, "winsize": winsize,
                        "io": io[name], "gpus": (r.get("gpus") or {}).get(name),
                        "cpu_ids": (r.get("cpu_ids") or {}).get(name) or [],
                        "cpus_per_task": self.opts.job.cpus_per_task, "truncate": trunc.get(name, [])}
                sock.sendall(signed_request("step_launch", body))
            except OSError as exc:
                log.debug("connect to %s failed: %s", name, exc)
                failed.append(name)
                continue
            node = _Node(name, index, sock)
            pending.append(node)
            if index == 0 and node0_first:
                self._await_reply(node, read_frame, ProtocolError, failed)
        for node in pending:
            if not node.done:
                self._await_reply(node, read_frame, ProtocolError, failed)
        for node in pending:
            if node.done:
                continue
            node.sock.settimeout(None)
            self.nodes.append(node)
            self.sel.register(node.sock, node)
        for name in failed:
            self._node_lost(name, report=True)

    def _await_reply(self, node: _Node, read_frame: Any, protocol_error: Any, failed: list[str]) -> None:
        if node.replied:
            return
        node.replied = True
        try:
            header, _raw = read_frame(node.sock)
        except (OSError, protocol_error, ValueError):
            node.done = True
            failed.append(node.name)
            return
        if not header.get("ok"):
            err = header.get("error") or {}
            error(PROG, f"Task launch for {self.step_label} failed on node {node.name}: "
                        f"{err.get('message', 'Unspecified error')}")
            node.done = True
            node.sock.close()
            failed.append(node.name)

    def _node_lost(self, name: str, report: bool) -> None:
        tasks = [int(t) for t in self.reply["tasks"][name] if int(t) not in self.status]
        if not tasks:
            return
        error(PROG, f"Node failure on {name}")
        for t in tasks:
            self.status[t] = signal.SIGKILL
        if report:
            try:
                self.client.call("step_complete", {"job_id": self.job_id, "step_id": self.step_id, "node": name,
                                                   "exit_code": 0, "signal": 9, "reason": "NODE_FAIL"})
            except Exception as exc:  # the controller may be gone too; nothing more to do
                log.debug("step_complete for lost node %s: %s", name, exc)

    # -- frames
    def _send(self, node: _Node, header: dict[str, Any], raw: bytes = b"") -> None:
        if node.done:
            return
        header["v"] = 1
        h = dumps(header).encode()
        try:
            node.sock.sendall(_HDR.pack(len(h), len(raw)) + h + raw)
        except OSError:
            pass

    def _send_all(self, header: dict[str, Any], raw: bytes = b"") -> None:
        for node in self.nodes:
            self._send(node, dict(header), raw)

    def _read(self, node: _Node) -> None:
        try:
            data = node.sock.recv(1 << 20)
        except OSError:
            data = b""
        if not data:
            self._close(node)
            if not node.done:
                node.done = True
                self._node_lost(node.name, report=True)
            return
        buf = node.buf
        buf += data
        while len(buf) >= 8:
            hlen, blen = _HDR.unpack_from(buf)
            end = 8 + hlen + blen
            if len(buf) < end:
                break
            try:
                header = loads(bytes(buf[8:8 + hlen]))
            except ValueError:
                header = {}
            raw = bytes(buf[8 + hlen:end])
            del buf[:end]
            self._frame(node, header, raw)

    def _close(self, node: _Node) -> None:
        try:
            self.sel.unregister(node.sock)
        except (KeyError, ValueError):
            pass
        node.sock.close()

    def _frame(self, node: _Node, header: dict[str, Any], raw: bytes) -> None:
        kind = header.get("t")
        if kind in ("o", "e"):
            self._output(int(header.get("k", 0)), 1 if kind == "o" else 2, raw)
        elif kind == "x":
            self._exited(node, [int(t) for t in header.get("k", [])], int(header.get("s", 0)),
                         bool(header.get("oom")))
        elif kind == "a":
            reason = str(header.get("r") or "")
            if not self.aborted:
                self.aborted = reason
                if reason != "OUT_OF_MEMORY":
                    info(f"Job step aborted: Waiting up to {self.kill_wait + 2} seconds for job step to finish.")
        elif kind == "d":
            node.done = True
            self._close(node)

    # -- output
    def _write(self, fd: int, data: bytes) -> None:
        while data:
            try:
                n = os.write(fd, data)
            except BlockingIOError:
                time.sleep(0.001)
                continue
            except BrokenPipeError:
                if not self.force_terminated:
                    self.force_terminated = True
                    self._send_all({"t": "k"})
                return
            except OSError:
                return
            data = data[n:]

    def _label(self, task: int) -> bytes:
        return f"{task:>{self.width}}: ".encode()

    def _output(self, task: int, fd: int, data: bytes) -> None:
        if self.opts.unbuffered and not self.opts.label:
            self._write(fd, data)
            return
        key = (task, fd)
        data = self.partial.pop(key, b"") + data
        cut = data.rfind(b"\n")
        if cut < 0:
            self.partial[key] = data
            return
        if cut + 1 < len(data):
            self.partial[key] = data[cut + 1:]
        lines = data[:cut + 1]
        if self.opts.label:
            label = self._label(task)
            lines = b"".join(label + line for line in lines.splitlines(keepends=True))
        self._write(fd, lines)

    def _flush_task(self, task: int) -> None:
        for fd in (1, 2):
            rest = self.partial.pop((task, fd), b"")
            if rest:
                self._write(fd, (self._label(task) if self.opts.label else b"") + rest)

    # -- task ends
    def _exited(self, node: _Node, tasks: list[int], status: int, oom: bool) -> None:
        if self.opts.max_wait and not self.wait_deadline:
            self.wait_deadline = time.monotonic() + self.opts.max_wait
        if self.saved_tty is not None and 0 in tasks:
            import termios

            termios.tcsetattr(0, termios.TCSADRAIN, self.saved_tty)
            self.saved_tty = None
        for t in tasks:
            self._flush_task(t)
            self.status[t] = status
            if oom:
                self.oom.add(t)
        plural = "tasks" if len(tasks) > 1 else "task"
        what = ""
        if oom:
            what = "Out Of Memory"
        elif os.WIFEXITED(status) and os.WEXITSTATUS(status):
            what = f"Exited with exit code {os.WEXITSTATUS(status)}"
        elif os.WIFSIGNALED(status) and not self.cancelled:
            what = signal.strsignal(os.WTERMSIG(status)) or f"Signal {os.WTERMSIG(status)}"
            if os.WCOREDUMP(status):
                what += " (core dumped)"
        if what:
            error(PROG, f"{node.name}: {plural} {_task_list(tasks)}: {what}")
        bad = status != 0
        if bad and self.opts.kill_bad_exit and not self.terminating and not self.force_terminated \
                and not self.aborted:
            self.terminating = True
            info(f"launch/slurm: _step_signal: Terminating {self.step_label}")
            self._send_all({"t": "k"})

    def exit_code(self) -> int:
        if self.oom:
            return 253
        code, sig = 0, 0
        for status in self.status.values():
            if os.WIFSIGNALED(status):
                sig = max(sig, os.WTERMSIG(status))
            elif os.WIFEXITED(status):
                code = max(code, os.WEXITSTATUS(status))
        return 128 + sig if sig else code

    # -- signals and stdin
    def _signal(self, signo: int) -> None:
        if signo == signal.SIGINT:
            now = time.monotonic()
            if self.opts.quit_on_interrupt or now - self.last_intr < 1.0:
                self.intr_count += 1
                if self.intr_count >= 2:
                    raise Exit(self.exit_code() or 1)  # a third Ctrl-C: leave at once
                info(f"sending Ctrl-C to {self.step_label}")
                self._send_all({"t": "s", "n": int(signal.SIGINT)})
                self._force_end()
                self.cancelled = True
            elif self.opts.disable_status:
                info(f"sending Ctrl-C to {self.step_label}")
                self._send_all({"t": "s", "n": int(signal.SIGINT)})
            else:
                info("interrupt (one more within 1 sec to abort)")
                self._print_status()
            self.last_intr = now
        elif signo in _END_SIGNALS:
            if signo == signal.SIGQUIT:
                info("Quit")
            self._force_end()
        elif signo == signal.SIGCONT:
            info("got SIGCONT")
        elif signo == signal.SIGWINCH:
            if self.opts.pty:
                rows, cols = _winsize()
                self._send_all({"t": "w", "r": rows, "c": cols})
        else:
            self._send_all({"t": "s", "n": int(signo)})

    def _force_end(self) -> None:
        if self.force_terminated:
            info("job abort in progress")
            return
        info("forcing job termination")
        self.force_terminated = True
        info(f"Job step aborted: Waiting up to {self.kill_wait + 2} seconds for job step to finish.")
        self._send_all({"t": "k"})

    def _print_status(self) -> None:
        running = [t for t in range(self.ntasks) if t not in self.status]
        done_ok = [t for t, s in self.status.items() if s == 0]
        done_bad = [t for t, s in self.status.items() if s != 0]
        for ids, what in ((running, "running"), (done_bad, "exited abnormally"), (done_ok, "exited")):
            if ids:
                info(f"{self.step_label} task{'s' if len(ids) > 1 else ''} {_task_list(ids)}: {what}")

    def _stdin(self) -> None:
        try:
            data = os.read(0, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        for node in self.stdin_targets:
            self._send(node, {"t": "i"}, data)
        if not data:
            self.sel.unregister(0)
            self.stdin_open = False

    def _accept(self) -> None:
        """A connection to srun's message port: there is nothing to say on it, so it is closed."""
        try:
            fd, _addr = self.listener._accept()  # type: ignore[attr-defined]  # _socket's accept: a bare fd
            os.close(fd)
        except OSError:
            pass

    def _setup_stdin(self) -> None:
        mode, one = _io_mode(self.opts.job.std_in if "i" in self.opts.job.cli_keys else "", self.ntasks)
        if mode in ("none", "file") and not self.opts.pty:
            return
        if self.opts.pty or mode == "one":
            want = 0 if self.opts.pty else one
            self.stdin_targets = [n for n in self.nodes if want in self.reply["tasks"][n.name]]
        else:
            self.stdin_targets = list(self.nodes)
        if not self.stdin_targets:
            return
        try:
            self.sel.register(0, "stdin")
            self.stdin_open = True
            return
        except (OSError, ValueError):
            pass
        # not pollable (a regular file, /dev/null) or closed: it cannot block, so send it all now
        while True:
            try:
                data = os.read(0, 1 << 20)
            except OSError:
                data = b""
            for node in self.stdin_targets:
                self._send(node, {"t": "i"}, data)
            if not data:
                break

    # -- run
    def run(self) -> int:
        sig_r, sig_w = socket.socketpair()
        sig_r.setblocking(False)
        sig_w.setblocking(False)
        handled = (signal.SIGINT, *_END_SIGNALS, *_FWD_SIGNALS, signal.SIGWINCH, signal.SIGCONT)
        old = {s: signal.signal(s, lambda *_: None) for s in handled}
        old_tstp = signal.signal(signal.SIGTSTP, signal.SIG_IGN)
        old_wakeup = signal.set_wakeup_fd(sig_w.fileno(), warn_on_full_buffer=False)
        try:
            self._launch()
            self.sel.register(sig_r, "signal")
            self.sel.register(self.listener, "listener")
            if self.opts.pty and os.isatty(0):
                import termios
                import tty

                self.saved_tty = termios.tcgetattr(0)
                tty.setraw(0, termios.TCSANOW)  # keep what was typed ahead
            self._setup_stdin()
            while any(not n.done for n in self.nodes):
                timeout = None
                if self.wait_deadline and not self.terminating:
                    timeout = max(0.0, self.wait_deadline - time.monotonic())
                    if timeout == 0.0 and len(self.status) < self.ntasks:
                        info(f"First task exited {self.opts.max_wait}s ago")
                        self._print_status()
                        self.terminating = True
                        info(f"launch/slurm: _step_signal: Terminating {self.step_label}")
                        self._send_all({"t": "k", "kill": 1})  # -W: the step is killed at once
                        timeout = None
                for what in self.sel.select(timeout):
                    if what == "signal":
                        try:
                            for b in sig_r.recv(64):
                                self._signal(b)
                        except BlockingIOError:
                            pass
                    elif what == "stdin":
                        self._stdin()
                    elif what == "listener":
                        self._accept()
                    else:
                        self._read(what)
            for t in list({k[0] for k in self.partial}):
                self._flush_task(t)
        finally:
            if self.saved_tty is not None:
                import termios

                termios.tcsetattr(0, termios.TCSADRAIN, self.saved_tty)
            signal.set_wakeup_fd(old_wakeup)
            for s, h in old.items():
                signal.signal(s, h)
            signal.signal(signal.SIGTSTP, old_tstp)
            for node in self.nodes:
                node.sock.close()
            self.listener.close()
            sig_r.close()
            sig_w.close()
        if not self.nodes and self.status:
            return 1  # the step could not be launched anywhere
        killed = any(os.WIFSIGNALED(s) and os.WTERMSIG(s) in (signal.SIGKILL, signal.SIGTERM)
                     for s in self.status.values())
        if killed and not self.aborted and not self.force_terminated:
            info(f"Force Terminated {self.step_label}")
        return self.exit_code()


class _Poller:
    """The few calls of selectors.DefaultSelector srun makes, on select.epoll: what each
    registered file object (or fd) stands for comes back when it is readable (or hung up)."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._what: dict[int, Any] = {}

    @staticmethod
    def _fd(obj: Any) -> int:
        return obj if isinstance(obj, int) else int(obj.fileno())

    def register(self, obj: Any, what: Any) -> None:
        fd = self._fd(obj)
        self._epoll.register(fd, select.EPOLLIN)  # OSError for what epoll cannot watch (a regular file)
        self._what[fd] = what

    def unregister(self, obj: Any) -> None:
        fd = self._fd(obj)
        if self._what.pop(fd, None) is None:
            raise KeyError(fd)
        try:
            self._epoll.unregister(fd)
        except OSError:  # closed already: the kernel forgot it
            pass

    def select(self, timeout: float | None) -> list[Any]:
        while True:
            try:
                events = self._epoll.poll(-1 if timeout is None else timeout)
                break
            except InterruptedError:
                continue
        return [self._what[fd] for fd, _ev in events if fd in self._what]


def _keepalive(sock: socket.socket) -> None:
    """A node that vanishes (a killed container sends no RST) is noticed within half a minute."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
    except (OSError, AttributeError):
        pass


def _winsize() -> list[int]:
    import fcntl
    import termios

    for fd in (0, 1, 2):
        try:
            rows, cols, _x, _y = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
            if rows and cols:
                return [rows, cols]
        except OSError:
            continue
    return [24, 80]
