"""The controller's durable state: SQLite in WAL mode.

Every change to a job is written before the controller answers, so a job id is
committed before sbatch prints it and a restarted controller resumes where it
stopped. Scripts and environments sit in their own table: they are read once,
at launch, and never held in memory. The same tables serve sacct.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import sys
from collections.abc import Iterable, Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

from orchestrator.scheduler.job import NO_ALLOCATION, OWN_FIELDS, Job, Step, job_from_values, share_parts
from orchestrator.slurm.states import FINISHED_NAMES as _FINISHED

log = logging.getLogger(__name__)

__all__ = ["NO_ALLOCATION", "Store", "compact", "job_from_record"]

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    job_id INTEGER PRIMARY KEY,
    uid INTEGER NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    account TEXT NOT NULL,
    partition TEXT NOT NULL,
    submit_time REAL NOT NULL,
    start_time REAL NOT NULL,
    end_time REAL NOT NULL,
    active INTEGER NOT NULL,
    data TEXT NOT NULL,
    array_job_id INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_active ON jobs(active) WHERE active = 1;
CREATE INDEX IF NOT EXISTS jobs_end ON jobs(end_time);
CREATE TABLE IF NOT EXISTS job_inputs (
    job_id INTEGER PRIMARY KEY,
    script TEXT NOT NULL,
    env TEXT NOT NULL,
    argv TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS job_runs (
    job_id INTEGER NOT NULL,
    restart_count INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (job_id, restart_count)
);
CREATE TABLE IF NOT EXISTS nodes (name TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ledger (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    time REAL NOT NULL,
    kind TEXT NOT NULL,
    amount INTEGER NOT NULL,
    job_id INTEGER,
    note TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS ledger_account ON ledger(account);
"""

_STEP_FIELDS = {f.name for f in fields(Step)}
_JOB_FIELDS = {f.name for f in fields(Job)}
_OWN_STR_FIELDS = tuple(f.name for f in fields(Job) if f.type == "str" and f.name in OWN_FIELDS)
_ALLOC_FIELDS = ("cpus_per_node", "mem_per_alloc_node", "gpus_per_node")


def compact(job: Job) -> Job:
    """Share what many jobs hold alike, so ten thousand pending jobs stay small (~900 bytes a job less).

    Jobs alike hold one copy of their options and of what has not run (``share_parts``), strings
    become their interned copies, and empty allocation maps the one read-only NO_ALLOCATION.
    """
    intern = sys.intern
    for name in _OWN_STR_FIELDS:
        setattr(job, name, intern(getattr(job, name)))
    for name in _ALLOC_FIELDS:
        if not getattr(job, name):
            setattr(job, name, NO_ALLOCATION)
    return share_parts(job)


def job_from_record(data: dict[str, Any]) -> Job:
    """Rebuild a Job from its stored record (unknown keys from newer versions are ignored)."""
    steps = [Step(**{k: v for k, v in s.items() if k in _STEP_FIELDS}) for s in data.get("steps", [])]
    values = {k: v for k, v in data.items() if k in _JOB_FIELDS}
    values["steps"] = steps
    return job_from_values(values)


