"""Filename patterns of ``--output/--error/--input``: ``%j``, ``%A_%a``, ``%4t``, ``%%``...

The node daemon opens a job's files under these names and srun expands its own,
so one implementation keeps ``slurm-%j.out`` and ``log_%A_%a.txt`` identical
everywhere. Rules follow slurmstepd's batch expansion: a number after ``%``
zero-pads (at most 10), ``%%`` is a literal ``%``, unknown letters stay as
typed, and a backslash anywhere turns expansion off (escapes are removed).
"""

from __future__ import annotations

from orchestrator.lazylog import get_logger

log = get_logger(__name__)

__all__ = ["NO_VAL", "default_output", "expand", "expand_path", "remove_slashes"]

NO_VAL = 0xFFFFFFFE
"""What ``%a`` prints outside an array (Slurm's NO_VAL)."""

MAX_WIDTH = 10


def remove_slashes(text: str) -> str | None:
    """Strip escaping backslashes (``\\\\`` keeps one); None when there were none."""
    if "\\" not in text:
        return None
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 < len(text) and text[i + 1] == "\\":
                out.append("\\")
                i += 2
            else:
                i += 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _value(letter: str, v: dict[str, object], width: int) -> str | None:
    def num(n: object) -> str:
        return str(n).zfill(width) if width else str(n)

    if letter == "a":
        return num(v["array_task_id"] if v["array_task_id"] is not None else NO_VAL)
    if letter == "A":
        return num(v["array_job_id"] if v["array_task_id"] is not None and v["array_job_id"] else v["job_id"])
    if letter == "j":
        return num(v["job_id"])
    step = v["step_id"]
    if letter == "J":
        return num(v["job_id"]) if step is None or step == "batch" else f"{num(v['job_id'])}.{step}"
    if letter == "s":
        return "batch" if step is None or step == "batch" else num(step)
    if letter == "n":
        return num(v["node_index"])
    if letter == "N":
        return str(v["node"]).split(".")[0]
    if letter == "t":
        return num(v["task_id"] if v["task_id"] is not None else 0)
    if letter == "u":
        return str(v["user"])
    if letter == "x":
        return str(v["job_name"])
    return None


def expand(pattern: str, *, job_id: int, array_job_id: int = 0, array_task_id: int | None = None,
           user: str = "", job_name: str = "", node: str = "", node_index: int = 0,
           step_id: int | str | None = None, task_id: int | None = None) -> str:
    """Expand ``%`` sequences for one job (and, for srun, one step, node and task).

    ``step_id`` None or ``"batch"`` means the batch script (``%J`` is the job id,
    ``%s`` is ``batch``).
    """
    if "%" not in pattern and "\\" not in pattern:
        return pattern
    esc = remove_slashes(pattern)
    if esc is not None:
        return esc
    values: dict[str, object] = {
        "job_id": job_id, "array_job_id": array_job_id, "array_task_id": array_task_id, "user": user,
        "job_name": job_name, "node": node, "node_index": node_index, "step_id": step_id,
        "task_id": task_id,
    }
    out: list[str] = []
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch != "%":
            out.append(ch)
            i += 1
            continue
        if i + 1 < n and pattern[i + 1] == "%":
            out.append("%")
            i += 2
            continue
        j = i + 1
        digits = ""
        while j < n and pattern[j].isdigit():
            digits += pattern[j]
            j += 1
        width = min(int(digits), MAX_WIDTH) if digits else 0
        if digits and j >= n:
            out.append(digits[-1])  # "%4" at the very end: Slurm keeps the last digit
            break
        value = _value(pattern[j], values, width) if j < n else None
        if value is None:
            # an unknown letter stays as typed (after a width, from the width's last digit on)
            out.append(digits[-1] if digits else "%")
            i = j if digits else i + 1
            continue
        out.append(value)
        i = j + 1
    return "".join(out)


def expand_path(pattern: str, work_dir: str, **values: object) -> str:
    """A pattern as a full path: relative names are under the job's working directory."""
    name = expand(pattern, **values)  # type: ignore[arg-type]
    if pattern.startswith("/"):
        return name
    base = work_dir if work_dir.endswith("/") else work_dir + "/"
    return base + name


def default_output(array: bool) -> str:
    """The pattern sbatch uses when no ``--output`` is given."""
    return "slurm-%A_%a.out" if array else "slurm-%j.out"
