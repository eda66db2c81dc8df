"""The software catalogue: the real one is valid and complete; bad entries are rejected precisely."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchestrator.modules import catalogue as cat_mod
from orchestrator.modules.catalogue import CatalogueError, Module, format_path, load, parse

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = REPO / "images" / "modules" / "catalogue.yaml"
FIXTURES = Path(__file__).parent / "fixtures" / "modules"

# issue 6 §3: the modules the service must have
REQUIRED = [
    "GCCcore/12.2.0",
    "GCC/12.2.0",
    "OpenMPI/4.1.4-GCC-12.2.0",
    "foss/2022b",
    "Python/3.11.2-GCCcore-12.2.0",
    "R/4.2.2-foss-2022b",
    "mpitest/1.0",
    "testapp/1.0",
    "MATLAB/R2022a",
    "Octave/7.3.0",
]


@pytest.fixture(scope="module")
def real() -> cat_mod.Catalogue:
    return load(CATALOGUE)


def test_real_catalogue_has_every_required_module(real: cat_mod.Catalogue) -> None:
    names = set(real.by_name())
    assert [n for n in REQUIRED if n not in names] == []


def test_real_catalogue_layout(real: cat_mod.Catalogue) -> None:
    assert real.modules_dir == "/apps/system/easybuild/modules/all"
    m = real.by_name()["OpenMPI/4.1.4-GCC-12.2.0"]
    assert real.root(m) == "/apps/system/easybuild/software/OpenMPI/4.1.4-GCC-12.2.0"
    assert real.modulefile(m) == "/apps/system/easybuild/modules/all/OpenMPI/4.1.4-GCC-12.2.0.lua"


def test_toolchains_load_their_parts(real: cat_mod.Catalogue) -> None:
    by = real.by_name()
    foss = by["foss/2022b"].load_deps
    assert foss[:2] == ("GCC/12.2.0", "OpenMPI/4.1.4-GCC-12.2.0")
    assert {"OpenBLAS/0.3.21-GCC-12.2.0", "FFTW/3.3.10-GCC-12.2.0", "ScaLAPACK/2.2.1-gompi-2022b"} <= set(foss)
    assert by["GCC/12.2.0"].load_deps == ("GCCcore/12.2.0",)
    # a non-system toolchain is loaded first, as EasyBuild does
    assert by["R/4.2.2-foss-2022b"].load_deps[0] == "foss/2022b"
    assert by["Python/3.11.2-GCCcore-12.2.0"].load_deps == ("GCCcore/12.2.0",)
    assert "OpenMPI/4.1.4-GCC-12.2.0" in by["mpitest/1.0"].load_deps


def test_matlab_is_honest_and_octave_is_optional(real: cat_mod.Catalogue) -> None:
    matlab = real.by_name()["MATLAB/R2022a"]
    assert "Octave" in matlab.message and "not MATLAB" in matlab.message
    assert "GNU Octave" in matlab.description
    assert real.groups[matlab.group].optional
    assert "MATLAB/R2022a" not in {m.full_name for m in real.enabled(set())}
    assert "MATLAB/R2022a" in {m.full_name for m in real.enabled({"octave"})}


def test_python_help_documents_venv_not_anaconda(real: cat_mod.Catalogue) -> None:
    py = real.by_name()["Python/3.11.2-GCCcore-12.2.0"]
    assert "python -m venv $DATA/" in py.usage
    assert "Anaconda is not provided" in py.usage
    assert not any(m.name.lower().startswith(("anaconda", "miniconda")) for m in real.modules)


def test_every_module_says_what_it_is(real: cat_mod.Catalogue) -> None:
    for m in real.modules:
        assert m.description and m.homepage and m.moduleclass, m.full_name
        assert m.check, f"{m.full_name} has no image-build check"


def test_python3_is_never_claimed(real: cat_mod.Catalogue) -> None:
    # the daemons run on /usr/bin/python3: no module may take it off PATH
    claimed = {p for m in real.modules for p in m.commands_from}
    assert not claimed & {"python3", "python3.11", "python3-minimal", "python3.11-minimal"}


@pytest.mark.parametrize(
    ("name", "version", "toolchain", "suffix", "full", "env"),
    [
        ("GCCcore", "12.2.0", "system", "", "GCCcore/12.2.0", "GCCCORE"),
        ("Python", "3.11.2", "GCCcore/12.2.0", "", "Python/3.11.2-GCCcore-12.2.0", "PYTHON"),
        ("R", "4.2.2", "foss/2022a", "-ARC", "R/4.2.2-foss-2022a-ARC", "R"),
        ("FFTW.MPI", "3.3.10", "gompi/2022b", "", "FFTW.MPI/3.3.10-gompi-2022b", "FFTWMPI"),
        ("libjpeg-turbo", "2.1", "system", "", "libjpeg-turbo/2.1", "LIBJPEGMINTURBO"),
        ("Mesa+X", "1", "system", "", "Mesa+X/1", "MESAPLUSX"),
    ],
)
def test_easybuild_naming(name: str, version: str, toolchain: str, suffix: str, full: str, env: str) -> None:
    m = Module(name=name, version=version, toolchain=toolchain, versionsuffix=suffix, group="g",
               moduleclass="tools", homepage="h", description="d")
    assert m.full_name == full
    assert m.env_suffix == env


def test_format_path() -> None:
    assert format_path(("modules", 3, "deps", 0)) == "modules[3].deps[0]"
    assert format_path(("groups", "core", "packages")) == "groups.core.packages"
    assert format_path(()) == ""


def _fixtures() -> list[Path]:
    return sorted(FIXTURES.glob("*.yaml"))


def test_there_are_bad_fixtures() -> None:
    assert len(_fixtures()) >= 15


@pytest.mark.parametrize("path", _fixtures(), ids=lambda p: p.stem)
def test_bad_entry_is_rejected_with_file_key_and_reason(path: Path) -> None:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: ")
    expected = first[len("# expect: "):]
    with pytest.raises(CatalogueError) as info:
        load(path)
    problems = info.value.problems
    assert any(p.startswith(str(path)) and re.search(expected, p) for p in problems), problems


def test_all_problems_reported_at_once() -> None:
    text = (FIXTURES / "unknown_dep.yaml").read_text().replace("moduleclass: lang", "moduleclass: nonsense")
    with pytest.raises(CatalogueError) as info:
        parse(text, source="two.yaml")
    joined = "\n".join(info.value.problems)
    assert "unknown module 'foss/2022c'" in joined
    assert "'nonsense' is not an EasyBuild module class" in joined
    assert len(info.value.problems) == 2


def test_unreadable_catalogue(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="cannot read"):
        load(tmp_path / "missing.yaml")


def test_top_level_must_be_a_mapping() -> None:
    with pytest.raises(CatalogueError, match="must be a mapping"):
        parse("- just\n- a list\n", source="x.yaml")


def test_setenv_root_placeholder_only_leading() -> None:
    base = (FIXTURES / "unknown_dep.yaml").read_text().replace("deps: [foss/2022c]", "env: {setenv: {X: 'a{root}'}}")
    with pytest.raises(CatalogueError, match=r"env\.setenv\.X: 'a\{root\}': only a leading \{root\}"):
        parse(base, source="x.yaml")
    ok = base.replace("'a{root}'", "'{root}/bin'")
    assert parse(ok, source="x.yaml").by_name()["R/4.2.2"].setenv == {"X": "{root}/bin"}
