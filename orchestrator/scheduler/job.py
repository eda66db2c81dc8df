"""The job model: what the controller knows about one job, and its wire record.

A job's record (``Job.record()``) is the one shape every command reads: squeue,
scontrol, sacct and seff format these keys and nothing else. Bulky inputs (the
script and the environment) live only in the state store, and what a job was
submitted with (its OPTION fields) sits in one object that jobs submitted alike
share, so ten thousand pending jobs stay small in memory.
"""

from __future__ import annotations

import functools
import sys
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from operator import attrgetter
from types import MappingProxyType
from typing import Any, TypeVar, cast

from orchestrator.slurm.states import FINISHED_NAMES
from orchestrator.slurm.timefmt import INFINITE

__all__ = ["OPTION", "OPTION_FIELDS", "RECORD_FIELDS", "Job", "JobTable", "Step", "derived_exit_code",
           "share_options"]

_T = TypeVar("_T")

OPTION = MappingProxyType({"option": True})
"""Field metadata: the field is part of what the job was submitted with, kept in its ``_options``."""


class _Options:
    """A job's OPTION fields (the subclass ``_options_apart`` makes holds them as slots).

    ``shared`` once ``share_options`` has made it the one copy of its values that jobs hold
    alike; it is not changed again, a job that changes an option first takes a copy of its own.
    """

    __slots__ = ("__weakref__", "shared")

    def __init__(self) -> None:
        self.shared = False

    def copy(self) -> _Options:
        new = type(self)()
        for name in self.__slots__:  # the subclass's: the option fields
            setattr(new, name, getattr(self, name))
        return new


def _option_setter(name: str) -> Callable[[Any, Any], None]:
    def set_option(job: Any, value: Any) -> None:
        options = job._options
        if options.shared:
            options = job._options = options.copy()
        setattr(options, name, value)

    return set_option


