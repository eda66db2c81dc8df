"""The credit ledger: accounts, deposits, charges and running jobs' reservations, in the controller's store.

Credits are core-seconds (3600 buy one core-hour). An account's *amount* is the
sum of its ledger entries (seed, top-ups, negative charges); its *reserved* is
what running jobs hold back (time limit x cores); balance = amount - reserved,
which is what new jobs may use. Every change is one SQLite transaction, and a
job's charge is keyed by cluster, job and run start so that a retried end (a
node resending ``job_ended``, another cluster's outbox) is applied once.
The totals are cached in memory: eligibility is asked for every pending job on
every scheduling pass.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from orchestrator.scheduler.store import Store

log = logging.getLogger(__name__)

__all__ = ["CREDITS_PER_HOUR", "Account", "Ledger", "priority_account"]

CREDITS_PER_HOUR = 3600
PRIORITY_SUFFIX = "-priority"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS credit_accounts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    project TEXT NOT NULL,
    credit_limit INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS credit_reservations (
    cluster TEXT NOT NULL,
    job_id INTEGER NOT NULL,
    account TEXT NOT NULL,
    amount INTEGER NOT NULL,
    start REAL NOT NULL,
    PRIMARY KEY (cluster, job_id)
);
CREATE TABLE IF NOT EXISTS credit_events (key TEXT PRIMARY KEY, time REAL NOT NULL);
"""


def priority_account(project: str) -> str:
    """The account ``--qos=priority`` jobs of a project are charged to."""
    return f"{project}{PRIORITY_SUFFIX}"


@dataclass
class Account:
    id: int
    name: str
    project: str
    amount: int
    reserved: int
    credit_limit: int = 0

    @property
    def balance(self) -> int:
        return self.amount - self.reserved

    @property
    def available(self) -> int:
        return self.balance + self.credit_limit

    def record(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "project": self.project, "amount": self.amount,
                "reserved": self.reserved, "balance": self.balance, "credit_limit": self.credit_limit,
                "available": self.available}


