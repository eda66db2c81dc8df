"""``scontrol``: show jobs, nodes, partitions and config; hold, release, requeue, update, top.

Records print in Slurm's ``Key=Value`` layout (lines joined by newline and three
spaces, or one line with ``-o``) because scripts grep them; keywords accept
Slurm's abbreviations. ``show hostnames`` and ``show hostlist`` work offline.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from orchestrator.commands._common import error, getopt, out, run
from orchestrator.lazylog import get_logger
from orchestrator.slurm.fmtspec import make_time_str
from orchestrator.slurm.options import NO_ARG, REQUIRED, longopts, strtol
from orchestrator.slurm.timefmt import format_elapsed, format_limit_long

log = get_logger(__name__)

PROG = "scontrol"
SHORTOPTS = "adhM:FoQu:vV"
LONGOPTS = longopts([
    ("all", NO_ARG, "a"), ("cluster", REQUIRED, "M"), ("clusters", REQUIRED, "M"), ("details", NO_ARG, "d"),
    ("federation", NO_ARG, "federation"), ("future", NO_ARG, "F"), ("help", NO_ARG, "h"),
    ("hide", NO_ARG, "hide"), ("local", NO_ARG, "local"), ("oneliner", NO_ARG, "o"), ("quiet", NO_ARG, "Q"),
    ("sibling", NO_ARG, "sibling"), ("uid", REQUIRED, "u"), ("usage", NO_ARG, "h"), ("verbose", NO_ARG, "v"),
    ("version", NO_ARG, "V"),
])

FINISHED = {"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE",
            "OUT_OF_MEMORY"}
NO_VAL = 4294967294


class State:
    """scontrol's session flags and exit code."""

    def __init__(self) -> None:
        self.one_liner = False
        self.quiet = 0  # 1 = -Q, -1 = -v
        self.details = False
        self.cluster: str | None = None
        self.exit_code = 0
        self.exit_flag = False


def main(argv: list[str] | None = None) -> int:
    return run(PROG, lambda: _main(list(sys.argv[1:] if argv is None else argv)))


def _main(argv: list[str]) -> int:
    from orchestrator.commands import _common

    st = State()
    opts, rest = getopt(PROG, argv, SHORTOPTS, LONGOPTS)
    for key, value in opts:
        if key == "h":
            _common.print_help(PROG)
            return st.exit_code
        if key == "o":
            st.one_liner = True
        elif key == "Q":
            st.quiet = 1
        elif key == "v":
            st.quiet = -1
        elif key == "d":
            st.details = True
        elif key == "V":
            _common.print_version()
            return st.exit_code
        elif key == "M":
            clusters = _common.resolve_clusters(PROG, value or "")
            if len(clusters) > 1:
                _common.fatal(PROG, "Only one cluster can be used at a time with scontrol")
            st.cluster = clusters[0]
        elif key == "u" and _common.user_id(value or "") is None:
            error(PROG, f'--uid="{value}" invalid')
            return st.exit_code
    if rest:
        process(st, rest)
        return st.exit_code
    # interactive: one command per line until EOF or quit
    interactive = sys.stdin.isatty()
    while not st.exit_flag:
        if interactive:
            out("scontrol: ")
            sys.stdout.flush()
        line = sys.stdin.readline()
        if not line:
            out("\n")
            break
        import shlex

        try:
            words = shlex.split(line)
        except ValueError:
            words = line.split()
        if words:
            process(st, words)
    return st.exit_code


def _kw(tag: str, word: str, minimum: int) -> bool:
    """Slurm's keyword test: ``tag`` is a prefix of ``word`` at least ``minimum`` long."""
    n = max(len(tag), minimum)
    return word[:n].lower() == tag[:n].lower() and len(tag) <= len(word)


def _err(st: State, text: str) -> None:
    st.exit_code = 1
    if st.quiet != 1:
        sys.stderr.write(text)


def _counted(st: State, tag: str, n: int, least: int, most: int | None = None) -> bool:
    """scontrol's word-count check for keyword ``tag`` (``n`` words with it); False after its complaint."""
    if n < least:
        _err(st, f"too few arguments for keyword:{tag}\n")
        return False
    if most is not None and n > most:
        _err(st, f"too many arguments for keyword:{tag}\n")
        return False
    return True


