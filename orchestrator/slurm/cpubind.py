"""``--cpu-bind``: srun's check of the value, and the node side's binding of each task.

srun refuses what its parser would (with its messages); the node daemon then binds
tasks as task/affinity does: the explicit forms (``map_cpu``, ``mask_cpu``, ``rank``)
as given, the unit forms (``cores``, ``threads``, ``sockets``, ``ldoms``) to a block of
the step's CPUs on the node per task, which task/affinity then reports as a
``mask_cpu`` list. It sets the SLURM_CPU_BIND* variables slurmstepd sets and prints
the ``verbose`` lines. minihpc's nodes have one core per socket and one thread per
core, so the four unit forms give the same masks. Without a --cpu-bind nothing is
bound (task/affinity's automatic binding is not modelled).
"""

from __future__ import annotations

__all__ = ["Binding", "auto_cpus", "check", "parse", "task_cpus", "verbose_line"]

_WORDS = {"q", "quiet", "v", "verbose", "one_thread", "no", "none", "rank", "rank_ldom", "socket", "sockets",
          "core", "cores", "thread", "threads", "ldom", "ldoms"}
_LISTS = (("map_cpu", "mapcpu"), ("mask_cpu", "maskcpu"), ("map_ldom", "mapldom"), ("mask_ldom", "maskldom"))
_HEX = "0123456789abcdefABCDEF"
_UNITS = {"core": "cores", "cores": "cores", "thread": "threads", "threads": "threads", "socket": "sockets",
          "sockets": "sockets", "ldom": "ldoms", "ldoms": "ldoms"}


def _tokens(value: str) -> list[str]:
    """Split on the commas that end a word, keeping ``map_cpu:0,1`` lists whole (as srun does)."""
    tokens = [""]
    for i, ch in enumerate(value):
        if ch == "," and not _starts_value(value[i + 1:]):
            tokens.append("")
        else:
            tokens[-1] += ch
    return tokens


def _starts_value(rest: str) -> bool:
    if rest[:1].isdigit():
        return True
    return all(c in _HEX for c in rest.split(",", 1)[0])


def _list_kind(token: str) -> str | None:
    low = token.lower()
    return next((names[0] for names in _LISTS if any(low.startswith(n) for n in names)), None)


def _check_list(kind: str, text: str) -> str:
    digits = _HEX if kind.startswith("mask") else "0123456789"
    for item in (i for i in text.split(",") if i):
        num = item[2:] if kind.startswith("mask") and item.startswith("0x") else item
        num, star, mult = num.partition("*")
        if star:
            odd = next((c for c in mult if not c.isdigit()), "")
            if odd:
                return f"Failed to validate number: *{mult}, the offending character is {odd}"
            if not mult or int(mult) <= 0:
                return f"Invalid {kind} multiplier: {mult}"
        odd = next((c for c in num if c not in digits), "")
        if odd:
            return f"Failed to validate number: {num}, the offending character is {odd}"
    return ""


def check(value: str) -> str:
    """The error srun prints for a --cpu-bind value it cannot parse, or ''."""
    for tok in _tokens(value):
        low = tok.lower()
        if low == "help" or low in _WORDS:
            continue
        kind = _list_kind(tok)
        if kind is None:
            return f'unrecognized --cpu-bind argument "{tok}"'
        parts = tok.replace("=", ":").split(":")
        if len(parts) < 2 or not parts[1]:
            return f'missing list for "--cpu-bind={kind}:<list>"'
        bad = _check_list(kind, parts[1])
        if bad:
            return bad
    return ""


