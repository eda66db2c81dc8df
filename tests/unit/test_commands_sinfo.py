"""sinfo against a fake controller; layouts follow real Slurm 22.05 output for the same nodes."""

from __future__ import annotations

from typing import Any

import pytest
from fakeslurm import FakeSlurm, run, slurm_fixture  # noqa: F401 - the fixture


def node(name: str, state: str = "IDLE", flags: list[str] | None = None, **kw: Any) -> dict[str, Any]:
    rec = {"name": name, "state": state, "flags": flags or [], "reason": "", "reason_user": "", "reason_time": 0,
           "cpus": 2, "alloc_cpus": 0, "memory": 8000, "alloc_mem": 0, "free_mem": 21011, "gres": "",
           "gres_used": "", "features": "", "partitions": ["short", "devel"], "boot_time": 0,
           "slurmd_start_time": 0, "last_busy": 0, "addr": name, "hostname": name, "cpu_load": 1.51,
           "arch": "x86_64", "os": "Linux", "version": "22.05.8"}
    rec.update(kw)
    return rec


def part(name: str, nodes: str, **kw: Any) -> dict[str, Any]:
    rec = {"name": name, "default": False, "nodes": nodes, "max_time": 720, "default_time": 60,
           "priority_tier": 1, "oversubscribe": 0, "max_nodes": None, "state": "UP", "total_cpus": 2,
           "total_nodes": 1, "def_mem_per_cpu": 100}
    rec.update(kw)
    return rec


@pytest.fixture
def one_node(slurm: FakeSlurm) -> FakeSlurm:
    slurm.on("nodes", {"nodes": [node("vm")]})
    slurm.on("partitions", {"partitions": [part("short", "vm", default=True),
                                           part("devel", "vm", max_time=10, default_time=-1)]})
    return slurm


def test_default(one_node: FakeSlurm) -> None:
    assert run("sinfo") == (0, "PARTITION AVAIL  TIMELIMIT  NODES  STATE NODELIST\n"
                               "short*       up   12:00:00      1   idle vm\n"
                               "devel        up      10:00      1   idle vm\n", "")


def test_long(one_node: FakeSlurm) -> None:
    lines = run("sinfo", "-l")[1].splitlines()
    assert lines[1:] == [
        "PARTITION AVAIL  TIMELIMIT   JOB_SIZE ROOT OVERSUBS     GROUPS  NODES       STATE NODELIST",
        "short*       up   12:00:00 1-infinite   no       NO        all      1        idle vm",
        "devel        up      10:00 1-infinite   no       NO        all      1        idle vm"]


def test_node_oriented(one_node: FakeSlurm) -> None:
    assert run("sinfo", "-N")[1] == ("NODELIST   NODES PARTITION STATE \n"
                                     "vm             1    short* idle  \n"
                                     "vm             1     devel idle  \n")
    lines = run("sinfo", "-N", "-l")[1].splitlines()
    assert lines[1:] == [
        "NODELIST   NODES PARTITION       STATE CPUS    S:C:T MEMORY TMP_DISK WEIGHT AVAIL_FE REASON              ",
        "vm             1    short*        idle 2       2:1:1   8000        0      1   (null) none                ",
        "vm             1     devel        idle 2       2:1:1   8000        0      1   (null) none                "]


def test_summarize(one_node: FakeSlurm) -> None:
    assert run("sinfo", "-s")[1] == ("PARTITION AVAIL  TIMELIMIT   NODES(A/I/O/T) NODELIST\n"
                                     "short*       up   12:00:00          0/1/0/1 vm\n"
                                     "devel        up      10:00          0/1/0/1 vm\n")


def test_every_letter(one_node: FakeSlurm) -> None:
    fmt = "%a|%A|%c|%C|%d|%D|%e|%E|%f|%F|%g|%G|%h|%H|%I|%l|%L|%m|%M|%n|%N|%o|%O|%p|%P|%r|%R|%s|%S|%t|%T|%u|%U|%v|" \
          "%V|%w|%X|%z|%b|%B"
    out = run("sinfo", "-o", fmt)[1].splitlines()
    assert out[0] == ("AVAIL|NODES(A/I)|CPUS|CPUS(A/I/O/T)|TMP_DISK|NODES|FREE_MEM|REASON|AVAIL_FEATURES|"
                      "NODES(A/I/O/T)|GROUPS|GRES|OVERSUBSCRIBE|TIMESTAMP|PRIO_JOB_FACTOR|TIMELIMIT|DEFAULTTIME|"
                      "MEMORY|PREEMPT_MODE|HOSTNAMES|NODELIST|NODE_ADDR|CPU_LOAD|PRIO_TIER|PARTITION|ROOT|PARTITION|"
                      "JOB_SIZE|ALLOCNODES|STATE|STATE|USER|USER|VERSION|CLUSTER|WEIGHT|SOCKETS|S:C:T|"
                      "ACTIVE_FEATURES|MAX_CPUS_PER_NODE")
    assert out[1] == ("up|0/1|2|0/2/0/2|0|1|21011|none|(null)|0/1/0/1|all|(null)|NO|Unknown|1|12:00:00|1:00:00|"
                      "8000|OFF|vm|vm|vm|1.51|1|short*|no|short|1-infinite|all|idle|idle|Unknown|Unknown|22.05.8|"
                      "N/A|1|2|2:1:1|(null)|UNLIMITED")
    assert out[2].startswith("up|0/1|2|0/2/0/2|0|1|21011|none|(null)|0/1/0/1|all|(null)|NO|Unknown|1|10:00|n/a|")


