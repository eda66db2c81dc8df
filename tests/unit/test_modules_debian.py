"""Planning which Debian commands leave PATH and which module gets each (pure, no dpkg)."""

from __future__ import annotations

import pytest

from orchestrator.modules.debian import HideError, HidePlan, plan_hide

pytestmark = pytest.mark.unit

HB = "/hidden/bin"

# A miniature of Debian's openmpi-bin and gcc-12: real files, relative links, alternatives.
FILES = {
    "openmpi-bin": ["/usr/bin", "/usr/bin/orterun", "/usr/bin/mpirun.openmpi", "/usr/bin/opal_wrapper",
                    "/usr/bin/mpicc.openmpi", "/usr/share/man/man1/orterun.1.gz"],
    "gcc-12": ["/usr/bin/x86_64-linux-gnu-gcc-12", "/usr/bin/gcc-12", "/usr/lib/gcc/x86_64-linux-gnu/12/cc1"],
    "gcc": ["/usr/bin/gcc", "/bin/c99-gcc"],
    "python3-minimal": ["/usr/bin/python3"],
}
LINKS = {
    "/usr/bin/mpirun.openmpi": "orterun",
    "/usr/bin/mpicc.openmpi": "opal_wrapper",
    "/usr/bin/mpirun": "/etc/alternatives/mpirun",
    "/etc/alternatives/mpirun": "/usr/bin/mpirun.openmpi",
    "/usr/bin/mpicc": "/etc/alternatives/mpi",
    "/etc/alternatives/mpi": "/usr/bin/mpicc.openmpi",
    "/usr/bin/gcc-12": "x86_64-linux-gnu-gcc-12",
    "/usr/bin/gcc": "gcc-12",
    "/usr/bin/cc": "/etc/alternatives/cc",
    "/etc/alternatives/cc": "/usr/bin/gcc",
    "/usr/bin/loop": "/usr/bin/loop2",
    "/usr/bin/loop2": "/usr/bin/loop",
    "/usr/bin/awk": "/etc/alternatives/awk",
    "/etc/alternatives/awk": "/usr/bin/mawk",
}
ENTRIES = ["orterun", "mpirun.openmpi", "opal_wrapper", "mpicc.openmpi", "mpirun", "mpicc", "x86_64-linux-gnu-gcc-12",
           "gcc-12", "gcc", "c99-gcc", "cc", "loop", "loop2", "awk", "mawk", "python3"]


def plan(claims: dict[str, list[str]]) -> HidePlan:
    return plan_hide(claims, FILES, ENTRIES, LINKS.get, hidden_bin=HB)


def test_package_files_are_diverted_and_linked() -> None:
    p = plan({"OpenMPI/4": ["openmpi-bin"]})
    assert p.divert == {
        "/usr/bin/orterun": f"{HB}/orterun",
        "/usr/bin/mpirun.openmpi": f"{HB}/mpirun.openmpi",
        "/usr/bin/opal_wrapper": f"{HB}/opal_wrapper",
        "/usr/bin/mpicc.openmpi": f"{HB}/mpicc.openmpi",
    }
    # the alternatives links go too, and the module gets them under their usual names
    assert sorted(p.remove) == ["/usr/bin/mpicc", "/usr/bin/mpirun"]
    cmds = p.commands["OpenMPI/4"]
    assert cmds["mpirun"] == f"{HB}/mpirun.openmpi"
    assert cmds["mpicc"] == f"{HB}/mpicc.openmpi"
    assert cmds["orterun"] == f"{HB}/orterun"


def test_bin_is_normalised_to_usr_bin_and_alternatives_follow_chains() -> None:
    p = plan({"GCCcore/12": ["gcc-12", "gcc"]})
    assert p.divert["/usr/bin/c99-gcc"] == f"{HB}/c99-gcc"
    assert "/usr/lib/gcc/x86_64-linux-gnu/12/cc1" not in p.divert
    assert p.remove == ["/usr/bin/cc"]  # cc -> /etc/alternatives/cc -> /usr/bin/gcc
    assert p.commands["GCCcore/12"]["cc"] == f"{HB}/gcc"


def test_unrelated_links_and_loops_are_left_alone() -> None:
    p = plan({"OpenMPI/4": ["openmpi-bin"]})
    assert "/usr/bin/awk" not in p.remove
    assert "/usr/bin/loop" not in p.remove


def test_python3_must_stay() -> None:
    with pytest.raises(HideError, match=r"/usr/bin/python3 \(from python3-minimal\) must stay on PATH"):
        plan({"Python/3": ["python3-minimal"]})


def test_a_package_belongs_to_one_module() -> None:
    with pytest.raises(HideError, match="gcc-12 is claimed by both A/1 and B/1"):
        plan({"A/1": ["gcc-12"], "B/1": ["gcc-12"]})


def test_uninstalled_package_is_an_error() -> None:
    with pytest.raises(HideError, match="package octave is not installed"):
        plan({"Octave/7": ["octave"]})


def test_plan_round_trips_json() -> None:
    p = plan({"OpenMPI/4": ["openmpi-bin"], "GCCcore/12": ["gcc-12", "gcc"]})
    q = HidePlan.from_json(p.to_json())
    assert (q.divert, sorted(q.remove), q.commands) == (p.divert, sorted(p.remove), p.commands)


def test_nothing_claimed_nothing_hidden() -> None:
    p = plan({"testapp/1.0": []})
    assert (p.divert, p.remove, p.commands) == ({}, [], {"testapp/1.0": {}})