class Binding:
    """A parsed --cpu-bind: ``kind`` is map, mask, rank, none or auto (``unit`` cores, sockets, ... or none).

    A plain class: srun imports this module to check its option, and dataclasses costs milliseconds.
    """

    __slots__ = ("items", "kind", "unit", "verbose")

    def __init__(self) -> None:
        self.kind = "auto"
        self.verbose = False
        self.items: list[str] = []  # map_cpu ids / mask_cpu hex masks, multipliers expanded
        self.unit = ""  # cores, threads, sockets or ldoms (kind auto)

    def env(self, masks: list[set[int]] | None = None, node_cpus: int = 0) -> dict[str, str]:
        """SLURM_CPU_BIND* as slurmstepd sets them (only for the forms bound here).

        A unit form comes with the ``masks`` of the node's tasks: task/affinity rewrites it to
        ``mask_cpu:`` with bit_fmt_hexmask's masks, as wide as the node has CPUs.
        """
        word = "verbose" if self.verbose else "quiet"
        if self.kind == "auto" and masks is not None:
            digits = max(1, (node_cpus + 3) // 4)
            listed = ",".join(f"0x{sum(1 << c for c in m):0{digits}X}" for m in masks)
            return {"SLURM_CPU_BIND": f"{word},mask_cpu:{listed}", "SLURM_CPU_BIND_TYPE": "mask_cpu:",
                    "SLURM_CPU_BIND_LIST": listed, "SLURM_CPU_BIND_VERBOSE": word}
        listed = ",".join(self.items)
        kind = {"map": "map_cpu:", "mask": "mask_cpu:"}.get(self.kind, self.kind)
        full = f"{word},{kind}{listed}" if self.items else f"{word},{self.kind}"
        return {"SLURM_CPU_BIND": full, "SLURM_CPU_BIND_TYPE": kind, "SLURM_CPU_BIND_LIST": listed,
                "SLURM_CPU_BIND_VERBOSE": word}


def _expand(text: str, mask: bool) -> list[str]:
    out: list[str] = []
    for item in (i for i in text.split(",") if i):
        if mask and item.startswith("0x"):
            item = item[2:]
        num, _, mult = item.partition("*")
        out.extend([num] * (int(mult) if mult else 1))
    return out


def parse(value: str) -> Binding | None:
    """The binding a (valid) --cpu-bind value asks for; None for an empty value."""
    if not value:
        return None
    b = Binding()
    for tok in _tokens(value):
        low = tok.lower()
        if low in ("v", "verbose"):
            b.verbose = True
        elif low in ("q", "quiet"):
            b.verbose = False
        elif low in ("no", "none"):
            b.kind, b.items, b.unit = "none", [], ""
        elif low == "rank":
            b.kind, b.items, b.unit = "rank", [], ""
        elif low in _UNITS:
            b.kind, b.items, b.unit = "auto", [], _UNITS[low]
        elif _list_kind(tok) in ("map_cpu", "mask_cpu"):
            kind = str(_list_kind(tok))
            b.kind = kind.split("_")[0]
            b.items = _expand(tok.replace("=", ":").split(":", 1)[1], kind == "mask_cpu")
            b.unit = ""
    return b


def auto_cpus(b: Binding, step_cpus: list[int], local_id: int, cpus_per_task: int) -> set[int] | None:
    """A unit form's CPUs for task ``local_id``: task/affinity's layout of the node's tasks over the step's
    CPUs there, ``cpus_per_task`` consecutive ones each, wrapping round when tasks outnumber CPUs."""
    if b.kind != "auto" or not b.unit or not step_cpus:
        return None
    per = max(1, cpus_per_task)
    start = local_id * per
    return {step_cpus[(start + i) % len(step_cpus)] for i in range(per)}


def task_cpus(b: Binding, local_id: int) -> set[int] | None:
    """The CPUs task ``local_id`` of a node is bound to, or None when this binding binds nothing."""
    if b.kind == "rank":
        return {local_id}
    if b.kind in ("map", "mask") and b.items:
        item = b.items[local_id % len(b.items)]
        if b.kind == "map":
            return {int(item)}
        mask = int(item, 16)
        return {i for i in range(mask.bit_length()) if mask >> i & 1}
    return None


def verbose_line(b: Binding, node: str, gtid: int, local_id: int, pid: int, cpus: set[int] | None) -> str:
    """task/affinity's report of one task's binding."""
    # (a unit form has become a mask list by the time the task starts, so it reports as MASK)
    label = {"map": "MAP ", "mask": "MASK", "rank": "RANK", "none": "NONE"}.get(b.kind, "MASK")
    mask = sum(1 << c for c in cpus) if cpus else 0
    tail = "" if b.kind == "none" else " set"
    return f"cpu-bind={label} - {node}, task {gtid:2d} {local_id:2d} [{pid}]: mask 0x{mask:x}{tail}\n"
