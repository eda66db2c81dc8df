"""``sacct``: accounting records of jobs and their steps, in Slurm's fixed-width or parsable form.

Workflow tools poll job state through ``sacct -X -P -o JobID,State`` style
calls, so field names (case-insensitive prefixes), widths (``%N``, negative =
left-justified), the ``+`` truncation marker, ``-p``/``-P`` endings and the
default time window (midnight today unless ``-j``) follow Slurm's sacct.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from orchestrator.commands._common import Exit, error, getopt, out, run, split_list
from orchestrator.lazylog import get_logger
from orchestrator.slurm.options import NO_ARG, OPTIONAL, REQUIRED, longopts

log = get_logger(__name__)

PROG = "sacct"
SHORTOPTS = "aA:bBcC:DeE:f:F:g:hi:I:j:k:K:lLM:nN:o:pPq:r:s:S:Ttu:UvVW:x:X"
LONGOPTS = longopts([
    ("allusers", NO_ARG, "a"), ("accounts", REQUIRED, "A"), ("allocations", NO_ARG, "X"), ("brief", NO_ARG, "b"),
    ("batch-script", NO_ARG, "B"), ("completion", NO_ARG, "c"), ("constraints", REQUIRED, "C"),
    ("delimiter", REQUIRED, "delimiter"), ("duplicates", NO_ARG, "D"), ("federation", NO_ARG, "federation"),
    ("helpformat", NO_ARG, "e"), ("help-fields", NO_ARG, "e"), ("endtime", REQUIRED, "E"),
    ("env-vars", NO_ARG, "env-vars"), ("file", REQUIRED, "f"), ("flags", REQUIRED, "F"), ("gid", REQUIRED, "g"),
    ("group", REQUIRED, "g"), ("help", NO_ARG, "h"), ("local", NO_ARG, "local"), ("name", REQUIRED, "name"),
    ("nnodes", REQUIRED, "i"), ("ncpus", REQUIRED, "I"), ("jobs", REQUIRED, "j"), ("timelimit-min", REQUIRED, "k"),
    ("timelimit-max", REQUIRED, "K"), ("long", NO_ARG, "l"), ("allclusters", NO_ARG, "L"),
    ("cluster", REQUIRED, "M"), ("clusters", REQUIRED, "M"), ("nodelist", REQUIRED, "N"),
    ("noconvert", NO_ARG, "noconvert"), ("units", REQUIRED, "units"), ("noheader", NO_ARG, "n"),
    ("fields", REQUIRED, "o"), ("format", REQUIRED, "o"), ("parsable", NO_ARG, "p"), ("parsable2", NO_ARG, "P"),
    ("qos", REQUIRED, "q"), ("partition", REQUIRED, "r"), ("reason", REQUIRED, "R"), ("state", REQUIRED, "s"),
    ("starttime", REQUIRED, "S"), ("truncate", NO_ARG, "T"), ("uid", REQUIRED, "u"),
    ("use-local-uid", NO_ARG, "use-local-uid"), ("usage", NO_ARG, "U"), ("user", REQUIRED, "u"),
    ("verbose", NO_ARG, "v"), ("version", NO_ARG, "V"), ("wckeys", REQUIRED, "W"),
    ("whole-hetjob", OPTIONAL, "whole-hetjob"), ("associations", REQUIRED, "x"), ("json", NO_ARG, "json"),
    ("yaml", NO_ARG, "yaml"),
])

BRIEF_FIELDS = "jobid,state,exitcode"
DEFAULT_FIELDS = "jobid,jobname,partition,account,alloccpus,state,exitcode"
LONG_FIELDS = ("jobid,jobidraw,jobname,partition,maxvmsize,maxvmsizenode,maxvmsizetask,avevmsize,maxrss,maxrssnode,"
               "maxrsstask,averss,maxpages,maxpagesnode,maxpagestask,avepages,mincpu,mincpunode,mincputask,avecpu,"
               "ntasks,alloccpus,elapsed,state,exitcode,avecpufreq,reqcpufreqmin,reqcpufreqmax,reqcpufreqgov,"
               "reqmem,consumedenergy,maxdiskread,maxdiskreadnode,maxdiskreadtask,avediskread,maxdiskwrite,"
               "maxdiskwritenode,maxdiskwritetask,avediskwrite,reqtres,alloctres,tresusageinave,tresusageinmax,"
               "tresusageinmaxn,tresusageinmaxt,tresusageinmin,tresusageinminn,tresusageinmint,tresusageintot,"
               "tresusageoutmax,tresusageoutmaxn,tresusageoutmaxt,tresusageoutave,tresusageouttot")

# (width, name, kind) in Slurm's table order; kind: s = string, u = number, t = elapsed, d = date
FIELDS: list[tuple[int, str, str]] = [
    (10, "Account", "s"), (15, "AdminComment", "s"), (10, "AllocCPUS", "u"), (10, "AllocNodes", "s"),
    (10, "AllocTRES", "s"), (7, "AssocID", "u"), (10, "AveCPU", "s"), (10, "AveCPUFreq", "s"),
    (14, "AveDiskRead", "s"), (14, "AveDiskWrite", "s"), (10, "AvePages", "s"), (10, "AveRSS", "s"),
    (10, "AveVMSize", "s"), (16, "BlockID", "s"), (10, "Cluster", "s"), (14, "Comment", "s"),
    (19, "Constraints", "s"), (14, "ConsumedEnergy", "s"), (17, "ConsumedEnergyRaw", "u"), (19, "Container", "s"),
    (10, "CPUTime", "t"), (10, "CPUTimeRAW", "u"), (-10, "DBIndex", "u"), (15, "DerivedExitCode", "s"),
    (10, "Elapsed", "t"), (10, "ElapsedRaw", "u"), (19, "Eligible", "d"), (19, "End", "d"), (8, "ExitCode", "s"),
    (19, "Flags", "s"), (6, "GID", "u"), (9, "Group", "s"), (-12, "JobID", "s"), (-12, "JobIDRaw", "s"),
    (10, "JobName", "s"), (9, "Layout", "s"), (12, "MaxDiskRead", "s"), (15, "MaxDiskReadNode", "s"),
    (15, "MaxDiskReadTask", "u"), (12, "MaxDiskWrite", "s"), (16, "MaxDiskWriteNode", "s"),
    (16, "MaxDiskWriteTask", "u"), (8, "MaxPages", "s"), (12, "MaxPagesNode", "s"), (14, "MaxPagesTask", "u"),
    (10, "MaxRSS", "s"), (10, "MaxRSSNode", "s"), (10, "MaxRSSTask", "u"), (10, "MaxVMSize", "s"),
    (14, "MaxVMSizeNode", "s"), (14, "MaxVMSizeTask", "u"), (12, "McsLabel", "s"), (10, "MinCPU", "s"),
    (10, "MinCPUNode", "s"), (10, "MinCPUTask", "u"), (10, "NCPUS", "u"), (8, "NNodes", "u"),
    (15, "NodeList", "s"), (8, "NTasks", "u"), (10, "Partition", "s"), (10, "Priority", "u"), (10, "QOS", "s"),
    (6, "QOSRAW", "u"), (22, "Reason", "s"), (10, "ReqCPUFreq", "s"), (13, "ReqCPUFreqGov", "s"),
    (13, "ReqCPUFreqMax", "s"), (13, "ReqCPUFreqMin", "s"), (8, "ReqCPUS", "u"), (10, "ReqMem", "s"),
    (8, "ReqNodes", "s"), (10, "ReqTRES", "s"), (20, "Reservation", "s"), (8, "ReservationId", "u"),
    (10, "Reserved", "t"), (10, "ResvCPU", "t"), (10, "ResvCPURAW", "u"), (19, "Start", "d"), (10, "State", "s"),
    (19, "Submit", "d"), (20, "SubmitLine", "s"), (10, "Suspended", "t"), (15, "SystemComment", "s"),
    (10, "SystemCPU", "s"), (10, "Timelimit", "s"), (10, "TimelimitRaw", "s"), (10, "TotalCPU", "s"),
    (14, "TRESUsageInAve", "s"), (14, "TRESUsageInMax", "s"), (18, "TRESUsageInMaxNode", "s"),
    (18, "TRESUsageInMaxTask", "s"), (14, "TRESUsageInMin", "s"), (18, "TRESUsageInMinNode", "s"),
    (18, "TRESUsageInMinTask", "s"), (14, "TRESUsageInTot", "s"), (15, "TRESUsageOutAve", "s"),
    (15, "TRESUsageOutMax", "s"), (19, "TRESUsageOutMaxNode", "s"), (19, "TRESUsageOutMaxTask", "s"),
    (15, "TRESUsageOutMin", "s"), (19, "TRESUsageOutMinNode", "s"), (19, "TRESUsageOutMinTask", "s"),
    (15, "TRESUsageOutTot", "s"), (6, "UID", "u"), (9, "User", "s"), (10, "UserCPU", "s"), (10, "WCKey", "s"),
    (10, "WCKeyID", "u"), (20, "WorkDir", "s"),
]

FINISHED = {"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE",
            "OUT_OF_MEMORY", "REVOKED"}
_STATES = {"PENDING": "PD", "RUNNING": "R", "SUSPENDED": "S", "COMPLETED": "CD", "CANCELLED": "CA",
           "FAILED": "F", "TIMEOUT": "TO", "NODE_FAIL": "NF", "PREEMPTED": "PR", "BOOT_FAIL": "BF",
           "DEADLINE": "DL", "OUT_OF_MEMORY": "OOM", "COMPLETING": "CG", "CONFIGURING": "CF", "RESIZING": "RS",
           "REQUEUED": "RQ", "REQUEUE_FED": "RF", "REQUEUE_HOLD": "RH", "REVOKED": "RV", "SIGNALING": "SI",
           "SPECIAL_EXIT": "SE", "STAGE_OUT": "SO", "STOPPED": "ST"}


def main(argv: list[str] | None = None) -> int:
    return run(PROG, lambda: _main(list(sys.argv[1:] if argv is None else argv)))


class Params:
    def __init__(self) -> None:
        self.all_users = False
        self.accounts: list[str] | None = None
        self.brief = False
        self.long = False
        self.fields: list[str] = []
        self.delimiter: str | None = None
        self.end: float | None = None
        self.start: float | None = None
        self.help = 0
        self.names: list[str] | None = None
        self.jobs: list[str] = []
        self.clusters: list[str] | None = None
        self.nodes: str | None = None
        self.noheader = False
        self.parsable = 0  # 1 = -p (trailing delimiter), 2 = -P
        self.partitions: list[str] | None = None
        self.reasons: set[str] | None = None  # --reason: the reason a job last waited for (slurmdbd's)
        self.states: list[str] | None = None
        self.uids: list[int] | None = None
        self.no_steps = False
        self.duplicates = False
        self.verbose = 0
        self.inputs = ""  # -B/--batch-script: "script"; --env-vars: "env"
        self.completion = False  # -c: read the job completion plugin's records (JobCompType is jobcomp/none)
        self.qos: set[str] | None = None
        self.gids: set[int] | None = None
        self.nnodes: tuple[int, int] | None = None  # -i min[-max]
        self.ncpus: tuple[int, int] | None = None  # -I min[-max]
        self.limit_min = 0  # -k (minutes; a job's UNLIMITED counts as more than any)
        self.limit_max = 0  # -K: only with -k
        self.unit: int | None = None  # --units: 1 K ... 5 P
        self.noconvert = False
        self.truncate = False  # -T: times cut to the -S/-E window


def _job_state(text: str) -> str | None:
    key = text.upper()
    if key in _STATES:
        return key
    for name, short in _STATES.items():
        if short == key:
            return name
    if key == "CANCELED":
        return "CANCELLED"
    return None


def _parse_time(text: str) -> float:
    """-S/-E as sacct reads them: a time without a date is its last occurrence (parse_time's past)."""
    from orchestrator.slurm.timefmt import DateSpecError, parse_date

    try:
        return parse_date(text, past=True)
    except DateSpecError as exc:
        sys.stderr.write(f"{exc}\n")
        raise Exit(1) from None


def _count_range(text: str) -> tuple[int, int] | None:
    """``-i``/``-I``: ``N`` or ``MIN-MAX``."""
    low, dash, high = text.partition("-")
    if not low.isdigit() or (dash and not high.isdigit()):
        return None
    return int(low), int(high) if dash else int(low)


def _valid_step(item: str) -> bool:
    import re

    return bool(re.match(r"^\d+(_(\d+|\[[\d,\-%]+\]|\*))?(\+\d+)?(\.(\d+|batch|extern|interactive))?$", item))


def parse_args(argv: list[str]) -> Params:
    from orchestrator.commands import _common

    opts, positionals = getopt(PROG, argv, SHORTOPTS, LONGOPTS, try_help=False)
    p = Params()
    field_text = ""
    for key, value in opts:
        v = value or ""
        if key == "a":
            p.all_users = True
        elif key == "A":
            p.accounts = (p.accounts or []) + split_list(v)
        elif key == "b":
            p.brief = True
        elif key == "delimiter":
            p.delimiter = v
        elif key == "M":
            if v.lower() in ("all", "-1"):
                cfg = _common.client_config()
                p.clusters = list(cfg.clusters) if cfg else None
            else:
                p.clusters = _common.resolve_clusters(PROG, v)
        elif key == "L":
            cfg = _common.client_config()
            p.clusters = list(cfg.clusters) if cfg else None
        elif key == "e":
            p.help = 2
        elif key == "E":
            p.end = _parse_time(v)
        elif key == "h":
            p.help = 1
        elif key == "j":
            for item in split_list(v):
                if not _valid_step(item):
                    _common.fatal(PROG, f"Bad job/step specified: {item}")
                p.jobs.append(item)
        elif key == "l":
            p.long = True
        elif key == "n":
            p.noheader = True
        elif key == "N":
            p.nodes = v
        elif key == "name":
            p.names = (p.names or []) + split_list(v)
        elif key == "o":
            field_text += v + ","
        elif key == "p":
            p.parsable = 1
        elif key == "P":
            p.parsable = 2
        elif key == "r":
            p.partitions = (p.partitions or []) + split_list(v)
        elif key == "R":
            from orchestrator.slurm.reasons import reason_name

            for item in split_list(v):
                name = reason_name(item)
                if name is None:
                    _common.fatal(PROG, f"unrecognized job reason value '{item}'")
                p.reasons = (p.reasons or set()) | {name}
        elif key == "s":
            for item in split_list(v):
                state = _job_state(item)
                if state is None:
                    _common.fatal(PROG, f"unrecognized job state value '{item}'")
                p.states = (p.states or []) + [state]
        elif key == "S":
            p.start = _parse_time(v)
        elif key == "U":
            p.help = 3
        elif key == "u":
            if v == "-1":
                p.all_users = True
                continue
            p.all_users = False
            uids = []
            for item in split_list(v):
                uid = _common.user_id(item)
                if uid is None:
                    error(PROG, f"Invalid user id: {item}")
                    raise Exit(1)
                uids.append(uid)
            p.uids = (p.uids or []) + uids
        elif key == "v":
            p.verbose += 1
        elif key == "V":
            _common.print_version()
            raise Exit(0)
        elif key in ("X", "t"):
            p.no_steps = True
        elif key == "D":
            p.duplicates = True
        elif key == "c":
            p.completion = True
        elif key == "units":
            unit = "KMGTP".find(v[:1].upper()) if v else -1
            if unit < 0:
                shown = v[:1] if v else ""  # an empty value: 22.05 prints up to the NUL it has there
                error(PROG, f"Invalid unit type '{shown}" + ("'. Possible options are 'KMGTP'" if shown else ""))
                _common.fatal(PROG, "Invalid unit type")
            p.unit = unit + 1
        elif key == "noconvert":
            p.noconvert = True
        elif key == "T":
            p.truncate = True
        elif key == "q":
            from orchestrator.slurm.qos import QOS_NAMES

            for item in split_list(v):
                if item.lower() not in QOS_NAMES:
                    error(PROG, f"You gave a bad qos '{item}'. Valid QOS's are {','.join(QOS_NAMES)}")
                    _common.fatal(PROG, "problem processing qos list")
                p.qos = (p.qos or set()) | {item.lower()}
        elif key == "g":
            for item in split_list(v):
                gid = _common.group_id(item)
                if gid is None:
                    error(PROG, f"Invalid group id: {item}")
                    raise Exit(1)
                p.gids = (p.gids or set()) | {gid}
        elif key in ("i", "I"):
            span = _count_range(v)
            if span is None:
                error(PROG, f'Invalid numeric value "{v}" for requested {"node" if key == "i" else "cpu"} range.')
                raise Exit(1)
            if key == "i":
                p.nnodes = span
            else:
                p.ncpus = span
        elif key in ("k", "K"):
            from orchestrator.slurm.timefmt import INFINITE, TimeFormatError, parse_limit

            try:
                minutes = parse_limit(v)
            except TimeFormatError:
                _common.fatal(PROG, "Invalid time limit specification")
            minutes = 2**31 if minutes == INFINITE else minutes
            if key == "k":
                p.limit_min = minutes
            else:
                p.limit_max = minutes
        elif key in ("B", "env-vars"):
            want = "script" if key == "B" else "env"
            if p.inputs and p.inputs != want:
                _common.fatal(PROG, "Options --batch-script and --env-vars are mutually exclusive")
            p.inputs = want
    global _UNIT, _NOCONVERT
    _UNIT, _NOCONVERT = p.unit, p.noconvert  # read where sizes are printed
    if p.inputs and not p.jobs:
        what = "scripts" if p.inputs == "script" else "environment"
        _common.fatal(PROG, f"When requesting job {what} you must also request specific jobs with the '-j' option.")
    if p.long and field_text:
        _common.fatal(PROG, "Options -o(--format) and -l(--long) are mutually exclusive. Please remove one and retry.")
    # default time window (slurmdb_job_cond_def_start_end)
    now = time.time()
    if p.states:
        if not p.start and not p.jobs:
            p.start = now
        if p.start and not p.end:
            p.end = p.start
    elif not p.jobs and not p.start:
        lt = time.localtime(now)
        p.start = time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday, 0, 0, 0, 0, 0, -1))
    if not p.end:
        p.end = now
    if p.end and p.start and p.start > p.end:
        from orchestrator.slurm.fmtspec import make_time_str

        error(PROG, f"Start time ({make_time_str(p.start)}) requested is after end time ({make_time_str(p.end)}).")
        raise Exit(1)
    if p.help:
        return p
    if p.brief:
        field_text += BRIEF_FIELDS + ","
    if p.long:
        field_text += LONG_FIELDS + ","
    if not field_text:
        field_text = os.environ.get("SACCT_FORMAT") or DEFAULT_FIELDS
        field_text += ","
    p.fields = [f for f in field_text.split(",")]
    if positionals:
        error(PROG, "Unknown arguments:")
        for arg in positionals:
            error(PROG, f" {arg}")
        raise Exit(1)
    return p


