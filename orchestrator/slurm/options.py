"""Command-line parsing exactly as Slurm's commands see it (glibc ``getopt_long``).

Users and tools type Slurm options every way getopt_long allows: ``--time=5``,
``--time 5``, ``--ti`` abbreviations, ``-N2`` clusters, options after positional
arguments, repeats. Reproducing getopt_long (and its error texts) once here means
every command accepts and refuses the same argument vectors real Slurm does.

The second half is the job-option table shared by sbatch, srun and salloc: the
long and short names in Slurm's own order (the order matters for the
"ambiguous" message), and the setters that validate values with Slurm's words
and fill the ``job`` dict of a submit request.
"""

from __future__ import annotations

import os

from orchestrator.lazylog import get_logger

TYPE_CHECKING = False  # importing typing (or collections.abc) costs a user command milliseconds
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Any

log = get_logger(__name__)

__all__ = [
    "NO_ARG",
    "OPTIONAL",
    "REQUIRED",
    "JobOptions",
    "LongOpt",
    "OptionError",
    "OptionValueError",
    "getopt_long",
    "job_longopts",
    "job_shortopts",
    "parse_signal",
    "strtol",
    "strtol_at",
]

NO_ARG, REQUIRED, OPTIONAL = 0, 1, 2


class LongOpt:
    """One ``struct option``: a long name, whether it takes an argument, and its key.

    Two entries with the same ``key`` and ``has_arg`` are aliases (glibc does not
    call an abbreviation ambiguous when every match means the same option).
    A plain class: commands must not pay for importing dataclasses at start-up.
    """

    __slots__ = ("has_arg", "key", "name")

    def __init__(self, name: str, has_arg: int, key: str) -> None:
        self.name = name
        self.has_arg = has_arg
        self.key = key

    def __repr__(self) -> str:
        return f"LongOpt({self.name!r}, {self.has_arg}, {self.key!r})"


