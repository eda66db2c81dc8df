"""``squeue``: the job queue in Slurm's formats (default, ``-l``, ``-o``, ``-O``), filters and sorts.

Only the record fields a format needs are asked for, and each format is compiled
into one ``%``-template, so ten thousand pending jobs print in a few tens of
milliseconds.
"""

from __future__ import annotations

import os
import sys

from orchestrator.commands._common import Exit, error, getopt, out, run, split_list
from orchestrator.lazylog import get_logger
from orchestrator.scheduler.protocol import is_constant
from orchestrator.slurm.fmtspec import (
    Column,
    Spec,
    compile_format,
    convert_num_unit,
    make_time_str,
    parse_format,
    parse_long_format,
)
from orchestrator.slurm.options import NO_ARG, OPTIONAL, REQUIRED, longopts
from orchestrator.slurm.options import strtol as _strtol
from orchestrator.slurm.timefmt import format_duration

TYPE_CHECKING = False  # importing typing (or collections.abc) costs a user command milliseconds
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

log = get_logger(__name__)

PROG = "squeue"
SHORTOPTS = "A:ahi:j::lL:n:M:O:o:p:Pq:R:rs::S:t:u:U:vVw:"
LONGOPTS = longopts([
    ("accounts", REQUIRED, "A"), ("all", NO_ARG, "a"), ("array", NO_ARG, "r"),
    ("array-unique", NO_ARG, "array-unique"), ("Format", REQUIRED, "O"), ("format", REQUIRED, "o"),
    ("federation", NO_ARG, "federation"), ("help", NO_ARG, "help"), ("hide", NO_ARG, "hide"),
    ("iterate", REQUIRED, "i"), ("jobs", OPTIONAL, "j"), ("local", NO_ARG, "local"), ("long", NO_ARG, "l"),
    ("licenses", REQUIRED, "L"), ("cluster", REQUIRED, "M"), ("clusters", REQUIRED, "M"),
    ("me", NO_ARG, "me"), ("name", REQUIRED, "n"), ("noconvert", NO_ARG, "noconvert"),
    ("node", REQUIRED, "w"), ("nodes", REQUIRED, "w"), ("nodelist", REQUIRED, "w"),
    ("noheader", NO_ARG, "h"), ("partitions", REQUIRED, "p"), ("priority", NO_ARG, "P"),
    ("qos", REQUIRED, "q"), ("reservation", REQUIRED, "R"), ("sib", NO_ARG, "sibling"),
    ("sibling", NO_ARG, "sibling"), ("sort", REQUIRED, "S"), ("start", NO_ARG, "start"),
    ("steps", OPTIONAL, "s"), ("states", REQUIRED, "t"), ("usage", NO_ARG, "usage"),
    ("user", REQUIRED, "u"), ("users", REQUIRED, "u"), ("verbose", NO_ARG, "v"), ("version", NO_ARG, "V"),
    ("json", NO_ARG, "json"), ("yaml", NO_ARG, "yaml"),
])

DEFAULT_LONG = ("jobarrayid:.18 ,partition:.9 ,name:.8 ,username:.8 ,statecompact:.2 ,timeused:.10 ,"
                "numnodes:.6 ,reasonlist:0")
LONG_LONG = ("jobarrayid:.18 ,partition:.9 ,name:.8 ,username:.8 ,state:.8 ,timeused:.10 ,"
             "timelimit:.9 ,numnodes:.6 ,reasonlist:0")
START_FORMAT = "%.18i %.9P %.8j %.8u %.2t %.19S %.6D %20Y %R"
STEP_FORMAT = "%.15i %.8j %.9P %.8u %.9M %N"

ACTIVE = frozenset({"PENDING", "RUNNING", "SUSPENDED", "COMPLETING", "STAGE_OUT", "CONFIGURING",
                    "RESIZING", "SIGNALING"})
COMPACT = {"PENDING": "PD", "RUNNING": "R", "SUSPENDED": "S", "COMPLETING": "CG", "COMPLETED": "CD",
           "CANCELLED": "CA", "FAILED": "F", "TIMEOUT": "TO", "NODE_FAIL": "NF", "PREEMPTED": "PR",
           "BOOT_FAIL": "BF", "DEADLINE": "DL", "OUT_OF_MEMORY": "OOM", "REQUEUED": "RQ",
           "REQUEUE_HOLD": "RH", "REQUEUE_FED": "RF", "RESIZING": "RS", "REVOKED": "RV",
           "SIGNALING": "SI", "SPECIAL_EXIT": "SE", "STAGE_OUT": "SO", "STOPPED": "ST",
           "CONFIGURING": "CF", "RESV_DEL_HOLD": "RD"}
STATE_ORDER = ("PENDING", "RUNNING", "SUSPENDED", "COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL",
               "PREEMPTED", "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY", "COMPLETING", "CONFIGURING",
               "RESIZING", "RESV_DEL_HOLD", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "REVOKED",
               "SIGNALING", "SPECIAL_EXIT", "STAGE_OUT", "STOPPED")
REASON_STATES = frozenset({"PENDING", "STAGE_OUT", "TIMEOUT", "OUT_OF_MEMORY", "DEADLINE", "FAILED"})
NO_VAL = 4294967294


def main(argv: list[str] | None = None) -> int:
    return run(PROG, lambda: _main(list(sys.argv[1:] if argv is None else argv)))


# ------------------------------------------------------------------------------------------------
# Columns


class Ctx:
    """Per-run values the columns read (the controller's clock)."""

    now: float = 0.0


def _null(v: Any) -> str:
    return str(v) if v not in (None, "") else "(null)"


def display_id(r: dict[str, Any]) -> str:
    """``12``, ``12_3`` or ``12_[3-5%2]`` from the record's array fields (squeue's %i)."""
    task = r.get("array_task_id")
    tstr = r.get("array_task_str")
    if task is None and not tstr:
        return str(r["job_id"])
    if tstr:
        maxt = r.get("array_max_tasks") or 0
        if maxt and "%" not in tstr:
            tstr = f"{tstr}%{maxt}"
        return f"{r.get('array_job_id') or r['job_id']}_[{tstr}]"
    if task is not None:
        return f"{r.get('array_job_id') or r['job_id']}_{task}"
    return str(r["job_id"])


def _used(r: dict[str, Any]) -> float:
    state = r["state"]
    if state == "PENDING":
        return 0.0
    start = r.get("start_time") or 0
    if not start:
        return 0.0
    if state in ("RUNNING", "COMPLETING", "CONFIGURING", "SIGNALING", "SUSPENDED") or not r.get("end_time"):
        return max(0.0, Ctx.now - start)
    return max(0.0, r["end_time"] - start)


def _secs(t: float) -> str:
    return format_duration(t)


def _limit(r: dict[str, Any]) -> str:
    tl = r.get("time_limit")
    if tl is None or tl < 0:
        return "UNLIMITED"
    return _secs(tl * 60)


def _left(r: dict[str, Any]) -> str:
    tl = r.get("time_limit")
    if tl is None or tl < 0:
        return "UNLIMITED"
    return _secs(tl * 60 - _used(r))


def _time(epoch: Any) -> str:
    return make_time_str(epoch)


def _start(r: dict[str, Any]) -> float:
    """StartTime: when a pending job is expected to start (N/A when not known)."""
    from orchestrator.slurm.accounting import start_and_end

    return start_and_end(r)[0]


