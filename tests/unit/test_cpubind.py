"""--cpu-bind as srun and slurmstepd with task/affinity read it (forms checked against real Slurm 22.05)."""

from __future__ import annotations

import pytest

from orchestrator.slurm.cpubind import parse, task_cpus, verbose_line

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("value", "env"), [
    ("v,map_cpu:1,0", ("verbose,map_cpu:1,0", "map_cpu:", "1,0", "verbose")),
    ("verbose,mask_cpu:0x2", ("verbose,mask_cpu:2", "mask_cpu:", "2", "verbose")),
    ("map_cpu:0*2,1", ("quiet,map_cpu:0,0,1", "map_cpu:", "0,0,1", "quiet")),
    ("v,rank", ("verbose,rank", "rank", "", "verbose")),
    ("none", ("quiet,none", "none", "", "quiet")),
])
def test_environment_of_the_explicit_forms(value: str, env: tuple[str, str, str, str]) -> None:
    b = parse(value)
    assert b is not None
    got = b.env()
    assert (got["SLURM_CPU_BIND"], got["SLURM_CPU_BIND_TYPE"], got["SLURM_CPU_BIND_LIST"],
            got["SLURM_CPU_BIND_VERBOSE"]) == env


def test_tasks_cpus_and_verbose_lines() -> None:
    b = parse("v,map_cpu:1,0")
    assert b is not None
    assert [task_cpus(b, i) for i in range(3)] == [{1}, {0}, {1}]
    assert verbose_line(b, "vm", 0, 0, 22856, {1}) == "cpu-bind=MAP  - vm, task  0  0 [22856]: mask 0x2 set\n"
    b = parse("mask_cpu:0x3,0xc")
    assert b is not None and [task_cpus(b, i) for i in range(2)] == [{0, 1}, {2, 3}]
    b = parse("v,none")
    assert b is not None and task_cpus(b, 0) is None
    assert verbose_line(b, "vm", 1, 1, 23016, None) == "cpu-bind=NONE - vm, task  1  1 [23016]: mask 0x0\n"
    b = parse("cores")
    assert b is not None and b.kind == "auto" and task_cpus(b, 0) is None
