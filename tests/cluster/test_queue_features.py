"""Issue 5 on the running service, over ssh as alice: throttled arrays, dependency chains, GPUs on htc,
multi-cluster queues and cross-cluster submission."""

from __future__ import annotations

import time
import uuid

import pytest
from clusterlib import Shell, shell

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def alice(cluster) -> Shell:
    return shell("alice")


@pytest.fixture
def workdir(alice: Shell):
    path = f"~/queue-{uuid.uuid4().hex[:8]}"
    alice.ok(f"mkdir -p {path}")
    yield path
    alice.run(f"rm -rf {path}")


def test_array_throttle_is_never_exceeded(alice: Shell, workdir: str) -> None:
    job = alice.submit("#!/bin/bash\nsleep 3\n", "-a", "1-6%2", workdir=workdir)
    most = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        out = alice.ok(f"squeue -h -t R -o %i -j {job} | wc -l; squeue -h -j {job} | wc -l").split()
        most = max(most, int(out[0]))
        if int(out[1]) == 0:
            break
        time.sleep(0.5)
    assert 1 <= most <= 2
    states = alice.ok(f"sacct -X -n -P -o JobID,State -j {job}").split()
    assert sorted(states) == sorted(f"{job}_{i}|COMPLETED" for i in range(1, 7))


def test_afterok_chain_with_a_failing_middle_job(alice: Shell, workdir: str) -> None:
    first = alice.submit("#!/bin/bash\ntrue\n", workdir=workdir)
    middle = alice.submit("#!/bin/bash\nexit 3\n", f"--dependency=afterok:{first}", workdir=workdir)
    last = alice.submit("#!/bin/bash\ntrue\n", f"--dependency=afterok:{middle}", workdir=workdir)
    assert alice.wait(middle) == "FAILED"
    deadline = time.monotonic() + 30
    while alice.state(last)[1] != "DependencyNeverSatisfied" and time.monotonic() < deadline:
        time.sleep(1)
    assert alice.state(last) == ("PENDING", "DependencyNeverSatisfied")
    alice.ok(f"scancel {last}")


def test_gpu_job_on_htc_sees_only_its_gpu(cluster) -> None:
    htc = shell("alice", "htc")
    job = htc.submit("#!/bin/bash\necho CUDA=$CUDA_VISIBLE_DEVICES; hostname; nvidia-smi -L\n",
                     "--gres=gpu:v100:1")
    assert htc.wait(job) == "COMPLETED"
    out = htc.ok(f"cat ~/slurm-{job}.out").splitlines()
    assert out[0] in ("CUDA=0", "CUDA=1")
    assert out[1] == "htc-g001"
    gpus = [ln for ln in out[2:] if ln.startswith("GPU ")]
    assert len(gpus) == 1 and "V100" in gpus[0]


def test_highmem_job_lands_on_the_highmem_node(cluster) -> None:
    htc = shell("alice", "htc")
    job = htc.submit("#!/bin/bash\nhostname\n", "--mem=1500G")
    assert htc.wait(job) == "COMPLETED"
    assert htc.ok(f"cat ~/slurm-{job}.out").strip() == "htc-h001"
    r = htc.run("sbatch --mem=5000G --wrap true")
    assert r.returncode == 1 and "Requested node configuration is not available" in r.stderr


def test_squeue_all_clusters_and_cross_cluster_submission(alice: Shell) -> None:
    out = alice.ok("sbatch -M htc --hold --wrap true")
    assert out.startswith("Submitted batch job ") and out.strip().endswith(" on cluster htc")
    job = out.split()[3]
    listing = alice.ok("squeue -M all")
    assert "CLUSTER: arc" in listing and "CLUSTER: htc" in listing
    htc_part = listing.split("CLUSTER: htc", 1)[1]
    assert job in htc_part
    alice.ok(f"scancel -M htc {job}")
    env = alice.ok("sbatch -M htc --parsable --wrap 'echo $SLURM_CLUSTER_NAME' && sleep 4 && cat slurm-*.out | tail -1")
    assert "htc" in env


def test_notify_and_cancel_notices_reach_the_jobs_output(alice: Shell, workdir: str) -> None:
    """slurmstepd's lines in a job's output, written as alice on a compute node (root's groups made that fail)."""
    job = alice.submit("#!/bin/bash\nsleep 30\n", workdir=workdir)
    alice.ok(f"scontrol wait_job {job}")
    alice.ok(f"scontrol notify {job} hello there")
    alice.ok(f"scancel {job}")
    deadline = time.monotonic() + 60
    out = ""
    while time.monotonic() < deadline:
        out = alice.ok(f"cat {workdir}/slurm-{job}.out")
        if "CANCELLED AT" in out:
            break
        time.sleep(1)
    lines = out.splitlines()
    assert lines[0].endswith(": error: hello there") and lines[0].startswith("slurmstepd-arc-c"), out
    assert f"*** JOB {job} ON " in lines[1] and "CANCELLED AT" in lines[1], out
