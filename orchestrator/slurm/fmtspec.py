"""Slurm's output format specs: squeue/sinfo ``-o`` (``%.18i``), ``-O`` lists, sacct ``-o field%N``.

Tools parse these columns by position and width, so the rules here follow Slurm's
printing code to the character: ``.`` right-justifies; left-justified fields are
always cut to their width; right-justified fields are cut only where Slurm cuts
them; ``-O`` fields default to 20 characters; unknown letters print themselves.

A format is compiled once into a ``%``-template plus one value function per
column, so ten thousand rows cost one string formatting each.
"""

from __future__ import annotations

import time as _time

from orchestrator.lazylog import get_logger

TYPE_CHECKING = False  # importing typing (or collections.abc) costs a user command milliseconds
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

log = get_logger(__name__)

__all__ = [
    "Column",
    "Spec",
    "compile_format",
    "convert_num_unit",
    "make_time_str",
    "parse_format",
    "parse_long_format",
    "parse_sacct_format",
    "print_str",
]


class Spec:
    """One parsed field: ``key`` is the letter (``-o``) or name (``-O``/sacct).

    ``literal`` is what an unknown field prints instead (Slurm's "invalid" field).
    A plain class rather than a dataclass: user commands must not pay for importing
    dataclasses (and inspect) at start-up.
    """

    __slots__ = ("key", "literal", "right", "suffix", "width")

    def __init__(self, key: str, width: int = 0, right: bool = False, suffix: str = "",
                 literal: str | None = None) -> None:
        self.key = key
        self.width = width
        self.right = right
        self.suffix = suffix
        self.literal = literal

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Spec) and (self.key, self.width, self.right, self.suffix, self.literal) == (
            other.key, other.width, other.right, other.suffix, other.literal)

    def __hash__(self) -> int:
        return hash((self.key, self.width, self.right, self.suffix, self.literal))

    def __repr__(self) -> str:
        return f"Spec({self.key!r}, {self.width}, {self.right}, {self.suffix!r}, {self.literal!r})"


class Column:
    """How one field prints: its header, whether values are cut to width, its value function.

    ``field`` marks a column whose value is simply ``row[field]`` (never None): the
    renderer reads those without a function call per row, which is what keeps
    ten thousand rows cheap.
    """

    __slots__ = ("cut", "field", "header", "needs", "value")

    def __init__(self, header: str, value: Callable[[Any], str], cut: bool = True,
                 needs: tuple[str, ...] = (), field: str | None = None) -> None:
        self.header = header
        self.value = value
        self.cut = cut
        self.needs = needs
        self.field = field


def print_str(text: str, width: int, right: bool, cut: bool) -> str:
    """Slurm's ``_print_str``: pad to ``width``; left fields always cut, right ones when ``cut``."""
    if width > 0:
        if right:
            return f"{text:>{width}.{width}}" if cut else f"{text:>{width}}"
        return f"{text:<{width}.{width}}"
    if width < 0:
        return text + " "
    return text


def _piece(width: int, right: bool, cut: bool) -> str:
    """The printf piece equivalent to print_str for one column."""
    if width > 0:
        if right:
            return f"%{width}.{width}s" if cut else f"%{width}s"
        return f"%-{width}.{width}s"
    if width < 0:
        return "%s "
    return "%s"


def _esc(text: str) -> str:
    return text.replace("%", "%%")


def parse_format(fmt: str) -> tuple[str, list[Spec]]:
    """Parse a squeue/sinfo ``-o`` format into (prefix, specs).

    Like Slurm, text before the first ``%`` is a prefix, each ``%`` starts a field
    ``[.][width]letter`` whose trailing text is its suffix, and empty fields
    (``%%``) vanish.
    """
    pos = fmt.find("%")
    if pos < 0:
        return fmt, []
    prefix = fmt[:pos]
    specs: list[Spec] = []
    for token in fmt[pos:].split("%"):
        if not token:
            continue
        i = 0
        right = False
        if token[0] == ".":
            right = True
            i = 1
        width = 0
        while i < len(token) and token[i].isdigit():
            width = width * 10 + int(token[i])
            i += 1
        key = token[i] if i < len(token) else ""
        specs.append(Spec(key, width, right, token[i + 1:], None))
    return prefix, specs


def expand_all(letters: str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
               sep: str = "|") -> str:
    """The format ``%all`` stands for: every letter, separated by ``|``."""
    return sep.join("%" + ch for ch in letters)


def parse_long_format(fmt: str, default_width: int = 20) -> list[Spec]:
    """Parse ``-O/--Format`` lists: ``name[:[.]size][suffix]`` separated by commas."""
    specs: list[Spec] = []
    for token in fmt.split(","):
        if not token:
            continue
        name, colon, rest = token.partition(":")
        if not colon:
            specs.append(Spec(name, default_width, False, ""))
            continue
        right = rest.startswith(".")
        if right:
            rest = rest[1:]
        j = 0
        if j < len(rest) and rest[j] in "+-":
            j += 1
        while j < len(rest) and rest[j].isdigit():
            j += 1
        num = rest[:j]
        try:
            width = int(num) if num not in ("", "+", "-") else 0
        except ValueError:
            width = 0
        specs.append(Spec(name, width, right, rest[j:]))
    return specs


