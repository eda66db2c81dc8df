"""The job model: what the controller knows about one job, and its wire record.

A job's record (``Job.record()``) is the one shape every command reads: squeue,
scontrol, sacct and seff format these keys and nothing else. Bulky inputs (the
script and the environment) live only in the state store, and what a job was
submitted with, and what running it produced, sit in objects that jobs alike
share, so ten thousand pending jobs stay small in memory.
"""

from __future__ import annotations

import functools
import sys
import weakref
from collections.abc import Callable
from dataclasses import MISSING, Field, dataclass, field, fields, make_dataclass, replace
from operator import attrgetter, is_, itemgetter
from types import MappingProxyType
from typing import Any, TypeVar, cast

from orchestrator.slurm.states import FINISHED_NAMES
from orchestrator.slurm.timefmt import INFINITE

__all__ = ["FIELDS", "NO_ALLOCATION", "NO_STEPS", "OPTION", "OWN_FIELDS", "RECORD_FIELDS", "RUN", "Job", "JobTable", "Step",
           "derived_exit_code", "job_from_values", "share_parts"]

_T = TypeVar("_T")

OPTION = MappingProxyType({"part": "_options"})
"""Field metadata: what the job was submitted with. Jobs submitted alike share one copy (``share_parts``)."""
RUN = MappingProxyType({"part": "_run"})
"""Field metadata: what running the job produced. Jobs that have not run share one copy of the defaults."""


def _refuse(*_: object, **__: object) -> None:
    raise TypeError("a shared empty map or list is read-only; assign a new one")


class _NoAllocation(dict[str, Any]):
    """The one empty per-node map every unallocated job shares; allocating assigns a new dict."""

    __setitem__ = __delitem__ = update = setdefault = pop = popitem = clear = __ior__ = _refuse  # type: ignore[assignment]


class _NoSteps(list[Any]):
    """The one empty step list every job that has not run shares; recording steps assigns a new list."""

    __setitem__ = __delitem__ = append = extend = insert = pop = remove = clear = sort = reverse = _refuse
    __iadd__ = __imul__ = _refuse  # type: ignore[assignment]


NO_ALLOCATION: dict[str, Any] = _NoAllocation()
NO_STEPS: list[Any] = _NoSteps()


class _Part:
    """Some of a job's fields, in the slots of the dataclass ``_in_parts`` makes for each part.

    A ``shared`` part is held by jobs alike and is not changed again: a job that sets one of
    its fields first takes a copy of its own.
    """

    __slots__ = ("__weakref__", "shared")
    shared: bool

    def copy(self) -> _Part:
        return replace(self, shared=False)  # type: ignore[type-var]


def _part_setter(slot: str, name: str) -> Callable[[Any, Any], None]:
    part_of = attrgetter(slot)

    def set_field(job: Any, value: Any) -> None:
        part = part_of(job)
        if part.shared:
            if value is getattr(part, name):
                return  # what it holds already (a constructor's defaults): keep sharing
            part = part.copy()
            setattr(job, slot, part)
        setattr(part, name, value)

    return set_field


class _Given:
    """A plain namespace for a dataclass's own __init__ to fill (arguments, defaults and factories)."""