def process(st: State, argv: list[str]) -> None:
    tag = argv[0]
    n = len(argv)
    if _kw(tag, "show", 3):
        if _counted(st, tag, n, 2, 3):
            show(st, argv[1], argv[2] if n > 2 else None)
    elif tag.lower().startswith("hold") or tag.lower().startswith("uhold") or _kw(tag, "release", 3):
        if _counted(st, tag, n, 2):
            for item in argv[1:]:
                if hold(st, tag, item):
                    st.exit_code = 1
    elif (tag.lower().startswith("requeuehold") and len(tag) >= 11) or _kw(tag, "requeue", 3):
        if _counted(st, tag, n, 2):
            for item in argv[1:]:
                requeue(st, item, hold=len(tag) >= 11)
    elif _kw(tag, "top", 3):
        if _counted(st, tag, n, 2, 2):
            _job_op(st, "top", {}, argv[1])
    elif _kw(tag, "update", 1):
        if n < 2:
            _err(st, f"too few arguments for {tag} keyword\n")  # sic: 22.05 words this one differently
        else:
            update(st, argv[1:])
    elif _kw(tag, "ping", 3):
        if _counted(st, tag, n, 1, 1):
            ping(st)
    elif _kw(tag, "version", 4):
        if _counted(st, tag, n, 1, 1):
            from orchestrator.commands._common import print_version

            print_version()
    elif _kw(tag, "oneliner", 1):
        st.one_liner = True
    elif _kw(tag, "details", 1):
        st.details = True
    elif _kw(tag, "quiet", 4):
        st.quiet = 1
    elif _kw(tag, "verbose", 4):
        st.quiet = -1
    elif _kw(tag, "exit", 2) or _kw(tag, "quit", 4):
        st.exit_flag = True
    elif _kw(tag, "help", 2):
        from orchestrator.commands._common import print_help

        print_help(PROG)
    elif _kw(tag, "all", 2) or _kw(tag, "hide", 2):
        pass
    elif _kw(tag, "suspend", 2) or _kw(tag, "resume", 3):
        if _counted(st, tag, n, 2):
            for item in argv[1:]:  # operators only; a job that does not exist gets slurmctld's odd reply
                known = _job_state(st, item) is not None
                _err(st, f"{'Access/permission denied' if known else 'Unexpected message received'} for job {item}\n")
    elif _kw(tag, "notify", 1):
        if _counted(st, tag, n, 3):
            notify(st, argv[1], " ".join(argv[2:]))
    elif _kw(tag, "wait_job", 2):
        if _counted(st, tag, n, 2, 2):
            wait_job(st, argv[1])
    elif _kw(tag, "reconfigure", 3) or _kw(tag, "shutdown", 8):
        # both are the administrator's; minihpc's configuration is fixed at `make up`
        what = "slurm_reconfigure" if _kw(tag, "reconfigure", 3) else "slurm_shutdown"
        _err(st, f"{what} error: {'Requested operation is presently disabled' if os.getuid() == 0 else 'Invalid user id'}\n")
    else:
        _err(st, f"invalid keyword: {tag}\n")


# ------------------------------------------------------------------------------------------------
# show


def show(st: State, entity: str, value: str | None) -> None:
    if _kw(entity, "config", 1):
        show_config(st)
    elif _kw(entity, "hostnames", 5):
        hostnames(st, value if value is not None else os.environ.get("SLURM_NODELIST"))
    elif entity.lower() == "hostlistsorted"[:max(len(entity), 9)] and len(entity) >= 9:
        hostlist(st, value, sort=True)
    elif _kw(entity, "hostlist", 5):
        hostlist(st, value, sort=False)
    elif _kw(entity, "jobs", 1) or _kw(entity, "jobid", 1):
        show_job(st, value)
    elif _kw(entity, "nodes", 1):
        show_node(st, value)
    elif _kw(entity, "partitions", 2) or _kw(entity, "partitionname", 2):
        show_partition(st, value)
    elif _kw(entity, "steps", 2):
        show_steps(st, value)
    else:
        _err(st, f"invalid entity:{entity} for keyword:show \n")


def hostnames(st: State, text: str | None) -> None:
    from orchestrator.slurm.hostlist import HostlistError, expand

    if not text:
        error(PROG, "host list is empty")
        return
    try:
        names = expand(text)
    except HostlistError:
        sys.stderr.write(f"Invalid hostlist: {text}\n")
        return
    if names:
        out("\n".join(names) + "\n")


def hostlist(st: State, text: str | None, sort: bool) -> None:
    from orchestrator.slurm.hostlist import HostlistError, compress, expand

    if not text:
        _err(st, "Hostlist is NULL\n")
        return
    if text.startswith("/"):
        try:
            with open(text) as f:
                text = f.read()
        except OSError:
            _err(st, f"Can not open {text}\n")
            return
        text = ",".join(x for x in text.replace("\n", ",").split(",") if x)
    try:
        names = expand(text)
    except HostlistError:
        _err(st, f"Invalid hostlist: {text}\n")
        return
    out((compress(names) if sort else compress_ordered(names)) + "\n")


def compress_ordered(names: list[str]) -> str:
    """Slurm's unsorted ranged string: runs of the same prefix merge, order is kept."""
    import re

    out_parts: list[str] = []
    cur_prefix: str | None = None
    cur_width = 0
    ranges: list[list[int]] = []

    def flush() -> None:
        if cur_prefix is None:
            return
        items = []
        for lo, hi in ranges:
            a, b = str(lo).zfill(cur_width), str(hi).zfill(cur_width)
            items.append(a if lo == hi else f"{a}-{b}")
        if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
            out_parts.append(f"{cur_prefix}{items[0]}")
        else:
            out_parts.append(f"{cur_prefix}[{','.join(items)}]")

    for name in names:
        m = re.match(r"^(.*?)(\d+)$", name)
        if not m:
            flush()
            cur_prefix = None
            ranges = []
            out_parts.append(name)
            continue
        prefix, digits = m.group(1), m.group(2)
        num = int(digits)
        if prefix == cur_prefix and len(digits) == cur_width:
            if num == ranges[-1][1] + 1:
                ranges[-1][1] = num
            else:
                ranges.append([num, num])
            continue
        flush()
        cur_prefix, cur_width, ranges = prefix, len(digits), [[num, num]]
    flush()
    return ",".join(out_parts)


def _client(st: State) -> Any:
    from orchestrator.commands import _common

    return _common.make_client(st.cluster)


def _rpc_error() -> type[Exception]:
    from orchestrator.commands import _common

    return _common.rpc_error_type()


def _end(st: State, fields: list[str]) -> str:
    return " ".join(fields) if st.one_liner else "\n   ".join(fields)


def _valid_job_text(text: str) -> bool:
    return bool(text) and all(c.isdigit() or c in "_+" for c in text)