def _end(r: dict[str, Any]) -> str:
    from orchestrator.slurm.accounting import start_and_end

    tl = r.get("time_limit")
    if not r.get("end_time") and r.get("state") in ("RUNNING", "COMPLETING") and r.get("start_time") \
            and tl is not None and tl < 0:
        return "NONE"
    end = start_and_end(r)[1]
    if tl is not None and tl < 0 and end > Ctx.now:
        return "NONE"
    return _time(end)


def _reason(r: dict[str, Any]) -> str:
    return str(r.get("reason") or "None")


def _reason_list(r: dict[str, Any]) -> str:
    if r["state"] in REASON_STATES:
        return "(" + (r["reason"] or "None") + ")"
    return r["nodes"] or ""


def _cpus(r: dict[str, Any]) -> str:
    alloc = r.get("alloc_cpus") or 0
    if alloc and r.get("state") != "PENDING":
        return str(alloc)
    tasks = r.get("num_tasks") or 1
    cpt = r.get("cpus_per_task") or 1
    return str(max(tasks * cpt, r.get("num_nodes") or 1))


def _min_cpus(r: dict[str, Any]) -> str:
    cpt = r.get("cpus_per_task") or 1
    tpn = r.get("ntasks_per_node") or 1
    return convert_num_unit(cpt * tpn)


def _min_mem(r: dict[str, Any]) -> str:
    mb = r.get("mem_per_cpu") or r.get("mem_per_node") or 0
    return convert_num_unit(mb, 2)


def _prio(r: dict[str, Any]) -> str:
    return f"{(r.get('priority') or 0) / 4294967295:16.14f}"


def _array_job(r: dict[str, Any]) -> str:
    if r.get("array_task_str") or r.get("array_task_id") is not None:
        return str(r.get("array_job_id") or r["job_id"])
    return str(r["job_id"])


def _array_task(r: dict[str, Any]) -> str:
    tstr = r.get("array_task_str") or ""
    if tstr:
        maxt = r.get("array_max_tasks") or 0
        return f"{tstr}%{maxt}" if maxt and "%" not in tstr else tstr
    task = r.get("array_task_id")
    return "N/A" if task is None else str(task)


def _tres_per_node(r: dict[str, Any]) -> str:
    g = r.get("gres") or ""
    return f"gres:{g}" if g else "N/A"


def _exit(r: dict[str, Any]) -> str:
    """squeue prints the exit code as slurmctld keeps it, a wait status (``code << 8 | signal``)."""
    return str(((r.get("exit_code") or 0) << 8) | (r.get("exit_signal") or 0))


def _pending_time(r: dict[str, Any]) -> str:
    start = r.get("start_time") or 0
    if start and start < Ctx.now:
        return str(int(start - (r.get("submit_time") or 0)))
    return str(int(Ctx.now - (r.get("submit_time") or 0)))


def _f(key: str) -> Callable[[dict[str, Any]], str]:
    def get(r: dict[str, Any]) -> str:
        v = r.get(key)
        return "" if v is None else str(v)
    return get


def _fnull(key: str) -> Callable[[dict[str, Any]], str]:
    def get(r: dict[str, Any]) -> str:
        return _null(r.get(key))
    return get


def _sched_nodes(r: dict[str, Any]) -> str:
    """Where the backfill estimate would start a pending job (slurmctld forgets it once the job runs)."""
    return _null(r.get("sched_nodes") if r.get("state") == "PENDING" else None)


def _const(text: str) -> Callable[[dict[str, Any]], str]:
    return lambda r: text


_ID = ("job_id", "array_job_id", "array_task_id", "array_task_str", "array_max_tasks")
_T = ("state", "start_time", "end_time")

COLUMNS: dict[str, Column] = {
    "a": Column("ACCOUNT", _fnull("account"), True, ("account",)),
    "b": Column("TRES_PER_NODE", _tres_per_node, True, ("gres",)),
    "c": Column("MIN_CPUS", _min_cpus, True, ("cpus_per_task", "ntasks_per_node")),
    "d": Column("MIN_TMP_DISK", _const("0")),
    "e": Column("END_TIME", _end, True, (*_T, "time_limit", "expected_start")),
    "f": Column("FEATURES", _fnull("features"), True, ("features",)),
    "g": Column("GROUP", _f("group"), True, ("group",), "group"),
    "h": Column("OVER_SUBSCRIBE", lambda r: "NO" if r.get("exclusive") else "OK", True, ("exclusive",)),
    "i": Column("JOBID", display_id, True, _ID),
    "j": Column("NAME", _f("name"), True, ("name",), "name"),
    "k": Column("COMMENT", _fnull("comment"), True, ("comment",)),
    "l": Column("TIME_LIMIT", _limit, False, ("time_limit",)),
    "m": Column("MIN_MEMORY", _min_mem, True, ("mem_per_cpu", "mem_per_node")),
    "n": Column("REQ_NODES", _f("req_nodes"), True, ("req_nodes",)),
    "o": Column("COMMAND", _fnull("command"), True, ("command",)),
    "p": Column("PRIORITY", _prio, True, ("priority",)),
    "q": Column("QOS", _fnull("qos"), True, ("qos",)),
    "r": Column("REASON", _reason, True, ("reason",)),
    "s": Column("", _const("")),
    "t": Column("ST", lambda r: COMPACT.get(r["state"], "?"), True, ("state",)),
    "u": Column("USER", _f("user"), True, ("user",), "user"),
    "v": Column("RESERVATION", _const("(null)")),
    "w": Column("WCKEY", _const("(null)")),
    "x": Column("EXC_NODES", _f("exc_nodes"), True, ("exc_nodes",)),
    "y": Column("NICE", _const("0")),
    "z": Column("S:C:T", _const("*:*:*")),
    "A": Column("JOBID", _f("job_id"), True, ("job_id",), "job_id"),
    "B": Column("EXEC_HOST", lambda r: r.get("batch_host") or "n/a", True, ("batch_host",)),
    "C": Column("CPUS", _cpus, True, ("alloc_cpus", "state", "num_tasks", "cpus_per_task", "num_nodes")),
    "D": Column("NODES", _f("num_nodes"), True, ("num_nodes",), "num_nodes"),
    "E": Column("DEPENDENCY", _fnull("dependency"), True, ("dependency",)),
    "F": Column("ARRAY_JOB_ID", _array_job, True, _ID),
    "G": Column("GROUP", _f("gid"), True, ("gid",), "gid"),
    "H": Column("SOCKETS_PER_NODE", _const("*")),
    "I": Column("CORES_PER_SOCKET", _const("*")),
    "J": Column("THREADS_PER_CORE", _const("*")),
    "K": Column("ARRAY_TASK_ID", _array_task, True, _ID),
    "L": Column("TIME_LEFT", _left, False, (*_T, "time_limit")),
    "M": Column("TIME", lambda r: "0:00" if r["state"] == "PENDING" else _secs(_used(r)), False, _T),
    "N": Column("NODELIST", _f("nodes"), False, ("nodes",)),
    "O": Column("CONTIGUOUS", _const("0")),
    "P": Column("PARTITION", _f("partition"), True, ("partition",), "partition"),
    "Q": Column("PRIORITY", _f("priority"), True, ("priority",), "priority"),
    "R": Column("NODELIST(REASON)", _reason_list, True, ("state", "reason", "nodes")),
    "S": Column("START_TIME", lambda r: _time(_start(r)), True, ("state", "start_time", "expected_start")),
    "T": Column("STATE", _f("state"), True, ("state",), "state"),
    "U": Column("UID", _f("uid"), True, ("uid",), "uid"),
    "V": Column("SUBMIT_TIME", lambda r: _time(r.get("submit_time")), True, ("submit_time",)),
    "W": Column("LICENSES", _const("(null)")),
    "X": Column("CORE_SPEC", _const("N/A")),
    "Y": Column("SCHEDNODES", _sched_nodes, True, ("state", "sched_nodes")),
    "Z": Column("WORK_DIR", _f("work_dir"), True, ("work_dir",), "work_dir"),
}
# the header of NODELIST/NODELIST(REASON) is never cut; their values only for %R when pending
_HEADER_UNCUT = {"N", "R", "Y"}

