"""``sinfo``: partitions and nodes, grouped and formatted the way Slurm's sinfo groups them.

Nodes of a partition share a line when every field the format shows agrees
(state, reason, features...), which is why the fields in use decide the
grouping, as in Slurm. Default, ``-N``, ``-l``, ``-s``, ``-R``, ``-o`` and ``-O``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from orchestrator.commands._common import Exit, error, getopt, out, run, split_list
from orchestrator.lazylog import get_logger
from orchestrator.slurm import fmtspec as F
from orchestrator.slurm.fmtspec import Column, Spec
from orchestrator.slurm.options import NO_ARG, REQUIRED, longopts
from orchestrator.slurm.timefmt import format_duration

log = get_logger(__name__)

PROG = "sinfo"
SHORTOPTS = "adehi:lM:n:No:O:p:rRsS:t:TvV"
LONGOPTS = longopts([
    ("all", NO_ARG, "a"), ("dead", NO_ARG, "d"), ("exact", NO_ARG, "e"), ("federation", NO_ARG, "federation"),
    ("help", NO_ARG, "help"), ("hide", NO_ARG, "hide"), ("iterate", REQUIRED, "i"), ("local", NO_ARG, "local"),
    ("long", NO_ARG, "l"), ("cluster", REQUIRED, "M"), ("clusters", REQUIRED, "M"), ("nodes", REQUIRED, "n"),
    ("noconvert", NO_ARG, "noconvert"), ("noheader", NO_ARG, "h"), ("Node", NO_ARG, "N"),
    ("format", REQUIRED, "o"), ("Format", REQUIRED, "O"), ("partition", REQUIRED, "p"),
    ("responding", NO_ARG, "r"), ("list-reasons", NO_ARG, "R"), ("summarize", NO_ARG, "s"),
    ("sort", REQUIRED, "S"), ("states", REQUIRED, "t"), ("reservation", NO_ARG, "T"),
    ("usage", NO_ARG, "usage"), ("verbose", NO_ARG, "v"), ("version", NO_ARG, "V"),
    ("json", NO_ARG, "json"), ("yaml", NO_ARG, "yaml"),
])

DEF_SUMMARY = "partition:9 ,available:.5 ,time:.10 ,nodeaiot:.16 ,nodelist:0"
DEF_NODE_LONG = ("nodelist:0 ,nodes:.6 ,partition:.9 ,statelong:.11 ,cpus:4 ,socketcorethread:.8 ,memory:.6 ,"
                 "disk:.8 ,weight:.6 ,features:.8 ,reason:20")
DEF_NODE = "nodelist:0 ,nodes:.6 ,partition:.9 ,statecompact:6"
DEF_REASON_LONG = "reason:20 ,userlong:12 ,timestamp:19 ,statecompact:6 ,nodelist:0"
DEF_REASON = "reason:20 ,user:9 ,timestamp:19 ,nodelist:0"
DEF_LONG = ("partition:9 ,available:.5 ,time:.10 ,size:.10 ,root:.4 ,oversubscribe:.8 ,groups:.10 ,nodes:.6 ,"
            "statelong:.11 ,nodelist:0")
DEF = "partition:9 ,available:.5 ,time:.10 ,nodes:.6 ,statecompact:.6 ,nodelist:0"

MIN_FIELD = 9


def main(argv: list[str] | None = None) -> int:
    return run(PROG, lambda: _main(list(sys.argv[1:] if argv is None else argv)))


# ------------------------------------------------------------------------------------------------
# Groups (Slurm's sinfo_data)


class Group:
    """Nodes of one partition that print as one line."""

    def __init__(self, part: dict[str, Any] | None, part_inx: int) -> None:
        self.part = part
        self.part_inx = part_inx
        self.nodes: list[dict[str, Any]] = []
        self.names: set[str] = set()
        self.state = 0
        self.first: dict[str, Any] = {}
        self.alloc = self.idle = self.other = 0
        self.cpus_alloc = self.cpus_idle = self.cpus_other = self.cpus_total = 0
        self.cluster = ""

    def add(self, node: dict[str, Any]) -> None:
        name = node["name"]
        if name in self.names:
            return
        if not self.nodes:
            self.state = node["_code"]
            self.first = node
        self.nodes.append(node)
        self.names.add(name)
        code = node["_code"]
        base = code & 0xF
        drain_or_down = bool(code & F.FLAG_DRAIN) or base == F.NODE_DOWN
        if base in (F.NODE_ALLOCATED, F.NODE_MIXED) or code & F.FLAG_COMPLETING:
            self.alloc += 1
        elif drain_or_down:
            self.other += 1
        else:
            self.idle += 1
        cpus = int(node.get("cpus") or 0)
        used = int(node.get("alloc_cpus") or 0)
        self.cpus_total += cpus
        self.cpus_alloc += used
        if drain_or_down:
            self.cpus_other += cpus - used
        else:
            self.cpus_idle += cpus - used

    def values(self, key: str) -> list[Any]:
        return [n.get(key) for n in self.nodes]

    @property
    def nodelist(self) -> str:
        from orchestrator.slurm.hostlist import compress

        return compress([n["name"] for n in self.nodes])


def _minmax(vals: list[Any], range_form: bool = False, convert: bool = True) -> str:
    nums = [int(v or 0) for v in vals] or [0]
    lo, hi = min(nums), max(nums)

    def fmt(v: int) -> str:
        return F.convert_num_unit(v) if convert else str(v)

    if lo == hi:
        return fmt(hi)
    if range_form:
        return f"{fmt(lo)}-{fmt(hi)}"
    return f"{fmt(lo)}+"


def _minmax_plain(vals: list[Any]) -> str:
    nums = [int(v or 0) for v in vals] or [0]
    lo, hi = min(nums), max(nums)
    return str(hi) if lo == hi else f"{lo}+"


def _cpu_load(g: Group) -> str:
    loads = [float(v or 0.0) for v in g.values("cpu_load")] or [0.0]
    lo, hi = min(loads), max(loads)
    if f"{lo:.2f}" == f"{hi:.2f}":
        return f"{hi:.2f}"
    return f"{lo:.2f}-{hi:.2f}"


def _part(g: Group, key: str, default: Any = None) -> Any:
    return g.part.get(key, default) if g.part else default


def _time_limit(g: Group) -> str:
    if not g.part:
        return "n/a"
    t = g.part.get("max_time")
    if t is None or t < 0:
        return "infinite"
    return format_duration(t * 60, check=False)


def _default_time(g: Group) -> str:
    if not g.part:
        return "n/a"
    t = g.part.get("default_time")
    if t is None or t < 0:
        return "n/a"
    return format_duration(t * 60, check=False)


def _size(g: Group) -> str:
    if not g.part:
        return "n/a"
    mx = g.part.get("max_nodes")
    lo = max(1, int(g.part.get("min_nodes") or 1))
    if mx is None:
        return f"{lo}-infinite"
    return str(lo) if int(mx) == lo else f"{lo}-{mx}"


def _oversub(g: Group) -> str:
    if not g.part:
        return "n/a"
    n = int(g.part.get("oversubscribe") or 0)
    return f"FORCE:{n}" if n else "NO"


def _partition(g: Group, width: int) -> str:
    if not g.part:
        return "n/a"
    name = str(g.part["name"])
    if g.part.get("default"):
        if width == 0 or len(name) < width:
            name += "*"
        elif width > 0:
            name = name[:width - 1] + "*"
    return name


def _state_compact(g: Group) -> str:
    if not g.nodes:
        return "n/a"
    return F.node_state_compact(g.state).lower()


def _state_long(g: Group) -> str:
    if not g.nodes:
        return "n/a"
    return F.node_state_string(g.state).lower()


def _reason(g: Group) -> str:
    r = g.first.get("reason") or "none"
    return "none" if r.startswith("(null)") else str(r)


def _user(g: Group) -> str:
    return str(g.first.get("reason_user") or "Unknown") if g.first.get("reason") else "Unknown"


def _timestamp(g: Group) -> str:
    return F.make_time_str(g.first.get("reason_time"), "Unknown")


def _features(g: Group) -> str:
    return str(g.first.get("features") or "(null)")


def _gres(g: Group) -> str:
    return str(g.first.get("gres") or "(null)")


def _gres_used(g: Group) -> str:
    return str(g.first.get("gres_used") or "(null)")


def _free_mem(g: Group) -> str:
    return _minmax_plain(g.values("free_mem"))


def _sct(g: Group) -> str:
    return f"{_minmax(g.values('_sockets'))}:{_minmax(g.values('_cores'))}:{_minmax(g.values('_threads'))}"


def _c(fn: Callable[[Group], str], header: str, flag: str | None = None) -> tuple[Column, str | None]:
    return Column(header, fn, True), flag


# key -> (Column, match flag). Partition columns get their width at print time (see _render).
_LETTERS: dict[str, tuple[Column, str | None]] = {
    "a": _c(lambda g: "up" if g.part else "n/a", "AVAIL", "avail"),
    "A": _c(lambda g: f"{g.alloc}/{g.idle}", "NODES(A/I)"),
    "b": _c(_features, "ACTIVE_FEATURES", "features"),
    "B": _c(lambda g: "UNLIMITED", "MAX_CPUS_PER_NODE"),
    "c": _c(lambda g: _minmax(g.values("cpus")), "CPUS", "cpus"),
    "C": _c(lambda g: f"{g.cpus_alloc}/{g.cpus_idle}/{g.cpus_other}/{g.cpus_total}", "CPUS(A/I/O/T)", "cpus"),
    "d": _c(lambda g: _minmax(g.values("tmp_disk"), convert=False), "TMP_DISK", "disk"),
    "D": _c(lambda g: str(len(g.nodes)), "NODES"),
    "e": _c(_free_mem, "FREE_MEM", "free_mem"),
    "E": _c(_reason, "REASON", "reason"),
    "f": _c(_features, "AVAIL_FEATURES", "features"),
    "F": _c(lambda g: f"{g.alloc}/{g.idle}/{g.other}/{len(g.nodes)}", "NODES(A/I/O/T)"),
    "g": _c(lambda g: "all" if g.part else "n/a", "GROUPS"),
    "G": _c(_gres, "GRES", "gres"),
    "h": _c(_oversub, "OVERSUBSCRIBE", "oversubscribe"),
    "H": _c(_timestamp, "TIMESTAMP", "reason_time"),
    "I": _c(lambda g: "1" if g.part else "n/a", "PRIO_JOB_FACTOR"),
    "l": _c(_time_limit, "TIMELIMIT", "max_time"),
    "L": _c(_default_time, "DEFAULTTIME", "default_time"),
    "m": _c(lambda g: _minmax(g.values("memory"), convert=False), "MEMORY", "memory"),
    "M": _c(lambda g: "OFF" if g.part else "n/a", "PREEMPT_MODE"),
    "n": _c(lambda g: g.nodelist, "HOSTNAMES", "hostnames"),
    "N": _c(lambda g: g.nodelist, "NODELIST"),
    "o": _c(lambda g: g.nodelist, "NODE_ADDR", "node_addr"),
    "O": _c(_cpu_load, "CPU_LOAD", "cpu_load"),
    "p": _c(lambda g: str(_part(g, "priority_tier", 1)) if g.part else "n/a", "PRIO_TIER", "priority_tier"),
    "P": _c(lambda g: _partition(g, 0), "PARTITION", "partition"),
    "r": _c(lambda g: "no" if g.part else "n/a", "ROOT", "root"),
    "R": _c(lambda g: str(_part(g, "name", "n/a")), "PARTITION", "partition"),
    "s": _c(_size, "JOB_SIZE", "size"),
    "S": _c(lambda g: "all" if g.part else "n/a", "ALLOCNODES"),
    "t": _c(_state_compact, "STATE", "state"),
    "T": _c(_state_long, "STATE", "state"),
    "u": _c(_user, "USER", "reason_user"),
    "U": _c(lambda g: _user_long(g), "USER", "reason_user"),
    "v": _c(lambda g: str(g.first.get("version") or "N/A"), "VERSION", "version"),
    "V": _c(lambda g: g.cluster or "N/A", "CLUSTER"),
    "w": _c(lambda g: _minmax_plain([n.get("weight", 1) for n in g.nodes]), "WEIGHT", "weight"),
    "X": _c(lambda g: _minmax(g.values("_sockets")), "SOCKETS", "sockets"),
    "Y": _c(lambda g: _minmax(g.values("_cores")), "CORES", "cores"),
    "Z": _c(lambda g: _minmax(g.values("_threads")), "THREADS", "threads"),
    "z": _c(_sct, "S:C:T", "sct"),
}


def _user_long(g: Group) -> str:
    if not g.first.get("reason"):
        return "Unknown"
    name = str(g.first.get("reason_user") or "")
    if not name:
        return "Unknown"
    from orchestrator.commands._common import user_id

    uid = user_id(name)
    return f"{name}({uid})" if uid is not None else name


_LONG_NAMES: dict[str, str] = {
    "available": "a", "nodeai": "A", "features_act": "b", "maxcpuspernode": "B", "cpus": "c", "cpusstate": "C",
    "disk": "d", "nodes": "D", "freemem": "e", "reason": "E", "features": "f", "nodeaiot": "F", "groups": "g",
    "gres": "G", "oversubscribe": "h", "share": "h", "timestamp": "H", "priorityjobfactor": "I", "time": "l",
    "defaulttime": "L", "memory": "m", "preemptmode": "M", "nodehost": "n", "nodelist": "N", "nodeaddr": "o",
    "cpusload": "O", "prioritytier": "p", "partition": "P", "root": "r", "partitionname": "R", "size": "s",
    "allocnodes": "S", "statecompact": "t", "statelong": "T", "user": "u", "userlong": "U", "version": "v",
    "cluster": "V", "weight": "w", "sockets": "X", "cores": "Y", "threads": "Z", "socketcorethread": "z",
}
_EXTRA: dict[str, tuple[Column, str | None]] = {
    "gresused": _c(_gres_used, "GRES_USED", "gres_used"),
    "allocmem": _c(lambda g: str(sum(int(v or 0) for v in g.values("alloc_mem"))), "ALLOCMEM", "alloc_mem"),
    "comment": _c(lambda g: str(g.first.get("comment") or "(null)"), "COMMENT", "comment"),
    "extra": _c(lambda g: "(null)", "EXTRA"),
    "port": _c(lambda g: "6818", "PORT"),
    "statecomplete": _c(_state_long, "STATECOMPLETE", "state"),
}
_SINFO_LETTERS = "abcdefghlmnoprstuvwzABCDEFGHILMNOPRSTUVXYZ"


class Params:
    def __init__(self) -> None:
        self.all = False
        self.dead = False
        self.exact = False
        self.noheader = False
        self.iterate = 0
        self.long = False
        self.clusters: list[str] | None = None
        self.nodes: set[str] | None = None
        self.node_flag = False
        self.format: str | None = None
        self.long_form = False
        self.partitions: list[str] | None = None
        self.responding = False
        self.reasons = False
        self.summarize = False
        self.sort: str | None = None
        self.states: list[int] | None = None
        self.states_and = False
        self.verbose = 0
        self.def_format = False
        self.part_field_flag = False
        self.node_field_flag = False


_STATE_NAMES = ["unknown", "down", "idle", "allocated", "?", "mixed", "future"]


def _state_id(text: str) -> int | None:
    s = text.lower()
    n = len(s)
    if not n:
        return None
    for i, name in enumerate(_STATE_NAMES):
        if name.startswith(s) or F.node_state_compact(i).lower() == s:
            return i
    for names, code in ((("planned", "plnd"), 1 << 21), (("drain",), F.FLAG_DRAIN),
                        (("drained",), F.FLAG_DRAIN | F.NODE_IDLE), (("resv", "reserved"), 1 << 5),
                        (("perfctrs", "npc"), 1 << 4), (("draining", "drng"), F.FLAG_DRAIN | F.NODE_ALLOCATED)):
        if any(x.startswith(s) for x in names):
            return code
    for name, code in (("completing", F.FLAG_COMPLETING), ("comp", F.FLAG_COMPLETING),
                       ("no_respond", F.FLAG_NO_RESPOND), ("fail", F.FLAG_FAIL), ("maint", F.FLAG_MAINT),
                       ("powered_down", F.FLAG_POWERED_DOWN), ("reboot", F.FLAG_REBOOT)):
        if name.startswith(s) or s == name:
            return code
    return None


_VALID_STATES = ("unknown,down,idle,allocated,?,mixed,future,drain,drained,draining,no_respond,reserved,perfctrs,"
                 "cloud,completing,powering_down,powered_down,power_down,powering_up,fail,maint,reboot,reboot^,"
                 "unknown")


def _parse_states(text: str, p: Params) -> list[int]:
    if text.lower() == "all":
        return [*range(7), F.FLAG_DRAIN, F.FLAG_COMPLETING]
    p.states_and = "&" in text
    out_states: list[int] = []
    for item in text.replace("&", ",").split(","):
        if not item:
            continue
        code = _state_id(item)
        if code is None:
            error(PROG, f'Bad state string: "{item}"')
            error(PROG, f"valid states: {_VALID_STATES}")
            raise Exit(1)
        out_states.append(code)
    return out_states


def parse_args(argv: list[str]) -> Params:
    from orchestrator.commands import _common

    p = Params()
    env = os.environ
    env_a = env.get("SINFO_ALL") is not None
    if env_a:
        p.all = True
    if env.get("SINFO_PARTITION"):
        if env_a:
            error(PROG, "Conflicting options, SINFO_ALL and SINFO_PARTITION, specified. "
                        "Please choose one or the other.")
            raise Exit(1)
        p.partitions = split_list(env["SINFO_PARTITION"])
    if env.get("SINFO_SORT"):
        p.sort = env["SINFO_SORT"]
    opts, _positionals = getopt(PROG, argv, SHORTOPTS, LONGOPTS)
    opt_a = opt_p = False
    for key, value in opts:
        v = value or ""
        if key == "a":
            opt_a = True
            p.partitions = None
            p.all = True
        elif key == "d":
            p.dead = True
        elif key == "e":
            p.exact = True
        elif key == "h":
            p.noheader = True
        elif key == "i":
            try:
                p.iterate = int(v.strip() or "0")
            except ValueError:
                p.iterate = 0
            if p.iterate <= 0:
                error(PROG, f"Error: invalid entry for --iterate={v}")
                raise Exit(1)
        elif key == "l":
            p.long = True
        elif key == "M":
            p.clusters = _common.resolve_clusters(PROG, v)
        elif key == "n":
            from orchestrator.slurm.hostlist import HostlistError, expand

            try:
                p.nodes = set(expand(v))
            except HostlistError:
                error(PROG, f"'{v}' invalid entry for --nodes")
                raise Exit(1) from None
        elif key == "N":
            p.node_flag = True
        elif key == "o":
            p.format = v
            p.long_form = False
        elif key == "O":
            p.format = v
            p.long_form = True
        elif key == "p":
            opt_p = True
            p.partitions = split_list(v)
        elif key == "r":
            p.responding = True
        elif key == "R":
            p.reasons = True
        elif key == "s":
            p.summarize = True
        elif key == "S":
            p.sort = v
        elif key == "t":
            p.states = _parse_states(v, p)
        elif key == "v":
            p.verbose += 1
        elif key == "V":
            _common.print_version()
            raise Exit(0)
        elif key == "help":
            _common.print_help(PROG)
            raise Exit(0)
        elif key == "usage":
            _common.print_help(PROG, "usage")
            raise Exit(0)
        elif key == "hide":
            p.all = False
    if p.long and p.format:
        _common.fatal(PROG, "Options -o(--format) and -l(--long) are mutually exclusive. Please remove one and retry.")
    if opt_a and opt_p:
        error(PROG, "Conflicting options, -a and -p, specified. Please choose one or the other.")
        raise Exit(1)
    if p.format is None:
        p.def_format = True
        p.long_form = True
        if p.summarize:
            p.part_field_flag = True
            p.format = DEF_SUMMARY
        elif p.node_flag:
            p.node_field_flag = p.part_field_flag = True
            p.format = DEF_NODE_LONG if p.long else DEF_NODE
        elif p.reasons:
            p.format = DEF_REASON_LONG if p.long else DEF_REASON
        elif env.get("SINFO_FORMAT"):
            p.format = env["SINFO_FORMAT"]
            p.long_form = False
        else:
            p.part_field_flag = True
            p.format = DEF_LONG if p.long else DEF
    if p.reasons and p.states is None:
        p.states = [F.NODE_DOWN, F.FLAG_FAIL, F.FLAG_DRAIN]
    return p


def build_specs(p: Params) -> tuple[str, list[Spec], dict[str, Column], set[str]]:
    """Resolve the format into specs, the columns they use and the match flags they imply."""
    columns: dict[str, Column] = {}
    flags: set[str] = set()
    assert p.format is not None
    if not p.long_form:
        fmt = p.format
        fmt_all = fmt.lower() == "%all"
        if fmt_all:
            fmt = "%a" + "".join(f"|%{c}" for c in "bcdefghijklmnopqrstuvwxyz") + \
                "".join(f"|%{c} " for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        prefix, specs = F.parse_format(fmt)
        resolved: list[Spec] = []
        for s in specs:
            entry = _LETTERS.get(s.key)
            if entry is None:
                if fmt_all:
                    continue
                raw = "%" + ("." if s.right else "") + (str(s.width) if s.width else "") + s.key + s.suffix
                sys.stderr.write(f"Invalid node format specification: {s.key}\n")
                resolved.append(Spec("?invalid", 0, False, "", raw))
                continue
            columns[s.key] = entry[0]
            if entry[1]:
                flags.add(entry[1])
            resolved.append(s)
        return prefix, resolved, columns, flags
    resolved = []
    for s in F.parse_long_format(p.format):
        name = s.key.lower()
        if name == "all":
            _pre, more, cols, fl = build_specs(_with_format(p, "%all"))
            resolved.extend(more)
            columns.update(cols)
            flags |= fl
            continue
        letter = _LONG_NAMES.get(name)
        entry = _LETTERS.get(letter) if letter else _EXTRA.get(name)
        if entry is None:
            error(PROG, f"Invalid job format specification: {s.key}")  # sic: 22.05's sinfo -O says "job"
            resolved.append(Spec("?invalid", 0, False, "", s.suffix))
            continue
        key = letter or "~" + name
        columns[key] = entry[0]
        if entry[1]:
            flags.add(entry[1])
        resolved.append(Spec(key, s.width, s.right, s.suffix))
    return "", resolved, columns, flags


def _with_format(p: Params, fmt: str) -> Params:
    q = Params()
    q.__dict__.update(p.__dict__)
    q.format = fmt
    q.long_form = False
    return q


# ------------------------------------------------------------------------------------------------
# Building the lines


_NODE_MATCH = ("hostnames", "node_addr", "features", "gres", "gres_used", "comment", "reason", "reason_time",
               "reason_user", "alloc_mem")
_EXACT_MATCH = {"cpus": "cpus", "memory": "memory", "disk": "tmp_disk", "weight": "weight",
                "cpu_load": "cpu_load", "free_mem": "free_mem", "version": "version", "sockets": "_sockets",
                "cores": "_cores", "threads": "_threads"}
_PART_MATCH = {"avail": "state", "groups": "groups", "size": "max_nodes", "default_time": "default_time",
               "max_time": "max_time", "root": "root", "oversubscribe": "oversubscribe",
               "priority_tier": "priority_tier"}


def _node_key_match(g: Group, node: dict[str, Any], p: Params, flags: set[str]) -> bool:
    if p.node_flag:
        return False
    first = g.first
    for flag in _NODE_MATCH:
        if flag in flags:
            key = {"hostnames": "name", "node_addr": "name"}.get(flag, flag)
            if flag in ("hostnames", "node_addr"):
                continue
            if (first.get(key) or "") != (node.get(key) or ""):
                return False
    if "state" in flags and F.node_state_string(node["_code"]) != F.node_state_string(g.state):
        return False
    if not p.exact:
        return True
    for flag, key in _EXACT_MATCH.items():
        if flag in flags and first.get(key) != node.get(key):
            return False
    return not ("sct" in flags and any(first.get(k) != node.get(k) for k in ("_sockets", "_cores", "_threads")))


def _part_match(g: Group, part: dict[str, Any], p: Params, flags: set[str]) -> bool:
    if p.reasons:
        return True
    if g.part is part:
        return True
    if g.part is None:
        return False
    if "partition" in flags and g.part.get("name") != part.get("name"):
        return False
    return all(g.part.get(key) == part.get(key) for flag, key in _PART_MATCH.items() if flag in flags)


def _filter_out(node: dict[str, Any], p: Params) -> bool:
    if p.nodes is not None and node["name"] not in p.nodes:
        return True
    code = node["_code"]
    if p.dead and not code & F.FLAG_NO_RESPOND:
        return True
    if p.responding and code & F.FLAG_NO_RESPOND:
        return True
    if p.states:
        match = False
        for st in p.states:
            match = False
            if st == F.FLAG_DRAIN:
                match = bool(code & F.FLAG_DRAIN)
            elif st == F.FLAG_DRAIN | F.NODE_ALLOCATED:
                match = F.node_state_compact(code).startswith("DRNG")
            elif st == F.FLAG_DRAIN | F.NODE_IDLE:
                match = F.node_state_compact(code).startswith("DRAIN")
            elif st & ~0xF:
                match = bool(st & code)
            elif st == F.NODE_ALLOCATED:
                match = int(node.get("alloc_cpus") or 0) > 0
            else:
                match = (code & 0xF) == st
            if not p.states_and and match:
                break
            if p.states_and and not match:
                break
        if not match:
            return True
    return False


def _prepare_node(n: dict[str, Any]) -> dict[str, Any]:
    n = dict(n)
    n["_code"] = F.node_state_code(str(n.get("state") or "UNKNOWN"), n.get("flags") or [])
    n.setdefault("_sockets", n.get("sockets") or n.get("cpus") or 1)
    n.setdefault("_cores", n.get("cores") or 1)
    n.setdefault("_threads", n.get("threads") or 1)
    n.setdefault("tmp_disk", 0)
    n.setdefault("weight", 1)
    return n


def build_groups(parts: list[dict[str, Any]], nodes: list[dict[str, Any]], p: Params,
                 flags: set[str]) -> list[Group]:
    from orchestrator.slurm.hostlist import expand

    by_name = {n["name"]: _prepare_node(n) for n in nodes}
    filtering = bool(p.dead or p.nodes is not None or p.partitions or p.responding or p.states)
    want = set(p.partitions) if p.partitions else None
    groups: list[Group] = []
    if not p.node_flag and "partition" in flags:
        for i, part in enumerate(parts):
            if want is None or part["name"] in want:
                groups.append(Group(part, i))
    for i, part in enumerate(parts):
        if filtering and want is not None and part["name"] not in want:
            continue
        names = expand(part.get("nodes") or "") if part.get("nodes") else []
        for name in names:
            node = by_name.get(name)
            if node is None or (filtering and _filter_out(node, p)):
                continue
            for g in groups:
                if not _part_match(g, part, p, flags):
                    continue
                if g.nodes and not _node_key_match(g, node, p, flags):
                    continue
                g.add(node)
                break
            else:
                g = Group(part, i)
                g.add(node)
                groups.append(g)
    return groups


def _node_sort_key(g: Group) -> Any:
    """Groups in the order of their lowest node names, compared as Slurm compares node names."""
    from orchestrator.slurm.hostlist import host_key

    return host_key(min(g.names, key=host_key) if g.nodes else "")


_SORT: dict[str, Callable[[Group], Any]] = {
    "a": lambda g: _part(g, "state", ""),
    "A": lambda g: (g.alloc, g.idle),
    "c": lambda g: min(int(v or 0) for v in g.values("cpus")) if g.nodes else 0,
    "d": lambda g: 0,
    "D": lambda g: len(g.nodes),
    "E": lambda g: _reason(g),
    "e": lambda g: min(int(v or 0) for v in g.values("free_mem")) if g.nodes else 0,
    "f": _features,
    "F": lambda g: (g.alloc, g.idle),
    "g": lambda g: "all",
    "h": _oversub,
    "H": lambda g: g.first.get("reason_time") or 0,
    "l": lambda g: _part(g, "max_time", 0) if (_part(g, "max_time", 0) or 0) >= 0 else 1 << 32,
    "m": lambda g: min(int(v or 0) for v in g.values("memory")) if g.nodes else 0,
    "N": _node_sort_key,
    "n": _node_sort_key,
    "o": _node_sort_key,
    "O": lambda g: min(float(v or 0) for v in g.values("cpu_load")) if g.nodes else 0,
    "p": lambda g: _part(g, "priority_tier", 0),
    "r": lambda g: 0,
    "s": lambda g: _part(g, "max_nodes", 0) or 0,
    "t": lambda g: g.state,
    "T": lambda g: g.state,
    "u": _user,
    "U": _user,
    "V": lambda g: g.cluster,
    "w": lambda g: 1,
    "X": lambda g: 0,
    "Y": lambda g: 0,
    "Z": lambda g: 0,
    "z": lambda g: 0,
}


def sort_groups(groups: list[Group], p: Params) -> list[Group]:
    spec = p.sort or ("N" if p.node_flag else "#P,-t")
    i = len(spec) - 1
    while i >= 0:
        ch = spec[i]
        if ch in ",#+-":
            i -= 1
            continue
        reverse = i > 0 and spec[i - 1] == "-"
        part_order = i > 0 and spec[i - 1] == "#"
        if ch in ("P", "R"):
            if part_order:
                groups.sort(key=lambda g: g.part_inx, reverse=reverse)
            else:
                groups.sort(key=lambda g: str(_part(g, "name", "")), reverse=reverse)
        else:
            key = _SORT.get(ch)
            if key is not None:
                groups.sort(key=key, reverse=reverse)
        i -= 1
    return groups


def render(groups: list[Group], prefix: str, specs: list[Spec], columns: dict[str, Column],
           p: Params) -> list[str]:
    widths: dict[str, int] = {}
    if p.part_field_flag:
        w = MIN_FIELD
        for g in groups:
            if g.part:
                w = max(w, len(str(g.part["name"])) + (1 if g.part.get("default") else 0))
        widths["P"] = widths["R"] = widths["~partition"] = widths["~partitionname"] = w
    if p.node_field_flag:
        w = MIN_FIELD
        for g in groups:
            w = max(w, len(g.nodelist))
        widths["N"] = widths["~nodelist"] = w
    lines: list[str] = []
    if not p.noheader:
        parts = [prefix]
        for s in specs:
            col = columns.get(s.key)
            if col is None:
                parts.append(s.literal if s.literal is not None else s.suffix)
                continue
            width = widths.get(s.key, s.width)
            cut = s.key not in ("N", "~nodelist")
            parts.append(F.print_str(col.header, width, s.right, cut) + s.suffix)
        lines.append("".join(parts))
    for g in groups:
        parts = [prefix]
        for s in specs:
            col = columns.get(s.key)
            if col is None:
                parts.append(s.literal if s.literal is not None else s.suffix)
                continue
            width = widths.get(s.key, s.width)
            value = _partition(g, width) if s.key in ("P", "~partition") else col.value(g)
            parts.append(F.print_str(value, width, s.right, True) + s.suffix)
        lines.append("".join(parts))
    return lines


# ------------------------------------------------------------------------------------------------


def _main(argv: list[str]) -> int:
    from orchestrator.commands import _common

    p = parse_args(argv)
    several = len(p.clusters or []) > 1
    return _common.report_clusters(p.clusters, p.noheader, p.iterate,
                                   not p.noheader and bool(p.iterate or p.verbose or p.long),
                                   several and p.noheader and p.def_format, lambda c, col: _show(p, c, col))


def _show(p: Params, cluster: str | None, cluster_column: bool) -> bool:
    from orchestrator.commands import _common

    prefix, specs, columns, flags = build_specs(p)
    if cluster_column and not any(s.key == "V" for s in specs):
        specs = [Spec("V", 8, False, ""), *specs]
        columns["V"] = _LETTERS["V"][0]
    RpcError = _common.rpc_error_type()
    client = _common.make_client(cluster)
    try:
        parts = client.call("partitions", {}).get("partitions") or []
    except RpcError as exc:
        sys.stderr.write(f"slurm_load_partitions: {exc.message}\n")  # type: ignore[attr-defined]
        return True
    try:
        nodes = client.call("nodes", {}).get("nodes") or []
    except RpcError as exc:
        sys.stderr.write(f"slurm_load_node: {exc.message}\n")  # type: ignore[attr-defined]
        return True
    groups = build_groups(parts, nodes, p, flags)
    if cluster:
        for g in groups:
            g.cluster = cluster
    groups = sort_groups(groups, p)
    lines = render(groups, prefix, specs, columns, p)
    if lines:
        out("\n".join(lines) + "\n")
    return False