def show_job(st: State, text: str | None) -> None:
    RpcError = _rpc_error()
    job_id = 0
    task: int | None = None
    if text is not None:
        if not _valid_job_text(text):
            st.exit_code = 1
            if st.quiet != 1:
                sys.stderr.write("scontrol_print_job error: Invalid job id specified\n")
            return
        base, _, rest = text.partition("_")
        job_id = int(base or "0")
        if rest:
            try:
                task = int(rest.split("+")[0])
            except ValueError:
                task = None
    body: dict[str, Any] = {"fields": []}
    if job_id:
        body["job_ids"] = [job_id]
    try:
        reply = _client(st).call("jobs", body)
    except RpcError as exc:
        st.exit_code = 1
        if st.quiet != 1:
            sys.stderr.write(f"slurm_load_jobs error: {exc.message}\n")  # type: ignore[attr-defined]
        return
    names = reply.get("fields") or []
    recs = [dict(zip(names, row, strict=False)) for row in reply.get("rows") or []]
    now = float(reply.get("now") or 0)
    printed = 0
    for r in recs:
        if task is not None:
            if r.get("array_task_id") == task:
                pass
            elif r.get("array_task_str"):
                from orchestrator.slurm.arrays import parse_ranges

                if task not in parse_ranges(str(r["array_task_str"]).split("%")[0]):
                    continue
                r = dict(r)
                r["array_task_str"] = ""
                r["array_task_id"] = task
            else:
                continue
        out(format_job(r, st.one_liner, st.details, now))
        printed += 1
    if not printed:
        if text is not None:
            st.exit_code = 1
            if st.quiet != 1:
                out(f"Job {job_id}_{task} not found\n" if task is not None else f"Job {job_id} not found\n")
        elif st.quiet != 1:
            out("No jobs in the system\n")


def _null(v: Any) -> str:
    return "(null)" if v in (None, "") else str(v)


def _tres(r: dict[str, Any]) -> str:
    from orchestrator.slurm.accounting import tres_mem
    from orchestrator.slurm.units import format_mem

    cpus = _num_cpus(r)
    nodes = r.get("num_nodes") or 1
    mem = int(r.get("alloc_mem") or 0) or tres_mem(r, nodes, cpus)
    parts = [f"cpu={cpus}"]
    if mem:
        parts.append(f"mem={format_mem(mem)}")
    parts.append(f"node={nodes}")
    parts.append(f"billing={cpus}")
    gres = r.get("gres") or ""
    if gres:
        count = gres.rsplit(":", 1)[-1]
        if count.isdigit():
            parts.append(f"gres/gpu={int(count) * nodes}")
    return ",".join(parts)


def _num_cpus(r: dict[str, Any]) -> int:
    if r.get("alloc_cpus") and r.get("state") != "PENDING":
        return int(r["alloc_cpus"])
    return max(int(r.get("num_tasks") or 1) * int(r.get("cpus_per_task") or 1), int(r.get("num_nodes") or 1))


def _fname(r: dict[str, Any], pattern: str) -> str:
    task = r.get("array_task_id")
    text = pattern
    if "%A" in text:
        text = text.replace("%A", str(r.get("array_job_id") or r["job_id"]) if task is not None
                            else str(r["job_id"]))
    text = text.replace("%a", str(task if task is not None else NO_VAL))
    text = text.replace("%j", str(r["job_id"]))
    text = text.replace("%u", str(r.get("user") or ""))
    text = text.replace("%x", str(r.get("name") or ""))
    if text.startswith("/"):
        return text
    return f"{r.get('work_dir') or ''}/{text}"


def _stdout(r: dict[str, Any]) -> str:
    if r.get("std_out"):
        return _fname(r, r["std_out"])
    if r.get("array_job_id"):
        task = r.get("array_task_id")
        return f"{r.get('work_dir')}/slurm-{r['array_job_id']}_{task if task is not None else NO_VAL}.out"
    return f"{r.get('work_dir')}/slurm-{r['job_id']}.out"


def _run_time(r: dict[str, Any], now: float) -> int:
    state = r.get("state")
    start = r.get("start_time") or 0
    if state == "PENDING" or not start:
        return 0
    if state in ("RUNNING", "COMPLETING", "CONFIGURING", "SIGNALING") or not r.get("end_time"):
        end = now or __import__("time").time()
    else:
        end = r["end_time"]
    return max(0, int(end - start))


