"""The controller (slurmctld): owns the queue, the nodes and the accounting for one cluster.

Requests arrive over the authenticated wire (server.py); every change is written
to the store before the reply goes out. Scheduling passes run after each event
that could start a job (submit, job end, node registration, release) and once
a second for time-based ones (begin times, node timeouts).
"""

from __future__ import annotations

import asyncio
import grp
import logging
import operator
import pwd
import time
from pathlib import Path
from typing import Any

from orchestrator import SLURM_VERSION
from orchestrator.cluster.config import ClusterSpec, Config, PartitionSpec
from orchestrator.scheduler import jobenv, policy
from orchestrator.scheduler.errors import MESSAGES, SlurmError
from orchestrator.scheduler.job import NO_STEPS, RECORD_FIELDS, Job, JobTable, Step, derived_exit_code
from orchestrator.scheduler.plugins import Plugin
from orchestrator.scheduler.protocol import RpcError, pack_columns
from orchestrator.scheduler.resources import NodeState, fit, parse_gres_request, validate_constraint
from orchestrator.scheduler.server import Request, RpcServer, call_async
from orchestrator.scheduler.store import Store, compact, job_from_record
from orchestrator.slurm.arrays import ArraySpec, ArraySpecError, format_ranges, parse_array, parse_ranges
from orchestrator.slurm.hostlist import HostlistError, compress, expand
from orchestrator.slurm.qos import QOS_NAMES
from orchestrator.slurm.states import FINISHED_NAMES as FINISHED
from orchestrator.slurm.states import JobState
from orchestrator.slurm.timefmt import INFINITE, TimeFormatError, parse_date, parse_limit

log = logging.getLogger(__name__)

__all__ = ["Controller", "Plugin", "Settings"]

BASE_PRIORITY = 4294901760
BOOT_TIME_SLACK = 1.0
"""Seconds a node's boot time may be off: the kernel gives its boot time in whole seconds."""
# end states slurmctld gives a job itself (rather than taking them from the batch script's exit)
ENDED_BY_CONTROLLER = frozenset({"CANCELLED", "TIMEOUT", "DEADLINE", "PREEMPTED", "NODE_FAIL"})
USER_SETTABLE = frozenset({
    "name", "partition", "account", "qos", "comment", "time_limit", "num_nodes", "max_nodes", "nodes_explicit",
    "num_tasks", "ntasks_explicit", "ntasks_per_node", "cpus_per_task", "mem_per_cpu", "mem_per_node",
    "exclusive", "req_nodes", "exc_nodes", "features", "gres", "gpus_per_task", "dependency", "requeue",
    "kill_on_invalid_dep",
    "open_mode", "signal", "mail_type", "mail_user", "batch", "work_dir", "command", "std_out", "std_err",
    "std_in", "submit_host", "begin_time",
})


class Settings:
    """Tunables shown by ``scontrol show config``; local tests shorten the waits."""

    def __init__(self, kill_wait: int = 30, slurmd_timeout: int = 300, min_job_age: int = 300,
                 job_requeue: bool = True, requeue_delay: int = 121) -> None:
        self.kill_wait = kill_wait
        self.slurmd_timeout = slurmd_timeout
        self.min_job_age = min_job_age
        self.job_requeue = job_requeue
        # seconds before a requeued job may start again: slurmctld makes its begin time the launch
        # credential's lifetime (120 s) and one from the requeue
        self.requeue_delay = requeue_delay


