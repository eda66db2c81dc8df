"""The scheduling policy against a fake clock: tiers, age, backfill, reasons and resource fit."""

from __future__ import annotations

import pytest

from orchestrator.cluster.config import Gres, NodeSpec, PartitionSpec
from orchestrator.scheduler import policy
from orchestrator.scheduler.job import Job
from orchestrator.scheduler.resources import NodeState, constraint_matches, fit, parse_gres_request
from orchestrator.slurm.timefmt import INFINITE

pytestmark = pytest.mark.unit
NOW = 1_000_000.0


def nodes(n: int = 2, cpus: int = 4, mem: int = 4000, gres: tuple[Gres, ...] = ()) -> dict[str, NodeState]:
    out = {}
    for i in range(1, n + 1):
        spec = NodeSpec(f"n{i}", cpus, mem, gres, ("fast",) if i == 1 else ("slow",))
        out[spec.name] = NodeState(spec, registered=True, responding=True)
    return out


def parts(names: list[str]) -> dict[str, PartitionSpec]:
    return {
        "short": PartitionSpec("short", tuple(names), default=True, max_time=720, priority_tier=2),
        "long": PartitionSpec("long", tuple(names), max_time=INFINITE, priority_tier=1),
        "devel": PartitionSpec("devel", tuple(names[:1]), max_time=10, priority_tier=3),
    }


_next = [0]


def job(**kw) -> Job:
    _next[0] += 1
    base = dict(job_id=_next[0], cluster="c", name="j", uid=1000, gid=1000, user="u", group="g", account="a",
                partition="short", submit_time=NOW - 100 + _next[0], time_limit=60, priority=1000 - _next[0])
    base.update(kw)
    return Job(**base)


def run(pending, running=(), ns=None, now=NOW):
    ns = ns or nodes()
    return policy.schedule(now, list(pending), list(running), ns, parts(sorted(ns)), 100), ns


def test_fifo_within_a_partition_and_reason_for_the_rest():
    a, b, c = job(num_tasks=8), job(num_tasks=4), job(num_tasks=4)
    res, _ = run([a, b, c])
    assert [j.job_id for j, _ in res.starts] == [a.job_id]
    assert b.reason == "Resources"
    assert c.reason == "Priority"


def test_higher_tier_partition_goes_first():
    low = job(partition="long", num_tasks=8)
    high = job(partition="short", num_tasks=8)
    res, _ = run([low, high])
    assert [j.job_id for j, _ in res.starts] == [high.job_id]
    assert low.reason == "Resources"


def test_backfill_only_when_it_does_not_delay_the_top_job():
    ns = nodes()
    blocker = job(num_tasks=4, time_limit=30, state="RUNNING", start_time=NOW)  # on n1 for 30 min
    policy.apply_allocation(blocker, fit(blocker, [ns["n1"]], 100), ns)
    top = job(num_tasks=8, time_limit=60)  # needs both nodes: waits for blocker (30 min)
    short = job(num_tasks=2, time_limit=10)  # fits on n2 now and ends before the reservation
    long_ = job(num_tasks=2, time_limit=120)  # would delay the top job: must wait
    res, _ = run([top, short, long_], running=[blocker], ns=ns)
    started = [j.job_id for j, _ in res.starts]
    assert short.job_id in started
    assert long_.job_id not in started and top.job_id not in started
    assert top.reason == "Resources"
    assert long_.reason == "Priority"


def test_time_and_node_limits_leave_jobs_pending_with_slurm_reasons():
    too_long = job(partition="devel", time_limit=30)
    too_many = job(partition="devel", num_nodes=2, nodes_explicit=True, time_limit=10)
    res, _ = run([too_long, too_many])
    assert not res.starts
    assert too_long.reason == "PartitionTimeLimit"
    assert too_many.reason == "PartitionNodeLimit"


def test_holds_begin_time_and_external_reasons():
    held = job(hold="user")
    admin = job(hold="admin")
    later = job(begin_time=NOW + 60)
    dep = job(dependency="afterok:1")
    res = policy.schedule(NOW, [held, admin, later, dep], [], nodes(), parts(["n1", "n2"]), 100,
                          lambda j: "Dependency" if j.dependency else None)
    assert not res.starts
    assert (held.reason, admin.reason, later.reason, dep.reason) == (
        "JobHeldUser", "JobHeldAdmin", "BeginTime", "Dependency")
    res = policy.schedule(NOW + 61, [later], [], nodes(), parts(["n1", "n2"]), 100)
    assert [j.job_id for j, _ in res.starts] == [later.job_id]