def format_job(r: dict[str, Any], one_liner: bool, details: bool, now: float) -> str:
    """One job as ``scontrol show job`` prints it (Slurm's slurm_sprint_job_info)."""
    from orchestrator.commands._common import group_name, user_name
    from orchestrator.slurm.accounting import derived_text, start_and_end

    lines: list[str] = []
    first = f"JobId={r['job_id']} "
    if r.get("array_job_id"):
        if r.get("array_task_str"):
            tstr = str(r["array_task_str"])
            maxt = r.get("array_max_tasks") or 0
            if maxt and "%" not in tstr:
                tstr = f"{tstr}%{maxt}"
            first += f"ArrayJobId={r['array_job_id']} ArrayTaskId={tstr} "
        else:
            first += f"ArrayJobId={r['array_job_id']} ArrayTaskId={r.get('array_task_id')} "
        if r.get("array_max_tasks"):
            first += f"ArrayTaskThrottle={r['array_max_tasks']} "
    first += f"JobName={r.get('name') or ''}"
    lines.append(first)
    uid, gid = int(r.get("uid") or 0), int(r.get("gid") or 0)
    lines.append(f"UserId={r.get('user') or user_name(uid)}({uid}) "
                 f"GroupId={r.get('group') or group_name(gid)}({gid}) MCS_label=N/A")
    lines.append(f"Priority={r.get('priority') or 0} Nice=0 Account={_null(r.get('account'))} "
                 f"QOS={_null(r.get('qos'))}")
    reason = str(r.get("reason") or "None").replace(" ", "_")
    lines.append(f"JobState={r.get('state')} Reason={reason} Dependency={_null(r.get('dependency'))}")
    lines.append(f"Requeue={1 if r.get('requeue') else 0} Restarts={r.get('restart_count') or 0} "
                 f"BatchFlag={1 if r.get('batch') else 0} Reboot=0 "
                 f"ExitCode={r.get('exit_code') or 0}:{r.get('exit_signal') or 0}")
    if details:
        lines.append(f"DerivedExitCode={derived_text(int(r.get('derived_exit_code') or 0))}")
    tl = r.get("time_limit")
    lines.append(f"RunTime={format_elapsed(_run_time(r, now))} TimeLimit={format_limit_long(tl)} TimeMin=N/A")
    lines.append(f"SubmitTime={make_time_str(r.get('submit_time'), 'Unknown')} "
                 f"EligibleTime={make_time_str(r.get('eligible_time'), 'Unknown')}")
    lines.append(f"AccrueTime={make_time_str(r.get('accrue_time'), 'Unknown')}")
    start, end = start_and_end(r)
    sched_nodes = r.get("sched_nodes") if r.get("state") == "PENDING" else ""  # the backfill estimate's nodes
    end_text = "Unknown" if (tl is not None and tl < 0 and r.get("state") in ("RUNNING", "PENDING")) \
        else make_time_str(end, "Unknown")
    lines.append(f"StartTime={make_time_str(start, 'Unknown')} EndTime={end_text} Deadline=N/A")
    lines.append("SuspendTime=None SecsPreSuspend=0 "
                 f"LastSchedEval={make_time_str(r.get('eligible_time') or r.get('submit_time'), 'Unknown')} "
                 f"Scheduler={'Backfill:*' if sched_nodes else 'Main'}")
    lines.append(f"Partition={r.get('partition') or ''} AllocNode:Sid={r.get('submit_host') or 'localhost'}:0")
    lines.append(f"ReqNodeList={_null(r.get('req_nodes'))} ExcNodeList={_null(r.get('exc_nodes'))}")
    lines.append(f"NodeList={r.get('nodes') or ''}" + (f" SchedNodeList={sched_nodes}" if sched_nodes else ""))
    if r.get("batch_host"):
        lines.append(f"BatchHost={r['batch_host']}")
    nn = int(r.get("num_nodes") or 1)
    if r.get("state") == "PENDING":
        mx = int(r.get("max_nodes") or 0)
        nodes_text = f"{min(nn, mx)}-{mx}" if mx else str(nn)
    else:
        nodes_text = str(nn)
    cpt = r.get("cpus_per_task") or 1
    lines.append(f"NumNodes={nodes_text} NumCPUs={_num_cpus(r)} NumTasks={r.get('num_tasks') or 1} "
                 f"CPUs/Task={cpt} ReqB:S:C:T=0:0:*:*")
    lines.append(f"TRES={_tres(r)}")
    lines.append(f"Socks/Node=* NtasksPerN:B:S:C={r.get('ntasks_per_node') or 0}:0:*:* CoreSpec=*")
    if details and r.get("cpus_per_node"):
        lines.append(f"JOB_GRES={r.get('gres') or '(null)'}")
        gpus = r.get("gpus_per_node") or {}
        mems = r.get("mem_per_alloc_node") or {}
        groups: list[tuple[tuple[str, int, str], list[str]]] = []
        for node_name, ncpu in r["cpus_per_node"].items():
            ids = f"0-{int(ncpu) - 1}" if int(ncpu) > 1 else "0"
            gres = ""
            if gpus.get(node_name):
                gres = f"gpu:{len(gpus[node_name])}(IDX:{','.join(str(g) for g in gpus[node_name])})"
            key = (ids, int(mems.get(node_name, 0)), gres)
            if groups and groups[-1][0] == key:
                groups[-1][1].append(node_name)  # identical allocations share a line, as in Slurm
            else:
                groups.append((key, [node_name]))
        from orchestrator.slurm.hostlist import compress

        for (ids, mem, gres), names in groups:
            lines.append(f"  Nodes={compress(names)} CPU_IDs={ids} Mem={mem} GRES={gres}")
    from orchestrator.slurm.fmtspec import convert_num_unit

    if r.get("mem_per_node"):
        mem_line = f"MinMemoryNode={convert_num_unit(r['mem_per_node'], 2)}"
    else:
        mem_line = f"MinMemoryCPU={convert_num_unit(r.get('mem_per_cpu') or 0, 2)}"
    lines.append(f"MinCPUsNode={cpt * max(1, int(r.get('ntasks_per_node') or 1))} {mem_line} MinTmpDiskNode=0")
    lines.append(f"Features={_null(r.get('features'))} DelayBoot=00:00:00")
    lines.append(f"OverSubscribe={'NO' if r.get('exclusive') else 'OK'} Contiguous=0 Licenses=(null) "
                 "Network=(null)")
    lines.append(f"Command={_null(r.get('command'))}")
    tail = f"WorkDir={r.get('work_dir') or ''}"
    lines.append(tail)
    if r.get("comment"):
        lines.append(f"Comment={r['comment']} ")
    if r.get("batch"):
        err_path = _fname(r, r["std_err"]) if r.get("std_err") else _stdout(r)
        lines.append(f"StdErr={err_path}")
        lines.append(f"StdIn={_fname(r, r['std_in']) if r.get('std_in') else '/dev/null'}")
        lines.append(f"StdOut={_stdout(r)}")
    lines.append("Power=")
    if r.get("gres"):
        lines.append(f"TresPerNode=gres:{r['gres']}")
    if r.get("mail_type") and r.get("mail_user"):
        lines.append(f"MailUser={r['mail_user']} MailType={r['mail_type']}")
    text = _end_join(lines, one_liner)
    return text + (" \n" if one_liner else "\n   \n\n")


def _end_join(lines: list[str], one_liner: bool) -> str:
    return (" " if one_liner else "\n   ").join(lines)


