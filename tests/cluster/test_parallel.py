"""Issue 4 on the running service: job steps, interactive shells and multi-node MPI across containers.

Everything runs as alice over ssh to arc-login, as a user would: srun across two compute
containers, an interactive ``srun --pty`` session driven through a real terminal, attaching
to a running job, the dask-style srun, and the seed's 96-rank ``mpirun mpihello`` job.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator

import pytest
from clusterlib import ClusterUnderTest, Shell, shell

pytestmark = pytest.mark.cluster

USER = "alice"
JOB_TIMEOUT = 300.0


@pytest.fixture(scope="module")
def login(cluster: ClusterUnderTest) -> Shell:
    return shell(USER, cluster.config.clusters[0].name, login_shell=True)


@pytest.fixture
def workdir(login: Shell) -> Iterator[str]:
    path = f"partest-{uuid.uuid4().hex[:8]}"
    login.ok(f"mkdir -p ~/{path}")
    yield path
    login.run(f"rm -rf ~/{path}")


def _wait(login: Shell, job: str, timeout: float = JOB_TIMEOUT) -> str:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        state = login.ok(f"squeue -h -t all -o %T -j {job}").strip()
        if state in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"):
            return state
        time.sleep(1)
    raise AssertionError(f"job {job} still {state} after {timeout}s")


def test_srun_on_two_nodes_with_labels(login: Shell, workdir: str) -> None:
    out = login.ok(f"cd ~/{workdir} && srun -N2 -l hostname")
    lines = sorted(out.splitlines())
    assert [ln.split(":")[0] for ln in lines] == ["0", "1"], out
    hosts = [ln.split(": ")[1] for ln in lines]
    assert len(set(hosts)) == 2 and all(re.fullmatch(r"arc-c\d{3}", h) for h in hosts), out


def test_dask_style_srun_reads_procid(login: Shell, workdir: str) -> None:
    out = login.ok(f"cd ~/{workdir} && srun --mpi=none -n 4 python3 -c "
                   "\"import os; print(os.environ['SLURM_PROCID'], os.environ['SLURM_NTASKS'])\"")
    assert sorted(out.split("\n")[:-1]) == ["0 4", "1 4", "2 4", "3 4"], out


def test_hostnames_for_a_hostfile(login: Shell, workdir: str) -> None:
    out = login.ok(f"cd ~/{workdir} && salloc -N2 bash -c 'scontrol show hostnames $SLURM_JOB_NODELIST'")
    hosts = out.split()
    assert len(hosts) == 2 and all(re.fullmatch(r"arc-c\d{3}", h) for h in hosts), out


def test_interactive_pty_session(login: Shell) -> None:
    pexpect = pytest.importorskip("pexpect")
    cmd = [*login.argv[:-1], "-tt", login.argv[-1], "srun -p interactive --pty /bin/bash"]
    child = pexpect.spawn(cmd[0], cmd[1:], encoding="utf-8", timeout=60, dimensions=(30, 100))
    prompt = r"\$ $"
    child.expect(prompt)
    child.sendline("echo HOST=$(hostname) JOB=$SLURM_JOB_ID; stty size")
    child.expect(r"HOST=(arc-c\d{3}) JOB=(\d+)")
    job = child.match.group(2)
    child.expect("30 100")
    child.sendline("exit 5")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 5
    assert _wait(login, job, 60) == "FAILED"


def test_attach_to_a_running_job(login: Shell, workdir: str) -> None:
    out = login.ok(f"cd ~/{workdir} && sbatch --parsable -N2 -t 5 --wrap 'srun sleep 120'")
    job = out.strip().split(";")[0]
    try:
        deadline = time.monotonic() + 60
        while login.ok(f"squeue -h -o %T -j {job}").strip() != "RUNNING":
            assert time.monotonic() < deadline
            time.sleep(1)
        out = login.ok(f"srun --jobid {job} -l bash -c 'echo $SLURM_JOB_ID $(hostname)'")
        assert re.fullmatch(rf"0: {job} arc-c\d{{3}}\n", out), out
    finally:
        login.run(f"scancel {job}")


def test_mpihello_96_ranks_on_two_nodes(login: Shell, workdir: str) -> None:
    if login.run("module is-avail mpitest").returncode != 0:
        pytest.skip("the mpitest module is not installed in this image")
    script = ("#!/bin/bash\n#SBATCH --partition=devel\n#SBATCH --nodes=2\n#SBATCH --ntasks-per-node=48\n"
              "module load mpitest\nmpirun mpihello\n")
    login.ok(f"cd ~/{workdir} && cat > mpi.sh <<'EOF'\n{script}EOF\n")
    start = time.monotonic()
    job = login.ok(f"cd ~/{workdir} && sbatch --parsable mpi.sh").strip().split(";")[0]
    state = _wait(login, job)
    elapsed = time.monotonic() - start
    out = login.ok(f"cat ~/{workdir}/slurm-{job}.out")
    assert state == "COMPLETED", out
    ranks: dict[int, str] = {}
    for m in re.finditer(r"^Hello world from processor (\S+), rank (\d+) out of 96 processors$", out, re.M):
        ranks[int(m.group(2))] = m.group(1)
    assert sorted(ranks) == list(range(96)), out
    first, second = {ranks[r] for r in range(48)}, {ranks[r] for r in range(48, 96)}
    assert len(first) == 1 and len(second) == 1 and first != second, ranks
    # mpirun is Open MPI's daemon on the batch node and starts orted on the other node through
    # srun: one step, on one node (as under real Slurm)
    steps = login.ok(f"sacct -j {job} -n -P -o JobID,State,NNodes,NodeList")
    batch_node = login.ok(f"sacct -j {job}.batch -n -P -o NodeList").strip()
    assert f"{job}.0|COMPLETED|1|" in steps, steps
    step_node = next(ln.split("|")[3] for ln in steps.splitlines() if ln.startswith(f"{job}.0|"))
    assert {step_node, batch_node} == first | second, (steps, batch_node)
    print(f"96-rank mpihello: submit to COMPLETED in {elapsed:.1f} s")


def test_killing_a_node_mid_run_ends_the_job_as_node_fail(login: Shell, workdir: str) -> None:
    """The container of two jobs' second node is killed and comes back. The job submitted with
    --no-requeue ends NODE_FAIL; the other is requeued (Slurm's JobRequeue=1), its first run kept
    in ``sacct -D`` as NODE_FAIL; and the node is usable again."""
    import docker

    victim = "arc-c004"
    submit = f"cd ~/{workdir} && sbatch --parsable -N2 -w arc-c[003-004] -t 10 "
    once = login.ok(submit + "--no-requeue --wrap 'srun sleep 300'").strip().split(";")[0]
    again = login.ok(submit + "--wrap 'srun sleep 300'").strip().split(";")[0]
    container = docker.from_env().containers.get(victim)
    try:
        deadline = time.monotonic() + 60
        while login.ok(f"squeue -h -o %T -j {once},{again}").split() != ["RUNNING", "RUNNING"]:
            assert time.monotonic() < deadline, "the jobs never started"
            time.sleep(1)
        time.sleep(2)  # the steps are running on both nodes
        container.kill()
        container.start()
        assert _wait(login, once, 120) == "NODE_FAIL"
        assert login.ok(f"sacct -j {once} -X -n -P -o State,NodeList").strip() == "NODE_FAIL|arc-c[003-004]"
        runs = login.ok(f"sacct -D -j {again} -X -n -P -o State").split()
        assert runs[0] == "NODE_FAIL" and len(runs) == 2, runs
        assert login.ok(f"scontrol show job {again}").count("Restarts=1") == 1
    finally:
        login.run(f"scancel {once} {again}")
        container.reload()
        if container.status != "running":
            container.start()
    deadline = time.monotonic() + 120
    state = ""
    while time.monotonic() < deadline:
        state = login.ok(f"sinfo -h -n {victim} -o %T").strip()
        if state == "idle":
            break
        time.sleep(2)
    assert state == "idle", f"{victim} did not come back: {state}"