class OptionError(Exception):
    """A getopt_long error; ``message`` is glibc's line (``prog: unrecognized option '--x'``).

    ``parsed`` holds the options read before the bad one: a ``--help`` there still
    wins, because the C programs act on each option as getopt returns it.
    """

    def __init__(self, message: str, parsed: list[tuple[str, str | None]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.parsed = parsed or []


class OptionValueError(Exception):
    """An option value Slurm refuses; ``message`` lacks the ``prog: error:`` prefix."""

    def __init__(self, message: str, exit_code: int = 255, fatal: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.fatal = fatal


def _parse_shortopts(spec: str) -> tuple[dict[str, int], bool]:
    """``"+A:ab::"`` -> ({"A": REQUIRED, "a": NO_ARG, "b": OPTIONAL}, require_order)."""
    require_order = False
    i = 0
    if spec[:1] in ("+", "-"):
        require_order = spec[0] == "+"
        i = 1
    out: dict[str, int] = {}
    while i < len(spec):
        ch = spec[i]
        i += 1
        kind = NO_ARG
        if spec[i:i + 2] == "::":
            kind = OPTIONAL
            i += 2
        elif spec[i:i + 1] == ":":
            kind = REQUIRED
            i += 1
        out[ch] = kind
    return out, require_order


def getopt_long(prog: str, args: Sequence[str], shortopts: str,
                longopts: Sequence[LongOpt]) -> tuple[list[tuple[str, str | None]], list[str]]:
    """Parse ``args`` (argv without argv[0]) the way glibc's getopt_long does.

    Returns ``(options, positionals)``: options as ``(key, value)`` in order (the key
    of a short option is its letter), positionals in order. With a leading ``+`` in
    ``shortopts`` (or POSIXLY_CORRECT set) parsing stops at the first positional and
    everything after it is positional, as for ``sbatch script args``.
    Raises OptionError with glibc's message on the first bad option.
    """
    shorts, require_order = _parse_shortopts(shortopts)
    if os.environ.get("POSIXLY_CORRECT") is not None:
        require_order = True
    opts: list[tuple[str, str | None]] = []
    positionals: list[str] = []
    try:
        _scan(prog, args, shorts, require_order, longopts, opts, positionals)
    except OptionError as exc:
        exc.parsed = opts
        raise
    return opts, positionals


def _scan(prog: str, args: Sequence[str], shorts: dict[str, int], require_order: bool,
          longopts: Sequence[LongOpt], opts: list[tuple[str, str | None]], positionals: list[str]) -> None:
    i = 0
    n = len(args)
    while i < n:
        arg = args[i]
        if arg == "--":
            positionals.extend(args[i + 1:])
            break
        if not arg.startswith("-") or arg == "-":
            if require_order:
                positionals.extend(args[i:])
                break
            positionals.append(arg)
            i += 1
            continue
        if arg.startswith("--"):
            i = _long(prog, args, i, longopts, opts)
            continue
        # a cluster of short options
        j = 1
        while j < len(arg):
            ch = arg[j]
            kind = shorts.get(ch)
            if kind is None or ch == ":":
                raise OptionError(f"{prog}: invalid option -- '{ch}'")
            rest = arg[j + 1:]
            if kind == NO_ARG:
                opts.append((ch, None))
                j += 1
                continue
            if rest:
                opts.append((ch, rest))
            elif kind == OPTIONAL:
                opts.append((ch, None))
            elif i + 1 < n:
                i += 1
                opts.append((ch, args[i]))
            else:
                raise OptionError(f"{prog}: option requires an argument -- '{ch}'")
            break
        i += 1


def _long(prog: str, args: Sequence[str], i: int, longopts: Sequence[LongOpt],
          opts: list[tuple[str, str | None]]) -> int:
    """Handle ``args[i]`` (a ``--name[=value]``); returns the next index."""
    text = args[i][2:]
    name, eq, value = text.partition("=")
    found: LongOpt | None = None
    for lo in longopts:
        if lo.name == name:
            found = lo
            break
    if found is None:
        matches = [lo for lo in longopts if lo.name.startswith(name)]
        if matches:
            first = matches[0]
            ambiguous = [lo for lo in matches[1:] if (lo.has_arg, lo.key) != (first.has_arg, first.key)]
            if ambiguous:
                names = " ".join(f"'--{lo.name}'" for lo in [first, *ambiguous])
                raise OptionError(f"{prog}: option '--{text}' is ambiguous; possibilities: {names}")
            found = first
    if found is None:
        raise OptionError(f"{prog}: unrecognized option '--{text}'")
    if eq:
        if found.has_arg == NO_ARG:
            raise OptionError(f"{prog}: option '--{found.name}' doesn't allow an argument")
        opts.append((found.key, value))
        return i + 1
    if found.has_arg == REQUIRED:
        if i + 1 >= len(args):
            raise OptionError(f"{prog}: option '--{found.name}' requires an argument")
        opts.append((found.key, args[i + 1]))
        return i + 2
    opts.append((found.key, None))
    return i + 1


def longopts(table: Iterable[tuple[str, int, str]]) -> tuple[LongOpt, ...]:
    """Build a long-option table from ``(name, has_arg, key)`` triples, in order."""
    return tuple(LongOpt(n, a, k) for n, a, k in table)


def strtol_at(s: str, pos: int = 0) -> tuple[int, int]:
    """C's strtol from ``pos``: leading white space, a sign, digits; returns the value and where it
    stopped (no digits read as 0, with nothing consumed: ``pos`` comes back)."""
    j = pos
    while j < len(s) and s[j] in " \t\n\v\f\r":
        j += 1
    k = j
    if k < len(s) and s[k] in "+-":
        k += 1
    while k < len(s) and s[k].isdigit():
        k += 1
    try:
        return int(s[j:k]), k
    except ValueError:
        return 0, pos


def strtol(s: str) -> tuple[int, str]:
    """strtol_at as Slurm's commands read ids from arguments: the value and the rest of the text."""
    value, end = strtol_at(s)
    return value, s[end:]


# --------------------------------------------------------------------------------------------
# The job-option table shared by sbatch, srun and salloc.
#
# (long name, has_arg, key, commands). ``key`` is the short letter when the option has one,
# else the long name of the option it belongs to (aliases share keys). ``commands`` is a set
# of "sbatch"/"srun"/"salloc" ("*" = all three). Order is Slurm's, so abbreviations and the
# ambiguity message come out the same.

_ALL = "*"
_SB = "sbatch"
_SR = "srun"
_SA = "salloc"

JOB_OPTION_TABLE: tuple[tuple[str, int, str, str], ...] = (
    ("accel-bind", REQUIRED, "accel-bind", _SR),
    ("account", REQUIRED, "A", _ALL),
    ("acctg-freq", REQUIRED, "acctg-freq", _ALL),
    ("array", REQUIRED, "a", _SB),
    ("batch", REQUIRED, "batch", _SB),
    ("bcast", OPTIONAL, "bcast", _SR),
    ("bcast-exclude", REQUIRED, "bcast-exclude", _SR),
    ("begin", REQUIRED, "b", _ALL),
    ("bell", NO_ARG, "bell", _SA),
    ("bb", REQUIRED, "bb", _ALL),
    ("bbf", REQUIRED, "bbf", _ALL),
    ("cluster-constraint", REQUIRED, "cluster-constraint", _ALL),
    ("chdir", REQUIRED, "D", _ALL),
    ("cluster", REQUIRED, "cluster", _ALL),
    ("clusters", REQUIRED, "M", _ALL),
    ("comment", REQUIRED, "comment", _ALL),
    ("compress", OPTIONAL, "compress", _SR),
    ("container", REQUIRED, "container", _ALL),
    ("context", REQUIRED, "context", _ALL),
    ("contiguous", NO_ARG, "contiguous", _ALL),
    ("constraint", REQUIRED, "C", _ALL),
    ("core-spec", REQUIRED, "S", _ALL),
    ("cores-per-socket", REQUIRED, "cores-per-socket", _ALL),
    ("cpu-bind", REQUIRED, "cpu-bind", _SR),
    ("cpu_bind", REQUIRED, "cpu-bind", _SR),
    ("cpu-freq", REQUIRED, "cpu-freq", _ALL),
    ("cpus-per-gpu", REQUIRED, "cpus-per-gpu", _ALL),
    ("cpus-per-task", REQUIRED, "c", _ALL),
    ("deadline", REQUIRED, "deadline", _ALL),
    ("debugger-test", NO_ARG, "debugger-test", _SR),
    ("delay-boot", REQUIRED, "delay-boot", _ALL),
    ("dependency", REQUIRED, "d", _ALL),
    ("disable-status", NO_ARG, "X", _SR),
    ("distribution", REQUIRED, "m", _ALL),
    ("epilog", REQUIRED, "epilog", _SR),
    ("error", REQUIRED, "e", _SB + _SR),
    ("exact", NO_ARG, "exact", _SR),
    ("exclude", REQUIRED, "x", _ALL),
    ("exclusive", OPTIONAL, "exclusive", _ALL),
    ("export", REQUIRED, "export", _SB + _SR),
    ("export-file", REQUIRED, "export-file", _SB),
    ("extra-node-info", REQUIRED, "B", _ALL),
    ("get-user-env", OPTIONAL, "get-user-env", _SB + _SA),
    ("gid", REQUIRED, "gid", _ALL),
    ("gpu-bind", REQUIRED, "gpu-bind", _ALL),
    ("gpu-freq", REQUIRED, "gpu-freq", _ALL),
    ("gpus", REQUIRED, "G", _ALL),
    ("gpus-per-node", REQUIRED, "gpus-per-node", _ALL),
    ("gpus-per-socket", REQUIRED, "gpus-per-socket", _ALL),
    ("gpus-per-task", REQUIRED, "gpus-per-task", _ALL),
    ("gres", REQUIRED, "gres", _ALL),
    ("gres-flags", REQUIRED, "gres-flags", _ALL),
    ("help", NO_ARG, "h", _ALL),
    ("het-group", REQUIRED, "het-group", _SR),
    ("hint", REQUIRED, "hint", _ALL),
    ("hold", NO_ARG, "H", _ALL),
    ("ignore-pbs", NO_ARG, "ignore-pbs", _SB),
    ("immediate", OPTIONAL, "I", _SR + _SA),
    ("input", REQUIRED, "i", _SB + _SR),
    ("interactive", NO_ARG, "interactive", _SR),
    ("jobid", REQUIRED, "jobid", _SR),
    ("job-name", REQUIRED, "J", _ALL),
    ("kill-command", OPTIONAL, "K", _SA),
    ("kill-on-bad-exit", OPTIONAL, "K", _SR),
    ("kill-on-invalid-dep", REQUIRED, "kill-on-invalid-dep", _SB),
    ("label", NO_ARG, "l", _SR),
    ("licenses", REQUIRED, "L", _ALL),
    ("mail-type", REQUIRED, "mail-type", _ALL),
    ("mail-user", REQUIRED, "mail-user", _ALL),
    ("threads", REQUIRED, "T", _SR),
    ("mcs-label", REQUIRED, "mcs-label", _ALL),
    ("mem", REQUIRED, "mem", _ALL),
    ("mem-bind", REQUIRED, "mem-bind", _ALL),
    ("mem-per-cpu", REQUIRED, "mem-per-cpu", _ALL),
    ("mem-per-gpu", REQUIRED, "mem-per-gpu", _ALL),
    ("mincpus", REQUIRED, "mincpus", _ALL),
    ("mpi", REQUIRED, "mpi", _SR),
    ("msg-timeout", REQUIRED, "msg-timeout", _SR),
    ("multi-prog", NO_ARG, "multi-prog", _SR),
    ("network", REQUIRED, "network", _ALL),
    ("nice", OPTIONAL, "nice", _ALL),
    ("no-allocate", NO_ARG, "Z", _SR),
    ("no-bell", NO_ARG, "no-bell", _SA),
    ("no-kill", OPTIONAL, "k", _ALL),
    ("no-shell", NO_ARG, "no-shell", _SA),
    ("no-requeue", NO_ARG, "no-requeue", _SB),
    ("nodefile", REQUIRED, "F", _ALL),
    ("nodelist", REQUIRED, "w", _ALL),
    ("nodes", REQUIRED, "N", _ALL),
    ("ntasks", REQUIRED, "n", _ALL),
    ("ntasks-per-core", REQUIRED, "ntasks-per-core", _ALL),
    ("ntasks-per-gpu", REQUIRED, "ntasks-per-gpu", _ALL),
    ("ntasks-per-node", REQUIRED, "ntasks-per-node", _ALL),
    ("ntasks-per-socket", REQUIRED, "ntasks-per-socket", _ALL),
    ("ntasks-per-tres", REQUIRED, "ntasks-per-tres", _ALL),
    ("open-mode", REQUIRED, "open-mode", _SB + _SR),
    ("output", REQUIRED, "o", _SB + _SR),
    ("overcommit", NO_ARG, "O", _ALL),
    ("overlap", OPTIONAL, "overlap", _SR),
    ("oversubscribe", NO_ARG, "s", _ALL),
    ("pack-group", REQUIRED, "het-group", _SR),
    ("parsable", NO_ARG, "parsable", _SB),
    ("partition", REQUIRED, "p", _ALL),
    ("power", REQUIRED, "power", _ALL),
    ("prefer", REQUIRED, "prefer", _ALL),
    ("preserve-env", NO_ARG, "E", _SR),
    ("priority", REQUIRED, "priority", _ALL),
    ("profile", REQUIRED, "profile", _ALL),
    ("prolog", REQUIRED, "prolog", _SR),
    ("propagate", OPTIONAL, "propagate", _SB + _SR),
    ("pty", NO_ARG, "pty", _SR),
    ("qos", REQUIRED, "q", _ALL),
    ("quiet", NO_ARG, "Q", _ALL),
    ("quit-on-interrupt", NO_ARG, "quit-on-interrupt", _SR),
    ("reboot", NO_ARG, "reboot", _ALL),
    ("relative", REQUIRED, "r", _SR),
    ("requeue", NO_ARG, "requeue", _SB),
    ("reservation", REQUIRED, "reservation", _ALL),
    ("resv-ports", OPTIONAL, "resv-ports", _SR),
    ("send-libs", OPTIONAL, "send-libs", _SR),
    ("signal", REQUIRED, "signal", _ALL),
    ("slurmd-debug", REQUIRED, "slurmd-debug", _SR),
    ("sockets-per-node", REQUIRED, "sockets-per-node", _ALL),
    ("spread-job", NO_ARG, "spread-job", _ALL),
    ("switches", REQUIRED, "switches", _ALL),
    ("task-epilog", REQUIRED, "task-epilog", _SR),
    ("task-prolog", REQUIRED, "task-prolog", _SR),
    ("tasks-per-node", REQUIRED, "ntasks-per-node", _ALL),
    ("test-only", NO_ARG, "test-only", _SB + _SR),
    ("thread-spec", REQUIRED, "thread-spec", _ALL),
    ("threads-per-core", REQUIRED, "threads-per-core", _ALL),
    ("time", REQUIRED, "t", _ALL),
    ("time-min", REQUIRED, "time-min", _ALL),
    ("tmp", REQUIRED, "tmp", _ALL),
    ("uid", REQUIRED, "uid", _ALL),
    ("unbuffered", NO_ARG, "u", _SR),
    ("use-min-nodes", NO_ARG, "use-min-nodes", _ALL),
    ("verbose", NO_ARG, "v", _ALL),
    ("version", NO_ARG, "V", _ALL),
    ("usage", NO_ARG, "usage", _ALL),
    ("wait", NO_ARG, "W", _SB),
    ("wait-all-nodes", REQUIRED, "wait-all-nodes", _SB + _SA),
    ("wait", REQUIRED, "W", _SR),
    ("wckey", REQUIRED, "wckey", _ALL),
    ("whole", NO_ARG, "whole", _SR),
    ("wrap", REQUIRED, "wrap", _SB),
    ("x11", OPTIONAL, "x11", _SR + _SA),
)

_ONE_LETTER = {name for name, _a, key, _c in JOB_OPTION_TABLE if len(key) == 1}


def _for(command: str) -> list[tuple[str, int, str]]:
    return [(n, a, k) for n, a, k, c in JOB_OPTION_TABLE if c == _ALL or command in c]


def job_longopts(command: str) -> tuple[LongOpt, ...]:
    """The long options ``command`` (sbatch, srun or salloc) accepts, in Slurm's order."""
    return longopts(_for(command))


def job_shortopts(command: str) -> str:
    """The getopt short-option string for ``command``; ``+`` because the script/program ends options."""
    out = ["+"]
    seen: set[str] = set()
    for _name, has_arg, key in _for(command):
        if len(key) != 1 or key in seen:
            continue
        seen.add(key)
        out.append(key + {NO_ARG: "", REQUIRED: ":", OPTIONAL: "::"}[has_arg])
    return "".join(out)


# --------------------------------------------------------------------------------------------
# Value parsing with Slurm's messages.

SIGNALS: dict[str, int] = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ABRT": 6, "KILL": 9, "ALRM": 14, "TERM": 15, "USR1": 10,
    "USR2": 12, "URG": 23, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22, "XCPU": 24,
}


def signal_number(text: str) -> int:
    """Slurm's sig_name2num: a number, or a name with or without ``SIG``; 0 when unknown."""
    s = text.strip()
    num = _leading_int(s)
    if num is not None:
        digits, rest = num
        return digits if not rest.strip() else 0
    if s[:3].upper() == "SIG":
        s = s[3:]
    for name, val in SIGNALS.items():
        if s[:len(name)].upper() == name and not s[len(name):].strip():
            return val
    return 0


def _leading_int(s: str) -> tuple[int, str] | None:
    """strtol: optional sign and digits at the start; None when there are no digits."""
    j = 0
    if j < len(s) and s[j] in "+-":
        j += 1
    k = j
    while k < len(s) and s[k].isdigit():
        k += 1
    if k == j:
        return None
    return int(s[:k]), s[k:]


def parse_signal(text: str, batch_allowed: bool = True) -> tuple[int, int, str]:
    """``--signal=[[R][B]:]SIG[@secs]`` -> (signal, seconds, flags "R"/"B"/"RB").

    Raises ValueError where Slurm says ``Invalid --signal specification``.
    """
    s = text
    flags = ""
    if s[:1].upper() == "R":
        flags += "R"
        s = s[1:]
    if batch_allowed:
        if s[:1].upper() == "B":
            flags += "B"
            s = s[1:]
        if s[:1].upper() == "R" and "R" not in flags:
            flags += "R"
            s = s[1:]
    if s[:1] == ":":
        s = s[1:]
    sig_part, at, secs_part = s.partition("@")
    num = signal_number(sig_part)
    if num < 1 or num > 0xFFFF:
        raise ValueError(text)
    if not at:
        return num, 60, flags
    lead = _leading_int(secs_part)
    if lead is None:
        secs, rest = 0, secs_part
    else:
        secs, rest = lead
    if secs < 0 or secs > 0xFFFF or rest:
        raise ValueError(text)
    return num, secs, flags


def parse_int(option: str, value: str | None, positive: bool = True) -> int:
    """Slurm's parse_int: ``Invalid numeric value "x" for --opt.`` (exit 1)."""
    lead = _leading_int(value or "")
    if value is None or lead is None or lead[1] or lead[0] < 0 or (positive and lead[0] <= 0):
        raise OptionValueError(f'Invalid numeric value "{value}" for {option}.', exit_code=1)
    return lead[0]


def str_to_mbytes(text: str) -> int | None:
    """Slurm's str_to_mbytes: MB with optional K/M/G/T (and a trailing B); None if invalid."""
    lead = _leading_int(text)
    if lead is None or lead[0] < 0:
        return None
    num, rest = lead
    if not rest:
        return num
    unit, tail = rest[0].upper(), rest[1:]
    if tail not in ("", "B", "b"):
        return None
    if unit == "K":
        return (num + 1023) // 1024
    if unit == "M":
        return num
    if unit == "G":
        return num * 1024
    if unit == "T":
        return num * 1024 * 1024
    return None


def _node_count(text: str) -> int | None:
    """Slurm's _str_to_nodes: digits with an optional k/m multiplier."""
    lead = _leading_int(text)
    if lead is None:
        return None
    num, rest = lead
    rest = rest.strip()
    if rest.lower() == "k":
        return num * 1024
    if rest.lower() == "m":
        return num * 1024 * 1024
    return num if not rest else None


def verify_node_count(text: str) -> tuple[int, int]:
    """``-N min[-max]`` -> (min, max); max 0 when not given as a range (Slurm's rule)."""
    if "-" in text:
        lo_s, _, hi_s = text.partition("-")
        lo = _node_count(lo_s)
        if lo is None:
            raise OptionValueError(f'"{lo_s}" is not a valid node count')
        if lo < 0:
            lo = 1
        hi = _node_count(hi_s)
        if hi is None:
            raise OptionValueError(f'"{hi_s}" is not a valid node count')
    else:
        n = _node_count(text)
        if n is None or n < 0:
            raise OptionValueError(f'"{text}" is not a valid node count')
        lo = hi = n
    if hi != 0 and hi < lo:
        raise OptionValueError(f"Maximum node count {hi} is less than minimum node count {lo}")
    return lo, hi


_MAIL_TYPES = {"NONE", "ARRAY_TASKS", "BEGIN", "END", "FAIL", "INVALID_DEPEND", "REQUEUE", "ALL",
               "STAGE_OUT", "TIME_LIMIT", "TIME_LIMIT_90", "TIME_LIMIT_80", "TIME_LIMIT_50"}


def _valid_mail_type(text: str) -> bool:
    toks = [t for t in text.split(",") if t]
    return bool(toks) and any(t.upper() in _MAIL_TYPES for t in toks)


# --------------------------------------------------------------------------------------------
# The options of one job request.


class JobOptions:
    """Everything sbatch/srun/salloc options say about a job, before it becomes a request."""

    def __init__(self, command: str = "sbatch") -> None:
        self.command: str = command
        self.name: str | None = None
        self.partition: str = ""
        self.account: str = ""
        self.qos: str = ""
        self.comment: str = ""
        self.time_limit: int | None = None
        self.time_min: int | None = None
        self.min_nodes: int = 1
        self.max_nodes: int = 0
        self.nodes_set: bool = False
        self.ntasks: int = 1
        self.ntasks_set: bool = False
        self.ntasks_per_node: int = 0
        self.cpus_per_task: int = 1
        self.cpus_set: bool = False
        self.mem_per_cpu: int = 0
        self.mem_per_node: int = 0
        self.mem_set_by: str = ""
        self.exclusive: bool = False
        self.oversubscribe: bool = False
        self.req_nodes: str = ""
        self.exc_nodes: str = ""
        self.features: str = ""
        self.gres: str = ""
        self.gpus_per_task: int = 0
        self.gpus: str = ""
        self.gpus_per_node: str = ""
        self.dependency: str = ""
        self.requeue: bool | None = None
        self.kill_on_invalid_dep: bool | None = None  # None: the cluster's DependencyParameters decide
        self.open_mode: str = ""
        self.signal: str = ""
        self.mail_type: str = ""
        self.mail_user: str = ""
        self.work_dir: str = ""
        self.std_out: str = ""
        self.std_err: str = ""
        self.std_in: str = ""
        self.begin_time: float = 0.0
        self.deadline: float = 0.0
        self.hold: bool = False
        self.array: str = ""
        self.export: str = ""
        self.export_set: bool = False
        self.nice: int | None = None
        self.priority: str = ""
        self.reservation: str = ""
        self.licenses: str = ""
        self.clusters: str = ""
        self.wrap: str | None = None
        self.parsable: bool = False
        self.test_only: bool = False
        self.quiet: bool = False
        self.verbose: int = 0
        self.wait: bool = False
        self.no_kill: bool = False
        self.overcommit: bool = False
        self.distribution: str = ""
        self.wckey: str = ""
        self.extra: dict[str, str | None] = {}
        self.cli_keys: set[str] = set()
        self.env_keys: set[str] = set()
        self.given: dict[str, str | None] = {}  # key -> its last value, for -v's "defined options"

    def apply(self, key: str, value: str | None, by_env: bool = False) -> None:
        """Apply one parsed option; raises OptionValueError with Slurm's wording."""
        (self.env_keys if by_env else self.cli_keys).add(key)
        self.given[key] = value
        setter = _SETTERS.get(key)
        if setter is None:
            # accepted, kept for the record (Slurm options minihpc does not act on)
            self.extra[key] = value
            return
        setter(self, value)

    def apply_all(self, opts: Iterable[tuple[str, str | None]]) -> None:
        for key, value in opts:
            self.apply(key, value)

    def apply_env(self, environ: dict[str, str] | os._Environ[str], table: dict[str, str]) -> None:
        """Options from input environment variables (``SBATCH_PARTITION``...), Slurm's way.

        A flag variable counts when empty, ``yes`` or a non-zero number; anything else
        resets it, as slurm_process_option does for environment flags.
        """
        kinds = {k: a for _n, a, k, _c in JOB_OPTION_TABLE}
        for var, key in table.items():
            value = environ.get(var)
            if value is None:
                continue
            if kinds.get(key) == NO_ARG:
                lead = _leading_int(value)
                on = value == "" or value.lower() == "yes" or (lead is not None and lead[0] != 0
                                                               and not lead[1])
                if not on:
                    continue
                self.apply(key, None, by_env=True)
            elif kinds.get(key) == OPTIONAL and value == "":
                self.apply(key, None, by_env=True)
            else:
                self.apply(key, value, by_env=True)

    def validate(self) -> None:
        """Checks Slurm makes once all options are in (sbatch's _opt_verify)."""
        mem_cli = [k for k in ("mem", "mem-per-cpu", "mem-per-gpu") if k in self.cli_keys]
        if len(mem_cli) > 1:
            raise OptionValueError("--mem, --mem-per-cpu, and --mem-per-gpu are mutually exclusive.",
                                   exit_code=1, fatal=True)
        if mem_cli == ["mem"]:
            self.mem_per_cpu = 0
        elif mem_cli == ["mem-per-cpu"]:
            self.mem_per_node = 0
        elif not mem_cli and len([k for k in ("mem", "mem-per-cpu") if k in self.env_keys]) > 1:
            raise OptionValueError("SLURM_MEM_PER_CPU, SLURM_MEM_PER_GPU, and SLURM_MEM_PER_NODE are "
                                   "mutually exclusive.", exit_code=1, fatal=True)
        if self.quiet and self.verbose:
            raise OptionValueError("don't specify both --verbose (-v) and --quiet (-Q)", exit_code=1)

    def job(self, *, cwd: str, submit_host: str, command_path: str) -> dict[str, Any]:
        """The ``job`` dict of a submit request (Job field names, see scheduler/job.py)."""
        job: dict[str, Any] = {
            "name": self.name if self.name is not None else "",
            "partition": self.partition,
            "account": self.account,
            "qos": self.qos,
            "comment": self.comment,
            "time_limit": self.time_limit,
            "num_nodes": self.min_nodes if self.nodes_set else 1,
            "max_nodes": self.max_nodes if self.nodes_set else 0,
            "nodes_explicit": self.nodes_set,
            "num_tasks": self.ntasks,
            "ntasks_explicit": self.ntasks_set,
            "ntasks_per_node": self.ntasks_per_node,
            "cpus_per_task": self.cpus_per_task,
            "mem_per_cpu": self.mem_per_cpu,
            "mem_per_node": self.mem_per_node,
            "exclusive": self.exclusive,
            "req_nodes": self.req_nodes,
            "exc_nodes": self.exc_nodes,
            "features": self.features,
            "gres": self.gres,
            "gpus_per_task": self.gpus_per_task,
            "dependency": self.dependency,
            "requeue": self.requeue,  # None: the cluster's JobRequeue decides
            "open_mode": self.open_mode or "truncate",
            "signal": self.signal,
            "mail_type": self.mail_type,
            "mail_user": self.mail_user,
            "work_dir": self.work_dir or cwd,
            "command": command_path,
            "std_out": self.std_out,
            "std_err": self.std_err,
            "std_in": self.std_in or "/dev/null",
            "begin_time": self.begin_time,
            "hold": self.hold,
            "array": self.array,
            "batch": self.command == "sbatch",
            "submit_host": submit_host,
            "export": self.export or "ALL",
        }
        if self.kill_on_invalid_dep is not None:
            job["kill_on_invalid_dep"] = self.kill_on_invalid_dep
        if self.gpus:
            job["gpus"] = self.gpus
        if self.gpus_per_node:
            job["gpus_per_node"] = self.gpus_per_node
        return job


_SHOWN_AS = {"exclusive": "exclusive", "requeue": "requeue", "no-requeue": "no-requeue"}
"""Flags whose "defined options" value is their own name; other flags show ``set``."""
_NOT_SHOWN = {"e", "help", "usage", "version"}
"""Set options that slurm_print_set_options leaves out (sbatch -v -e F lists no error line)."""


def _mbytes_text(mb: int) -> str:
    """Slurm's mbytes_to_str: ``200``, ``2G``, ``3T`` (megabytes bare, larger units when exact)."""
    n, unit = mb, 0
    while n and n % 1024 == 0 and unit < 3:
        n //= 1024
        unit += 1
    return f"{n}{' GTP'[unit]}" if unit else str(n)


def defined_options(o: JobOptions, cwd: str) -> list[str]:
    """What -v makes sbatch, srun and salloc print first (slurm_print_set_options): each set option in
    the option table's order as ``%-20s: %s``, between ``defined options`` and ``end of defined options``."""
    from orchestrator.slurm.timefmt import format_limit_long, format_timestamp

    names: dict[str, str] = {}
    for name, _arg, key in _for(o.command):
        names.setdefault(key, name)
    lines = ["defined options", "-------------------- --------------------"]
    for key, name in names.items():
        if key not in o.given or key in _NOT_SHOWN:
            continue
        raw = o.given[key]
        value: str
        if key == "v":
            value = str(o.verbose)
        elif key in ("t", "time-min"):
            value = format_limit_long(o.time_limit if key == "t" else o.time_min)
        elif key == "mem":
            value = _mbytes_text(o.mem_per_node)
        elif key == "mem-per-cpu":
            value = _mbytes_text(o.mem_per_cpu)
        elif key == "b":
            value = format_timestamp(o.begin_time)
        elif key == "o":
            path = raw or ""
            value = path if path.startswith("/") else f"{(o.work_dir or cwd).rstrip('/')}/{path}"
        elif key == "gres":
            value = f"gres:{raw}"
        elif key == "signal":
            value = (raw or "").split("@")[0].split(":")[-1]
        elif key == "open-mode":
            value = (raw or "")[:1]
        elif key in _SHOWN_AS and not raw:
            value = _SHOWN_AS[key]
        elif raw is None:
            value = "set"
        else:
            value = raw
        lines.append(f"{name:<20}: {value}")
    lines += ["-------------------- --------------------", "end of defined options"]
    return lines


def _time(o: JobOptions, v: str | None, option: str = "--time") -> int:
    from orchestrator.slurm.timefmt import INFINITE, TimeFormatError, parse_limit
    try:
        if not v or not _valid_timespec(v):
            raise TimeFormatError(v or "")
        mins = parse_limit(v)
    except TimeFormatError:
        raise OptionValueError(f"Invalid {option} specification") from None
    return INFINITE if mins == 0 else mins


def _valid_timespec(s: str) -> bool:
    """Slurm's _is_valid_timespec, plus the UNLIMITED spellings."""
    if s.upper() in ("-1", "INFINITE", "UNLIMITED"):
        return True
    digit = dash = colon = 0
    in_digit = False
    for ch in s:
        if ch.isdigit():
            if not in_digit:
                digit += 1
                in_digit = True
        elif ch == "-":
            in_digit = False
            dash += 1
            if colon:
                return False
        elif ch == ":":
            in_digit = False
            colon += 1
        else:
            return False
    if not digit or dash > 1 or colon > 2:
        return False
    if dash:
        return not ((colon == 1 and digit < 3) or (colon == 2 and digit < 4))
    return not ((colon == 1 and digit < 2) or (colon == 2 and digit < 3))


def _set_time(o: JobOptions, v: str | None) -> None:
    o.time_limit = _time(o, v)


def _set_time_min(o: JobOptions, v: str | None) -> None:
    o.time_min = _time(o, v, "--time-min")


def _set_distribution(o: JobOptions, v: str | None) -> None:
    """-m block|cyclic|arbitrary|plane=N[:node[:socket]][,Pack|NoPack], checked as verify_dist_type does."""
    text = v or ""
    base, _, pack = text.partition(",")
    ok = pack.lower() in ("", "pack", "nopack")
    if base.lower().startswith("plane="):
        ok = ok and base[6:].isdigit() and int(base[6:]) > 0
    else:
        levels = base.lower().split(":")
        ok = ok and 1 <= len(levels) <= 3 and levels[0] in ("block", "cyclic", "arbitrary", "*") \
            and all(lv in ("block", "cyclic", "fcyclic", "*") for lv in levels[1:])
    if not ok:
        raise OptionValueError("Invalid --distribution specification")
    o.distribution = text


def _set_nodes(o: JobOptions, v: str | None) -> None:
    o.min_nodes, o.max_nodes = verify_node_count(v or "")
    o.nodes_set = True


def _set_ntasks(o: JobOptions, v: str | None) -> None:
    o.ntasks = parse_int("--ntasks", v)
    o.ntasks_set = True


def _set_cpt(o: JobOptions, v: str | None) -> None:
    o.cpus_per_task = parse_int("--cpus-per-task", v)
    o.cpus_set = True


def _set_tpn(o: JobOptions, v: str | None) -> None:
    o.ntasks_per_node = parse_int("--ntasks-per-node", v)


def _set_mem(o: JobOptions, v: str | None) -> None:
    mb = str_to_mbytes(v or "")
    if mb is None:
        raise OptionValueError("Invalid --mem specification")
    o.mem_per_node = mb
    o.mem_per_cpu = 0 if o.command == "srun" else o.mem_per_cpu
    o.mem_set_by = "--mem"


def _set_mem_per_cpu(o: JobOptions, v: str | None) -> None:
    mb = str_to_mbytes(v or "")
    if mb is None:
        raise OptionValueError("Invalid --mem-per-cpu specification")
    o.mem_per_cpu = mb
    o.mem_set_by = "--mem-per-cpu"


def _set_signal(o: JobOptions, v: str | None) -> None:
    try:
        parse_signal(v or "", batch_allowed=o.command == "sbatch")
    except ValueError:
        raise OptionValueError("Invalid --signal specification") from None
    o.signal = v or ""


def _set_open_mode(o: JobOptions, v: str | None) -> None:
    c = (v or "")[:1].lower()
    if c == "a":
        o.open_mode = "append"
    elif c == "t":
        o.open_mode = "truncate"
    else:
        raise OptionValueError("Invalid --open-mode specification")


def _set_kill_inv_dep(o: JobOptions, v: str | None) -> None:
    word = (v or "").lower()
    if word not in ("yes", "no"):
        raise OptionValueError("Invalid --kill-on-invalid-dep specification")
    o.kill_on_invalid_dep = word == "yes"


def _date_option(name: str, v: str | None) -> float:
    """A --begin/--deadline time; Slurm's parse_time() prints why it refused one before the option's error."""
    from orchestrator.slurm.timefmt import DateSpecError, parse_date
    try:
        when = parse_date(v or "")
    except DateSpecError as exc:
        import sys

        sys.stderr.write(f"{exc}\n")
        when = 0.0
    if not when:
        raise OptionValueError(f"Invalid --{name} specification")
    return when


def _set_begin(o: JobOptions, v: str | None) -> None:
    o.begin_time = _date_option("begin", v)


def _set_deadline(o: JobOptions, v: str | None) -> None:
    o.deadline = _date_option("deadline", v)


def _set_exclusive(o: JobOptions, v: str | None) -> None:
    if v is None or v.lower() == "exclusive":
        o.exclusive = True
    elif v.lower() == "oversubscribe":
        o.exclusive = False
        o.oversubscribe = True
    elif v.lower() in ("user", "mcs"):
        o.exclusive = True
    else:
        raise OptionValueError("Invalid --exclusive specification")


def _set_mail_type(o: JobOptions, v: str | None) -> None:
    if not _valid_mail_type(v or ""):
        raise OptionValueError("Invalid --mail-type specification")
    o.mail_type = ",".join(x for x in (o.mail_type, v or "") if x)


def _set_nice(o: JobOptions, v: str | None) -> None:
    lead = _leading_int(v) if v is not None else (100, "")
    n = lead[0] if lead else 0
    if abs(n) > 2147483645:
        raise OptionValueError("Invalid --nice value, out of range (+/- 2147483645)")
    o.nice = n


def _set_chdir(o: JobOptions, v: str | None) -> None:
    path = v or ""
    o.work_dir = path if path.startswith("/") else os.path.join(os.getcwd(), path)


def _set_gpus_per_task(o: JobOptions, v: str | None) -> None:
    text = v or ""
    count = text.rpartition(":")[2]
    if not count.isdigit():
        raise OptionValueError("Invalid generic resource (gres) specification", exit_code=1)  # as sbatch says
    o.gpus_per_task = int(count)


def _set_gres(o: JobOptions, v: str | None) -> None:
    text = v or ""
    if text.lower() in ("help", "list"):
        raise OptionValueError("Valid gres options are:\ngpu[[:type]:count]", exit_code=0)
    if text.lower() == "none":
        o.gres = ""
        return
    parts = []
    for item in text.split(","):
        item = item.strip()
        if item.startswith("gres:"):
            item = item[5:]
        if item:
            parts.append(item)
    o.gres = ",".join(parts)


def _set_export(o: JobOptions, v: str | None) -> None:
    o.export = v or ""
    o.export_set = True


def _str(attr: str) -> Any:
    def setter(o: JobOptions, v: str | None) -> None:
        setattr(o, attr, v or "")
    return setter


def _flag(attr: str, value: Any = True) -> Any:
    def setter(o: JobOptions, v: str | None) -> None:
        setattr(o, attr, value)
    return setter


def _set_verbose(o: JobOptions, v: str | None) -> None:
    o.verbose += 1


def _set_name(o: JobOptions, v: str | None) -> None:
    o.name = v or ""


def _set_wrap(o: JobOptions, v: str | None) -> None:
    o.wrap = v or ""


def _set_no_kill(o: JobOptions, v: str | None) -> None:
    if v is not None and v.lower() not in ("set", "off"):
        raise OptionValueError("Invalid --no-kill specification")
    o.no_kill = v is None or v.lower() == "set"


_SETTERS: dict[str, Any] = {
    "A": _str("account"),
    "a": _str("array"),
    "b": _set_begin,
    "D": _set_chdir,
    "M": _str("clusters"),
    "cluster": _str("clusters"),
    "comment": _str("comment"),
    "C": _str("features"),
    "c": _set_cpt,
    "deadline": _set_deadline,
    "d": _str("dependency"),
    "m": _set_distribution,
    "e": _str("std_err"),
    "x": _str("exc_nodes"),
    "exclusive": _set_exclusive,
    "export": _set_export,
    "G": _str("gpus"),
    "gpus-per-node": _str("gpus_per_node"),
    "gpus-per-task": _set_gpus_per_task,
    "gres": _set_gres,
    "H": _flag("hold"),
    "i": _str("std_in"),
    "J": _set_name,
    "k": _set_no_kill,
    "L": _str("licenses"),
    "mail-type": _set_mail_type,
    "mail-user": _str("mail_user"),
    "mem": _set_mem,
    "mem-per-cpu": _set_mem_per_cpu,
    "nice": _set_nice,
    "no-requeue": _flag("requeue", False),
    "kill-on-invalid-dep": _set_kill_inv_dep,
    "w": _str("req_nodes"),
    "N": _set_nodes,
    "n": _set_ntasks,
    "ntasks-per-node": _set_tpn,
    "open-mode": _set_open_mode,
    "o": _str("std_out"),
    "O": _flag("overcommit"),
    "s": _flag("oversubscribe"),
    "parsable": _flag("parsable"),
    "p": _str("partition"),
    "priority": _str("priority"),
    "q": _str("qos"),
    "Q": _flag("quiet"),
    "requeue": _flag("requeue", True),
    "reservation": _str("reservation"),
    "signal": _set_signal,
    "test-only": _flag("test_only"),
    "t": _set_time,
    "time-min": _set_time_min,
    "v": _set_verbose,
    "W": _flag("wait"),
    "wckey": _str("wckey"),
    "wrap": _set_wrap,
}


def signal_name(num: int) -> str:
    """The short name Slurm prints for a signal number (``USR2``), or the number."""
    for name, val in SIGNALS.items():
        if val == num:
            return name
    return str(num)


def is_single_letter(name: str) -> bool:
    """Whether a long option of the job table also has a short form."""
    return name in _ONE_LETTER


# --------------------------------------------------------------------------------------------
# Input environment variables and --export.

SBATCH_ENV: dict[str, str] = {
    "SBATCH_ACCOUNT": "A", "SBATCH_ARRAY_INX": "a", "SBATCH_CLUSTERS": "M", "SLURM_CLUSTERS": "M",
    "SBATCH_CONSTRAINT": "C", "SBATCH_DEBUG": "v", "SBATCH_EXCLUSIVE": "exclusive", "SBATCH_EXPORT": "export",
    "SBATCH_GRES": "gres", "SBATCH_GPUS": "G", "SBATCH_GPUS_PER_NODE": "gpus-per-node",
    "SBATCH_GPUS_PER_TASK": "gpus-per-task", "SBATCH_JOB_NAME": "J", "SBATCH_MEM_PER_CPU": "mem-per-cpu",
    "SBATCH_MEM_PER_NODE": "mem", "SBATCH_NO_KILL": "k", "SBATCH_NO_REQUEUE": "no-requeue",
    "SBATCH_OPEN_MODE": "open-mode", "SBATCH_OVERCOMMIT": "O", "SBATCH_PARTITION": "p", "SBATCH_QOS": "q",
    "SBATCH_REQUEUE": "requeue", "SBATCH_RESERVATION": "reservation", "SBATCH_SIGNAL": "signal",
    "SBATCH_TIMELIMIT": "t", "SBATCH_WAIT": "W", "SBATCH_WCKEY": "wckey", "SBATCH_ERROR": "e",
    "SBATCH_INPUT": "i", "SBATCH_OUTPUT": "o",
}
"""sbatch's input environment variables and the option each one sets (sbatch(1) INPUT ENVIRONMENT)."""


def export_environment(spec: str, environ: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    """The environment a job gets under ``--export=spec`` (sbatch(1)); SLURM_* always pass.

    ``ALL`` (or empty): everything. ``NONE``: only SLURM_* variables. A list: the named
    variables (``NAME`` takes the current value, ``NAME=value`` sets one) plus SLURM_*;
    with ``ALL`` in the list the whole environment comes too and wins over list values.
    """
    text = spec.strip()
    if not text or text.upper() == "ALL":
        return dict(environ)
    slurm = {k: v for k, v in environ.items() if k.startswith("SLURM_")}
    if text.upper() == "NONE":
        return slurm
    out: dict[str, str] = {}
    with_all = False
    for item in _split_export(text):
        if item.upper() == "ALL":
            with_all = True
            continue
        if item.upper() == "NONE":
            continue
        name, eq, value = item.partition("=")
        if eq:
            out[name] = value
        elif name in environ:
            out[name] = environ[name]
    out.update(slurm)
    if with_all:
        out.update(environ)
    return out


def _split_export(text: str) -> list[str]:
    """Split an --export list on commas, keeping commas inside a value (``A=1,2`` stays whole
    when what follows the comma is not ``NAME`` or ``NAME=``)."""
    parts = text.split(",")
    out: list[str] = []
    for part in parts:
        head = part.partition("=")[0]
        if out and "=" in out[-1] and not (head.replace("_", "a").isalnum() and head[:1] and not head[0].isdigit()):
            out[-1] += "," + part
        else:
            out.append(part)
    return [p for p in out if p]