def show_steps(st: State, text: str | None) -> None:
    """``scontrol show step [job[.step]]``: the steps slurmctld has running, extern and batch included.

    Ids are read with strtol as Slurm reads them, so a step name (``12.batch``) means step 0 and an
    id with no number at all means every step.
    """
    RpcError = _rpc_error()
    body: dict[str, Any] = {"fields": ["job_id", "name", "partition", "user", "uid", "state", "steps",
                                       "mem_per_cpu", "mem_per_node"], "steps": True}
    job_filter = 0
    step_filter: str | None = None
    if text:
        base, dot, step = text.partition(".")
        job_filter = strtol(base)[0]
        if dot:
            step_filter = str(strtol(step)[0])
        if job_filter > 0:
            body["job_ids"] = [job_filter]
    try:
        reply = _client(st).call("jobs", body)
    except RpcError as exc:
        _err(st, f"slurm_get_job_steps error: {exc.message}\n")  # type: ignore[attr-defined]
        return
    names = reply.get("fields") or []
    printed = 0
    for row in reply.get("rows") or []:
        r = dict(zip(names, row, strict=False))
        for s in r.get("steps") or []:
            if s.get("state") not in ("RUNNING", "COMPLETING"):
                continue
            if step_filter is not None and str(s.get("step_id")) != step_filter:
                continue
            out(_step_record(r, s, st.one_liner))
            printed += 1
    if printed:
        return
    if job_filter > 0:
        st.exit_code = 1
        out(f"Job step {job_filter}.{step_filter or ''} not found\n")
    else:
        out("No job steps in the system\n")


def _step_record(r: dict[str, Any], s: dict[str, Any], one_liner: bool) -> str:
    """One step as slurmctld describes it: batch and extern steps hold no CPUs or TRES of their own."""
    from orchestrator.slurm.accounting import tres_mem
    from orchestrator.slurm.units import format_mem

    sid = str(s.get("step_id"))
    numbered = sid.isdigit()
    cpus = int(s.get("cpus") or 0) if numbered else 0
    nodes, tasks = int(s.get("num_nodes") or 1), int(s.get("num_tasks") or 0)
    tres = "(null)"
    if numbered:
        mem = tres_mem(r, nodes, cpus)
        tres = f"cpu={cpus}" + (f",mem={format_mem(mem)}" if mem else "") + f",node={nodes}"
    dist = (" Dist=Block" if tasks > nodes else " Dist=Cyclic") if numbered else ""
    host = f"{s.get('srun_host')}:{s.get('srun_pid') or 0}" if s.get("srun_host") else "(null):0"
    fields = [f"StepId={r['job_id']}.{sid} UserId={r.get('uid')} "
              f"StartTime={make_time_str(s.get('start_time'), 'Unknown')} TimeLimit=UNLIMITED",
              f"State={s.get('state')} Partition={r.get('partition')} NodeList={s.get('nodes')}",
              f"Nodes={nodes} CPUs={cpus} Tasks={tasks} Name={s.get('name') or r.get('name')} Network=(null)",
              f"TRES={tres}",
              "ResvPorts=(null)",
              f"CPUFreqReq=Default{dist}",
              f"SrunHost:Pid={host}"]
    return _end_join(fields, one_liner) + ("\n" if one_liner else "\n\n")


# ------------------------------------------------------------------------------------------------
# nodes and partitions

_FLAG_ORDER = ("CLOUD", "COMPLETING", "DRAIN", "DYNAMIC_FUTURE", "DYNAMIC_NORM", "INVALID_REG", "FAIL",
               "MAINTENANCE", "POWER_DOWN", "POWER_UP", "PERFCTRS", "POWERED_DOWN", "REBOOT_REQUESTED",
               "REBOOT_ISSUED", "RESERVED", "RESUME", "NOT_RESPONDING", "PLANNED")


def node_state_complete(state: str, flags: list[str]) -> str:
    """``IDLE+DRAIN``, ``MIXED+DRAIN+NOT_RESPONDING``: base then flags in Slurm's order."""
    base = (state or "UNKNOWN").upper()
    fl = {f.upper() for f in flags}
    if base == "COMPLETING":
        base = "IDLE"
        fl.add("COMPLETING")
    if "MAINT" in fl:
        fl.add("MAINTENANCE")
    return base + "".join(f"+{f}" for f in _FLAG_ORDER if f in fl)


