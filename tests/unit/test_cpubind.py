"""--cpu-bind as srun and slurmstepd with task/affinity read it (forms checked against real Slurm 22.05)."""

from __future__ import annotations

import pytest

from orchestrator.slurm.cpubind import auto_cpus, parse, task_cpus, verbose_line

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


def test_automatic_forms_bind_blocks_of_the_steps_cpus() -> None:
    """cores/threads/sockets/ldoms: task/affinity lays each node's tasks over the step's CPUs there, cpus-per-task
    CPUs each (minihpc's nodes have one core per socket and one thread per core, so the four forms agree)."""
    for word in ("cores", "threads", "sockets", "ldoms", "v,cores", "core", "socket"):
        b = parse(word)
        assert b is not None and b.kind == "auto" and b.unit, word
    b = parse("cores")
    assert b is not None
    assert [auto_cpus(b, [4, 5, 6, 7], lid, 1) for lid in range(4)] == [{4}, {5}, {6}, {7}]
    assert [auto_cpus(b, [4, 5, 6, 7], lid, 2) for lid in range(2)] == [{4, 5}, {6, 7}]
    # more tasks than CPUs (overcommit): the layout wraps round
    assert [auto_cpus(b, [2, 3], lid, 1) for lid in range(3)] == [{2}, {3}, {2}]
    # verbose alone, or no unit at all, binds nothing (no task/affinity default here)
    for value in ("verbose", "q"):
        b = parse(value)
        assert b is not None and b.kind == "auto" and not b.unit and auto_cpus(b, [0, 1], 0, 1) is None


def test_automatic_forms_become_masks_in_the_environment_and_verbose_lines() -> None:
    """task/affinity turns cores & co into a mask_cpu list (bit_fmt_hexmask: node-wide width, upper case)."""
    b = parse("v,cores")
    assert b is not None
    env = b.env(masks=[{0}, {1}], node_cpus=4)
    assert env == {"SLURM_CPU_BIND": "verbose,mask_cpu:0x1,0x2", "SLURM_CPU_BIND_TYPE": "mask_cpu:",
                   "SLURM_CPU_BIND_LIST": "0x1,0x2", "SLURM_CPU_BIND_VERBOSE": "verbose"}
    b = parse("sockets")
    assert b is not None
    env = b.env(masks=[{10, 11}, {46, 47}], node_cpus=48)
    assert env["SLURM_CPU_BIND"] == "quiet,mask_cpu:0x000000000C00,0xC00000000000"
    assert verbose_line(b, "node1", 3, 1, 4242, {10, 11}) == \
        "cpu-bind=MASK - node1, task  3  1 [4242]: mask 0xc00 set\n"
