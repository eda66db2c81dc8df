"""``seff``: CPU and memory efficiency of a finished job, in the contrib script's exact words.

Users paste seff's report into tickets and scripts scrape it, so the lines,
rounding and units (``00:01:02``, ``12.34%``, ``1.50 GB``) follow Slurm's
contribs/seff, computed from the accounting record of the job and its steps.
"""

from __future__ import annotations

import math
import sys
from typing import Any

from orchestrator.commands._common import err, out, run
from orchestrator.lazylog import get_logger

log = get_logger(__name__)

PROG = "seff"
VERSION = "2.1"
USAGE = ("Usage: seff [Options] <Jobid>\n"
         "       Options:\n"
         "       -h    Help menu\n"
         "       -v    Version\n"
         "       -d    Debug mode: display raw Slurm data\n")


def main(argv: list[str] | None = None) -> int:
    return run(PROG, lambda: _main(list(sys.argv[1:] if argv is None else argv)))


def time2str(seconds: float) -> str:
    """``[D-]HH:MM:SS`` as seff prints wall and CPU time."""
    t = int(seconds)
    days = t // 86400
    t -= days * 86400
    hours = t // 3600
    t -= hours * 3600
    minutes = t // 60
    secs = t % 60
    prefix = f"{days}-" if days >= 1 else ""
    return f"{prefix}{hours:02d}:{minutes:02d}:{secs:02d}"


def kbytes2str(kb: float) -> str:
    """``0.00 MB``, ``512.00 KB``, ``1.50 GB``: powers of 1024 from KB."""
    if kb == 0:
        return "0.00 MB"
    exp = int(math.log(kb) / math.log(1024)) if kb > 0 else 0
    units = ["K", "M", "G", "T", "P", "E"]
    pre = units[exp] if 0 <= exp < len(units) else ""
    return f"{kb / 1024 ** exp:.2f} {pre}B"


def _parse(argv: list[str]) -> tuple[dict[str, bool], list[str]] | int:
    """Perl Getopt::Std ``hvdf:``: bundled flags, ``--`` ends options, then positionals."""
    flags = {"h": False, "v": False, "d": False}
    rest: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            rest.extend(argv[i + 1:])
            break
        if a in ("--help", "--usage"):
            flags["h"] = True
            i += 1
            continue
        if a == "--version":
            flags["v"] = True
            i += 1
            continue
        if not a.startswith("-") or a == "-":
            rest.extend(argv[i:])
            break
        j = 1
        while j < len(a):
            ch = a[j]
            if ch == "f":
                if j + 1 >= len(a):
                    i += 1
                break
            if ch in flags:
                flags[ch] = True
            else:
                err(f"Unknown option: {ch}\n")
            j += 1
        i += 1
    return flags, rest


def _main(argv: list[str]) -> int:
    parsed = _parse(argv)
    assert not isinstance(parsed, int)
    flags, rest = parsed
    if flags["v"]:
        out(f"seff Version {VERSION}\n")
        return 1
    if flags["h"] or len(rest) != 1:
        out(USAGE)
        return 1
    job = _load(rest[0])
    if job is None:
        err("Job not found.\n")
        return 2
    report(job, debug=flags["d"])
    return 0


def _load(text: str) -> dict[str, Any] | None:
    from orchestrator.commands import _common

    base = text.split(".")[0]
    jid, _, task = base.partition("_")
    if not jid.isdigit():
        return None
    RpcError = _common.rpc_error_type()
    try:
        reply = _common.make_client().call("acct", {"job_ids": [int(jid)], "all_users": True})
    except RpcError as exc:
        err(f"{exc.message}\n")  # type: ignore[attr-defined]
        return None
    jobs = reply.get("jobs") or []
    n = int(jid)
    for j in jobs:
        if task:
            if (j.get("array_job_id") or 0) == n and str(j.get("array_task_id")) == task:
                return dict(j)
            continue
        if j.get("job_id") == n:
            return dict(j)
    if not task:
        for j in jobs:
            if (j.get("array_job_id") or 0) == n:
                return dict(j)
    return None