LONG_NAMES: dict[str, str] = {
    "account": "a", "jobid": "A", "gres": "b", "tres-per-node": "b", "batchhost": "B", "mincpus": "c",
    "numcpus": "C", "mintmpdisk": "d", "numnodes": "D", "endtime": "e", "dependency": "E", "feature": "f",
    "arrayjobid": "F", "groupname": "g", "groupid": "G", "oversubscribe": "h", "shared": "h", "sockets": "H",
    "jobarrayid": "i", "cores": "I", "name": "j", "threads": "J", "comment": "k", "arraytaskid": "K",
    "timelimit": "l", "timeleft": "L", "minmemory": "m", "timeused": "M", "reqnodes": "n", "nodelist": "N",
    "command": "o", "contiguous": "O", "priority": "p", "partition": "P", "qos": "q", "prioritylong": "Q",
    "reason": "r", "reasonlist": "R", "selectjobinfo": "s", "starttime": "S", "statecompact": "t",
    "state": "T", "userid": "U", "username": "u", "reservation": "v", "submittime": "V", "wckey": "w",
    "licenses": "W", "corespec": "X", "nice": "y", "schednodes": "Y", "sct": "z", "workdir": "Z",
}

EXTRA_LONG: dict[str, Column] = {
    "cluster": Column("CLUSTER", _f("cluster"), True, ("cluster",)),
    "numtasks": Column("TASKS", _f("num_tasks"), True, ("num_tasks",)),
    "stdout": Column("STDOUT", _f("std_out"), True, ("std_out",)),
    "stderr": Column("STDERR", _f("std_err"), True, ("std_err",)),
    "stdin": Column("STDIN", _f("std_in"), True, ("std_in",)),
    "exit_code": Column("EXIT_CODE", _exit, True, ("exit_code", "exit_signal")),
    "derivedec": Column("DERIVED_EC", _f("derived_exit_code"), True, ("derived_exit_code",)),
    "restartcnt": Column("RESTARTCNT", _f("restart_count"), True, ("restart_count",)),
    "requeue": Column("REQUEUE", lambda r: "1" if r.get("requeue") else "0", True, ("requeue",)),
    "batchflag": Column("BATCH_FLAG", lambda r: "1" if r.get("batch") else "0", True, ("batch",)),
    "cpus-per-task": Column("CPUS_PER_TASK", _f("cpus_per_task"), True, ("cpus_per_task",)),
    "cpuspertask": Column("CPUS_PER_TASK", _f("cpus_per_task"), True, ("cpus_per_task",)),
    "ntpernode": Column("NTASKS_PER_NODE", _f("ntasks_per_node"), True, ("ntasks_per_node",)),
    "eligibletime": Column("ELIGIBLE_TIME", lambda r: _time(r.get("eligible_time")), True, ("eligible_time",)),
    "pendingtime": Column("PENDING_TIME", _pending_time, True, ("start_time", "submit_time")),
    "maxnodes": Column("MAX_NODES", _f("max_nodes"), True, ("max_nodes",)),
    "mintime": Column("MIN_TIME", _const("0")),
    "allocnodes": Column("ALLOC_NODES", _f("submit_host"), True, ("submit_host",)),
    "tres-alloc": Column("TRES_ALLOC", lambda r: _tres(r), True, ("alloc_cpus", "alloc_mem", "num_nodes")),
    "tres": Column("TRES_ALLOC", lambda r: _tres(r), True, ("alloc_cpus", "alloc_mem", "num_nodes")),
}


def _tres(r: dict[str, Any]) -> str:
    from orchestrator.slurm.units import format_mem

    if not r.get("alloc_cpus"):
        return ""
    return f"cpu={r['alloc_cpus']},mem={format_mem(r.get('alloc_mem') or 0)},node={r.get('num_nodes') or 1}," \
           f"billing={r['alloc_cpus']}"


def long_column(name: str) -> Column | None:
    key = name.lower()
    if key.startswith("numtask"):
        key = "numtasks"
    letter = LONG_NAMES.get(key)
    if letter is not None:
        return COLUMNS[letter]
    return EXTRA_LONG.get(key)


# ------------------------------------------------------------------------------------------------
# Options


class Params:
    def __init__(self) -> None:
        self.format: str | None = None
        self.format_long: str | None = None
        self.long = False
        self.noheader = False
        self.jobs: list[tuple[int, int | None]] | None = None
        self.job_flag = False
        self.step_flag = False
        self.steps: list[tuple[int, int | None, int]] | None = None  # -s job[_task].step,...
        self.users: list[int] | None = None
        self.user_names: list[str] | None = None
        self.states: set[str] | None = None
        self.all_states = False
        self.partitions: list[str] | None = None
        self.names: list[str] | None = None
        self.accounts: list[str] | None = None
        self.qos: list[str] | None = None
        self.nodes: set[str] | None = None
        self.sort: str | None = None
        self.array = False
        self.array_unique = False
        self.start = False
        self.clusters: list[str] | None = None
        self.iterate = 0
        self.verbose = 0
        self.priority = False


def _parse_states(text: str) -> tuple[set[str] | None, bool]:
    if text.lower() == "all":
        return None, True
    out: set[str] = set()
    for item in text.split(","):
        if not item:
            continue
        key = item.upper()
        found = None
        if key in STATE_ORDER or key in COMPACT:
            found = key
        else:
            for long_name, short in COMPACT.items():
                if short == key:
                    found = long_name
                    break
        if key == "CANCELED":
            found = "CANCELLED"
        if found is None:
            error(PROG, f"Invalid job state specified: {item}")
            error(PROG, f"Valid job states include: {','.join(STATE_ORDER)}\n")
            raise Exit(1)
        out.add(found)
    return out, False


def _parse_jobs(text: str) -> list[tuple[int, int | None]]:
    jobs: list[tuple[int, int | None]] = []
    for item in text.split(","):
        if not item:
            continue
        num, rest = _strtol(item)
        task: int | None = None
        if rest.startswith("_"):
            task, rest = _strtol(rest[1:])
        if num <= 0:
            error(PROG, f"Invalid job id: {item}")
            raise Exit(1)
        jobs.append((num, task))
    return jobs


def _parse_steps(text: str) -> list[tuple[int, int | None, int]]:
    """``-s 12.0,13_2.1`` -> (job, task or None, step); Slurm reads a step name as its number (0)."""
    steps: list[tuple[int, int | None, int]] = []
    for item in text.split(","):
        if not item:
            continue
        parts = [x for x in item.split(".") if x]
        if not parts:
            break
        num, rest = _strtol(parts[0])
        task = _strtol(rest[1:])[0] if rest.startswith("_") else None
        if len(parts) < 2:
            error(PROG, f"Invalid job_step id: {parts[0]}.??")
            raise Exit(1)
        step = _strtol(parts[1])[0]
        if num <= 0 or step < 0:
            error(PROG, f"Invalid job_step id: {parts[0]}.{parts[1]}")
            raise Exit(1)
        steps.append((num, task, step))
    return steps


