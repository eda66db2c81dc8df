"""The node daemon (slurmd): registers the node, heartbeats, and runs jobs as their users.

It runs as root in a compute container (as the current user in local mode). A
batch job is started through ``/bin/sh`` running as the user, which opens the
output files with the user's own rights before it execs the stored script; the
daemon never writes into a user's files as root. Time limits, early signals and
memory limits are enforced from one /proc scan per tick. A job's end is kept in
the spool until the controller acknowledges it, so a controller restart loses
nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import platform
import pwd
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator import SLURM_VERSION
from orchestrator.cluster.config import ClusterSpec, NodeSpec
from orchestrator.scheduler import procs
from orchestrator.scheduler.errors import SlurmError
from orchestrator.scheduler.protocol import RpcError
from orchestrator.scheduler.server import Request, RpcServer, call_async
from orchestrator.slurm.timefmt import format_timestamp

log = logging.getLogger(__name__)

__all__ = ["NodeDaemon"]

HEARTBEAT = 2.0
TICK = 0.5
SWEEP_DELAY = 0.2  # seconds from a job's end to the kill of its session's strays in other process groups

# Runs as the user: open the output files with the user's rights, go to the work
# directory (or /tmp, as slurmstepd does), then exec the stored script.
_WRAPPER = r"""
out=$1 err=$2 in=$3 mode=$4 dir=$5; shift 5
# (truncate first, then always O_APPEND: the job's srun and slurmstepd notes share the file)
if [ "$mode" != append ]; then : >"$out" || exit 1; fi
exec >>"$out" || exit 1
# stderr is the node daemon's pipe until it is replaced here: then the files are open, and the
# daemon's notes may go in without being truncated away
if [ "$err" = "$out" ]; then exec 2>&1
else if [ "$mode" != append ]; then : >"$err" || exit 1; fi; exec 2>>"$err" || exit 1; fi
exec <"$in" || exit 1
if ! cd "$dir" 2>/dev/null; then
  # (twice, as slurmstepd 22.05 reports it: once for itself, once for the batch task)
  msg="slurmstepd-$SLURMD_NODENAME: error: couldn't chdir to \`$dir': No such file or directory: going to /tmp instead"
  printf '%s\n%s\n' "$msg" "$msg" >&2
  cd /tmp || exit 1
