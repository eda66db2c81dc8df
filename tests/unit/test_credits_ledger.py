"""Credits without daemons: ledger arithmetic, reservations, holds, the priority account, mybalance's format."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cluster.config import Config, parse
from orchestrator.commands.mybalance import format_balance
from orchestrator.scheduler.controller import Controller
from orchestrator.scheduler.job import Job
from orchestrator.scheduler.server import Request
from orchestrator.scheduler.store import Store
from orchestrator.services import credits as credits_mod
from orchestrator.services.credits import HOLD_REASON, WAIT_REASON, CreditsPlugin, reservation_for
from orchestrator.services.ledger import Ledger
from orchestrator.slurm.accounting import cpu_time_raw, elapsed_seconds

pytestmark = pytest.mark.unit

ARC_SAMPLE = """Your are a member on the following project(s): dept-proj
and your total balance is: 999871360 credits (~277742 hours)
Detailed account balance:
Id  Name      Amount   Reserved  Balance    CreditLimit  Available
51  dept-proj 999871360  0       999871360  0            999871360
"""


def config(credits_a: float = 1.0, clusters: tuple[str, ...] = ("c1",)) -> Config:
    return parse({
        "apiVersion": "minihpc/v1", "kind": "Cluster", "site": {"mem_per_cpu": 100},
        "projects": [{"name": "proj-a", "gid": 30001, "credits": credits_a},
                     {"name": "proj-b", "gid": 30002, "credits": 10}],
        "users": [{"name": "alice", "uid": 31001, "projects": ["proj-a", "proj-b"]}],
        "clusters": [{"name": name, "login": {"ssh_port": 2222 + i},
                      "nodes": [{"names": f"{name}n[1-2]", "cpus": 4, "memory": "2G"}],
                      "partitions": [{"name": "short", "default": True, "default_time": "1:00:00",
                                      "max_time": "12:00:00"},
                                     {"name": "long", "max_time": "UNLIMITED"}]}
                     for i, name in enumerate(clusters)],
    })


def controller(tmp_path: Path, cfg: Config, cluster: str = "c1") -> Controller:
    return Controller(cfg, cfg.cluster(cluster), tmp_path / cluster, ("127.0.0.1", 0))


_ids = [0]


def job(**kw: Any) -> Job:
    _ids[0] += 1
    base: dict[str, Any] = dict(job_id=_ids[0], cluster="c1", name="j", uid=31001, gid=30001, user="alice",
                                group="proj-a", account="proj-a", partition="short", time_limit=10, num_tasks=1)
    base.update(kw)
    return Job(**base)


def run(plugin: CreditsPlugin, j: Job, cpus: int, start: float, end: float | None = None) -> None:
    j.state = "RUNNING"
    j.start_time = start
    j.alloc_cpus = cpus
    j.cpus_per_node = {f"{j.cluster}n1": cpus}
    plugin.on_start(j)
    if end is not None:
        j.end_time = end
        j.state = "COMPLETED"
        plugin.on_end(j)


def test_accounting_arithmetic_is_whole_seconds_times_cpus():
    assert elapsed_seconds(100.9, 161.2) == 61  # time_t arithmetic: 161 - 100
    assert cpu_time_raw(100.9, 161.2, 4) == 244
    assert elapsed_seconds(0, 50) == 0
    assert elapsed_seconds(100, 0, now=130.5) == 30


def test_seed_is_idempotent_and_creates_priority_accounts(tmp_path):
    store = Store(tmp_path / "s.db")
    ledger = Ledger(store)
    assert ledger.seed([("p", 7200)]) == ["p", "p-priority"]
    ledger.deposit("p", 100)
    assert ledger.seed([("p", 7200)]) == []
    ledger2 = Ledger(store)  # a restarted controller
    assert ledger2.get("p").amount == 7300
    assert ledger2.get("p-priority").amount == 0
    assert ledger2.get("p").id < ledger2.get("p-priority").id


def test_reservation_then_charge_of_elapsed_times_cpus(tmp_path):
    ctl = controller(tmp_path, config(credits_a=1.0))  # 3600 credits
    plugin = CreditsPlugin(ctl)
    assert plugin.ledger is not None
    acct = plugin.ledger.get("proj-a")
    assert (acct.amount, acct.reserved) == (3600, 0)
    j = job(time_limit=5)  # 5 min x 2 cpus = 600 credits reserved
    run(plugin, j, cpus=2, start=1000.4)
    assert (acct.amount, acct.reserved, acct.balance) == (3600, 600, 3000)
    j.end_time = 1061.0  # elapsed 61 s (time_t arithmetic) x 2 cpus
    j.state = "COMPLETED"
    plugin.on_end(j)
    assert (acct.amount, acct.reserved) == (3600 - 122, 0)
    plugin.on_end(j)  # a resent job end is charged once
    assert acct.amount == 3600 - 122
    assert plugin.ledger.charged("proj-a") == 122
    entries = plugin.ledger.entries("proj-a")
    assert [e["kind"] for e in entries] == ["seed", "charge"]
    assert entries[1]["amount"] == -122 and entries[1]["job_id"] == j.job_id
    # the totals survive a restart (recomputed from the tables)
    again = Ledger(ctl.store).get("proj-a")
    assert (again.amount, again.reserved) == (3478, 0)


def test_requeued_run_is_charged_and_the_next_run_reserves_again(tmp_path):
    ctl = controller(tmp_path, config(credits_a=1.0))
    plugin = CreditsPlugin(ctl)
    acct = plugin.ledger.get("proj-a")  # type: ignore[union-attr]
    j = job(time_limit=2)
    run(plugin, j, cpus=1, start=5000.0, end=5030.0)  # first run: 30 s, requeued
    j.restart_count += 1
    run(plugin, j, cpus=1, start=5040.0)
    assert (acct.amount, acct.reserved) == (3570, 120)
    j.end_time = 5050.0
    plugin.on_end(j)
    assert (acct.amount, acct.reserved) == (3560, 0)


def test_short_project_is_held_and_release_rechecks(tmp_path):
    ctl = controller(tmp_path, config(credits_a=1.0))  # 3600 credits: 60 core-minutes
    plugin = CreditsPlugin(ctl)
    big = job(time_limit=61)  # 61 core-minutes > 60
    assert plugin.eligibility(big) == HOLD_REASON
    assert big.hold == "user" and big.priority == 0
    big.hold = ""  # scontrol release, still short: held again
    assert plugin.eligibility(big) == HOLD_REASON
    plugin.ledger.deposit("proj-a", 3600)  # type: ignore[union-attr]
    big.hold = ""
    assert plugin.eligibility(big) is None


def test_other_jobs_reservations_count_against_the_balance(tmp_path):
    ctl = controller(tmp_path, config(credits_a=1.0))
    plugin = CreditsPlugin(ctl)
    first = job(time_limit=40)
    run(plugin, first, cpus=1, start=100.0)  # reserves 2400 of 3600
    j = job(time_limit=30)  # needs 1800: the amount covers it, the balance (mybalance's Available) does not
    assert plugin.eligibility(j) == HOLD_REASON
    assert j.hold == "user"
    first.end_time, first.state = 400.0, "COMPLETED"
    plugin.on_end(first)  # charged 300; its reservation is released
    j.hold = ""  # scontrol release
    assert plugin.eligibility(j) is None


def test_one_pass_does_not_promise_the_same_credit_twice(tmp_path):
    ctl = controller(tmp_path, config(credits_a=1.0))
    plugin = CreditsPlugin(ctl)
    a, b = job(time_limit=40), job(time_limit=40)
    assert plugin.eligibility(a) is None
    assert plugin.eligibility(b) == WAIT_REASON  # a's tentative reservation counts within the pass
    plugin.end_pass()
    assert plugin.eligibility(b) is None


def test_priority_qos_charges_the_priority_account(tmp_path):
    ctl = controller(tmp_path, config(credits_a=1.0))
    plugin = CreditsPlugin(ctl)
    j = job(qos="priority", time_limit=1)
    assert plugin.eligibility(j) == HOLD_REASON  # the priority account starts empty
    plugin.ledger.deposit("proj-a-priority", 600)  # type: ignore[union-attr]
    j.hold = ""
    assert plugin.eligibility(j) is None
    run(plugin, j, cpus=1, start=10.0, end=40.0)
    assert plugin.ledger.get("proj-a-priority").amount == 570  # type: ignore[union-attr]
    assert plugin.ledger.get("proj-a").amount == 3600  # type: ignore[union-attr]


def test_unknown_accounts_are_neither_limited_nor_charged(tmp_path):
    ctl = controller(tmp_path, config())
    plugin = CreditsPlugin(ctl)
    j = job(account="someone", time_limit=100000)
    assert plugin.eligibility(j) is None
    run(plugin, j, cpus=4, start=1.0, end=1000.0)
    assert plugin.ledger.reservations() == []  # type: ignore[union-attr]


def test_exclusive_and_unlimited_jobs_reserve_enough():
    j = job(time_limit=-1, num_tasks=1, exclusive=True, num_nodes=2)
    cpus = credits_mod.estimated_cpus(j, [4, 4])
    assert cpus == 8
    assert reservation_for(j, cpus) == credits_mod.UNLIMITED_RESERVE_MINUTES * 60 * 8


def test_restart_reconciles_reservations_with_running_jobs(tmp_path):
    cfg = config(credits_a=1.0)
    ctl = controller(tmp_path, cfg)
    plugin = CreditsPlugin(ctl)
    gone = job(time_limit=10)
    run(plugin, gone, cpus=1, start=10.0)  # its controller "crashed": no end will come
    ctl.store.close()
    ctl2 = controller(tmp_path, cfg)
    live = job(time_limit=5, state="RUNNING", start_time=20.0, alloc_cpus=2)
    ctl2.jobs[live.job_id] = live
    plugin2 = CreditsPlugin(ctl2)
    res = plugin2.ledger.reservations()  # type: ignore[union-attr]
    assert [(r["job_id"], r["amount"]) for r in res] == [(live.job_id, 600)]
    assert plugin2.ledger.get("proj-a").reserved == 600  # type: ignore[union-attr]


def _req(op: str, body: dict[str, Any], uid: int = 0) -> Request:
    return Request(op, uid, 0, body, "test", None, None)  # type: ignore[arg-type]


def test_admin_add_and_list(tmp_path):
    ctl = controller(tmp_path, config(credits_a=1.0))
    plugin = CreditsPlugin(ctl)
    reply = asyncio.run(plugin.op_credits_admin(_req("credits_admin", {"action": "add", "account": "proj-a",
                                                                        "credits": 7200, "note": "grant"})))
    assert reply["account"]["amount"] == 10800
    listing = asyncio.run(plugin.op_credits_admin(_req("credits_admin", {"action": "list", "account": "proj-a"})))
    assert [e["kind"] for e in listing["entries"]] == ["seed", "topup"]
    assert listing["entries"][1]["note"] == "grant"
    from orchestrator.scheduler.errors import SlurmError

    with pytest.raises(SlurmError, match="No such credit account"):
        asyncio.run(plugin.op_credits_admin(_req("credits_admin", {"action": "add", "account": "nope",
                                                                    "credits": 1})))
    with pytest.raises(SlurmError):
        asyncio.run(plugin.op_credits_admin(_req("credits_admin", {"action": "list"}, uid=31001)))


def test_credits_op_shows_the_users_projects(tmp_path):
    ctl = controller(tmp_path, config(credits_a=1.0))
    plugin = CreditsPlugin(ctl)
    reply = asyncio.run(plugin.op_credits(_req("credits", {"user": "alice"})))
    assert reply["projects"] == ["proj-a", "proj-b"]
    assert [a["name"] for a in reply["accounts"]] == ["proj-a", "proj-b"]  # unused priority accounts hidden
    plugin.ledger.deposit("proj-a-priority", 5)  # type: ignore[union-attr]
    reply = asyncio.run(plugin.op_credits(_req("credits", {"user": "alice"})))
    assert [a["name"] for a in reply["accounts"]] == ["proj-a", "proj-a-priority", "proj-b"]
    text = format_balance(reply)
    assert "and your total balance is: 39605 credits (~11 hours)" in text


def test_mybalance_reproduces_arcs_sample_exactly():
    reply = {"projects": ["dept-proj"], "accounts": [
        {"id": 51, "name": "dept-proj", "amount": 999871360, "reserved": 0, "balance": 999871360,
         "credit_limit": 0, "available": 999871360}]}
    assert format_balance(reply) == ARC_SAMPLE


def test_mybalance_columns_stay_aligned_for_other_widths():
    reply = {"projects": ["chem-proj"], "accounts": [
        {"id": 1, "name": "chem-proj", "amount": 0, "reserved": 123456789, "balance": -123456789,
         "credit_limit": 0, "available": -123456789},
        {"id": 2, "name": "chem-proj-priority", "amount": 3600, "reserved": 0, "balance": 3600,
         "credit_limit": 0, "available": 3600}]}
    lines = format_balance(reply).splitlines()
    assert lines[1] == "and your total balance is: -123453189 credits (~-34292 hours)"
    rows = lines[4:]
    for col in ("123456789", "-123456789"):
        assert col in rows[0]
    # every value starts where the next one in the same column starts, and cells never touch
    starts = [[i for i in range(len(r)) if r[i] != " " and (i == 0 or r[i - 1] == " ")] for r in rows]
    assert starts[0] == starts[1]
    assert len(starts[0]) == 7


class _HomeClient:
    """Stands in for the wire: calls the home controller's op directly, as root."""

    def __init__(self, home: CreditsPlugin) -> None:
        self.home = home
        self.calls = 0
        self.down = False

    def __call__(self, address: Any = None, timeout: float = 0) -> _HomeClient:
        return self

    def call(self, op: str, body: dict[str, Any]) -> dict[str, Any]:
        if self.down:
            from orchestrator.scheduler.protocol import RpcError

            raise RpcError("SLURM_COMMUNICATIONS_CONNECTION_ERROR", "down")
        self.calls += 1
        return asyncio.run(getattr(self.home, f"op_{op}")(_req(op, body)))


