"""Elapsed time and CPU time as sacct reports them, shared by sacct, seff and the credits ledger;
and the job arithmetic sacct and scontrol share (DerivedExitCode, the memory in a TRES).

Slurm keeps job times as whole seconds (``time_t``), so a job's Elapsed is
``int(End) - int(Start)`` and CPUTimeRAW is that times AllocCPUS. The credits
service charges exactly CPUTimeRAW, so the two must use the same arithmetic:
this module is that arithmetic.
"""

from __future__ import annotations

from orchestrator.lazylog import get_logger

TYPE_CHECKING = False  # typing costs a user command milliseconds
if TYPE_CHECKING:
    from typing import Any

log = get_logger(__name__)

__all__ = ["cpu_time_raw", "derived_text", "elapsed_seconds", "start_and_end", "tres_mem"]


def elapsed_seconds(start: float, end: float, now: float | None = None) -> int:
    """Whole seconds between start and end (``now`` for a running job; 0 if it never started)."""
    if not start:
        return 0
    stop = end if end else (now if now is not None else 0.0)
    if not stop:
        return 0
    return max(0, int(stop) - int(start))


def start_and_end(r: dict[str, Any]) -> tuple[float, float]:
    """A job's StartTime and EndTime as slurmctld gives them to squeue and scontrol: a running job ends
    at its time limit, and a pending one shows when it is expected to start (its --begin time or the
    scheduler's estimate) and to end then (0 for unknown, or for an UNLIMITED end)."""
    start = float(r.get("start_time") or 0)
    end = float(r.get("end_time") or 0)
    state = r.get("state")
    if state == "PENDING":
        start = float(r.get("expected_start") or 0)
    tl = r.get("time_limit")
    if not end and start and state in ("PENDING", "RUNNING", "COMPLETING") and tl is not None and tl >= 0:
        end = start + tl * 60
    return start, end


def cpu_time_raw(start: float, end: float, alloc_cpus: int, now: float | None = None) -> int:
    """sacct's CPUTimeRAW: elapsed seconds times allocated CPUs."""
    return elapsed_seconds(start, end, now) * max(0, int(alloc_cpus))


def derived_text(status: int) -> str:
    """DerivedExitCode as sacct and ``scontrol -d`` print it: slurmctld keeps it as a wait status
    (``code << 8 | signal``) and both show ``code:signal``."""
    return f"{status >> 8}:{status & 0xFF}"


def tres_mem(rec: dict[str, Any], nodes: int, cpus: int) -> int:
    """The MB a job's TRES counts for ``nodes`` nodes and ``cpus`` CPUs: --mem is per node,
    --mem-per-cpu per CPU (a job or step's ``mem=`` in scontrol, sacct's ReqMem total)."""
    if rec.get("mem_per_node"):
        return int(rec["mem_per_node"]) * nodes
    return int(rec.get("mem_per_cpu") or 0) * cpus