fi
SLURM_TASK_PID=$$; export SLURM_TASK_PID  # the script's pid once exec'd, as slurmstepd sets it
exec "$@"
"""

_NOTE = r"""printf '%s\n' "$2" >>"$1" """


@dataclass
class RunningJob:
    job_id: int
    restart_count: int
    uid: int
    gid: int
    user: str
    pid: int
    start: float
    deadline: float  # 0 = no limit
    std_out: str
    std_err: str
    tmpdir: str
    scratch: str
    mem_limit_kb: int
    kill_wait: float
    early_signal: int = 0
    early_secs: int = 0
    early_batch: bool = False
    early_sent: bool = False
    end_reason: str = ""  # why we are ending it: TIMEOUT, CANCELLED, OUT_OF_MEMORY, REQUEUED, NODE_FAIL
    cancelled_by: int | None = None
    kill_at: float = 0.0  # when to SIGKILL what is left
    max_rss_kb: int = 0
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    step_sids: set[int] = field(default_factory=set)
    limit_start: float = 0.0  # the job's start time, from which its time limit counts
    outputs_open: bool = True  # False until the wrapper has opened (and truncated) the output files
    held_notes: list[str] = field(default_factory=list)  # notes that wait for that


class NodeDaemon:
    def __init__(self, cluster: ClusterSpec, node: NodeSpec, spool: Path, controller: tuple[str, int],
                 listen: tuple[str, int], advertise: str, tmp_base: str = "/tmp", scratch_base: str = "",
                 kill_wait: float = 30.0, extra_env: dict[str, str] | None = None) -> None:
        self.cluster = cluster
        self.node = node
        self.spool = spool
        self.controller = controller
        self.listen = listen
        self.advertise = advertise
        self.tmp_base = tmp_base
        self.scratch_base = scratch_base
        self.kill_wait = kill_wait
        self.extra_env = extra_env or {}
        self.jobs: dict[int, RunningJob] = {}
        self.root = os.getuid() == 0
        self.daemon_uid = os.getuid()
        self.start_time = time.time()
        self.boot_time = _boot_time()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.registered = asyncio.Event()
        self.server = RpcServer(f"noded {node.name}", {
            "launch": self.op_launch,
            "kill": self.op_kill,
            "signal": self.op_signal,
            "notify": self.op_notify,
            "ping": self.op_ping,
        }, cluster=cluster.name)
        self.extra_handlers = self.server.handlers
        self.results_dir = spool / "results"
        self._wake_sender = asyncio.Event()
        self._to_sweep: set[int] = set()
        self._sweep_armed = False
        from orchestrator.scheduler.steps import NodeSteps

        self.steps = NodeSteps(self)  # srun's job steps (issue 4): step_launch, job_prepare, step_signal

    # ------------------------------------------------------------------ lifecycle
    async def run(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.spool.mkdir(parents=True, exist_ok=True)
        os.chmod(self.spool, 0o755)
        self.results_dir.mkdir(exist_ok=True)
        os.chmod(self.results_dir, 0o700)
        self._recover()
        await self.server.start(*self.listen)
        await asyncio.gather(self._heartbeat_loop(), self._monitor_loop(), self._result_sender())

    def _recover(self) -> None:
        """Re-adopt jobs whose processes outlived a daemon restart (their exit status is unknowable)."""
        for path in self.spool.glob("job*/state.json"):
            try:
                data = json.loads(path.read_text())
                rj = RunningJob(**{k: v for k, v in data.items() if k in RunningJob.__dataclass_fields__
                                   and k not in ("popen", "step_sids")})
            except (OSError, ValueError, TypeError):
                continue
            if _alive(rj.pid):
                self.jobs[rj.job_id] = rj
                threading.Thread(target=self._poll_orphan, args=(rj,), daemon=True).start()
            else:
                if not (self.results_dir / f"{rj.job_id}.json").exists():
                    self._store_result(rj, status=None, usage=None)
                self._remove_job_dirs(rj)  # its end went unseen: its TMPDIR and SCRATCH go now

    def _poll_orphan(self, rj: RunningJob) -> None:
        while _alive(rj.pid):
            time.sleep(1.0)
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self._job_exited, rj.job_id, None, None)

    # ------------------------------------------------------------------ controller link
    def _running_list(self) -> list[dict[str, int]]:
        return [{"job_id": j.job_id, "restart_count": j.restart_count} for j in self.jobs.values()]

    async def _heartbeat_loop(self) -> None:
        first = True
        while True:
            op = "node_register" if first else "node_heartbeat"
            body: dict[str, Any] = {"node": self.node.name, "running": self._running_list(),
                                    "results": [int(p.stem) for p in self.results_dir.glob("*.json")],
                                    "cpu_load": _loadavg(), "free_mem": _free_mem_mb()}
            if first:
                body.update({"host": self.advertise, "port": self.listen[1], "boot_time": self.boot_time,
                             "slurmd_start_time": self.start_time, "version": SLURM_VERSION,
                             "os": f"{platform.system()} {platform.release()}",
                             "cpus": self.node.cpus, "memory": self.node.memory_mb})
            try:
                reply = await call_async(*self.controller, op, body, timeout=10)
                if first:
                    log.info("registered with controller %s:%d", *self.controller)
                    self.registered.set()
                    self._wake_sender.set()
                first = bool(reply.get("reregister"))
                for job_id in reply.get("kill", []):
                    rj = self.jobs.get(int(job_id))
                    if rj is not None:
                        log.info("controller does not know job %s as running here: killing it", job_id)
                        self._begin_kill(rj, "CANCELLED", None, note=False)
                self._apply_limits(reply.get("limits") or {})
            except (TimeoutError, OSError, RpcError) as exc:
                if not first:
                    log.warning("heartbeat to controller failed: %s", exc)
                first = True
            await asyncio.sleep(HEARTBEAT)

    async def _result_sender(self) -> None:
        """Deliver job results until the controller acknowledges each one."""
        while True:
            self._wake_sender.clear()
            for path in sorted(self.results_dir.glob("*.json")):
                try:
                    body = json.loads(path.read_text())
                except (OSError, ValueError):
                    path.unlink(missing_ok=True)
                    continue
                try:
                    await call_async(*self.controller, "job_ended", body, timeout=10)
                except (TimeoutError, OSError) as exc:
                    log.debug("job_ended for %s not delivered yet: %s", path.stem, exc)
                    break
                except RpcError as exc:
                    log.warning("controller refused job_ended for %s: %s", path.stem, exc)
                path.unlink(missing_ok=True)
            try:
                await asyncio.wait_for(self._wake_sender.wait(), timeout=HEARTBEAT)
            except TimeoutError:
                pass

    def _check_controller(self, req: Request) -> None:
        if req.uid not in (0, self.daemon_uid):
            raise SlurmError("ESLURM_ACCESS_DENIED")

    # ------------------------------------------------------------------ ops
    async def op_ping(self, req: Request) -> dict[str, Any]:
        return {"node": self.node.name, "jobs": sorted(self.jobs)}

    async def op_launch(self, req: Request) -> dict[str, Any]:
        self._check_controller(req)
        body = req.body
        job = body["job"]
        job_id = int(job["job_id"])
        if job_id in self.jobs:
            return {"already": True}
        uid = int(job["uid"])
        if not self.root and uid != self.daemon_uid:
            raise SlurmError("ESLURM_USER_ID_MISSING", f"Invalid user id: this node daemon runs as uid "
                                                       f"{self.daemon_uid} and cannot start jobs for uid {uid}")
        rj = self._start_batch(job, body["script"], body["env"], body.get("argv", []), body.get("std_out", ""),
                               body.get("std_err", ""))
        return {"pid": rj.pid}

    def _start_batch(self, job: dict[str, Any], script: str, env: dict[str, str], argv: list[str],
                     std_out: str, std_err: str) -> RunningJob:
        job_id = int(job["job_id"])
        uid, gid = int(job["uid"]), int(job["gid"])
        jobdir = self.spool / f"job{job_id:05d}"
        if jobdir.exists():
            shutil.rmtree(jobdir, ignore_errors=True)
        jobdir.mkdir(mode=0o700)
        script_path = jobdir / "slurm_script"
        script_path.write_text(script)
        os.chmod(script_path, 0o500)
        if self.root:
            os.chown(jobdir, uid, gid)
            os.chown(script_path, uid, gid)
        tmpdir = self._make_private_dir(Path(self.tmp_base), f"slurm-{job_id}", uid, gid)
        scratch = ""
        if self.scratch_base:
            scratch = self._make_private_dir(Path(self.scratch_base), f"{job['user']}/{job_id}", uid, gid)
        env = dict(env)
        env.update(self.extra_env)
        env["TMPDIR"] = tmpdir
        if scratch:
            env["SCRATCH"] = scratch
        work_dir = job.get("work_dir") or "/tmp"
        std_in = job.get("std_in") or "/dev/null"
        mode = "append" if job.get("open_mode") == "append" or (int(job.get("restart_count", 0)) > 0 \
            and job.get("open_mode") == "append") else "truncate"
        groups = _groups(job["user"], gid) if self.root else None
        ready_r, ready_w = os.pipe()  # the wrapper's stderr, until it opens the job's own (see _WRAPPER)
        argv_full = ["/bin/sh", "-c", _WRAPPER, "slurm_script", std_out, std_err, std_in, mode, work_dir,
                     str(script_path), *argv]
        kwargs: dict[str, Any] = {}
        if self.root:
            kwargs.update(user=uid, group=gid, extra_groups=groups)
        try:
            popen = subprocess.Popen(argv_full, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=ready_w, cwd="/", start_new_session=True, close_fds=True, **kwargs)
        except BaseException:
            os.close(ready_r)
            raise
        finally:
            os.close(ready_w)
        now = time.time()
        limit_start, deadline = job_deadline(job, now)
        mem_mb = int(job.get("mem_per_alloc_node", {}).get(self.node.name, 0))
        sig, secs, batch_only = _parse_signal(job.get("signal", ""))
        rj = RunningJob(job_id=job_id, restart_count=int(job.get("restart_count", 0)), uid=uid, gid=gid,
                        user=job["user"], pid=popen.pid, start=now, deadline=deadline, std_out=std_out,
                        std_err=std_err, tmpdir=tmpdir, scratch=scratch, mem_limit_kb=mem_mb * 1024,
                        kill_wait=self.kill_wait, early_signal=sig, early_secs=secs, early_batch=batch_only,
                        popen=popen, limit_start=limit_start, outputs_open=False)
        asyncio.get_running_loop().add_reader(ready_r, self._outputs_opened, rj, ready_r)
        self.jobs[job_id] = rj
        self._save_state(rj)
        threading.Thread(target=self._wait_child, args=(rj,), daemon=True, name=f"wait-{job_id}").start()
        log.info("job %d started as uid %d, pid %d", job_id, uid, popen.pid)
        return rj

    def _make_private_dir(self, base: Path, rel: str, uid: int, gid: int) -> str:
        path = base / rel
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=0o700)
        if self.root:
            os.chown(path, uid, gid)
            if path.parent != base:
                os.chown(path.parent, uid, gid)
                os.chmod(path.parent, 0o700)
        return str(path)

    def _save_state(self, rj: RunningJob) -> None:
        # (a job found again after a restart has long had its output files open: those two stay at their defaults)
        data = {k: getattr(rj, k) for k in RunningJob.__dataclass_fields__
                if k not in ("popen", "step_sids", "outputs_open", "held_notes")}
        path = self.spool / f"job{rj.job_id:05d}" / "state.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)

    def _wait_child(self, rj: RunningJob) -> None:
        try:
            _, status, usage = os.wait4(rj.pid, 0)
        except ChildProcessError:
            status, usage = None, None
        if rj.popen is not None:
            rj.popen.returncode = 0  # reaped here; keep subprocess from polling it
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self._job_exited, rj.job_id, status, usage)

    def _job_exited(self, job_id: int, status: int | None, usage: Any) -> None:
        rj = self.jobs.pop(job_id, None)
        if rj is None:
            return
        self._kill_sessions([rj.pid, *rj.step_sids])
        self._store_result(rj, status, usage)
        self._remove_job_dirs(rj)
        self._wake_sender.set()

    def _remove_job_dirs(self, rj: RunningJob) -> None:
        shutil.rmtree(rj.tmpdir, ignore_errors=True)
        if rj.scratch:
            shutil.rmtree(rj.scratch, ignore_errors=True)
        shutil.rmtree(self.spool / f"job{rj.job_id:05d}", ignore_errors=True)

    def _store_result(self, rj: RunningJob, status: int | None, usage: Any) -> None:
        exit_code, sig = 0, 0
        if status is None:
            state = rj.end_reason or "NODE_FAIL"
        else:
            if os.WIFEXITED(status):
                exit_code = os.WEXITSTATUS(status)
            elif os.WIFSIGNALED(status):
                sig = os.WTERMSIG(status)
            if rj.end_reason:
                state = rj.end_reason
            elif exit_code == 0 and sig == 0:
                state = "COMPLETED"
            else:
                state = "FAILED"
        user_cpu = float(usage.ru_utime) if usage else 0.0
        sys_cpu = float(usage.ru_stime) if usage else 0.0
        rss = max(rj.max_rss_kb, int(usage.ru_maxrss) if usage else 0)
        result = {"node": self.node.name, "job_id": rj.job_id, "restart_count": rj.restart_count,
                  "state": state, "exit_code": exit_code, "signal": sig, "start": rj.start, "end": time.time(),
                  "user_cpu": user_cpu, "system_cpu": sys_cpu, "max_rss_kb": rss, "cancelled_by": rj.cancelled_by}
        path = self.results_dir / f"{rj.job_id}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(result))
        os.replace(tmp, path)
        log.info("job %d ended: %s exit %d:%d", rj.job_id, state, exit_code, sig)

    def _apply_limits(self, limits: dict[str, int]) -> None:
        """Time limits as the controller has them now (``scontrol update TimeLimit=`` on a running job)."""
        for key, minutes in limits.items():
            rj = self.jobs.get(int(key))
            if rj is None or rj.end_reason or rj.limit_start <= 0:  # (state saved by an older daemon)
                continue
            deadline = deadline_at(rj.limit_start, int(minutes))
            if deadline != rj.deadline:
                log.info("job %d: time limit now %s min", rj.job_id, minutes)
                rj.deadline = deadline

    async def op_kill(self, req: Request) -> dict[str, Any]:
        """End a job: CANCELLED (scancel), REQUEUED, NODE_FAIL or TIMEOUT, with Slurm's notice in its stderr."""
        self._check_controller(req)
        job_id = int(req.body["job_id"])
        rj = self.jobs.get(job_id)
        if rj is None:
            return {"found": False}
        self._begin_kill(rj, str(req.body.get("reason", "CANCELLED")), req.body.get("by"))
        return {"found": True}

    async def op_signal(self, req: Request) -> dict[str, Any]:
        self._check_controller(req)
        job_id = int(req.body["job_id"])
        rj = self.jobs.get(job_id)
        if rj is None:
            return {"found": False}
        sig = int(req.body["signal"])
        if req.body.get("batch_only") or req.body.get("full"):
            self._signal_session(rj.pid, sig, leader_only=bool(req.body.get("batch_only")))
        if not req.body.get("batch_only"):
            for sid in rj.step_sids:
                self._signal_session(sid, sig)
        return {"found": True}

    async def op_notify(self, req: Request) -> dict[str, Any]:
        """``scontrol notify``: slurmstepd's ``slurmstepd-NODE: error: MESSAGE`` in the job's stderr."""
        self._check_controller(req)
        rj = self.jobs.get(int(req.body["job_id"]))
        if rj is None or rj.end_reason:
            return {"found": False}
        self._note(rj, f"slurmstepd-{self.node.name}: error: {req.body.get('message') or ''}")
        return {"found": True}

    def _begin_kill(self, rj: RunningJob, reason: str, by: int | None, note: bool = True) -> None:
        if rj.end_reason:
            return
        rj.end_reason = reason
        rj.cancelled_by = by
        if note and reason in ("CANCELLED", "TIMEOUT", "NODE_FAIL"):
            stamp = format_timestamp(time.time())
            why = {"TIMEOUT": " DUE TO TIME LIMIT", "NODE_FAIL": " DUE TO NODE FAILURE"}.get(reason, "")
            node = self.node.name  # slurmstepd names its node: slurmstepd-vm: error: *** JOB 15 ON vm CANCELLED ...
            self._note(rj, f"slurmstepd-{node}: error: *** JOB {rj.job_id} ON {node} CANCELLED AT {stamp}{why} ***")
        for sid in [rj.pid, *rj.step_sids]:
            self._signal_session(sid, signal.SIGCONT)
            self._signal_session(sid, signal.SIGTERM)
        rj.kill_at = time.time() + (rj.kill_wait if reason in ("CANCELLED", "TIMEOUT") else 1.0)

    def _outputs_opened(self, rj: RunningJob, fd: int) -> None:
        """The wrapper has opened the job's output files, or exited (or, failing, written an error where its
        stderr still was): write the notes that waited."""
        asyncio.get_running_loop().remove_reader(fd)
        os.close(fd)
        rj.outputs_open = True
        held, rj.held_notes = rj.held_notes, []
        for text in held:
            self._note(rj, text)

    def _note(self, rj: RunningJob, text: str) -> None:
        """Append a line to the job's stderr as the user (never as root); before the job has opened
        its output files, the line waits, so that opening them does not truncate it away."""
        if not rj.outputs_open:
            rj.held_notes.append(text)
            return
        kwargs: dict[str, Any] = {}
        if self.root:
            # the user's own groups too: kept, root's group 0 makes exec fail in the containers
            kwargs.update(user=rj.uid, group=rj.gid, extra_groups=_groups(rj.user, rj.gid))
        try:
            subprocess.Popen(["/bin/sh", "-c", _NOTE, "note", rj.std_err, text], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/", **kwargs).wait(5)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("could not write to %s: %s", rj.std_err, exc)

    @staticmethod
    def _signal_session(sid: int, sig: int, leader_only: bool = False) -> None:
        if leader_only:
            try:
                os.kill(sid, sig)
            except OSError:
                pass
            return
        try:
            os.killpg(sid, sig)
        except OSError:
            pass
        for p in procs.scan().get(sid, []):
            if p.pgid == sid:
                continue  # the killpg above reached it; a second signal would be a second Ctrl-C/TERM
            try:
                os.kill(p.pid, sig)
            except OSError:
                pass

    def _kill_sessions(self, sids: list[int]) -> None:
        """Kill what is left of ended jobs' sessions: their process groups now, and members that moved
        to other groups at the next sweep, so that one /proc scan serves every job ending within it
        (a scan per job end cost the node ~15 ms of CPU a job when short jobs stream through)."""
        for sid in sids:
            try:
                os.killpg(sid, signal.SIGKILL)
            except OSError:
                pass
        self._to_sweep.update(sids)
        if not self._sweep_armed and self.loop is not None:
            self._sweep_armed = True
            self.loop.call_later(SWEEP_DELAY, self._sweep_sessions)

    def _sweep_sessions(self) -> None:
        self._sweep_armed = False
        live = {sid for rj in self.jobs.values() for sid in (rj.pid, *rj.step_sids)}
        sids, self._to_sweep = self._to_sweep - live, set()  # a live job's session is never swept
        procs.kill_sessions(sids)

    # ------------------------------------------------------------------ enforcement
    async def _monitor_loop(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            if not self.jobs:
                continue
            table = procs.scan()
            now = time.time()
            for rj in list(self.jobs.values()):
                members = table.get(rj.pid, [])
                for sid in rj.step_sids:
                    members = members + table.get(sid, [])
                rss = sum(p.rss_kb for p in members)
                rj.max_rss_kb = max(rj.max_rss_kb, rss)
                if rj.kill_at and now >= rj.kill_at:
                    for sid in [rj.pid, *rj.step_sids]:
                        self._signal_session(sid, signal.SIGKILL)
                    rj.kill_at = now + 5
                    continue
                if rj.end_reason:
                    continue
                if rj.mem_limit_kb and rss > rj.mem_limit_kb:
                    log.info("job %d exceeded its memory (%d kB > %d kB)", rj.job_id, rss, rj.mem_limit_kb)
                    self._note(rj, f"slurmstepd: error: Detected 1 oom_kill event in StepId={rj.job_id}.batch. "
                                   "Some of the step tasks have been OOM Killed.")
                    rj.end_reason = "OUT_OF_MEMORY"
                    for sid in [rj.pid, *rj.step_sids]:
                        self._signal_session(sid, signal.SIGKILL)
                    continue
                if rj.deadline and rj.early_signal and not rj.early_sent and now >= rj.deadline - rj.early_secs:
                    rj.early_sent = True
                    if rj.early_batch:
                        self._signal_session(rj.pid, rj.early_signal, leader_only=True)
                    for sid in rj.step_sids:
                        self._signal_session(sid, rj.early_signal)
                if rj.deadline and now >= rj.deadline:
                    self._begin_kill(rj, "TIMEOUT", None)


# ---------------------------------------------------------------------- helpers


def job_deadline(job: dict[str, Any], now: float) -> tuple[float, float]:
    """(when the time limit starts counting, when it is reached; 0 for no limit)."""
    start = float(job.get("start_time") or now)
    return start, deadline_at(start, int(job.get("time_limit", -1)))


def deadline_at(start: float, minutes: int) -> float:
    """When a limit of ``minutes`` (negative: none, 0.0 comes back) counted from ``start`` is reached."""
    return start + minutes * 60 if minutes >= 0 else 0.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _groups(user: str, gid: int) -> list[int]:
    import grp

    try:
        pw = pwd.getpwnam(user)
        return sorted(set(os.getgrouplist(user, pw.pw_gid)) | {gid})
    except KeyError:
        return [gid]
    finally:
        del grp


_SIGNALS = {s.name[3:]: int(s) for s in signal.Signals if s.name.startswith("SIG") and not s.name.startswith("SIG_")}


def _parse_signal(spec: str) -> tuple[int, int, bool]:
    """``[B:]SIG[@secs]`` -> (signal number, seconds before the limit, batch shell only)."""
    if not spec:
        return 0, 0, False
    batch = False
    s = spec
    if s.upper().startswith("B:"):
        batch, s = True, s[2:]
    name, _, secs = s.partition("@")
    name = name.upper().removeprefix("SIG")
    num = int(name) if name.isdigit() else _SIGNALS.get(name, 0)
    return num, int(secs) if secs else 60, batch


def _boot_time() -> float:
    """When this node booted: the kernel's boot time plus the start of PID 1, which in a container
    is when the container started (a restarted compute container is a rebooted node: its jobs are
    gone) and on a host is the boot itself."""
    try:
        with open("/proc/stat") as f:
            btime = next(float(line.split()[1]) for line in f if line.startswith("btime"))
    except (OSError, StopIteration, ValueError):
        return time.time()
    try:
        with open("/proc/1/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime
        return btime + start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return btime


def _loadavg() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0


def _free_mem_mb() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0
