"""Image size per module group from dpkg's database (synthetic data)."""

from __future__ import annotations

import pytest

from orchestrator.modules.sizes import closure, format_table, group_sizes, parse_status

pytestmark = pytest.mark.unit

STATUS = "\n".join([
    "ii \tlibc6\t1000\t\t\t\t",
    "ii \tbash\t500\t\t\tlibc6\t",
    "ii \tlibgfortran5\t300\t\t\tlibc6\t",
    "ii \tgcc-12\t2000\t\t\tlibc6, cpp-12 (= 12.2.0-14)\t",
    "ii \tcpp-12\t800\t\t\tlibc6\t",
    "ii \tlibopenblas0-pthread\t400\tlibblas.so.3, liblapack.so.3\t\tlibgfortran5\t",
    "ii \topenmpi-bin\t600\t\t\tlibopenmpi3, gcc | c-compiler\t",
    "ii \tlibopenmpi3\t700\t\t\tlibc6, libgfortran5\t",
    "ii \tr-base-core\t5000\t\t\tlibblas.so.3 | libblas3, zlib1g\tr-recommended-missing",
    "rc \told-removed\t9999\t\t\t\t",
    "ii \tzlib1g\t100\t\tlibc6\t\t",
])


def test_parse_status_skips_removed_and_reads_fields() -> None:
    pkgs = parse_status(STATUS)
    assert "old-removed" not in pkgs
    assert pkgs["gcc-12"].depends == (("libc6",), ("cpp-12",))
    assert pkgs["openmpi-bin"].depends == (("libopenmpi3",), ("gcc", "c-compiler"))
    assert pkgs["libopenblas0-pthread"].provides == ("libblas.so.3", "liblapack.so.3")


def test_closure_follows_virtual_packages_and_first_installed_alternative() -> None:
    pkgs = parse_status(STATUS)
    assert closure(["r-base-core"], pkgs) == {"r-base-core", "libopenblas0-pthread", "libgfortran5", "libc6",
                                              "zlib1g"}
    # "gcc | c-compiler": gcc is not installed and nothing provides either, so nothing is added
    assert closure(["openmpi-bin"], pkgs) == {"openmpi-bin", "libopenmpi3", "libc6", "libgfortran5"}


def test_group_sizes_adds_only_and_shared() -> None:
    pkgs = parse_status(STATUS)
    groups = {"compilers": ["gcc-12"], "mpi": ["openmpi-bin"], "r": ["r-base-core"]}
    rep = group_sizes(groups, ["bash"], pkgs)
    assert rep["base_kib"] == 1500
    g = rep["groups"]
    assert g["compilers"]["adds_kib"] == 2800 and g["compilers"]["kib"] == 2800
    # libgfortran5 is needed by mpi and r: counted once in layer order, and as shared
    assert g["mpi"]["adds_kib"] == 600 + 700 + 300
    assert g["mpi"]["kib"] == 1300
    assert g["r"]["adds_kib"] == 5000 + 400 + 100
    assert rep["shared"]["names"] == ["libgfortran5"]
    total = rep["base_kib"] + sum(x["adds_kib"] for x in g.values())
    assert total == sum(p.kib for p in pkgs.values())
    table = format_table({**rep, "hidden_kib": 2048})
    assert "compilers" in table and "2.7" in table and "moved off PATH" in table
