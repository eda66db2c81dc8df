"""``myquota``: usage and quota of the caller's $HOME and of each project data area they belong to.

ARC publishes no sample, so the format is ours::

    Storage quotas for alice (measured 12 seconds ago; usage is refreshed every 30 seconds)
    Area               Path                Used    Quota   Use%   Files
    $HOME              /home/alice        1.2G    15.0G     8%     132
    $DATA (chem-proj)  /data/chem-proj   10.5M    10.0M   105%       4  OVER QUOTA

Sizes are in powers of 1024 (as the config's ``15G``). An area at 90% is flagged
``near quota``; over quota, a note says plainly what that means here: the
volumes cannot enforce quotas, so writes still succeed, but new jobs are
refused until usage is back under the quota. ``--warn`` prints only the warnings
(nothing when all is well): the login banner runs it.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from orchestrator.lazylog import get_logger

log = get_logger(__name__)

__all__ = ["format_quota", "format_warnings", "main"]

NEAR = 0.9

USAGE = """Usage: myquota [--warn] [-u USER]
Show the usage and quota of your home directory and of your projects' data areas.

  --warn            print only areas over (or near) their quota; nothing otherwise
  -u, --user USER   another user's areas (administrators only)
  -h, --help        show this help
"""


def _size(n: int | None) -> str:
    from orchestrator.slurm.units import format_size

    return "?" if n is None else format_size(n)


def _percent(used: int | None, quota: int) -> str:
    if used is None or quota <= 0:
        return "-"
    return f"{used * 100 // quota}%"


def flag(area: dict[str, Any]) -> str:
    used, quota = area.get("used"), int(area["quota"])
    if used is None or quota <= 0:
        return ""
    if used > quota:
        return "OVER QUOTA"
    if used >= quota * NEAR:
        return "near quota"
    return ""


def _ago(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 120:
        return f"{s} second{'s' if s != 1 else ''} ago"
    return f"{s // 60} minutes ago"


def format_quota(reply: dict[str, Any]) -> str:
    areas = list(reply.get("areas") or [])
    now = float(reply.get("now") or time.time())
    measured = [float(a["scanned"]) for a in areas if a.get("scanned")]
    when = f"measured {_ago(now - min(measured))}" if measured else "not measured yet"
    lines = [f"Storage quotas for {reply.get('user', '?')} ({when}; usage is refreshed every "
             f"{int(reply.get('interval', 30))} seconds)"]
    head = ("Area", "Path", "Used", "Quota", "Use%", "Files")
    rows = [(str(a["area"]), str(a["path"]), _size(a.get("used")), _size(int(a["quota"])),
             _percent(a.get("used"), int(a["quota"])), "?" if a.get("files") is None else str(a["files"]))
            for a in areas]
    w = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(head)]

    def line(cells: tuple[str, ...], note: str = "") -> str:
        text = (f"{cells[0]:<{w[0]}}  {cells[1]:<{w[1]}}  {cells[2]:>{w[2]}}  {cells[3]:>{w[3]}}  "
                f"{cells[4]:>{w[4]}}  {cells[5]:>{w[5]}}")
        return f"{text}  {note}" if note else text

    lines.append(line(head))
    for a, r in zip(areas, rows, strict=True):
        lines.append(line(r, flag(a)))
    if not areas:
        lines.append("(no storage areas are configured for this user)")
    over = [a for a in areas if flag(a) == "OVER QUOTA"]
    if over:
        lines.append("")
        lines.append("OVER QUOTA: new jobs charged to an area over its quota are refused until its usage is below")
        lines.append("the quota again; remove or move files. These volumes cannot enforce quotas, so writes still")
        lines.append("succeed: stay under the quota.")
    errors = [a for a in areas if a.get("error")]
    for a in errors:
        lines.append(f"note: {a['area']} {a['path']}: {a['error']}")
    return "\n".join(lines) + "\n"


def format_warnings(reply: dict[str, Any]) -> str:
    """The login banner: one line per area over (or near) its quota, saying what that means here."""
    out = []
    for a in reply.get("areas") or []:
        f = flag(a)
        # over $HOME every new job is refused; over a project's $DATA, that project's jobs
        jobs = f"New {a['name']} jobs" if a.get("kind") == "data" else "New jobs"
        if f == "OVER QUOTA":
            out.append(f"WARNING: {a['area']} {a['path']} is over its quota: {_size(a['used'])} used of "
                       f"{_size(int(a['quota']))}. {jobs} are refused until you free space; writes are not "
                       "blocked, as these volumes cannot enforce quotas (run myquota).")
        elif f:
            out.append(f"Note: {a['area']} {a['path']} is at {_percent(a['used'], int(a['quota']))} of its quota "
                       f"({_size(a['used'])} of {_size(int(a['quota']))}). {jobs} are refused once it is over.")
    return "".join(line + "\n" for line in out)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    warn = False
    user: str | None = None
    while args:
        a = args.pop(0)
        if a in ("-h", "--help"):
            sys.stdout.write(USAGE)
            return 0
        if a == "--warn":
            warn = True
        elif a in ("-u", "--user") and args:
            user = args.pop(0)
        elif a.startswith("--user="):
            user = a.split("=", 1)[1]
        else:
            sys.stderr.write(f"myquota: error: unrecognized argument: {a}\n{USAGE}")
            return 2
    if user is not None and os.getuid() != 0:
        sys.stderr.write("myquota: error: only administrators can look at another user's quotas\n")
        return 1
    from orchestrator.commands import _common

    try:
        client = _common.make_client()
        if warn:
            client.timeout = 5.0  # a login must not hang on a controller that is away
        body: dict[str, Any] = {"user": user} if user else {}
        if warn:
            body["wait"] = False
        reply = client.call("quota", body)
    except _common.rpc_error_type() as exc:
        if warn:
            return 0
        sys.stderr.write(f"myquota: error: {getattr(exc, 'message', exc)}\n")
        return 1
    sys.stdout.write(format_warnings(reply) if warn else format_quota(reply))
    return 0
