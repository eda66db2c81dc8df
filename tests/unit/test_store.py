"""The controller's store: compact in-memory jobs, and records that survive reopening the database."""

from __future__ import annotations

import pytest

from orchestrator.scheduler.job import Job
from orchestrator.scheduler.store import NO_ALLOCATION, Store, compact, job_from_record

pytestmark = pytest.mark.unit


def _job(job_id: int, work_dir: str) -> Job:
    return Job(job_id=job_id, cluster="arc", name="wrap", uid=1000, gid=1000, user="alice", group="alice",
               account="proj", partition="short", work_dir=work_dir, std_out="/dev/null")


def test_compact_shares_equal_strings_and_the_empty_allocation_maps():
    a = compact(_job(1, "".join(["/home/alice/", "run"])))
    b = compact(_job(2, "".join(["/home/alice/", "run"])))
    assert a.work_dir == b.work_dir == "/home/alice/run" and a.work_dir is b.work_dir
    assert a.cpus_per_node is b.gpus_per_node is NO_ALLOCATION
    assert a.record()["cpus_per_node"] == {}


def test_the_shared_empty_allocation_map_cannot_be_changed():
    with pytest.raises(TypeError):
        NO_ALLOCATION["arc-c001"] = 4
    with pytest.raises(TypeError):
        NO_ALLOCATION.update({"arc-c001": 4})
    assert NO_ALLOCATION == {}


def test_a_compacted_job_round_trips_through_a_reopened_store(tmp_path):
    store = Store(tmp_path / "state.db")
    job = compact(_job(7, "/home/alice/run"))
    store.insert_job(job, "#!/bin/sh\ntrue\n", {"A": "1"}, [])
    store.close()
    again = Store(tmp_path / "state.db")
    (back,) = list(again.active_jobs())
    assert back.record() == job.record()
    assert back.mem_per_alloc_node is NO_ALLOCATION
    assert again.inputs(7) == ("#!/bin/sh\ntrue\n", {"A": "1"}, [])
    allocated = job_from_record({**job.record(), "cpus_per_node": {"arc-c001": 4}})
    assert allocated.cpus_per_node == {"arc-c001": 4} and allocated.cpus_per_node is not NO_ALLOCATION
