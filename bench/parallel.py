"""Parallel-work benchmarks (issue 4 targets): job steps and MPI. Run with ``make bench`` or directly.

    python bench/parallel.py --local     # daemons as processes on this host (use /usr/bin/python3)
    python bench/parallel.py --cluster   # inside the running containers, as alice on arc-login

Measures: a one-task ``srun true`` inside an allocation (median of 40), ``srun -N2 -n96 true``
inside a 2 x 48 allocation (median of 5), and a 96-rank ``mpirun mpihello`` batch job from
sbatch to COMPLETED. Results go to bench/results/parallel-<mode>.json and are printed as a table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

BENCH_CONFIG = """\
apiVersion: minihpc/v1
kind: Cluster
site: {mem_per_cpu: 100}
projects:
  - {name: bench, gid: 30501, credits: 100000000}
users:
  - {name: mhalice, uid: 31001, projects: [bench]}
clusters:
  - name: arc
    login: {hostname: arc-login, ssh_port: 12222}
    nodes:
      - {names: "arc-c[001-002]", cpus: 48, memory: 380G}
    partitions:
      - {name: devel, default: true, default_time: "10:00", max_time: "10:00", priority_tier: 3}
"""

MPIHELLO_C = r"""
#include <mpi.h>
#include <stdio.h>
int main(int argc, char **argv) {
    int rank, size, len; char name[MPI_MAX_PROCESSOR_NAME];
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Get_processor_name(name, &len);
    printf("Hello world from processor %s, rank %d out of %d processors\n", name, rank, size);
    MPI_Finalize();
    return 0;
}
"""

# runs inside an allocation: times srun with the interpreter the commands use
_TIMER = r"""
import json, statistics, subprocess, sys, time
args, n = json.loads(sys.argv[1]), int(sys.argv[2])
subprocess.run(args, stdout=subprocess.DEVNULL, check=True)  # warm the page cache
ts = []
for _ in range(n):
    t = time.perf_counter()
    subprocess.run(args, stdout=subprocess.DEVNULL, check=True)
    ts.append(time.perf_counter() - t)
print(json.dumps({"median": statistics.median(ts), "min": min(ts)}))
"""


def inner(workdir: str, python: str, mpi_setup: str, mpihello: str) -> dict[str, float]:
    """Runs where srun/salloc/sbatch are on PATH; returns the measures."""
    import subprocess as sp
    import time as t

    def timed_in_alloc(alloc: list[str], args: list[str], n: int) -> dict[str, float]:
        r = sp.run(["salloc", "-Q", *alloc, python, "-c", _TIMER, json.dumps(args), str(n)], capture_output=True,
                   text=True, cwd=workdir, check=True)
        return dict(json.loads(r.stdout.strip().splitlines()[-1]))

    out: dict[str, float] = {}
    one = timed_in_alloc(["-N1", "-n1"], ["srun", "true"], 40)
    out["srun_true_in_allocation_ms_median"] = one["median"] * 1000
    out["srun_true_in_allocation_ms_min"] = one["min"] * 1000
    wide = timed_in_alloc(["-N2", "--ntasks-per-node=48"], ["srun", "-N2", "-n96", "true"], 5)
    out["srun_N2_n96_true_s"] = wide["median"]

    if mpihello:
        script = Path(workdir) / "mpi.sh"
        script.write_text(f"#!/bin/bash\n#SBATCH -N2 --ntasks-per-node=48 -o mpi-%j.out\n{mpi_setup}\n"
                          f"mpirun {mpihello}\n")
        start = t.perf_counter()
        job = sp.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True, cwd=workdir,
                     check=True).stdout.strip().split(";")[0]
        state = ""
        while t.perf_counter() - start < 120:
            state = sp.run(["squeue", "-h", "-t", "all", "-o", "%T", "-j", job], capture_output=True,
                           text=True).stdout.strip()
            if state in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"):
                break
            t.sleep(0.25)  # each squeue costs CPU the 96 ranks need: poll gently
        elapsed = t.perf_counter() - start
        lines = (Path(workdir) / f"mpi-{job}.out").read_text().splitlines()
        ranks = sum(1 for ln in lines if ln.startswith("Hello world from processor") and "out of 96" in ln)
        out["mpirun_96_ranks_submit_to_completed_s"] = elapsed if state == "COMPLETED" and ranks == 96 else -1.0
        out["mpirun_96_ranks_hello_lines"] = float(ranks)
    return out


def local_mode(mpi: bool = True) -> dict[str, float]:
    from benchlib import local_cluster

    with local_cluster(BENCH_CONFIG, "minihpc-bench-parallel-") as (_lc, work):
        mpihello = ""
        if mpi and shutil.which("mpicc") and shutil.which("mpirun"):
            (work / "mpihello.c").write_text(MPIHELLO_C)
            subprocess.run(["mpicc", "-o", str(work / "mpihello"), str(work / "mpihello.c")], check=True)
            mpihello = str(work / "mpihello")
        # every "node" is this host: Open MPI must not share memory segments between them, and
        # refuses to run as root unless told
        setup = "export OMPI_MCA_btl=self,tcp OMPI_MCA_btl_tcp_if_include=lo"
        if os.getuid() == 0:
            setup += " OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1"
        return inner(str(work), sys.executable, setup, mpihello)


def cluster_mode() -> dict[str, float]:
    from benchlib import run_in_login

    return run_in_login(Path(__file__), "inner(workdir, 'python3', 'module load mpitest', 'mpihello')")


TARGETS = {
    "srun_true_in_allocation_ms_median": ("<=", 60),
    "srun_N2_n96_true_s": ("<=", 1),
    "mpirun_96_ranks_submit_to_completed_s": ("<=", 10),
}


def main() -> int:
    ap = argparse.ArgumentParser()
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--local", action="store_true")
    mode.add_argument("--cluster", action="store_true")
    ap.add_argument("--no-mpi", action="store_true", help="skip the 96-rank MPI job (local mode)")
    args = ap.parse_args()
    results = local_mode(not args.no_mpi) if args.local else cluster_mode()
    from benchlib import report

    report("parallel", "local" if args.local else "cluster", results, TARGETS, digits=3)
    return 0


if __name__ == "__main__":
    sys.exit(main())
