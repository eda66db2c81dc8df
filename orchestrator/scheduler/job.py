"""The job model: what the controller knows about one job, and its wire record.

A job's record (``Job.record()``) is the one shape every command reads: squeue,
scontrol, sacct and seff format these keys and nothing else. Bulky inputs (the
script and the environment) live only in the state store, so ten thousand
pending jobs stay small in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from orchestrator.slurm.states import FINISHED_NAMES
from orchestrator.slurm.timefmt import INFINITE

__all__ = ["RECORD_FIELDS", "Job", "JobTable", "Step", "derived_exit_code"]


@dataclass(slots=True)
class Step:
    """A job step: ``batch``, ``extern`` or a numbered srun step."""

    job_id: int
    step_id: str  # "batch", "extern", "0", "1", ...
    name: str = ""
    state: str = "RUNNING"
    start_time: float = 0.0
    end_time: float = 0.0
    nodes: str = ""  # compressed node list
    num_nodes: int = 0
    num_tasks: int = 0
    cpus: int = 0
    exit_code: int = 0
    exit_signal: int = 0
    total_cpu: float = 0.0  # seconds, user + system
    user_cpu: float = 0.0
    system_cpu: float = 0.0
    max_rss_kb: int = 0
    max_rss_node: str = ""
    max_rss_task: int = 0
    tasks_per_node: str = ""  # SLURM_STEP_TASKS_PER_NODE form, e.g. "48(x2)"
    cpu_bind: str = ""
    srun_host: str = ""
    srun_pid: int = 0
    cancelled_by: int | None = None  # who ran ``scancel N.S``

    def record(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(slots=True)
class Job:
    """One job (or one started task of an array) as the controller tracks it.

    Times are epoch seconds (0 = not yet/unknown); limits are minutes with
    INFINITE for UNLIMITED; memory is MB.
    """

    job_id: int
    cluster: str
    name: str
    uid: int
    gid: int
    user: str
    group: str
    account: str
    partition: str
    qos: str = "normal"
    comment: str = ""
    # state
    state: str = "PENDING"
    reason: str = "None"
    cancelled_by: int | None = None
    priority: int = 0
    hold: str = ""  # "", "user" or "admin"
    # times
    submit_time: float = 0.0
    eligible_time: float = 0.0
    begin_time: float = 0.0
    start_time: float = 0.0
    end_time: float = 0.0
    time_limit: int = INFINITE
    # request
    num_nodes: int = 1
    max_nodes: int = 0  # 0 = same as num_nodes
    nodes_explicit: bool = False  # -N given by the user
    num_tasks: int = 1
    ntasks_explicit: bool = False
    ntasks_per_node: int = 0
    cpus_per_task: int = 1
    mem_per_cpu: int = 0  # MB; one of mem_per_cpu / mem_per_node is set
    mem_per_node: int = 0
    exclusive: bool = False
    req_nodes: str = ""
    exc_nodes: str = ""
    features: str = ""  # -C/--constraint expression as given
    gres: str = ""  # normalised per-node GRES request, e.g. "gpu:v100:1"
    gpus_per_task: int = 0
    req_gpus: str = ""  # -G/--gpus and --gpus-per-node as given, for SLURM_GPUS / SLURM_GPUS_PER_NODE
    req_gpus_per_node: str = ""
    dependency: str = ""  # slurmctld's running form: what is still awaited, "afterok:5(unfulfilled)"
    dependency_spec: str = ""  # the --dependency given at submission
    requeue: bool = True
    kill_on_invalid_dep: bool = False  # --kill-on-invalid-dep=yes: cancelled once a dependency can never hold
    open_mode: str = "truncate"
    signal: str = ""  # "[B:]SIG@secs" as given
    mail_type: str = ""
    mail_user: str = ""
    # batch script and I/O
    batch: bool = True  # False for salloc/srun allocations
    batch_host: str = ""
    work_dir: str = ""
    command: str = ""
    std_out: str = ""  # pattern as given ("" = default)
    std_err: str = ""
    std_in: str = "/dev/null"
    submit_host: str = ""
    # arrays
    array_job_id: int = 0
    array_task_id: int | None = None
    array_task_str: str = ""  # pending remainder of the meta job, e.g. "3-5%2"
    array_max_tasks: int = 0  # the %N throttle, 0 = none
    array_spec: str = ""  # --array as given, for SLURM_ARRAY_TASK_{COUNT,MIN,MAX,STEP}
    # allocation
    nodes: str = ""  # compressed allocated node list
    alloc_cpus: int = 0
    alloc_mem: int = 0  # MB in total
    cpus_per_node: dict[str, int] = field(default_factory=dict)
    mem_per_alloc_node: dict[str, int] = field(default_factory=dict)
    gpus_per_node: dict[str, list[int]] = field(default_factory=dict)
    # outcome
    exit_code: int = 0
    exit_signal: int = 0
    restart_count: int = 0
    total_cpu: float = 0.0
    max_rss_kb: int = 0
    steps: list[Step] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """The wire record every command formats."""
        out = {name: getattr(self, name) for name in RECORD_FIELDS if name != "steps"}
        out["steps"] = [s.record() for s in self.steps]
        return out

    @property
    def derived_exit_code(self) -> int:
        """Read from the steps whenever asked, never stored: it follows each step the step service closes,
        including those a job's end kills after the job line was written."""
        return derived_exit_code(self.steps)

    @property
    def display_id(self) -> str:
        """``12``, ``12_3`` or ``12_[3-5%2]`` as squeue prints %i."""
        if self.array_task_id is not None:
            return f"{self.array_job_id}_{self.array_task_id}"
        if self.array_task_str:
            return f"{self.array_job_id or self.job_id}_[{self.array_task_str}]"
        return str(self.job_id)


RECORD_FIELDS: tuple[str, ...] = (*(f.name for f in fields(Job)), "derived_exit_code")


def derived_exit_code(steps: list[Step]) -> int:
    """Slurm's DerivedExitCode: the highest wait status (``code << 8 | signal``) of the job's srun steps;
    the batch script's own status is the job's ExitCode, not a step's."""
    return max(((s.exit_code << 8) | s.exit_signal for s in steps if s.step_id.isdigit()), default=0)


class JobTable(dict[int, "Job"]):
    """The controller's resident jobs by id, with the unfinished ones also kept apart.

    A scheduling pass follows every submit and every job end, and finished jobs stay resident
    for MinJobAge (thousands after a burst of short jobs), so a pass must not walk them all.
    Jobs enter by ``table[id] = job``, also one that finished and is queued again (a requeue).
    """

    def __init__(self) -> None:
        super().__init__()
        self._live: dict[int, Job] = {}

    def __setitem__(self, job_id: int, job: Job) -> None:
        super().__setitem__(job_id, job)
        self._live[job_id] = job

    def __delitem__(self, job_id: int) -> None:
        super().__delitem__(job_id)
        self._live.pop(job_id, None)

    def setdefault(self, job_id: int, job: Job) -> Job:
        if job_id not in self:
            self[job_id] = job
        return self[job_id]

    def unfinished(self) -> list[Job]:
        """The jobs not in a finished state, in submission order (finished ones are dropped here)."""
        live = self._live
        for job_id in [i for i, j in live.items() if j.state in FINISHED_NAMES]:
            del live[job_id]
        return list(live.values())
