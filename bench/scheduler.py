"""Scheduler benchmarks (issue 3 and 5 targets): run with ``make bench`` or directly.

    python bench/scheduler.py --local     # daemons as processes on this host
    python bench/scheduler.py --cluster   # inside the running containers, as alice on arc-login

The measuring code (``inner()``) runs where the commands are: on this host in
local mode, or inside arc-login (sent over ``docker exec`` on stdin). Results
go to bench/results/scheduler-<mode>.json and are printed as a table.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH_CONFIG = """\
apiVersion: minihpc/v1
kind: Cluster
site: {mem_per_cpu: 100, max_array_size: 10001}
projects:
  - {name: bench, gid: 30501, credits: 100000000}
users:
  - {name: mhalice, uid: 31001, projects: [bench]}
clusters:
  - name: arc
    login: {hostname: arc-login, ssh_port: 12222}
    nodes:
      - {names: "arc-c[001-004]", cpus: 48, memory: 380G}
    partitions:
      - {name: short, default: true, default_time: "1:00:00", max_time: "12:00:00", priority_tier: 2}
"""


GROUPS = ("sbatch", "running", "submitters", "array", "squeue_array", "squeue_pending")
"""Measure groups for ``--only`` (each group's measures are independent of the others)."""


def inner(workdir: str, only: list[str] | None = None) -> dict[str, float]:
    """Runs where sbatch/squeue are on PATH; returns the measures (of the ``only`` groups, or all)."""
    import subprocess as sp
    import time as t

    def want(group: str) -> bool:
        return only is None or group in only

    def run(*args: str) -> str:
        return sp.run(list(args), capture_output=True, text=True, check=True, cwd=workdir).stdout

    def cancel_all() -> None:
        me = run("id", "-un").strip()
        sp.run(["scancel", "-u", me], capture_output=True, cwd=workdir)  # exit status: see scancel(1)
        while run("squeue", "-h", "-o", "%i", "-u", me).strip():
            t.sleep(0.2)

    def timed(*args: str) -> float:
        start = t.perf_counter()
        sp.run(list(args), capture_output=True, check=True, cwd=workdir)
        return (t.perf_counter() - start) * 1000

    out: dict[str, float] = {}
    # warm up the page cache and the controller
    for _ in range(3):
        run("sbatch", "--hold", "-o", "/dev/null", "--wrap", "true")
    if want("sbatch"):
        out["sbatch_latency_ms_median"] = statistics.median(
            timed("sbatch", "--hold", "-o", "/dev/null", "--wrap", "true") for _ in range(40))
        # the floor every command pays, measured alongside: this machine's speed varies by half
        # from hour to hour, and sbatch's own share is what the code controls
        out["python_startup_ms_median"] = statistics.median(
            timed(sys.executable, "-IS", "-c", "pass") for _ in range(40))
    cancel_all()

    # submit -> RUNNING on idle nodes, from the controller's own timestamps
    if want("running"):
        ids = [run("sbatch", "--parsable", "-o", "/dev/null", "--wrap", "sleep 2").strip().split(";")[0]
               for _ in range(20)]
        t.sleep(4)
        lat = []
        fmt = "%i %V %S"
        for line in run("squeue", "-h", "-t", "all", "-o", fmt, "-j", ",".join(ids)).splitlines():
            _, submitted, started = line.split()
            lat.append(_ts(started) - _ts(submitted))
        rec = _acct_latency(run, ids)
        out["submit_to_running_ms_median"] = statistics.median(rec if rec else lat) * 1000
    # 1000 jobs from 4 parallel submitters, until all completed
    if want("submitters"):
        start = t.perf_counter()
        script = "for i in $(seq 250); do sbatch -o /dev/null --wrap=true >/dev/null; done"
        procs = [sp.Popen(["bash", "-c", script], cwd=workdir) for _ in range(4)]
        for p in procs:
            p.wait()
        while run("squeue", "-h", "-o", "%i", "-u", run("id", "-un").strip()).strip():
            t.sleep(0.25)
        out["1000_wrap_true_4_submitters_s"] = t.perf_counter() - start

    # a 1000-task array of true, submit to all completed
    if want("array"):
        start = t.perf_counter()
        arr = run("sbatch", "--parsable", "-a", "1-1000", "-o", "/dev/null", "--wrap", "true").strip()
        while run("squeue", "-h", "-o", "%i", "-j", arr.split(";")[0]).strip():
            t.sleep(0.25)  # each squeue costs the CPU the tasks need: poll gently
        out["array_1000_jobs_per_s"] = 1000 / (t.perf_counter() - start)
        out["sbatch_array_1000_latency_ms"] = statistics.median(
            timed("sbatch", "--hold", "-a", "1-1000", "-o", "/dev/null", "--wrap", "true") for _ in range(10))
        cancel_all()

    # squeue with a 10,000-task pending array
    big = sp.run(["sbatch", "--hold", "-a", "0-9999", "-o", "/dev/null", "--wrap", "true"], capture_output=True,
                 cwd=workdir) if want("squeue_array") else None
    if big is not None and big.returncode == 0:  # needs MaxArraySize > 10000 (site.max_array_size)
        out["squeue_10000_task_array_ms_median"] = statistics.median(timed("squeue") for _ in range(10))
        cancel_all()

    if not want("squeue_pending"):
        return out
    # squeue with 10,000 pending jobs (submitted in-process to save time; they are ordinary jobs)
    from orchestrator.scheduler.client import Client

    c = Client()
    job = {"work_dir": workdir, "std_out": "/dev/null", "hold": True, "name": "wrap"}
    for _ in range(10000):
        c.call("submit", {"job": job, "script": "#!/bin/sh\ntrue\n", "env": {}})
    out["squeue_10000_pending_ms_median"] = statistics.median(timed("squeue") for _ in range(10))
    out["squeue_10000_pending_l_ms_median"] = statistics.median(timed("squeue", "-l") for _ in range(5))
    return out


def _ts(text: str) -> float:
    return time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%S"))


def _acct_latency(run: object, ids: list[str]) -> list[float]:
    """Sub-second submit->start latency from the controller's records (squeue prints whole seconds)."""
    try:
        from orchestrator.scheduler.client import Client

        recs = Client().call("acct", {"job_ids": [int(i) for i in ids]})["jobs"]
        return [r["start_time"] - r["submit_time"] for r in recs if r["start_time"]]
    except Exception:
        return []


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def local_mode(only: list[str] | None = None) -> dict[str, float]:
    from benchlib import local_cluster

    with local_cluster(BENCH_CONFIG, "minihpc-bench-") as (lc, work):
        idle_node = rss_kb(lc.procs["arc-c001"].pid)  # type: ignore[attr-defined]
        out = inner(str(work), only)
        out["noded_idle_rss_mb"] = idle_node / 1024
        if only is None or "squeue_pending" in only:
            out["controller_rss_mb_with_10000_jobs"] = rss_kb(lc.procs["controller"].pid) / 1024  # type: ignore[attr-defined]
    return out


def cluster_mode(only: list[str] | None = None) -> dict[str, float]:
    from benchlib import run_in_login

    out = run_in_login(Path(__file__), f"inner(workdir, {only!r})")

    def container_rss(name: str, pattern: str) -> float:
        r = subprocess.run(["docker", "exec", name, "sh", "-c",
                            f"for p in $(pgrep -f '{pattern}'); do grep VmRSS /proc/$p/status; done"],
                           capture_output=True, text=True)
        vals = [int(line.split()[1]) for line in r.stdout.splitlines() if line.strip()]
        return max(vals) / 1024 if vals else 0.0

    out["noded_idle_rss_mb"] = container_rss("arc-c004", "minihpc-daemon noded")
    out["controller_rss_mb_with_10000_jobs"] = container_rss("arc-controller", "minihpc-daemon controller")
    subprocess.run(["docker", "exec", "-u", "alice", "arc-login", "scancel", "-u", "alice"], check=False)
    return out


TARGETS = {
    "sbatch_latency_ms_median": ("<=", 15),
    "squeue_10000_pending_ms_median": ("<=", 70),
    "submit_to_running_ms_median": ("<=", 100),
    "1000_wrap_true_4_submitters_s": ("<=", 20),
    "noded_idle_rss_mb": ("<=", 25),
    "controller_rss_mb_with_10000_jobs": ("<=", 40),
    "array_1000_jobs_per_s": (">=", 100),
    "squeue_10000_task_array_ms_median": ("<=", 50),
    "sbatch_array_1000_latency_ms": ("<=", 20),
}


def main() -> int:
    ap = argparse.ArgumentParser()
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--local", action="store_true")
    mode.add_argument("--cluster", action="store_true")
    ap.add_argument("--only", metavar="GROUP[,GROUP]",
                    help=f"run only these measure groups ({', '.join(GROUPS)}); "
                         "prints the results without recording them")
    args = ap.parse_args()
    only = [g for g in args.only.split(",") if g] if args.only else None
    if only and set(only) - set(GROUPS):
        ap.error(f"--only takes groups from: {', '.join(GROUPS)}")
    results = local_mode(only) if args.local else cluster_mode(only)
    from benchlib import report

    report("scheduler", "local" if args.local else "cluster", results, TARGETS, record=not only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
