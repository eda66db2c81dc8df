"""Install the catalogue into an image: software dirs, modulefiles, Lmod site config, spider cache.

Run as root by images/modules/install.sh during the login and compute image builds.
Every step is checked as it goes and the build fails loudly rather than shipping a
module that does not work: each module is loaded by the real Lmod and its ``check`` run,
and every hidden command must be "command not found" on the default PATH.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterable, Sequence
from glob import glob
from pathlib import Path

from orchestrator.modules import debian
from orchestrator.modules.catalogue import Catalogue, CatalogueError, Module
from orchestrator.modules.lua import render

log = logging.getLogger(__name__)

LMOD_PKG = "/usr/share/lmod/lmod"
LMOD_INIT_BASH = f"{LMOD_PKG}/init/bash"
MODULESPATH_FILE = "/etc/lmod/modulespath"
LMODRC = "/etc/lmodrc.lua"
SITE_INIT = "/etc/lmod/minihpc-init.sh"
BASHRC = "/etc/bash.bashrc"
BASHRC_MARK = "# minihpc: Lmod"
CACHE_DIR = "/apps/system/lmod/cacheDir"
CACHE_TIMESTAMP = "/apps/system/lmod/system.txt"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class InstallError(RuntimeError):
    """The image must not be built: something the catalogue promises does not work."""


def _sh(
    script: str, *, env: dict[str, str] | None = None, cwd: str | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run a bash script with no profile/rc files, i.e. exactly what we put in it."""
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def clean_env(catalogue: Catalogue) -> dict[str, str]:
    """An environment like a fresh job's: default PATH, Lmod pointed at our tree, no modules loaded."""
    return {
        "PATH": DEFAULT_PATH,
        "HOME": os.environ.get("HOME", "/root"),
        "USER": "root",
        "LANG": "C.UTF-8",
        "MODULEPATH": catalogue.modules_dir,
    }


def lmod_script(modules: Sequence[str], body: str) -> str:
    """A bash script that loads ``modules`` with the real Lmod, then runs ``body`` (set -e)."""
    load = f"module load {' '.join(shlex.quote(m) for m in modules)}\n" if modules else ""
    return f"set -eo pipefail\nsource {LMOD_INIT_BASH}\n{load}{body}\n"


# --------------------------------------------------------------------------- steps


def optional_packages(catalogue: Catalogue, optional: set[str]) -> list[str]:
    """Debian packages of the switched-on optional groups (an image layer of their own)."""
    return sorted(
        {p for g in catalogue.groups.values() if g.optional and g.name in optional for p in g.packages}
    )


def required_packages(catalogue: Catalogue, modules: Iterable[Module]) -> set[str]:
    """Every Debian package the installed modules need: their groups' and what they claim."""
    mods = list(modules)
    groups = {m.group for m in mods}
    return {p for g in groups for p in catalogue.groups[g].packages} | {
        p for m in mods for p in m.commands_from
    }