def test_second_cluster_uses_the_home_ledger_through_its_outbox(tmp_path, monkeypatch):
    monkeypatch.setattr(credits_mod, "START_SENDER", False)
    cfg = config(credits_a=1.0, clusters=("c1", "c2"))
    home = CreditsPlugin(controller(tmp_path, cfg, "c1"))
    fake = _HomeClient(home)
    import orchestrator.scheduler.client as client_mod

    monkeypatch.setattr(client_mod, "Client", fake)
    remote_ctl = controller(tmp_path, cfg, "c2")
    remote = CreditsPlugin(remote_ctl)
    assert remote.ledger is None
    book = remote.book
    db = book.connect()  # type: ignore[attr-defined]
    assert remote.eligibility(job(cluster="c2", time_limit=100)) is None  # never synced: not enforced yet
    book.deliver(db)  # type: ignore[attr-defined]
    j = job(cluster="c2", time_limit=10)
    assert remote.eligibility(j) is None
    remote.end_pass()
    run(remote, j, cpus=3, start=100.0)  # reserves 1800 at the home (after delivery)
    assert book.state("proj-a") == (3600, 1800)  # its own event counts at once
    fake.down = True
    j.end_time = 160.0
    remote.on_end(j)  # charged 180 while the home is away: kept in the outbox
    with pytest.raises(Exception, match="down"):
        book.deliver(db)  # type: ignore[attr-defined]
    assert book.state("proj-a") == (3420, 0)
    assert home.ledger.get("proj-a").amount == 3600  # type: ignore[union-attr]
    fake.down = False
    book.deliver(db)  # type: ignore[attr-defined]
    acct = home.ledger.get("proj-a")  # type: ignore[union-attr]
    assert (acct.amount, acct.reserved) == (3420, 0)
    assert book.state("proj-a") == (3420, 0)
    book.deliver(db)  # type: ignore[attr-defined]  # nothing is applied twice
    assert home.ledger.get("proj-a").amount == 3420  # type: ignore[union-attr]
    notes = [e["note"] for e in home.ledger.entries("proj-a") if e["kind"] == "charge"]  # type: ignore[union-attr]
    assert notes and notes[0].startswith(f"c2 job {j.job_id} ")
    # mybalance on the second cluster asks the home
    async def forward(host: str, port: int, op: str, body: dict[str, Any], timeout: float = 0) -> dict[str, Any]:
        assert host == "c1-controller"
        return await home.op_credits(_req(op, body))

    monkeypatch.setattr(credits_mod, "call_async", forward)
    reply = asyncio.run(remote.op_credits(_req("credits", {"user": "alice"})))
    assert reply["accounts"][0]["amount"] == 3420