class Controller:
    def __init__(self, config: Config, cluster: ClusterSpec, state_dir: Path, listen: tuple[str, int],
                 settings: Settings | None = None) -> None:
        self.config = config
        self.cluster = cluster
        self.settings = settings or Settings()
        self.listen = listen
        self.store = Store(state_dir / "state.db")
        self.partitions: dict[str, PartitionSpec] = {p.name: p for p in cluster.partitions}
        self.nodes: dict[str, NodeState] = {n.name: NodeState(n) for n in cluster.nodes}
        self.jobs = JobTable()
        self.start_time = time.time()
        self._pass_scheduled = False
        self._tasks: set[asyncio.Future[None]] = set()
        self._pass_counts: dict[int, int] = {}
        self._pass_now = 0.0
        self._dep_changed: list[Job] = []  # jobs whose dependency string a pass rewrote, to be saved
        self._names: dict[tuple[int, int], tuple[float, str, str]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server = RpcServer(f"controller {cluster.name}", {
            "ping": self.op_ping,
            "submit": self.op_submit,
            "allocate": self.op_submit,
            "jobs": self.op_jobs,
            "acct": self.op_acct,
            "job_inputs": self.op_job_inputs,
            "nodes": self.op_nodes,
            "partitions": self.op_partitions,
            "config": self.op_config,
            "signal": self.op_signal,
            "hold": self.op_hold,
            "release": self.op_release,
            "requeue": self.op_requeue,
            "update_job": self.op_update_job,
            "update_node": self.op_update_node,
            "top": self.op_top,
            "notify": self.op_notify,
            "node_register": self.op_node_register,
            "node_heartbeat": self.op_node_heartbeat,
            "job_ended": self.op_job_ended,
        }, cluster=cluster.name)
        self.plugins: list[Plugin] = []
        self._recover()

    def add_plugin(self, plugin: Plugin) -> None:
        """Services layered on the queue (credits, steps ...): extra ops and hooks at eligibility/start/end."""
        self.plugins.append(plugin)
        self.server.handlers.update(plugin.handlers())

    # ------------------------------------------------------------------ state
    def _recover(self) -> None:
        for name, data in self.store.node_states().items():
            node = self.nodes.get(name)
            if node is None:
                continue
            node.drain = bool(data.get("drain"))
            node.down = bool(data.get("down"))
            node.reason = str(data.get("reason", ""))
            node.reason_uid = int(data.get("reason_uid", 0))
            node.reason_time = float(data.get("reason_time", 0))
        for job in self.store.active_jobs():
            self.jobs[job.job_id] = job
            if not job.accrue_time:  # state written before jobs kept their AccrueTime apart
                job.accrue_time = job.eligible_time
            if job.state in ("RUNNING", "COMPLETING", "SUSPENDED"):
                policy.apply_allocation(job, _alloc_of(job), self.nodes, self._share(job))
        for job in self.store.recent_jobs(time.time() - self.settings.min_job_age):
            self.jobs.setdefault(job.job_id, job)
        log.info("recovered %d jobs", len(self.jobs))

    def _share(self, job: Job) -> int:
        part = self.partitions.get(job.partition)
        return part.oversubscribe if part else 0

    def _save(self, *jobs: Job) -> None:
        self.store.save_jobs(jobs)

    # ------------------------------------------------------------------ running
    async def run(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.server.start(*self.listen)
        self.schedule_soon()
        while True:
            await asyncio.sleep(1.0)
            try:
                self._tick()
            except Exception:
                log.exception("periodic work failed")

    def _tick(self) -> None:
        now = time.time()
        for node in self.nodes.values():
            if node.registered and node.responding and now - node.last_heartbeat > self.settings.slurmd_timeout:
                log.warning("node %s not responding for %ds: DOWN", node.name, self.settings.slurmd_timeout)
                node.responding = False
                node.down = True
                node.reason = "Not responding"
                node.reason_time = now
                node.reason_uid = 0
                self._node_failed(node.name, now)
        cutoff = now - self.settings.min_job_age
        for job_id in [j.job_id for j in self.jobs.values() if j.state in FINISHED and j.end_time < cutoff]:
            del self.jobs[job_id]
        self.schedule_soon()
        _trim_heap()

    def _node_failed(self, name: str, now: float) -> None:
        """Jobs on a lost node end NODE_FAIL (or go back to the queue when they may be requeued)."""
        for job in [j for j in self._allocated_on(name) if j.state in ("RUNNING", "COMPLETING")]:
            self._finish(job, "NODE_FAIL", now, exit_code=0, sig=0, usage=None)

    def _allocated_on(self, name: str) -> list[Job]:
        """The jobs holding resources on a node (its allocation index), in id order."""
        node = self.nodes.get(name)
        return [self.jobs[i] for i in sorted(node.jobs) if i in self.jobs] if node else []

    def schedule_soon(self) -> None:
        if self._pass_scheduled or self.loop is None:
            return
        self._pass_scheduled = True
        self.loop.call_soon(self._run_pass)

    def _run_pass(self) -> None:
        self._pass_scheduled = False
        self._pass_counts = {}
        self._dep_changed = []
        now = self._pass_now = time.time()
        live = self.jobs.unfinished()
        pending = [j for j in live if j.state == "PENDING"]
        if not pending:
            return
        running = [j for j in live if j.state in ("RUNNING", "COMPLETING")]
        before = {j.job_id: (j.reason, j.eligible_time) for j in pending}
        result = policy.schedule(now, pending, running, self.nodes, self.partitions, self.config.site.mem_per_cpu,
                                 self._eligibility, self._take_task, self._waits_for_jobs)
        changed: list[Job] = []
        for job in pending:
            noted = policy.note_wait(job)
            if not job.accrue_time:
                job.accrue_time = job.eligible_time
            if noted or before[job.job_id] != (job.reason, job.eligible_time):
                changed.append(job)
        if self._dep_changed:
            ids = {j.job_id for j in changed}
            changed += [j for j in self._dep_changed if j.job_id not in ids]
        for job in changed:
            if job.reason == "DependencyNeverSatisfied" and job.kill_on_invalid_dep:
                self.end_pending(job, now, None)
        for job, _alloc in result.starts:
            job.state = "RUNNING"
            job.reason = "None"
            job.start_time = now
            for plugin in self.plugins:
                plugin.on_start(job)
            job.batch_host = next(iter(job.cpus_per_node))
            if not job.eligible_time:
                job.eligible_time = now
            changed.append(job)
        self._save(*changed)
        for job, alloc in result.starts:
            task = asyncio.ensure_future(self._launch_guarded(job, dict(alloc.tasks)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _launch_guarded(self, job: Job, tasks: dict[str, int]) -> None:
        try:
            await self._launch(job, tasks)
        except Exception:
            log.exception("launch of job %d failed", job.job_id)
            self._finish(job, "FAILED", time.time(), exit_code=1, sig=0, usage=None)

    def _waits_for_jobs(self, job: Job) -> str | None:
        """A job's unmet dependency, asked before its --begin time as slurmctld's job_independent() does;
        while it waits, a begin time already past is no EligibleTime (Unknown)."""
        if not job.dependency:
            return None
        why = self._dependency_reason(job)
        if why:
            _not_eligible(job, self._pass_now)
        return why

    def _eligibility(self, job: Job) -> str | None:
        """Why a job that is neither held, dependent nor waiting for its --begin may not run yet.

        Its EligibleTime follows slurmctld's job_independent(): a job still waiting for an array slot
        is not eligible (Unknown), and one that has nothing left to wait for of its own becomes
        eligible now (what it is short of afterwards, credits or room, does not change it).
        """
        now = self._pass_now
        # a task split off its array (scontrol on N_3, a requeue) still counts against the %N throttle
        if (job.array_task_id is not None and job.array_max_tasks and job.state == "PENDING"
                and not self._claim_array_slot(job.array_job_id, job.array_max_tasks)):
            _not_eligible(job, now)
            return "JobArrayTaskLimit"
        if not job.eligible_time:
            job.eligible_time = now
        for plugin in self.plugins:
            why = plugin.eligibility(job)
            if why:
                return why
        return None

    def _dependency_reason(self, job: Job) -> str | None:
        """Evaluate ``type:id[+time]`` items joined by ``,`` (all must hold) or ``?`` (any may).

        As slurmctld does, the job's dependency string is rewritten as it goes: satisfied
        items are dropped (all of them once one ``?`` item holds), the others are marked
        ``(unfulfilled)`` or ``(failed)``; when nothing is left the job has no dependency.
        """
        any_mode = "?" in job.dependency
        results: list[bool | None] = []  # True satisfied, None not yet, False never
        left: list[str] = []
        for part in (p for p in job.dependency.replace("?", ",").split(",") if p):
            part = part.split("(", 1)[0]
            kind, _, rest = part.partition(":")
            if kind == "singleton":
                items = [("singleton", None if self._singleton_blocked(job) else True)]
            else:
                items = []
                for item in rest.split(":"):
                    ref, _, plus = item.partition("+")
                    items.append((f"{kind}:{item}",
                                  self._dependency_on(job, kind, ref, int(plus) if plus.isdigit() else 0)))
            for text, result in items:
                results.append(result)
                if result is not True:
                    left.append(f"{text}({'failed' if result is False else 'unfulfilled'})")
        if any_mode and any(r is True for r in results):
            left = []
        shown = ("?" if any_mode else ",").join(left)
        if shown != job.dependency:
            job.dependency = shown
            self._dep_changed.append(job)
        if not left:
            return None
        if any_mode or not any(r is False for r in results):
            return "DependencyNeverSatisfied" if all(r is False for r in results) else "Dependency"
        return "DependencyNeverSatisfied"

    def _singleton_blocked(self, job: Job) -> bool:
        return any(j.job_id != job.job_id and j.user == job.user and j.name == job.name and
                   (j.state in ("RUNNING", "COMPLETING", "SUSPENDED") or
                    (j.state == "PENDING" and j.job_id < job.job_id)) for j in self.jobs.values())

    def _members(self, ref: str) -> list[Job]:
        """The jobs a dependency names: a job, a whole array, or one array task (``12_3``)."""
        base, _, task = ref.partition("_")
        if not base.isdigit():
            return []
        jid = int(base)
        found = [j for j in self.jobs.values() if j.job_id == jid or j.array_job_id == jid]
        if not found:
            found = [job_from_record(r) for r in self.store.query_jobs([jid])]
        if task.isdigit():
            tid = int(task)
            found = [j for j in found if j.array_task_id == tid or
                     (j.array_task_id is None and tid in parse_ranges(j.array_task_str))]
        return found

    def _dependency_on(self, job: Job, kind: str, ref: str, plus_minutes: int) -> bool | None:
        members = self._members(ref)
        if kind == "aftercorr" and job.array_task_id is not None:
            members = [m for m in members if m.array_task_id == job.array_task_id or
                       (m.array_task_id is None and job.array_task_id in parse_ranges(m.array_task_str))]
        if not members:
            return True  # ids that have left the system count as satisfied, as in Slurm
        pending = any(m.state == "PENDING" for m in members)
        done = all(m.state in FINISHED for m in members)
        if kind == "after":
            if pending:
                return None
            started = max(m.start_time for m in members)
            return True if time.time() >= started + plus_minutes * 60 else None
        if kind in ("afterany", "afterburstbuffer"):
            return True if done else None
        ok = [m.state == "COMPLETED" for m in members if m.state in FINISHED]
        if kind in ("afterok", "aftercorr"):
            if not all(ok):
                return False
            return True if done else None
        if kind == "afternotok":
            if done:
                return not all(ok)
            return True if ok and not all(ok) else None
        return False

    async def _launch(self, job: Job, tasks: dict[str, int]) -> None:
        for plugin in self.plugins:
            if await plugin.launch(job, tasks):
                return
        inputs = self.store.inputs(job.job_id) or (self.store.inputs(job.array_job_id) if job.array_job_id else None)
        node = self.nodes[job.batch_host]
        if inputs is None or node.addr is None:
            self._finish(job, "FAILED", time.time(), exit_code=1, sig=0, usage=None)
            return
        script, env, argv = inputs
        full_env = jobenv.batch_env(job, env, tasks, self.cluster.controller_hostname, self.cluster.controller_port)
        body = {"job": job.record(), "script": script, "env": full_env, "argv": argv,
                "std_out": self.output_path(job, "out"), "std_err": self.output_path(job, "err")}
        try:
            await call_async(*node.addr, "launch", body, timeout=15)
        except (TimeoutError, OSError, RpcError) as exc:
            log.error("launch of job %d on %s failed: %s", job.job_id, node.name, exc)
            if isinstance(exc, RpcError):
                self._finish(job, "FAILED", time.time(), exit_code=1, sig=0, usage=None)
            else:
                node.responding = False
                node.down = True
                node.reason = "Not responding"
                node.reason_time = time.time()
                self._requeue(job, time.time(), count=False)
                self.schedule_soon()

    def output_path(self, job: Job, which: str) -> str:
        from orchestrator.slurm import patterns

        pattern = job.std_out if which == "out" else (job.std_err or job.std_out)
        if not pattern:
            pattern = "slurm-%A_%a.out" if job.array_task_id is not None else "slurm-%j.out"
        path = patterns.expand(pattern, job_id=job.job_id, array_job_id=job.array_job_id or job.job_id,
                               array_task_id=job.array_task_id, user=job.user, job_name=job.name,
                               node=job.batch_host, node_index=0)
        if not path.startswith("/"):
            path = f"{job.work_dir.rstrip('/')}/{path}"
        return path

    # ------------------------------------------------------------------ job ends
    def _finish(self, job: Job, state: str, now: float, exit_code: int, sig: int, usage: dict[str, Any] | None) -> None:
        if job.state in FINISHED:
            return
        if state == "NODE_FAIL" and job.requeue and job.batch:
            self._record_steps(job, "NODE_FAIL", now, 0, 0, usage)
            self._requeue(job, now, run_state="NODE_FAIL")
            return
        job.state = state
        job.end_time = now
        job.exit_code = exit_code
        job.exit_signal = sig
        job.reason = {"NODE_FAIL": "NodeFail", "TIMEOUT": "TimeLimit", "FAILED": "NonZeroExitCode",
                      "OUT_OF_MEMORY": "OutOfMemory"}.get(state, "None")
        if state == "FAILED" and sig:  # slurmctld's reason for a script or command killed by a signal
            job.reason = "JobLaunchFailure"
        if not job.start_time:
            job.start_time = now if state != "CANCELLED" else job.start_time
        self._record_steps(job, state, now, exit_code, sig, usage)
        policy.release_allocation(job, self.nodes, self._share(job))
        for plugin in self.plugins:
            plugin.on_end(job)
        self._save(job)
        self.schedule_soon()

    def _record_steps(self, job: Job, state: str, now: float, exit_code: int, sig: int,
                      usage: dict[str, Any] | None) -> None:
        if not job.start_time or not job.nodes:
            return
        usage = usage or {}
        user_cpu = float(usage.get("user_cpu", 0.0))
        sys_cpu = float(usage.get("system_cpu", 0.0))
        rss = int(usage.get("max_rss_kb", 0))
        job.total_cpu = user_cpu + sys_cpu
        job.max_rss_kb = max(job.max_rss_kb, rss)
        job.steps = [s for s in job.steps if s.step_id not in ("batch", "extern")]
        # a batch script killed by a signal is a CANCELLED step of a FAILED job, as slurmdbd records it
        batch_state = "CANCELLED" if state in ("CANCELLED", "TIMEOUT", "REQUEUED") or (state == "FAILED" and sig) \
            else state
        if job.batch:
            job.steps.insert(0, Step(job.job_id, "batch", "batch", batch_state, job.start_time, now, job.batch_host,
                                     1, 1, job.cpus_per_node.get(job.batch_host, 0), exit_code, sig,
                                     user_cpu + sys_cpu, user_cpu, sys_cpu, rss, job.batch_host, 0))
        n_nodes = len(job.cpus_per_node)
        job.steps.insert(1 if job.batch else 0, Step(job.job_id, "extern", "extern",
                                                     "COMPLETED" if state != "NODE_FAIL" else "CANCELLED",
                                                     job.start_time, now, job.nodes, n_nodes, n_nodes, job.alloc_cpus))

    def _requeue(self, job: Job, now: float, count: bool = True, hold: bool = False,
                 run_state: str = "REQUEUED") -> None:
        """Put a job back in the queue; the run that happened is kept for ``sacct -D``."""
        policy.release_allocation(job, self.nodes, self._share(job))
        if job.start_time and job.nodes:  # it ran (a job cancelled while pending has a StartTime too)
            running = job.state not in FINISHED
            if running:  # a finished job was already ended (and charged) once
                job.end_time = now
                for plugin in self.plugins:
                    plugin.on_end(job)
            if count:
                state = job.state
                job.state = run_state if running else state
                self.store.save_run(job)
                job.state = state
        job.state = "PENDING"
        self.jobs[job.job_id] = job  # queued again: among the unfinished once more
        job.reason = "BeginTime" if count else "None"
        if count:
            # slurmctld starts a new accounting record: submitted now, eligible at its new begin time, no
            # reason waited for yet; sacct shows the run before it only with -D
            job.restart_count += 1
            job.begin_time = now + self.settings.requeue_delay
            job.submit_time = now if now != job.submit_time else now + 1
            job.eligible_time = job.begin_time
            job.accrue_time = 0.0
            job.reason_prev = "None"
        job.steps = NO_STEPS  # the earlier run's steps are not this run's (step ids start at 0 again)
        job.total_cpu = 0.0
        job.max_rss_kb = 0
        job.start_time = 0.0
        job.end_time = 0.0
        job.nodes = ""
        job.batch_host = ""
        job.cpus_per_node = {}
        job.mem_per_alloc_node = {}
        job.gpus_per_node = {}
        job.alloc_cpus = 0
        job.alloc_mem = 0
        if hold:
            job.hold = "admin"
            job.reason = "JobHeldAdmin"
        self._save(job)

    async def op_job_ended(self, req: Request) -> dict[str, Any]:
        self._require_root(req)
        b = req.body
        job = self.jobs.get(int(b["job_id"]))
        if job is None or job.state in FINISHED or int(b.get("restart_count", 0)) != job.restart_count:
            return {"stale": True}
        if job.state == "PENDING":
            return {"stale": True}
        state = str(b["state"])
        if state == "REQUEUED":
            self._record_steps(job, "REQUEUED", float(b["end"]), int(b["exit_code"]), int(b["signal"]), b)
            self._requeue(job, time.time(), hold=job.hold == "admin")
            self.schedule_soon()
            return {}
        if b.get("cancelled_by") is not None and job.cancelled_by is None:
            job.cancelled_by = int(b["cancelled_by"])
        self._finish(job, state, float(b["end"]), int(b["exit_code"]), int(b["signal"]), b)
        return {}

    # ------------------------------------------------------------------ nodes
    def _require_root(self, req: Request) -> None:
        import os

        if req.uid not in (0, os.getuid()):
            raise SlurmError("ESLURM_ACCESS_DENIED")

    def _node_report(self, req: Request) -> dict[str, Any]:
        body = req.body
        node = self.nodes.get(str(body["node"]))
        if node is None:
            raise SlurmError("ESLURM_INVALID_NODE_NAME")
        now = time.time()
        node.last_heartbeat = now
        node.cpu_load = float(body.get("cpu_load", 0.0))
        node.free_mem = int(body.get("free_mem", 0))
        kill: list[int] = []
        limits: dict[str, int] = {}  # the node enforces them; `scontrol update` may have moved one
        for item in body.get("running", []):
            job = self.jobs.get(int(item["job_id"]))
            if job is None or job.state not in ("RUNNING", "COMPLETING") or node.name not in job.cpus_per_node \
                    or int(item.get("restart_count", 0)) != job.restart_count:
                kill.append(int(item["job_id"]))
            else:
                limits[str(job.job_id)] = job.time_limit
        reported = {int(i["job_id"]) for i in body.get("running", [])} | {int(i) for i in body.get("results", [])}
        for job in [j for j in self._allocated_on(node.name) if j.state in ("RUNNING", "COMPLETING")]:
            if job.job_id in reported:
                continue
            if job.batch_host == node.name and (req.op == "node_register" or now - job.start_time > 10):
                log.warning("job %d is no longer on %s: lost", job.job_id, node.name)
                self._finish(job, "NODE_FAIL", now, exit_code=0, sig=0, usage=None)
            elif req.op == "node_register" and job.start_time < node.boot_time - BOOT_TIME_SLACK:
                # slurmctld's rule: a node that booted after a job started there has lost its part
                # of the job (the other nodes' steps may run on, but the job cannot complete)
                log.warning("node %s rebooted, killing job %d", node.name, job.job_id)
                self._finish(job, "NODE_FAIL", now, exit_code=0, sig=0, usage=None)
        if not node.responding and node.registered:
            node.responding = True
            if node.down and node.reason == "Not responding":
                node.down = False
                node.reason = ""
            self.schedule_soon()
        return {"kill": kill, "limits": limits}

    async def op_node_register(self, req: Request) -> dict[str, Any]:
        self._require_root(req)
        body = req.body
        node = self.nodes.get(str(body["node"]))
        if node is None:
            raise SlurmError("ESLURM_INVALID_NODE_NAME")
        node.addr = (str(body.get("host") or node.name), int(body.get("port", node.spec.port)))
        node.boot_time = float(body.get("boot_time", 0))
        node.slurmd_start_time = float(body.get("slurmd_start_time", 0))
        node.version = str(body.get("version", ""))
        node.os = str(body.get("os", ""))
        node.registered = True
        node.responding = True
        if node.down and node.reason in ("Not responding", ""):
            node.down = False
            node.reason = ""
        log.info("node %s registered from %s:%d", node.name, *node.addr)
        reply = self._node_report(req)
        self.schedule_soon()
        return reply

    async def op_node_heartbeat(self, req: Request) -> dict[str, Any]:
        self._require_root(req)
        node = self.nodes.get(str(req.body["node"]))
        if node is None or not node.registered:
            return {"reregister": True}
        return self._node_report(req)

    async def op_update_node(self, req: Request) -> dict[str, Any]:
        if req.uid != 0:
            raise SlurmError("ESLURM_ACCESS_DENIED")
        try:
            names = expand(str(req.body["nodes"]))
        except HostlistError:
            raise SlurmError("ESLURM_INVALID_NODE_NAME") from None
        state = str(req.body.get("state", "")).upper()
        reason = str(req.body.get("reason", ""))
        for name in names:
            if name not in self.nodes:
                raise SlurmError("ESLURM_INVALID_NODE_NAME", "Invalid node name specified")
        if state in ("DRAIN", "DOWN") and not reason:
            raise SlurmError("EINVAL", "You must specify a reason when DOWNING or DRAINING a node. Request denied")
        now = time.time()
        for name in names:
            node = self.nodes[name]
            if state == "DRAIN":
                node.drain = True
            elif state == "DOWN":
                node.down = True
                self._node_failed(name, now)
            elif state in ("RESUME", "IDLE", "UNDRAIN"):
                node.drain = False
                node.down = False
                reason = ""
            else:
                raise SlurmError("EINVAL", "Invalid node state specified")
            node.reason = reason
            node.reason_uid = req.uid
            node.reason_time = now if reason else 0.0
            self.store.save_node_state(name, {"drain": node.drain, "down": node.down and node.reason != "Not responding",
                                              "reason": node.reason, "reason_uid": node.reason_uid,
                                              "reason_time": node.reason_time})
        self.schedule_soon()
        return {}

    # ------------------------------------------------------------------ submit
    def _identity(self, uid: int, gid: int) -> tuple[str, str]:
        """User and group names, cached for a minute as slurmctld does (NSS costs more than a submit)."""
        now = time.monotonic()
        hit = self._names.get((uid, gid))
        if hit is not None and now - hit[0] < 60:
            return hit[1], hit[2]
        try:
            user = pwd.getpwuid(uid).pw_name
        except KeyError:
            raise SlurmError("ESLURM_USER_ID_MISSING") from None
        try:
            group = grp.getgrgid(gid).gr_name
        except KeyError:
            group = str(gid)
        self._names[(uid, gid)] = (now, user, group)
        return user, group

    def _default_account(self, user: str, group: str) -> tuple[str, list[str] | None]:
        try:
            u = self.config.user(user)
        except KeyError:
            return group, None
        return u.default_project, list(u.projects)

    async def op_submit(self, req: Request) -> dict[str, Any]:
        body = req.body
        spec = body.get("job") or {}
        if not isinstance(spec, dict):
            raise SlurmError("EINVAL")
        user, group = self._identity(req.uid, req.gid)
        job = self._build_job(spec, req.uid, req.gid, user, group, batch=req.op == "submit")
        script = str(body.get("script") or "")
        if job.batch and not script.startswith("#!"):
            raise SlurmError("ESLURM_JOB_SCRIPT_MISSING")
        env = body.get("env") or {}
        if not isinstance(env, dict):
            raise SlurmError("ESLURM_ENVIRONMENT_MISSING")
        env = {str(k): str(v) for k, v in env.items()}
        argv = [str(a) for a in body.get("argv") or []]
        for plugin in self.plugins:
            plugin.on_submit(job)
        if body.get("test_only"):
            self._array_spec(spec)
            return {"test_only": self._test_only(job)}
        array = self._array_spec(spec)
        job.job_id = self.store.allocate_job_ids(1)
        job.priority = 0 if job.hold else max(1, BASE_PRIORITY - job.job_id)  # held: 0, as scontrol hold gives
        if array is not None:
            job.array_job_id = job.job_id
            job.array_task_str = format_ranges(array.ids)
            job.array_max_tasks = array.throttle
            job.array_spec = str(spec["array"])
        compact(job)  # once the job is complete: it stays in memory
        self.store.insert_job(job, script, env, argv)
        self.jobs[job.job_id] = job
        self.schedule_soon()
        return {"job_id": job.job_id, "cluster": self.cluster.name}

    def _build_job(self, spec: dict[str, Any], uid: int, gid: int, user: str, group: str, batch: bool) -> Job:
        unknown = set(spec) - USER_SETTABLE - {"hold", "array", "export", "gpus", "gpus_per_node"}
        if unknown:
            raise SlurmError("EINVAL", f"Invalid argument: unknown job fields {', '.join(sorted(unknown))}")
        now = time.time()
        default_acct, allowed = self._default_account(user, group)
        # the checks come in slurmctld's order (_job_create), so that a request with several faults is refused
        # for the one Slurm names: required node names, partition, account, QOS, GRES, excluded node names,
        # node counts, dependency, features, and last whether the nodes could ever hold the job
        req_nodes = self._node_names(str(spec.get("req_nodes") or ""))
        part_name = str(spec.get("partition") or "")
        if not part_name:
            dp = self.cluster.default_partition
            if dp is None:
                raise SlurmError("ESLURM_DEFAULT_PARTITION_NOT_SET")
            part_name = dp.name
        for name in part_name.split(","):  # every partition of a list must exist; the job goes to the first
            if name not in self.partitions:
                raise SlurmError("ESLURM_INVALID_PARTITION_NAME", err_msg=f"invalid partition specified: {name}")
        part_name = part_name.split(",")[0]
        part = self.partitions[part_name]
        account = str(spec.get("account") or default_acct)
        if allowed is not None and account not in allowed:
            raise SlurmError("ESLURM_INVALID_ACCOUNT")
        qos = str(spec.get("qos") or "normal")
        if qos not in QOS_NAMES:
            raise SlurmError("ESLURM_INVALID_QOS")
        tl = spec.get("time_limit")
        if tl is None:
            time_limit = part.default_time if part.default_time != INFINITE else part.max_time
        else:
            time_limit = int(tl)
            if time_limit == 0 or time_limit < -1:
                raise SlurmError("ESLURM_INVALID_TIME_LIMIT")
        job = Job(job_id=0, cluster=self.cluster.name, name=str(spec.get("name") or ("sbatch" if batch else "interactive")),
                  uid=uid, gid=gid, user=user, group=group, account=account, partition=part_name, qos=qos,
                  submit_time=now, time_limit=time_limit, batch=batch)
        for key in ("comment", "exc_nodes", "features", "gres", "dependency", "open_mode", "signal",
                    "mail_type", "mail_user", "work_dir", "command", "std_out", "std_err", "std_in", "submit_host"):
            if key in spec and spec[key] is not None:
                setattr(job, key, str(spec[key]))
        for key in ("num_nodes", "max_nodes", "num_tasks", "ntasks_per_node", "cpus_per_task", "mem_per_cpu",
                    "mem_per_node", "gpus_per_task"):
            if key in spec and spec[key] is not None:
                value = int(spec[key])
                if value < 0:
                    raise SlurmError("EINVAL")
                setattr(job, key, value)
        for key in ("nodes_explicit", "ntasks_explicit", "exclusive"):
            if key in spec:
                setattr(job, key, bool(spec[key]))
        job.requeue = bool(spec["requeue"]) if spec.get("requeue") is not None else self.settings.job_requeue
        job.kill_on_invalid_dep = bool(spec.get("kill_on_invalid_dep"))
        if not job.mem_per_cpu and not job.mem_per_node:
            job.mem_per_cpu = self.config.site.mem_per_cpu  # DefMemPerCPU, recorded as slurmctld does
        if not job.std_in:
            job.std_in = "/dev/null"
        if job.nodes_explicit and job.num_nodes < 1:
            raise SlurmError("ESLURM_INVALID_NODE_COUNT")  # -N 0, refused by slurmctld
        job.num_nodes = max(1, job.num_nodes)
        job.cpus_per_task = max(1, job.cpus_per_task)
        if not job.ntasks_explicit:
            job.num_tasks = max(job.num_tasks, job.num_nodes * max(1, job.ntasks_per_node))
        if spec.get("begin_time"):
            job.begin_time = float(spec["begin_time"])
        if spec.get("hold"):
            job.hold = "user"
            job.reason = "JobHeldUser"
            policy.note_wait(job)
        # EligibleTime as slurmctld gives it at submission: a --begin time is one at once (even while held or
        # dependent), and a job with nothing to wait for is eligible from its submission; a dependent job
        # becomes eligible in the pass that finds its dependency satisfied
        if job.begin_time:
            job.eligible_time = job.expected_start = job.begin_time
        elif not job.hold and not job.dependency:
            job.eligible_time = now
        job.accrue_time = job.eligible_time
        job.req_gpus = str(spec.get("gpus") or "")
        job.req_gpus_per_node = str(spec.get("gpus_per_node") or "")
        gpus = spec.get("gpus_per_node") or spec.get("gpus")
        if gpus and not job.gres:
            job.gres = f"gpu:{gpus}"
        self._validate_gres(job)
        job.exc_nodes = self._node_names(job.exc_nodes)
        if req_nodes:
            job.req_nodes = req_nodes
            job.num_nodes = max(job.num_nodes, len(expand(req_nodes)))
        if job.max_nodes and job.max_nodes < job.num_nodes:
            raise SlurmError("ESLURM_INVALID_NODE_COUNT")
        if job.dependency:
            job.dependency_spec = job.dependency  # SLURM_JOB_DEPENDENCY keeps what was asked for
            self._validate_dependency(job)
        try:
            validate_constraint(job.features, {f for n in self.cluster.nodes for f in n.features})
        except ValueError:
            raise SlurmError("ESLURM_INVALID_FEATURE") from None
        self._validate_fit(job, part)
        return job

    def _node_names(self, value: str) -> str:
        """A -w/-x node list in its compressed form; any name the cluster does not have is refused."""
        if not value:
            return ""
        try:
            names = expand(value)
        except HostlistError:
            raise SlurmError("ESLURM_INVALID_NODE_NAME") from None
        if any(n not in self.nodes for n in names):
            raise SlurmError("ESLURM_INVALID_NODE_NAME")
        return compress(names)

    def _validate_gres(self, job: Job) -> None:
        try:
            gres = parse_gres_request(job.gres)
        except ValueError:
            raise SlurmError("ESLURM_INVALID_GRES") from None
        if gres is not None:
            types = {(g.type or "").lower() for n in self.cluster.nodes for g in n.gres if g.name == "gpu"}
            if not types or (gres.type and gres.type.lower() not in types):
                raise SlurmError("ESLURM_INVALID_GRES")
            job.gres = f"gpu:{gres.type}:{gres.per_node}" if gres.type else f"gpu:{gres.per_node}"

    def _validate_fit(self, job: Job, part: PartitionSpec) -> None:
        """Whether the partition's nodes could ever hold the job (it may wait for them); -w outside it cannot."""
        if job.req_nodes and any(n not in part.nodes for n in expand(job.req_nodes)):
            raise SlurmError("ESLURM_REQUESTED_NODE_CONFIG_UNAVAILABLE")
        if policy.limit_reason(job, part) == "PartitionNodeLimit":
            return  # accepted, pending with PartitionNodeLimit, as Slurm does
        cands = policy.candidate_nodes(job, part, self.nodes)
        empty_fit = fit(job, cands, self.config.site.mem_per_cpu, part.oversubscribe, empty=True)
        if empty_fit is None:
            raise SlurmError("ESLURM_REQUESTED_NODE_CONFIG_UNAVAILABLE")

    def _validate_dependency(self, job: Job) -> None:
        """Check a dependency as slurmctld parses it, and write it in its long form.

        Job ids that are not (or no longer) known are accepted (they count as satisfied);
        what is refused is a malformed list: an empty item (``afterok:1?``), an unknown
        type, id 0 or the job itself, a ``+time`` that is not a positive number of minutes.
        A bare id list (``12,13``) is the old form of ``afterany``.
        """
        import re

        out: list[str] = []
        for piece in re.split(r"[,?]", job.dependency):
            if piece.lower() == "singleton":
                out.append("singleton")
                continue
            kind, colon, rest = piece.partition(":")
            if not colon:
                if not piece[:1].isdigit():
                    raise SlurmError("ESLURM_DEPENDENCY")
                kind, rest = "afterany", piece
            kind = kind.lower()
            if kind == "expand":
                raise SlurmError("ESLURM_NOT_SUPPORTED")  # job expansion is not permitted here
            if kind not in ("after", "afterany", "afterok", "afternotok", "aftercorr", "afterburstbuffer"):
                raise SlurmError("ESLURM_DEPENDENCY")
            for item in rest.split(":"):
                m = re.match(r"^(\d+)(_(?:\d+|\*))?(?:\+(\d+))?$", item)
                if not m or int(m.group(1)) == 0 or int(m.group(1)) == job.job_id \
                        or (m.group(3) is not None and int(m.group(3)) <= 0):
                    raise SlurmError("ESLURM_DEPENDENCY")
                if f"{kind}:{item}" not in out:
                    out.append(f"{kind}:{item}")
        # slurmctld's form: one item per job id, all joined by "?" if any was, each marked until it holds
        sep = "?" if "?" in job.dependency else ","
        job.dependency = sep.join(f"{item}(unfulfilled)" for item in out)

    def _test_only(self, job: Job) -> dict[str, Any]:
        part = self.partitions[job.partition]
        cands = policy.candidate_nodes(job, part, self.nodes)
        running = [j for j in self.jobs.values() if j.state in ("RUNNING", "COMPLETING")]
        now = time.time()
        est = policy.earliest_start(job, cands, running, now, self.config.site.mem_per_cpu, part.oversubscribe)
        start, alloc = (est if est is not None else (now + policy.FAR_FUTURE, None))
        return {"job_id": self.store.peek_next_job_id(), "start_time": max(start, job.begin_time),
                "cpus": sum(alloc.cpus.values()) if alloc else job.num_tasks * job.cpus_per_task,
                "nodes": compress(alloc.nodes) if alloc else "", "partition": job.partition}

    # ------------------------------------------------------------------ queries
    async def op_ping(self, req: Request) -> dict[str, Any]:
        return {"cluster": self.cluster.name, "now": time.time(), "version": SLURM_VERSION}

    def _select(self, body: dict[str, Any], jobs: list[Job] | None = None) -> list[Job]:
        selected = list(self.jobs.values()) if jobs is None else jobs
        ids = body.get("job_ids") or []
        if ids:
            want_ids: set[int] = set()
            want_tasks: set[tuple[int, int]] = set()
            for item in ids:
                s = str(item)
                if "_" in s:
                    a, _, b = s.partition("_")
                    want_tasks.add((int(a), int(b)))
                else:
                    want_ids.add(int(s))
            if want_tasks:
                selected = [j for j in selected if j.job_id in want_ids or j.array_job_id in want_ids
                            or (j.array_job_id, j.array_task_id) in want_tasks]
            else:  # squeue -j N, sbatch --wait: no tuple per job
                selected = [j for j in selected if j.job_id in want_ids or j.array_job_id in want_ids]
        for key, attr in (("users", "user"), ("partitions", "partition"), ("names", "name"),
                          ("accounts", "account")):
            values = body.get(key)
            if values:
                vs = {str(v) for v in values}
                if key == "users":  # names or uids (as text): compare uids as numbers, not str() per job
                    uids = {int(v) for v in vs if v.isascii() and v.isdigit() and str(int(v)) == v}
                    selected = [j for j in selected if j.user in vs or j.uid in uids]
                else:
                    selected = [j for j in selected if getattr(j, attr) in vs]
        states = body.get("states")
        if states:
            st = {str(s).upper() for s in states}
            selected = [j for j in selected if j.state in st]
        return selected

    async def op_jobs(self, req: Request) -> dict[str, Any]:
        body = req.body
        fields = [str(f) for f in body.get("fields") or RECORD_FIELDS]
        bad = [f for f in fields if f not in RECORD_FIELDS]
        if bad:
            raise SlurmError("EINVAL", f"Invalid argument: unknown fields {', '.join(bad)}")
        selected = self._select(body)
        ids = body.get("job_ids") or []
        if len(ids) == 1 and not selected:
            raise SlurmError("ESLURM_INVALID_JOB_ID")
        selected.sort(key=operator.attrgetter("job_id"))
        if "steps" in fields:  # squeue -s, scontrol show step: the steps as slurmctld lists them
            at = fields.index("steps")
            rows: list[Any] = []
            for j in selected:
                row = [getattr(j, f) for f in fields]
                row[at] = [*self._live_steps(j, accounting=False), *(st.record() for st in j.steps)]
                rows.append(row)
        elif body.get("columnar"):  # squeue: a column per field, shared values sent once
            columns = pack_columns([list(map(operator.attrgetter(f), selected)) for f in fields])
            return {"fields": fields, "columns": columns, "count": len(selected), "now": time.time()}
        else:
            get = operator.attrgetter(*fields)
            rows = [get(j) for j in selected] if len(fields) > 1 else [[get(j)] for j in selected]
        return {"fields": fields, "rows": rows, "now": time.time()}

    async def op_acct(self, req: Request) -> dict[str, Any]:
        body = req.body
        ids = [int(str(i).split("_")[0].split(".")[0]) for i in body.get("job_ids") or []]
        uids: list[int] | None = None
        if not body.get("all_users") and not body.get("users") and not ids:
            uids = [req.uid] if req.uid != 0 else None
        recs = self.store.query_jobs(ids or None, uids, body.get("start"), body.get("end"))
        jobs = [job_from_record(r) for r in recs]
        # in-memory state is newer than the store only between a change and its write; prefer memory
        jobs = [self.jobs.get(j.job_id, j) for j in jobs]
        sel = dict(body)
        sel.pop("job_ids", None)
        jobs = self._select(sel, jobs)
        records = [self._acct_record(j) for j in jobs]
        if body.get("duplicates"):
            runs = self.store.runs([j.job_id for j in jobs if j.restart_count])
            records = [r for rec in records for r in [*runs.get(rec["job_id"], []), rec]]
        return {"jobs": records, "now": time.time()}

    async def op_job_inputs(self, req: Request) -> dict[str, Any]:
        """sacct -B / --env-vars: each named batch job's script or environment as submitted (AccountingStoreFlags
        job_script,job_env); the owner's and root's only, as sacct shows nothing of another user's job."""
        what = req.body.get("what")
        if what not in ("script", "env"):
            raise SlurmError("EINVAL")
        ids = [int(i) for i in req.body.get("job_ids") or []]
        out: list[dict[str, Any]] = []
        for rec in self.store.query_jobs(ids) if ids else []:
            job = self.jobs.get(int(rec["job_id"])) or job_from_record(rec)
            if self._own(req, job):
                continue
            inputs = self.store.inputs(job.job_id) or (self.store.inputs(job.array_job_id) if job.array_job_id else None)
            text = None
            if job.batch and inputs is not None:
                script, env, _argv = inputs
                text = script if what == "script" else "".join(f"{k}={v}\n" for k, v in env.items())
            out.append({"job_id": job.job_id, "text": text})
        return {"jobs": out}

    def _acct_record(self, job: Job) -> dict[str, Any]:
        """A job's accounting record; a running job shows its batch and extern steps as RUNNING."""
        rec = job.record()
        live = self._live_steps(job, accounting=True)
        if live:
            rec["steps"] = live + rec["steps"]
        if job.state in ENDED_BY_CONTROLLER:
            # slurmctld logs these jobs as it ends them, before the batch script's status arrives: the job
            # line keeps exit code 0:0, and the steps killed along with it never reach DerivedExitCode
            rec["exit_code"] = rec["exit_signal"] = 0
            rec["derived_exit_code"] = derived_exit_code([s for s in job.steps
                                                          if s.end_time and s.end_time < job.end_time])
        return rec

    @staticmethod
    def _live_steps(job: Job, accounting: bool) -> list[dict[str, Any]]:
        """The extern and batch steps of a running job, which exist as records only once it ends.

        Accounting gives them the CPUs they hold; slurmctld's own step list (``accounting`` False)
        counts no CPUs for them, and lists extern first, then batch, as Slurm does.
        """
        if job.state not in ("RUNNING", "COMPLETING") or not job.start_time or not job.nodes:
            return []
        have = {s.step_id for s in job.steps}
        live = []
        if "extern" not in have:
            n = len(job.cpus_per_node)
            live.append(Step(job.job_id, "extern", "extern", "RUNNING", job.start_time, 0.0, job.nodes, n, n,
                             job.alloc_cpus if accounting else 0).record())
        if job.batch and "batch" not in have:
            live.append(Step(job.job_id, "batch", "batch", "RUNNING", job.start_time, 0.0, job.batch_host, 1, 1,
                             job.cpus_per_node.get(job.batch_host, 0) if accounting else 0).record())
        if accounting:
            live.reverse()  # sacct's record order: batch, extern (sacct sorts its lines itself)
        return live

    async def op_nodes(self, req: Request) -> dict[str, Any]:
        out = []
        for node in self.nodes.values():
            flags = []
            if node.drain:
                flags.append("DRAIN")
            if node.registered and not node.responding:
                flags.append("NOT_RESPONDING")
            out.append({
                "name": node.name, "state": node.base_state(), "flags": flags, "reason": node.reason,
                "reason_user": _user_name(node.reason_uid), "reason_time": node.reason_time,
                "cpus": node.spec.cpus, "alloc_cpus": min(node.spec.cpus, round(node.alloc_cpus)),
                "memory": node.spec.memory_mb, "alloc_mem": node.alloc_mem, "free_mem": node.free_mem,
                "gres": ",".join(str(g) for g in node.spec.gres),
                "gres_used": _gres_used(node), "features": ",".join(node.spec.features),
                "partitions": [p.name for p in self.cluster.partitions if node.name in p.nodes],
                "boot_time": node.boot_time, "slurmd_start_time": node.slurmd_start_time,
                "last_busy": node.last_busy, "addr": node.addr[0] if node.addr else node.name,
                "hostname": node.name, "cpu_load": node.cpu_load, "arch": "x86_64", "os": node.os,
                "version": node.version or SLURM_VERSION, "jobs": sorted(node.jobs),
            })
        return {"nodes": out}

    async def op_partitions(self, req: Request) -> dict[str, Any]:
        out = []
        for p in self.cluster.partitions:
            out.append({"name": p.name, "default": p.default, "nodes": compress(list(p.nodes)),
                        "max_time": p.max_time, "default_time": p.default_time, "priority_tier": p.priority_tier,
                        "oversubscribe": p.oversubscribe, "max_nodes": p.max_nodes, "state": "UP",
                        "total_cpus": sum(self.nodes[n].spec.cpus for n in p.nodes),
                        "total_nodes": len(p.nodes), "def_mem_per_cpu": self.config.site.mem_per_cpu})
        return {"partitions": out}

    async def op_config(self, req: Request) -> dict[str, Any]:
        from orchestrator.scheduler.slurmconf import MAX_JOB_COUNT, config_items

        s = self.settings
        nodes = len(self.cluster.nodes)
        site = {
            "AccountingStorageHost": self.cluster.controller_hostname,
            "BOOT_TIME": _ts(self.start_time),
            "ClusterName": self.cluster.name,
            "DefMemPerCPU": str(self.config.site.mem_per_cpu),
            "GresTypes": "gpu" if any(n.gres for n in self.cluster.nodes) else "(null)",
            "JobRequeue": "1" if s.job_requeue else "0",
            "KillWait": f"{s.kill_wait} sec",
            "MaxArraySize": str(self.config.site.max_array_size),
            "MaxDBDMsgs": str(max(10000, 2 * MAX_JOB_COUNT + 4 * nodes)),  # slurmctld's default
            "MaxNodeCount": str(nodes),
            "MinJobAge": f"{s.min_job_age} sec",
            "NEXT_JOB_ID": str(self.store.peek_next_job_id()),
            "SlurmctldHost[0]": self.cluster.controller_hostname,
            "SlurmctldPort": str(self.cluster.controller_port),
            "SlurmdPort": str(self.cluster.nodes[0].port if self.cluster.nodes else 6818),
            "SlurmdTimeout": f"{s.slurmd_timeout} sec",
            "SLURM_VERSION": SLURM_VERSION,
            "StateSaveLocation": str(self.store.path.parent),
        }
        return {"config": [list(i) for i in config_items(site)]}

    # ------------------------------------------------------------------ job control
    def _own(self, req: Request, job: Job) -> str | None:
        if req.uid in (0, job.uid):
            return None
        return "ESLURM_ACCESS_DENIED"

    def _targets(self, ids: list[Any]) -> list[tuple[str, list[Job]]]:
        """Jobs named by ``12``, ``12_3`` or ``12_[1-3]``; pending array tasks named alone are split off."""
        out: list[tuple[str, list[Job]]] = []
        for item in ids:
            s = str(item)
            base, _, task = s.partition("_")
            if not base.isdigit():
                out.append((s, []))
                continue
            if task.startswith("[") and task.endswith("]"):
                try:
                    tasks = parse_ranges(task[1:-1].split("%")[0])
                except ArraySpecError:
                    out.append((s, []))
                    continue
                meta = self.jobs.get(int(base))
                if meta is not None and meta.state == "PENDING" and meta.array_task_id is None \
                        and meta.array_task_str:
                    rest = parse_ranges(meta.array_task_str)
                    if set(rest) <= set(tasks):  # all its pending tasks: the array record as a whole, as
                        out.append((s, [meta]))  # slurmctld does (no per-task records for 10,000 tasks)
                        left = set(rest)
                        tasks = [t for t in tasks if t not in left]
                for t in tasks:
                    out.append((f"{base}_{t}", self._task_jobs(int(base), t)))
            elif task:
                if not task.isdigit():
                    out.append((s, []))
                    continue
                out.append((s, self._task_jobs(int(base), int(task))))
            else:
                out.append((s, self._select({"job_ids": [s]})))
        return out

    def _task_jobs(self, array_id: int, task_id: int) -> list[Job]:
        found = [j for j in self.jobs.values() if j.array_job_id == array_id and j.array_task_id == task_id]
        if found:
            return found
        meta = self.jobs.get(array_id)
        if meta is None or meta.array_task_id is not None or task_id not in parse_ranges(meta.array_task_str):
            return []
        task = self._split_task(meta, task_id)
        return [task] if task is not None else []

    # ------------------------------------------------------------------ arrays
    def _array_spec(self, spec: dict[str, Any]) -> ArraySpec | None:
        text = spec.get("array")
        if not text:
            return None
        try:
            parsed = parse_array(str(text), self.config.site.max_array_size)
        except ArraySpecError:
            raise SlurmError("ESLURM_INVALID_ARRAY") from None
        return parsed if parsed.ids else None  # "--array=," names no task: a plain job, as in Slurm

    def _claim_array_slot(self, array_id: int, limit: int) -> bool:
        """One of an array's %N running slots for this pass (held whether or not the task then fits)."""
        counts = self._pass_counts
        running = counts.get(array_id)
        if running is None:
            running = counts[array_id] = self._running_tasks(array_id)
        if running >= limit:
            return False
        counts[array_id] = running + 1
        return True

    def _running_tasks(self, array_id: int) -> int:
        return sum(1 for j in self.jobs.unfinished() if j.array_job_id == array_id and j.array_task_id is not None
                   and j.state in ("RUNNING", "COMPLETING"))

    def _take_task(self, meta: Job) -> Job | None:
        """Split the next task off a pending array for the scheduler, honouring its %N throttle."""
        if meta.array_max_tasks and not self._claim_array_slot(meta.job_id, meta.array_max_tasks):
            return None
        ids = parse_ranges(meta.array_task_str)
        return self._split_task(meta, ids[0]) if ids else None

    def _split_task(self, meta: Job, task_id: int) -> Job | None:
        """Make task ``task_id`` a job of its own; the array's last task keeps the array's job id."""
        ids = parse_ranges(meta.array_task_str)
        if task_id not in ids:
            return None
        ids.remove(task_id)
        if not ids:
            meta.array_task_id = task_id
            meta.array_task_str = ""
            return meta
        task = job_from_record(meta.record())
        task.job_id = self.store.allocate_job_ids(1)
        task.array_task_id = task_id
        task.array_task_str = ""
        task.steps = []
        compact(task)  # it shares the array's options
        meta.array_task_str = format_ranges(ids)
        self.jobs[task.job_id] = task
        self._save(meta, task)
        return task

    async def op_signal(self, req: Request) -> dict[str, Any]:
        body = req.body
        sig = body.get("signal")
        results: list[dict[str, Any]] = []
        step_ids = [str(i) for i in body.get("job_ids") or [] if "." in str(i)]
        if step_ids:
            results.extend(await self._signal_steps(req, step_ids, sig))
            body = {**body, "job_ids": [i for i in body["job_ids"] if "." not in str(i)]}
            if not body["job_ids"]:
                return {"results": results}
        if body.get("job_ids"):
            groups = self._targets(body["job_ids"])
            filt = {k: body.get(k) for k in ("users", "partitions", "states", "names", "accounts")}
            groups = [(label, self._select(filt, jobs)) if any(filt.values()) else (label, jobs)
                      for label, jobs in groups]
        else:
            filt = {k: body.get(k) for k in ("users", "partitions", "states", "names", "accounts")}
            if not any(filt.values()):
                raise SlurmError("EINVAL", "No job identification provided")
            sel = [j for j in self._select(filt) if j.state not in FINISHED]
            if req.uid != 0:
                sel = [j for j in sel if j.uid == req.uid]
            groups = [(str(j.job_id), [j]) for j in sel]
        cancelled: list[Job] = []
        for label, jobs in groups:
            live = [j for j in jobs if j.state not in FINISHED]
            if not live:
                results.append({"job_id": label, "error": "ESLURM_INVALID_JOB_ID" if not jobs else "ESLURM_ALREADY_DONE",
                                "message": "Invalid job id specified" if not jobs
                                else "Job/step already completing or completed"})
                continue
            for job in live:
                err = self._own(req, job)
                if err:
                    results.append({"job_id": label, "error": err, "message": "Access/permission denied"})
                    continue
                if job.state == "PENDING":
                    if self._cancel_pending(job, sig, req.uid):
                        cancelled.append(job)
                else:
                    await self._signal_job(job, sig, req.uid, bool(body.get("batch_only")), bool(body.get("full")))
                results.append({"job_id": label, "error": None, "message": ""})
        self._save(*cancelled)  # one transaction, however many jobs: scancel -u on 10,000 stays quick
        if cancelled:
            self.schedule_soon()
        return {"results": results}

    @classmethod
    def _cancel_pending(cls, job: Job, sig: int | None, by: int) -> bool:
        """A pending job ends at once when cancelled (or sent KILL/TERM); other signals do nothing."""
        if sig is not None and sig not in (9, 15):
            return False
        cls.end_pending(job, time.time(), by)
        return True

    @staticmethod
    def end_pending(job: Job, now: float, by: int | None) -> None:
        """The one way a pending job is cancelled: scancel, salloc withdrawing its request, and
        --kill-on-invalid-dep (``by`` None: nobody cancelled it, so sacct says ``CANCELLED``, not
        ``CANCELLED by UID``). As slurmctld does, its StartTime becomes its EndTime and it keeps the
        reason it waited for (``JobState=CANCELLED Reason=DependencyNeverSatisfied``)."""
        job.state = "CANCELLED"
        job.cancelled_by = by
        job.start_time = job.end_time = now

    async def _signal_steps(self, req: Request, labels: list[str], sig: int | None) -> list[dict[str, Any]]:
        """``scancel N.S``: handed to the step service when it is loaded."""
        handler = self.server.handlers.get("step_signal")
        out: list[dict[str, Any]] = []
        for label in labels:
            job_s, _, step_s = label.partition(".")
            if handler is None or not job_s.isdigit() or not step_s.isdigit():
                out.append({"job_id": label, "error": "ESLURM_INVALID_JOB_ID", "message": "Invalid job id specified"})
                continue
            sub = Request("step_signal", req.uid, req.gid, {"job_id": int(job_s), "step_id": int(step_s),
                                                             "signal": sig}, req.peer, req.reader, req.writer)
            try:
                await handler(sub)
                out.append({"job_id": label, "error": None, "message": ""})
            except RpcError as exc:
                out.append({"job_id": label, "error": exc.code, "message": exc.message})
        return out

    async def _signal_job(self, job: Job, sig: int | None, by: int, batch_only: bool, full: bool) -> None:
        now = time.time()
        targets = [self.nodes[n] for n in job.cpus_per_node if n in self.nodes]
        if sig is None:
            job.cancelled_by = by
            job.state = "COMPLETING" if job.state == "RUNNING" else job.state
            self._save(job)
            for node in targets:
                await self._node_call(node, "kill", {"job_id": job.job_id, "reason": "CANCELLED", "by": by})
            if not any(n.usable or (n.registered and n.responding) for n in targets):
                self._finish(job, "CANCELLED", now, 0, 0, None)
            return
        for node in targets:
            await self._node_call(node, "signal", {"job_id": job.job_id, "signal": sig, "batch_only": batch_only,
                                                   "full": full})

    async def _node_call(self, node: NodeState, op: str, body: dict[str, Any]) -> dict[str, Any] | None:
        if node.addr is None:
            return None
        try:
            return await call_async(*node.addr, op, body, timeout=10)
        except (TimeoutError, OSError, RpcError) as exc:
            log.warning("%s to %s failed: %s", op, node.name, exc)
            return None

    def _control(self, req: Request, fn: Any, denied: str = "ESLURM_USER_ID_MISSING") -> dict[str, Any]:
        """Apply ``fn`` to each named job the caller owns; scontrol reports others' jobs as Slurm does."""
        results: list[dict[str, Any]] = []
        for label, jobs in self._targets(req.body.get("job_ids") or []):
            if not jobs:
                results.append({"job_id": label, "error": "ESLURM_INVALID_JOB_ID",
                                "message": "Invalid job id specified"})
                continue
            for job in jobs:
                if self._own(req, job):
                    results.append({"job_id": label, "error": denied, "message": MESSAGES[denied]})
                    continue
                try:
                    fn(job)
                except SlurmError as exc:
                    results.append({"job_id": label, "error": exc.code, "message": exc.message})
                    continue
                self._save(job)
                results.append({"job_id": label, "error": None, "message": ""})
        self.schedule_soon()
        return {"results": results}

    async def op_hold(self, req: Request) -> dict[str, Any]:
        admin = req.uid == 0 and not req.body.get("user")

        def hold(job: Job) -> None:
            if job.state != "PENDING":
                _not_pending(job)
                return
            job.hold = "admin" if admin else "user"
            job.reason = "JobHeldAdmin" if admin else "JobHeldUser"
            job.priority = 0
            _not_eligible(job, time.time())

        return self._control(req, hold)

    async def op_release(self, req: Request) -> dict[str, Any]:
        def release(job: Job) -> None:
            if job.state != "PENDING":
                _not_pending(job)
                return
            if job.hold == "admin" and req.uid != 0:
                raise SlurmError("ESLURM_ACCESS_DENIED")
            job.hold = ""
            job.reason = "None"
            job.priority = max(1, BASE_PRIORITY - job.job_id)
            _not_eligible(job, time.time())  # eligible again from the next pass

        return self._control(req, release)

    async def op_top(self, req: Request) -> dict[str, Any]:
        def top(job: Job) -> None:
            if job.state != "PENDING":
                raise SlurmError("ESLURM_JOB_NOT_PENDING")
            mine = [j.priority for j in self.jobs.values() if j.uid == job.uid and j.state == "PENDING"
                    and j.partition == job.partition]
            job.priority = max(mine) + 1

        return self._control(req, top)

    async def op_notify(self, req: Request) -> dict[str, Any]:
        """``scontrol notify``: a message into a running batch job's stderr, as slurmstepd writes it."""
        job = self.jobs.get(int(req.body["job_id"]))
        if job is None:
            raise SlurmError("ESLURM_INVALID_JOB_ID")
        if self._own(req, job):
            raise SlurmError("ESLURM_USER_ID_MISSING")
        if job.state in FINISHED:
            raise SlurmError("ESLURM_ALREADY_DONE")
        if job.state != "RUNNING" or not job.batch:  # an allocation's message would go to its srun/salloc
            raise SlurmError("ESLURM_DISABLED")
        node = self.nodes.get(job.batch_host)
        reply = None if node is None else await self._node_call(
            node, "notify", {"job_id": job.job_id, "message": str(req.body.get("message") or "")})
        if not reply or not reply.get("found"):
            raise SlurmError("ESLURM_ALREADY_DONE")
        return {}

    async def op_requeue(self, req: Request) -> dict[str, Any]:
        hold = bool(req.body.get("hold"))
        to_kill: list[Job] = []

        def requeue(job: Job) -> None:
            if not job.batch:
                raise SlurmError("ESLURM_BATCH_ONLY")
            if job.state == "PENDING":  # requeuehold too: a pending job is held with scontrol hold
                raise SlurmError("ESLURM_JOB_PENDING")
            if not job.requeue:
                raise SlurmError("ESLURM_DISABLED")
            if job.state in FINISHED:
                self._requeue(job, time.time())
                if hold:
                    job.hold = "user"
                    job.reason = "JobHeldUser"
                return
            to_kill.append(job)
            if hold:
                job.hold = "admin" if req.uid == 0 else "user"

        result = self._control(req, requeue)
        for job in to_kill:
            job.state = "COMPLETING"
            self._save(job)
            for n in job.cpus_per_node:
                node = self.nodes.get(n)
                if node is not None:
                    await self._node_call(node, "kill", {"job_id": job.job_id, "reason": "REQUEUED", "by": req.uid})
        return result

    async def op_update_job(self, req: Request) -> dict[str, Any]:
        changes = req.body.get("set") or {}

        def update(job: Job) -> None:
            try:
                for key, value in changes.items():
                    self._apply_update(job, str(key), str(value), req.uid)
            finally:  # what was applied before a refused key stays applied: the plugins must see it
                for plugin in self.plugins:
                    plugin.on_update(job)
                compact(job)  # a changed option gave the job a copy of its own: share again

        return self._control(req, update)

    def _apply_update(self, job: Job, key: str, value: str, uid: int) -> None:
        k = key.lower()
        if k == "timelimit":
            try:
                if value.startswith("+") or value.startswith("-"):
                    delta = parse_limit(value[1:])
                    new = job.time_limit + (delta if value[0] == "+" else -delta)
                else:
                    new = parse_limit(value)
            except TimeFormatError:
                raise SlurmError("ESLURM_INVALID_TIME_LIMIT") from None
            if uid != 0 and job.state != "PENDING" and (new == INFINITE or
                                                        (job.time_limit != INFINITE and new > job.time_limit)):
                raise SlurmError("ESLURM_ACCESS_DENIED")
            job.time_limit = new
        elif k in ("name", "jobname"):
            job.name = value
        elif k == "comment":
            job.comment = value
        elif k == "dependency":
            old = job.dependency
            job.dependency = "" if value == "0" else value  # "" or 0 clears it
            try:
                if job.dependency:
                    self._validate_dependency(job)
            except SlurmError:
                job.dependency = old
                raise
        elif k in ("starttime", "begintime"):
            if job.state != "PENDING":
                raise SlurmError("ESLURM_JOB_NOT_PENDING")
            try:
                begin = parse_date(value)
            except TimeFormatError:
                raise SlurmError("EINVAL") from None
            if not begin:
                raise SlurmError("EINVAL")
            job.begin_time = begin
            job.eligible_time = max(job.begin_time, time.time())  # slurmctld: never before now
        elif k == "partition":
            if job.state != "PENDING":
                raise SlurmError("ESLURM_JOB_NOT_PENDING")
            if value not in self.partitions:
                raise SlurmError("ESLURM_INVALID_PARTITION_NAME")
            job.partition = value
        elif k in ("numnodes", "minnodes"):
            if job.state != "PENDING":
                raise SlurmError("ESLURM_JOB_NOT_PENDING")
            job.num_nodes = int(value.split("-")[0])
        elif k == "priority":
            if uid != 0:
                raise SlurmError("ESLURM_ACCESS_DENIED")
            job.priority = int(value)
        elif k == "nice":
            job.priority = max(0, job.priority - int(value))
        elif k == "requeue":
            job.requeue = value not in ("0", "no", "false")
        elif k == "account":  # what a job is charged to: pending only, and one of the user's projects
            if job.state != "PENDING":
                raise SlurmError("ESLURM_JOB_NOT_PENDING")
            allowed = self._default_account(job.user, job.group)[1]
            if allowed is not None and value not in allowed:
                raise SlurmError("ESLURM_INVALID_ACCOUNT")
            job.account = value
        elif k == "qos":
            if job.state != "PENDING":
                raise SlurmError("ESLURM_JOB_NOT_PENDING")
            if value not in QOS_NAMES:
                raise SlurmError("ESLURM_INVALID_QOS")
            job.qos = value
        elif k == "arraytaskthrottle":  # the array's %N, on every record of it; read like atoi()
            if not job.array_job_id:
                return  # slurmctld ignores it on a plain job
            digits = value.strip().lstrip("+")
            digits = digits[:next((i for i, c in enumerate(digits) if not c.isdigit()), len(digits))]
            throttle = int(digits) if digits else 0
            for other in self.jobs.values():
                if other.array_job_id == job.array_job_id and other is not job:
                    other.array_max_tasks = max(0, throttle)
                    self._save(other)
            job.array_max_tasks = max(0, throttle)
            self.schedule_soon()
        else:
            raise SlurmError("EINVAL", f"Update of {key} is not supported")


def _not_eligible(job: Job, now: float) -> None:
    """A pending job held, or waiting for a dependency or an array slot, has no EligibleTime (slurmctld
    clears details->begin_time), unless a --begin time still lies ahead."""
    if job.eligible_time <= now:
        job.eligible_time = 0.0


def _not_pending(job: Job) -> None:
    """hold/release of a job that is not pending: a no-op while it runs, refused once it is over (as slurmctld)."""
    if job.state in FINISHED:
        raise SlurmError("ESLURM_JOB_FINISHED")


_malloc_trim: Any = None


def _trim_heap() -> None:
    """Give freed heap pages back to the OS: glibc keeps them after a burst of launches or a big
    squeue reply, and the controller's RSS would stay at its high-water mark (0.1 ms a call)."""
    global _malloc_trim
    if _malloc_trim is None:
        import ctypes

        _malloc_trim = getattr(ctypes.CDLL(None), "malloc_trim", False)  # glibc only
    if _malloc_trim:
        _malloc_trim(0)


def _alloc_of(job: Job) -> Any:
    from orchestrator.scheduler.resources import Allocation

    return Allocation(dict(job.cpus_per_node), dict(job.mem_per_alloc_node),
                      {k: list(v) for k, v in job.gpus_per_node.items()}, {})


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _gres_used(node: NodeState) -> str:
    parts = []
    for g in node.spec.gres:
        used = len(set().union(*node.gpus_used.values())) if node.gpus_used else 0
        label = f"{g.name}:{g.type}" if g.type else g.name
        parts.append(f"{label}:{min(used, g.count)}")
    return ",".join(parts)


def _ts(epoch: float) -> str:
    from orchestrator.slurm.timefmt import format_timestamp

    return format_timestamp(epoch)


def job_state_ok(value: str) -> bool:
    return value in JobState.__members__
