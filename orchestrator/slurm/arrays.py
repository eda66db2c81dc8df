"""Job array specifications (``--array=1-15:4%2``) and the compact index ranges squeue prints.

A pending array is stored as one record whose remaining indices are a range
string (``3-5,9``), so ten thousand tasks cost one row until they start.
"""

from __future__ import annotations

import re
from itertools import pairwise

__all__ = ["ArraySpec", "ArraySpecError", "format_ranges", "parse_array", "parse_ranges"]


class ArraySpecError(ValueError):
    """Slurm's "Invalid job array specification"."""


class ArraySpec:
    """A parsed ``--array`` value: the task ids and the ``%N`` throttle."""

    def __init__(self, ids: list[int], throttle: int, step: int) -> None:
        self.ids = ids
        self.throttle = throttle
        self.step = step

    @property
    def count(self) -> int:
        return len(self.ids)


_ITEM = re.compile(r"^(\d+)(?:-(\d+)(?::(\d+))?)?$")


def parse_array(spec: str, max_array_size: int = 1001) -> ArraySpec:
    """Parse ``1-20``, ``1-15:4``, ``1,3,5``, ``0-9%2``; every index must be below MaxArraySize."""
    text = spec.strip()
    throttle = 0
    if "%" in text:
        text, _, t = text.partition("%")
        if not t.isdigit():
            raise ArraySpecError(spec)
        throttle = int(t)
    if not text:
        raise ArraySpecError(spec)
    ids: set[int] = set()
    steps: list[int] = []
    for item in text.split(","):
        m = _ITEM.match(item.strip())
        if not m:
            raise ArraySpecError(spec)
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        step = int(m.group(3)) if m.group(3) is not None else 1
        if hi < lo or step < 1:
            raise ArraySpecError(spec)
        if hi >= max_array_size:
            raise ArraySpecError(spec)
        ids.update(range(lo, hi + 1, step))
        if m.group(2) is not None:
            steps.append(step)
    ordered = sorted(ids)
    if len(steps) == 1 and "," not in text:
        step = steps[0]
    else:
        gaps = {b - a for a, b in pairwise(ordered)}
        step = gaps.pop() if len(gaps) == 1 else 1
    return ArraySpec(ordered, throttle, step)


def format_ranges(ids: list[int] | set[int]) -> str:
    """``[3, 4, 5, 9]`` -> ``3-5,9``."""
    nums = sorted(ids)
    out: list[str] = []
    i = 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        out.append(str(nums[i]) if i == j else f"{nums[i]}-{nums[j]}")
        i = j + 1
    return ",".join(out)


def parse_ranges(text: str) -> list[int]:
    """The inverse of :func:`format_ranges` (steps allowed, as in ``1-9:2``)."""
    if not text:
        return []
    return parse_array(text, max_array_size=1 << 31).ids