def _plugged(tmp_path: Path, credits_a: float = 1.0) -> tuple[Controller, CreditsPlugin]:
    """A controller with the credits plugin and its two 4-CPU nodes up (no node daemons: launches do nothing)."""
    ctl = controller(tmp_path, config(credits_a=credits_a))
    plugin = CreditsPlugin(ctl)
    ctl.add_plugin(plugin)
    for node in ctl.nodes.values():
        node.registered = node.responding = True

    async def no_launch(j: Job, tasks: dict[str, int]) -> None:
        return None

    ctl._launch = no_launch  # type: ignore[method-assign]
    return ctl, plugin


def _one_pass(ctl: Controller) -> None:
    """One real scheduling pass of the controller, then what the event loop does after it."""
    async def go() -> None:
        ctl.loop = asyncio.get_running_loop()
        ctl._run_pass()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        ctl.loop = None  # later ops (scontrol update) must not schedule on this closed loop

    asyncio.run(go())


def test_each_array_task_started_in_one_pass_reserves_and_the_rest_are_held(tmp_path):
    ctl, plugin = _plugged(tmp_path)  # proj-a: 3600 credits; 8 free CPUs
    meta = job(cluster="c1", time_limit=10, array_task_str="0-9")  # 10 tasks x 1 CPU x 10 min = 600 each
    meta.array_job_id = meta.job_id
    meta.priority = 100
    ctl.store.insert_job(meta, "#!/bin/bash\n", {}, [])
    ctl.jobs[meta.job_id] = meta
    _one_pass(ctl)
    running = [j for j in ctl.jobs.values() if j.state == "RUNNING"]
    acct = plugin.ledger.get("proj-a")  # type: ignore[union-attr]
    assert len(running) == 6  # 6 x 600 = 3600: the seventh task would overdraw the project
    assert (acct.amount, acct.reserved, acct.balance) == (3600, 3600, 0)
    assert meta.state == "PENDING" and meta.array_task_str == "6-9"
    _one_pass(ctl)  # the next pass sees the real reservations: the rest of the array is held, as on ARC
    assert (meta.state, meta.reason, meta.hold) == ("PENDING", HOLD_REASON, "user")
    assert len([j for j in ctl.jobs.values() if j.state == "RUNNING"]) == 6
    assert acct.reserved == 3600


