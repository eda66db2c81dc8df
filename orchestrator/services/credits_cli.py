"""``minihpc credits add|list``: an administrator tops up a project and reads the ledger.

Two halves. ``host_main`` runs on the host (``minihpc credits ...``) and only
re-runs this module inside the home cluster's controller container with
``docker exec``; ``main`` runs there as root, where munge vouches for uid 0, and
asks the controller's root-only ``credits_admin`` op. Nothing on the host
touches the ledger's database directly, so the controller's in-memory totals
and the scheduler (which releases held jobs' eligibility at once) stay right.

    minihpc credits add chem-proj 1000            # 1000 core-hours = 3,600,000 credits
    minihpc credits add chem-proj-priority 50 --note "priority grant"
    minihpc credits list                          # every account, then the last ledger lines
    minihpc credits list chem-proj                # one account's whole ledger
"""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.cluster.config import Config

log = logging.getLogger(__name__)

__all__ = ["format_list", "host_main", "main"]

CREDITS_PER_HOUR = 3600
MAX_CREDITS = 10**15 * CREDITS_PER_HOUR
"""A top-up's bound either way (far beyond any grant; keeps the ledger's sums inside SQLite's 64-bit integers)."""
RECENT = 20


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="minihpc credits", description="Project credits (1 core-hour = 3600 credits).")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = sub.add_parser("add", help="add core-hours to a project's account (negative: take them away)")
    a.add_argument("account", help="project (or <project>-priority for --qos=priority jobs)")
    a.add_argument("hours", help="core-hours, e.g. 1000 or 0.5")
    a.add_argument("--note", default="", help="why (kept in the ledger)")
    ls = sub.add_parser("list", help="balances of all accounts and recent ledger lines, or one account's ledger")
    ls.add_argument("account", nargs="?")
    ls.add_argument("--entries", type=int, metavar="N", help=f"ledger lines to show (default {RECENT}; all with ACCOUNT)")
    return p


def _hours(credits: int) -> str:
    return f"{credits / CREDITS_PER_HOUR:.1f}"


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(epoch))


def _table(head: tuple[str, ...], rows: list[tuple[str, ...]], right: set[int]) -> list[str]:
    w = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(head)]

    def fmt(cells: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w[i]) if i in right else c.ljust(w[i]) for i, c in enumerate(cells)).rstrip()

    return [fmt(head)] + [fmt(r) for r in rows]


def format_list(reply: dict[str, Any], account: str | None) -> str:
    accounts = [a for a in reply["accounts"] if account is None or a["name"] == account]
    charged = reply.get("charged", {})
    lines = [f"Credit accounts (ledger kept by cluster {reply.get('home', '?')}; 3600 credits = 1 core-hour)"]
    lines += _table(("Id", "Account", "Amount", "Reserved", "Balance", "Hours", "Charged"),
                    [(str(a["id"]), a["name"], str(a["amount"]), str(a["reserved"]), str(a["balance"]),
                      _hours(int(a["balance"])), str(charged.get(a["name"], 0))) for a in accounts], {0, 2, 3, 4, 5, 6})
    running = [r for r in reply.get("reservations", []) if account is None or r["account"] == account]
    if running:
        lines += ["", "Reservations of running jobs:"]
        lines += _table(("Cluster", "JobID", "Account", "Reserved", "Since"),
                        [(r["cluster"], str(r["job_id"]), r["account"], str(r["amount"]), _when(r["start"]))
                         for r in running], {1, 3})
    entries = reply.get("entries", [])
    title = f"Ledger of {account}:" if account else f"Last {len(entries)} ledger lines:"
    lines += ["", title]
    lines += _table(("Time", "Account", "Kind", "Amount", "JobID", "Note"),
                    [(_when(e["time"]), e["account"], e["kind"], str(e["amount"]),
                      "" if e["job_id"] is None else str(e["job_id"]), e["note"]) for e in entries], {3, 4})
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Inside a controller container, as root: talk to the controller's credits_admin op."""
    args = _parser().parse_args(argv)
    from orchestrator.scheduler.client import Client, RpcError

    try:
        client = Client()
        if args.action == "add":
            try:
                hours = float(args.hours)
                credits = round(hours * CREDITS_PER_HOUR)  # nan and inf raise here
                if abs(credits) > MAX_CREDITS:
                    raise ValueError(args.hours)
            except (ValueError, OverflowError):
                sys.stderr.write(f"minihpc credits: error: {args.hours!r} is not a number of core-hours "
                                 f"(at most {MAX_CREDITS // CREDITS_PER_HOUR} either way)\n")
                return 2
            note = args.note or f"top-up of {args.hours} core-hours"
            reply = client.call("credits_admin", {"action": "add", "account": args.account, "credits": credits,
                                                  "note": note})
            acct = reply["account"]
            verb = "Added" if credits >= 0 else "Removed"
            sys.stdout.write(f"{verb} {abs(hours):g} core-hours ({abs(credits)} credits) "
                             f"{'to' if credits >= 0 else 'from'} {acct['name']}: balance now {acct['balance']} "
                             f"credits (~{int(acct['balance'] / CREDITS_PER_HOUR)} hours)\n")
            return 0
        body: dict[str, Any] = {"action": "list"}
        if args.account:
            body["account"] = args.account
        if args.entries is not None:
            body["limit"] = args.entries
        elif not args.account:
            body["limit"] = RECENT
        reply = client.call("credits_admin", body)
        sys.stdout.write(format_list(reply, args.account))
        return 0
    except RpcError as exc:
        sys.stderr.write(f"minihpc credits: error: {exc.message}\n")
        return 1


def host_main(config: Config, argv: list[str]) -> int:
    """On the host: run ``main`` in the controller container of the cluster that keeps the ledger."""
    _parser().parse_args(argv)  # usage errors are reported here, before docker
    if not config.clusters:
        sys.stderr.write("ERROR: the config declares no cluster\n")
        return 1
    container = config.clusters[0].controller_hostname
    if shutil.which("docker") is None:
        sys.stderr.write("ERROR: the docker command-line client is needed for `minihpc credits`.\n")
        return 1
    cmd = ["docker", "exec", "-w", "/opt/minihpc", container, "python3", "-m", "orchestrator.services.credits_cli",
           *argv]
    proc = subprocess.run(cmd, check=False)
    if proc.returncode in (125, 126, 127):
        sys.stderr.write(f"ERROR: could not run the credits tool in {container} (is the service up? "
                         "`minihpc status`)\n")
    return proc.returncode


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(main())
