"""How much image each module group adds, measured inside a built image.

A group's Debian packages pull in dependencies; some of those the rest of the image needs
anyway. So for each group this counts the installed size of the packages that only that
group needs (its dependency closure minus everything reachable from the base image's own
packages and from the other groups), then the packages that several groups share, plus
what the install step itself wrote under the software directories. Reads dpkg's database
and the manifest that install.py leaves in the tree.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MANIFEST = "/apps/system/easybuild/.minihpc/manifest.json"
_DEP_NAME = re.compile(r"^\s*([a-z0-9][a-z0-9+.-]*)")


@dataclass(frozen=True)
class Pkg:
    """What the size computation needs from one installed package."""

    name: str
    kib: int
    provides: tuple[str, ...]
    depends: tuple[tuple[str, ...], ...]  # AND of ORs


def _names(field: str) -> list[tuple[str, ...]]:
    """``a (>= 1), b | c:any`` -> [("a",), ("b", "c")]."""
    out: list[tuple[str, ...]] = []
    for clause in field.split(","):
        alts = tuple(m.group(1) for alt in clause.split("|") if (m := _DEP_NAME.match(alt.split(":")[0])))
        if alts:
            out.append(alts)
    return out


def parse_status(text: str) -> dict[str, Pkg]:
    """Parse ``dpkg-query -W -f`` output: tab-separated status, name, size, provides, pre-depends, depends, recommends."""
    pkgs: dict[str, Pkg] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 7 or not parts[0].startswith("ii"):
            continue
        _, name, size, provides, pre, dep, rec = parts
        pkgs[name] = Pkg(
            name=name,
            kib=int(size) if size.isdigit() else 0,
            provides=tuple(a for clause in _names(provides) for a in clause),
            depends=tuple(_names(pre) + _names(dep) + _names(rec)),
        )
    return pkgs


def closure(roots: Iterable[str], pkgs: Mapping[str, Pkg]) -> set[str]:
    """Installed packages reachable from ``roots`` by Pre-Depends/Depends/installed Recommends."""
    providers: dict[str, list[str]] = {}
    for p in pkgs.values():
        for v in p.provides:
            providers.setdefault(v, []).append(p.name)
    seen: set[str] = set()
    todo = [r for r in roots if r in pkgs]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for alts in pkgs[name].depends:
            for alt in alts:  # the first alternative that is installed (directly or as a provider)
                hit = [alt] if alt in pkgs else sorted(providers.get(alt, []))
                if hit:
                    todo.extend(hit)
                    break
    return seen


def group_sizes(
    groups: Mapping[str, Iterable[str]], base_roots: Iterable[str], pkgs: Mapping[str, Pkg]
) -> dict[str, Any]:
    """Installed size (KiB) per group, given each group's root packages in image-layer order.

    ``adds_kib``: what the group adds on top of the base and the groups before it (these sum to
    the total); ``kib``: what only this group needs; ``shared``: needed by several groups.
    """
    base = closure(base_roots, pkgs)
    closures = {g: closure(roots, pkgs) for g, roots in groups.items()}
    out: dict[str, Any] = {"groups": {}, "base_kib": sum(pkgs[p].kib for p in base)}
    exclusive_all: set[str] = set()
    counted = set(base)
    for g, mine in closures.items():  # in layer order: what each group adds on top of the ones before
        added = mine - counted
        counted |= added
        out["groups"][g] = {"adds_kib": sum(pkgs[p].kib for p in added), "adds_packages": len(added)}
    for g, mine in closures.items():
        others = set(base)
        for h, theirs in closures.items():
            if h != g:
                others |= theirs
        only = mine - others
        exclusive_all |= only
        out["groups"][g].update(
            packages=len(only),
            kib=sum(pkgs[p].kib for p in only),
            largest=sorted(only, key=lambda p: -pkgs[p].kib)[:5],
        )
    shared = set().union(*closures.values()) - base - exclusive_all if closures else set()
    out["shared"] = {
        "packages": len(shared),
        "kib": sum(pkgs[p].kib for p in shared),
        "names": sorted(shared),
    }
    return out


def _tree_kib(paths: Iterable[str]) -> int:
    """Disk use of files (not what symlinks point at) under each path, in KiB."""
    total = 0
    for top in paths:
        for dirpath, _dirs, files in os.walk(top):
            for f in files:
                try:
                    total += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
                except OSError:
                    pass
    return total // 1024


def measure(manifest_path: str = MANIFEST) -> dict[str, Any]:
    """The full report for this image (run inside it)."""
    manifest = json.loads(Path(manifest_path).read_text())
    fmt = "${db:Status-Abbrev}\t${Package}\t${Installed-Size}\t${Provides}\t${Pre-Depends}\t${Depends}\t${Recommends}\n"
    pkgs = parse_status(
        subprocess.run(["dpkg-query", "-W", "-f", fmt], capture_output=True, text=True, check=True).stdout
    )
    manual = subprocess.run(
        ["apt-mark", "showmanual"], capture_output=True, text=True, check=False
    ).stdout.split()
    order = manifest.get("order") or sorted(manifest["groups"])
    groups = {g: manifest["groups"][g]["packages"] for g in order if manifest["groups"][g]["enabled"]}
    in_groups = {p for roots in groups.values() for p in roots}
    essential = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${Essential} ${Priority}\n"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    base_roots = {p for p in manual if p not in in_groups}
    base_roots |= {line.split()[0] for line in essential if " yes " in line or line.endswith(" required")}
    base_roots -= in_groups
    report = group_sizes(groups, base_roots, pkgs)
    for g, info in manifest["groups"].items():
        entry = report["groups"].setdefault(
            g, {"packages": 0, "kib": 0, "largest": [], "adds_kib": 0, "adds_packages": 0}
        )
        entry["enabled"] = info["enabled"]
        entry["optional"] = info["optional"]
        entry["modules"] = info["modules"]
        entry["software_kib"] = _tree_kib(info["roots"])
    report["hidden_kib"] = _tree_kib(["/usr/lib/minihpc/hidden/bin"])
    return report


def format_table(report: Mapping[str, Any]) -> str:
    """A readable table: MB per group."""
    rows = [f"{'group':<10} {'adds MB':>8} {'only MB':>8} {'built MB':>9}  modules"]
    for g, info in report["groups"].items():
        state = "" if info.get("enabled", True) else " (optional, off)"
        rows.append(
            f"{g:<10} {info['adds_kib'] / 1024:>8.1f} {info['kib'] / 1024:>8.1f} "
            f"{info.get('software_kib', 0) / 1024:>9.2f}  {', '.join(info.get('modules', []))}{state}"
        )
    sh = report["shared"]
    rows.append(f"{'shared':<10} {'':>8} {sh['kib'] / 1024:>8.1f} {'':>9}  needed by more than one group")
    rows.append(
        f"{'base':<10} {report['base_kib'] / 1024:>8.1f} {'':>8} {'':>9}  the image without any group"
    )
    rows.append(
        "adds = on top of the base and the groups above it (Debian installed size); "
        "only = needed by no other group"
    )
    rows.append(f"moved off PATH (copied up by the image layer): {report['hidden_kib'] / 1024:.1f} MB")
    return "\n".join(rows)
