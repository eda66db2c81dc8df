"""Step layout and srun's arithmetic, without daemons."""

from __future__ import annotations

import pytest

from orchestrator.scheduler.errors import SlurmError
from orchestrator.scheduler.steps import StepRequest, combine_status, plan_step, step_state

pytestmark = pytest.mark.unit

NODES = ["c1", "c2"]
CPUS = {"c1": 4, "c2": 4}


def test_block_layout_over_two_nodes():
    plan = plan_step(NODES, CPUS, {}, StepRequest(ntasks=3, ntasks_set=True, min_nodes=2, nodes_set=True))
    assert plan.nodes == ["c1", "c2"]
    assert plan.tasks == {"c1": [0, 1], "c2": [2]}
    assert plan.tasks_per_node == "2,1"
    assert plan.cpus == {"c1": 4, "c2": 4}  # without --exact a step has the whole allocation


def test_cyclic_layout_and_ntasks_per_node():
    plan = plan_step(NODES, CPUS, {}, StepRequest(ntasks=4, min_nodes=2, nodes_set=True, distribution="cyclic"))
    assert plan.tasks == {"c1": [0, 2], "c2": [1, 3]}
    plan = plan_step(NODES, CPUS, {}, StepRequest(ntasks=2, min_nodes=2, nodes_set=True, ntasks_per_node=1))
    assert plan.tasks == {"c1": [0], "c2": [1]} and plan.tasks_per_node == "1(x2)"


def test_without_a_node_count_tasks_are_packed():
    plan = plan_step(NODES, CPUS, {}, StepRequest(ntasks=4, ntasks_set=True))
    assert plan.nodes == ["c1"] and plan.tasks == {"c1": [0, 1, 2, 3]}
    plan = plan_step(NODES, CPUS, {}, StepRequest(ntasks=6, ntasks_set=True))
    assert plan.nodes == ["c1", "c2"] and sum(len(t) for t in plan.tasks.values()) == 6


def test_exact_books_only_what_the_tasks_need():
    plan = plan_step(NODES, CPUS, {}, StepRequest(ntasks=1, exact=True))
    assert plan.cpus == {"c1": 1} and plan.consumed == {"c1": 1}
    plan = plan_step(NODES, CPUS, {"c1": 1}, StepRequest(ntasks=1, cpus_per_task=2, exact=True))
    assert plan.nodes == ["c1"] and plan.consumed == {"c1": 2}


def test_busy_and_impossible_steps():
    with pytest.raises(SlurmError) as exc:
        plan_step(NODES, CPUS, {"c1": 4, "c2": 4}, StepRequest(ntasks=1))
    assert exc.value.code == "ESLURM_NODES_BUSY"
    with pytest.raises(SlurmError) as exc:
        plan_step(["c1"], {"c1": 2}, {}, StepRequest(ntasks=4, ntasks_set=True))
    assert exc.value.code == "ESLURM_TOO_MANY_REQUESTED_CPUS"
    with pytest.raises(SlurmError) as exc:
        plan_step(NODES, CPUS, {}, StepRequest(nodelist=["c9"]))
    assert exc.value.code == "ESLURM_REQUESTED_NODE_CONFIG_UNAVAILABLE"


def test_overlap_and_overcommit():
    plan = plan_step(NODES, CPUS, {"c1": 4, "c2": 4}, StepRequest(ntasks=2, overlap=True))
    assert plan.consumed == {} and plan.ntasks == 2
    plan = plan_step(["c1"], {"c1": 2}, {}, StepRequest(ntasks=8, ntasks_set=True, overcommit=True))
    assert plan.tasks == {"c1": list(range(8))}


def test_nodelist_picks_those_nodes():
    plan = plan_step(NODES, CPUS, {}, StepRequest(ntasks=1, nodelist=["c2"], min_nodes=1, nodes_set=True))
    assert plan.nodes == ["c2"] and plan.tasks == {"c2": [0]}


def test_srun_exit_status_rule():
    assert combine_status((0, 0), 3, 0) == (3, 0)
    assert combine_status((3, 0), 1, 0) == (3, 0)
    assert combine_status((3, 0), 0, 9) == (0, 9)  # a signal beats any exit code
    assert combine_status((0, 15), 5, 0) == (0, 15)
    assert combine_status((0, 9), 0, 15) == (0, 15)


def test_a_step_killed_by_a_signal_is_cancelled():
    # slurmdbd 22.05: `srun sh -c 'kill -9 $$'` is `CANCELLED 0:9`, `exit 3` is `FAILED 3:0`
    assert step_state((0, 9), set()) == "CANCELLED"
    assert step_state((0, 11), set()) == "CANCELLED"
    assert step_state((3, 0), set()) == "FAILED"
    assert step_state((0, 0), set()) == "COMPLETED"
    assert step_state((0, 9), {"OUT_OF_MEMORY"}) == "OUT_OF_MEMORY"


def test_srun_io_modes():
    from orchestrator.commands.srun import _io_mode, _task_list

    assert _io_mode("", 4) == ("all", -1)
    assert _io_mode("all.txt", 4) == ("all", -1)  # Slurm matches the first three letters
    assert _io_mode("none", 4) == ("none", -1)
    assert _io_mode("2", 4) == ("one", 2)
    assert _io_mode("7", 4) == ("file", -1)
    assert _io_mode("out-%t.txt", 4) == ("file", -1)
    assert _task_list([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8"
