"""Credits on a running local service: reservations, charges that agree with sacct, holds, top-ups, priority."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from arc_cluster import arc_service

from orchestrator.slurm.accounting import cpu_time_raw

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def arc(local: Any) -> Iterator[Any]:
    with arc_service(local) as svc:
        yield svc


def admin(arc: Any, *args: str) -> str:
    """``minihpc credits ...`` as it runs inside the controller container: root, through the controller."""
    r = arc.run([sys.executable, "-m", "orchestrator.services.credits_cli", *args], env={"PYTHONPATH": str(REPO)})
    assert r.returncode == 0, r.stderr
    return str(r.stdout)


def account(arc: Any, name: str) -> dict[str, Any]:
    listing = arc.cluster.call("credits_admin", {"action": "list", "account": name})
    acct: dict[str, Any] = next(a for a in listing["accounts"] if a["name"] == name)
    acct["charged"] = listing["charged"][name]
    return acct


def wait_state(arc: Any, job: int, states: tuple[str, ...], timeout: float = 30) -> dict[str, Any]:
    return dict(arc.wait(job, states, timeout=timeout))


def reason(arc: Any, job: int) -> str:
    return str(arc.job(job, ("state", "reason"))["reason"])


def test_running_job_reserves_and_is_charged_elapsed_times_cpus(arc):
    before = account(arc, "proj-a")
    job = arc.submit("#!/bin/bash\nsleep 2\n", "-n", "2", "-t", "3", user="mhalice")
    wait_state(arc, job, ("RUNNING",))
    during = account(arc, "proj-a")
    assert during["reserved"] == before["reserved"] + 3 * 60 * 2
    assert during["balance"] == before["balance"] - 360
    wait_state(arc, job, ("COMPLETED",))
    time.sleep(0.2)
    after = account(arc, "proj-a")
    rec = arc.acct(job)
    charge = cpu_time_raw(rec["start_time"], rec["end_time"], rec["alloc_cpus"])
    assert rec["alloc_cpus"] == 2 and charge >= 4
    assert after["reserved"] == before["reserved"]
    assert after["amount"] == before["amount"] - charge
    lines = admin(arc, "list", "proj-a")
    assert f"arc job {job} run 0: " in lines


def test_ledger_agrees_with_sacct(arc):
    jobs = [arc.submit("#!/bin/bash\nsleep 1\n", "-n", "3", "-t", "2", user="mhalice"),
            arc.submit("#!/bin/bash\nexit 3\n", user="mhalice"),
            arc.submit("#!/bin/bash\nsleep 2\n", "-N", "2", "-n", "2", user="mhalice")]
    cancelled = arc.submit("#!/bin/bash\nsleep 60\n", user="mhalice")
    wait_state(arc, cancelled, ("RUNNING",))
    time.sleep(1.2)
    r = arc.run(["scancel", str(cancelled)], user="mhalice")
    assert r.returncode == 0, r.stderr
    for j in [*jobs, cancelled]:
        arc.wait(j)
    time.sleep(0.3)
    r = arc.run(["sacct", "-a", "-X", "-n", "-P", "-A", "proj-a", "-S", "2020-01-01", "-o", "JobID,QOS,CPUTimeRAW"],
                user="mhalice")
    assert r.returncode == 0, r.stderr
    rows = [line.split("|") for line in r.stdout.split()]
    assert {int(j) for j, _, _ in rows} >= {*jobs, cancelled}
    totals = {"proj-a": 0, "proj-a-priority": 0}
    for _, qos, raw in rows:
        totals["proj-a-priority" if qos == "priority" else "proj-a"] += int(raw)
    assert totals["proj-a"] > 0
    for name, total in totals.items():
        assert account(arc, name)["charged"] == total, name


def test_mybalance_shows_the_users_projects_in_arcs_format(arc):
    r = arc.run(["mybalance"], user="mhbob")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    a, b = account(arc, "proj-a"), account(arc, "proj-b")
    total = a["balance"] + b["balance"]
    assert lines[0] == "Please wait: Calculating balance ..."
    assert lines[1] == "Your are a member on the following project(s): proj-b proj-a"
    assert lines[2] == f"and your total balance is: {total} credits (~{int(total / 3600)} hours)"
    assert lines[3] == "Detailed account balance:"
    assert lines[4].split() == ["Id", "Name", "Amount", "Reserved", "Balance", "CreditLimit", "Available"]
    rows = {ln.split()[1]: ln.split() for ln in lines[5:]}
    assert set(rows) == {"proj-a", "proj-b"}  # unused priority accounts are not shown
    assert rows["proj-b"] == [str(b["id"]), "proj-b", str(b["amount"]), str(b["reserved"]), str(b["balance"]), "0",
                              str(b["balance"])]


def test_drained_project_holds_its_next_job_until_a_top_up_and_release(arc):
    b = account(arc, "proj-b")
    if b["balance"]:
        admin(arc, "add", "proj-b", str(-b["balance"] / 3600), "--note", "drain for the test")
    assert account(arc, "proj-b")["balance"] == 0
    job = arc.submit("#!/bin/bash\necho ran\n", "-A", "proj-b", "-t", "2", user="mhbob")
    deadline = time.time() + 10
    while reason(arc, job) != "JobHeldUser" and time.time() < deadline:
        time.sleep(0.1)
    assert arc.job(job, ("state", "reason", "hold")) == {"state": "PENDING", "reason": "JobHeldUser", "hold": "user"}
    r = arc.run(["squeue", "-h", "-j", str(job), "-o", "%T %r"], user="mhbob")
    assert r.stdout.split() == ["PENDING", "JobHeldUser"]
    # releasing without credit: held again at the next pass
    r = arc.run(["scontrol", "release", str(job)], user="mhbob")
    assert r.returncode == 0, r.stderr
    time.sleep(1.5)
    assert arc.job(job, ("state", "reason")) == {"state": "PENDING", "reason": "JobHeldUser"}
    out = admin(arc, "add", "proj-b", "1")
    assert "Added 1 core-hours (3600 credits) to proj-b: balance now 3600 credits (~1 hours)" in out
    time.sleep(1.5)
    assert reason(arc, job) == "JobHeldUser"  # a top-up alone does not release a held job
    r = arc.run(["scontrol", "release", str(job)], user="mhbob")
    assert r.returncode == 0, r.stderr
    assert arc.wait(job)["state"] == "COMPLETED"


def test_priority_qos_is_charged_to_the_priority_account(arc):
    a0 = account(arc, "proj-a")
    job = arc.submit("#!/bin/bash\nsleep 1\n", "--qos=priority", "-t", "1", user="mhalice")
    deadline = time.time() + 10
    while reason(arc, job) != "JobHeldUser" and time.time() < deadline:
        time.sleep(0.1)
    assert reason(arc, job) == "JobHeldUser"  # the priority account starts empty
    admin(arc, "add", "proj-a-priority", "0.1")
    r = arc.run(["scontrol", "release", str(job)], user="mhalice")
    assert r.returncode == 0, r.stderr
    assert arc.wait(job)["state"] == "COMPLETED"
    time.sleep(0.2)
    rec = arc.acct(job)
    charge = cpu_time_raw(rec["start_time"], rec["end_time"], rec["alloc_cpus"])
    p = account(arc, "proj-a-priority")
    assert p["amount"] == 360 - charge and p["charged"] == charge
    assert account(arc, "proj-a")["amount"] == a0["amount"]
    r = arc.run(["mybalance"], user="mhalice")
    assert "proj-a-priority" in r.stdout  # shown once it holds credit


def test_reservation_survives_a_controller_restart(arc):
    before = account(arc, "proj-a")
    job = arc.submit("#!/bin/bash\nsleep 4\n", "-t", "2", user="mhalice")
    wait_state(arc, job, ("RUNNING",))
    arc.cluster.restart("controller")
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            arc.cluster.call("ping")
            break
        except Exception:
            time.sleep(0.1)
    assert account(arc, "proj-a")["reserved"] == before["reserved"] + 120
    arc.wait(job)
    time.sleep(0.3)
    rec = arc.acct(job)
    after = account(arc, "proj-a")
    assert after["reserved"] == before["reserved"]
    assert after["amount"] == before["amount"] - cpu_time_raw(rec["start_time"], rec["end_time"], rec["alloc_cpus"])


def test_only_root_may_add_credits(arc):
    r = arc.run(["/usr/bin/python3", "-m", "orchestrator.services.credits_cli", "add", "proj-a", "100"],
                user="mhalice", env={"PYTHONPATH": str(REPO)})
    assert r.returncode == 1
    assert r.stderr.strip() == "minihpc credits: error: Access/permission denied"
    r = arc.run([sys.executable, "-m", "orchestrator.services.credits_cli", "add", "nope", "1"],
                env={"PYTHONPATH": str(REPO)})
    assert r.returncode == 1 and "No such credit account: 'nope'" in r.stderr


def test_array_tasks_each_reserve_and_the_rest_are_held_when_the_project_cannot_cover_them(arc):
    a = account(arc, "proj-a")
    assert a["reserved"] == 0
    minutes = (a["balance"] - 60) // 120  # two tasks fit the balance (even after two short runs), a third does not
    assert 3 * minutes * 60 > a["balance"]
    array = arc.submit("#!/bin/bash\nsleep 3\n", "-a", "0-3", "-t", str(minutes), user="mhalice")
    deadline = time.time() + 10
    while reason(arc, array) != "JobHeldUser" and time.time() < deadline:
        time.sleep(0.1)
    r = arc.run(["squeue", "-h", "-r", "-j", str(array), "-o", "%i %T %r"], user="mhalice")
    rows = sorted(r.stdout.split("\n")[:-1])
    assert [row.split()[1:] for row in rows] == [["RUNNING", "None"], ["RUNNING", "None"],
                                                 ["PENDING", "JobHeldUser"], ["PENDING", "JobHeldUser"]], r.stdout
    during = account(arc, "proj-a")
    assert during["reserved"] == 2 * minutes * 60 and during["balance"] >= 0  # never overdrawn
    for job_id in (f"{array}_0", f"{array}_1"):
        arc.wait(job_id)
    time.sleep(0.3)
    assert account(arc, "proj-a")["reserved"] == 0
    r = arc.run(["scontrol", "release", f"{array}_[2-3]"], user="mhalice")  # credit is back: release the rest
    assert r.returncode == 0, r.stderr
    for job_id in (f"{array}_2", f"{array}_3"):
        assert arc.wait(job_id)["state"] == "COMPLETED"


def test_time_limit_update_of_a_running_job_moves_its_reservation(arc):
    before = account(arc, "proj-a")
    job = arc.submit("#!/bin/bash\nsleep 4\n", "-n", "2", "-t", "5", user="mhalice")
    wait_state(arc, job, ("RUNNING",))
    assert account(arc, "proj-a")["reserved"] == before["reserved"] + 600
    r = arc.run(["scontrol", "update", f"JobId={job}", "TimeLimit=2"], user="mhalice")
    assert r.returncode == 0, r.stderr
    assert account(arc, "proj-a")["reserved"] == before["reserved"] + 240
    r = arc.run(["scontrol", "update", f"JobId={job}", "TimeLimit=10"], user="mhalice")
    assert r.returncode == 1  # only root may raise it
    assert account(arc, "proj-a")["reserved"] == before["reserved"] + 240
    r = arc.run(["scontrol", "update", f"JobId={job}", "TimeLimit+=1"])
    assert r.returncode == 0, r.stderr
    assert account(arc, "proj-a")["reserved"] == before["reserved"] + 360
    r = arc.run(["scontrol", "update", f"JobId={job}", "Account=proj-b"], user="mhalice")
    assert r.returncode == 1 and "Job is no longer pending execution" in r.stderr
    arc.wait(job)
    time.sleep(0.3)
    assert account(arc, "proj-a")["reserved"] == before["reserved"]
