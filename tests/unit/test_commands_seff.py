"""seff against a fake controller: the contrib script's lines, rounding and units."""

from __future__ import annotations

import pytest
from fakeslurm import FakeSlurm, job, run, slurm_fixture  # noqa: F401 - the fixture

from orchestrator.commands.seff import kbytes2str, time2str

USAGE = ("Usage: seff [Options] <Jobid>\n       Options:\n       -h    Help menu\n       -v    Version\n"
         "       -d    Debug mode: display raw Slurm data\n")


@pytest.mark.parametrize("kb,text", [(0, "0.00 MB"), (512, "512.00 KB"), (45828, "44.75 MB"),
                                     (102400, "100.00 MB"), (1572864, "1.50 GB")])
def test_kbytes2str(kb: float, text: str) -> None:
    assert kbytes2str(kb) == text


def test_time2str() -> None:
    assert time2str(62) == "00:01:02"
    assert time2str(90061) == "1-01:01:01"


def test_completed_job_with_a_batch_step(slurm: FakeSlurm) -> None:
    batch = {"step_id": "batch", "state": "COMPLETED", "num_tasks": 1, "total_cpu": 1.141, "max_rss_kb": 45828}
    slurm.jobs = [job(17, cluster="arc", state="COMPLETED", start_time=1000, end_time=1002, alloc_cpus=1,
                      nodes="c001", num_nodes=1, mem_per_cpu=100, steps=[batch])]
    slurm.serve_jobs()
    assert run("seff", "17") == (0, "Job ID: 17\nCluster: arc\nUser/Group: alice/alice\n"
                                    "State: COMPLETED (exit code 0)\nCores: 1\nCPU Utilized: 00:00:01\n"
                                    "CPU Efficiency: 50.00% of 00:00:02 core-walltime\n"
                                    "Job Wall-clock time: 00:00:02\nMemory Utilized: 44.75 MB\n"
                                    "Memory Efficiency: 44.75% of 100.00 MB\n", "")


def test_multi_core_job_without_memory_data(slurm: FakeSlurm) -> None:
    slurm.jobs = [job(20, state="FAILED", exit_code=3, start_time=1000, end_time=1100, alloc_cpus=4,
                      nodes="c[001-002]", num_nodes=2, mem_per_node=1024, array_job_id=19, array_task_id=2)]
    slurm.serve_jobs()
    assert run("seff", "20")[1] == ("Job ID: 20\nArray Job ID: 19_2\nCluster: arc\nUser/Group: alice/alice\n"
                                    "State: FAILED (exit code 3)\nNodes: 2\nCores per node: 2\n"
                                    "CPU Utilized: 00:00:00\nCPU Efficiency: 0.00% of 00:06:40 core-walltime\n"
                                    "Job Wall-clock time: 00:01:40\nMemory Utilized: 0.00 MB (estimated maximum)\n"
                                    "Memory Efficiency: 0.00% of 2.00 GB (1.00 GB/node)\n")


def test_pending_and_missing(slurm: FakeSlurm) -> None:
    slurm.jobs = [job(13, state="PENDING")]
    slurm.serve_jobs()
    assert run("seff", "13")[1].endswith("State: PENDING\nCores: 1\n"
                                         "Efficiency not available for jobs in the PENDING state.\n")
    assert run("seff", "99999") == (2, "", "Job not found.\n")


def test_usage_and_version(slurm: FakeSlurm) -> None:
    assert run("seff") == (1, USAGE, "")
    assert run("seff", "-h", "5") == (1, USAGE, "")
    assert run("seff", "--help") == (1, USAGE, "")
    assert run("seff", "-v") == (1, "seff Version 2.1\n", "")