def format_node(n: dict[str, Any], one_liner: bool) -> str:
    from orchestrator.slurm.units import format_mem

    cpus = int(n.get("cpus") or 0)
    alloc = int(n.get("alloc_cpus") or 0)
    fields = [f"NodeName={n['name']} Arch={n.get('arch') or 'x86_64'} CoresPerSocket=1 ",
              f"CPUAlloc={alloc} CPUEfctv={cpus} CPUTot={cpus} CPULoad={float(n.get('cpu_load') or 0):.2f}",
              f"AvailableFeatures={_null(n.get('features'))}",
              f"ActiveFeatures={_null(n.get('features'))}",
              f"Gres={_null(n.get('gres'))}"]
    if n.get("gres"):
        fields.append(f"GresUsed={n.get('gres_used') or ''}")
    fields.append(f"NodeAddr={n.get('addr') or n['name']} NodeHostName={n.get('hostname') or n['name']} "
                  f"Version={n.get('version') or '22.05.8'}")
    if n.get("os"):
        fields.append(f"OS={n['os']} ")
    fields.append(f"RealMemory={n.get('memory') or 0} AllocMem={n.get('alloc_mem') or 0} "
                  f"FreeMem={n.get('free_mem') if n.get('free_mem') is not None else 'N/A'} "
                  f"Sockets={cpus} Boards=1")
    fields.append(f"State={node_state_complete(str(n.get('state')), list(n.get('flags') or []))} "
                  "ThreadsPerCore=1 TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A")
    if n.get("partitions"):
        fields.append(f"Partitions={','.join(n['partitions'])} ")
    boot = make_time_str(n.get("boot_time"), "None")
    slurmd = make_time_str(n.get("slurmd_start_time"), "None")
    fields.append(f"BootTime={boot} SlurmdStartTime={slurmd}")
    fields.append(f"LastBusyTime={make_time_str(n.get('last_busy'), 'Unknown')}")
    cfg = f"cpu={cpus},mem={format_mem(int(n.get('memory') or 0))},billing={cpus}"
    gres = n.get("gres") or ""
    if gres:
        for g in str(gres).split(","):
            parts = g.split(":")
            if parts and parts[-1].isdigit():
                cfg += f",gres/{parts[0]}={parts[-1]}"
    fields.append(f"CfgTRES={cfg}")
    atres = f"cpu={alloc},mem={format_mem(int(n.get('alloc_mem') or 0))}" if alloc else ""
    fields.append(f"AllocTRES={atres}")
    fields.append("CapWatts=n/a")
    fields.append("CurrentWatts=0 AveWatts=0")
    fields.append("ExtSensorsJoules=n/s ExtSensorsWatts=0 ExtSensorsTemp=n/s")
    if n.get("reason"):
        reason = f"Reason={n['reason']}"
        if n.get("reason_time"):
            reason += f" [{n.get('reason_user') or 'root'}@{make_time_str(n['reason_time'])}]"
        fields.append(reason)
    return _end_join(fields, one_liner) + ("\n" if one_liner else "\n\n")


def show_node(st: State, name: str | None) -> None:
    RpcError = _rpc_error()
    try:
        nodes = _client(st).call("nodes", {}).get("nodes") or []
    except RpcError as exc:
        _err(st, f"slurm_load_node error: {exc.message}\n")  # type: ignore[attr-defined]
        return
    if name:
        from orchestrator.slurm.hostlist import HostlistError, expand

        try:
            wanted = expand(name)
        except HostlistError:
            wanted = [name]
        by = {n["name"]: n for n in nodes}
        found = [by[w] for w in wanted if w in by]
        if not found:
            _err(st, "")
            out(f"Node {name} not found\n")
            return
        nodes = found
    for n in nodes:
        out(format_node(n, st.one_liner))


def format_partition(p: dict[str, Any], one_liner: bool, def_mem: int | None = None) -> str:
    from orchestrator.slurm.units import format_mem

    dt = p.get("default_time")
    default_time = "NONE" if dt is None or dt == -1 else format_limit_long(dt)
    mt = p.get("max_time")
    max_time = "UNLIMITED" if mt is None or mt < 0 else format_limit_long(mt)
    mx = p.get("max_nodes")
    over = int(p.get("oversubscribe") or 0)
    dm = p.get("def_mem_per_cpu")
    fields = [f"PartitionName={p['name']}",
              "AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL",
              f"AllocNodes=ALL Default={'YES' if p.get('default') else 'NO'} QoS=N/A",
              f"DefaultTime={default_time} DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 Hidden=NO",
              f"MaxNodes={'UNLIMITED' if mx is None else mx} MaxTime={max_time} MinNodes=0 LLN=NO "
              "MaxCPUsPerNode=UNLIMITED",
              f"Nodes={p.get('nodes') or ''}",
              f"PriorityJobFactor=1 PriorityTier={p.get('priority_tier') or 1} RootOnly=NO ReqResv=NO "
              f"OverSubscribe={f'FORCE:{over}' if over else 'NO'}",
              "OverTimeLimit=NONE PreemptMode=OFF",
              f"State={p.get('state') or 'UP'} TotalCPUs={p.get('total_cpus') or 0} "
              f"TotalNodes={p.get('total_nodes') or 0} SelectTypeParameters=NONE",
              "JobDefaults=(null)",
              (f"DefMemPerCPU={dm}" if dm else "DefMemPerNode=UNLIMITED") + " MaxMemPerNode=UNLIMITED"]
    mem = p.get("total_mem")
    tres = f"cpu={p.get('total_cpus') or 0}"
    if mem:
        tres += f",mem={format_mem(int(mem))}"
    tres += f",node={p.get('total_nodes') or 0},billing={p.get('total_cpus') or 0}"
    fields.append(f"TRES={tres}")
    return _end_join(fields, one_liner) + ("\n" if one_liner else "\n\n")


def show_partition(st: State, name: str | None) -> None:
    RpcError = _rpc_error()
    try:
        parts = _client(st).call("partitions", {}).get("partitions") or []
    except RpcError as exc:
        _err(st, f"slurm_load_partitions error: {exc.message}\n")  # type: ignore[attr-defined]
        return
    if name:
        parts = [p for p in parts if p.get("name") == name]
        if not parts:
            _err(st, "")
            out(f"Partition {name} not found\n")
            return
    if not parts:
        out("No partitions in the system\n")
    for p in parts:
        out(format_partition(p, st.one_liner))


def show_config(st: State) -> None:
    import time

    RpcError = _rpc_error()
    try:
        items = _client(st).call("config", {}).get("config") or []
    except RpcError as exc:
        _err(st, f"slurm_load_ctl_conf error: {exc.message}\n")  # type: ignore[attr-defined]
        return
    lines = [f"Configuration data as of {make_time_str(time.time())}"]
    host = "localhost"
    for key, value in items:
        lines.append(f"{key:<23} = {value}")
        if key == "SlurmctldHost[0]":
            host = str(value).split("(")[0]
    out("\n".join(lines) + "\n\n")
    out(f"Slurmctld(primary) at {host} is UP\n")


