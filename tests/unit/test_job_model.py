"""The job model: records unchanged by the memory layout (shared options), and JobTable, the controller's
resident jobs with the unfinished ones kept apart for scheduling passes."""

from __future__ import annotations

import dataclasses

from orchestrator.scheduler.job import RECORD_FIELDS, Job, JobTable, share_options


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


def _alike(job_id: int, **changes: object) -> Job:
    fields = {"job_id": job_id, "cluster": "arc", "name": "wrap", "uid": 1000, "gid": 1000, "user": "alice",
              "group": "alice", "account": "a", "partition": "short", "work_dir": "/home/alice/run",
              "std_out": "/dev/null", "submit_time": 1700000000.0 + job_id, "priority": 10 - job_id}
    return Job(**{**fields, **changes})


def test_the_record_has_every_field_in_order_with_the_values_given() -> None:
    given = {f.name: f.default for f in dataclasses.fields(Job) if f.default is not dataclasses.MISSING}
    given.update(job_id=5, cluster="arc", name="n", uid=1001, gid=1002, user="bob", group="grp", account="acc",
                 partition="short", qos="priority", num_nodes=2, exclusive=True, std_in="/in", array_spec="1-3",
                 state="RUNNING", nodes="arc-c[001-002]", cpus_per_node={"arc-c001": 1, "arc-c002": 1},
                 mem_per_alloc_node={}, gpus_per_node={}, steps=[], time_limit=60, requeue=False)
    job = Job(**given)
    record = job.record()
    assert tuple(record) == RECORD_FIELDS == tuple(f.name for f in dataclasses.fields(Job))
    assert record == given
    assert share_options(job).record() == given, "sharing the options changes no value"
    assert job == Job(**given)


def test_jobs_submitted_alike_share_their_options_until_one_changes() -> None:
    a, b = share_options(_alike(1)), share_options(_alike(2))
    assert a.work_dir is b.work_dir and a.user is b.user
    assert a.record()["job_id"] == 1 and b.record()["priority"] == 8, "own fields stay each job's own"
    b.name = "other"
    b.num_nodes = 3
    assert (a.name, a.num_nodes) == ("wrap", 1), "changing one job's option leaves the others alone"
    assert (b.name, b.num_nodes) == ("other", 3)
    c = share_options(_alike(3, name="other", num_nodes=3))
    assert c.record() == {**b.record(), "job_id": 3, "submit_time": c.submit_time, "priority": 7}
    assert share_options(b).name is c.name


def test_shared_options_compare_values_with_their_types() -> None:
    a = share_options(_alike(1, exclusive=True))
    b = share_options(_alike(2, exclusive=1))
    assert a.record()["exclusive"] is True and b.record()["exclusive"] == 1 and b.record()["exclusive"] is not True