class Store:
    """One SQLite database per cluster controller."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=5000")
        # a 512 KiB page cache instead of 2 MiB: the controller's memory stays small, and the rows
        # it reads again (sacct, recovery) come from the OS's cache of the file at memory speed
        self.db.execute("PRAGMA cache_size=-512")
        self.db.executescript(_SCHEMA)
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(jobs)")}
        if "array_job_id" not in columns:  # state written before arrays had their own column
            self.db.execute("ALTER TABLE jobs ADD COLUMN array_job_id INTEGER NOT NULL DEFAULT 0")
        self.db.execute("CREATE INDEX IF NOT EXISTS jobs_array ON jobs(array_job_id) WHERE array_job_id > 0")
        with self.tx():
            self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            self.db.execute("INSERT OR IGNORE INTO meta VALUES ('next_job_id', '1')")
        os.chmod(self.path, 0o600)

    # ------------------------------------------------------------ transactions
    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> sqlite3.Connection:
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, exc_type: object, *_: object) -> None:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")

    def tx(self) -> Store._Tx:
        return Store._Tx(self.db)

    # ------------------------------------------------------------ ids
    def allocate_job_ids(self, count: int = 1) -> int:
        """Reserve ``count`` consecutive job ids; returns the first."""
        with self.tx() as db:
            (value,) = db.execute("SELECT value FROM meta WHERE key = 'next_job_id'").fetchone()
            first = int(value)
            db.execute("UPDATE meta SET value = ? WHERE key = 'next_job_id'", (str(first + count),))
        return first

    def peek_next_job_id(self) -> int:
        (value,) = self.db.execute("SELECT value FROM meta WHERE key = 'next_job_id'").fetchone()
        return int(value)

    # ------------------------------------------------------------ jobs
    @staticmethod
    def _row(job: Job) -> tuple[Any, ...]:
        return (job.job_id, job.uid, job.name, job.state, job.account, job.partition, job.submit_time,
                job.start_time, job.end_time, 0 if job.state in _FINISHED else 1,
                json.dumps(job.record(), separators=(",", ":")), job.array_job_id)

    def insert_job(self, job: Job, script: str, env: dict[str, str], argv: list[str],
                   next_id: int | None = None) -> None:
        """Store a new job with its inputs in one transaction."""
        with self.tx() as db:
            db.execute("INSERT INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", self._row(job))
            db.execute("INSERT INTO job_inputs VALUES (?,?,?,?)",
                       (job.job_id, script, json.dumps(env, separators=(",", ":")), json.dumps(argv)))
            if next_id is not None:
                db.execute("UPDATE meta SET value = ? WHERE key = 'next_job_id' AND CAST(value AS INTEGER) < ?",
                           (str(next_id), next_id))

    def save_jobs(self, jobs: Iterable[Job]) -> None:
        rows = [self._row(j) for j in jobs]
        if not rows:
            return
        with self.tx() as db:
            db.executemany("INSERT OR REPLACE INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)

    def save_job(self, job: Job) -> None:
        self.save_jobs([job])

    def copy_inputs(self, src_job_id: int, dst_job_id: int) -> None:
        """Share a job's inputs with another (array tasks reuse the meta job's script)."""
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO job_inputs SELECT ?, script, env, argv FROM job_inputs "
                       "WHERE job_id = ?", (dst_job_id, src_job_id))

    def inputs(self, job_id: int) -> tuple[str, dict[str, str], list[str]] | None:
        row = self.db.execute("SELECT script, env, argv FROM job_inputs WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        return row[0], json.loads(row[1]), json.loads(row[2])

    def active_jobs(self) -> Iterator[Job]:
        for (data,) in self.db.execute("SELECT data FROM jobs WHERE active = 1 ORDER BY job_id"):
            yield compact(job_from_record(json.loads(data)))  # these stay in the controller's memory

    def recent_jobs(self, since: float) -> Iterator[Job]:
        for (data,) in self.db.execute("SELECT data FROM jobs WHERE active = 0 AND end_time >= ? ORDER BY job_id",
                                       (since,)):
            yield compact(job_from_record(json.loads(data)))

    def query_jobs(self, job_ids: list[int] | None = None, uids: list[int] | None = None,
                   start: float | None = None, end: float | None = None) -> list[dict[str, Any]]:
        """Records for sacct: jobs that were eligible or running within [start, end]."""
        sql = "SELECT data FROM jobs WHERE 1=1"
        args: list[Any] = []
        if job_ids:
            marks = ",".join("?" * len(job_ids))
            sql += f" AND (job_id IN ({marks}) OR array_job_id IN ({marks}))"  # an array id names its tasks
            args.extend(job_ids)
            args.extend(job_ids)
        if uids:
            sql += f" AND uid IN ({','.join('?' * len(uids))})"
            args.extend(uids)
        if start is not None:
            sql += " AND (end_time = 0 OR end_time >= ?)"
            args.append(start)
        if end is not None:
            sql += " AND submit_time <= ?"
            args.append(end)
        sql += " ORDER BY job_id"
        return [json.loads(d) for (d,) in self.db.execute(sql, args)]

    # ------------------------------------------------------------ earlier runs of requeued jobs (sacct -D)
    def save_run(self, job: Job) -> None:
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO job_runs VALUES (?, ?, ?)",
                       (job.job_id, job.restart_count, json.dumps(job.record(), separators=(",", ":"))))

    def runs(self, job_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
        out: dict[int, list[dict[str, Any]]] = {}
        if not job_ids:
            return out
        for start in range(0, len(job_ids), 500):
            chunk = job_ids[start:start + 500]
            sql = (f"SELECT job_id, data FROM job_runs WHERE job_id IN ({','.join('?' * len(chunk))}) "
                   "ORDER BY job_id, restart_count")
            for job_id, data in self.db.execute(sql, chunk):
                out.setdefault(job_id, []).append(json.loads(data))
        return out

    # ------------------------------------------------------------ nodes (admin state survives restarts)
    def save_node_state(self, name: str, data: dict[str, Any]) -> None:
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO nodes VALUES (?, ?)", (name, json.dumps(data)))

    def node_states(self) -> dict[str, dict[str, Any]]:
        return {name: json.loads(d) for name, d in self.db.execute("SELECT name, data FROM nodes")}

    def close(self) -> None:
        self.db.close()
