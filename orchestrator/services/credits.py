"""Credits as on ARC: jobs reserve core-seconds while they run, are charged what they used, and wait for credit.

One ledger serves every cluster, as one accounting database serves ARC's arc and
htc: it lives in the store of the first cluster in the config (the *home*).
Other clusters' controllers keep a cached view of the balances and send their
reservations and charges to the home through a durable outbox, so a home
controller that is down or restarting loses nothing and costs only freshness.

Rules (ARC's, in core-seconds, 3600 credits per core-hour):

- a job of account A (``<A>-priority`` with ``--qos=priority``) may start when
  A's balance (amount minus running jobs' reservations: mybalance's Available)
  covers its own reservation, time limit x CPUs; every array task is such a job;
- otherwise it is held (``JobHeldUser``, as on ARC): only a top-up (or the end
  of other jobs) and ``scontrol release`` bring it back;
- within one scheduling pass, a job whose credit was just promised to a job
  ahead of it waits (``Priority``) for the next pass, which decides on the real
  reservations: a promise is not a start, and a hold must never come of one;
- at the end of a run it is charged elapsed x allocated CPUs (sacct's
  CPUTimeRAW, see ``orchestrator.slurm.accounting``) and its reservation is
  released; a requeued job pays for the run that happened.

Accounts the ledger does not know (a user's own group in local mode, root) are
neither limited nor charged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import threading
from typing import TYPE_CHECKING, Any

from orchestrator.scheduler.controller import Plugin
from orchestrator.scheduler.errors import SlurmError
from orchestrator.scheduler.job import Job
from orchestrator.scheduler.server import Request, call_async
from orchestrator.services.credits_cli import MAX_CREDITS
from orchestrator.services.ledger import CREDITS_PER_HOUR, Account, Ledger, priority_account
from orchestrator.services.membership import projects_of, user_name
from orchestrator.slurm.accounting import cpu_time_raw
from orchestrator.slurm.timefmt import INFINITE

if TYPE_CHECKING:
    from orchestrator.scheduler.controller import Controller

log = logging.getLogger(__name__)

__all__ = ["HOLD_REASON", "WAIT_REASON", "CreditsPlugin", "job_account", "reservation_for"]

HOLD_REASON = "JobHeldUser"
WAIT_REASON = "Priority"
"""Only for the rest of a pass whose starts have taken the credit; the next pass holds or starts the job."""
UNLIMITED_RESERVE_MINUTES = 7 * 24 * 60
"""What a job without a time limit reserves: a week (ARC's long partition has no maximum)."""

_OUTBOX = """
CREATE TABLE IF NOT EXISTS credit_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, event TEXT NOT NULL);
"""
SYNC_INTERVAL = 5.0
START_SENDER = True
"""Unit tests turn the outbox thread off and deliver by hand."""


def job_account(job: Job) -> str:
    """The credit account a job is charged to."""
    return priority_account(job.account) if job.qos == "priority" else job.account


def estimated_cpus(job: Job, node_cpus: list[int]) -> int:
    """CPUs a pending job will be given, for the credit check before it has an allocation."""
    cpus = max(job.num_tasks * max(1, job.cpus_per_task), job.num_nodes, 1)
    if job.exclusive and node_cpus:
        cpus = max(cpus, job.num_nodes * min(node_cpus))
    return cpus


def reservation_for(job: Job, cpus: int) -> int:
    """Credits a run of the job holds back: its time limit times its CPUs."""
    minutes = UNLIMITED_RESERVE_MINUTES if job.time_limit == INFINITE else max(0, job.time_limit)
    return minutes * 60 * max(0, cpus)


def charge_for(job: Job) -> int:
    """What a run that has ended costs: exactly its CPUTimeRAW."""
    return cpu_time_raw(job.start_time, job.end_time, job.alloc_cpus)


class _Book:
    """Where reservations and charges go: the home ledger, or an outbox to it."""

    cluster: str

    def state(self, account: str) -> tuple[int, int] | None:
        """(amount, reserved) of an account, or None when it is not a credit account."""
        raise NotImplementedError

    def reserve(self, job_id: int, account: str, amount: int, start: float) -> None:
        raise NotImplementedError

    def settle(self, job_id: int, account: str, charge: int, start: float, note: str) -> None:
        raise NotImplementedError

    def reconcile(self, running: dict[int, tuple[str, int, float]]) -> None:
        """Make this cluster's reservations exactly those of its running jobs (job -> account, amount, start)."""
        raise NotImplementedError


class _LocalBook(_Book):
    def __init__(self, ledger: Ledger, cluster: str) -> None:
        self.ledger = ledger
        self.cluster = cluster

    def state(self, account: str) -> tuple[int, int] | None:
        acct = self.ledger.get(account)
        return None if acct is None else (acct.amount, acct.reserved)

    def reserve(self, job_id: int, account: str, amount: int, start: float) -> None:
        self.ledger.reserve(self.cluster, job_id, account, amount, start)

    def settle(self, job_id: int, account: str, charge: int, start: float, note: str) -> None:
        self.ledger.settle(self.cluster, job_id, account, charge, start, note)

    def reconcile(self, running: dict[int, tuple[str, int, float]]) -> None:
        apply_reconcile(self.ledger, self.cluster, running)


def apply_reconcile(ledger: Ledger, cluster: str, running: dict[int, tuple[str, int, float]]) -> None:
    """Drop reservations of jobs that no longer run; add those of running jobs that lack one."""
    for res in ledger.reservations(cluster):
        if res["job_id"] not in running:
            log.info("credits: releasing the reservation of job %d (%s), which is no longer running",
                     res["job_id"], cluster)
            ledger.drop_reservation(cluster, res["job_id"])
    have = {r["job_id"]: r["start"] for r in ledger.reservations(cluster)}
    for job_id, (account, amount, start) in running.items():
        if have.get(job_id) != start:
            ledger.reserve(cluster, job_id, account, amount, start)


class _RemoteBook(_Book):
    """A non-home cluster: cached balances from the home, and an outbox of this cluster's events.

    The outbox is a table in this controller's own store, written in the same
    step as the job change that caused the event; a sender thread delivers it in
    order (each event is idempotent at the home) and then refreshes the cache.
    What this cluster did since the last delivery is applied on top of the cache,
    so its own jobs never see stale credit.
    """

    def __init__(self, ctl: Controller, home: str) -> None:
        self.ctl = ctl
        self.cluster = ctl.cluster.name
        self.home = home
        self.db = ctl.store.db
        self.db.executescript(_OUTBOX)
        self.lock = threading.Lock()
        self.base: dict[str, tuple[int, int]] = {}
        self.synced = False
        self.acked = 0
        self.deltas: dict[int, list[tuple[str, int, int]]] = {}  # seq -> [(account, amount +-, reserved +-)]
        self.res: dict[int, tuple[str, int]] = {}  # this cluster's reservations: job -> (account, amount)
        self.running: list[int] = []
        self.wake = threading.Event()
        self.thread = threading.Thread(target=self._sender, name="credits-outbox", daemon=True)
        if START_SENDER:
            self.thread.start()

    # ---------------------------------------------------------------- view
    def state(self, account: str) -> tuple[int, int] | None:
        with self.lock:
            if not self.synced:
                return None
            base = self.base.get(account)
            if base is None:
                return None
            amount, reserved = base
            for seq, changes in self.deltas.items():
                if seq > self.acked:
                    for acct, d_amount, d_res in changes:
                        if acct == account:
                            amount += d_amount
                            reserved += d_res
            return amount, reserved

    def _enqueue(self, event: dict[str, Any], changes: list[tuple[str, int, int]]) -> None:
        event["cluster"] = self.cluster
        with self.ctl.store.tx() as db:
            cur = db.execute("INSERT INTO credit_outbox (event) VALUES (?)", (json.dumps(event),))
            seq = int(cur.lastrowid or 0)
        with self.lock:
            self.deltas[seq] = changes
            self.running = sorted(self.res)
        self.wake.set()

    def reserve(self, job_id: int, account: str, amount: int, start: float) -> None:
        held = self.res.get(job_id)
        self.res[job_id] = (account, amount)
        changes = [(account, 0, amount)]
        if held is not None:  # replaced (a new run, or an updated time limit)
            changes.append((held[0], 0, -held[1]))
        self._enqueue({"op": "reserve", "job_id": job_id, "account": account, "amount": amount, "start": start},
                      changes)

    def settle(self, job_id: int, account: str, charge: int, start: float, note: str) -> None:
        held = self.res.pop(job_id, None)
        changes = [(account, -charge, 0)]
        if held is not None:
            changes.append((held[0], 0, -held[1]))
        self._enqueue({"op": "settle", "job_id": job_id, "account": account, "charge": charge, "start": start,
                       "note": note}, changes)

    def reconcile(self, running: dict[int, tuple[str, int, float]]) -> None:
        for job_id, (account, amount, start) in running.items():
            self.res[job_id] = (account, amount)
            self._enqueue({"op": "reserve", "job_id": job_id, "account": account, "amount": amount,
                           "start": start}, [])
        with self.lock:
            self.running = sorted(self.res)

    # ---------------------------------------------------------------- delivery
    def connect(self) -> sqlite3.Connection:
        """The sender's own connection to the store (one connection is never shared by two threads)."""
        db = sqlite3.connect(str(self.ctl.store.path), isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout=5000")
        return db

    def _sender(self) -> None:
        db = self.connect()
        while True:
            try:
                self._deliver(db)
            except Exception as exc:  # the home may be down; try again later
                log.debug("credits: delivery to %s failed: %s", self.home, exc)
            self.wake.wait(SYNC_INTERVAL)
            self.wake.clear()

    def deliver(self, db: sqlite3.Connection) -> None:
        """Send the outbox (oldest first) and refresh the cached balances from the home."""
        self._deliver(db)

    def _deliver(self, db: sqlite3.Connection) -> None:
        from orchestrator.scheduler.client import Client

        rows = db.execute("SELECT seq, event FROM credit_outbox ORDER BY seq LIMIT 500").fetchall()
        with self.lock:
            running = list(self.running)
        client = Client(address=_controller_address(self.ctl, self.home), timeout=10)
        events = [json.loads(e) for _, e in rows]
        full = len(rows) < 500
        reply = client.call("credits_sync", {"cluster": self.cluster, "events": events,
                                             "running": running if full else None})
        last = int(rows[-1][0]) if rows else self.acked
        if rows:
            db.execute("DELETE FROM credit_outbox WHERE seq <= ?", (last,))
        base = {str(a["name"]): (int(a["amount"]), int(a["reserved"])) for a in reply.get("accounts", [])}
        with self.lock:
            self.base = base
            self.synced = True
            self.acked = max(self.acked, last)
            for seq in [s for s in self.deltas if s <= self.acked]:
                del self.deltas[seq]


def _controller_address(ctl: Controller, cluster: str) -> tuple[str, int]:
    """Where another cluster's controller listens: the client view (local mode), else the config."""
    try:
        from orchestrator.scheduler.client import load_client_config

        return load_client_config().address(cluster)
    except Exception:
        spec = ctl.config.cluster(cluster)
        return spec.controller_hostname, spec.controller_port


class CreditsPlugin(Plugin):
    """The controller side of credits: the eligibility check, reservations, charges, and the credits ops."""

    def __init__(self, ctl: Controller) -> None:
        self.ctl = ctl
        self.cluster = ctl.cluster.name
        self.home = ctl.config.clusters[0].name if ctl.config.clusters else self.cluster
        self.ledger: Ledger | None = None
        self.book: _Book
        if self.home == self.cluster or self.home not in {c.name for c in ctl.config.clusters}:
            self.home = self.cluster
            self.ledger = Ledger(ctl.store)
            self.ledger.seed([(p.name, round(p.credits_hours * CREDITS_PER_HOUR)) for p in ctl.config.projects])
            self.book = _LocalBook(self.ledger, self.cluster)
        else:
            self.book = _RemoteBook(ctl, self.home)
        self._tally: dict[str, int] = {}
        self._reset_scheduled = False
        self._node_cpus: dict[str, list[int]] = {
            p.name: [ctl.nodes[n].spec.cpus for n in p.nodes if n in ctl.nodes] for p in ctl.cluster.partitions}
        self.book.reconcile(self._running())

    def _running(self) -> dict[int, tuple[str, int, float]]:
        out: dict[int, tuple[str, int, float]] = {}
        for job in self.ctl.jobs.values():
            if job.state in ("RUNNING", "COMPLETING", "SUSPENDED") and job.start_time:
                account = job_account(job)
                if self.book.state(account) is not None or isinstance(self.book, _RemoteBook):
                    out[job.job_id] = (account, reservation_for(job, job.alloc_cpus), job.start_time)
        return out

    # ---------------------------------------------------------------- hooks
    def eligibility(self, job: Job) -> str | None:
        account = job_account(job)
        state = self.book.state(account)
        if state is None:
            return None
        amount, reserved = state
        need = reservation_for(job, estimated_cpus(job, self._node_cpus.get(job.partition, [])))
        if amount - reserved < need:
            job.hold = "user"
            job.priority = 0
            return HOLD_REASON
        if amount - reserved - self._tally.get(account, 0) < need:
            return WAIT_REASON
        self._tally[account] = self._tally.get(account, 0) + need
        self._schedule_reset()
        return None

    def _schedule_reset(self) -> None:
        """Forget this pass's tentative reservations once the pass is over (its starts reserve for real)."""
        if self._reset_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (unit tests): the caller calls end_pass()
        self._reset_scheduled = True
        loop.call_soon(self.end_pass)

    def end_pass(self) -> None:
        self._tally.clear()
        self._reset_scheduled = False

    def on_start(self, job: Job) -> None:
        account = job_account(job)
        if self.book.state(account) is None and not isinstance(self.book, _RemoteBook):
            return
        self.book.reserve(job.job_id, account, reservation_for(job, job.alloc_cpus), job.start_time)

    def on_update(self, job: Job) -> None:
        """A running job's time limit was changed: its reservation follows (ARC reserves for the limit)."""
        if job.state not in ("RUNNING", "COMPLETING", "SUSPENDED") or not job.start_time:
            return
        self.on_start(job)

    def on_end(self, job: Job) -> None:
        if not job.start_time:
            return
        account = job_account(job)
        if self.book.state(account) is None and not isinstance(self.book, _RemoteBook):
            return
        charge = charge_for(job)
        note = (f"{self.cluster} job {job.job_id} run {job.restart_count}: {charge // max(1, job.alloc_cpus)}s "
                f"x {job.alloc_cpus} cpus")
        self.book.settle(job.job_id, account, charge, job.start_time, note)

    # ---------------------------------------------------------------- ops
    def handlers(self) -> dict[str, Any]:
        return {"credits": self.op_credits, "credits_admin": self.op_credits_admin,
                "credits_sync": self.op_credits_sync}

    def _require_root(self, req: Request) -> None:
        if req.uid not in (0, os.getuid()):
            raise SlurmError("ESLURM_ACCESS_DENIED")

    async def _forward(self, op: str, body: dict[str, Any]) -> dict[str, Any]:
        host, port = _controller_address(self.ctl, self.home)
        try:
            return await call_async(host, port, op, body, timeout=15)
        except (TimeoutError, OSError):
            raise SlurmError("SLURM_COMMUNICATIONS_CONNECTION_ERROR",
                             f"Unable to contact the accounting controller of cluster {self.home}") from None

    async def op_credits(self, req: Request) -> dict[str, Any]:
        """The balances of the calling user's projects (root may name a user)."""
        user = user_name(req.uid)
        if req.body.get("user") and req.uid in (0, os.getuid()):
            user = str(req.body["user"])
        if self.ledger is None:
            return await self._forward("credits", {"user": user})
        if req.uid == 0 and not req.body.get("user"):
            projects = [p.name for p in self.ctl.config.projects]
        else:
            projects = projects_of(self.ctl.config, user)
        rows: list[dict[str, Any]] = []
        for project in projects:
            for name in (project, priority_account(project)):
                acct = self.ledger.get(name)
                if acct is None:
                    continue
                if name != project and not (acct.amount or acct.reserved):
                    continue  # an unused priority account is not shown
                rows.append(acct.record())
        return {"user": user, "projects": projects, "accounts": rows}

    async def op_credits_admin(self, req: Request) -> dict[str, Any]:
        """Root only: ``add`` credits to an account, ``list`` accounts and ledger lines."""
        self._require_root(req)
        if self.ledger is None:
            return await self._forward("credits_admin", req.body)
        action = str(req.body.get("action", "list"))
        if action == "add":
            return self._admin_add(req.body)
        if action == "list":
            account = req.body.get("account")
            if account is not None and self.ledger.get(str(account)) is None:
                raise SlurmError("ESLURM_INVALID_ACCOUNT", f"No such credit account: {account}")
            limit = req.body.get("limit")
            return {"home": self.cluster,
                    "accounts": [a.record() for a in self.ledger.accounts()],
                    "charged": {a.name: self.ledger.charged(a.name) for a in self.ledger.accounts()},
                    "reservations": self.ledger.reservations(),
                    "entries": self.ledger.entries(None if account is None else str(account),
                                                   None if limit is None else int(limit))}
        raise SlurmError("EINVAL", f"Unknown credits action {action!r}; allowed: add, list")

    def _admin_add(self, body: dict[str, Any]) -> dict[str, Any]:
        assert self.ledger is not None
        account = str(body.get("account", ""))
        acct: Account | None = self.ledger.get(account)
        if acct is None:
            known = ", ".join(a.name for a in self.ledger.accounts())
            raise SlurmError("ESLURM_INVALID_ACCOUNT", f"No such credit account: {account!r}; known: {known}")
        try:
            amount = int(body["credits"])
            if abs(amount) > MAX_CREDITS:
                raise ValueError(amount)
        except (KeyError, TypeError, ValueError):
            raise SlurmError("EINVAL", f"credits must be a whole number of at most {MAX_CREDITS} either way") from None
        note = str(body.get("note") or "")
        acct = self.ledger.deposit(account, amount, "topup" if amount >= 0 else "adjust", note)
        log.info("credits: %+d to %s (%s); amount now %d", amount, account, note, acct.amount)
        self.ctl.schedule_soon()
        return {"account": acct.record()}

    async def op_credits_sync(self, req: Request) -> dict[str, Any]:
        """Another cluster's controller delivers its events and fetches the balances."""
        self._require_root(req)
        if self.ledger is None:
            raise SlurmError("EINVAL", f"cluster {self.cluster} does not keep the credit ledger; {self.home} does")
        cluster = str(req.body["cluster"])
        for ev in req.body.get("events") or []:
            op = ev.get("op")
            if op == "reserve":
                self.ledger.reserve(cluster, int(ev["job_id"]), str(ev["account"]), int(ev["amount"]),
                                    float(ev["start"]))
            elif op == "settle":
                self.ledger.settle(cluster, int(ev["job_id"]), str(ev["account"]), int(ev["charge"]),
                                   float(ev["start"]), str(ev.get("note", "")))
        running = req.body.get("running")
        if running is not None:
            keep = {int(j) for j in running}
            for res in self.ledger.reservations(cluster):
                if res["job_id"] not in keep:
                    self.ledger.drop_reservation(cluster, res["job_id"])
        if req.body.get("events"):
            self.ctl.schedule_soon()
        return {"accounts": [a.record() for a in self.ledger.accounts()]}