def test_a_job_the_balance_cannot_cover_is_held_even_when_the_amount_could(tmp_path):
    ctl, plugin = _plugged(tmp_path)
    first = job(cluster="c1", time_limit=40, priority=100)  # 2400 of 3600
    second = job(cluster="c1", time_limit=30, priority=90)  # 1800 > the 1200 left
    for j in (first, second):
        ctl.store.insert_job(j, "#!/bin/bash\n", {}, [])
        ctl.jobs[j.job_id] = j
    _one_pass(ctl)
    assert first.state == "RUNNING" and second.state == "PENDING"
    _one_pass(ctl)
    assert (second.reason, second.hold) == (HOLD_REASON, "user")
    assert plugin.ledger.get("proj-a").reserved == 2400  # type: ignore[union-attr]


def test_time_limit_update_of_a_running_job_changes_its_reservation(tmp_path):
    ctl, plugin = _plugged(tmp_path)
    j = job(cluster="c1", time_limit=10, num_tasks=2, priority=100)  # 2 CPUs x 10 min = 1200
    ctl.store.insert_job(j, "#!/bin/bash\n", {}, [])
    ctl.jobs[j.job_id] = j
    _one_pass(ctl)
    acct = plugin.ledger.get("proj-a")  # type: ignore[union-attr]
    assert j.state == "RUNNING" and acct.reserved == 1200
    for uid, limit, reserved in ((31001, "5", 600), (0, "20", 2400), (0, "-5", 1800), (31001, "-1", 1680)):
        reply = asyncio.run(ctl.op_update_job(_req("update_job", {"job_ids": [str(j.job_id)],
                                                                   "set": {"TimeLimit": limit}}, uid=uid)))
        assert reply["results"][0]["error"] is None, reply
        assert acct.reserved == reserved, (limit, acct.reserved)
    assert [(r["job_id"], r["amount"]) for r in plugin.ledger.reservations()] == [(j.job_id, 1680)]  # type: ignore[union-attr]
    again = Ledger(ctl.store).get("proj-a")  # the store agrees (a restart keeps the new reservation)
    assert again.reserved == 1680
    j.end_time = j.start_time + 60
    j.state = "COMPLETED"
    plugin.on_end(j)
    assert (acct.reserved, acct.amount) == (0, 3600 - 120)