def parse_sacct_format(fmt: str) -> list[tuple[str, int | None, bool]]:
    """sacct ``-o``: ``name[%[-]N]`` items -> (name, width or None, right-justified default flag).

    A negative width (``%-10``) left-justifies in sacct; returned as (name, 10, False).
    """
    out: list[tuple[str, int | None, bool]] = []
    for item in fmt.replace(" ", ",").split(","):
        if not item:
            continue
        name, pct, num = item.partition("%")
        if not pct:
            out.append((name, None, True))
            continue
        try:
            width = int(num)
        except ValueError:
            width = 0
        if width < 0:
            out.append((name, -width, False))
        else:
            out.append((name, width, True))
    return out


def compile_format(prefix: str, specs: Sequence[Spec], columns: dict[str, Column],
                   widths: dict[str, int] | None = None) -> tuple[str, list[Callable[[Any], str] | str], str]:
    """Compile specs into (row template, value functions, header line).

    ``widths`` forces a width for some keys (sinfo's computed partition and node
    list widths). Unknown keys print their literal text.
    """
    template = [_esc(prefix)]
    header = [prefix]
    funcs: list[Callable[[Any], str] | str] = []
    for spec in specs:
        col = columns.get(spec.key)
        if col is None:
            lit = spec.literal if spec.literal is not None else spec.suffix
            template.append(_esc(lit))
            header.append(lit)
            continue
        width = widths.get(spec.key, spec.width) if widths else spec.width
        template.append(_piece(width, spec.right, col.cut) + _esc(spec.suffix))
        header.append(print_str(col.header, width, spec.right, True) + spec.suffix)
        funcs.append(col.field if col.field else col.value)
    return "".join(template), funcs, "".join(header)


def render(template: str, funcs: Sequence[Callable[[Any], str] | str], rows: Sequence[Any]) -> list[str]:
    """Format every row with a compiled template (column by column: one comprehension each)."""
    if not funcs:
        return [template.replace("%%", "%")] * len(rows)
    columns: list[list[Any]] = []
    for f in funcs:
        if isinstance(f, str):
            columns.append([r[f] for r in rows])
        else:
            columns.append([f(r) for r in rows])
    return [template % values for values in zip(*columns, strict=True)]


# --------------------------------------------------------------------------------------------
# Values as Slurm prints them.

_UNITS = "\0KMGTP?"


def convert_num_unit(num: float, orig: int = 0, exact: bool = True, spec: int | None = None) -> str:
    """Slurm's convert_num_unit with CONVERT_NUM_UNIT_EXACT: ``2048`` -> ``2K``, ``1536M`` -> ``1.50G``.

    ``orig`` is the unit of ``num`` (0 none, 1 K, 2 M...); ``exact`` False leaves it there (sacct
    --noconvert); ``spec`` names the unit to print in whatever the value (sacct --units: 100M as
    ``0.10G``, ``102400K``).
    """
    n = float(num)
    unit = orig
    if spec is not None:
        n *= 1024.0 ** (orig - spec)
        unit = spec
    elif exact:
        while n >= 1024 and int(n) % 512 == 0:
            n /= 1024
            unit += 1
    if n == 0:
        return "0"
    suffix = _UNITS[unit] if 0 <= unit < len(_UNITS) else "?"
    suffix = "" if suffix == "\0" else suffix
    if float(int(n)) == n:
        return f"{int(n)}{suffix}"
    return f"{n:.2f}{suffix}"


def make_time_str(epoch: float | None, zero: str = "N/A") -> str:
    """slurm_make_time_str: ISO local time (or ``SLURM_TIME_FORMAT``); ``zero`` for 0/None."""
    if not epoch:
        return zero
    import os
    fmt = os.environ.get("SLURM_TIME_FORMAT", "standard")
    tm = _time.localtime(int(epoch))
    if fmt in ("", "standard"):
        return _time.strftime("%Y-%m-%dT%H:%M:%S", tm)
    if fmt == "relative":
        return _relative(tm)
    return _time.strftime(fmt, tm)


def _relative(tm: _time.struct_time) -> str:
    now = _time.localtime()
    days = (_time.mktime((tm.tm_year, tm.tm_mon, tm.tm_mday, 0, 0, 0, 0, 0, -1))
            - _time.mktime((now.tm_year, now.tm_mon, now.tm_mday, 0, 0, 0, 0, 0, -1))) / 86400
    d = round(days)
    if d == -1:
        return _time.strftime("Ystday %H:%M", tm)
    if d == 0:
        return _time.strftime("%H:%M:%S", tm)
    if d == 1:
        return _time.strftime("Tomorr %H:%M", tm)
    if abs(d) < 7:
        return _time.strftime("%a %H:%M", tm)
    if tm.tm_year == now.tm_year:
        return _time.strftime("%-d %b %H:%M", tm)
    return _time.strftime("%-d %b %Y", tm)


