"""JobTable: the controller's resident jobs, with the unfinished ones kept apart for scheduling passes."""

from __future__ import annotations

from orchestrator.scheduler.job import Job, JobTable


def _job(job_id: int, state: str = "PENDING") -> Job:
    return Job(job_id=job_id, cluster="arc", name="wrap", uid=1000, gid=1000, user="alice", group="alice",
               account="a", partition="short", state=state)


def test_unfinished_drops_finished_jobs_but_the_table_keeps_them() -> None:
    table = JobTable()
    for i, state in enumerate(("PENDING", "RUNNING", "COMPLETED", "COMPLETING", "CANCELLED"), 1):
        table[i] = _job(i, state)
    assert [j.job_id for j in table.unfinished()] == [1, 2, 4]
    table[2].state = "TIMEOUT"
    assert [j.job_id for j in table.unfinished()] == [1, 4]
    assert sorted(table) == [1, 2, 3, 4, 5], "finished jobs stay resident (MinJobAge)"


def test_a_requeued_job_is_set_again_and_deleted_jobs_leave_both() -> None:
    table = JobTable()
    table[7] = _job(7, "COMPLETED")
    assert table.unfinished() == []
    table[7].state = "PENDING"
    table[7] = table[7]
    assert [j.job_id for j in table.unfinished()] == [7]
    del table[7]
    assert 7 not in table and table.unfinished() == []
    table.setdefault(8, _job(8))
    assert [j.job_id for j in table.unfinished()] == [8], "setdefault adds like [] does"


def test_a_nodes_boot_time_is_when_its_pid_1_started() -> None:
    """In a container PID 1 starts with the container, so a restarted container is a rebooted node."""
    import os
    import time

    from orchestrator.scheduler.noded import _boot_time

    with open("/proc/stat") as f:
        btime = next(float(line.split()[1]) for line in f if line.startswith("btime"))
    with open("/proc/1/stat") as f:
        ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    assert _boot_time() == btime + ticks / os.sysconf("SC_CLK_TCK")
    assert btime <= _boot_time() <= time.time()