def test_a_job_cannot_be_moved_to_another_project_or_qos_to_escape_its_charge(tmp_path):
    ctl, plugin = _plugged(tmp_path)
    running = job(cluster="c1", time_limit=10, priority=100)
    pending = job(cluster="c1", time_limit=10, priority=90, hold="user")
    for j in (running, pending):
        ctl.store.insert_job(j, "#!/bin/bash\n", {}, [])
        ctl.jobs[j.job_id] = j
    _one_pass(ctl)
    assert running.state == "RUNNING"

    def update(j: Job, **changes: str) -> dict[str, Any]:
        reply = asyncio.run(ctl.op_update_job(_req("update_job", {"job_ids": [str(j.job_id)], "set": changes},
                                                   uid=31001)))
        result: dict[str, Any] = reply["results"][0]
        return result

    assert update(running, Account="proj-b")["error"] == "ESLURM_JOB_NOT_PENDING"
    assert update(running, QOS="normal")["error"] == "ESLURM_JOB_NOT_PENDING"
    assert update(pending, Account="someone-elses")["error"] == "ESLURM_INVALID_ACCOUNT"  # not charged at all
    assert update(pending, QOS="free")["error"] == "ESLURM_INVALID_QOS"
    assert (pending.account, pending.qos) == ("proj-a", "normal")
    assert update(pending, Account="proj-b", QOS="priority")["error"] is None  # alice is in proj-b
    assert (pending.account, pending.qos) == ("proj-b", "priority")
    assert running.account == "proj-a"
    assert plugin.ledger.reservations()[0]["account"] == "proj-a"  # type: ignore[union-attr]