def ctime2(epoch: float | None = None) -> str:
    """The date line of ``squeue -l``/``sinfo -l``: ``Tue Nov 24 02:43:11 2026``."""
    return _time.strftime("%a %b %d %H:%M:%S %Y", _time.localtime(epoch))


# --------------------------------------------------------------------------------------------
# Node states (sinfo, scontrol show node).

NODE_UNKNOWN, NODE_DOWN, NODE_IDLE, NODE_ALLOCATED, NODE_ERROR, NODE_MIXED, NODE_FUTURE = range(7)
FLAG_DRAIN = 1 << 9
FLAG_COMPLETING = 1 << 10
FLAG_NO_RESPOND = 1 << 11
FLAG_POWERED_DOWN = 1 << 12
FLAG_FAIL = 1 << 13
FLAG_MAINT = 1 << 15
FLAG_REBOOT = 1 << 16

_BASE = {"UNKNOWN": NODE_UNKNOWN, "DOWN": NODE_DOWN, "IDLE": NODE_IDLE, "ALLOCATED": NODE_ALLOCATED,
         "ALLOC": NODE_ALLOCATED, "MIXED": NODE_MIXED, "MIX": NODE_MIXED, "FUTURE": NODE_FUTURE,
         "ERROR": NODE_ERROR}
_FLAGS = {"DRAIN": FLAG_DRAIN, "COMPLETING": FLAG_COMPLETING, "NOT_RESPONDING": FLAG_NO_RESPOND,
          "NO_RESPOND": FLAG_NO_RESPOND, "FAIL": FLAG_FAIL, "MAINT": FLAG_MAINT,
          "POWERED_DOWN": FLAG_POWERED_DOWN, "REBOOT": FLAG_REBOOT, "REBOOT_REQUESTED": FLAG_REBOOT}


def node_state_code(state: str, flags: Sequence[str] = ()) -> int:
    """A node record's state and flags as Slurm's numeric node_state (for sorting and naming)."""
    s = (state or "UNKNOWN").upper()
    code = 0
    if s == "COMPLETING":
        code = NODE_IDLE | FLAG_COMPLETING
    elif s in ("DRAINED", "DRAINING", "DRAIN"):
        code = (NODE_ALLOCATED if s == "DRAINING" else NODE_IDLE) | FLAG_DRAIN
    else:
        code = _BASE.get(s.rstrip("*~#!%$@^"), NODE_UNKNOWN)
    for f in flags:
        code |= _FLAGS.get(f.upper(), 0)
    return code


# A node state's long name (node_state_string) and compact name (node_state_compact), by key.
_STATE_NAMES: dict[str, tuple[str, str]] = {
    "MAINT": ("MAINT", "MAINT"), "DRAINING": ("DRAINING", "DRNG"), "DRAINED": ("DRAINED", "DRAIN"),
    "FAILING": ("FAILING", "FAILG"), "FAIL": ("FAIL", "FAIL"), "DOWN": ("DOWN", "DOWN"),
    "ALLOCATED": ("ALLOCATED", "ALLOC"), "COMPLETING": ("COMPLETING", "COMP"), "IDLE": ("IDLE", "IDLE"),
    "MIXED": ("MIXED", "MIX"), "FUTURE": ("FUTURE", "FUTURE"), "UNKNOWN": ("UNKNOWN", "UNK"),
}


def _node_state(code: int) -> tuple[str, str]:
    """Slurm's precedence of node states and flags: (state key, suffix)."""
    base = code & 0xF
    star = "*" if code & FLAG_NO_RESPOND else ""
    comp = bool(code & FLAG_COMPLETING)
    if code & FLAG_MAINT and not (code & FLAG_DRAIN or base in (NODE_ALLOCATED, NODE_DOWN, NODE_MIXED)):
        return "MAINT", star
    if code & FLAG_DRAIN:
        return ("DRAINING" if comp or base in (NODE_ALLOCATED, NODE_MIXED) else "DRAINED"), star
    if code & FLAG_FAIL:
        return ("FAILING" if comp or base == NODE_ALLOCATED else "FAIL"), star
    if base == NODE_DOWN:
        return "DOWN", star
    if base == NODE_ALLOCATED:
        return "ALLOCATED", star or ("+" if comp else "")
    if comp:
        return "COMPLETING", star
    return {NODE_IDLE: "IDLE", NODE_MIXED: "MIXED", NODE_FUTURE: "FUTURE"}.get(base, "UNKNOWN"), star


def node_state_string(code: int) -> str:
    """Slurm's node_state_string for the states minihpc produces (``DRAINED``, ``MIXED*``...)."""
    key, suffix = _node_state(code)
    return _STATE_NAMES[key][0] + suffix


def node_state_compact(code: int) -> str:
    """Slurm's node_state_string_compact (upper case; sinfo lowers it)."""
    key, suffix = _node_state(code)
    return _STATE_NAMES[key][1] + suffix
