"""Catalogue -> Lua modulefiles: EasyBuild's shape, and the real Lmod reads them (when installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from orchestrator.modules.catalogue import Catalogue, load, parse
from orchestrator.modules.lua import help_text, lua_string, render

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = REPO / "images" / "modules" / "catalogue.yaml"
LMOD_INIT = "/usr/share/lmod/lmod/init/bash"


@pytest.fixture(scope="module")
def real() -> Catalogue:
    return load(CATALOGUE)


def test_lua_string_escapes() -> None:
    assert lua_string('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'


def test_gcc_modulefile_shape(real: Catalogue) -> None:
    text = render(real, real.by_name()["GCC/12.2.0"])
    assert text.startswith("help([==[\n\nDescription\n===========\n")
    assert "whatis([==[Description: The GNU Compiler Collection" in text
    assert "whatis([==[Homepage: https://gcc.gnu.org/]==])" in text
    assert 'local root = "/apps/system/easybuild/software/GCC/12.2.0"' in text
    assert 'if not ( isloaded("GCCcore/12.2.0") ) then\n    load("GCCcore/12.2.0")\nend' in text
    assert 'setenv("EBROOTGCC", root)' in text
    assert 'setenv("EBVERSIONGCC", "12.2.0")' in text


def test_foss_loads_toolchain_parts_in_order(real: Catalogue) -> None:
    text = render(real, real.by_name()["foss/2022b"])
    loads = [line.split('"')[1] for line in text.splitlines() if line.strip().startswith("load(")]
    assert loads == list(real.by_name()["foss/2022b"].load_deps)
    assert loads[0] == "GCC/12.2.0"


def test_paths_relative_to_root(real: Catalogue) -> None:
    text = render(real, real.by_name()["OpenMPI/4.1.4-GCC-12.2.0"])
    assert 'prepend_path("PATH", pathJoin(root, "bin"))' in text
    assert 'prepend_path("CPATH", pathJoin(root, "include"))' in text
    assert 'setenv("EBVERSIONOPENMPI", "4.1.4")' in text


def test_setenv_root_placeholder(real: Catalogue) -> None:
    text = render(real, real.by_name()["Octave/7.3.0"])
    assert 'setenv("OCTAVE_BINDIR", pathJoin(root, "bin"))' in text


def test_matlab_load_message_says_octave(real: Catalogue) -> None:
    text = render(real, real.by_name()["MATLAB/R2022a"])
    assert 'if mode() == "load" then\n    LmodMessage("MATLAB/R2022a on this system is a stand-in' in text
    assert "GNU Octave" in text


def test_help_sections(real: Catalogue) -> None:
    help_ = help_text(real.by_name()["Python/3.11.2-GCCcore-12.2.0"])
    assert help_.index("Description\n===") < help_.index("Usage\n=====") < help_.index("More information\n====")
    # the example block keeps its indentation; prose is re-wrapped
    assert "\n    python -m venv $DATA/myenv\n" in help_
    assert all(len(line) <= 100 for line in help_.splitlines())


def test_no_usage_section_without_usage(real: Catalogue) -> None:
    assert "Usage" not in help_text(real.by_name()["GCCcore/12.2.0"])


def _write_tree(cat: Catalogue, out: Path) -> None:
    for m in cat.modules:
        path = out / m.name / f"{m.full_version}.lua"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(cat, m))


def _lmod(modulepath: Path, script: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(modulepath), "MODULEPATH": str(modulepath), "LMOD_RC": "",
           "LMOD_IGNORE_CACHE": "1", "TERM": "dumb"}
    return subprocess.run(["bash", "--noprofile", "--norc", "-c", f"source {LMOD_INIT}\n{script}"],
                          capture_output=True, text=True, env=env, timeout=60, check=False)


needs_lmod = pytest.mark.skipif(not os.path.exists(LMOD_INIT) or not shutil.which("bash"),
                                reason="Debian's lmod is not installed on this machine")


@needs_lmod
def test_real_lmod_loads_the_generated_tree(real: Catalogue, tmp_path: Path) -> None:
    """The software is not here, but Lmod must parse every file and resolve every load()."""
    _write_tree(real, tmp_path)
    res = _lmod(tmp_path, "module load R/4.2.2-foss-2022b mpitest MATLAB/R2022a && module -t list 2>&1 && "
                          'echo "EBROOTR=$EBROOTR EBVERSIONFOSS=$EBVERSIONFOSS"')
    assert res.returncode == 0, res.stderr
    loaded = res.stdout.split()
    for name in ("GCCcore/12.2.0", "OpenMPI/4.1.4-GCC-12.2.0", "ScaLAPACK/2.2.1-gompi-2022b", "foss/2022b",
                 "R/4.2.2-foss-2022b", "mpitest/1.0", "Octave/7.3.0", "MATLAB/R2022a"):
        assert name in loaded
    assert "EBROOTR=/apps/system/easybuild/software/R/4.2.2-foss-2022b" in res.stdout
    assert "EBVERSIONFOSS=2022b" in res.stdout
    assert "runs GNU Octave 7.3.0, not MATLAB" in " ".join(res.stderr.split())


@needs_lmod
def test_real_lmod_spider_is_case_insensitive_and_defaults_marked(real: Catalogue, tmp_path: Path) -> None:
    _write_tree(real, tmp_path)
    res = _lmod(tmp_path, "module spider openmpi 2>&1; module avail 2>&1")
    assert "OpenMPI/4.1.4-GCC-12.2.0" in res.stdout
    assert "testapp/1.1 (D)" in " ".join(res.stdout.split())
    res = _lmod(tmp_path, "module load openmpi")
    assert res.returncode != 0
    assert 'The following module(s) are unknown: "openmpi"' in " ".join(res.stderr.split())


@needs_lmod
def test_real_lmod_rejects_a_broken_file(tmp_path: Path) -> None:
    """Sanity check of the harness: a Lua syntax error is noticed."""
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "1.lua").write_text('help([==[x]==]\nsetenv("A"')
    res = _lmod(tmp_path, "module load bad/1")
    assert res.returncode != 0 or "error" in res.stderr.lower()


def test_render_escapes_quotes_in_values() -> None:
    text = (
        "version: 1\nprefix: /apps\ngroups: {g: {description: d}}\nmodules:\n"
        "  - {name: X, version: '1', group: g, moduleclass: tools, homepage: h, description: 'say \"hi\"',\n"
        "     env: {setenv: {GREETING: 'a \"b\" \\ c'}}, message: 'x \"y\"'}\n"
    )
    cat = parse(text, source="q.yaml")
    lua = render(cat, cat.modules[0])
    assert 'setenv("GREETING", "a \\"b\\" \\\\ c")' in lua
    assert 'LmodMessage("x \\"y\\"")' in lua