def report(job: dict[str, Any], debug: bool = False) -> None:
    from orchestrator.commands._common import group_name

    jobid = job["job_id"]
    user = job.get("user") or ""
    group = job.get("group") or group_name(int(job.get("gid") or 0))
    state = str(job.get("state") or "")
    cluster = job.get("cluster") or ""
    ncpus = int(job.get("alloc_cpus") or 0) or 1
    nnodes = int(job.get("num_nodes") or 0) if job.get("nodes") else 0
    nnodes = nnodes or 1
    if job.get("mem_per_node"):
        reqmem = int(job["mem_per_node"]) * 1024 * nnodes
        pernode = 1
    else:
        per_cpu = int(job.get("mem_per_cpu") or 0)
        if not per_cpu and job.get("alloc_mem"):
            per_cpu = int(job["alloc_mem"]) // ncpus
        reqmem = per_cpu * 1024 * ncpus
        pernode = 0
    start = job.get("start_time") or 0
    end = job.get("end_time") or 0
    if start and not end:
        import time

        end = time.time()
    walltime = int(end - start) if start else 0
    exit_status = int(job.get("exit_code") or 0)
    array_jobid = ""
    if job.get("array_job_id") and job.get("array_task_id") is not None:
        array_jobid = f"{job['array_job_id']}_{job['array_task_id']}"
    tot_cpu = 0.0
    mem = 0.0
    ntasks = 0
    for step in job.get("steps") or []:
        tot_cpu += float(step.get("total_cpu") or 0)
        lmem = float(step.get("max_rss_kb") or 0)
        if mem < lmem:
            mem = lmem
            ntasks = int(step.get("num_tasks") or 0)
    whole = int(tot_cpu)
    cput = whole + int((tot_cpu - whole) + 0.5)
    mem = mem * ntasks
    if debug:
        out("Slurm data: JobID ArrayJobID User Group State Clustername Ncpus Nnodes Ntasks Reqmem PerNode "
            "Cput Walltime Mem ExitStatus\n")
        out(f"Slurm data: {jobid} {array_jobid} {user} {group} {state} {cluster} {ncpus} {nnodes} {ntasks} "
            f"{reqmem} {pernode} {cput} {walltime} {_num(mem)} {exit_status}\n\n")
    out(f"Job ID: {jobid}\n")
    if array_jobid:
        out(f"Array Job ID: {array_jobid}\n")
    out(f"Cluster: {cluster}\n")
    out(f"User/Group: {user}/{group}\n")
    if state in ("PENDING", "RUNNING"):
        out(f"State: {state}\n")
    else:
        out(f"State: {state} (exit code {exit_status})\n")
    if ncpus == 1:
        out(f"Cores: {ncpus}\n")
    else:
        out(f"Nodes: {nnodes}\n")
        out(f"Cores per node: {int(ncpus / nnodes)}\n")
    if state == "PENDING":
        out("Efficiency not available for jobs in the PENDING state.\n")
        return
    corewalltime = walltime * ncpus
    cpu_eff = cput / corewalltime * 100 if corewalltime else 0.0
    out(f"CPU Utilized: {time2str(cput)}\n")
    out(f"CPU Efficiency: {cpu_eff:.2f}% of {time2str(corewalltime)} core-walltime\n")
    out(f"Job Wall-clock time: {time2str(walltime)}\n")
    if ntasks == 1:
        out(f"Memory Utilized: {kbytes2str(mem)}\n")
    else:
        out(f"Memory Utilized: {kbytes2str(mem)} (estimated maximum)\n")
    mem_eff = mem / reqmem * 100 if reqmem else 0.0
    if ntasks == 1:
        out(f"Memory Efficiency: {mem_eff:.2f}% of {kbytes2str(reqmem)}\n")
    elif pernode:
        out(f"Memory Efficiency: {mem_eff:.2f}% of {kbytes2str(reqmem)} ({kbytes2str(reqmem / nnodes)}/node)\n")
    else:
        out(f"Memory Efficiency: {mem_eff:.2f}% of {kbytes2str(reqmem)} ({kbytes2str(reqmem / ncpus)}/core)\n")
    if state == "RUNNING":
        out(f"WARNING: Efficiency statistics may be misleading for {state} jobs.\n")


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)