def _options_apart(cls: type[_T]) -> type[_T]:
    """Give dataclass ``cls`` slots, with its OPTION fields gathered in one ``_options`` object.

    Those fields read and write through properties (a read costs ~45 ns more than a slot's), so
    the class keeps the dataclass's fields(), constructor, equality and repr. ``share_options``
    then lets jobs submitted alike hold one options object: a job record is 280 bytes instead
    of 616 (and small enough for Python's own allocator rather than malloc).
    """
    names = tuple(f.name for f in fields(cls) if f.metadata.get("option"))  # type: ignore[arg-type]
    options = type(f"{cls.__name__}Options", (_Options,), {"__slots__": names, "__module__": cls.__module__})
    own = tuple(f.name for f in fields(cls) if f.name not in names)  # type: ignore[arg-type]
    ns = {k: v for k, v in cls.__dict__.items() if k not in own and k not in ("__dict__", "__weakref__")}
    ns["__slots__"] = (*own, "_options")
    for name in names:
        ns[name] = property(attrgetter(f"_options.{name}"), _option_setter(name))
    init = ns["__init__"]

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        self._options = options()  # the dataclass's __init__ fills it, through the properties
        init(self, *args, **kwargs)

    ns["__init__"] = __init__
    new = type(cls.__name__, cls.__bases__, ns)
    new.__qualname__ = cls.__qualname__
    return cast("type[_T]", new)


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

    def record(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@_options_apart
@dataclass
class Job:
    """One job (or one started task of an array) as the controller tracks it.

    Times are epoch seconds (0 = not yet/unknown); limits are minutes with
    INFINITE for UNLIMITED; memory is MB. OPTION fields are what the job was
    submitted with: they live in an object that ``share_options`` shares between
    jobs submitted alike (setting one gives the job its own copy).
    """

    job_id: int
    cluster: str = field(metadata=OPTION)
    name: str = field(metadata=OPTION)
    uid: int = field(metadata=OPTION)
    gid: int = field(metadata=OPTION)
    user: str = field(metadata=OPTION)
    group: str = field(metadata=OPTION)
    account: str = field(metadata=OPTION)
    partition: str
    qos: str = field(default="normal", metadata=OPTION)
    comment: str = field(default="", metadata=OPTION)
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
    time_limit: int = field(default=INFINITE, metadata=OPTION)
    # request
    num_nodes: int = field(default=1, metadata=OPTION)
    max_nodes: int = field(default=0, metadata=OPTION)  # 0 = same as num_nodes
    nodes_explicit: bool = field(default=False, metadata=OPTION)  # -N given by the user
    num_tasks: int = field(default=1, metadata=OPTION)
    ntasks_explicit: bool = field(default=False, metadata=OPTION)
    ntasks_per_node: int = field(default=0, metadata=OPTION)
    cpus_per_task: int = field(default=1, metadata=OPTION)
    mem_per_cpu: int = field(default=0, metadata=OPTION)  # MB; one of mem_per_cpu / mem_per_node is set
    mem_per_node: int = field(default=0, metadata=OPTION)
    exclusive: bool = field(default=False, metadata=OPTION)
    req_nodes: str = field(default="", metadata=OPTION)
    exc_nodes: str = field(default="", metadata=OPTION)
    features: str = field(default="", metadata=OPTION)  # -C/--constraint expression as given
    gres: str = field(default="", metadata=OPTION)  # normalised per-node GRES request, e.g. "gpu:v100:1"
    gpus_per_task: int = field(default=0, metadata=OPTION)
    req_gpus: str = field(default="", metadata=OPTION)  # -G/--gpus and --gpus-per-node as given, for SLURM_GPUS / SLURM_GPUS_PER_NODE
    req_gpus_per_node: str = field(default="", metadata=OPTION)
    dependency: str = ""  # slurmctld's running form: what is still awaited, "afterok:5(unfulfilled)"
    dependency_spec: str = field(default="", metadata=OPTION)  # the --dependency given at submission
    requeue: bool = field(default=True, metadata=OPTION)
    kill_on_invalid_dep: bool = field(default=False, metadata=OPTION)  # --kill-on-invalid-dep=yes: cancelled once a dependency can never hold
    open_mode: str = field(default="truncate", metadata=OPTION)
    signal: str = field(default="", metadata=OPTION)  # "[B:]SIG@secs" as given
    mail_type: str = field(default="", metadata=OPTION)
    mail_user: str = field(default="", metadata=OPTION)
    # batch script and I/O
    batch: bool = field(default=True, metadata=OPTION)  # False for salloc/srun allocations
    batch_host: str = ""
    work_dir: str = field(default="", metadata=OPTION)
    command: str = field(default="", metadata=OPTION)
    std_out: str = field(default="", metadata=OPTION)  # pattern as given ("" = default)
    std_err: str = field(default="", metadata=OPTION)
    std_in: str = field(default="/dev/null", metadata=OPTION)
    submit_host: str = field(default="", metadata=OPTION)
    # arrays
    array_job_id: int = 0
    array_task_id: int | None = None
    array_task_str: str = ""  # pending remainder of the meta job, e.g. "3-5%2"
    array_max_tasks: int = field(default=0, metadata=OPTION)  # the %N throttle, 0 = none
    array_spec: str = field(default="", metadata=OPTION)  # --array as given, for SLURM_ARRAY_TASK_{COUNT,MIN,MAX,STEP}
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
    derived_exit_code: int = 0
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
    def display_id(self) -> str:
        """``12``, ``12_3`` or ``12_[3-5%2]`` as squeue prints %i."""
        if self.array_task_id is not None:
            return f"{self.array_job_id}_{self.array_task_id}"
        if self.array_task_str:
            return f"{self.array_job_id or self.job_id}_[{self.array_task_str}]"
        return str(self.job_id)


RECORD_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Job))
OPTION_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Job) if f.metadata.get("option"))

_options_of: Callable[[Job], _Options] = attrgetter("_options")
_option_values: Callable[[_Options], tuple[Any, ...]] = attrgetter(*OPTION_FIELDS)
_shared_options: weakref.WeakValueDictionary[tuple[Any, ...], _Options] = weakref.WeakValueDictionary()


def share_options(job: Job) -> Job:
    """Let the job hold the one shared copy of its options, with interned strings.

    Ten thousand jobs from one sbatch loop then hold one copy of their user, directory, output
    pattern and request between them. Values compare with their types (True is not 1).
    """
    options = _options_of(job)
    if options.shared:
        return job
    values = tuple(sys.intern(v) if type(v) is str else v for v in _option_values(options))
    key = (*values, *map(type, values))
    twin = _shared_options.get(key)
    if twin is None:
        for name, value in zip(OPTION_FIELDS, values, strict=True):
            setattr(options, name, value)
        options.shared = True
        twin = _shared_options[key] = options
    job._options = twin  # type: ignore[attr-defined]
    return job


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