def resolve_fields(texts: list[str]) -> list[tuple[str, int, str]]:
    """``name[%N]`` items -> (name, width, kind); unknown names exit as Slurm does."""
    out_fields: list[tuple[str, int, str]] = []
    for raw in texts:
        item = raw.strip()
        if not item:
            continue
        width: int | None = None
        if "%" in item:
            item, _, num = item.partition("%")
            width = _atoi(num)
        if "all"[:len(item)].lower() == item.lower():  # "ALL", a prefix of it, or nothing before a %
            for w, name, kind in FIELDS:
                out_fields.append((name, width if width is not None else w, kind))
            continue
        for w, name, kind in FIELDS:
            if name.lower().startswith(item.lower()):
                out_fields.append((name, width if width is not None else w, kind))
                break
        else:
            from orchestrator.commands._common import fatal

            if item.lower() == "allocgres":
                fatal(PROG, "AllocGRES has been removed, please use AllocTRES")
            if item.lower() == "reqgres":
                fatal(PROG, "ReqGRES has been removed, please use ReqTRES")
            error(PROG, f'Invalid field requested: "{item}"')
            raise Exit(1)
    return out_fields


def _atoi(s: str) -> int:
    s = s.strip()
    j = 0
    if j < len(s) and s[j] in "+-":
        j += 1
    while j < len(s) and s[j].isdigit():
        j += 1
    try:
        return int(s[:j])
    except ValueError:
        return 0


