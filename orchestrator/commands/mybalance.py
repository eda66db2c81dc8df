"""``mybalance``: the credit balance of the caller's projects, in ARC's own format (typos included).

ARC prints::

    Please wait: Calculating balance ...
    Your are a member on the following project(s): dept-proj
    and your total balance is: 999871360 credits (~277742 hours)
    Detailed account balance:
    Id  Name      Amount   Reserved  Balance    CreditLimit  Available
    51  dept-proj 999871360  0       999871360  0            999871360

The table's columns are left-aligned, each as wide as its widest cell plus two
spaces (Name: one; Reserved: at least its heading's width); the "Reserved"
heading sits two columns left of its values when Amount leaves room. These
rules reproduce ARC's sample to the character and stay aligned for other widths.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from orchestrator.lazylog import get_logger

log = get_logger(__name__)

__all__ = ["format_balance", "main"]

CREDITS_PER_HOUR = 3600
_COLUMNS = ("Id", "Name", "Amount", "Reserved", "Balance", "CreditLimit", "Available")
_KEYS = ("id", "name", "amount", "reserved", "balance", "credit_limit", "available")
_GAP = (2, 1, 2, 2, 2, 2, 0)

USAGE = """Usage: mybalance [-u USER]
Show the credit balance of your projects (1 credit = 1 core for 1 second; 3600 credits = 1 core hour).

  -u, --user USER   another user's projects (administrators only)
  -h, --help        show this help
"""


def hours(credits: int) -> int:
    """Whole core-hours, truncated toward zero (ARC's ``~N hours``)."""
    return int(credits / CREDITS_PER_HOUR)


def format_table(accounts: list[dict[str, Any]]) -> list[str]:
    cells = [[str(a[k]) for k in _KEYS] for a in accounts]
    values = [max([0] + [len(row[i]) for row in cells]) for i in range(len(_COLUMNS))]
    slots = [max(len(h), values[i]) + _GAP[i] for i, h in enumerate(_COLUMNS)]
    amount, reserved = _COLUMNS.index("Amount"), _COLUMNS.index("Reserved")
    shift = max(0, min(2, slots[amount] - len("Amount") - 2))
    slots[reserved] = max(len("Reserved") + 2 - shift, values[reserved] + 2)
    head_slots = list(slots)
    head_slots[amount] -= shift
    head_slots[reserved] += shift
    last = len(_COLUMNS) - 1
    lines = ["".join(h if i == last else h.ljust(head_slots[i]) for i, h in enumerate(_COLUMNS)).rstrip()]
    for row in cells:
        lines.append("".join(c if i == last else c.ljust(slots[i]) for i, c in enumerate(row)).rstrip())
    return lines


def format_balance(reply: dict[str, Any]) -> str:
    """Everything after the "Please wait" line, from the controller's ``credits`` reply."""
    accounts = list(reply.get("accounts") or [])
    total = sum(int(a["balance"]) for a in accounts)
    lines = [f"Your are a member on the following project(s): {' '.join(reply.get('projects') or [])}",
             f"and your total balance is: {total} credits (~{hours(total)} hours)",
             "Detailed account balance:"]
    lines += format_table(accounts)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    user: str | None = None
    while args:
        a = args.pop(0)
        if a in ("-h", "--help"):
            sys.stdout.write(USAGE)
            return 0
        if a in ("-u", "--user") and args:
            user = args.pop(0)
        elif a.startswith("--user="):
            user = a.split("=", 1)[1]
        else:
            sys.stderr.write(f"mybalance: error: unrecognized argument: {a}\n{USAGE}")
            return 2
    if user is not None and os.getuid() != 0:
        sys.stderr.write("mybalance: error: only administrators can look at another user's balance\n")
        return 1
    sys.stdout.write("Please wait: Calculating balance ...\n")
    sys.stdout.flush()
    from orchestrator.commands import _common

    try:
        reply = _common.make_client().call("credits", {"user": user} if user else {})
    except _common.rpc_error_type() as exc:
        sys.stderr.write(f"mybalance: error: {getattr(exc, 'message', exc)}\n")
        return 1
    sys.stdout.write(format_balance(reply))
    return 0
