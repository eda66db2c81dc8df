"""Job and node states with Slurm's long and compact names.

Shared by the controller (which sets them) and the commands (which print and
filter them), so ``squeue -t pd,r`` and ``sacct -s CA`` accept what Slurm accepts.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ACTIVE_STATES", "FINISHED_STATES", "JobState", "parse_job_states"]


class JobState(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUSPENDED = "SUSPENDED"
    COMPLETING = "COMPLETING"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"
    TIMEOUT = "TIMEOUT"
    NODE_FAIL = "NODE_FAIL"
    PREEMPTED = "PREEMPTED"
    BOOT_FAIL = "BOOT_FAIL"
    DEADLINE = "DEADLINE"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    REQUEUED = "REQUEUED"
    REQUEUE_HOLD = "REQUEUE_HOLD"
    REQUEUE_FED = "REQUEUE_FED"
    RESIZING = "RESIZING"
    REVOKED = "REVOKED"
    SIGNALING = "SIGNALING"
    SPECIAL_EXIT = "SPECIAL_EXIT"
    STAGE_OUT = "STAGE_OUT"
    STOPPED = "STOPPED"
    CONFIGURING = "CONFIGURING"

    @property
    def compact(self) -> str:
        return COMPACT[self]

    @property
    def finished(self) -> bool:
        return self in FINISHED_STATES


COMPACT: dict[JobState, str] = {
    JobState.PENDING: "PD", JobState.RUNNING: "R", JobState.SUSPENDED: "S", JobState.COMPLETING: "CG",
    JobState.COMPLETED: "CD", JobState.CANCELLED: "CA", JobState.FAILED: "F", JobState.TIMEOUT: "TO",
    JobState.NODE_FAIL: "NF", JobState.PREEMPTED: "PR", JobState.BOOT_FAIL: "BF", JobState.DEADLINE: "DL",
    JobState.OUT_OF_MEMORY: "OOM", JobState.REQUEUED: "RQ", JobState.REQUEUE_HOLD: "RH",
    JobState.REQUEUE_FED: "RF", JobState.RESIZING: "RS", JobState.REVOKED: "RV", JobState.SIGNALING: "SI",
    JobState.SPECIAL_EXIT: "SE", JobState.STAGE_OUT: "SO", JobState.STOPPED: "ST", JobState.CONFIGURING: "CF",
}

FINISHED_STATES = frozenset({
    JobState.COMPLETED, JobState.CANCELLED, JobState.FAILED, JobState.TIMEOUT, JobState.NODE_FAIL,
    JobState.PREEMPTED, JobState.BOOT_FAIL, JobState.DEADLINE, JobState.OUT_OF_MEMORY, JobState.REVOKED,
})
ACTIVE_STATES = frozenset(set(JobState) - FINISHED_STATES)
FINISHED_NAMES = frozenset(s.value for s in FINISHED_STATES)
"""The same states as the strings job records carry."""

_BY_NAME: dict[str, JobState] = {}
for _s in JobState:
    _BY_NAME[_s.value] = _s
    _BY_NAME[COMPACT[_s]] = _s
_BY_NAME["CANCELED"] = JobState.CANCELLED


def parse_job_states(text: str) -> set[JobState] | None:
    """Parse ``-t/--states`` lists (``pd,r``, ``all``); None means every state.

    Raises ValueError naming the first bad entry, as squeue does.
    """
    out: set[JobState] = set()
    for item in text.split(","):
        key = item.strip().upper()
        if not key:
            continue
        if key == "ALL":
            return None
        state = _BY_NAME.get(key)
        if state is None:
            raise ValueError(item.strip())
        out.add(state)
    return out