def _parse_users(text: str) -> tuple[list[int], list[str]]:
    from orchestrator.commands._common import user_id, user_name

    uids: list[int] = []
    names: list[str] = []
    for item in text.split(","):
        if not item:
            continue
        uid = user_id(item)
        if uid is None:
            error(PROG, f"Invalid user: {item}\n")
            continue
        uids.append(uid)
        names.append(user_name(uid))
    return uids, names


def parse_args(argv: list[str]) -> Params:
    opts, positionals = getopt(PROG, argv, SHORTOPTS, LONGOPTS)
    p = Params()
    env = os.environ
    if env.get("SQUEUE_ALL") is not None:
        pass
    if env.get("SQUEUE_ARRAY") is not None:
        p.array = True
    if env.get("SQUEUE_SORT"):
        p.sort = env["SQUEUE_SORT"]
    if env.get("SQUEUE_ARRAY_UNIQUE") is not None:
        p.array_unique = True
    override_env = False
    for key, value in opts:
        v = value or ""
        if key in ("A", "U"):
            p.accounts = split_list(v)
        elif key == "h":
            p.noheader = True
        elif key == "i":
            p.iterate = _strtol(v)[0]
            if p.iterate <= 0:
                error(PROG, f"--iterate={v}\n")
                raise Exit(1)
        elif key == "j":
            if value is not None:
                p.jobs = _parse_jobs(v)
            p.job_flag = True
        elif key == "l":
            p.long = True
            override_env = True
        elif key == "M":
            from orchestrator.commands._common import resolve_clusters

            p.clusters = resolve_clusters(PROG, v)
        elif key == "n":
            p.names = split_list(v)
        elif key == "O":
            if p.format is not None:
                error(PROG, "-O (--Format) is incompatible with -o (--format)")
                raise Exit(1)
            p.format_long = v
            override_env = True
        elif key == "o":
            if p.format_long is not None:
                error(PROG, "-o (--format) is incompatible with -O (--Format)")
                raise Exit(1)
            p.format = v
            override_env = True
        elif key == "p":
            p.partitions = split_list(v)
        elif key == "P":
            p.priority = True
        elif key == "q":
            p.qos = split_list(v)
        elif key == "r":
            p.array = True
        elif key == "s":
            if value is not None:
                p.steps = _parse_steps(v)
            p.step_flag = True
            override_env = True
        elif key == "S":
            p.sort = v
        elif key == "t":
            p.states, p.all_states = _parse_states(v)
        elif key == "u":
            p.users, p.user_names = _parse_users(v)
        elif key == "v":
            p.verbose += 1
        elif key == "V":
            from orchestrator.commands._common import print_version

            print_version()
            raise Exit(0)
        elif key == "w":
            from orchestrator.slurm.hostlist import HostlistError, expand

            try:
                p.nodes = set(expand(v))
            except HostlistError:
                error(PROG, f"'{v}' invalid entry for --nodelist")
                raise Exit(1) from None
        elif key == "array-unique":
            p.array_unique = True
        elif key == "help":
            from orchestrator.commands._common import print_help

            print_help(PROG)
            raise Exit(0)
        elif key == "usage":
            from orchestrator.commands._common import print_help

            print_help(PROG, "usage")
            raise Exit(0)
        elif key == "me":
            p.users = [os.geteuid()]
            from orchestrator.commands._common import user_name

            p.user_names = [user_name(os.geteuid())]
        elif key == "start":
            p.start = True
            override_env = True
    if p.long and p.format:
        from orchestrator.commands._common import fatal

        fatal(PROG, "Options -o(--format) and -l(--long) are mutually exclusive. Please remove one and retry.")
    if not override_env:
        if env.get("SQUEUE_FORMAT"):
            p.format = env["SQUEUE_FORMAT"]
        elif env.get("SQUEUE_FORMAT2"):
            p.format_long = env["SQUEUE_FORMAT2"]
    if positionals:
        rest = list(positionals)
        if p.job_flag:
            p.jobs = _parse_jobs(rest.pop(0))
        elif p.step_flag:
            p.steps = _parse_steps(rest.pop(0))
        if rest:
            error(PROG, f"Unrecognized option: {rest[0]}")
            from orchestrator.commands._common import print_help

            print_help(PROG, "usage")
            raise Exit(1)
    if p.job_flag and p.step_flag:
        if p.jobs is None:
            error(PROG, "Incompatible options --jobs and --steps")
            raise Exit(1)
        p.job_flag = False  # steps of those jobs
    if p.accounts is None and env.get("SQUEUE_ACCOUNT"):
        p.accounts = split_list(env["SQUEUE_ACCOUNT"])
    if p.names is None and env.get("SQUEUE_NAMES"):
        p.names = split_list(env["SQUEUE_NAMES"])
    if p.partitions is None and env.get("SQUEUE_PARTITION"):
        p.partitions = split_list(env["SQUEUE_PARTITION"])
    if p.qos is None and env.get("SQUEUE_QOS"):
        p.qos = split_list(env["SQUEUE_QOS"])
    if p.states is None and not p.all_states and env.get("SQUEUE_STATES"):
        p.states, p.all_states = _parse_states(env["SQUEUE_STATES"])
    if p.users is None and env.get("SQUEUE_USERS"):
        p.users, p.user_names = _parse_users(env["SQUEUE_USERS"])
    if p.start and not p.step_flag:
        if p.format is None:
            p.format = START_FORMAT
        if p.sort is None:
            p.sort = "S"
        if p.states is None and not p.all_states:
            p.states = {"PENDING"}
    return p


# ------------------------------------------------------------------------------------------------
# Formats


def build_format(p: Params, cluster_column: bool) -> tuple[str, list[Spec], dict[str, Column]]:
    """The specs to print and the column table they refer to (invalid fields reported here)."""
    columns: dict[str, Column] = dict(COLUMNS)
    if p.format is not None:
        prefix, resolved = _resolve_format(p.format, columns, "job")
        return prefix, resolved, columns
    text = p.format_long
    if text is None:
        text = ("cluster:10 ," if cluster_column else "") + (LONG_LONG if p.long else DEFAULT_LONG)
    return "", _resolve_long_format(text, long_column, columns, "job"), columns


def _resolve_format(fmt: str, columns: dict[str, Column], what: str) -> tuple[str, list[Spec]]:
    """``-o`` specs against ``columns``; an unknown letter is reported (except under %all) and
    printed back as typed, as Slurm does."""
    format_all = fmt.lower() == "%all"
    if format_all:
        from orchestrator.slurm.fmtspec import expand_all

        fmt = expand_all()
    prefix, specs = parse_format(fmt)
    resolved: list[Spec] = []
    for s in specs:
        if s.key in columns:
            resolved.append(s)
        elif not format_all:
            raw = "%" + ("." if s.right else "") + (str(s.width) if s.width else "") + s.key + s.suffix
            error(PROG, f"Invalid {what} format specification: {s.key}")
            resolved.append(Spec("?invalid", 0, False, "", raw))
    return prefix, resolved


def _resolve_long_format(text: str, lookup: Callable[[str], Column | None], columns: dict[str, Column],
                         what: str) -> list[Spec]:
    """``-O`` fields: each found by ``lookup`` is added to ``columns`` under ``~name``."""
    resolved: list[Spec] = []
    for s in parse_long_format(text):
        col = lookup(s.key)
        if col is None:
            error(PROG, f"Invalid {what} format specification: {s.key}")
            resolved.append(Spec("?invalid", 0, False, "", s.suffix))
            continue
        key = "~" + s.key.lower()
        columns[key] = col
        resolved.append(Spec(key, s.width, s.right, s.suffix))
    return resolved