def test_second_cluster_sends_an_updated_reservation_to_the_home(tmp_path, monkeypatch):
    monkeypatch.setattr(credits_mod, "START_SENDER", False)
    cfg = config(credits_a=1.0, clusters=("c1", "c2"))
    home = CreditsPlugin(controller(tmp_path, cfg, "c1"))
    import orchestrator.scheduler.client as client_mod

    monkeypatch.setattr(client_mod, "Client", _HomeClient(home))
    remote = CreditsPlugin(controller(tmp_path, cfg, "c2"))
    book = remote.book
    db = book.connect()  # type: ignore[attr-defined]
    book.deliver(db)  # type: ignore[attr-defined]
    j = job(cluster="c2", time_limit=10)
    run(remote, j, cpus=2, start=100.0)
    assert book.state("proj-a") == (3600, 1200)
    j.time_limit = 4
    remote.on_update(j)
    assert book.state("proj-a") == (3600, 480)  # before delivery
    book.deliver(db)  # type: ignore[attr-defined]
    assert home.ledger.get("proj-a").reserved == 480  # type: ignore[union-attr]
    assert book.state("proj-a") == (3600, 480)


class _NoCalls:
    def call(self, op: str, body: dict[str, Any]) -> dict[str, Any]:
        pytest.fail("must not reach the controller")


@pytest.mark.parametrize("hours", ["nan", "inf", "1e300", "-1000000000000000000", "ten", "1,000"])
def test_credits_add_refuses_what_is_not_a_number_of_core_hours(hours, capsys, monkeypatch):
    import orchestrator.scheduler.client as client_mod
    from orchestrator.services import credits_cli

    monkeypatch.setattr(client_mod, "Client", lambda *a, **k: _NoCalls())
    assert credits_cli.main(["add", "proj-a", hours]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"minihpc credits: error: {hours!r} is not a number of core-hours (at most ")


def test_admin_add_refuses_amounts_the_ledger_cannot_hold(tmp_path):
    from orchestrator.scheduler.errors import SlurmError

    plugin = CreditsPlugin(controller(tmp_path, config()))
    for bad in (2**63, "x", None):
        with pytest.raises(SlurmError, match="whole number"):
            asyncio.run(plugin.op_credits_admin(_req("credits_admin", {"action": "add", "account": "proj-a",
                                                                        "credits": bad})))
    assert plugin.ledger.get("proj-a").amount == 3600  # type: ignore[union-attr]