def test_a_dependency_is_asked_before_the_begin_time_and_other_reasons_after_it():
    # slurmctld's job_independent(): a dependent job with a --begin time ahead shows Dependency; credits and
    # the like are only asked once the begin time has come
    both = job(dependency="afterok:1", begin_time=NOW + 60)
    later = job(begin_time=NOW + 60)
    asked: list[int] = []

    def eligibility(j: Job) -> str | None:
        asked.append(j.job_id)
        return "AssocGrpBillingMinutes"

    policy.schedule(NOW, [both, later], [], nodes(), parts(["n1", "n2"]), 100, eligibility,
                    dependency=lambda j: "Dependency" if j.dependency else None)
    assert (both.reason, later.reason, asked) == ("Dependency", "BeginTime", [])


def test_required_node_unavailable():
    ns = nodes()
    ns["n2"].drain = True
    j = job(req_nodes="n2")
    res, _ = run([j], ns=ns)
    assert not res.starts
    assert j.reason == "ReqNodeNotAvail, UnavailableNodes:n2"


def test_excluded_and_constrained_nodes():
    j1 = job(exc_nodes="n1")
    j2 = job(features="slow")
    res, _ = run([j1, j2])
    placed = {j.job_id: a.nodes for j, a in res.starts}
    assert placed == {j1.job_id: ["n2"], j2.job_id: ["n2"]}


def test_fit_packs_tasks_blockwise_and_respects_memory():
    ns = list(nodes(3, cpus=4, mem=1000).values())
    a = fit(job(num_tasks=6), ns, 100)
    assert a is not None and a.tasks == {"n1": 4, "n2": 2}
    b = fit(job(num_nodes=2, nodes_explicit=True, ntasks_per_node=2, num_tasks=4), ns, 100)
    assert b is not None and b.tasks == {"n1": 2, "n2": 2} and b.cpus == {"n1": 2, "n2": 2}
    assert fit(job(num_tasks=1, mem_per_node=2000), ns, 100) is None
    c = fit(job(num_tasks=2, cpus_per_task=2, mem_per_cpu=200), ns, 100)
    assert c is not None and c.cpus == {"n1": 4} and c.mem == {"n1": 800}
    assert fit(job(num_tasks=1, exclusive=True), ns, 100).cpus == {"n1": 4}


def test_gpus_are_distinct_and_gpu_nodes_need_a_gpu_request():
    ns = nodes(1, gres=(Gres("gpu", "v100", 2),))
    plain = job()
    assert fit(plain, list(ns.values()), 100) is None
    g1, g2, g3 = job(gres="gpu:v100:1"), job(gres="gpu:1"), job(gres="gpu:1")
    res, _ = run([g1, g2, g3], ns=ns)
    gpus = [a.gpus["n1"] for _, a in res.starts]
    assert sorted(i for g in gpus for i in g) == [0, 1]
    assert g3.reason == "Resources"
    assert parse_gres_request("gpu:a100:2").type == "a100"
    assert parse_gres_request("gpu:3").per_node == 3
    with pytest.raises(ValueError):
        parse_gres_request("tpu:1")


@pytest.mark.parametrize("expr,feats,ok", [
    ("gpu_sku:V100", ["gpu_sku:V100"], True),
    ("gpu_sku:v100", ["gpu_sku:V100"], True),
    ("a&b", ["a"], False),
    ("a|b", ["b"], True),
    ("[a|b]&c", ["b", "c"], True),
    ("(a|b)&c", ["a"], False),
])
def test_constraints(expr, feats, ok):
    assert constraint_matches(expr, feats) is ok


def test_release_returns_resources():
    ns = nodes()
    j = job(num_tasks=4)
    policy.apply_allocation(j, fit(j, list(ns.values()), 100), ns)
    assert ns["n1"].base_state() == "ALLOCATED"
    policy.release_allocation(j, ns)
    assert ns["n1"].base_state() == "IDLE" and ns["n1"].alloc_mem == 0


def test_a_shadow_node_plans_without_touching_the_node() -> None:
    node = NodeState(NodeSpec("n1", 48, 1000, (), ()))
    node.alloc_cpus, node.jobs, node.gpus_used = 8.0, {1, 2}, {"gpu": {0}}
    s = node.shadow()
    s.alloc_cpus = 0.0
    s.jobs.discard(1)
    s.gpus_used["gpu"].discard(0)
    assert (node.alloc_cpus, node.jobs, node.gpus_used) == (8.0, {1, 2}, {"gpu": {0}})
    assert s.spec is node.spec


