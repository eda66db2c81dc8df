"""Take Debian's commands off the default PATH and hand them to modules.

A module that claims Debian packages (``commands_from``) gets every command those
packages install in /usr/bin, plus the alternatives links that point at them (``mpirun``,
``cc``, ``f95``...). The package-owned files are moved with ``dpkg-divert --rename`` into
one hidden directory, so dpkg knows and a later package upgrade installs into the hidden
place instead of back onto PATH; the alternatives links are removed. The hidden directory
has ``lib``, ``share``... links to /usr's, because GCC finds ``cc1`` relative to where its
binary is. /usr/bin/python3 is never claimed: minihpc's daemons run on it.

The planning is a pure function (unit tested); applying it needs root and dpkg.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

HIDDEN_PREFIX = "/usr/lib/minihpc/hidden"
HIDDEN_BIN = f"{HIDDEN_PREFIX}/bin"
# What GCC, Octave... expect beside their bin directory.
HIDDEN_SIBLINGS = ("lib", "libexec", "share", "include")
DIVERT_PACKAGE = "minihpc-modules"
BIN_DIRS = ("/usr/bin/", "/bin/")
NEVER_HIDE = frozenset({"python3", "python3.11", "perl", "sh", "bash", "env"})
MANIFEST = f"{HIDDEN_PREFIX}/manifest.json"


class HideError(RuntimeError):
    """The catalogue asks to hide something that cannot or must not be hidden."""


@dataclass
class HidePlan:
    """What to move, what to delete, and which links each module's bin directory gets."""

    divert: dict[str, str] = field(default_factory=dict)  # /usr/bin/x -> hidden/bin/x
    remove: list[str] = field(default_factory=list)  # alternatives links in /usr/bin
    commands: dict[str, dict[str, str]] = field(default_factory=dict)  # module -> {cmd: target}

    def to_json(self) -> str:
        return json.dumps(
            {"divert": self.divert, "remove": self.remove, "commands": self.commands},
            indent=1,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> HidePlan:
        data = json.loads(text)
        return cls(divert=dict(data["divert"]), remove=list(data["remove"]), commands=dict(data["commands"]))


def _usr_bin(path: str) -> str | None:
    """Normalise /bin/x to /usr/bin/x (merged /usr); None if not a direct child of a bin dir."""
    for d in BIN_DIRS:
        if path.startswith(d) and "/" not in path[len(d) :] and path != d:
            return "/usr/bin/" + path[len(d) :]
    return None


def plan_hide(
    claims: Mapping[str, Iterable[str]],
    package_files: Mapping[str, Iterable[str]],
    bin_entries: Iterable[str],
    readlink: Callable[[str], str | None],
    hidden_bin: str = HIDDEN_BIN,
) -> HidePlan:
    """Plan the move of every /usr/bin command of the claimed packages.

    ``claims`` maps a module's full name to the Debian packages it claims; ``package_files``
    is ``dpkg -L`` per package; ``bin_entries`` the names now in /usr/bin; ``readlink`` gives a
    symlink's target (None for a regular file).
    """
    plan = HidePlan()
    owner: dict[str, str] = {}  # /usr/bin/x -> module
    claimed_by: dict[str, str] = {}
    for module, packages in claims.items():
        plan.commands.setdefault(module, {})
        for pkg in packages:
            if pkg in claimed_by and claimed_by[pkg] != module:
                raise HideError(f"package {pkg} is claimed by both {claimed_by[pkg]} and {module}")
            claimed_by[pkg] = module
            if pkg not in package_files:
                raise HideError(f"{module}: package {pkg} is not installed")
            for path in package_files[pkg]:
                usr = _usr_bin(path)
                if usr is None:
                    continue
                name = usr.rsplit("/", 1)[1]
                if name in NEVER_HIDE:
                    raise HideError(f"{module}: {usr} (from {pkg}) must stay on PATH")
                owner[usr] = module
                plan.divert[usr] = f"{hidden_bin}/{name}"
                plan.commands[module][name] = f"{hidden_bin}/{name}"
    present = {"/usr/bin/" + n for n in bin_entries}
    # Alternatives and other links that lead (possibly via /etc/alternatives) to a hidden file.
    for entry in sorted(present - set(owner)):
        seen: set[str] = set()
        path = entry
        while path not in seen:
            seen.add(path)
            target = readlink(path)
            if target is None:
                break
            path = os.path.normpath(os.path.join(os.path.dirname(path), target))
            hit = _usr_bin(path)
            if hit is not None and hit in owner:
                module = owner[hit]
                name = entry.rsplit("/", 1)[1]
                if name in NEVER_HIDE:
                    raise HideError(f"{module}: {entry} leads to {hit} but must stay on PATH")
                plan.remove.append(entry)
                plan.commands[module][name] = plan.divert[hit]
                break
    return plan


# --------------------------------------------------------------------------- system side


def _run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=False, capture_output=True, text=True, **kw)  # type: ignore[call-overload]


def installed_packages() -> set[str]:
    """Names of the packages dpkg has fully installed (without :arch)."""
    out = _run(["dpkg-query", "-W", "-f", "${Package}\t${db:Status-Abbrev}\n"]).stdout
    return {
        line.split("\t")[0]
        for line in out.splitlines()
        if "\t" in line and line.split("\t")[1].startswith("ii")
    }


def package_files(packages: Iterable[str]) -> dict[str, list[str]]:
    """``dpkg -L`` for each installed package (missing packages are left out)."""
    out: dict[str, list[str]] = {}
    for pkg in packages:
        res = _run(["dpkg-query", "-L", pkg])
        if res.returncode == 0:
            out[pkg] = res.stdout.split()
    return out


def _readlink(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def current_plan(claims: Mapping[str, Iterable[str]]) -> HidePlan:
    """Plan against this machine; re-running after a partial or full hide gives the same plan."""
    claims = {m: tuple(p) for m, p in claims.items()}
    files = package_files({p for pkgs in claims.values() for p in pkgs})
    entries = os.listdir("/usr/bin")
    plan = plan_hide(claims, files, entries, _readlink)
    old = Path(MANIFEST)
    if old.is_file():  # links removed by an earlier run are no longer in /usr/bin to be found
        before = HidePlan.from_json(old.read_text())
        for entry in before.remove:
            if entry not in plan.remove:
                plan.remove.append(entry)
        for module, cmds in before.commands.items():
            if module in plan.commands:
                for name, target in cmds.items():
                    plan.commands[module].setdefault(name, target)
    return plan


def apply(plan: HidePlan) -> None:
    """Move the files (dpkg-divert) and delete the alternatives links; idempotent."""
    Path(HIDDEN_BIN).mkdir(parents=True, exist_ok=True)
    for sib in HIDDEN_SIBLINGS:
        link = Path(HIDDEN_PREFIX) / sib
        if not link.is_symlink():
            link.symlink_to(f"/usr/{sib}")
    for src, dst in sorted(plan.divert.items()):
        if os.path.lexists(dst) and not os.path.lexists(src):
            continue  # done before
        res = _run(["dpkg-divert", "--package", DIVERT_PACKAGE, "--rename", "--divert", dst, "--add", src])
        if res.returncode != 0:
            raise HideError(f"dpkg-divert {src}: {res.stderr.strip() or res.stdout.strip()}")
    for entry in plan.remove:
        if os.path.islink(entry):
            os.unlink(entry)
    Path(MANIFEST).write_text(plan.to_json() + "\n")
    log.info(
        "hid %d Debian commands (%d alternatives links)",
        len(plan.divert) + len(plan.remove),
        len(plan.remove),
    )