def test_widths_default_marker_and_invalid_letters(one_node: FakeSlurm) -> None:
    _rc, out, err = run("sinfo", "-o", "%-10P|%.3P|%#P|%C|%10N")
    assert err == "Invalid node format specification: -\nInvalid node format specification: #\n"
    assert out == ("%-10P|PAR|%#P|CPUS(A/I/O/T)|NODELIST  \n"
                   "%-10P|sh*|%#P|0/2/0/2|vm        \n"
                   "%-10P|dev|%#P|0/2/0/2|vm        \n")
    assert run("sinfo", "-O", "partition:5,nodes,cpusstate")[1] == (
        "PARTINODES               CPUS(A/I/O/T)       \n"
        "shor*1                   0/2/0/2             \n"
        "devel1                   0/2/0/2             \n")
    # 22.05's sinfo -O names a field it does not know a "job" format specification (squeue's words)
    rc, out, err = run("sinfo", "-O", "junk")
    assert (rc, out, err) == (0, "\n\n", "sinfo: error: Invalid job format specification: junk\n")


def test_states_and_reasons(slurm: FakeSlurm) -> None:
    slurm.on("nodes", {"nodes": [
        node("c001", "MIXED", alloc_cpus=1, partitions=["short"]),
        node("c002", "IDLE", ["DRAIN"], reason="bad disk", reason_user="root", reason_time=1764000000,
             partitions=["short"]),
        node("c003", "DOWN", ["NOT_RESPONDING"], reason="Not responding", reason_user="root",
             reason_time=1764000000, partitions=["short"]),
        node("c004", "IDLE", partitions=["short"])]})
    slurm.on("partitions", {"partitions": [part("short", "c[001-004]", default=True)]})
    assert run("sinfo")[1] == ("PARTITION AVAIL  TIMELIMIT  NODES  STATE NODELIST\n"
                               "short*       up   12:00:00      1  down* c003\n"
                               "short*       up   12:00:00      1  drain c002\n"
                               "short*       up   12:00:00      1    mix c001\n"
                               "short*       up   12:00:00      1   idle c004\n")
    # the default sort (#P,-t) puts the higher state code (DOWN|NOT_RESPONDING) first
    assert run("sinfo", "-R")[1] == ("REASON               USER      TIMESTAMP           NODELIST\n"
                                     "Not responding       root      2025-11-24T16:00:00 c003\n"
                                     "bad disk             root      2025-11-24T16:00:00 c002\n")
    # -t idle matches on the base state, so the drained idle node comes too (as in Slurm)
    assert run("sinfo", "-h", "-t", "idle", "-o", "%N")[1] == "c[002,004]\n"
    assert run("sinfo", "-h", "-t", "idle", "-o", "%N %t")[1] == "c002 drain\nc004 idle\n"
    assert run("sinfo", "-h", "-o", "%C")[1] == "1/3/4/8\n"


def test_filtered_partition_still_listed(one_node: FakeSlurm) -> None:
    assert run("sinfo", "-t", "drain")[1] == ("PARTITION AVAIL  TIMELIMIT  NODES  STATE NODELIST\n"
                                              "short*       up   12:00:00      0    n/a \n"
                                              "devel        up      10:00      0    n/a \n")
    assert run("sinfo", "-p", "devel", "-h")[1] == "devel        up      10:00      1   idle vm\n"


def test_bad_input(one_node: FakeSlurm) -> None:
    rc, _, err = run("sinfo", "-t", "foo")
    assert rc == 1 and err.startswith('sinfo: error: Bad state string: "foo"\nsinfo: error: valid states: unknown,')
    assert run("sinfo", "-Z") == (1, "", "sinfo: invalid option -- 'Z'\nTry \"sinfo --help\" for more information\n")


def test_help_usage_version(slurm: FakeSlurm) -> None:
    assert run("sinfo", "-V") == (0, "slurm 22.05.8\n", "")
    assert run("sinfo", "--usage")[1].startswith("Usage: sinfo [-abdelNRrsTv]")
    assert run("sinfo", "--help")[1].startswith("Usage: sinfo [OPTIONS]\n")
