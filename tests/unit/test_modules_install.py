"""Installer pieces that need no root: software dirs, modulefiles, package lists, the scripts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.modules import install as inst
from orchestrator.modules.catalogue import Catalogue, CatalogueError, load, parse

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
MODULES_DIR = REPO / "images" / "modules"


def tmp_catalogue(prefix: Path, extra: str = "") -> Catalogue:
    text = f"""
version: 1
prefix: {prefix}
groups:
  core: {{description: core, packages: [gcc-12]}}
  opt: {{description: optional, optional: true, packages: [octave, octave-common]}}
modules:
  - name: Thing
    version: "1.0"
    group: core
    moduleclass: tools
    homepage: h
    description: a thing
    commands: {{thing: /bin/true}}
    commands_from: [thing-bin]
    links:
      include: /usr/include
      lib/: {prefix}/src/lib*.so
    env:
      prepend_path: {{PATH: [bin], CPATH: [include]}}
  - {{name: Opt, version: "2", group: opt, moduleclass: tools, homepage: h, description: optional}}
{extra}"""
    return parse(text, source="t.yaml")


def test_populate_links_commands_globs_and_copies(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    for name in ("liba.so", "libb.so", "other.txt"):
        (tmp_path / "src" / name).write_text(name)
    files = tmp_path / "files"
    files.mkdir()
    cat = tmp_catalogue(tmp_path)
    m = cat.by_name()["Thing/1.0"]
    inst.populate(cat, m, {"hidden-cmd": "/usr/lib/minihpc/hidden/bin/x"}, files)
    root = Path(cat.root(m))
    assert os.readlink(root / "bin" / "thing") == "/bin/true"
    assert os.readlink(root / "bin" / "hidden-cmd") == "/usr/lib/minihpc/hidden/bin/x"
    assert os.readlink(root / "include") == "/usr/include"
    assert sorted(p.name for p in (root / "lib").iterdir()) == ["liba.so", "libb.so"]
    inst.populate(cat, m, {}, files)  # idempotent: links replaced, no error
    inst.check_paths(cat, [m])


def test_populate_reports_a_missing_link_target(tmp_path: Path) -> None:
    cat = tmp_catalogue(tmp_path)
    with pytest.raises(inst.InstallError, match=r"Thing/1.0: links.lib/: nothing matches"):
        inst.populate(cat, cat.by_name()["Thing/1.0"], {}, tmp_path)


def test_check_paths_catches_a_missing_directory(tmp_path: Path) -> None:
    cat = tmp_catalogue(tmp_path)
    with pytest.raises(inst.InstallError, match=r"env.prepend_path.(PATH|CPATH): .* does not exist"):
        inst.check_paths(cat, [cat.by_name()["Thing/1.0"]])


def test_write_modulefiles_removes_stale_ones(tmp_path: Path) -> None:
    cat = tmp_catalogue(tmp_path)
    stale = Path(cat.modules_dir) / "Gone" / "0.1.lua"
    stale.parent.mkdir(parents=True)
    stale.write_text("-- old")
    written = inst.write_modulefiles(cat, cat.enabled(set()))
    assert [p.name for p in written] == ["1.0.lua"]
    assert not stale.exists()
    assert 'setenv("EBROOTTHING", root)' in written[0].read_text()


def test_package_lists(tmp_path: Path) -> None:
    cat = tmp_catalogue(tmp_path)
    assert inst.optional_packages(cat, set()) == []
    assert inst.optional_packages(cat, {"opt"}) == ["octave", "octave-common"]
    assert inst.required_packages(cat, cat.enabled(set())) == {"gcc-12", "thing-bin"}


def test_unknown_optional_group_is_refused_before_anything_happens(tmp_path: Path) -> None:
    cat = tmp_catalogue(tmp_path)
    with pytest.raises(CatalogueError, match=r"unknown optional group\(s\) octve \(optional groups: opt\)"):
        inst.install(cat, {"octve"}, base_dir=tmp_path)


def test_lmod_script_loads_then_runs() -> None:
    script = inst.lmod_script(["foss/2022b", "R/4.2.2-foss-2022b"], "Rscript -e 1")
    assert script.splitlines() == ["set -eo pipefail", f"source {inst.LMOD_INIT_BASH}",
                                   "module load foss/2022b R/4.2.2-foss-2022b", "Rscript -e 1"]


def test_real_catalogue_builds_from_sources_that_exist() -> None:
    cat = load(MODULES_DIR / "catalogue.yaml")
    for m in cat.modules:
        for line in m.build:
            for word in line.split():
                if word.endswith(".c"):
                    assert (MODULES_DIR / "src" / word).is_file(), f"{m.full_name}: {word}"


def test_install_sh_packages_only_without_groups_needs_no_apt() -> None:
    env = {"PATH": os.environ["PATH"], "MINIHPC_OPTIONAL_MODULES": "", "MINIHPC_PYTHON": sys.executable}
    res = subprocess.run([str(MODULES_DIR / "install.sh"), "--packages-only"], capture_output=True, text=True,
                         env=env, timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    assert "optional packages: none" in res.stdout


def test_install_sh_rejects_unknown_group_and_option() -> None:
    env = {"PATH": os.environ["PATH"], "MINIHPC_PYTHON": sys.executable}
    res = subprocess.run([str(MODULES_DIR / "install.sh"), "--packages-only", "--optional", "matlab"],
                         capture_output=True, text=True, env=env, timeout=60, check=False)
    assert res.returncode != 0
    assert "unknown optional group(s): matlab" in res.stderr
    res = subprocess.run([str(MODULES_DIR / "install.sh"), "--bogus"], capture_output=True, text=True, timeout=60,
                         check=False)
    assert res.returncode == 2 and "unknown option --bogus" in res.stderr


def test_site_init_defines_module_only_once() -> None:
    text = (MODULES_DIR / "site" / "minihpc-init.sh").read_text()
    assert "declare -F module" in text and ". /etc/profile.d/lmod.sh" in text


def test_site_config_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MODULESPATH_FILE", "LMODRC", "SITE_INIT", "BASHRC"):
        monkeypatch.setattr(inst, name, str(tmp_path / name.lower()))
    (tmp_path / "bashrc").write_text('# System-wide .bashrc\n[ -z "$PS1" ] && return\nPS1=x\n')
    cat = tmp_catalogue(tmp_path / "apps")
    inst.write_site_config(cat, MODULES_DIR / "site")
    inst.write_site_config(cat, MODULES_DIR / "site")  # twice: the hook is added once
    assert (tmp_path / "modulespath_file").read_text().splitlines()[-1] == f"{tmp_path}/apps/modules/all"
    rc = (tmp_path / "lmodrc").read_text()
    assert f'dir = "{inst.CACHE_DIR}", timestamp = "{inst.CACHE_TIMESTAMP}"' in rc
    bashrc = (tmp_path / "bashrc").read_text()
    assert bashrc.count(inst.BASHRC_MARK) == 1
    # the hook must come before Debian's early return for non-interactive shells
    assert bashrc.index(f". {tmp_path}/site_init") < bashrc.index('[ -z "$PS1" ] && return')
    assert (tmp_path / "site_init").read_text() == (MODULES_DIR / "site" / "minihpc-init.sh").read_text()
