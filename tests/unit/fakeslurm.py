"""A fake scheduler for the user commands' unit tests: canned replies per operation, no daemons.

``FakeSlurm`` replaces ``orchestrator.commands._common.make_client`` and
``client_config``; ``run(name, *args)`` runs a command in-process and returns
(exit status, stdout, stderr) so tests compare output with real Slurm's.
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from orchestrator.scheduler.job import RECORD_FIELDS, Job, Step
from orchestrator.scheduler.protocol import RpcError, pack_columns


class FakeConfig:
    def __init__(self, clusters: list[str]) -> None:
        self.cluster = clusters[0]
        self.clusters = {c: {"host": f"{c}-controller", "port": 6817} for c in clusters}

    def address(self, cluster: str | None = None) -> tuple[str, int]:
        return (f"{cluster or self.cluster}-controller", 6817)


class FakeClient:
    def __init__(self, slurm: FakeSlurm, cluster: str | None) -> None:
        self.slurm = slurm
        self.cluster = cluster or slurm.config.cluster

    def call(self, op: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        body = body or {}
        self.slurm.calls.append((self.cluster, op, body))
        handler = self.slurm.handlers.get((self.cluster, op)) or self.slurm.handlers.get((None, op))
        if handler is None:
            raise AssertionError(f"unexpected call {op} {body}")
        if isinstance(handler, Exception):
            raise handler
        if callable(handler):
            return handler(body)
        return handler


class FakeSlurm:
    """Canned controller replies; ``jobs`` records are served by the ``jobs``/``acct`` ops."""

    def __init__(self, clusters: list[str] | None = None) -> None:
        self.config = FakeConfig(clusters or ["arc"])
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.handlers: dict[tuple[str | None, str], Any] = {}
        self.jobs: list[dict[str, Any]] = []
        self.now = time.time()

    def on(self, op: str, reply: Any, cluster: str | None = None) -> None:
        self.handlers[(cluster, op)] = reply

    def ops(self, op: str) -> list[dict[str, Any]]:
        return [body for _c, o, body in self.calls if o == op]

    def serve_jobs(self, cluster: str | None = None) -> None:
        """Answer ``jobs`` from ``self.jobs`` the way the controller does (fields, ids, single-id error)."""

        def jobs(body: dict[str, Any]) -> dict[str, Any]:
            fields = list(body.get("fields") or RECORD_FIELDS)
            sel = list(self.jobs)
            ids = body.get("job_ids") or []
            if ids:  # N: the job or its array's tasks; N_T: that task (Controller._select)
                want = {int(str(i)) for i in ids if "_" not in str(i)}
                tasks = {tuple(int(x) for x in str(i).split("_")) for i in ids if "_" in str(i)}
                sel = [j for j in sel if j["job_id"] in want or (j.get("array_job_id") or 0) in want
                       or ((j.get("array_job_id") or 0), j.get("array_task_id")) in tasks]
                if len(ids) == 1 and not sel:
                    raise RpcError("ESLURM_INVALID_JOB_ID", "Invalid job id specified")
            users = body.get("users")
            if users:
                sel = [j for j in sel if str(j["uid"]) in users or j["user"] in users]
            partitions = body.get("partitions")
            if partitions:
                sel = [j for j in sel if j["partition"] in partitions]
            states = body.get("states")
            if states:
                sel = [j for j in sel if j["state"] in states]
            if body.get("columnar") and "steps" not in fields:
                columns = pack_columns([[j.get(f) for j in sel] for f in fields])
                return {"fields": fields, "columns": columns, "count": len(sel), "now": self.now}
            return {"fields": fields, "rows": [[j.get(f) for f in fields] for j in sel], "now": self.now}

        def acct(body: dict[str, Any]) -> dict[str, Any]:
            return {"jobs": [dict(j) for j in self.jobs], "now": self.now}

        self.on("jobs", jobs, cluster)
        self.on("acct", acct, cluster)


def job(job_id: int, **kw: Any) -> dict[str, Any]:
    """A job record (Job.record()) with sensible defaults and ``kw`` overrides."""
    steps = kw.pop("steps", [])
    derived = kw.pop("derived_exit_code", None)  # the Job reads it from its steps
    j = Job(job_id=job_id, cluster=kw.pop("cluster", "arc"), name=kw.pop("name", "wrap"), uid=kw.pop("uid", 1001),
            gid=kw.pop("gid", 1001), user=kw.pop("user", "alice"), group=kw.pop("group", "alice"),
            account=kw.pop("account", "research"), partition=kw.pop("partition", "short"))
    j.submit_time = kw.pop("submit_time", time.time() - 100)
    j.eligible_time = j.accrue_time = kw.pop("eligible_time", j.submit_time)  # as the controller gives a plain job
    j.time_limit = kw.pop("time_limit", 60)
    j.work_dir = kw.pop("work_dir", "/home/alice")
    j.priority = kw.pop("priority", 4294901757 - job_id)
    for k, v in kw.items():
        setattr(j, k, v)
    rec = j.record()
    rec["steps"] = [Step(job_id=job_id, **s).record() for s in steps]
    if derived is not None:
        rec["derived_exit_code"] = derived
    return rec


USERS = {"alice": 1001, "bob": 1002}


@pytest.fixture(name="slurm")
def slurm_fixture(monkeypatch: pytest.MonkeyPatch) -> FakeSlurm:
    from orchestrator.commands import _common

    fake = FakeSlurm()
    monkeypatch.setattr(_common, "make_client", lambda cluster=None: FakeClient(fake, cluster))
    monkeypatch.setattr(_common, "client_config", lambda: fake.config)
    # the fake queue's users, whether or not this host has accounts of those names
    monkeypatch.setattr(_common, "_name_cache", {**_common._name_cache, **USERS})
    monkeypatch.setattr(_common, "_uid_cache", {**_common._uid_cache, **{u: n for n, u in USERS.items()}})
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    for var in ("SQUEUE_FORMAT", "SQUEUE_FORMAT2", "SQUEUE_SORT", "SINFO_FORMAT", "SACCT_FORMAT",
                "SBATCH_PARTITION", "SBATCH_TIMELIMIT", "SLURM_TIME_FORMAT", "POSIXLY_CORRECT"):
        monkeypatch.delenv(var, raising=False)
    return fake


def run(name: str, *args: str, stdin: str = "") -> tuple[int, str, str]:
    """Run a command in-process as if typed as ``name args...``."""
    from orchestrator.commands import main

    old = sys.stdin, sys.stdout, sys.stderr
    out, err = io.StringIO(), io.StringIO()
    sys.stdin = _Stdin(stdin)
    sys.stdout, sys.stderr = out, err
    try:
        rc = main([name, *args])
    finally:
        sys.stdin, sys.stdout, sys.stderr = old
    return rc, out.getvalue(), err.getvalue()


class _Stdin(io.StringIO):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.buffer = io.BytesIO(text.encode())

    def isatty(self) -> bool:
        return False


Handler = Callable[[dict[str, Any]], dict[str, Any]]