# ------------------------------------------------------------------------------------------------
# Values


def elapsed_cpu(seconds: float) -> str:
    """sacct's CPU-time form: ``MM:SS.mmm`` under an hour, else ``HH:MM:SS`` or ``D-HH:MM:SS``."""
    secs = int(seconds)
    usecs = round((seconds - secs) * 1e6)
    if usecs >= 1_000_000:
        secs += usecs // 1_000_000
        usecs %= 1_000_000
    subsec = usecs // 1000 if usecs > 0 else 0
    s = secs % 60
    m = (secs // 60) % 60
    h = (secs // 3600) % 24
    d = secs // 86400
    if d:
        return f"{d}-{h:02d}:{m:02d}:{s:02d}"
    if h:
        return f"{h:02d}:{m:02d}:{s:02d}"
    if subsec:
        return f"{m:02d}:{s:02d}.{subsec:03d}"
    return f"00:{m:02d}:{s:02d}"


_UNIT: int | None = None
"""--units: the unit every size prints in (1 K ... 5 P)."""
_NOCONVERT = False
"""--noconvert: sizes stay in the unit they are kept in."""


def _size(num: int, orig: int) -> str:
    """A size as sacct prints it, in ``orig``'s unit (1 K, 2 M) unless --units or --noconvert say otherwise."""
    from orchestrator.slurm.fmtspec import convert_num_unit

    return convert_num_unit(num, orig, exact=not _NOCONVERT, spec=_UNIT)


def _rss(kb: Any) -> str | None:
    if kb is None:
        return None
    return _size(int(kb), 1)


class Row:
    """One output line: a job (step None) or one of its steps."""

    def __init__(self, job: dict[str, Any], step: dict[str, Any] | None, now: float) -> None:
        self.job = job
        self.step = step
        self.now = now


def _job_id_text(j: dict[str, Any]) -> str:
    tstr = j.get("array_task_str") or ""
    if tstr:
        maxt = j.get("array_max_tasks") or 0
        if maxt and "%" not in tstr:
            tstr = f"{tstr}%{maxt}"
        return f"{j.get('array_job_id') or j['job_id']}_[{tstr}]"
    if j.get("array_task_id") is not None:
        return f"{j.get('array_job_id') or j['job_id']}_{j['array_task_id']}"
    return str(j["job_id"])


def _elapsed(rec: dict[str, Any], now: float) -> int:
    start = rec.get("start_time") or 0
    if not start:
        return 0
    end = rec.get("end_time") or 0
    if not end or (rec.get("state") in ("RUNNING", "COMPLETING", "SUSPENDED") and not rec.get("truncated")):
        end = now
    from orchestrator.slurm.accounting import elapsed_seconds  # whole time_t seconds, as the credits ledger

    return elapsed_seconds(start, end)


def _alloc_cpus(j: dict[str, Any]) -> int:
    """Slurm prints the allocated CPU count, or the requested one when nothing was allocated."""
    if j.get("alloc_cpus"):
        return int(j["alloc_cpus"])
    return _req_cpus(j)


def _req_mem(j: dict[str, Any]) -> str:
    if j.get("mem_per_node"):
        return _size(int(j["mem_per_node"]), 2)
    return _size(int(j.get("mem_per_cpu") or 0) * max(1, _req_cpus(j)), 2)


def _req_cpus(j: dict[str, Any]) -> int:
    return max(int(j.get("num_tasks") or 1) * int(j.get("cpus_per_task") or 1), int(j.get("num_nodes") or 1))


def _tres(cpus: int, mem: int, nodes: int, billing: bool, gres: str = "") -> str:
    from orchestrator.slurm.units import format_mem

    parts = []
    if billing:
        parts.append(f"billing={cpus}")
    parts.append(f"cpu={cpus}")
    if gres:
        count = gres.rsplit(":", 1)[-1]
        if count.isdigit():
            parts.append(f"gres/gpu={int(count) * nodes}")
    if mem:
        parts.append(f"mem={format_mem(mem)}")
    parts.append(f"node={nodes}")
    return ",".join(parts)


def _job_mem_total(j: dict[str, Any]) -> int:
    from orchestrator.slurm.accounting import tres_mem

    return int(j.get("alloc_mem") or 0) or tres_mem(j, int(j.get("num_nodes") or 1), max(1, _req_cpus(j)))


def _state(rec: dict[str, Any]) -> str:
    """A job's or a step's state; one that was scancelled names who did it."""
    state = str(rec.get("state") or "")
    if state == "CANCELLED" and rec.get("cancelled_by") is not None:
        return f"CANCELLED by {rec['cancelled_by']}"
    return state


def _job_cpu(j: dict[str, Any], key: str) -> float:
    steps = j.get("steps") or []
    if steps:
        return float(sum(float(s.get(key) or 0) for s in steps))
    return float(j.get(key) or 0) if key == "total_cpu" else 0.0


def value(name: str, row: Row) -> Any:
    """A field's value for one row; None prints blank."""
    from orchestrator.slurm.fmtspec import make_time_str
    from orchestrator.slurm.timefmt import format_limit_long

    j, s = row.job, row.step
    if name == "JobID":
        return _job_id_text(j) + (f".{s['step_id']}" if s else "")
    if name == "JobIDRaw":
        return str(j["job_id"]) + (f".{s['step_id']}" if s else "")
    if name == "JobName":
        return (s.get("name") or str(s.get("step_id"))) if s else j.get("name")
    if name == "Account":
        return j.get("account")
    if name in ("AllocCPUS", "NCPUS"):
        return int(s.get("cpus") or 0) if s else _alloc_cpus(j)
    if name == "State":
        return _state(s or j)
    if name == "ExitCode":
        rec = s if s else j
        code = int(rec.get("exit_code") or 0)
        # sacct prints an exit code of 128 or more less 128 (exit 200 is 72:0), DerivedExitCode as it is
        return f"{code - 128 if code >= 128 else code}:{rec.get('exit_signal') or 0}"
    if name == "DerivedExitCode":
        from orchestrator.slurm.accounting import derived_text

        return None if s else derived_text(int(j.get("derived_exit_code") or 0))
    if name == "Cluster":
        return j.get("cluster")
    if name in ("Partition", "QOS", "WorkDir", "Comment", "Reason", "Group", "User", "Constraints"):
        if s:
            return None
        key = {"Partition": "partition", "QOS": "qos", "WorkDir": "work_dir", "Comment": "comment",
               "Reason": "reason_prev", "Group": "group", "User": "user", "Constraints": "features"}[name]
        v = j.get(key)
        if name == "Reason":  # slurmdbd's: the last reason it waited for, not the one it ended with
            return v or "None"
        return v if v not in ("",) else None
    if name in ("UID", "GID"):
        return None if s else j.get("uid" if name == "UID" else "gid")
    if name == "Elapsed":
        return _elapsed(s or j, row.now)
    if name == "ElapsedRaw":
        return _elapsed(s or j, row.now)
    if name == "CPUTime":
        cpus = int(s.get("cpus") or 0) if s else _alloc_cpus(j)
        return _elapsed(s or j, row.now) * cpus
    if name == "CPUTimeRAW":
        cpus = int(s.get("cpus") or 0) if s else _alloc_cpus(j)
        return _elapsed(s or j, row.now) * cpus
    if name in ("TotalCPU", "UserCPU", "SystemCPU"):
        key = {"TotalCPU": "total_cpu", "UserCPU": "user_cpu", "SystemCPU": "system_cpu"}[name]
        secs = float(s.get(key) or 0) if s else _job_cpu(j, key)
        return elapsed_cpu(secs)
    if name in ("MaxRSS", "AveRSS"):
        return _rss(s.get("max_rss_kb")) if s and s.get("max_rss_kb") else None
    if name == "MaxRSSNode":
        return (s.get("max_rss_node") or None) if s and s.get("max_rss_kb") else None
    if name == "MaxRSSTask":
        return int(s.get("max_rss_task") or 0) if s and s.get("max_rss_kb") else None
    if name == "ReqMem":
        return None if s else _req_mem(j)
    if name == "ReqCPUS":
        return int(s.get("cpus") or 0) if s else _req_cpus(j)
    if name == "NNodes":
        return int(s.get("num_nodes") or 1) if s else int(j.get("num_nodes") or 1)
    if name == "NTasks":
        return int(s.get("num_tasks") or 0) if s else None
    if name == "NodeList":
        rec = s if s else j
        return rec.get("nodes") or "None assigned"
    if name in ("Start", "End", "Submit", "Eligible"):
        key = {"Start": "start_time", "End": "end_time", "Submit": "submit_time", "Eligible": "eligible_time"}[name]
        if s:
            if name in ("Submit", "Eligible"):
                return make_time_str(s.get("start_time"), "Unknown")
            return make_time_str(s.get(key), "Unknown")
        if name == "End" and j.get("state") in ("RUNNING", "PENDING", "COMPLETING", "SUSPENDED") \
                and not (j.get("truncated") and j.get("start_time")):
            return "Unknown"
        return make_time_str(j.get(key), "Unknown")  # a job never eligible (held, dependent): Unknown
    if name == "Timelimit":
        return None if s else format_limit_long(j.get("time_limit"))
    if name == "TimelimitRaw":
        if s:
            return None
        tl = j.get("time_limit")
        return "UNLIMITED" if tl is None or tl < 0 else str(tl)
    if name == "Priority":
        return None if s else j.get("priority")
    if name == "AllocTRES":
        if s:
            cpus = int(s.get("cpus") or 0)
            nodes = int(s.get("num_nodes") or 1)
            mem = int(j.get("alloc_mem") or 0)
            return _tres(cpus, mem, nodes, billing=False) if cpus else None
        if not j.get("alloc_cpus"):
            return None
        return _tres(int(j["alloc_cpus"]), int(j.get("alloc_mem") or 0), int(j.get("num_nodes") or 1), True,
                     str(j.get("gres") or ""))
    if name == "ReqTRES":
        if s:
            return None
        return _tres(_req_cpus(j), _job_mem_total(j), int(j.get("num_nodes") or 1), True, str(j.get("gres") or ""))
    if name == "AllocNodes":
        return None if s else str(j.get("num_nodes") or 0) if j.get("nodes") else "0"
    if name == "ReqNodes":
        return None if s else str(j.get("num_nodes") or 1)
    if name == "Layout":
        return "Unknown" if s else None
    if name == "Flags":
        return None
    if name in ("Suspended", "Reserved"):
        return 0
    if name == "SubmitLine":
        return None
    return None


def _cell(kind: str, width: int, v: Any, last: bool, parsable: int, delim: str | None) -> str:
    from orchestrator.slurm.timefmt import format_elapsed

    if kind == "t" and v is not None and not isinstance(v, str):
        v = format_elapsed(int(v))
    if parsable:
        text = "" if v is None else str(v)
        if parsable == 2 and last:
            return text
        return text + (delim if delim is not None else "|")
    abs_len = abs(width)
    if v is None:
        text = " "
    else:
        text = str(v)
        if kind in ("s",) and len(text) > abs_len:
            text = text[:abs_len - 1] + "+" if abs_len > 0 else ""
        elif kind == "d":
            text = text[:abs_len]
    if width == abs_len:
        return f"{text:>{abs_len}.{abs_len}} " if kind in ("s", "d") else f"{text:>{abs_len}} "
    return f"{text:<{abs_len}.{abs_len}} " if kind in ("s", "d") else f"{text:<{abs_len}} "


def header(fields: list[tuple[str, int, str]], parsable: int, delim: str | None) -> list[str]:
    if parsable:
        parts = []
        for i, (name, _w, _k) in enumerate(fields):
            last = i == len(fields) - 1
            if parsable == 2 and last:
                parts.append(name)
            else:
                parts.append(name + (delim if delim is not None else "|"))
        return ["".join(parts)]
    line1 = "".join(f"{name:>{abs(w)}.{abs(w)}} " if w >= 0 else f"{name:<{abs(w)}.{abs(w)}} "
                    for name, w, _k in fields)
    line2 = "".join("-" * abs(w) + " " for _n, w, _k in fields)
    return [line1, line2]


# ------------------------------------------------------------------------------------------------


def _main(argv: list[str]) -> int:
    p = parse_args(argv)
    if p.help == 1:
        from orchestrator.commands._common import print_help

        print_help(PROG)
        return 0
    if p.help == 3:
        from orchestrator.commands._common import print_help

        print_help(PROG, "usage")
        return 0
    if p.help == 2:
        names = [name for _w, name, _k in FIELDS]
        cells = []
        for i, name in enumerate(names):
            if (i + 1) % 4 == 0 or i == len(names) - 1:
                cells.append(f"{name:<19}\n")
            else:
                cells.append(f"{name:<20}")
        out("".join(cells))
        return 0
    if p.completion:
        out("Slurm job completion is disabled")  # 22.05's words, with no newline
        return 1
    if p.inputs:
        return _show_inputs(p)
    fields = resolve_fields(p.fields)
    jobs: list[dict[str, Any]] = []
    now = time.time()
    targets: list[str | None] = list(p.clusters) if p.clusters else [None]
    for cluster in targets:
        got = _fetch(p, cluster)
        if got is None:
            return 1
        recs, server_now = got
        now = server_now or now
        jobs.extend(recs)
    jobs = _filter(jobs, p)
    if p.truncate:
        jobs = [_truncated(j, p, now) for j in jobs]
    lines: list[str] = []
    if not p.noheader:
        lines.extend(header(fields, p.parsable, p.delimiter))
    for j in jobs:
        only = _selected_steps(j, p.jobs)
        rows = [Row(j, None, now)] if only is None else []
        if not p.no_steps or only is not None:
            rows.extend(Row(j, s, now) for s in _ordered_steps(j.get("steps") or [])
                        if only is None or str(s.get("step_id")) in only)
        for row in rows:
            cells = [_cell(kind, w, value(name, row), i == len(fields) - 1, p.parsable, p.delimiter)
                     for i, (name, w, kind) in enumerate(fields)]
            lines.append("".join(cells))
    if lines:
        out("\n".join(lines) + "\n")
    return 0


def _show_inputs(p: Params) -> int:
    """-B / --env-vars: what each selected batch job was submitted with, in slurmdbd's layout."""
    from orchestrator.commands import _common

    RpcError = _common.rpc_error_type()
    title = "Batch Script for {}" if p.inputs == "script" else "Environment used for {} (must be batch to display)"
    chunks: list[str] = []
    for cluster in list(p.clusters) if p.clusters else [None]:
        got = _fetch(p, cluster)
        if got is None:
            return 1
        ids = list(dict.fromkeys(int(r["job_id"]) for r in _filter(got[0], p)))
        if not ids:
            continue
        try:
            reply = _common.make_client(cluster).call("job_inputs", {"job_ids": ids, "what": p.inputs})
        except RpcError as exc:
            error(PROG, f"Problem talking to the database: {exc.message}")  # type: ignore[attr-defined]
            return 1
        for item in reply.get("jobs") or []:
            text = item.get("text") or "NONE\n"  # not a batch job, or nothing stored
            chunks.append(f"{title.format(item['job_id'])}\n{'-' * 80}\n{text}\n")
    if chunks:
        out("".join(chunks))
    return 0


def _ordered_steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def key(s: dict[str, Any]) -> tuple[int, int]:
        sid = str(s.get("step_id"))
        if sid == "batch":
            return (0, 0)
        if sid == "extern":
            return (1, 0)
        if sid == "interactive":
            return (2, 0)
        return (3, int(sid) if sid.isdigit() else 0)

    return sorted(steps, key=key)


def _fetch(p: Params, cluster: str | None) -> tuple[list[dict[str, Any]], float] | None:
    from orchestrator.commands import _common

    body: dict[str, Any] = {"job_ids": sorted({j.split(".")[0].split("_")[0] for j in p.jobs}, key=int)
                            if p.jobs else [],
                            "users": [str(u) for u in p.uids] if p.uids else [],
                            "all_users": bool(p.all_users or p.jobs or p.nodes),
                            "start": p.start, "end": p.end, "states": p.states or [], "names": p.names or [],
                            "accounts": p.accounts or [], "partitions": p.partitions or [],
                            "duplicates": p.duplicates}
    if not body["users"] and not body["all_users"] and os.getuid() != 0:
        body["users"] = [str(os.getuid())]
    if os.getuid() == 0 and not p.uids:
        body["all_users"] = True
    RpcError = _common.rpc_error_type()
    try:
        reply = _common.make_client(cluster).call("acct", body)
    except RpcError as exc:
        error(PROG, f"Problem talking to the database: {exc.message}")  # type: ignore[attr-defined]
        return None
    recs = list(reply.get("jobs") or [])
    if cluster:
        for r in recs:
            r.setdefault("cluster", cluster)
    return recs, float(reply.get("now") or 0)


def _filter(jobs: list[dict[str, Any]], p: Params) -> list[dict[str, Any]]:
    out_jobs: list[dict[str, Any]] = []
    want = p.jobs
    for j in jobs:
        if want and not any(_match_id(j, w) for w in want):
            continue
        if p.states:
            st = j.get("state")
            if st not in p.states:
                continue
        if p.names and j.get("name") not in p.names:
            continue
        if p.partitions and j.get("partition") not in p.partitions:
            continue
        if p.reasons is not None and (j.get("reason_prev") or "None") not in p.reasons:
            continue
        if p.accounts and (j.get("account") or "").lower() not in {a.lower() for a in p.accounts}:
            continue
        if p.uids is not None and not p.all_users and j.get("uid") not in p.uids:
            continue
        if p.qos is not None and (j.get("qos") or "normal").lower() not in p.qos:
            continue
        if p.gids is not None and j.get("gid") not in p.gids:
            continue
        if p.nnodes is not None and not p.nnodes[0] <= int(j.get("num_nodes") or 1) <= p.nnodes[1]:
            continue
        if p.ncpus is not None and not p.ncpus[0] <= _alloc_cpus(j) <= p.ncpus[1]:
            continue
        if p.limit_min:
            raw = j.get("time_limit")
            limit = 2**31 if raw is None or int(raw) < 0 else int(raw)
            if limit < p.limit_min or (p.limit_max and limit > p.limit_max):
                continue
        if not _in_window(j, p, by_id=bool(want)):
            continue
        if p.nodes:
            from orchestrator.slurm.hostlist import HostlistError, expand

            try:
                wanted = set(expand(p.nodes))
            except HostlistError:
                wanted = set()
            if not j.get("nodes") or not wanted.intersection(expand(j["nodes"])):
                continue
        out_jobs.append(j)
    out_jobs.sort(key=lambda r: r["job_id"])
    return out_jobs


def _truncated(j: dict[str, Any], p: Params, now: float) -> dict[str, Any]:
    """-T: a copy of the job whose times (and its steps') are cut to the window; a running job then ends
    at the window's end, as sacct prints it."""
    start, end = p.start or 0, p.end or now

    def cut(rec: dict[str, Any]) -> dict[str, Any]:
        rec = dict(rec, truncated=True)
        if rec.get("start_time"):
            rec["start_time"] = max(float(rec["start_time"]), start)
            rec["end_time"] = min(float(rec.get("end_time") or end), end)
        return rec

    out = cut(j)
    out["steps"] = [cut(s) for s in j.get("steps") or []]
    return out


def _in_window(j: dict[str, Any], p: Params, by_id: bool = False) -> bool:
    """slurmdbd's test for -S/-E: the job became eligible before the end and had not ended by the start
    (so a job held or dependent since its submission is listed only when asked for with -j: jobs named
    by id need only have been submitted before the end, whenever they may start)."""
    start = p.start or 0
    end = p.end or time.time()
    begun = (j.get("submit_time") or 0) if by_id else (j.get("eligible_time") or 0)
    if not begun or begun > end:
        return False
    finished = j.get("end_time") or 0
    return not (finished and j.get("state") in FINISHED and finished < start)


def _selected_steps(j: dict[str, Any], want: list[str]) -> set[str] | None:
    """The steps ``-j N.S`` names for this job; None when the job itself is asked for (all rows)."""
    steps: set[str] = set()
    for w in want:
        if not _match_id(j, w):
            continue
        _job, dot, step = w.partition(".")
        if not dot:
            return None
        steps.add(step)
    return steps if steps else None


def _match_id(j: dict[str, Any], text: str) -> bool:
    base = text.split(".")[0]
    jid, _, task = base.partition("_")
    if not jid.isdigit():
        return False
    n = int(jid)
    if not task:
        return j["job_id"] == n or (j.get("array_job_id") or 0) == n
    if (j.get("array_job_id") or 0) != n:
        return False
    if task == "*" or task.startswith("["):
        return True
    if j.get("array_task_id") is not None:
        return str(j["array_task_id"]) == task
    tstr = j.get("array_task_str") or ""
    if tstr and task.isdigit():
        from orchestrator.slurm.arrays import parse_ranges

        return int(task) in parse_ranges(tstr.split("%")[0])
    return False

