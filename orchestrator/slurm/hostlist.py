"""Slurm host lists: ``arc-c[001-003,005]`` <-> ``["arc-c001", "arc-c002", ...]``.

One implementation serves the config loader, the scheduler, every command and
``scontrol show hostnames``; Slurm's own rules apply (zero padding is kept,
ranges are merged only between names of the same prefix and width).
"""

from __future__ import annotations

import re
from functools import cmp_to_key

__all__ = ["HostlistError", "compress", "expand", "host_cmp", "host_key", "parse_range"]


class HostlistError(ValueError):
    """A malformed host list expression."""


_MAX_HOSTS = 65536


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside brackets."""
    parts: list[str] = []
    depth = 0
    cur: list[str] = []
    for ch in text:
        if ch == "[":
            depth += 1
            if depth > 1:
                raise HostlistError(f"Invalid hostlist: {text}")
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise HostlistError(f"Invalid hostlist: {text}")
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise HostlistError(f"Invalid hostlist: {text}")
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def parse_range(item: str) -> tuple[int, int] | None:
    """Slurm's _parse_single_range: ``N``, ``LO-HI``, or ``LO-`` (just LO); digits only, LO <= HI.
    None when it is not one (Slurm says ``_parse_single_range: Invalid range: `ITEM'``): host list
    brackets and scancel's ``N_[1-3]`` are read by the same rule."""
    lo_s, _, hi_s = item.partition("-")
    if not lo_s.isdigit() or (hi_s and not hi_s.isdigit()):
        return None
    lo = int(lo_s)
    hi = int(hi_s) if hi_s else lo
    return (lo, hi) if lo <= hi else None


def _expand_ranges(body: str, whole: str) -> list[str]:
    out: list[str] = []
    for item in body.split(","):
        item = item.strip()
        bounds = parse_range(item)
        if bounds is None or bounds[1] - bounds[0] > _MAX_HOSTS:
            raise HostlistError(f"Invalid hostlist: {whole}")
        lo_s, dash, hi_s = item.partition("-")
        if dash and hi_s:
            lo, hi = bounds
            width = len(lo_s) if lo_s.startswith("0") or len(lo_s) == len(hi_s) else 0
            out.extend(str(n).zfill(width) for n in range(lo, hi + 1))
        else:
            out.append(lo_s)
    return out


def expand(text: str) -> list[str]:
    """Expand a host list into names, in order, keeping duplicates out."""
    names: list[str] = []
    seen: set[str] = set()
    for part in _split_top(text.strip()):
        pieces = re.split(r"(\[[^\]]*\])", part)
        combos = [""]
        for piece in pieces:
            if piece.startswith("["):
                vals = _expand_ranges(piece[1:-1], text)
                combos = [c + v for c in combos for v in vals]
                if len(combos) > _MAX_HOSTS:
                    raise HostlistError(f"Invalid hostlist: {text}")
            elif piece:
                if "]" in piece or "[" in piece:
                    raise HostlistError(f"Invalid hostlist: {text}")
                combos = [c + piece for c in combos]
        for name in combos:
            if name not in seen:
                seen.add(name)
                names.append(name)
    return names


def _number_at(s: str, i: int) -> int:
    j = i
    while j < len(s) and s[j].isdigit():
        j += 1
    return int(s[i:j])


def host_cmp(a: str, b: str) -> int:
    """Slurm's node-name order (sinfo's _sort_by_node_list, squeue's step sort): at the first difference,
    two digits compare as the numbers they start (``n9`` before ``n10``), anything else as strings."""
    n = 0
    while n < len(a) and n < len(b) and a[n] == b[n]:
        n += 1
    if n < len(a) and n < len(b) and a[n].isdigit() and b[n].isdigit():
        return _number_at(a, n) - _number_at(b, n)
    return (a > b) - (a < b)


host_key = cmp_to_key(host_cmp)
"""``sorted(names, key=host_key)``: names in Slurm's node-name order."""

_TAIL = re.compile(r"^(.*?)(\d+)$")


def compress(names: list[str] | tuple[str, ...]) -> str:
    """Compress names into Slurm's bracketed form, sorted the way Slurm sorts them."""
    groups: dict[tuple[str, int], set[int]] = {}
    plain: list[str] = []
    order: list[tuple[str, int]] = []
    for name in names:
        m = _TAIL.match(name)
        if not m:
            if name not in plain:
                plain.append(name)
            continue
        prefix, digits = m.group(1), m.group(2)
        key = (prefix, len(digits))
        if key not in groups:
            groups[key] = set()
            order.append(key)
        groups[key].add(int(digits))
    out: list[str] = sorted(plain)
    for key in sorted(order):
        prefix, width = key
        nums = sorted(groups[key])
        ranges: list[str] = []
        start = prev = nums[0]
        for n in [*nums[1:], None]:
            if n is not None and n == prev + 1:
                prev = n
                continue
            if start == prev:
                ranges.append(str(start).zfill(width))
            else:
                ranges.append(f"{str(start).zfill(width)}-{str(prev).zfill(width)}")
            if n is not None:
                start = prev = n
        if len(nums) == 1:
            out.append(f"{prefix}{ranges[0]}")
        else:
            out.append(f"{prefix}[{','.join(ranges)}]")
    return ",".join(out)