def _in_parts(cls: type[_T]) -> type[_T]:
    """Give dataclass ``cls`` slots, with the fields of each part (OPTION, RUN) gathered in one object.

    Those fields read and write through properties (a read costs ~45 ns more than a slot's), so the
    class keeps the dataclass's fields(), constructor, equality and repr, and ``share_parts`` can let
    jobs hold a part alike. A part whose fields all have defaults has one shared copy of them, which
    a new object holds when given those defaults. A Job record is then 144 bytes instead of 616.
    """
    parts: dict[str, list[Field[Any]]] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if "part" in f.metadata:
            parts.setdefault(f.metadata["part"], []).append(f)
    in_parts = {f.name for fs in parts.values() for f in fs}
    own = tuple(f.name for f in fields(cls) if f.name not in in_parts)  # type: ignore[arg-type]
    ns = {k: v for k, v in cls.__dict__.items() if k not in own and k not in ("__dict__", "__weakref__")}
    ns["__slots__"] = (*own, *parts)
    layout: list[tuple[str, Callable[..., _Part], Callable[[dict[str, Any]], tuple[Any, ...]],
                       _Part | None, tuple[Any, ...]]] = []
    for slot, fs in parts.items():
        names = tuple(f.name for f in fs)
        holder = make_dataclass(f"{cls.__name__}{slot.strip('_').title()}",
                                [*((f.name, f.type) for f in fs), ("shared", bool, False)], bases=(_Part,),
                                namespace={"__module__": cls.__module__}, slots=True, eq=False)
        defaults, default_values = None, ()
        if all(f.default is not MISSING or f.default_factory is not MISSING for f in fs):
            default_values = tuple(f.default if f.default is not MISSING else f.default_factory() for f in fs)  # type: ignore[operator]
            defaults = _DEFAULT_PARTS[slot] = holder(*default_values, shared=True)
        layout.append((slot, holder, itemgetter(*names), defaults, default_values))
        for name in names:
            ns[name] = property(attrgetter(f"{slot}.{name}"), _part_setter(slot, name))
    init = ns["__init__"]

    def lay_out(obj: Any, values: dict[str, Any]) -> Any:
        """Set ``obj``'s slots and parts from a value for every field."""
        for name in own:
            setattr(obj, name, values[name])
        for slot, holder, values_of, defaults, default_values in layout:
            part_values = values_of(values)
            if defaults is not None and all(map(is_, part_values, default_values)):
                setattr(obj, slot, defaults)
            else:
                setattr(obj, slot, holder(*part_values))
        return obj

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        given = _Given()
        init(given, *args, **kwargs)  # a setter per part field would cost 3 times as much
        lay_out(self, given.__dict__)

    ns["_lay_out"] = staticmethod(lay_out)
    ns["__init__"] = __init__
    new = type(cls.__name__, cls.__bases__, ns)
    new.__qualname__ = cls.__qualname__
    return cast("type[_T]", new)


_DEFAULT_PARTS: dict[str, _Part] = {}


def _no_allocation() -> dict[str, Any]:
    """The default of a job's allocation maps: the shared read-only one, not a new dict per job."""
    return NO_ALLOCATION


def _no_steps() -> list[Step]:
    """The default of a job's step list: the shared read-only one, not a new list per job."""
    return NO_STEPS


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


@_in_parts
@dataclass
class Job:
    """One job (or one started task of an array) as the controller tracks it.

    Times are epoch seconds (0 = not yet/unknown); limits are minutes with
    INFINITE for UNLIMITED; memory is MB. OPTION fields (what the job was
    submitted with) and RUN fields (what running it produced) live in two part
    objects that jobs alike share (``share_parts``); setting such a field gives
    the job its own copy of that part. A job without an allocation holds the
    read-only NO_ALLOCATION maps, one that has not run the read-only NO_STEPS.
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
    reason_prev: str = "None"  # the last reason it waited for besides its turn or room: sacct's Reason
    cancelled_by: int | None = field(default=None, metadata=RUN)
    priority: int = 0
    hold: str = ""  # "", "user" or "admin"
    # times
    submit_time: float = 0.0
    eligible_time: float = 0.0  # slurmctld's details->begin_time: 0 while held or dependent, see Controller
    accrue_time: float = 0.0  # the first eligible time it had; kept through a later hold
    begin_time: float = 0.0  # --begin as asked for: the scheduler waits for it
    expected_start: float = 0.0  # a pending job's: its begin time or the backfill estimate (slurmctld's start_time)
    sched_nodes: str = ""  # a pending job's nodes in that estimate (slurmctld's sched_nodes; squeue %Y)
    start_time: float = field(default=0.0, metadata=RUN)
    end_time: float = field(default=0.0, metadata=RUN)
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
    batch_host: str = field(default="", metadata=RUN)
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
    nodes: str = field(default="", metadata=RUN)  # compressed allocated node list
    alloc_cpus: int = field(default=0, metadata=RUN)
    alloc_mem: int = field(default=0, metadata=RUN)  # MB in total
    cpus_per_node: dict[str, int] = field(default_factory=_no_allocation, metadata=RUN)
    mem_per_alloc_node: dict[str, int] = field(default_factory=_no_allocation, metadata=RUN)
    gpus_per_node: dict[str, list[int]] = field(default_factory=_no_allocation, metadata=RUN)
    # outcome
    exit_code: int = field(default=0, metadata=RUN)
    exit_signal: int = field(default=0, metadata=RUN)
    restart_count: int = field(default=0, metadata=RUN)
    total_cpu: float = field(default=0.0, metadata=RUN)
    max_rss_kb: int = field(default=0, metadata=RUN)
    steps: list[Step] = field(default_factory=_no_steps, metadata=RUN)

    def record(self) -> dict[str, Any]:
        """The wire record every command formats."""
        out = dict(zip(RECORD_FIELDS, _record_values(self), strict=True))
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


FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Job))
RECORD_FIELDS: tuple[str, ...] = (*FIELDS, "derived_exit_code")
_record_values: Callable[[Job], tuple[Any, ...]] = attrgetter(*RECORD_FIELDS)
OWN_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Job) if "part" not in f.metadata)
"""The fields in the job record's own slots (the others are in its parts)."""