def _job_state(st: State, text: str) -> str | None:
    """The state of job ``text`` (a plain id), or None when the controller does not know it."""
    RpcError = _rpc_error()
    if not text.isdigit():
        return None
    try:
        rows = _client(st).call("jobs", {"fields": ["state"], "job_ids": [int(text)]}).get("rows") or []
    except RpcError:
        return None
    return str(rows[0][0]) if rows else None


def notify(st: State, text: str, message: str) -> None:
    """``scontrol notify JOB MESSAGE``: into a running batch job's stderr."""
    RpcError = _rpc_error()
    try:
        if not text.isdigit():
            raise RpcError("ESLURM_INVALID_JOB_ID", "Invalid job id specified")
        _client(st).call("notify", {"job_id": int(text), "message": message})
    except RpcError as exc:
        _err(st, f"job notify failure: {exc.message}\n")  # type: ignore[attr-defined]


def wait_job(st: State, text: str) -> None:
    """``scontrol wait_job JOB``: until it runs on ready nodes (0) or has ended (1), polling as scontrol does."""
    import time

    delay = 0.5
    while True:
        state = _job_state(st, text)
        if state is None:
            _err(st, f"scontrol: Problem running job {text}\n")
            return
        if state == "RUNNING":
            sys.stderr.write(f"scontrol: Nodes are ready for job {text}\n")
            return
        if state != "PENDING":
            _err(st, f"scontrol: Job {text} no longer running\n")
            return
        time.sleep(delay)
        delay = min(delay * 2, 10.0)


def ping(st: State) -> None:
    RpcError = _rpc_error()
    host = "localhost"
    from orchestrator.commands import _common

    cfg = _common.client_config()
    if cfg is not None:
        try:
            host = str(cfg.address(st.cluster)[0])
        except KeyError:
            pass
    try:
        _client(st).call("ping", {})
        out(f"Slurmctld(primary) at {host} is UP\n")
    except RpcError:
        st.exit_code = 1
        out(f"Slurmctld(primary) at {host} is DOWN\n")
        if os.getuid() == 0:
            out("*****************************************\n** RESTORE SLURMCTLD DAEMON TO SERVICE **\n"
                "*****************************************\n")


# ------------------------------------------------------------------------------------------------
# job control


def _job_ids(text: str) -> list[str] | None:
    """Slurm's job id list for hold/update: ``12``, ``12_3``, ``12_[1-3]``, comma separated."""
    ids: list[str] = []
    for item in _split_ids(text):
        base = item.split("_")[0]
        if not base.isdigit():
            return None
        ids.append(item)
    return ids


def _split_ids(text: str) -> list[str]:
    out_ids: list[str] = []
    depth = 0
    cur = ""
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            if cur:
                out_ids.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        out_ids.append(cur)
    return out_ids


_DENIED_AS = {"ESLURM_ACCESS_DENIED": "Invalid user id"}


def _report(st: State, results: list[dict[str, Any]], label: str, map_denied: bool = True) -> int:
    """Print per-job errors the way scontrol does; return the first errno (0 if none)."""
    from orchestrator.commands._common import errno_of

    rc = 0
    if len(results) == 1:
        res = results[0]
        if res.get("error"):
            msg = str(res.get("message") or "")
            code = str(res["error"])
            if map_denied and code in _DENIED_AS:
                msg, code = _DENIED_AS[code], "ESLURM_USER_ID_MISSING"
            _err(st, f"{msg} for job {label}\n")
            rc = errno_of(code)
        return rc
    for res in results:
        if not res.get("error"):
            continue
        msg = str(res.get("message") or "")
        code = str(res["error"])
        if map_denied and code in _DENIED_AS:
            msg, code = _DENIED_AS[code], "ESLURM_USER_ID_MISSING"
        _err(st, f"{res.get('job_id')}: {msg}\n")
        rc = rc or errno_of(code)
    return rc


def _job_op(st: State, op: str, extra: dict[str, Any], text: str, map_denied: bool = True) -> int:
    RpcError = _rpc_error()
    if text.lower().startswith("jobid="):
        text = text[6:]
    elif text.lower().startswith("job="):
        text = text[4:]
    ids = _job_ids(text)
    if ids is None:
        from orchestrator.commands._common import errno_of

        _err(st, f"Invalid job id specified for job {text}\n")
        return errno_of("ESLURM_INVALID_JOB_ID")
    rc = 0
    for job in ids:
        try:
            reply = _client(st).call(op, {"job_ids": [job], **extra})
        except RpcError as exc:
            from orchestrator.commands._common import errno_of

            _err(st, f"{exc.message} for job {job}\n")  # type: ignore[attr-defined]
            rc = rc or errno_of(getattr(exc, "code", ""))
            continue
        rc = rc or _report(st, reply.get("results") or [], job, map_denied)
    return rc


def _message_of(code: int) -> str:
    from orchestrator.commands._common import ERRNO
    from orchestrator.scheduler.errors import MESSAGES

    for name, num in ERRNO.items():
        if num == code:
            if name == "ESLURM_USER_ID_MISSING":
                return "Invalid user id"
            return MESSAGES.get(name, "Unspecified error")
    return "Unspecified error"


def hold(st: State, tag: str, text: str) -> bool:
    t = tag.lower()
    if t.startswith("release"[:max(len(t), 3)]) and "release".startswith(t):
        op, extra = "release", {}
    else:
        op, extra = "hold", {"user": t.startswith("uhold") or t.startswith("holdu")}
    target = text
    for prefix in ("jobid=", "job="):
        if target.lower().startswith(prefix):
            target = target[len(prefix):]
    if target.lower().startswith(("name=", "jobname=")):
        return _hold_by_name(st, op, extra, target.split("=", 1)[1])
    rc = _job_op(st, op, extra, target)
    if rc:
        if st.quiet != 1:
            sys.stderr.write(f"slurm_suspend error: {_message_of(rc)}\n")
        return True
    return False