def needed_fields(specs: list[Spec], columns: dict[str, Column], p: Params) -> list[str]:
    need: dict[str, None] = dict.fromkeys(("job_id", "state", "array_job_id", "array_task_id", "array_task_str",
                                           "array_max_tasks", "name", "partition", "priority"))
    if p.users is not None:
        need["uid"] = None
    for s in specs:
        col = columns.get(s.key)
        if col is not None:
            need.update(dict.fromkeys(col.needs))
    sort = p.sort or "P,t,-p"
    for ch in sort:
        col = COLUMNS.get(ch)
        if col is not None and ch not in ",+-":
            need.update(dict.fromkeys(col.needs))
    if p.accounts:
        need["account"] = None
    if p.qos:
        need["qos"] = None
    if p.nodes:
        need["nodes"] = None
    if p.names:
        need["name"] = None
    others = {f for s in specs if (col := columns.get(s.key)) is not None and col.needs is not _T
              and s.key not in ("M", "~timeused") for f in col.needs}
    if not p.all_states and not (p.states and p.states - ACTIVE) and "end_time" not in others:
        # only live jobs are shown: their run time is measured to now, the end time is never read
        need.pop("end_time", None)
    return list(need)


# ------------------------------------------------------------------------------------------------
# Filtering, merging and sorting


def filter_jobs(rows: list[dict[str, Any]], p: Params) -> list[dict[str, Any]]:
    out_rows: list[dict[str, Any]] = []
    jobs = p.jobs
    want_ids = {j for j, t in jobs if t is None} if jobs else set()
    want_tasks = {(j, t) for j, t in jobs if t is not None} if jobs else set()
    users = set(p.users) if p.users is not None else None
    names = {n.lower() for n in p.names} if p.names else None
    accounts = {a.lower() for a in p.accounts} if p.accounts else None
    qos = {q.lower() for q in p.qos} if p.qos else None
    parts = set(p.partitions) if p.partitions else None
    states = p.states
    nodes = p.nodes
    for r in rows:
        if jobs:
            jid = r["job_id"]
            ajid = r.get("array_job_id") or 0
            task = r.get("array_task_id")
            ok = jid in want_ids or (ajid and ajid in want_ids) or (ajid, task) in want_tasks
            if not ok and r.get("array_task_str") and want_tasks:
                from orchestrator.slurm.arrays import parse_ranges

                pending = set(parse_ranges(r["array_task_str"]))
                sel = sorted(t for j, t in want_tasks if j == (ajid or jid) and t in pending)
                if sel:
                    r = dict(r)
                    if len(sel) == 1:
                        r["array_task_id"] = sel[0]
                        r["array_task_str"] = ""
                    else:
                        from orchestrator.slurm.arrays import format_ranges

                        r["array_task_str"] = format_ranges(sel)
                    ok = True
            if not ok:
                continue
        if accounts is not None and (r.get("account") or "").lower() not in accounts:
            continue
        if qos is not None and (r.get("qos") or "").lower() not in qos:
            continue
        if not p.all_states:
            if states is not None:
                if r.get("state") not in states:
                    continue
            elif r.get("state") not in ACTIVE:
                continue
        if nodes is not None:
            if not r.get("nodes"):
                continue
            from orchestrator.slurm.hostlist import expand

            if not nodes.intersection(expand(r["nodes"])):
                continue
        if users is not None and r.get("uid") not in users:
            continue
        if names is not None and (r.get("name") or "").lower() not in names:
            continue
        if parts is not None and not set((r.get("partition") or "").split(",")) & parts:
            continue
        out_rows.append(r)
    return out_rows


def combine_pending_arrays(rows: list[dict[str, Any]], unique: bool) -> list[dict[str, Any]]:
    """Fold pending tasks split off an array back into its pending record (unless --array-unique)."""
    if unique:
        return rows
    metas: dict[int, dict[str, Any]] = {}
    for r in rows:
        if r.get("state") == "PENDING" and r.get("array_task_str"):
            metas[r.get("array_job_id") or r["job_id"]] = r
    if not metas:
        return rows
    from orchestrator.slurm.arrays import format_ranges, parse_ranges

    out_rows: list[dict[str, Any]] = []
    merged: dict[int, tuple[set[int], list[str]]] = {}
    for r in rows:
        task = r.get("array_task_id")
        meta = metas.get(r.get("array_job_id") or 0)
        if (meta is not None and r is not meta and task is not None and r.get("state") == "PENDING"
                and r.get("name") == meta.get("name") and r.get("partition") == meta.get("partition")):
            ids, reasons = merged.setdefault(id(meta), (set(), []))
            ids.add(task)
            reason = r.get("reason") or "None"
            if reason != (meta.get("reason") or "None") and reason not in reasons:
                reasons.append(reason)
            continue
        out_rows.append(r)
    for meta in metas.values():
        extra = merged.get(id(meta))
        if not extra:
            continue
        ids, reasons = extra
        all_ids = set(parse_ranges(meta["array_task_str"])) | ids
        meta["array_task_str"] = format_ranges(sorted(all_ids))
        if reasons:
            meta["reason"] = ",".join([meta.get("reason") or "None", *reasons])
    return out_rows


