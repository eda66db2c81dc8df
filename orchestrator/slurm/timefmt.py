"""Slurm's time formats: limits (``-t``), durations, timestamps and ``--begin`` dates.

Every command and the scheduler parse and print times here, so `squeue`,
`sacct`, `scontrol` and `sinfo` agree on ``1-02:03:04`` to the character.
"""

from __future__ import annotations

import time as _time

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re

# re and datetime are imported where parsing needs them: squeue and sinfo only print durations,
# and importing both costs every such command several milliseconds.

__all__ = [
    "INFINITE",
    "TimeFormatError",
    "format_duration",
    "format_elapsed",
    "format_limit",
    "format_limit_long",
    "format_timestamp",
    "parse_date",
    "parse_limit",
]

INFINITE = -1
"""A time limit of UNLIMITED, in minutes (Slurm's INFINITE)."""


class TimeFormatError(ValueError):
    """A time string that Slurm would reject."""


_LIMIT_RE: re.Pattern[str] | None = None


def parse_limit(text: str) -> int:
    """Parse a ``--time`` value into whole minutes (rounded up), or INFINITE.

    Accepts ``M``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M`` and ``D-H:M:S`` as in sbatch(1),
    plus ``UNLIMITED``/``INFINITE``.
    """
    global _LIMIT_RE
    s = text.strip()
    if s.upper() in ("UNLIMITED", "INFINITE", "-1"):
        return INFINITE
    if _LIMIT_RE is None:
        import re

        _LIMIT_RE = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")
    m = _LIMIT_RE.match(s)
    if not m:
        raise TimeFormatError(f"Invalid time limit specification: {text}")
    days_s, a, b, c = m.groups()
    if days_s is not None:
        hours = int(a)
        mins = int(b) if b is not None else 0
        secs = int(c) if c is not None else 0
        total = ((int(days_s) * 24 + hours) * 60 + mins) * 60 + secs
    elif c is not None:
        total = (int(a) * 60 + int(b or 0)) * 60 + int(c)
    elif b is not None:
        total = int(a) * 60 + int(b)
    else:
        total = int(a) * 60
    return (total + 59) // 60


YEAR_SECONDS = 365 * 24 * 3600


def format_duration(seconds: int | float | None, check: bool = True) -> str:
    """Squeue's TIME column: ``M:SS``, ``H:MM:SS`` or ``D-HH:MM:SS``; INVALID out of range, as Slurm."""
    if seconds is None:
        return "INVALID"
    s = int(seconds)
    if check and (s < 0 or s > YEAR_SECONDS):
        return "INVALID"
    s = max(0, s)
    days, rem = divmod(s, 86400)
    hours, rem = divmod(rem, 3600)
    mins, secs = divmod(rem, 60)
    if days:
        return f"{days}-{hours:02d}:{mins:02d}:{secs:02d}"
    if hours:
        return f"{hours}:{mins:02d}:{secs:02d}"
    return f"{mins}:{secs:02d}"


def format_limit(minutes: int | None) -> str:
    """A time limit as squeue and sinfo print it (``UNLIMITED`` for INFINITE)."""
    if minutes is None or minutes < 0:
        return "UNLIMITED"
    return format_duration(minutes * 60, check=False)


def format_elapsed(seconds: int | float | None) -> str:
    """Sacct's Elapsed and scontrol's RunTime: ``HH:MM:SS`` or ``D-HH:MM:SS``."""
    s = int(seconds or 0)
    if s < 0:
        return "INVALID"
    days, rem = divmod(s, 86400)
    hours, rem = divmod(rem, 3600)
    mins, secs = divmod(rem, 60)
    if days:
        return f"{days}-{hours:02d}:{mins:02d}:{secs:02d}"
    return f"{hours:02d}:{mins:02d}:{secs:02d}"


def format_limit_long(minutes: int | None) -> str:
    """A time limit as scontrol and sacct print it: ``UNLIMITED`` or ``HH:MM:SS``."""
    if minutes is None or minutes < 0:
        return "UNLIMITED"
    return format_elapsed(minutes * 60)


def format_timestamp(epoch: float | int | None, unknown: str = "Unknown") -> str:
    """ISO-like local time as Slurm prints it: ``2025-02-25T16:43:59``."""
    if not epoch:
        return unknown
    return _time.strftime("%Y-%m-%dT%H:%M:%S", _time.localtime(int(epoch)))


_REL_RE = r"^now(?:\+(\d+)(seconds|second|minutes|minute|hours|hour|days|day|weeks|week|s|m|h|d|w)?)?$"
_UNIT_SECS = {"s": 1, "second": 1, "seconds": 1, "m": 60, "minute": 60, "minutes": 60,
              "h": 3600, "hour": 3600, "hours": 3600, "d": 86400, "day": 86400, "days": 86400,
              "w": 604800, "week": 604800, "weeks": 604800}


def parse_date(text: str, now: float | None = None) -> float:
    """Parse a ``--begin``/``-S``/``-E`` time into an epoch.

    Forms (sbatch(1)): ``now[+N[units]]``, ``HH:MM[:SS]`` (next occurrence),
    ``YYYY-MM-DD[THH:MM[:SS]]``, ``MM/DD[/YY]``, ``midnight``, ``noon``, ``teatime``,
    ``today``, ``tomorrow``.
    """
    import re
    from datetime import datetime, timedelta

    now = _time.time() if now is None else now
    s = text.strip().lower()
    base = datetime.fromtimestamp(now)
    m = re.match(_REL_RE, s)
    if m:
        n, unit = m.groups()
        if n is None:
            return float(int(now))
        return float(int(now) + int(n) * _UNIT_SECS[unit or "s"])
    today = base.replace(hour=0, minute=0, second=0, microsecond=0)
    named = {"today": today, "midnight": today + timedelta(days=1),
             "tomorrow": today + timedelta(days=1)}
    if s in named:
        return named[s].timestamp()
    if s in ("noon", "teatime", "fika", "elevenses"):
        hour = {"noon": 12, "teatime": 16, "fika": 15, "elevenses": 11}[s]
        t = today.replace(hour=hour)
        if t.timestamp() <= now:
            t += timedelta(days=1)
        return t.timestamp()
    m = re.match(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$", s)
    if m:
        hh, mm, ss = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
        if hh > 23 or mm > 59 or ss > 59:
            raise TimeFormatError(f"Invalid time specification: {text}")
        t = today.replace(hour=hh, minute=mm, second=ss)
        if t.timestamp() <= now:
            t += timedelta(days=1)
        return t.timestamp()
    m = re.match(r"^(\d{4})-(\d{2})-(\d{2})(?:t(\d{1,2}):(\d{2})(?::(\d{2}))?)?$", s)
    if m:
        y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
        hh, mm, ss = int(m.group(4) or 0), int(m.group(5) or 0), int(m.group(6) or 0)
        try:
            return datetime(y, mo, d, hh, mm, ss).timestamp()
        except ValueError as exc:
            raise TimeFormatError(f"Invalid time specification: {text}") from exc
    m = re.match(r"^(\d{1,2})/(\d{1,2})(?:/(\d{2,4}))?$", s)
    if m:
        mo, d = int(m.group(1)), int(m.group(2))
        y = int(m.group(3)) if m.group(3) else base.year
        if y < 100:
            y += 2000
        try:
            return datetime(y, mo, d).timestamp()
        except ValueError as exc:
            raise TimeFormatError(f"Invalid time specification: {text}") from exc
    raise TimeFormatError(f"Invalid time specification: {text}")