def _hold_by_name(st: State, op: str, extra: dict[str, Any], name: str) -> bool:
    RpcError = _rpc_error()
    try:
        reply = _client(st).call("jobs", {"fields": ["job_id", "name", "uid", "state"]})
    except RpcError as exc:
        _err(st, f"slurm_load_job error: {exc.message}\n")  # type: ignore[attr-defined]
        return True
    ids = [row[0] for row in reply.get("rows") or []
           if row[1] == name and row[2] == os.getuid() and row[3] == "PENDING"]
    if not ids:
        _err(st, f"Invalid job id specified for job {name}\n")
        return True
    return bool(_job_op(st, op, extra, ",".join(str(i) for i in ids)))


def requeue(st: State, text: str, hold: bool) -> None:
    _job_op(st, "requeue", {"hold": hold}, text, map_denied=False)


_UPDATE_KEYS = {"timelimit": "TimeLimit", "partition": "Partition", "dependency": "Dependency",
                "name": "Name", "jobname": "Name", "comment": "Comment", "numnodes": "NumNodes",
                "minnodes": "NumNodes", "priority": "Priority", "starttime": "StartTime",
                "begintime": "StartTime", "nice": "Nice", "requeue": "Requeue", "account": "Account",
                "qos": "QOS", "arraytaskthrottle": "ArrayTaskThrottle"}


def update(st: State, argv: list[str]) -> None:
    words = list(argv)
    keys = [w.split("=", 1)[0].lower() for w in words]
    if any(k in ("nodename", "node") for k in keys):
        update_node(st, words)
    elif any(k in ("jobid", "job", "jobname") for k in keys):
        update_job(st, words)
    elif any(k in ("partitionname", "reservationname", "reservation", "slurmctlddebug", "frontendname",
                   "stepid") for k in keys):
        _err(st, "slurm_update error: Access/permission denied\n")
    else:
        _err(st, "No valid entity in update command\n"
                 'Input line must include "NodeName", "PartitionName", "Reservation", "JobId", or '
                 '"SlurmctldDebug"\n')


def update_job(st: State, words: list[str]) -> None:
    job_text: str | None = None
    changes: dict[str, str] = {}
    for w in words:
        key, eq, value = w.partition("=")
        if not eq:
            _err(st, f"Invalid input: {w}\nRequest aborted\n")
            return
        op = ""
        if key.endswith(("+", "-")):
            op, key = key[-1], key[:-1]
        k = key.lower()
        if k in ("jobid", "job"):
            job_text = value
            continue
        canonical = _UPDATE_KEYS.get(k)
        if canonical is None:
            _err(st, f"Update of this parameter is not supported: {w}\nRequest aborted\n")
            return
        if canonical == "TimeLimit":
            from orchestrator.slurm.options import _valid_timespec

            if not _valid_timespec(value):
                st.exit_code = 1
                error(PROG, "Invalid TimeLimit value")
                return
            value = op + value if op else value
        elif canonical == "StartTime":
            # read here, as scontrol reads it; a time it refuses (or an empty one) is left out of the update
            from orchestrator.slurm.timefmt import DateSpecError, parse_date

            try:
                when = parse_date(value)
            except DateSpecError as exc:
                sys.stderr.write(f"{exc}\n")
                continue
            if not when:
                continue
            value = f"uts{int(when)}"  # the controller gets the moment, not the words
        changes[canonical] = value
    if job_text is None:
        _err(st, "No valid entity in update command\n"
                 'Input line must include "NodeName", "PartitionName", "Reservation", "JobId", or '
                 '"SlurmctldDebug"\n')
        return
    if not changes:
        _err(st, "No changes specified\n")
        return
    _job_op(st, "update_job", {"set": changes}, job_text)


def update_node(st: State, words: list[str]) -> None:
    RpcError = _rpc_error()
    nodes = ""
    state = ""
    reason = ""
    for w in words:
        key, eq, value = w.partition("=")
        k = key.lower()
        if not eq:
            st.exit_code = 1
            error(PROG, f"Invalid input: {w}  Request aborted")
            return
        if k in ("nodename", "node"):
            nodes = value
        elif k == "reason":
            reason = value
        elif k == "state":
            v = value.upper()
            matched = ""
            for name, minimum in (("NORESP", 3), ("DRAIN", 3), ("FAIL", 3), ("FUTURE", 3), ("RESUME", 3),
                                  ("UNDRAIN", 3), ("DOWN", 3), ("IDLE", 3)):
                if (len(v) >= minimum and name.startswith(v)) or name == v:
                    matched = name
                    break
            if not matched:
                _err(st, f"Invalid input: {w}\nRequest aborted\nValid states are: NoResp DRAIN FAIL FUTURE "
                         "RESUME POWER_DOWN POWER_UP UNDRAIN\nNot all states are valid given a node's prior "
                         "state\n")
                return
            state = matched
        else:
            _err(st, f"Update of this parameter is not supported: {w}\nRequest aborted\n")
            return
    if state in ("DOWN", "DRAIN", "FAIL") and not reason:
        _err(st, "You must specify a reason when DOWNING or DRAINING a node. Request denied\n")
        return
    if not state and not reason:
        _err(st, "No changes specified\n")
        return
    try:
        _client(st).call("update_node", {"nodes": nodes, "state": state, "reason": reason})
    except RpcError as exc:
        msg = exc.message  # type: ignore[attr-defined]
        if getattr(exc, "code", "") == "ESLURM_ACCESS_DENIED":
            msg = "Invalid user id"
        _err(st, f"slurm_update error: {msg}\n")