def expand_arrays(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``-r``: one row per pending array task."""
    from orchestrator.slurm.arrays import parse_ranges

    out_rows: list[dict[str, Any]] = []
    for r in rows:
        tstr = r.get("array_task_str")
        if not tstr:
            out_rows.append(r)
            continue
        for t in parse_ranges(tstr.split("%")[0]):
            one = dict(r)
            one["array_task_id"] = t
            one["array_task_str"] = ""
            one["array_job_id"] = r.get("array_job_id") or r["job_id"]
            out_rows.append(one)
    return out_rows


def _id_key(r: dict[str, Any]) -> tuple[int, int]:
    task = r.get("array_task_id")
    if task is None:
        return (r["job_id"], NO_VAL if not r.get("array_task_str") else -1)
    return (r.get("array_job_id") or r["job_id"], task)


SORT_KEYS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "B": lambda r: r.get("batch_host") or "",
    "C": lambda r: int(_cpus(r)),
    "D": lambda r: r.get("num_nodes") or 0,
    "e": lambda r: r.get("end_time") or 0,
    "g": lambda r: r.get("group") or "",
    "G": lambda r: r.get("gid") or 0,
    "i": _id_key,
    "j": lambda r: r.get("name") or "",
    "l": lambda r: r.get("time_limit") if (r.get("time_limit") or 0) >= 0 else 1 << 32,
    "L": lambda r: (r.get("time_limit") or 0) * 60 - _used(r),
    "m": lambda r: r.get("mem_per_cpu") or r.get("mem_per_node") or 0,
    "M": _used,
    "N": lambda r: r.get("nodes") or "",
    "p": lambda r: r.get("priority") or 0,
    "P": lambda r: r.get("partition") or "",
    "Q": lambda r: r.get("priority") or 0,
    "S": _start,
    "t": lambda r: COMPACT.get(r.get("state") or "", ""),
    "T": lambda r: r.get("state") or "",
    "u": lambda r: r.get("user") or "",
    "U": lambda r: r.get("uid") or 0,
    "V": lambda r: r.get("submit_time") or 0,
}
_IGNORED_SORT = set("bcfhnOdHIJvz")


class SortSpecError(ValueError):
    """A -S key squeue does not know (the exception's text)."""


def sort_jobs(rows: list[dict[str, Any]], spec: str | None) -> list[dict[str, Any]]:
    """Slurm applies the sort keys from last to first; a stable sort per key gives the same order.
    An unknown key raises SortSpecError."""
    text = spec or "P,t,-p"
    if text == "P,t,-p":
        # the default, in one pass: same order as the three stable sorts Slurm's list_sort makes
        rows.sort(key=lambda r: (r.get("partition") or "", COMPACT.get(r.get("state") or "", ""),
                                 -(r.get("priority") or 0)))
        return rows
    for ch, reverse in sort_fields(text):
        if ch == "cluster":
            rows.sort(key=lambda r: r.get("cluster") or "", reverse=reverse)
            continue
        key = SORT_KEYS.get(ch)
        if key is not None:
            rows.sort(key=key, reverse=reverse)
            if ch == "S":  # squeue's comparator puts jobs with no start time last, either way round
                rows.sort(key=lambda r: not _start(r))
        elif ch not in _IGNORED_SORT:
            raise SortSpecError(ch)
    return rows


def sort_fields(text: str) -> Iterator[tuple[str, bool]]:
    """``-S`` keys last to first (the order Slurm applies them in), each with whether ``-`` reverses it;
    the long name ``cluster`` comes as one key."""
    i = len(text) - 1
    while i >= 0:
        ch = text[i]
        if ch in ",+-":
            i -= 1
            continue
        if text[:i + 1].lower().endswith("cluster") and i >= 6:
            yield "cluster", i >= 7 and text[i - 7] == "-"
            i -= 7
            continue
        yield ch, i > 0 and text[i - 1] == "-"
        i -= 1


# ------------------------------------------------------------------------------------------------
# Running


def _main(argv: list[str]) -> int:
    from orchestrator.commands import _common

    p = parse_args(argv)
    several = len(p.clusters or []) > 1
    return _common.report_clusters(p.clusters, p.noheader, p.iterate,
                                   not p.noheader and bool(p.iterate or p.verbose or p.long),
                                   several and p.noheader, lambda c, col: _show(p, c, col))


def _show(p: Params, cluster: str | None, cluster_column: bool) -> bool:
    """Print one cluster's queue; True on error."""
    from orchestrator.commands import _common

    if p.step_flag:
        return _show_steps(p, cluster)
    prefix, specs, columns = build_format(p, cluster_column)
    fields = needed_fields(specs, columns, p)
    body: dict[str, Any] = {"fields": fields, "columnar": True}
    if p.jobs:
        body["job_ids"] = sorted({j for j, _t in p.jobs})
    if p.users is not None and len(p.users) == 1 and not p.jobs:
        body["users"] = [str(p.users[0])]
    if not p.jobs and not p.all_states:
        # jobs that ended within MinJobAge stay with the controller but are not shown: leave them there
        # (not with -j, where an id the controller knows must not become "Invalid job id specified")
        body["states"] = sorted(p.states if p.states is not None else ACTIVE)
    RpcError = _common.rpc_error_type()
    try:
        reply = _common.make_client(cluster).call("jobs", body)
    except RpcError as exc:
        sys.stderr.write(f"slurm_load_jobs error: {exc.message}\n")  # type: ignore[attr-defined]
        return True
    Ctx.now = float(reply.get("now") or 0) or __import__("time").time()
    names = reply.get("fields") or fields
    if "columns" in reply:
        from orchestrator.scheduler.protocol import unpack_columns

        n = int(reply.get("count") or 0)
        col_list = unpack_columns(reply["columns"], n)
    else:  # a controller that answers in rows
        raw_rows = reply.get("rows") or []
        n = len(raw_rows)
        col_list = list(zip(*raw_rows, strict=True)) if n else [()] * len(names)
    cols: dict[str, Any] = dict(zip(names, col_list, strict=True))
    fast = _fast_lines(p, prefix, specs, columns, cols, n)
    if fast is not None:
        if fast:
            out("\n".join(fast) + "\n")
        return False
    rows = [dict(zip(names, row)) for row in zip(*col_list)]  # noqa: B905 - hot loop
    rows = filter_jobs(rows, p)
    rows = combine_pending_arrays(rows, p.array_unique)
    lines = [] if p.noheader else [_header(prefix, specs, columns)]
    try:
        rows = sort_jobs(rows, p.sort)
    except SortSpecError as exc:  # squeue has printed its header by the time it sorts
        if lines:
            out(lines[0] + "\n")
        error(PROG, f"Invalid sort specification: {exc}")
        raise Exit(1) from None
    if p.array:
        rows = expand_arrays(rows)
    template, funcs, _hdr = compile_format(prefix, specs, columns)
    from orchestrator.slurm.fmtspec import render

    lines.extend(render(template, funcs, rows))
    if lines:
        out("\n".join(lines) + "\n")
    return False


# ------------------------------------------------------------------------------------------------
# The columnar fast path: the everyday queue (default or -l format, default sort, simple filters)
# handled column by column, so ten thousand rows cost a few comprehensions instead of a dict and
# eight function calls per row.


_LIVE = frozenset({"RUNNING", "COMPLETING", "CONFIGURING", "SIGNALING", "SUSPENDED"})


def _vec_time_used(c: dict[str, Any], idx: list[int]) -> list[str]:
    state, start, end = c["state"], c["start_time"], c["end_time"]
    now = Ctx.now
    out_vals = []
    for i in idx:
        st = state[i]
        if st == "PENDING" or not start[i]:
            out_vals.append("0:00")
        elif st in _LIVE or not end[i]:
            out_vals.append(format_duration(max(0.0, now - start[i])))
        else:
            out_vals.append(format_duration(max(0.0, end[i] - start[i])))
    return out_vals


def _vec_limit(c: dict[str, Any], idx: list[int]) -> list[str]:
    tl = c["time_limit"]
    cache: dict[Any, str] = {}
    out_vals = []
    for i in idx:
        v = tl[i]
        text = cache.get(v)
        if text is None:
            text = cache[v] = "UNLIMITED" if v is None or v < 0 else format_duration(v * 60)
        out_vals.append(text)
    return out_vals


def _vec_reason_list(c: dict[str, Any], idx: list[int]) -> list[str]:
    state, reason, nodes = c["state"], c["reason"], c["nodes"]
    return ["(" + (reason[i] or "None") + ")" if state[i] in REASON_STATES else (nodes[i] or "") for i in idx]


def _vec_id(c: dict[str, Any], idx: list[int]) -> list[str]:
    jid, task, tstr = c["job_id"], c["array_task_id"], c["array_task_str"]
    ajid, maxt = c["array_job_id"], c["array_max_tasks"]
    if is_constant(task) and task[0] is None and is_constant(tstr) and not tstr[0]:
        return list(map(str, map(jid.__getitem__, idx)))  # no arrays in the queue: plain ids
    out_vals = []
    for i in idx:
        if task[i] is None and not tstr[i]:
            out_vals.append(str(jid[i]))
        else:
            out_vals.append(display_id({"job_id": jid[i], "array_task_id": task[i], "array_task_str": tstr[i],
                                        "array_job_id": ajid[i], "array_max_tasks": maxt[i]}))
    return out_vals


def _vec_field(key: str) -> Callable[[dict[str, Any], list[int]], list[Any]]:
    def get(c: dict[str, Any], idx: list[int]) -> list[Any]:
        col = c[key]
        return [col[i] for i in idx]
    return get


_VEC: dict[str, Callable[[dict[str, Any], list[int]], list[Any]]] = {
    "i": _vec_id,
    "M": _vec_time_used,
    "l": _vec_limit,
    "R": _vec_reason_list,
    "t": lambda c, idx: [COMPACT.get(c["state"][i], "?") for i in idx],
}


def _vec_for(key: str, col: Column) -> Callable[[dict[str, Any], list[int]], list[Any]] | None:
    letter = LONG_NAMES.get(key[1:], "") if key.startswith("~") else key
    if letter in _VEC:
        return _VEC[letter]
    if col.field:
        return _vec_field(col.field)
    return None


def _fast_lines(p: Params, prefix: str, specs: list[Spec], columns: dict[str, Column], cols: dict[str, Any],
                n: int) -> list[str] | None:
    """The lines to print, or None when this request needs the general (per-row) path.

    ``cols`` maps each field to its ``n`` values. A column whose inputs are the same in every
    row (the partition, state, user and reason of a long pending queue) is formatted once and
    baked into the line template, so only the varying columns cost anything per row.
    """
    if p.sort is not None or p.array or p.nodes is not None or p.qos or p.accounts:
        return None
    if p.jobs and any(t is not None for _j, t in p.jobs):
        return None
    vecs: list[Callable[[dict[str, Any], list[int]], list[Any]] | None] = []
    for s in specs:
        col = columns.get(s.key)
        if col is None:
            vecs.append(None)
            continue
        vec = _vec_for(s.key, col)
        if vec is None:
            return None
        vecs.append(vec)
    if "end_time" not in cols:
        cols["end_time"] = (0,) * n
    same: dict[str, bool] = {}

    def constant(field: str) -> bool:
        if field not in same:
            same[field] = is_constant(cols[field])
        return same[field]

    state = cols["state"]
    task = cols["array_task_id"]
    if not (constant("array_task_id") and task[0] is None) and any(
            task[i] is not None and state[i] == "PENDING" for i in range(n)):
        return None  # pending tasks split off an array: they fold back into its record (general path)
    idx = list(range(n))
    if not p.all_states:
        wanted = p.states if p.states is not None else ACTIVE
        if not (constant("state") and state[0] in wanted):
            idx = [i for i in idx if state[i] in wanted]
    if p.jobs:
        ids = {j for j, _t in p.jobs}
        jid, ajid = cols["job_id"], cols["array_job_id"]
        idx = [i for i in idx if jid[i] in ids or (ajid[i] and ajid[i] in ids)]
    if p.users is not None:
        uids = set(p.users)
        uid = cols["uid"]
        idx = [i for i in idx if uid[i] in uids]
    if p.names:
        lowered = {x.lower() for x in p.names}
        name = cols["name"]
        idx = [i for i in idx if (name[i] or "").lower() in lowered]
    if p.partitions:
        parts = set(p.partitions)
        part = cols["partition"]
        idx = [i for i in idx if set((part[i] or "").split(",")) & parts]
    # default sort: partition, compact state, priority descending (stable on the controller's order)
    part, prio = cols["partition"], cols["priority"]
    if constant("partition") and constant("state"):
        if isinstance(prio, range) and prio.step < 0:
            pass  # priorities already descend in the controller's order (a block of jobs by age)
        elif not constant("priority"):
            neg = [-(v or 0) for v in prio]
            idx.sort(key=neg.__getitem__)
    else:
        keyed = sorted((part[i] or "", COMPACT.get(state[i], ""), -(prio[i] or 0), k, i)
                       for k, i in enumerate(idx))
        idx = [t[4] for t in keyed]
    lines = [] if p.noheader else [_header(prefix, specs, columns)]
    if not idx:
        return lines
    pieces = [compile_format(prefix, [], columns)[0]]
    varying: list[list[Any]] = []
    for s, vec in zip(specs, vecs, strict=True):
        piece = compile_format("", [s], columns)[0]
        if vec is not None:
            col = columns[s.key]
            if all(constant(f) for f in col.needs) and (not col.field or constant(col.field)):
                piece = (piece % (vec(cols, idx[:1])[0],)).replace("%", "%%")
            else:
                varying.append(vec(cols, idx))
        pieces.append(piece)
    template = "".join(pieces)
    if len(varying) == 1:
        lines.extend([template % (v,) for v in varying[0]])
    elif varying:
        lines.extend([template % row for row in zip(*varying, strict=True)])
    else:
        lines.extend([template.replace("%%", "%")] * len(idx))
    return lines


def _header(prefix: str, specs: list[Spec], columns: dict[str, Column]) -> str:
    from orchestrator.slurm.fmtspec import print_str

    parts = [prefix]
    for s in specs:
        col = columns.get(s.key)
        if col is None:
            parts.append(s.literal if s.literal is not None else s.suffix)
            continue
        key = s.key[1:] if s.key.startswith("~") else s.key
        letter = LONG_NAMES.get(key, key)
        cut = letter not in _HEADER_UNCUT
        parts.append(print_str(col.header, s.width, s.right, cut) + s.suffix)
    return "".join(parts)


# ------------------------------------------------------------------------------------------------
# Job steps (-s): their own format letters and -O names, as squeue's step printers define them


_STEP_BATCH = 0xFFFFFFFB  # SLURM_BATCH_SCRIPT and SLURM_EXTERN_CONT: sorted after numbered steps
_STEP_EXTERN = 0xFFFFFFFC


def _step_id(s: dict[str, Any]) -> str:
    """``12.0``, ``12.batch``, or ``7_3.0`` for a step of an array task."""
    if s["array_job_id"]:
        return f"{s['array_job_id']}_{s['array_task_id']}.{s['step_id']}"
    return f"{s['job_id']}.{s['step_id']}"


def _step_wanted(wanted: list[tuple[int, int | None, int]], jid: int, ajid: int, task: int | None,
                 sid: str) -> bool:
    """``-s`` list matching as squeue's step filter: the step number, then the job or array task."""
    num = _step_num(sid)
    return any(step == num and ((t is None and j in (jid, ajid)) or (t is not None and (j, t) == (ajid, task)))
               for j, t, step in wanted)


def _step_num(sid: str) -> int:
    return int(sid) if sid.isdigit() else _STEP_BATCH if sid == "batch" else _STEP_EXTERN


def _first_host(nodes: str) -> str:
    """The lowest node of a step's list, which ``-S N`` sorts steps by."""
    from orchestrator.slurm.hostlist import HostlistError, expand, host_key

    try:
        hosts = expand(nodes) if nodes else []
    except HostlistError:
        hosts = [nodes]
    return min(hosts, key=host_key, default="")


# the keys squeue sorts steps by; any other -S letter is skipped without a word
STEP_SORT_KEYS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "i": lambda s: (s["job_id"], _step_num(str(s["step_id"]))),
    "l": lambda s: 0,  # steps get no time limit of their own: all UNLIMITED
    "M": lambda s: s["used"],
    "P": lambda s: s["partition"] or "",
    "S": lambda s: s.get("start_time") or 0,
    "u": lambda s: s["user"] or "",
    "U": lambda s: s["uid"] or 0,
    "cluster": lambda s: s["cluster"] or "",
}


def sort_steps(steps: list[dict[str, Any]], spec: str | None) -> None:
    """Sort as squeue sorts steps: keys applied last to first (``P,i`` when none are given; an empty
    list keeps the controller's order)."""
    for ch, reverse in sort_fields("P,i" if spec is None else spec):
        if ch == "N":
            from orchestrator.slurm.hostlist import host_key

            steps.sort(key=lambda s: host_key(_first_host(s.get("nodes") or "")), reverse=reverse)
            continue
        key = STEP_SORT_KEYS.get(ch)
        if key is not None:
            steps.sort(key=key, reverse=reverse)


def _sv(key: str, null: bool = False) -> Callable[[dict[str, Any]], str]:
    def get(s: dict[str, Any]) -> str:
        v = s.get(key)
        return "(null)" if null and v in (None, "") else "" if v is None else str(v)
    return get


_NULL = _const("(null)")  # step fields minihpc does not track print as Slurm prints their NULL

STEP_COLUMNS: dict[str, Column] = {
    "A": Column("TASKS", _sv("num_tasks")),
    "b": Column("TRES_PER_JOB", _NULL),  # sic: Slurm 22.05's header for the vestigial %b
    "i": Column("STEPID", _step_id),
    "j": Column("NAME", _sv("name")),
    "l": Column("TIME_LIMIT", _const("UNLIMITED")),  # steps get no limit of their own unless srun -t
    "M": Column("TIME", lambda s: _secs(s["used"]), False),
    "N": Column("NODELIST", _sv("nodes"), False),
    "P": Column("PARTITION", _sv("partition")),
    "S": Column("START_TIME", lambda s: _time(s.get("start_time"))),
    "U": Column("UID", _sv("uid")),
    "u": Column("USER", _sv("user")),
}
STEP_LONG: dict[str, Column] = {
    "cluster": Column("CLUSTER", _sv("cluster")),
    "container": Column("CONTAINER", _NULL),
    "numtasks": STEP_COLUMNS["A"],
    "gres": STEP_COLUMNS["b"],
    "stepid": STEP_COLUMNS["i"],
    "stepname": STEP_COLUMNS["j"],
    "timelimit": STEP_COLUMNS["l"],
    "timeused": STEP_COLUMNS["M"],
    "nodes": STEP_COLUMNS["N"],
    "partition": STEP_COLUMNS["P"],
    "starttime": STEP_COLUMNS["S"],
    "userid": STEP_COLUMNS["U"],
    "username": STEP_COLUMNS["u"],
    "arrayjobid": Column("ARRAY_JOB_ID", _sv("array_job_id")),
    "arraytaskid": Column("ARRAY_TASK_ID",
                          lambda s: "N/A" if s["array_task_id"] is None else str(s["array_task_id"])),
    "jobid": Column("JOB_ID", _sv("job_id")),
    "network": Column("NETWORK", _NULL),
    "numcpus": Column("NUM_CPUS", _sv("cpus")),
    "cpufreq": Column("CPU_FREQ", _const("Unknown-Unknown:Unknown")),
    "resvports": Column("RESERVED_PORTS", _NULL),
    "stepstate": Column("STATE", _sv("state")),
    "cpus-per-tres": Column("CPUS_PER_TRES", _NULL),
    "mem-per-tres": Column("MEM_PER_TRES", _NULL),
    "tres-bind": Column("TRES_BIND", _NULL),
    "tres-freq": Column("TRES_FREQ", _NULL),
    "tres-per-job": Column("TRES_PER_STEP", _NULL),
    "tres-per-step": Column("TRES_PER_STEP", _NULL),
    "tres-per-node": STEP_COLUMNS["b"],
    "tres-per-socket": Column("TRES_PER_SOCKET", _NULL),
    "tres-per-task": Column("TRES_PER_TASK", _NULL),
}


def _step_long_column(name: str) -> Column | None:
    key = name.lower()
    if key.startswith("numtask"):
        key = "numtasks"
    elif key.startswith("container"):
        key = "container"
    return STEP_LONG.get(key)


def build_step_format(p: Params) -> tuple[str, list[Spec], dict[str, Column]]:
    """The step view's specs (``-o``/``-O``, else Slurm's step default; ``-l`` does not apply)."""
    columns: dict[str, Column] = dict(STEP_COLUMNS)
    if p.format is None and p.format_long is not None:
        return "", _resolve_long_format(p.format_long, _step_long_column, columns, "job step"), columns
    prefix, resolved = _resolve_format(p.format if p.format is not None else STEP_FORMAT, columns, "job step")
    return prefix, resolved, columns


def _step_header(prefix: str, specs: list[Spec], columns: dict[str, Column]) -> str:
    from orchestrator.slurm.fmtspec import print_str

    parts = [prefix]
    for s in specs:
        col = columns.get(s.key)
        if col is None:
            parts.append(s.literal if s.literal is not None else s.suffix)
            continue
        if col.header == "NODELIST":  # Slurm prints these two headers uncut / left-justified
            parts.append(print_str(col.header, s.width, s.right, False) + s.suffix)
        elif col.header == "START_TIME":
            parts.append(print_str(col.header, s.width, False, True) + s.suffix)
        else:
            parts.append(print_str(col.header, s.width, s.right, True) + s.suffix)
    return "".join(parts)


def _show_steps(p: Params, cluster: str | None) -> bool:
    from orchestrator.commands import _common
    from orchestrator.slurm.fmtspec import render

    prefix, specs, columns = build_step_format(p)
    RpcError = _common.rpc_error_type()
    body: dict[str, Any] = {"fields": ["job_id", "name", "partition", "user", "uid", "state", "steps",
                                       "array_job_id", "array_task_id", "cluster"], "steps": True}
    # the controller picks the jobs (-u, -p, -j as N or N_T); the steps and their nodes are sifted here
    if p.users is not None:
        body["users"] = [str(u) for u in p.users]
    if p.partitions is not None:
        body["partitions"] = list(p.partitions)
    if p.jobs:
        body["job_ids"] = [str(j) if t is None else f"{j}_{t}" for j, t in p.jobs]
    try:
        reply = _common.make_client(cluster).call("jobs", body)
    except RpcError as exc:
        if p.jobs and getattr(exc, "code", None) == "ESLURM_INVALID_JOB_ID":
            reply = {}  # one -j id the controller does not know: no steps, as squeue -s says it
        else:
            sys.stderr.write(f"slurm_get_job_steps error: {exc.message}\n")  # type: ignore[attr-defined]
            return True
    Ctx.now = float(reply.get("now") or 0) or __import__("time").time()
    names = reply.get("fields") or []
    steps: list[dict[str, Any]] = []
    for row in reply.get("rows") or []:
        r = dict(zip(names, row, strict=False))
        jid, ajid, task = r["job_id"], r.get("array_job_id") or 0, r.get("array_task_id")
        for st in r.get("steps") or []:
            if st.get("state") not in ("RUNNING", "COMPLETING"):
                continue
            sid = st.get("step_id")
            if p.steps is not None and not _step_wanted(p.steps, jid, ajid, task, str(sid)):
                continue
            if p.nodes is not None:
                from orchestrator.slurm.hostlist import expand

                if not st.get("nodes") or not p.nodes.intersection(expand(st["nodes"])):
                    continue
            steps.append({
                **st, "name": st.get("name") or r.get("name") or "", "partition": r.get("partition") or "",
                "user": r.get("user") or "", "uid": r.get("uid"), "cluster": r.get("cluster") or "",
                "array_job_id": r.get("array_job_id") or 0, "array_task_id": r.get("array_task_id"),
                "used": max(0.0, Ctx.now - (st.get("start_time") or Ctx.now))})
    sort_steps(steps, p.sort)
    template, funcs, _hdr = compile_format(prefix, specs, columns)
    lines = [] if p.noheader else [_step_header(prefix, specs, columns)]
    lines.extend(render(template, funcs, steps))
    out("\n".join(lines) + ("\n" if lines else ""))
    return False