def _scenario(seed: int) -> tuple[list[Job], list[Job], dict[str, NodeState]]:
    """Random queues of a few job shapes on partly busy nodes (some drained), from a seed."""
    import random

    rnd = random.Random(seed)
    ns = nodes(4, cpus=8, mem=8000)
    ns["n4"].drain = rnd.random() < 0.3
    shapes = [dict(num_tasks=1), dict(num_tasks=4), dict(num_tasks=2, cpus_per_task=2),
              dict(num_nodes=2, nodes_explicit=True, num_tasks=2), dict(num_tasks=1, mem_per_node=3000),
              dict(num_tasks=1, exc_nodes="n1"), dict(num_tasks=1, features="slow"),
              dict(num_tasks=1, req_nodes="n2"), dict(num_tasks=8, exclusive=True)]
    running = []
    for _ in range(rnd.randint(0, 6)):
        r = job(state="RUNNING", start_time=NOW - rnd.randint(0, 3000), time_limit=rnd.choice([10, 60, 120]),
                **rnd.choice(shapes[:3]))
        alloc = fit(r, [n for n in ns.values() if n.usable], 100)
        if alloc is not None:
            policy.apply_allocation(r, alloc, ns)
            running.append(r)
    pending = [job(time_limit=rnd.choice([5, 30, 60, 600]), partition=rnd.choice(["short", "short", "long"]),
                   **rnd.choice(shapes)) for _ in range(rnd.randint(1, 40))]
    return pending, running, ns


@pytest.mark.parametrize("seed", range(60))
def test_a_pass_decides_as_if_every_job_were_tested_on_its_own(seed, monkeypatch) -> None:
    """Jobs of one shape share their fit and backfill estimate within a pass; the starts and the
    reasons are what testing each job afresh gives."""
    start = _next[0]
    pending, running, ns = _scenario(seed)
    res = policy.schedule(NOW, pending, running, ns, parts(sorted(ns)), 100)
    shared = ([(j.job_id, a) for j, a in res.starts], [(j.job_id, j.reason) for j in pending])

    _next[0] = start
    pending, running, ns = _scenario(seed)
    monkeypatch.setattr(policy, "shape", lambda j: (j.job_id,))  # no two jobs alike: each tested afresh
    res = policy.schedule(NOW, pending, running, ns, parts(sorted(ns)), 100)
    alone = ([(j.job_id, a) for j, a in res.starts], [(j.job_id, j.reason) for j in pending])
    assert shared == alone


def test_a_queue_of_like_jobs_is_fitted_and_estimated_once(monkeypatch) -> None:
    ns = nodes()
    blocker = job(num_tasks=8, state="RUNNING", start_time=NOW)
    policy.apply_allocation(blocker, fit(blocker, list(ns.values()), 100), ns)
    calls = {"fit": 0, "est": 0}
    real_fit, real_est = policy.fit, policy.earliest_start

    def counting_fit(*a, **k):
        calls["fit"] += 1
        return real_fit(*a, **k)

    def counting_est(*a, **k):
        calls["est"] += 1
        return real_est(*a, **k)

    monkeypatch.setattr(policy, "fit", counting_fit)
    monkeypatch.setattr(policy, "earliest_start", counting_est)
    queue = [job(num_tasks=1) for _ in range(50)]
    res, _ = run(queue, running=[blocker], ns=ns)
    assert not res.starts
    assert [j.reason for j in queue] == ["Resources"] + ["Priority"] * 49
    assert calls == {"fit": 3, "est": 1}  # the pass tries once; the estimate tries now, then after the blocker


def test_note_wait_keeps_the_last_reason_besides_turn_and_room() -> None:
    j = job()
    assert j.reason_prev == "None"
    for reason, changed, kept in [("Priority", False, "None"), ("Dependency", True, "Dependency"),
                                  ("Resources", False, "Dependency"), (policy.DOWN_REASON, False, "Dependency"),
                                  ("BeginTime", True, "BeginTime"), ("BeginTime", False, "BeginTime"),
                                  ("ReqNodeNotAvail, UnavailableNodes:n2", True, "ReqNodeNotAvail"),
                                  ("None", False, "ReqNodeNotAvail")]:
        j.reason = reason
        assert policy.note_wait(j) is changed, reason
        assert j.reason_prev == kept, reason


def test_pending_jobs_get_the_start_they_are_expected_at():
    ns = nodes(1)
    runner = job(state="RUNNING", start_time=NOW - 60, time_limit=10)
    alloc = fit(runner, list(ns.values()), 100)
    assert alloc is not None
    policy.apply_allocation(runner, alloc, ns)
    big = job(num_tasks=4)
    later = job(begin_time=NOW + 300)
    policy.schedule(NOW, [big, later], [runner], ns, parts(sorted(ns)), 100)
    assert (big.reason, big.expected_start) == ("Resources", NOW - 60 + 600)  # when the runner's limit is up
    assert (later.reason, later.expected_start) == ("BeginTime", NOW + 300)
    # slurmctld's sched_nodes: where the estimate starts it (squeue %Y); none for a job without an estimate
    assert (big.sched_nodes, later.sched_nodes) == ("n1", "")
    runner.state = "COMPLETED"
    policy.release_allocation(runner, ns)
    policy.schedule(NOW, [big], [], ns, parts(sorted(ns)), 100)
    assert (big.reason, big.sched_nodes) == ("None", "")  # forgotten once it starts
