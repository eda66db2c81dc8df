"""What the controller keeps of a job (EligibleTime, AccrueTime, priority, a requeued job's new record) as
slurmctld 22.05 does, on a controller without daemons and a fake clock. Its nodes never register, so no job
starts unless a test says so.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cluster.config import parse
from orchestrator.scheduler.controller import Controller
from orchestrator.scheduler.job import Job, Step
from orchestrator.scheduler.server import Request

pytestmark = pytest.mark.unit
T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(time, "time", c)
    return c


@pytest.fixture
def ctl(tmp_path: Path, clock: Clock) -> Controller:
    cfg = parse({
        "apiVersion": "minihpc/v1", "kind": "Cluster", "site": {"mem_per_cpu": 100},
        "projects": [{"name": "proj-a", "gid": 30001, "credits": 1000}],
        "users": [{"name": "alice", "uid": 31001, "projects": ["proj-a"]}],
        "clusters": [{"name": "c1", "login": {"ssh_port": 2222},
                      "nodes": [{"names": "n[1-2]", "cpus": 4, "memory": "2G"}],
                      "partitions": [{"name": "short", "default": True, "default_time": "1:00:00",
                                      "max_time": "12:00:00"}]}],
    })
    c = Controller(cfg, cfg.cluster("c1"), tmp_path / "c1", ("127.0.0.1", 0))
    c._identity = lambda uid, gid: ("alice", "proj-a")  # type: ignore[method-assign]
    return c


def _call(ctl: Controller, op: str, body: dict[str, Any]) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        reply: dict[str, Any] = await getattr(ctl, f"op_{op}")(Request(op, 31001, 30001, body, "test", None, None))  # type: ignore[arg-type]
        return reply

    return asyncio.run(go())


def submit(ctl: Controller, **spec: Any) -> Job:
    reply = _call(ctl, "submit", {"job": {"work_dir": "/tmp", **spec}, "script": "#!/bin/sh\ntrue\n", "env": {}})
    return ctl.jobs[int(reply["job_id"])]


def one_pass(ctl: Controller) -> None:
    async def go() -> None:
        ctl.loop = asyncio.get_running_loop()
        ctl._run_pass()
        ctl.loop = None

    asyncio.run(go())


def test_a_plain_job_is_eligible_from_its_submission(ctl: Controller, clock: Clock) -> None:
    j = submit(ctl)
    assert j.eligible_time == j.accrue_time == j.submit_time == T0
    clock.now += 5
    one_pass(ctl)
    assert j.eligible_time == T0


def test_a_begin_time_is_the_eligible_time_at_once_even_while_held(ctl: Controller, clock: Clock) -> None:
    later = submit(ctl, begin_time=T0 + 60)
    held = submit(ctl, begin_time=T0 + 60, hold=True)
    one_pass(ctl)
    assert (later.reason, later.eligible_time, later.accrue_time) == ("BeginTime", T0 + 60, T0 + 60)
    assert (held.reason, held.eligible_time) == ("JobHeldUser", T0 + 60)


def test_a_held_job_is_eligible_when_released(ctl: Controller, clock: Clock) -> None:
    held = submit(ctl, hold=True)
    one_pass(ctl)
    assert (held.eligible_time, held.accrue_time) == (0.0, 0.0)  # EligibleTime=Unknown AccrueTime=Unknown
    clock.now += 30
    _call(ctl, "release", {"job_ids": [str(held.job_id)]})
    assert held.eligible_time == 0.0  # until a pass looks at it
    one_pass(ctl)
    assert (held.eligible_time, held.accrue_time) == (T0 + 30, T0 + 30)


def test_holding_an_eligible_job_clears_its_eligible_time_but_not_its_accrue_time(ctl: Controller,
                                                                                  clock: Clock) -> None:
    j = submit(ctl)
    clock.now += 10
    _call(ctl, "hold", {"job_ids": [str(j.job_id)]})
    one_pass(ctl)
    assert (j.reason, j.eligible_time, j.accrue_time) == ("JobHeldUser", 0.0, T0)
    clock.now += 10
    _call(ctl, "release", {"job_ids": [str(j.job_id)]})
    one_pass(ctl)
    assert (j.eligible_time, j.accrue_time) == (T0 + 20, T0)


def test_a_dependent_job_is_eligible_when_its_dependency_is_satisfied(ctl: Controller, clock: Clock) -> None:
    first = submit(ctl)
    after = submit(ctl, dependency=f"afterok:{first.job_id}")
    soon = submit(ctl, dependency=f"afterok:{first.job_id}", begin_time=T0 + 5)
    one_pass(ctl)
    assert (after.reason, after.eligible_time, after.accrue_time) == ("Dependency", 0.0, 0.0)
    assert (soon.reason, soon.eligible_time) == ("Dependency", T0 + 5)  # Dependency, not BeginTime, as Slurm
    clock.now += 10  # the begin time has passed with the dependency still there: not eligible after all
    one_pass(ctl)
    assert (soon.reason, soon.eligible_time, soon.accrue_time) == ("Dependency", 0.0, T0 + 5)
    first.state, first.start_time, first.end_time = "COMPLETED", T0 + 1, T0 + 12
    clock.now += 10
    one_pass(ctl)
    assert after.reason != "Dependency" and after.eligible_time == after.accrue_time == T0 + 20
    assert soon.eligible_time == T0 + 20


def test_a_new_begin_time_is_the_eligible_time_and_never_one_past(ctl: Controller, clock: Clock) -> None:
    j = submit(ctl)
    clock.now += 10
    _call(ctl, "update_job", {"job_ids": [str(j.job_id)], "set": {"BeginTime": "2020-01-01T00:00:00"}})
    assert j.eligible_time == T0 + 10
    _call(ctl, "update_job", {"job_ids": [str(j.job_id)], "set": {"BeginTime": "now+60"}})
    assert j.eligible_time == T0 + 70


def test_a_requeued_job_is_a_new_record_without_the_earlier_runs_steps(ctl: Controller, clock: Clock) -> None:
    j = submit(ctl, dependency="afterok:999999")  # an id no longer known: satisfied at the first pass
    one_pass(ctl)
    j.reason_prev = "Dependency"
    j.state, j.start_time, j.nodes, j.cpus_per_node = "RUNNING", T0 + 1, "n1", {"n1": 1}
    j.steps = [Step(j.job_id, "0", "true", "COMPLETED", T0 + 1, T0 + 2, "n1", 1, 1, 1, total_cpu=0.5)]
    clock.now = T0 + 10
    ctl._record_steps(j, "REQUEUED", clock.now, 0, 15, {"user_cpu": 0.5})
    ctl._requeue(j, clock.now)
    assert (j.state, j.reason, j.restart_count, j.steps, j.total_cpu) == ("PENDING", "BeginTime", 1, [], 0.0)
    # it may start again once its launch credential has expired: 121 s after the requeue, as in Slurm
    assert (j.submit_time, j.eligible_time, j.accrue_time, j.reason_prev) == (T0 + 10, T0 + 131, 0.0, "None")
    earlier = ctl.store.runs([j.job_id])[j.job_id]
    assert [(r["state"], r["submit_time"], [s["step_id"] for s in r["steps"]]) for r in earlier] == [
        ("REQUEUED", T0, ["batch", "extern", "0"])]
    assert earlier[0]["reason_prev"] == "Dependency"
    one_pass(ctl)
    assert (j.accrue_time, j.expected_start) == (T0 + 131, T0 + 131)


def test_a_job_submitted_held_has_priority_0_until_released(ctl: Controller) -> None:
    held = submit(ctl, hold=True)
    assert held.priority == 0  # scontrol show job: Priority=0, and squeue lists it after the others
    _call(ctl, "release", {"job_ids": [str(held.job_id)]})
    assert held.priority > 0


def test_show_config_lists_every_key_of_2205_in_its_order(ctl: Controller) -> None:
    from orchestrator.scheduler.slurmconf import KEYS

    items = _call(ctl, "config", {})["config"]
    assert [k for k, _ in items] == [k for k, _ in KEYS] and len(items) > 190
    conf = dict(items)
    assert (conf["ClusterName"], conf["MinJobAge"], conf["KillWait"], conf["DefMemPerCPU"]) == (
        "c1", "300 sec", "30 sec", "100")
    assert (conf["MaxNodeCount"], conf["GresTypes"], conf["SelectType"]) == ("2", "(null)", "select/cons_tres")
    assert conf["StateSaveLocation"] == str(ctl.store.path.parent)
    assert all(v is not None for v in conf.values())
