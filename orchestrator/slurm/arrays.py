"""Job array specifications (``--array=1-15:4%2``) and the compact index ranges squeue prints.

A pending array is stored as one record whose remaining indices are a range
string (``3-5,9``), so ten thousand tasks cost one row until they start.
"""

from __future__ import annotations

from orchestrator.slurm.options import strtol_at

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


def parse_array(spec: str, max_array_size: int = 1001) -> ArraySpec:
    """Parse ``1-20``, ``1-15:4``, ``1,3,5``, ``0-9%2``; every index must be below MaxArraySize.

    As leniently as slurmctld: empty list items are skipped, an item may stop at the ``%``
    (``%2`` alone is task 0), and the throttle is read like atoi() (``%x`` is no throttle).
    No items at all (``,``) is not an array: the spec comes back with no ids.
    """
    text, pct, t = spec.partition("%")
    throttle = 0
    if pct:
        value, _ = strtol_at(t, 0)
        throttle = value & 0xFFFFFFFF
        if throttle >= 0xFFFFFFFE:
            throttle = 0
    ids: set[int] = set()
    steps: list[int] = []
    items = [i for i in text.split(",") if i]
    if pct and (not items or text.endswith(",")):
        items.append("")  # the item the % ends: empty reads as 0
    for item in items:
        lo, pos = strtol_at(item, 0)
        hi, step, ranged = lo, 1, False
        if item[pos:pos + 1] == "-":
            ranged = True
            hi, pos = strtol_at(item, pos + 1)
            if item[pos:pos + 1] == ":":
                step, pos = strtol_at(item, pos + 1)
        if pos != len(item) or lo < 0 or hi < lo or step < 1 or hi >= max_array_size:
            raise ArraySpecError(spec)
        ids.update(range(lo, hi + 1, step))
        if ranged and ":" in item:
            steps.append(step)
    # SLURM_ARRAY_TASK_STEP is the first ":N" written, else 1 (2,4,6 has step 1, as in Slurm)
    return ArraySpec(sorted(ids), throttle, steps[0] if steps else 1)


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
