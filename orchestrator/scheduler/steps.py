"""Job steps: what srun asks the controller for, and what the node daemons run for it.

Slurm's split is kept. srun asks the controller for a step (``step_create``:
step id, nodes, task layout, CPUs per node, node addresses); the controller
only books CPUs inside the job's allocation and records the step for squeue
and sacct. srun then connects to each node daemon with ``step_launch`` and
that connection carries the step's I/O both ways until every task on the node
has exited; each node reports its share of the step to the controller
(``step_complete``) before telling srun it is done, so sacct is current when
srun returns.

Allocations without a batch script (salloc, srun outside a job) and the nodes
of a batch job other than its batch host get a light job record on each node
(``job_prepare``): a holder process, like Slurm's extern step, that carries the
job's time limit, TMPDIR and step sessions through the node daemon's existing
enforcement. The holder ignores SIGTERM so that steps get their grace period;
it is killed once the job is ending and no step task is left.

Frames on a ``step_launch`` connection after the reply (header ``t``, raw body):

==========  =============================================================
node->srun  ``o``/``e`` stdout/stderr bytes of task ``k``; ``x`` tasks ``k`` (list)
            exited with wait status ``s`` (``oom`` when killed for memory);
            ``a`` the step is being ended for reason ``r``; ``d`` node done
srun->node  ``i`` stdin bytes (empty = EOF); ``s`` signal ``n``; ``k`` abort
            (SIGCONT, SIGTERM, then SIGKILL); ``w`` window size ``r`` x ``c``
==========  =============================================================
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
import signal
import struct
import subprocess
import termios
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orchestrator.scheduler import jobenv
from orchestrator.scheduler.errors import SlurmError
from orchestrator.scheduler.job import Job, Step
from orchestrator.scheduler.plugins import Plugin
from orchestrator.scheduler.protocol import VERSION, ProtocolError, RpcError, encode_frame
from orchestrator.scheduler.server import Request, call_async, read_frame_async, reply_ok
from orchestrator.slurm.hostlist import HostlistError, compress, expand
from orchestrator.slurm.states import FINISHED_NAMES as FINISHED
from orchestrator.slurm.timefmt import format_timestamp

if TYPE_CHECKING:
    from orchestrator.scheduler.controller import Controller
    from orchestrator.scheduler.noded import NodeDaemon, RunningJob
    from orchestrator.slurm.cpubind import Binding

log = logging.getLogger(__name__)

__all__ = ["ControllerSteps", "NodeSteps", "StepPlan", "StepRequest", "combine_status", "plan_step"]

STEP_ABORT_TIME = 2  # Slurm's STEP_ABORT_TIME: srun waits KillWait plus this after an abort
READY_TIMEOUT = 15.0
SAVE_DELAY = 1.0
BUSY_GRACE = 0.5
OUT_CHUNK = 65536
HIGH_WATER = 4 << 20


# ---------------------------------------------------------------------------------------------- layout

@dataclass
class StepRequest:
    """What srun asks for, after its own option processing (srun's opt.c rules)."""

    ntasks: int = 1
    ntasks_set: bool = False
    min_nodes: int = 1
    nodes_set: bool = False
    ntasks_per_node: int = 0
    cpus_per_task: int = 1
    nodelist: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    overcommit: bool = False
    exact: bool = False  # --exact / --exclusive: only the CPUs the tasks need
    overlap: bool = False  # share CPUs with every other step
    distribution: str = "block"

    @classmethod
    def from_body(cls, b: dict[str, Any]) -> StepRequest:
        def names(key: str) -> list[str]:
            text = str(b.get(key) or "")
            if not text:
                return []
            try:
                return expand(text)
            except HostlistError:
                raise SlurmError("ESLURM_INVALID_NODE_NAME") from None

        return cls(ntasks=max(1, int(b.get("ntasks", 1))), ntasks_set=bool(b.get("ntasks_set")),
                   min_nodes=max(1, int(b.get("min_nodes", 1))), nodes_set=bool(b.get("nodes_set")),
                   ntasks_per_node=max(0, int(b.get("ntasks_per_node", 0))),
                   cpus_per_task=max(1, int(b.get("cpus_per_task", 1))), nodelist=names("nodelist"),
                   exclude=names("exclude"), overcommit=bool(b.get("overcommit")), exact=bool(b.get("exact")),
                   overlap=bool(b.get("overlap")), distribution=str(b.get("distribution") or "block"))


@dataclass
class StepPlan:
    nodes: list[str]
    tasks: dict[str, list[int]]  # node -> global task ids, in order
    cpus: dict[str, int]  # CPUs the step may use on each node
    consumed: dict[str, int]  # CPUs it holds against other steps (empty for --overlap)

    @property
    def ntasks(self) -> int:
        return sum(len(t) for t in self.tasks.values())

    @property
    def tasks_per_node(self) -> str:
        return jobenv.per_node_counts([len(self.tasks[n]) for n in self.nodes])


def _spread(ntasks: int, caps: list[int | None]) -> list[int] | None:
    """Deal tasks one at a time round the nodes, as Slurm's block layout counts them."""
    counts = [0] * len(caps)
    placed = 0
    while placed < ntasks:
        moved = False
        for i, cap in enumerate(caps):
            if placed >= ntasks:
                break
            if cap is not None and counts[i] >= cap:
                continue
            counts[i] += 1
            placed += 1
            moved = True
        if not moved:
            return None
    return counts


def plan_step(job_nodes: list[str], job_cpus: dict[str, int], used: dict[str, int], req: StepRequest) -> StepPlan:
    """Choose nodes, lay tasks out and book CPUs for one step inside a job's allocation.

    Raises SlurmError: ESLURM_REQUESTED_NODE_CONFIG_UNAVAILABLE (nodes not in the job),
    ESLURM_TOO_MANY_REQUESTED_CPUS (never fits the job), ESLURM_NODES_BUSY (fits once
    other steps end: srun retries).
    """
    cpt = req.cpus_per_task
    if any(n not in job_nodes for n in req.nodelist):
        raise SlurmError("ESLURM_REQUESTED_NODE_CONFIG_UNAVAILABLE")
    cands = [n for n in job_nodes if n not in req.exclude]
    if any(n in req.exclude for n in req.nodelist):
        raise SlurmError("ESLURM_REQUESTED_NODE_CONFIG_UNAVAILABLE")

    def free(n: str) -> int:
        return job_cpus.get(n, 0) if req.overlap else max(0, job_cpus.get(n, 0) - used.get(n, 0))

    if req.nodelist:
        chosen = [n for n in job_nodes if n in req.nodelist]
        want = max(len(chosen), req.min_nodes if req.nodes_set else 0)
        for n in cands:
            if len(chosen) >= want:
                break
            if n not in chosen:
                chosen.append(n)
        chosen = [n for n in job_nodes if n in chosen]
        if len(chosen) < want:
            raise SlurmError("ESLURM_REQUESTED_NODE_CONFIG_UNAVAILABLE")
    elif req.nodes_set:
        if req.min_nodes > len(cands):
            raise SlurmError("ESLURM_REQUESTED_NODE_CONFIG_UNAVAILABLE")
        # prefer nodes with room, keeping the allocation's order
        roomy = [n for n in cands if free(n) >= cpt]
        pick = roomy[:req.min_nodes]
        if len(pick) < req.min_nodes:
            pick += [n for n in cands if n not in pick][:req.min_nodes - len(pick)]
        chosen = [n for n in cands if n in pick]
    else:
        need = req.ntasks * cpt
        chosen = []
        have = 0
        pool = [n for n in cands if free(n) >= cpt] or cands
        for n in pool:
            chosen.append(n)
            have += free(n) if not req.overcommit else need
            if have >= need or len(chosen) >= req.ntasks:
                break
        if have < need and not req.overcommit:
            chosen = cands[:max(1, min(len(cands), req.ntasks))]
    if not chosen:
        raise SlurmError("ESLURM_REQUESTED_NODE_CONFIG_UNAVAILABLE")
    chosen = chosen[:max(1, req.ntasks)]

    def counts_for(capacity: dict[str, int]) -> list[int] | None:
        caps: list[int | None] = []
        for n in chosen:
            cap: int | None = None if req.overcommit else capacity[n] // cpt
            if req.ntasks_per_node:
                cap = req.ntasks_per_node if cap is None else min(cap, req.ntasks_per_node)
            caps.append(cap)
        counts = _spread(req.ntasks, caps)
        if counts is not None and any(c == 0 for c in counts):
            return None
        return counts

    if counts_for({n: job_cpus.get(n, 0) for n in chosen}) is None:
        raise SlurmError("ESLURM_TOO_MANY_REQUESTED_CPUS")
    counts = counts_for({n: free(n) for n in chosen})
    if counts is None or (not req.overlap and any(free(n) < 1 for n in chosen)):
        raise SlurmError("ESLURM_NODES_BUSY")

    tasks: dict[str, list[int]] = {n: [] for n in chosen}
    if req.distribution.split(":")[0].lower() == "cyclic":
        left = dict(zip(chosen, counts, strict=True))
        gtid = 0
        while gtid < req.ntasks:
            for n in chosen:
                if left[n] and gtid < req.ntasks:
                    tasks[n].append(gtid)
                    left[n] -= 1
                    gtid += 1
    else:
        gtid = 0
        for n, c in zip(chosen, counts, strict=True):
            tasks[n] = list(range(gtid, gtid + c))
            gtid += c
    cpus: dict[str, int] = {}
    consumed: dict[str, int] = {}
    for n, c in zip(chosen, counts, strict=True):
        need = c * cpt
        if req.exact:
            cpus[n] = min(need, job_cpus.get(n, 0)) if req.overcommit else need
        else:
            cpus[n] = free(n)
        cpus[n] = max(1, cpus[n])
        if not req.overlap:
            consumed[n] = min(cpus[n], free(n))
    return StepPlan(chosen, tasks, cpus, consumed)


def combine_status(current: tuple[int, int], exit_code: int, sig: int) -> tuple[int, int]:
    """srun's rule for the step's result: a signal beats an exit code, then the highest wins."""
    code, s = current
    if sig:
        return (0, max(s, sig)) if not s or sig > s else (code, s)
    if s:
        return code, s
    return max(code, exit_code), 0


def step_state(status: tuple[int, int], reasons: set[str]) -> str:
    """A step's accounting state: as slurmdbd records it, a step whose status is a signal was CANCELLED,
    not FAILED (``srun sh -c 'kill -9 $$'`` shows ``CANCELLED 0:9``)."""
    if "OUT_OF_MEMORY" in reasons:
        return "OUT_OF_MEMORY"
    if reasons & {"CANCELLED", "TIMEOUT", "REQUEUED", "NODE_FAIL", "ABORTED", "COMPLETED"} or status[1]:
        return "CANCELLED"
    if status != (0, 0):
        return "FAILED"
    return "COMPLETED"


# ---------------------------------------------------------------------------------------------- controller

@dataclass
class _Active:
    step: Step
    consumed: dict[str, int]
    tasks: dict[str, list[int]]
    waiting: set[str]
    status: tuple[int, int] = (0, 0)
    reasons: set[str] = field(default_factory=set)
    ended_by_job: str = ""  # the job ended first: a node report may still arrive (it wins)
    ended_at: float = 0.0
    cpu_ids: dict[str, list[int]] = field(default_factory=dict)  # node -> the step's CPUs there


class ControllerSteps(Plugin):
    """The controller's side: step ids and CPU bookkeeping, allocation waits and ends.

    A controller plugin (see plugins.py): it adds ops and hooks job start and end.
    """

    def __init__(self, ctl: Controller) -> None:
        self.ctl = ctl
        self.active: dict[int, dict[int, _Active]] = {}
        self.next_id: dict[int, int] = {}
        self.ready: dict[int, asyncio.Event] = {}
        self.job_tasks: dict[int, dict[str, int]] = {}
        self._changed = asyncio.Event()
        self._bg: set[asyncio.Future[Any]] = set()
        self._dirty: set[int] = set()
        self.ended: dict[tuple[int, int], _Active] = {}
        self.cpu_ids: dict[int, dict[str, list[int]]] = {}  # job -> node -> its CPUs there

    # -- plugin interface
    def handlers(self) -> dict[str, Any]:
        return {"step_create": self.op_step_create, "step_complete": self.op_step_complete,
                "step_signal": self.op_step_signal, "alloc_wait": self.op_alloc_wait,
                "alloc_complete": self.op_alloc_complete}

    def eligibility(self, job: Job) -> str | None:
        return None

    def on_submit(self, job: Job) -> None:
        pass

    def on_start(self, job: Job) -> None:
        self.ready[job.job_id] = asyncio.Event()
        self.active.pop(job.job_id, None)
        self.next_id.pop(job.job_id, None)  # a requeued job's run numbers its steps from 0 again
        self.cpu_ids.pop(job.job_id, None)
        self.job_cpu_ids(job)
        cutoff = time.monotonic() - 60
        for key in [k for k, a in self.ended.items() if a.ended_at < cutoff or k[0] == job.job_id]:
            del self.ended[key]
        self._wake()

    async def launch(self, job: Job, tasks: dict[str, int]) -> bool:
        """Ready the job's nodes; True when there is nothing else to start (no batch script)."""
        self.job_tasks[job.job_id] = dict(tasks)
        nodes = [n for n in expand(job.nodes)] if job.nodes else list(job.cpus_per_node)
        others = [n for n in nodes if not job.batch or n != job.batch_host]
        ready = self.ready.setdefault(job.job_id, asyncio.Event())
        if job.batch:
            self._spawn(self._prepare(job, others, ready))
            return False
        await self._prepare(job, others, ready)
        return True

    def on_end(self, job: Job) -> None:
        now = job.end_time or time.time()
        reason = job.state if job.state in FINISHED else "REQUEUED"
        for act in list(self.active.pop(job.job_id, {}).values()):
            act.reasons.add(reason)
            act.ended_by_job, act.ended_at = reason, time.monotonic()
            self._close_step(job, act, now)
            self.ended[(job.job_id, int(act.step.step_id))] = act
        for st in job.steps:  # steps the controller lost track of (a restart) end with the job
            if st.step_id.isdigit() and st.state == "RUNNING":
                st.state, st.end_time = "CANCELLED", now
        self.ready.pop(job.job_id, None)
        self.job_tasks.pop(job.job_id, None)
        self.cpu_ids.pop(job.job_id, None)
        nodes = list(job.cpus_per_node)
        holders = [n for n in nodes if not job.batch or n != job.batch_host]
        if holders:
            self._spawn(self._end_nodes(job.job_id, holders))
        self._wake()

    # -- helpers
    def _save_soon(self, job: Job) -> None:
        """Write step changes within a second, once per burst: queries read memory, and a short
        srun should not wait for the disk twice."""
        if job.job_id in self._dirty:
            return
        self._dirty.add(job.job_id)

        def save() -> None:
            self._dirty.discard(job.job_id)
            if self.ctl.jobs.get(job.job_id) is job:
                self.ctl._save(job)

        asyncio.get_running_loop().call_later(SAVE_DELAY, save)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _prepare(self, job: Job, nodes: list[str], ready: asyncio.Event) -> None:
        body = {"job": job.record()}
        results = await asyncio.gather(*(self._call_node(n, "job_prepare", body) for n in nodes))
        failed = [n for n, ok in zip(nodes, results, strict=True) if ok is None]
        if failed and job.state == "RUNNING":
            log.error("job %d: nodes %s could not be readied", job.job_id, ",".join(failed))
            self.ctl._finish(job, "NODE_FAIL", time.time(), exit_code=0, sig=0, usage=None)
        ready.set()
        self._wake()

    async def _end_nodes(self, job_id: int, nodes: list[str]) -> None:
        await asyncio.gather(*(self._call_node(n, "kill", {"job_id": job_id, "reason": "COMPLETED"})
                               for n in nodes))

    async def _call_node(self, name: str, op: str, body: dict[str, Any]) -> dict[str, Any] | None:
        node = self.ctl.nodes.get(name)
        if node is None or node.addr is None:
            return None
        try:
            return await call_async(*node.addr, op, body, timeout=10)
        except (TimeoutError, OSError, RpcError) as exc:
            log.warning("%s of job %s on %s failed: %s", op, body.get("job_id", "?"), name, exc)
            return None

    async def _check_node(self, name: str) -> None:
        """srun lost its connection to a node: if its daemon does not answer either, the node is down
        and its jobs end NODE_FAIL now rather than after SlurmdTimeout."""
        node = self.ctl.nodes.get(name)
        if node is None or node.addr is None or node.down:
            return
        for _ in range(2):
            try:
                await call_async(*node.addr, "ping", {}, timeout=3)
                return
            except (TimeoutError, OSError, RpcError):
                await asyncio.sleep(0.5)
        log.warning("node %s lost by srun and not answering: DOWN", name)
        now = time.time()
        node.responding = False
        node.down = True
        node.reason = "Not responding"
        node.reason_time = now
        node.reason_uid = 0
        self.ctl._node_failed(name, now)
        self.ctl.schedule_soon()

    def _job(self, req: Request, job_id: Any) -> Job:
        try:
            jid = int(str(job_id).split(".")[0])
        except ValueError:
            raise SlurmError("ESLURM_INVALID_JOB_ID") from None
        job = self.ctl.jobs.get(jid)
        if job is None:
            raise SlurmError("ESLURM_INVALID_JOB_ID")
        if req.uid not in (0, job.uid, os.getuid()):
            raise SlurmError("ESLURM_ACCESS_DENIED")
        return job

    def _close_step(self, job: Job, act: _Active, now: float) -> None:
        st = act.step
        st.state = step_state(act.status, act.reasons)
        st.end_time = now
        st.exit_code, st.exit_signal = act.status
        st.total_cpu = st.user_cpu + st.system_cpu

    def job_cpu_ids(self, job: Job) -> dict[str, list[int]]:
        """Which of each node's CPUs the job has, as select/cons_tres hands out cores: the lowest ones no
        other running job holds (shared ones only when the node is oversubscribed). Kept in memory: after a
        controller restart a running job gets its ids again when it next asks for a step."""
        out = self.cpu_ids.setdefault(job.job_id, {})
        for n, count in job.cpus_per_node.items():
            if n in out:
                continue
            node = self.ctl.nodes.get(n)
            total = max(int(node.spec.cpus) if node is not None else 0, int(count))
            taken: set[int] = set()
            for jid, per in self.cpu_ids.items():
                if jid != job.job_id and n in per:
                    taken.update(per[n])
            order = [i for i in range(total) if i not in taken] + sorted(taken)
            out[n] = sorted(order[:max(0, int(count))])
        return out

    def _step_cpu_ids(self, job: Job, plan: StepPlan) -> dict[str, list[int]]:
        """The step's CPUs on each node: the job's, less those other steps hold (all of them with --overlap
        or --overcommit past the job's CPUs), lowest first."""
        ids = self.job_cpu_ids(job)
        out: dict[str, list[int]] = {}
        for n in plan.nodes:
            mine = ids.get(n, [])
            busy: set[int] = set()
            for act in self.active.get(job.job_id, {}).values():
                if act.consumed.get(n):
                    busy.update(act.cpu_ids.get(n, []))
            order = [i for i in mine if i not in busy] + [i for i in mine if i in busy]
            out[n] = sorted(order[:max(1, plan.cpus.get(n, 1))])
        return out

    def _env(self, job: Job) -> dict[str, str]:
        tasks = self.job_tasks.get(job.job_id)
        if tasks is None:
            per = max(1, job.cpus_per_task)
            tasks = {n: job.ntasks_per_node or max(1, c // per) for n, c in job.cpus_per_node.items()}
        env = jobenv.job_env(job, tasks, self.ctl.cluster.controller_hostname, self.ctl.cluster.controller_port)
        return env

    # -- ops
    async def op_step_create(self, req: Request) -> dict[str, Any]:
        b = req.body
        job = self._job(req, b["job_id"])
        if job.state == "PENDING":
            raise SlurmError("ESLURM_JOB_PENDING")
        if job.state != "RUNNING":
            raise SlurmError("ESLURM_ALREADY_DONE")
        ready = self.ready.get(job.job_id)
        if ready is not None and not ready.is_set():
            try:
                await asyncio.wait_for(ready.wait(), READY_TIMEOUT)
            except TimeoutError:
                raise SlurmError("ESLURM_NODES_BUSY") from None
            if job.state != "RUNNING":
                raise SlurmError("ESLURM_ALREADY_DONE")
        sreq = StepRequest.from_body(b)
        if b.get("pty"):
            sreq.overlap = True  # an interactive shell must not lock its own allocation against srun inside it
        job_nodes = expand(job.nodes) if job.nodes else list(job.cpus_per_node)
        # a step that just ended is reported by its nodes a moment after its srun returned:
        # busy CPUs get that moment before the answer is "busy"
        deadline = time.monotonic() + BUSY_GRACE
        while True:
            used: dict[str, int] = {}
            for act in self.active.get(job.job_id, {}).values():
                for n, c in act.consumed.items():
                    used[n] = used.get(n, 0) + c
            try:
                plan = plan_step(job_nodes, job.cpus_per_node, used, sreq)
                break
            except SlurmError as exc:
                left = deadline - time.monotonic()
                if exc.code != "ESLURM_NODES_BUSY" or left <= 0 or job.state != "RUNNING":
                    raise
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                pass
        addrs: dict[str, list[Any]] = {}
        for n in plan.nodes:
            node = self.ctl.nodes.get(n)
            if node is None or node.addr is None:
                raise SlurmError("ESLURM_NODES_BUSY")
            addrs[n] = [node.addr[0], node.addr[1]]
        step_id = self.next_id.get(job.job_id)
        if step_id is None:
            step_id = 1 + max([int(s.step_id) for s in job.steps if s.step_id.isdigit()], default=-1)
        self.next_id[job.job_id] = step_id + 1
        now = time.time()
        nodelist = compress(plan.nodes)
        step = Step(job.job_id, str(step_id), name=str(b.get("name") or "")[:1024], state="RUNNING",
                    start_time=now, nodes=nodelist, num_nodes=len(plan.nodes), num_tasks=plan.ntasks,
                    cpus=sum(plan.cpus.values()), tasks_per_node=plan.tasks_per_node,
                    cpu_bind=str(b.get("cpu_bind") or ""), srun_host=str(b.get("srun_host") or ""),
                    srun_pid=int(b.get("srun_pid") or 0))
        job.steps = [*job.steps, step]  # a job that had not run holds the shared, read-only NO_STEPS
        cpu_ids = self._step_cpu_ids(job, plan)
        self.active.setdefault(job.job_id, {})[step_id] = _Active(step, plan.consumed, plan.tasks,
                                                                  set(plan.nodes), cpu_ids=cpu_ids)
        self._save_soon(job)
        return {"step_id": step_id, "nodes": plan.nodes, "nodelist": nodelist, "addrs": addrs,
                "tasks": plan.tasks, "cpus": plan.cpus, "ntasks": plan.ntasks, "cpu_ids": cpu_ids,
                "tasks_per_node": plan.tasks_per_node, "env": self._env(job),
                "gpus": {n: list(job.gpus_per_node.get(n, [])) for n in plan.nodes} if job.gres else {},
                "kill_wait": self.ctl.settings.kill_wait,
                "job": {"job_id": job.job_id, "name": job.name, "user": job.user, "uid": job.uid,
                        "gid": job.gid, "partition": job.partition, "account": job.account,
                        "nodes": job.nodes, "time_limit": job.time_limit, "start_time": job.start_time,
                        "array_job_id": job.array_job_id, "array_task_id": job.array_task_id,
                        "work_dir": job.work_dir}}

    async def op_step_complete(self, req: Request) -> dict[str, Any]:
        """One node's share of a step ended (from its node daemon, or from srun for a node it lost)."""
        b = req.body
        job = self._job(req, b["job_id"])
        act = self.active.get(job.job_id, {}).get(int(b["step_id"]))
        late = self.ended.get((job.job_id, int(b["step_id"])))
        if act is None and late is not None and late.waiting:
            # srun had its answer before this report reached us, and its job has ended since
            act = late
        elif act is None:
            step = next((s for s in job.steps if s.step_id == str(b["step_id"]) and s.state == "RUNNING"), None)
            if step is None:
                return {"stale": True}
            # a step from before a controller restart: its first report closes it
            act = _Active(step, {}, {}, {str(b.get("node") or "")})
            self.active.setdefault(job.job_id, {})[int(b["step_id"])] = act
        nodes = [str(n) for n in (b.get("nodes") or [b.get("node")]) if n]
        if b.get("reason") == "NODE_FAIL":
            for n in nodes:
                self._spawn(self._check_node(n))
        for n in nodes:
            if n not in act.waiting:
                continue
            act.waiting.discard(n)
            act.status = combine_status(act.status, int(b.get("exit_code", 0)), int(b.get("signal", 0)))
            if b.get("reason"):
                act.reasons.add(str(b["reason"]))
            st = act.step
            st.user_cpu += float(b.get("user_cpu", 0.0))
            st.system_cpu += float(b.get("system_cpu", 0.0))
            rss = int(b.get("max_rss_kb", 0))
            if rss > st.max_rss_kb:
                st.max_rss_kb = rss
                st.max_rss_node = n
                st.max_rss_task = int(b.get("max_rss_task", 0))
        if not act.waiting:
            self.active.get(job.job_id, {}).pop(int(b["step_id"]), None)
            if act.ended_by_job:
                act.reasons.discard(act.ended_by_job)
                end = act.step.end_time
                self._close_step(job, act, end)
                self.ctl._save(job)
            else:
                self._close_step(job, act, time.time())
                self._save_soon(job)
            self._wake()
        return {}

    async def op_step_signal(self, req: Request) -> dict[str, Any]:
        """``scancel --signal=SIG N.S`` and ``scancel N.S`` (signal None = cancel the step)."""
        b = req.body
        job = self._job(req, b["job_id"])
        step_id = int(b["step_id"])
        act = self.active.get(job.job_id, {}).get(step_id)
        if act is None:
            known = job.state in FINISHED or any(s.step_id == str(step_id) for s in job.steps)
            raise SlurmError("ESLURM_ALREADY_DONE" if known else "ESLURM_INVALID_JOB_ID")
        sig = b.get("signal")
        body = {"job_id": job.job_id, "step_id": step_id, "signal": sig}
        if sig is None:
            act.reasons.add("CANCELLED")
            act.step.cancelled_by = req.uid  # sacct: CANCELLED by UID
        await asyncio.gather(*(self._call_node(n, "step_signal", body) for n in act.tasks))
        return {}

    async def op_alloc_wait(self, req: Request) -> dict[str, Any]:
        """Block until an allocation has started (and its nodes are ready) or has ended."""
        b = req.body
        job = self._job(req, b["job_id"])
        until = str(b.get("until") or "start")
        deadline = time.monotonic() + max(0.0, min(float(b.get("timeout", 30)), 300.0))
        while True:
            job = self.ctl.jobs.get(job.job_id, job)
            if until == "end":
                done = job.state in FINISHED
            else:
                ready = self.ready.get(job.job_id)
                done = job.state in FINISHED or (job.state == "RUNNING" and (ready is None or ready.is_set()))
            left = deadline - time.monotonic()
            if done or left <= 0:
                break
            try:
                await asyncio.wait_for(self._changed.wait(), min(left, 1.0))
            except TimeoutError:
                pass
        out: dict[str, Any] = {"state": job.state, "reason": job.reason, "nodes": job.nodes,
                               "job_id": job.job_id, "time_limit": job.time_limit, "start_time": job.start_time,
                               "end_time": job.end_time, "exit_code": job.exit_code, "name": job.name,
                               "partition": job.partition, "cancelled_by": job.cancelled_by}
        if job.state == "RUNNING":
            out["env"] = self._env(job)
            ready = self.ready.get(job.job_id)
            out["ready"] = ready is None or ready.is_set()
        return out

    async def op_alloc_complete(self, req: Request) -> dict[str, Any]:
        """salloc or srun is done with its allocation: the job ends with the command's status."""
        b = req.body
        job = self._job(req, b["job_id"])
        if job.batch:
            raise SlurmError("ESLURM_BATCH_ONLY", "Job is a batch job")
        code, sig = int(b.get("exit_code", 0)), int(b.get("signal", 0))
        now = time.time()
        if job.state == "PENDING":
            self.ctl.end_pending(job, now, req.uid)
            self.ctl._save(job)
            self.ctl.schedule_soon()
            self._wake()
            return {}
        if job.state in FINISHED:
            raise SlurmError("ESLURM_ALREADY_DONE")
        # the nodes report a step's end just after srun hears of it: let them, briefly
        deadline = time.monotonic() + 2.0
        while self.active.get(job.job_id) and time.monotonic() < deadline and job.state == "RUNNING":
            try:
                await asyncio.wait_for(self._changed.wait(), 0.1)
            except TimeoutError:
                pass
        if job.state != "RUNNING":
            return {}
        usage = {"user_cpu": sum(s.user_cpu for s in job.steps), "system_cpu": sum(s.system_cpu for s in job.steps),
                 "max_rss_kb": max([s.max_rss_kb for s in job.steps], default=0)}
        self.ctl._finish(job, "COMPLETED" if code == 0 and sig == 0 else "FAILED", now, code, sig, usage)
        return {}


# ---------------------------------------------------------------------------------------------- node

HOLDER_OUT = "(extern)"
"""``std_out`` of a holder record: marks the light per-node job record (batch output is always a path)."""

_HOLDER = 'trap "" HUP INT QUIT TERM USR1 USR2 ALRM PIPE TSTP TTIN TTOU; exec sleep 2147483647'

# Runs as the user when a task's I/O goes to files: open them with the user's rights, then exec.
_TASK_WRAPPER = r"""
out=$1 err=$2 in=$3 node=$4; shift 4
if [ -n "$out" ]; then exec >>"$out" || exit 1; fi
if [ -n "$err" ]; then if [ "$err" = "$out" ]; then exec 2>&1; else exec 2>>"$err" || exit 1; fi; fi
if [ -n "$in" ]; then exec <"$in" || exit 1; fi
command -v -- "$1" >/dev/null 2>&1 || {
  printf 'slurmstepd-%s: error: execve(): %s: No such file or directory\n' "$node" "$1" >&2; exit 2; }
exec "$@"
"""

_TRUNCATE = r'for f; do : >"$f"; done'

_STEP_NOTE = {
    "TIMEOUT": " DUE TO TIME LIMIT",
    "NODE_FAIL": " DUE TO NODE FAILURE, SEE SLURMCTLD LOG FOR DETAILS",
    "REQUEUED": " DUE TO JOB REQUEUE",
    "CANCELLED": "",
    "ABORTED": "",
}


def signal_sessions(sids: set[int], sig: int) -> None:
    """Send ``sig`` once to each process in these sessions (the leader's group if the scan finds none)."""
    from orchestrator.scheduler import procs

    table = procs.scan()
    for sid in sids:
        members = table.get(sid)
        if not members:
            try:
                os.killpg(sid, sig)
            except OSError:
                pass
            continue
        for p in members:
            try:
                os.kill(p.pid, sig)
            except OSError:
                pass


def _task_environ(env: dict[str, str]) -> None:
    """In a task's child, before exec: make its environment the task's, with its own pid in SLURM_TASK_PID."""
    os.environ.clear()
    os.environ.update(env)
    os.environ["SLURM_TASK_PID"] = str(os.getpid())


def _set_ctty() -> None:
    """In the pty task's child: make the pty (stdin) its controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _nonblock(fd: int) -> None:
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)


@dataclass
class _Task:
    gtid: int
    lid: int
    out: str = ""  # "" = stream to srun, else a path ("/dev/null" included)
    err: str = ""
    inp: str = ""
    pid: int = 0
    popen: subprocess.Popen[bytes] | None = None
    fds: dict[str, int] = field(default_factory=dict)  # "o"/"e" -> read end (the pty master for both)
    in_fd: int | None = None
    in_buf: bytearray = field(default_factory=bytearray)
    in_eof: bool = False
    status: int | None = None
    usage: Any = None
    pidfd: int | None = None
    exit_sent: bool = False
    oom: bool = False


class _NodeStep:
    """One step's tasks on this node, and the connection to the srun that launched them."""

    def __init__(self, owner: NodeSteps, rj: RunningJob, body: dict[str, Any], req: Request) -> None:
        self.owner = owner
        self.d = owner.d
        self.rj = rj
        self.job_id = rj.job_id
        self.step_id = int(body["step_id"])
        self.node_index = int(body.get("node_index", 0))
        self.reader = req.reader
        self.writer = req.writer
        self.loop = asyncio.get_running_loop()
        self.pty = bool(body.get("pty"))
        self.argv = [str(a) for a in body["argv"]]
        if not self.argv:
            raise SlurmError("EINVAL", "No command given")
        self.cwd = str(body.get("cwd") or "/tmp")
        self.umask = int(body.get("umask", 0o022))
        self.size = body.get("winsize") or [24, 80]
        io = body.get("io") or {}
        self.tasks: list[_Task] = []
        for lid, gtid in enumerate(int(g) for g in body["tasks"]):
            spec = io.get(str(gtid)) or ["", "", ""]
            self.tasks.append(_Task(gtid, lid, str(spec[0] or ""), str(spec[1] or ""), str(spec[2] or "")))
        self.truncate = [str(p) for p in body.get("truncate") or []]
        self.binding: Binding | None = None  # --cpu-bind, when it binds (set by _env)
        self.auto_masks: list[set[int]] | None = None  # a unit form's CPUs, per local task
        self.env = self._env(body)
        self.reasons: set[str] = set()
        self.notified = ""
        self.aborting = False
        self.paused = False
        self.finished = self.loop.create_future()
        self.pending_exits: list[_Task] = []
        self.flush_handle: asyncio.TimerHandle | None = None
        self.started = time.time()
        self.early: list[bytes] | None = []

    def replied(self, frame: bytes) -> None:
        """Send the launch reply, then whatever the start produced (slurmstepd errors)."""
        held, self.early = self.early or [], None
        self.writer.write(frame + b"".join(held))

    # -- environment
    def _env(self, body: dict[str, Any]) -> dict[str, str]:
        env = {str(k): str(v) for k, v in (body.get("env") or {}).items()}
        env.update(self.d.extra_env)
        node = self.d.node.name
        env.update({
            "SLURMD_NODENAME": node,
            "SLURM_NODEID": str(self.node_index),
            "SLURM_CPUS_ON_NODE": str(int(body.get("cpus") or 1)),
            "SLURM_TOPOLOGY_ADDR": node,
            "SLURM_TOPOLOGY_ADDR_PATTERN": "node",
            "SLURM_GTIDS": ",".join(str(t.gtid) for t in self.tasks),
            "TMPDIR": self.rj.tmpdir,
        })
        scratch = self.rj.scratch or self.owner.scratch.get(self.job_id, "")
        if scratch:
            env["SCRATCH"] = scratch
        if env.get("SLURM_CPU_BIND"):
            from orchestrator.slurm import cpubind

            b = cpubind.parse(env["SLURM_CPU_BIND"])
            step_cpus = [int(c) for c in body.get("cpu_ids") or []]
            if b is not None and b.kind == "auto" and b.unit and step_cpus:
                cpt = int(body.get("cpus_per_task") or 1)
                masks = [cpubind.auto_cpus(b, step_cpus, t.lid, cpt) or set() for t in self.tasks]
                self.binding, self.auto_masks = b, masks
                env.update(b.env(masks=masks, node_cpus=int(self.d.node.cpus)))
            elif b is not None and b.kind != "auto":
                self.binding = b
                env.update(b.env())
        gpus = body.get("gpus")
        if gpus is not None:  # the job's GPUs on this node (jobenv.node_env's variables, per node)
            ids = ",".join(str(int(i)) for i in gpus)
            local = ",".join(str(i) for i in range(len(gpus)))
            env.update({"SLURM_JOB_GPUS": ids, "SLURM_STEP_GPUS": ids, "SLURM_GPUS_ON_NODE": str(len(gpus)),
                        "CUDA_VISIBLE_DEVICES": local, "GPU_DEVICE_ORDINAL": local})
        return env

    # -- start
    def _popen_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"start_new_session": True, "close_fds": True, "umask": self.umask}
        if self.d.root:
            kw.update(user=self.rj.uid, group=self.rj.gid, extra_groups=self.owner.groups(self.rj.user, self.rj.gid))
        return kw

    def _truncate_files(self) -> None:
        if not self.truncate:
            return
        try:
            subprocess.run(["/bin/sh", "-c", _TRUNCATE, "truncate", *self.truncate], env=self.env,
                           cwd=self.cwd if os.path.isdir(self.cwd) else "/tmp", stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10,
                           **{k: v for k, v in self._popen_kwargs().items() if k != "start_new_session"})
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("step %d.%d: could not truncate output files: %s", self.job_id, self.step_id, exc)

    def start(self) -> None:
        self._truncate_files()
        kw = self._popen_kwargs()
        for t in self.tasks:
            self._spawn(t, kw)

    def _spawn(self, t: _Task, kw: dict[str, Any]) -> None:
        env = dict(self.env)
        env["SLURM_PROCID"] = str(t.gtid)
        env["SLURM_LOCALID"] = str(t.lid)
        # SLURM_TASK_PID is the task's own pid, known only in the child: set its environment there
        before_exec: list[Any] = [lambda env=env: _task_environ(env)]
        files = any(p and p != "/dev/null" for p in (t.out, t.err, t.inp))
        argv = self.argv
        if files:
            argv = ["/bin/sh", "-c", _TASK_WRAPPER, "slurm_task",
                    t.out if t.out != "/dev/null" else "", t.err if t.err != "/dev/null" else "",
                    t.inp if t.inp != "/dev/null" else "", self.d.node.name, *self.argv]
        child_fds: list[int] = []
        stdin: Any
        stdout: Any
        stderr: Any
        extra: dict[str, Any] = {}
        if self.pty and t.gtid == 0:
            master, slave = os.openpty()
            rows, cols = (int(x) for x in self.size[:2])
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            if self.d.root:
                try:
                    os.chown(os.ttyname(slave), self.rj.uid, -1)
                except OSError:
                    pass
            stdin = stdout = stderr = slave
            child_fds.append(slave)
            _nonblock(master)
            t.fds = {"o": master}
            t.in_fd = master
            before_exec.append(_set_ctty)
        else:
            def out_target(path: str, kind: str) -> Any:
                if path:
                    return subprocess.DEVNULL  # /dev/null, or a file the wrapper opens as the user
                r, w = os.pipe2(os.O_CLOEXEC)
                _nonblock(r)
                t.fds[kind] = r
                child_fds.append(w)
                return w

            stdout = out_target(t.out, "o")
            stderr = out_target(t.err, "e")
            if t.inp == "":
                r, w = os.pipe2(os.O_CLOEXEC)
                _nonblock(w)
                t.in_fd = w
                child_fds.append(r)
                stdin = r
            else:
                stdin = subprocess.DEVNULL
        bound = self._bind_cpus(t) if self.binding is not None else None
        if bound:
            # before exec, as task/affinity does: children inherit it
            before_exec.insert(0, lambda cpus=bound: os.sched_setaffinity(0, cpus))

        def preexec(steps: list[Any] = before_exec) -> None:
            for step in steps:
                step()

        extra["preexec_fn"] = preexec
        cwd = self.cwd
        popen = None
        for attempt in range(2):
            # srun resolved the program on PATH already; a bare name left over is run from the working
            # directory, as slurmstepd's execve() does, not searched for again
            exe = argv[0] if "/" in argv[0] else os.path.join(cwd, argv[0])
            try:
                # env=None: the child's own environment, which preexec has just made the task's
                popen = subprocess.Popen(argv, executable=exe, env=None, cwd=cwd, stdin=stdin, stdout=stdout,
                                         stderr=stderr, **kw, **extra)
                break
            except OSError as exc:
                if attempt == 0 and exc.filename == cwd and cwd != "/tmp":
                    # slurmstepd says it once for itself and once per task, all on the node's first task's
                    # stderr stream, even when the tasks write to files; later tasks go straight to /tmp
                    note = (f"slurmstepd-{self.d.node.name}: error: couldn't chdir to `{cwd}': "
                            f"{os.strerror(exc.errno or errno.ENOENT)}: going to /tmp instead\n").encode()
                    self._send({"t": "e", "k": self.tasks[0].gtid}, note * (len(self.tasks) + 1))
                    cwd = self.cwd = "/tmp"
                    continue
                self._message(t, f"execve(): {self.argv[0]}: {os.strerror(exc.errno or errno.ENOENT)}")
                t.status = ((exc.errno or errno.ENOENT) & 0xFF) << 8
                break
        for fd in child_fds:
            os.close(fd)
        if popen is None:
            self._close_task_fds(t)
            t.exit_sent = False
            self.loop.call_soon(self._task_exited, t)
            return
        t.popen = popen
        t.pid = popen.pid
        if self.binding is not None and self.binding.verbose and not t.err and (bound or self.binding.kind == "none"):
            from orchestrator.slurm.cpubind import verbose_line

            report = verbose_line(self.binding, self.d.node.name, t.gtid, t.lid, t.pid, bound)
            self._send({"t": "e", "k": t.gtid}, report.encode())  # the task's own stderr, as it is printed there
        self.rj.step_sids.add(t.pid)
        for kind, fd in t.fds.items():
            self.loop.add_reader(fd, self._on_output, t, kind, fd)
        try:
            t.pidfd = os.pidfd_open(t.pid)
            self.loop.add_reader(t.pidfd, self._reap, t)
        except (AttributeError, OSError):
            threading.Thread(target=self._wait_thread, args=(t,), daemon=True).start()

    def _bind_cpus(self, t: _Task) -> set[int] | None:
        """The CPUs --cpu-bind's explicit form gives this task, if this host has them all."""
        from orchestrator.slurm.cpubind import task_cpus

        assert self.binding is not None
        if self.auto_masks is not None:
            cpus: set[int] | None = self.auto_masks[t.lid] if t.lid < len(self.auto_masks) else None
        else:
            cpus = task_cpus(self.binding, t.lid)
        if not cpus or not cpus <= os.sched_getaffinity(0):
            return None  # a CPU this (simulated) node does not really have: the task is left unbound
        return cpus

    def _message(self, t: _Task, text: str) -> None:
        """A slurmstepd line on the task's stderr (to srun, or to its file)."""
        line = f"slurmstepd-{self.d.node.name}: error: {text}\n".encode()
        if t.err and t.err != "/dev/null":
            return  # the wrapper reports into the file itself; this path is for streamed stderr
        self._send({"t": "e", "k": t.gtid}, line)

    # -- frames to srun
    def _send(self, header: dict[str, Any], raw: bytes = b"") -> None:
        if self.writer.is_closing():
            return
        header["v"] = VERSION
        if self.early is not None:  # before the launch reply: hold it back
            self.early.append(encode_frame(header, raw_body=raw))
            return
        self.writer.write(encode_frame(header, raw_body=raw))
        transport = self.writer.transport
        if not self.paused and transport is not None and transport.get_write_buffer_size() > HIGH_WATER:
            self.paused = True
            for t in self.tasks:
                for fd in t.fds.values():
                    self.loop.remove_reader(fd)
            self.owner.spawn(self._resume())

    async def _resume(self) -> None:
        try:
            await self.writer.drain()
        except (ConnectionError, RuntimeError):
            pass
        self.paused = False
        for t in self.tasks:
            for kind, fd in t.fds.items():
                self.loop.add_reader(fd, self._on_output, t, kind, fd)

    def _on_output(self, t: _Task, kind: str, fd: int) -> None:
        try:
            data = os.read(fd, OUT_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""  # EIO: the pty's last holder closed it
        if data:
            self._send({"t": "e" if kind == "e" else "o", "k": t.gtid}, data)
            return
        self.loop.remove_reader(fd)
        os.close(fd)
        t.fds.pop(kind, None)
        if t.in_fd == fd:
            t.in_fd = None
        if t.status is not None and not t.fds:
            self._queue_exit(t)
        self._check_done()

    def _close_task_fds(self, t: _Task) -> None:
        for fd in list(t.fds.values()):
            try:
                self.loop.remove_reader(fd)
                os.close(fd)
            except OSError:
                pass
        if t.in_fd is not None and t.in_fd not in t.fds.values():
            try:
                self.loop.remove_writer(t.in_fd)
                os.close(t.in_fd)
            except OSError:
                pass
        t.fds.clear()
        t.in_fd = None

    # -- task ends
    def _reap(self, t: _Task) -> None:
        try:
            pid, status, usage = os.wait4(t.pid, os.WNOHANG)
        except ChildProcessError:
            pid, status, usage = t.pid, 0, None
        if pid == 0:
            return
        if t.pidfd is not None:
            self.loop.remove_reader(t.pidfd)
            os.close(t.pidfd)
            t.pidfd = None
        self._exited(t, status, usage)

    def _wait_thread(self, t: _Task) -> None:
        try:
            _, status, usage = os.wait4(t.pid, 0)
        except ChildProcessError:
            status, usage = 0, None
        self.loop.call_soon_threadsafe(self._exited, t, status, usage)

    def _exited(self, t: _Task, status: int, usage: Any) -> None:
        if t.popen is not None:
            t.popen.returncode = os.waitstatus_to_exitcode(status)  # reaped here
        t.status = status
        t.usage = usage
        if self.rj.end_reason:  # killed because the job is ending: say why before the exit status
            self.job_ending(self.rj.end_reason)
        if self.rj.end_reason == "OUT_OF_MEMORY" and os.WIFSIGNALED(status) and os.WTERMSIG(status) == 9:
            t.oom = True
        self._task_exited(t)

    def _task_exited(self, t: _Task) -> None:
        if not t.fds:
            self._queue_exit(t)
        else:
            self.loop.call_later(0.3, self._queue_exit, t)
        if all(x.status is not None for x in self.tasks):
            # like proctrack: when every task has exited, what they left behind goes too (the
            # process groups now; whole sessions from a /proc scan once the step is over)
            for x in self.tasks:
                if x.pid:
                    try:
                        os.killpg(x.pid, signal.SIGKILL)
                    except OSError:
                        pass
            self.loop.call_later(1.0, self._force_close)
        self._check_done()

    def _force_close(self) -> None:
        for t in self.tasks:
            if t.fds:
                self._close_task_fds(t)
                self._queue_exit(t)
        self._check_done()

    def _queue_exit(self, t: _Task) -> None:
        if t.exit_sent or t.status is None:
            return
        t.exit_sent = True
        self.pending_exits.append(t)
        # tasks that end together are reported together (slurmstepd's grouping): wait a moment
        # for the others, unless this was the last one
        if all(x.status is not None for x in self.tasks):
            if self.flush_handle is not None:
                self.flush_handle.cancel()
            self.flush_handle = None
            self.loop.call_soon(self._flush_exits)
        elif self.flush_handle is None:
            self.flush_handle = self.loop.call_later(0.02, self._flush_exits)
        if t.in_fd is not None and t.in_fd not in t.fds.values():
            try:
                self.loop.remove_writer(t.in_fd)
                os.close(t.in_fd)
            except OSError:
                pass
            t.in_fd = None

    def _flush_exits(self) -> None:
        self.flush_handle = None
        groups: dict[tuple[int, bool], list[int]] = {}
        for t in self.pending_exits:
            groups.setdefault((t.status or 0, t.oom), []).append(t.gtid)
        self.pending_exits = []
        for (status, oom), gtids in groups.items():
            head: dict[str, Any] = {"t": "x", "k": gtids, "s": status}
            if oom:
                head["oom"] = True
            self._send(head)
        self._check_done()

    def _check_done(self) -> None:
        if self.finished.done():
            return
        if all(t.status is not None and t.exit_sent and not t.fds for t in self.tasks) and not self.pending_exits:
            self.finished.set_result(None)

    # -- requests from srun / the controller
    def stdin(self, data: bytes) -> None:
        for t in self.tasks:
            if t.in_fd is None or t.status is not None:
                continue
            if not data:
                if self.pty:
                    continue
                t.in_eof = True
            else:
                t.in_buf += data
            self._flush_stdin(t)

    def _flush_stdin(self, t: _Task) -> None:
        fd = t.in_fd
        if fd is None:
            return
        while t.in_buf:
            try:
                n = os.write(fd, t.in_buf)
            except BlockingIOError:
                self.loop.add_writer(fd, self._writable, t)
                return
            except OSError:
                t.in_buf.clear()
                break
            del t.in_buf[:n]
        self.loop.remove_writer(fd)
        if t.in_eof and not self.pty:
            os.close(fd)
            t.in_fd = None

    def _writable(self, t: _Task) -> None:
        self._flush_stdin(t)

    def signal(self, sig: int) -> None:
        """Every process of the running tasks' sessions gets ``sig`` once (proctrack's signal)."""
        sids = {t.pid for t in self.tasks if t.pid and t.status is None}
        if sids:
            signal_sessions(sids, sig)

    def winsize(self, rows: int, cols: int) -> None:
        for t in self.tasks:
            fd = t.fds.get("o")
            if self.pty and fd is not None:
                try:
                    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
                except OSError:
                    pass

    def note(self, reason: str) -> None:
        """slurmstepd's ``*** STEP j.s ON node CANCELLED AT ... ***`` (written by the first node only)."""
        if self.node_index != 0 or not self.tasks:
            return
        stamp = format_timestamp(time.time())
        why = _STEP_NOTE.get(reason)
        if why is None:
            return
        node = self.d.node.name
        self._message(self.tasks[0], f"*** STEP {self.job_id}.{self.step_id} ON {node} CANCELLED AT {stamp}{why} ***")

    def abort(self, reason: str, note: bool = True, kill: bool = False) -> None:
        """SIGCONT and SIGTERM to every task, SIGKILL a moment later (srun's termination sequence);
        ``kill``: ``scancel N.S`` or srun -W ending the step, which slurmstepd does with SIGKILL at once
        (the task shows ``Killed``, the step ``0:9``)."""
        if self.aborting:
            return
        self.aborting = True
        self.reasons.add(reason)
        if kill:  # the step is cancelled and killed at once; srun hears of it after the note
            if note:
                self.note(reason)
            self._send({"t": "a", "r": "CANCELLED"})
            self.signal(signal.SIGKILL)
            return
        if note:
            self.note(reason)
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        self.loop.call_later(1.0, self.signal, signal.SIGKILL)

    def job_ending(self, reason: str) -> None:
        """The node daemon is ending the whole job (time limit, scancel...): tell srun, once."""
        if self.notified:
            return
        self.notified = reason
        self.reasons.add(reason)
        if reason in _STEP_NOTE or reason == "OUT_OF_MEMORY":
            self._send({"t": "a", "r": reason})
        if reason == "OUT_OF_MEMORY":
            if self.tasks:
                self._message(self.tasks[0], f"Detected 1 oom-kill event(s) in StepId={self.job_id}.{self.step_id}. "
                                             "Some of your processes may have been killed by the cgroup "
                                             "out-of-memory handler.")
        else:
            self.note(reason)

    async def client_loop(self) -> None:
        while not self.finished.done():
            try:
                header, raw = await read_frame_async(self.reader)
            except (EOFError, ProtocolError, ConnectionError, asyncio.IncompleteReadError):
                if not self.finished.done():
                    log.info("step %d.%d: srun went away; ending the step", self.job_id, self.step_id)
                    self.abort("ABORTED", note=False)
                return
            kind = header.get("t")
            try:
                if kind == "i":
                    self.stdin(raw)
                elif kind == "s":
                    self.signal(int(header["n"]))
                elif kind == "k":
                    self.abort("ABORTED", kill=bool(header.get("kill")))
                elif kind == "w":
                    self.winsize(int(header["r"]), int(header["c"]))
            except (KeyError, ValueError, TypeError) as exc:
                log.warning("step %d.%d: bad frame from srun: %r", self.job_id, self.step_id, exc)

    # -- end
    def summary(self) -> dict[str, Any]:
        status = (0, 0)
        user = system = 0.0
        rss, rss_task = 0, 0
        for t in self.tasks:
            s = t.status or 0
            if os.WIFSIGNALED(s):
                status = combine_status(status, 0, os.WTERMSIG(s))
            elif os.WIFEXITED(s):
                status = combine_status(status, os.WEXITSTATUS(s), 0)
            if t.usage is not None:
                user += float(t.usage.ru_utime)
                system += float(t.usage.ru_stime)
                if int(t.usage.ru_maxrss) > rss:
                    rss, rss_task = int(t.usage.ru_maxrss), t.gtid
            if t.oom:
                self.reasons.add("OUT_OF_MEMORY")
        reason = ""
        for r in ("OUT_OF_MEMORY", "TIMEOUT", "NODE_FAIL", "REQUEUED", "CANCELLED", "ABORTED", "COMPLETED"):
            if r in self.reasons:
                reason = r
                break
        return {"job_id": self.job_id, "step_id": self.step_id, "node": self.d.node.name,
                "exit_code": status[0], "signal": status[1], "user_cpu": user, "system_cpu": system,
                "max_rss_kb": rss, "max_rss_task": rss_task, "reason": reason}

    def cleanup(self) -> None:
        for t in self.tasks:
            self._close_task_fds(t)
            if t.pidfd is not None:
                try:
                    self.loop.remove_reader(t.pidfd)
                    os.close(t.pidfd)
                except OSError:
                    pass
                t.pidfd = None
            if t.pid:
                self.rj.step_sids.discard(t.pid)


class NodeSteps:
    """The node daemon's side: job records for allocations, and the steps' tasks."""

    def __init__(self, d: NodeDaemon) -> None:
        self.d = d
        self.steps: dict[tuple[int, int], _NodeStep] = {}
        self.scratch: dict[int, str] = {}
        self._groups: dict[tuple[str, int], tuple[float, list[int]]] = {}
        self._bg: set[asyncio.Future[Any]] = set()
        self._ticker: asyncio.Future[Any] | None = None
        d.server.handlers.update({"step_launch": self.op_step_launch, "job_prepare": self.op_job_prepare,
                                  "step_signal": self.op_step_signal})

    def groups(self, user: str, gid: int) -> list[int]:
        """The user's supplementary groups, looked up once a minute (NSS is slow next to a fork)."""
        from orchestrator.scheduler.noded import _groups

        now = time.monotonic()
        hit = self._groups.get((user, gid))
        if hit is None or now - hit[0] > 60:
            hit = (now, _groups(user, gid))
            self._groups[(user, gid)] = hit
        return hit[1]

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)

    def _ensure_ticker(self) -> None:
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.ensure_future(self._tick_loop())

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            try:
                self._tick()
            except Exception:
                log.exception("step tick failed")

    def _tick(self) -> None:
        for st in list(self.steps.values()):
            rj = self.d.jobs.get(st.job_id)
            reason = rj.end_reason if rj is not None else "COMPLETED"
            if reason:
                st.job_ending(reason)
        for rj in list(self.d.jobs.values()):
            if rj.std_out != HOLDER_OUT or not rj.end_reason:
                continue
            if any(s.job_id == rj.job_id for s in self.steps.values()):
                continue
            self.d._signal_session(rj.pid, signal.SIGKILL)

    # -- job records on nodes that do not run the batch script
    async def op_job_prepare(self, req: Request) -> dict[str, Any]:
        from pathlib import Path

        from orchestrator.scheduler.noded import RunningJob, _parse_signal, job_deadline

        self.d._check_controller(req)
        self._ensure_ticker()
        job = req.body["job"]
        job_id = int(job["job_id"])
        user = str(job["user"])
        scratch_path = f"{self.d.scratch_base.rstrip('/')}/{user}/{job_id}" if self.d.scratch_base else ""
        if scratch_path:
            self.scratch[job_id] = scratch_path
        if job_id in self.d.jobs:
            return {"already": True}
        uid, gid = int(job["uid"]), int(job["gid"])
        if not self.d.root and uid != self.d.daemon_uid:
            raise SlurmError("ESLURM_USER_ID_MISSING", f"Invalid user id: this node daemon runs as uid "
                                                       f"{self.d.daemon_uid} and cannot start jobs for uid {uid}")
        primary = not job.get("batch") and job.get("batch_host") == self.d.node.name
        jobdir = self.d.spool / f"job{job_id:05d}"
        if jobdir.exists():
            import shutil

            shutil.rmtree(jobdir, ignore_errors=True)
        jobdir.mkdir(mode=0o700)
        tmpdir = self.d._make_private_dir(Path(self.d.tmp_base), f"slurm-{job_id}", uid, gid)
        scratch = ""
        if scratch_path and primary:
            scratch = self.d._make_private_dir(Path(self.d.scratch_base), f"{user}/{job_id}", uid, gid)
        popen = subprocess.Popen(["/bin/sh", "-c", _HOLDER], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, cwd="/", start_new_session=True, close_fds=True)
        now = time.time()
        limit_start, deadline = job_deadline(job, now)
        mem_mb = int((job.get("mem_per_alloc_node") or {}).get(self.d.node.name, 0))
        sig, secs, batch_only = _parse_signal(str(job.get("signal") or ""))
        rj = RunningJob(job_id=job_id, restart_count=int(job.get("restart_count", 0)), uid=uid, gid=gid, user=user,
                        pid=popen.pid, start=now, deadline=deadline, std_out=HOLDER_OUT, std_err="/dev/null",
                        tmpdir=tmpdir, scratch=scratch, mem_limit_kb=mem_mb * 1024, kill_wait=self.d.kill_wait,
                        early_signal=sig, early_secs=secs, early_batch=False, popen=popen,
                        limit_start=limit_start)
        del batch_only
        self.d.jobs[job_id] = rj
        self.d._save_state(rj)
        threading.Thread(target=self.d._wait_child, args=(rj,), daemon=True, name=f"extern-{job_id}").start()
        log.info("job %d: node record ready (holder pid %d)", job_id, popen.pid)
        return {"pid": popen.pid}

    async def op_step_signal(self, req: Request) -> dict[str, Any]:
        b = req.body
        st = self.steps.get((int(b["job_id"]), int(b["step_id"])))
        if st is None:
            return {"found": False}
        if req.uid not in (0, self.d.daemon_uid, st.rj.uid):
            raise SlurmError("ESLURM_ACCESS_DENIED")
        sig = b.get("signal")
        if sig is None:
            st.abort("CANCELLED", kill=True)
        else:
            st.signal(int(sig))
        return {"found": True}

    # -- steps
    async def op_step_launch(self, req: Request) -> dict[str, Any] | None:
        self._ensure_ticker()
        b = req.body
        job_id = int(b["job_id"])
        step_id = int(b["step_id"])
        rj = self.d.jobs.get(job_id)
        if rj is None:
            raise SlurmError("ESLURM_INVALID_JOB_ID", "Invalid job id specified")
        if req.uid not in (0, rj.uid) and not (req.uid == self.d.daemon_uid and not self.d.root):
            raise SlurmError("ESLURM_ACCESS_DENIED")
        if rj.end_reason:
            raise SlurmError("ESLURM_ALREADY_DONE")
        if (job_id, step_id) in self.steps:
            raise SlurmError("EINVAL", f"Step {job_id}.{step_id} is already running on this node")
        st = _NodeStep(self, rj, b, req)
        self.steps[(job_id, step_id)] = st
        try:
            st.start()
            st.replied(reply_ok({"pids": [t.pid for t in st.tasks], "node": self.d.node.name}))
            client = asyncio.ensure_future(st.client_loop())
            await st.finished
            summary = st.summary()
            st.cleanup()
            st._send({"t": "d"})  # srun may go; the controller hears of it right after
            try:
                await req.writer.drain()
            except (ConnectionError, RuntimeError):
                pass
            client.cancel()
            await self._report(summary)
        finally:
            self.steps.pop((job_id, step_id), None)
            st.cleanup()
            sids = [t.pid for t in st.tasks if t.pid]
            if sids:
                asyncio.get_running_loop().run_in_executor(None, self._sweep, sids)
        return None

    def _sweep(self, sids: list[int]) -> None:
        """Kill whatever is left in the tasks' sessions (daemonised children, changed process groups)."""
        from orchestrator.scheduler import procs

        procs.kill_sessions(sids)

    async def _report(self, summary: dict[str, Any]) -> None:
        try:
            await call_async(*self.d.controller, "step_complete", summary, timeout=5)
        except (TimeoutError, OSError, RpcError) as exc:
            log.warning("step_complete for %d.%d not delivered: %s", summary["job_id"], summary["step_id"], exc)

