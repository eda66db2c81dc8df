"""The process table from /proc: which processes belong to a job, and what they use.

Like Slurm's proctrack/linuxproc and jobacct_gather/linux: a job's processes are
its session (each job and step starts a new one), and its memory is the sum of
their resident sets. One scan per tick serves every job on the node.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterable
from dataclasses import dataclass

log = logging.getLogger(__name__)

__all__ = ["ProcInfo", "kill_sessions", "scan"]

_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class ProcInfo:
    pid: int
    ppid: int
    pgid: int
    sid: int
    rss_kb: int
    cpu_seconds: float  # user + system of the process itself


def scan() -> dict[int, list[ProcInfo]]:
    """Processes grouped by session id."""
    out: dict[int, list[ProcInfo]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return out
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        try:
            rest = data[data.rindex(b")") + 2:].split()
            info = ProcInfo(
                pid=int(entry),
                ppid=int(rest[1]),
                pgid=int(rest[2]),
                sid=int(rest[3]),
                rss_kb=int(rest[21]) * _PAGE_KB,
                cpu_seconds=(int(rest[11]) + int(rest[12])) / _TICKS,
            )
        except (ValueError, IndexError):
            continue
        out.setdefault(info.sid, []).append(info)
    return out


def kill_sessions(sids: Iterable[int]) -> None:
    """SIGKILL every process left in these sessions, whatever its process group (one scan)."""
    table = scan()
    for sid in sids:
        for p in table.get(sid, []):
            try:
                os.kill(p.pid, signal.SIGKILL)
            except OSError:
                pass
