"""The job model: records unchanged by the memory layout (parts shared between jobs alike), and JobTable,
the controller's resident jobs with the unfinished ones kept apart for scheduling passes."""

from __future__ import annotations

import dataclasses

import pytest

from orchestrator.scheduler.job import (
    FIELDS,
    NO_ALLOCATION,
    NO_STEPS,
    RECORD_FIELDS,
    Job,
    JobTable,
    Step,
    job_from_values,
    share_parts,
)


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
    assert tuple(record) == RECORD_FIELDS == (*(f.name for f in dataclasses.fields(Job)), "derived_exit_code")
    assert record == {**given, "derived_exit_code": 0}
    assert share_parts(job).record() == record, "sharing the parts changes no value"
    assert job == Job(**given)


def test_jobs_submitted_alike_share_their_options_until_one_changes() -> None:
    a, b = share_parts(_alike(1)), share_parts(_alike(2))
    assert a.work_dir is b.work_dir and a.user is b.user
    assert a.record()["job_id"] == 1 and b.record()["priority"] == 8, "own fields stay each job's own"
    b.name = "other"
    b.num_nodes = 3
    assert (a.name, a.num_nodes) == ("wrap", 1), "changing one job's option leaves the others alone"
    assert (b.name, b.num_nodes) == ("other", 3)
    c = share_parts(_alike(3, name="other", num_nodes=3))
    assert c.record() == {**b.record(), "job_id": 3, "submit_time": c.submit_time, "priority": 7}
    assert share_parts(b).name is c.name


def test_shared_options_compare_values_with_their_types() -> None:
    a = share_parts(_alike(1, exclusive=True))
    b = share_parts(_alike(2, exclusive=1))
    assert a.record()["exclusive"] is True and b.record()["exclusive"] == 1 and b.record()["exclusive"] is not True


def test_jobs_that_have_not_run_share_the_run_defaults_and_a_run_gets_its_own() -> None:
    a, b = _alike(1), share_parts(_alike(2, cpus_per_node={}, steps=[]))
    assert a.cpus_per_node is b.gpus_per_node is NO_ALLOCATION and a.steps is b.steps is NO_STEPS
    with pytest.raises(TypeError):
        a.steps.append(Step(1, "0"))
    with pytest.raises(TypeError):
        a.cpus_per_node["arc-c001"] = 1
    assert a.record()["steps"] == [] and a.record()["cpus_per_node"] == {}
    a.start_time = 1700000100.0
    a.cpus_per_node = {"arc-c001": 1}
    a.steps = [Step(1, "batch")]
    assert (b.start_time, b.cpus_per_node, b.steps) == (0.0, {}, []), "one job's run leaves the others alone"
    assert share_parts(a).start_time == 1700000100.0 and a.record()["steps"][0]["step_id"] == "batch"
    c = share_parts(_alike(3, start_time=0, exit_code=0.0))
    assert type(c.record()["start_time"]) is int and type(c.record()["exit_code"]) is float, "types are kept"


def test_a_job_from_all_its_values_is_the_job_the_constructor_makes() -> None:
    job = _alike(4, start_time=1700000100.0, nodes="arc-c001", cpus_per_node={"arc-c001": 1})
    again = job_from_values({name: getattr(job, name) for name in FIELDS})
    assert again == job and again.record() == job.record() and again.cpus_per_node == {"arc-c001": 1}
    pending = job_from_values({k: getattr(_alike(5), k) for k in FIELDS if k not in ("qos", "steps")})
    assert pending.qos == "normal", "without every field, the constructor's defaults apply"
    assert pending.steps is NO_STEPS and pending.cpus_per_node is NO_ALLOCATION
