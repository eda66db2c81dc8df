"""Elapsed time and CPU time as sacct reports them, shared by sacct, seff and the credits ledger.

Slurm keeps job times as whole seconds (``time_t``), so a job's Elapsed is
``int(End) - int(Start)`` and CPUTimeRAW is that times AllocCPUS. The credits
service charges exactly CPUTimeRAW, so the two must use the same arithmetic:
this module is that arithmetic.
"""

from __future__ import annotations

from orchestrator.lazylog import get_logger

log = get_logger(__name__)

__all__ = ["cpu_time_raw", "elapsed_seconds"]


def elapsed_seconds(start: float, end: float, now: float | None = None) -> int:
    """Whole seconds between start and end (``now`` for a running job; 0 if it never started)."""
    if not start:
        return 0
    stop = end if end else (now if now is not None else 0.0)
    if not stop:
        return 0
    return max(0, int(stop) - int(start))


def cpu_time_raw(start: float, end: float, alloc_cpus: int, now: float | None = None) -> int:
    """sacct's CPUTimeRAW: elapsed seconds times allocated CPUs."""
    return elapsed_seconds(start, end, now) * max(0, int(alloc_cpus))
