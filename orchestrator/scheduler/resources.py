"""Consumable resources on nodes: cores, memory and typed GPUs, and how a job fits.

This is select/cons_tres in miniature: a job's request becomes a per-node need
(tasks x cpus-per-task, memory, GRES), and a fit picks nodes in name order,
packing tasks block-wise the way Slurm's default distribution does.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace

from orchestrator.cluster.config import NodeSpec
from orchestrator.scheduler.job import Job

log = logging.getLogger(__name__)

__all__ = ["Allocation", "GresRequest", "NodeState", "constraint_matches", "fit", "fit_key", "parse_gres_request"]


@dataclass
class NodeState:
    """What the controller knows of one node right now."""

    spec: NodeSpec
    registered: bool = False
    responding: bool = False
    down: bool = False  # admin DOWN or lost heartbeats
    drain: bool = False
    reason: str = ""
    reason_uid: int = 0
    reason_time: float = 0.0
    addr: tuple[str, int] | None = None
    alloc_cpus: float = 0.0  # oversubscribed jobs use fractions
    alloc_mem: int = 0
    gpus_used: dict[str, set[int]] = field(default_factory=dict)  # gres type -> used indices
    jobs: set[int] = field(default_factory=set)
    completing: set[int] = field(default_factory=set)
    last_heartbeat: float = 0.0
    boot_time: float = 0.0
    slurmd_start_time: float = 0.0
    last_busy: float = 0.0
    cpu_load: float = 0.0
    free_mem: int = 0
    os: str = ""
    version: str = ""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def usable(self) -> bool:
        return self.registered and self.responding and not self.down and not self.drain

    @property
    def free_cpus(self) -> float:
        return self.spec.cpus - self.alloc_cpus

    @property
    def free_mem_mb(self) -> int:
        return self.spec.memory_mb - self.alloc_mem

    def shadow(self) -> NodeState:
        """A copy for planning (backfill): what planning changes (counters, GPU and job sets) is its
        own, the rest is shared. A deepcopy per node per pending job was the controller's largest
        cost while a burst of short jobs queued."""
        return replace(self, gpus_used={k: set(v) for k, v in self.gpus_used.items()}, jobs=set(self.jobs))

    def gpu_slots(self) -> list[tuple[str, int]]:
        """Every GPU on the node as (type, index); indices run over the node, as nvidia-smi numbers them."""
        out: list[tuple[str, int]] = []
        idx = 0
        for g in self.spec.gres:
            if g.name != "gpu":
                continue
            for _ in range(g.count):
                out.append((g.type or "", idx))
                idx += 1
        return out

    def free_gpus(self, gtype: str | None) -> list[int]:
        used = set().union(*self.gpus_used.values()) if self.gpus_used else set()
        return [i for t, i in self.gpu_slots() if i not in used and (gtype is None or t.lower() == gtype.lower())]

    def total_gpus(self, gtype: str | None) -> int:
        return sum(1 for t, _ in self.gpu_slots() if gtype is None or t.lower() == gtype.lower())

    @property
    def has_gpus(self) -> bool:
        return any(g.name == "gpu" for g in self.spec.gres)

    def base_state(self) -> str:
        if self.down or not self.registered:
            return "DOWN" if self.registered or self.down else "UNKNOWN"
        if self.completing and not self.jobs:
            return "COMPLETING"
        if self.alloc_cpus <= 0 and not self.jobs:
            return "IDLE"
        if self.alloc_cpus >= self.spec.cpus:
            return "ALLOCATED"
        return "MIXED"


@dataclass
class Allocation:
    """Where a job runs: per node cpus, memory and GPU indices, and its task layout."""

    cpus: dict[str, int]
    mem: dict[str, int]
    gpus: dict[str, list[int]]
    tasks: dict[str, int]

    @property
    def nodes(self) -> list[str]:
        return list(self.cpus)


@dataclass(frozen=True)
class GresRequest:
    """GPUs wanted on each node (``--gres=gpu[:type]:N`` / ``--gpus-per-node``)."""

    type: str | None
    per_node: int


_GRES_RE = re.compile(r"^gpu(?::([A-Za-z0-9_.-]+))?(?::(\d+))?$")


def parse_gres_request(text: str) -> GresRequest | None:
    """Parse a job's GRES request; only ``gpu`` GRES exist. Raises ValueError when invalid."""
    if not text:
        return None
    items = [t for t in text.split(",") if t]
    if len(items) != 1:
        raise ValueError(text)
    item = items[0]
    if item.startswith("gres:"):
        item = item[5:]
    m = _GRES_RE.match(item)
    if not m:
        raise ValueError(text)
    gtype, count = m.group(1), m.group(2)
    if gtype is not None and gtype.isdigit() and count is None:
        gtype, count = None, gtype
    n = int(count) if count is not None else 1
    if n <= 0:
        raise ValueError(text)
    return GresRequest(gtype, n)


# ---------------------------------------------------------------- constraints

_TOKEN_RE = re.compile(r"\s*([A-Za-z0-9_.:=-]+|[&|()\[\]])\s*")