def apt_install(packages: Sequence[str]) -> None:
    """Install packages from Debian's mirror (used for optional groups only)."""
    if not packages:
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    log.info("installing optional packages: %s", " ".join(packages))
    for argv in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
    ):
        res = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise InstallError(f"{' '.join(argv[:2])} failed:\n{res.stdout[-2000:]}{res.stderr[-2000:]}")
    subprocess.run(["apt-get", "clean"], check=False)
    shutil.rmtree("/var/lib/apt/lists", ignore_errors=True)
    Path("/var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)


def _link(path: Path, target: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.exists():
        if path.is_dir() and not path.is_symlink():
            raise InstallError(f"{path} is a directory, cannot link it to {target}")
        path.unlink()
    path.symlink_to(target)


def populate(catalogue: Catalogue, module: Module, commands: dict[str, str], files_dir: Path) -> None:
    """Create a module's software directory: command links, other links, copied files."""
    root = Path(catalogue.root(module))
    root.mkdir(parents=True, exist_ok=True)
    for name, target in sorted({**commands, **module.commands}.items()):
        _link(root / "bin" / name, target)
    for rel, target in module.links.items():
        if rel.endswith("/"):
            matches = sorted({m for pattern in target.split() for m in glob(pattern)})
            if not matches:
                raise InstallError(f"{module.full_name}: links.{rel}: nothing matches {target}")
            for match in matches:
                _link(root / rel / os.path.basename(match), match)
        else:
            if not os.path.lexists(target):
                raise InstallError(f"{module.full_name}: links.{rel}: {target} does not exist")
            _link(root / rel, target)
    for rel, src in module.files.items():
        dst = root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(files_dir / src, dst)
        if rel.startswith("bin/"):
            dst.chmod(0o755)  # a command, whatever mode the build context gave it


def write_modulefiles(catalogue: Catalogue, modules: Iterable[Module]) -> list[Path]:
    """Write the Lua files; drop stale ones for modules no longer installed."""
    written: list[Path] = []
    for m in modules:
        path = Path(catalogue.modulefile(m))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(catalogue, m), encoding="utf-8")
        written.append(path)
    keep = set(written)
    for old in Path(catalogue.modules_dir).glob("*/*.lua"):
        if old not in keep:
            old.unlink()
            log.info("removed stale modulefile %s", old)
    return written


def write_site_config(catalogue: Catalogue, site_dir: Path) -> None:
    """MODULEPATH, the spider-cache location, and `module` in every kind of bash."""
    Path(MODULESPATH_FILE).parent.mkdir(parents=True, exist_ok=True)
    Path(MODULESPATH_FILE).write_text(
        "# minihpc: the EasyBuild tree generated from images/modules/catalogue.yaml (one path a line)\n"
        f"{catalogue.modules_dir}\n"
    )
    Path(LMODRC).write_text(
        "-- minihpc: Lmod's system spider cache, built at image build (module avail/spider read it)\n"
        "scDescriptT = {\n"
        f'   {{ dir = "{CACHE_DIR}", timestamp = "{CACHE_TIMESTAMP}" }},\n'
        "}\n"
    )
    shutil.copy2(site_dir / "minihpc-init.sh", SITE_INIT)
    os.chmod(SITE_INIT, 0o644)
    hook = f"{BASHRC_MARK} for interactive shells and ssh commands\n[ -r {SITE_INIT} ] && . {SITE_INIT}\n"
    text = Path(BASHRC).read_text() if os.path.exists(BASHRC) else ""
    if BASHRC_MARK not in text:
        # Before Debian's "[ -z "$PS1" ] && return", which ends the file for non-interactive shells.
        Path(BASHRC).write_text(hook + text)


def run_builds(catalogue: Catalogue, modules: Iterable[Module], src_dir: Path) -> None:
    """Compile what the catalogue builds (mpitest, testapp) with its modules loaded by Lmod."""
    for m in modules:
        if not m.build:
            continue
        env = clean_env(catalogue) | {"root": catalogue.root(m)}
        script = lmod_script([*m.build_deps, *m.load_deps], "\n".join(m.build))
        res = _sh(script, env=env, cwd=str(src_dir))
        if res.returncode != 0:
            raise InstallError(f"{m.full_name}: build failed:\n{res.stdout}{res.stderr}")
        log.info("built %s", m.full_name)


def check_paths(catalogue: Catalogue, modules: Iterable[Module]) -> None:
    """Every relative path a module prepends must exist once installed."""
    for m in modules:
        for var, entries in m.prepend_path.items():
            for entry in entries:
                path = entry if entry.startswith("/") else f"{catalogue.root(m)}/{entry}"
                if not os.path.exists(path):
                    raise InstallError(f"{m.full_name}: env.prepend_path.{var}: {path} does not exist")


def build_spider_cache(catalogue: Catalogue) -> None:
    """Lmod's own cache builder, so `module avail`/`spider` need not walk the tree."""
    Path(CACHE_DIR).mkdir(parents=True, exist_ok=True)
    script = lmod_script(
        [],
        f"{LMOD_PKG}/libexec/update_lmod_system_cache_files -d {CACHE_DIR} "
        f"-t {CACHE_TIMESTAMP} {catalogue.modules_dir}",
    )
    res = _sh(script, env=clean_env(catalogue))
    if res.returncode != 0 or not list(Path(CACHE_DIR).glob("spiderT*")):
        raise InstallError(f"spider cache build failed:\n{res.stdout}{res.stderr}")


def check_hidden(catalogue: Catalogue, plan: debian.HidePlan) -> None:
    """No claimed command may be on the default PATH without its module."""
    names = sorted({n for cmds in plan.commands.values() for n in cmds})
    if not names:
        return
    script = "for c in " + " ".join(shlex.quote(n) for n in names) + '; do command -v "$c"; done; true'
    res = _sh(script, env=clean_env(catalogue))
    if res.stdout.strip():
        raise InstallError("still on the default PATH without a module:\n" + res.stdout)


def check_modules(catalogue: Catalogue, modules: Iterable[Module]) -> None:
    """Load each module with the real Lmod (fresh environment) and run its check."""
    for m in modules:
        body = m.check or "true"
        script = lmod_script(
            [m.full_name], f'test -n "$EBROOT{m.env_suffix}" && test -d "$EBROOT{m.env_suffix}"\n{body}'
        )
        res = _sh(script, env=clean_env(catalogue), timeout=300)
        if res.returncode != 0 or "Lmod has detected the following error" in res.stderr:
            raise InstallError(f"{m.full_name}: check failed ({body}):\n{res.stdout}{res.stderr}")
        log.info("checked %s", m.full_name)


def write_manifest(
    catalogue: Catalogue, modules: Sequence[Module], plan: debian.HidePlan, optional: set[str]
) -> None:
    """What this image has, for the size benchmark and for people: groups, modules, hidden commands."""
    data = {
        "catalogue": catalogue.source,
        "prefix": catalogue.prefix,
        "optional_enabled": sorted(optional),
        "order": list(catalogue.groups),
        "groups": {
            g.name: {
                "optional": g.optional,
                "enabled": (not g.optional) or g.name in optional,
                "packages": sorted(
                    set(g.packages) | {p for m in modules if m.group == g.name for p in m.commands_from}
                ),
                "modules": [m.full_name for m in modules if m.group == g.name],
                "roots": [catalogue.root(m) for m in modules if m.group == g.name],
            }
            for g in catalogue.groups.values()
        },
        "hidden": {m: sorted(c) for m, c in plan.commands.items()},
        "built": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    path = Path(catalogue.prefix) / ".minihpc" / "manifest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def install(catalogue: Catalogue, optional: set[str], *, base_dir: Path, run_checks: bool = True) -> None:
    """The whole image-build step; ``base_dir`` is images/modules (files/, src/, site/)."""
    unknown = optional - {g.name for g in catalogue.groups.values() if g.optional}
    if unknown:
        choices = ", ".join(sorted(g.name for g in catalogue.groups.values() if g.optional)) or "none"
        raise CatalogueError(
            [
                f"{catalogue.source}: unknown optional group(s) {', '.join(sorted(unknown))} "
                f"(optional groups: {choices})"
            ]
        )
    if os.geteuid() != 0:
        raise InstallError("install must run as root (it is an image build step)")
    started = time.monotonic()
    modules = catalogue.enabled(optional)
    have = debian.installed_packages()
    apt_install([p for p in optional_packages(catalogue, optional) if p not in have])
    have = debian.installed_packages()
    missing = sorted(required_packages(catalogue, modules) - have)
    if missing:
        raise InstallError(
            "Debian packages missing from the image (add them to images/base/packages.txt): "
            + " ".join(missing)
        )
    if not os.path.exists(LMOD_INIT_BASH):
        raise InstallError(
            f"Lmod is not installed ({LMOD_INIT_BASH} missing): add lmod to images/base/packages.txt"
        )
    plan = debian.current_plan({m.full_name: m.commands_from for m in modules})
    debian.apply(plan)
    for m in modules:
        populate(catalogue, m, plan.commands.get(m.full_name, {}), base_dir / "files")
    write_modulefiles(catalogue, modules)
    write_site_config(catalogue, base_dir / "site")
    run_builds(catalogue, modules, base_dir / "src")
    check_paths(catalogue, modules)
    build_spider_cache(catalogue)
    write_manifest(catalogue, modules, plan, optional)
    if run_checks:
        check_hidden(catalogue, plan)
        check_modules(catalogue, modules)
    log.info("installed %d modules in %.1f s", len(modules), time.monotonic() - started)
