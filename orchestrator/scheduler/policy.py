"""The scheduling policy: priority by partition tier then age, with backfill on time limits.

A pass looks at pending jobs in priority order. Jobs that fit now start, unless
they would delay a higher-priority job's reservation; blocked jobs get the
pending reason Slurm would show. The pass is a pure function of its inputs and
a clock, so it is tested with a fake one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from orchestrator.cluster.config import PartitionSpec
from orchestrator.scheduler.job import Job
from orchestrator.scheduler.resources import Allocation, NodeState, constraint_matches, fit, fit_key
from orchestrator.slurm.hostlist import compress, expand
from orchestrator.slurm.timefmt import INFINITE

log = logging.getLogger(__name__)

__all__ = ["Pass", "Reservation", "candidate_nodes", "earliest_start", "limit_reason", "note_wait", "schedule", "shape"]

MAX_RESERVATIONS = 16
MAX_TESTED = 1000
FAR_FUTURE = 10 * 365 * 86400.0
DOWN_REASON = "Nodes required for job are DOWN, DRAINED or reserved for jobs in higher priority partitions"
_TURN_REASONS = frozenset({"None", "Priority", "Resources", DOWN_REASON})  # DOWN_REASON is Resources' text


@dataclass
class Reservation:
    nodes: set[str]
    start: float


@dataclass
class Pass:
    """What one scheduling pass decided."""

    starts: list[tuple[Job, Allocation]]
    tested: int = 0


def note_wait(job: Job) -> bool:
    """Keep the last reason a pending job waited for other than its turn or room, as slurmctld keeps
    state_reason_prev_db for accounting: sacct's Reason for a job that waited on Dependency and then on
    Resources is Dependency, and None for one that only waited its turn. True when it changed."""
    reason = job.reason
    if reason in _TURN_REASONS:
        return False
    reason = reason.split(",", 1)[0]  # "ReqNodeNotAvail, UnavailableNodes:n1" is the reason ReqNodeNotAvail
    if reason == job.reason_prev:
        return False
    job.reason_prev = reason
    return True


def sort_key(job: Job, tiers: dict[str, int]) -> tuple[int, int, float, int]:
    return (-tiers.get(job.partition, 1), -job.priority, job.submit_time, job.job_id)


def shape(job: Job) -> tuple[object, ...]:
    """Where a job may go and what it asks for there. Within one pass, jobs of one shape have the
    same candidate nodes and fit (or fail to) alike, since nodes only fill during a pass: a queue
    of like jobs is then tested once, not once a job (the controller's largest cost under a burst)."""
    return (job.partition, job.req_nodes, job.exc_nodes, job.features, *fit_key(job))


def job_end(job: Job, now: float) -> float:
    if job.time_limit == INFINITE:
        return now + FAR_FUTURE
    return max(now, (job.start_time or now) + job.time_limit * 60)


def limit_reason(job: Job, part: PartitionSpec) -> str | None:
    """Partition limits a job exceeds; Slurm accepts such jobs and leaves them pending."""
    if part.max_time != INFINITE and job.time_limit != INFINITE and job.time_limit > part.max_time:
        return "PartitionTimeLimit"
    if part.max_time != INFINITE and job.time_limit == INFINITE:
        return "PartitionTimeLimit"
    max_nodes = part.max_nodes or len(part.nodes)
    if job.num_nodes > max_nodes:
        return "PartitionNodeLimit"
    return None


def candidate_nodes(job: Job, part: PartitionSpec, nodes: dict[str, NodeState]) -> list[NodeState]:
    """Partition nodes the job may use, requested ones first, in name order."""
    excluded = set(expand(job.exc_nodes)) if job.exc_nodes else set()
    required = expand(job.req_nodes) if job.req_nodes else []
    out: list[NodeState] = []
    for name in required:
        if name in nodes and name not in excluded:
            out.append(nodes[name])
    for name in sorted(part.nodes):
        if name in excluded or name in required:
            continue
        node = nodes.get(name)
        if node is None:
            continue
        if job.features and not constraint_matches(job.features, node.spec.features):
            continue
        if required and len(required) >= max(1, job.num_nodes):
            continue
        out.append(node)
    return out


def _reserved_conflict(alloc: Allocation, end: float, reservations: list[Reservation]) -> bool:
    return any(end > r.start and r.nodes.intersection(alloc.cpus) for r in reservations)


def _release(shadow: dict[str, NodeState], job: Job) -> None:
    for name, cpus in job.cpus_per_node.items():
        n = shadow.get(name)
        if n is None:
            continue
        n.alloc_cpus = max(0.0, n.alloc_cpus - cpus)
        n.alloc_mem = max(0, n.alloc_mem - job.mem_per_alloc_node.get(name, 0))
        for idx in job.gpus_per_node.get(name, []):
            for used in n.gpus_used.values():
                used.discard(idx)
        n.jobs.discard(job.job_id)


def earliest_start(job: Job, cands: list[NodeState], running: list[Job], now: float, default_mem: int,
                   oversubscribe: int = 0) -> tuple[float, Allocation] | None:
    """When and where the job could start if running jobs end at their time limits."""
    usable = [n for n in cands if n.usable]
    alloc = fit(job, usable, default_mem, oversubscribe)
    if alloc is not None:
        return now, alloc
    names = {n.name for n in usable}
    shadow = {n.name: n.shadow() for n in usable}
    order = sorted((j for j in running if names.intersection(j.cpus_per_node)), key=lambda j: job_end(j, now))
    for r in order:
        _release(shadow, r)
        alloc = fit(job, [shadow[n.name] for n in usable], default_mem, oversubscribe)
        if alloc is not None:
            return job_end(r, now), alloc
    return None


def schedule(now: float, pending: list[Job], running: list[Job], nodes: dict[str, NodeState],
             partitions: dict[str, PartitionSpec], default_mem: int,
             eligibility: Callable[[Job], str | None] | None = None,
             take_task: Callable[[Job], Job | None] | None = None,
             dependency: Callable[[Job], str | None] | None = None) -> Pass:
    """One scheduling pass. Sets ``reason`` on jobs that stay pending; returns the starts.

    ``dependency`` returns why a job still waits for other jobs, asked before its --begin time
    is (slurmctld's job_independent(): a dependent job shows Dependency, not BeginTime);
    ``eligibility`` returns a pending reason from outside the policy once that time has come
    (credits, array throttles), or None when the job may run. ``take_task`` splits the next
    task off a pending array (None when its throttle is reached); the array itself is
    returned for its last task.
    """
    tiers = {name: p.priority_tier for name, p in partitions.items()}
    result = Pass([])
    reservations: list[Reservation] = []
    blocked_parts: set[str] = set()
    places: dict[tuple[object, ...], tuple[list[NodeState], list[NodeState]]] = {}  # shape -> candidates, usable
    unfit: set[tuple[object, ...]] = set()  # shapes that did not fit now: nodes only fill, so they won't
    estimates: dict[tuple[object, ...], tuple[int, tuple[float, Allocation] | None]] = {}  # (starts then, est)
    for job in sorted(pending, key=lambda j: sort_key(j, tiers)):
        if job.hold:
            job.reason = "JobHeldAdmin" if job.hold == "admin" else "JobHeldUser"
            continue
        if dependency is not None:
            why = dependency(job)
            if why:
                job.reason = why
                continue
        if job.begin_time and job.begin_time > now:
            job.reason = "BeginTime"
            job.expected_start = job.begin_time
            continue
        if eligibility is not None:
            why = eligibility(job)
            if why:
                job.reason = why
                continue
        part = partitions.get(job.partition)
        if part is None:
            job.reason = "PartitionDown"
            continue
        why = limit_reason(job, part)
        if why:
            job.reason = why
            continue
        if result.tested >= MAX_TESTED:
            job.reason = "Priority"
            continue
        result.tested += 1
        key = shape(job)
        if key not in places:
            cands = candidate_nodes(job, part, nodes)
            places[key] = (cands, [n for n in cands if n.usable])
        cands, usable = places[key]
        if job.req_nodes:
            missing = [n for n in expand(job.req_nodes) if n not in nodes or not nodes[n].usable]
            if missing:
                job.reason = f"ReqNodeNotAvail, UnavailableNodes:{compress(missing)}"
                continue
        if not usable:
            job.reason = DOWN_REASON if cands else "Resources"
            continue
        alloc = None if key in unfit else fit(job, usable, default_mem, part.oversubscribe)
        if alloc is None:
            unfit.add(key)
        end = now + (FAR_FUTURE if job.time_limit == INFINITE else job.time_limit * 60)
        if alloc is not None and not _reserved_conflict(alloc, end, reservations):
            if take_task is not None and job.array_task_str and job.array_task_id is None:
                # a pending array: start as many of its tasks as fit now, one allocation each
                why = "Resources"
                first = True
                while alloc is not None and not _reserved_conflict(alloc, end, reservations):
                    if not first and eligibility is not None:
                        # every task is a job of its own: ask again (each task reserves its own credit)
                        again = eligibility(job)
                        if again:
                            why = again
                            break
                    first = False
                    task = take_task(job)
                    if task is None:
                        why = "JobArrayTaskLimit"
                        break
                    result.starts.append((task, alloc))
                    apply_allocation(task, alloc, nodes, part.oversubscribe)
                    task.reason = "None"
                    task.sched_nodes = ""
                    if task is job:
                        break
                    alloc = fit(job, usable, default_mem, part.oversubscribe)
                if job.array_task_id is None:
                    job.reason = why
                    if why == "Resources":
                        blocked_parts.add(job.partition)
                continue
            result.starts.append((job, alloc))
            apply_allocation(job, alloc, nodes, part.oversubscribe)
            job.reason = "None"
            job.sched_nodes = ""
            continue
        job.reason = "Priority" if job.partition in blocked_parts else "Resources"
        blocked_parts.add(job.partition)
        if len(reservations) < MAX_RESERVATIONS:
            known = estimates.get(key)
            if known is not None and known[0] == len(result.starts):  # nothing started since
                est = known[1]
            else:
                est = earliest_start(job, cands, running + [j for j, _ in result.starts], now, default_mem,
                                     part.oversubscribe)
                estimates[key] = (len(result.starts), est)
            if est is not None:
                reservations.append(Reservation(set(est[1].cpus), est[0]))
                job.expected_start = est[0]  # squeue --start, scontrol's StartTime of a pending job
                job.sched_nodes = compress(est[1].nodes)  # squeue %Y, scontrol's SchedNodeList
    return result


def apply_allocation(job: Job, alloc: Allocation, nodes: dict[str, NodeState], oversubscribe: int = 0) -> None:
    """Charge an allocation to the nodes (and record it on the job)."""
    share = max(1, oversubscribe)
    for name, cpus in alloc.cpus.items():
        n = nodes[name]
        n.alloc_cpus += cpus / share
        n.alloc_mem += alloc.mem[name]
        for idx in alloc.gpus.get(name, []):
            n.gpus_used.setdefault("gpu", set()).add(idx)
        n.jobs.add(job.job_id)
    job.cpus_per_node = {n: int(c) for n, c in alloc.cpus.items()}
    job.mem_per_alloc_node = dict(alloc.mem)
    job.gpus_per_node = {n: list(g) for n, g in alloc.gpus.items()}
    job.nodes = compress(list(alloc.cpus))
    job.alloc_cpus = sum(job.cpus_per_node.values())
    job.alloc_mem = sum(alloc.mem.values())


def release_allocation(job: Job, nodes: dict[str, NodeState], oversubscribe: int = 0) -> None:
    """Give a finished job's resources back to its nodes."""
    share = max(1, oversubscribe)
    for name, cpus in job.cpus_per_node.items():
        n = nodes.get(name)
        if n is None:
            continue
        n.alloc_cpus = max(0.0, n.alloc_cpus - cpus / share)
        if n.alloc_cpus < 1e-6:
            n.alloc_cpus = 0.0
        n.alloc_mem = max(0, n.alloc_mem - job.mem_per_alloc_node.get(name, 0))
        for idx in job.gpus_per_node.get(name, []):
            for used in n.gpus_used.values():
                used.discard(idx)
        n.jobs.discard(job.job_id)