def constraint_matches(expr: str, features: tuple[str, ...] | list[str]) -> bool:
    """Evaluate a ``-C`` expression (``a&b``, ``a|b``, ``[a|b]``, ``name:value``) against one node.

    Matching is case-insensitive on values, as users write gpu_sku:v100 or V100.
    """
    if not expr:
        return True
    feats = {f.lower() for f in features}
    tokens = _tokenize(expr)
    pos = 0

    def parse_or() -> bool:
        nonlocal pos
        val = parse_and()
        while pos < len(tokens) and tokens[pos] == "|":
            pos += 1
            val = parse_and() or val
        return val

    def parse_and() -> bool:
        nonlocal pos
        val = parse_atom()
        while pos < len(tokens) and tokens[pos] == "&":
            pos += 1
            val = parse_atom() and val
        return val

    def parse_atom() -> bool:
        nonlocal pos
        if pos >= len(tokens):
            raise ValueError(expr)
        tok = tokens[pos]
        if tok in ("(", "["):
            close = ")" if tok == "(" else "]"
            pos += 1
            val = parse_or()
            if pos >= len(tokens) or tokens[pos] != close:
                raise ValueError(expr)
            pos += 1
            return val
        if tok in ("&", "|", ")", "]"):
            raise ValueError(expr)
        pos += 1
        name = tok.split("*")[0].lower()
        return name in feats

    result = parse_or()
    if pos != len(tokens):
        raise ValueError(expr)
    return result


def _tokenize(expr: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN_RE.match(expr, pos)
        if not m:
            raise ValueError(expr)
        tokens.append(m.group(1))
        pos = m.end()
    return tokens


def validate_constraint(expr: str, all_features: set[str]) -> None:
    """Raise ValueError when the expression is malformed or names a feature no node has."""
    if not expr:
        return
    lowered = {f.lower() for f in all_features}
    for tok in _tokenize(expr):
        if tok in ("&", "|", "(", ")", "[", "]"):
            continue
        if tok.lower() not in lowered:
            raise ValueError(tok)
    constraint_matches(expr, [])


# ---------------------------------------------------------------- fitting


def fit_key(job: Job) -> tuple[object, ...]:
    """Everything ``fit`` reads from a job: two jobs with the same key fit, or fail to, alike."""
    return (job.gres, job.num_nodes, job.max_nodes, job.cpus_per_task, job.ntasks_per_node, job.num_tasks,
            job.nodes_explicit, job.mem_per_cpu, job.mem_per_node, job.gpus_per_task, job.exclusive)


def node_count_range(job: Job) -> tuple[int, int]:
    lo = max(1, job.num_nodes)
    hi = max(lo, job.max_nodes or lo)
    return lo, hi


def fit(job: Job, nodes: list[NodeState], default_mem_per_cpu: int, oversubscribe: int = 0,
        empty: bool = False) -> Allocation | None:
    """Find an allocation for ``job`` among ``nodes`` (already filtered to eligible ones).

    Tasks are placed block-wise in node order; ``empty`` asks whether the job would fit on
    idle nodes, for the "can never run" check at submit time.
    """
    try:
        gres = parse_gres_request(job.gres)
    except ValueError:
        return None
    lo, hi = node_count_range(job)
    cpt = max(1, job.cpus_per_task)
    ntpn = job.ntasks_per_node
    remaining = max(1, job.num_tasks)
    needed = max(lo, -(-remaining // ntpn)) if ntpn else lo
    if needed > hi:
        hi = needed
    if not job.nodes_explicit:
        hi = max(hi, len(nodes))  # without -N the task count decides how many nodes
    share = max(1, oversubscribe)
    mem_per_cpu = job.mem_per_cpu or (0 if job.mem_per_node else default_mem_per_cpu)
    alloc = Allocation({}, {}, {}, {})

    for node in nodes:
        if remaining <= 0 and len(alloc.cpus) >= needed:
            break
        if len(alloc.cpus) >= hi:
            break
        spec = node.spec
        if gres is not None:
            have = node.total_gpus(gres.type) if empty else len(node.free_gpus(gres.type))
            if have < gres.per_node:
                continue
        elif node.has_gpus and not job.gpus_per_task:
            continue  # GPU nodes only take jobs that ask for a GPU
        if job.exclusive:
            if not empty and (node.jobs or node.alloc_cpus > 0):
                continue
            free_cpu, free_mem = spec.cpus, spec.memory_mb
        elif empty:
            free_cpu, free_mem = spec.cpus, spec.memory_mb
        else:
            free_cpu, free_mem = int(node.free_cpus * share + 1e-9), node.free_mem_mb
        cap = free_cpu // cpt
        if mem_per_cpu:
            cap = min(cap, free_mem // (mem_per_cpu * cpt))
        elif job.mem_per_node > free_mem:
            cap = 0
        if cap < 1:
            continue
        nodes_after = max(0, needed - len(alloc.cpus) - 1)
        if ntpn:
            take = min(ntpn, remaining)
            if take > cap or (take < 1 and nodes_after == 0):
                continue
        else:
            take = min(cap, max(1, remaining - nodes_after))
        take = max(take, 0)
        cpus = spec.cpus if job.exclusive else max(1, take) * cpt
        if job.exclusive and not job.mem_per_cpu and not job.mem_per_node:
            mem = spec.memory_mb
        elif job.mem_per_node:
            mem = job.mem_per_node
        else:
            mem = mem_per_cpu * cpus
        alloc.cpus[spec.name] = cpus
        alloc.mem[spec.name] = mem
        alloc.tasks[spec.name] = take
        if gres is not None:
            pool = list(range(node.total_gpus(None))) if empty else node.free_gpus(gres.type)
            alloc.gpus[spec.name] = pool[: gres.per_node]
        remaining -= take
    if remaining > 0 or len(alloc.cpus) < needed:
        return None
    return alloc