class Ledger:
    """The home cluster's credit accounts, on the controller's SQLite store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = store.db
        self.db.executescript(_SCHEMA)
        self._accounts: dict[str, Account] = {}
        self.reload()

    def reload(self) -> None:
        """Rebuild the in-memory totals from the tables (at start, and in tests)."""
        accounts: dict[str, Account] = {}
        for aid, name, project, limit in self.db.execute(
                "SELECT id, name, project, credit_limit FROM credit_accounts ORDER BY id"):
            accounts[name] = Account(int(aid), name, project, 0, 0, int(limit))
        for name, total in self.db.execute("SELECT account, COALESCE(SUM(amount), 0) FROM ledger GROUP BY account"):
            if name in accounts:
                accounts[name].amount = int(total)
        for name, total in self.db.execute(
                "SELECT account, COALESCE(SUM(amount), 0) FROM credit_reservations GROUP BY account"):
            if name in accounts:
                accounts[name].reserved = int(total)
        self._accounts = accounts

    # ------------------------------------------------------------------ accounts
    def seed(self, projects: list[tuple[str, int]]) -> list[str]:
        """Create each project's account (with its initial credits) and its priority account, once.

        Runs at every controller start; accounts that exist are left alone, so a
        top-up or a charge is never undone by a restart.
        """
        created: list[str] = []
        now = time.time()
        with self.store.tx() as db:
            for project, credits in projects:
                for name, amount in ((project, credits), (priority_account(project), 0)):
                    cur = db.execute("INSERT OR IGNORE INTO credit_accounts (name, project, created) VALUES (?,?,?)",
                                     (name, project, now))
                    if cur.rowcount:
                        created.append(name)
                        if amount:
                            db.execute("INSERT INTO ledger (account, time, kind, amount, job_id, note) "
                                       "VALUES (?,?,?,?,NULL,?)", (name, now, "seed", int(amount),
                                                                   "initial credits from the cluster config"))
        if created:
            log.info("credit accounts created: %s", ", ".join(created))
            self.reload()
        return created

    def get(self, name: str) -> Account | None:
        return self._accounts.get(name)

    def accounts(self) -> list[Account]:
        return sorted(self._accounts.values(), key=lambda a: a.id)

    # ------------------------------------------------------------------ changes
    def deposit(self, account: str, amount: int, kind: str = "topup", note: str = "") -> Account:
        """Add (or, negative, remove) credits by hand; returns the account afterwards."""
        acct = self._accounts.get(account)
        if acct is None:
            raise KeyError(account)
        with self.store.tx() as db:
            db.execute("INSERT INTO ledger (account, time, kind, amount, job_id, note) VALUES (?,?,?,?,NULL,?)",
                       (account, time.time(), kind, int(amount), note))
        acct.amount += int(amount)
        return acct

    def reserve(self, cluster: str, job_id: int, account: str, amount: int, start: float) -> bool:
        """Hold back a running job's credits; a repeat for the same run changes nothing.

        A different amount or account for the same run (``scontrol update`` of its time
        limit) replaces the reservation, as does a reservation of a later run.
        """
        acct = self._accounts.get(account)
        if acct is None:
            return False
        with self.store.tx() as db:
            row = db.execute("SELECT account, amount, start FROM credit_reservations WHERE cluster = ? AND job_id = ?",
                             (cluster, job_id)).fetchone()
            if row is not None and float(row[2]) == float(start) and (str(row[0]), int(row[1])) == (account, amount):
                return False
            if row is not None:  # an earlier run's, or this run's before an update: replace it
                old = self._accounts.get(str(row[0]))
                if old is not None:
                    old.reserved -= int(row[1])
            db.execute("INSERT OR REPLACE INTO credit_reservations VALUES (?,?,?,?,?)",
                       (cluster, job_id, account, int(amount), float(start)))
        acct.reserved += int(amount)
        return True

    def settle(self, cluster: str, job_id: int, account: str, charge: int, start: float, note: str = "") -> bool:
        """Charge a finished run and release its reservation, exactly once per run."""
        key = f"charge:{cluster}:{job_id}:{int(start * 1000)}"
        released = 0
        released_from: Account | None = None
        with self.store.tx() as db:
            if db.execute("SELECT 1 FROM credit_events WHERE key = ?", (key,)).fetchone():
                return False
            row = db.execute("SELECT account, amount, start FROM credit_reservations WHERE cluster = ? AND job_id = ?",
                             (cluster, job_id)).fetchone()
            if row is not None and float(row[2]) <= float(start) + 1e-6:
                db.execute("DELETE FROM credit_reservations WHERE cluster = ? AND job_id = ?", (cluster, job_id))
                released = int(row[1])
                released_from = self._accounts.get(str(row[0]))
            db.execute("INSERT INTO credit_events VALUES (?, ?)", (key, time.time()))
            acct = self._accounts.get(account)
            if acct is not None and charge:
                db.execute("INSERT INTO ledger (account, time, kind, amount, job_id, note) VALUES (?,?,?,?,?,?)",
                           (account, time.time(), "charge", -int(charge), job_id, note))
        if released_from is not None:
            released_from.reserved -= released
        if acct is not None and charge:
            acct.amount -= int(charge)
        return True

    def drop_reservation(self, cluster: str, job_id: int) -> None:
        """Forget a reservation whose job is gone without an end (it never really ran)."""
        with self.store.tx() as db:
            row = db.execute("SELECT account, amount FROM credit_reservations WHERE cluster = ? AND job_id = ?",
                             (cluster, job_id)).fetchone()
            if row is None:
                return
            db.execute("DELETE FROM credit_reservations WHERE cluster = ? AND job_id = ?", (cluster, job_id))
        acct = self._accounts.get(str(row[0]))
        if acct is not None:
            acct.reserved -= int(row[1])

    # ------------------------------------------------------------------ queries
    def reservations(self, cluster: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT cluster, job_id, account, amount, start FROM credit_reservations"
        args: tuple[Any, ...] = ()
        if cluster is not None:
            sql += " WHERE cluster = ?"
            args = (cluster,)
        return [{"cluster": c, "job_id": int(j), "account": a, "amount": int(m), "start": float(s)}
                for c, j, a, m, s in self.db.execute(sql + " ORDER BY cluster, job_id", args)]

    def entries(self, account: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Ledger lines, oldest first (the last ``limit`` ones when limited)."""
        sql = "SELECT id, account, time, kind, amount, job_id, note FROM ledger"
        args: list[Any] = []
        if account is not None:
            sql += " WHERE account = ?"
            args.append(account)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        rows = [{"id": int(i), "account": a, "time": float(t), "kind": k, "amount": int(m),
                 "job_id": None if j is None else int(j), "note": n}
                for i, a, t, k, m, j, n in self.db.execute(sql, args)]
        rows.reverse()
        return rows

    def charged(self, account: str) -> int:
        """Credits charged to jobs of an account, in total (positive)."""
        (total,) = self.db.execute("SELECT COALESCE(SUM(-amount), 0) FROM ledger WHERE account = ? AND kind = 'charge'",
                                   (account,)).fetchone()
        return int(total)