_FIELD_SET = frozenset(FIELDS)


def job_from_values(values: dict[str, Any]) -> Job:
    """``Job(**values)``; with a value for every field (records from the store have them: sacct and
    recovery build thousands) in a third of the time, as there are no arguments or defaults to apply."""
    if values.keys() != _FIELD_SET:
        return Job(**values)
    job: Job = Job._lay_out(Job.__new__(Job), values)  # type: ignore[attr-defined]
    return job


_OPTION_FIELDS = tuple(f.name for f in fields(Job) if f.metadata.get("part") == OPTION["part"])
_RUN_FIELDS = tuple(f.name for f in fields(Job) if f.metadata.get("part") == RUN["part"])
_options_of: Callable[[Job], _Part] = attrgetter("_options")
_run_of: Callable[[Job], _Part] = attrgetter("_run")
_option_values: Callable[[_Part], tuple[Any, ...]] = attrgetter(*_OPTION_FIELDS)
_run_values: Callable[[_Part], tuple[Any, ...]] = attrgetter(*_RUN_FIELDS)
_NOT_RUN = _DEFAULT_PARTS["_run"]
_NOT_RUN_VALUES = _run_values(_NOT_RUN)
_shared_options: weakref.WeakValueDictionary[tuple[Any, ...], _Part] = weakref.WeakValueDictionary()


def share_parts(job: Job) -> Job:
    """Let the job hold its parts alike with other jobs (memory: ~500 bytes a pending job less).

    Its options become the one shared copy of their values, with interned strings: ten thousand
    jobs from one sbatch loop hold one copy of their user, directory, output pattern and request.
    A job that has not run holds the one copy of the RUN defaults. Values compare with their
    types (True is not 1, 0 is not 0.0), maps and lists by value.
    """
    options = _options_of(job)
    if not options.shared:
        values = _option_values(options)
        twin = _shared_options.get((*values, *map(type, values)))
        if twin is None:  # the first of its kind
            values = tuple(sys.intern(v) if type(v) is str else v for v in values)
            for name, value in zip(_OPTION_FIELDS, values, strict=True):
                setattr(options, name, value)
            options.shared = True
            twin = _shared_options[(*values, *map(type, values))] = options
        job._options = twin  # type: ignore[attr-defined]
    run = _run_of(job)
    if not run.shared:
        values = _run_values(run)
        if values == _NOT_RUN_VALUES and all(type(v) is type(d) for v, d in zip(values, _NOT_RUN_VALUES, strict=True)
                                             if not isinstance(v, dict | list)):
            job._run = _NOT_RUN  # type: ignore[attr-defined]
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
