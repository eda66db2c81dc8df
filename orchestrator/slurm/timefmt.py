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
    "DateSpecError",
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


class DateSpecError(TimeFormatError):
    """A date Slurm's parse_time() refuses; ``str()`` is the line it prints (``Invalid time
    specification (pos=N): TEXT``), with ``pos`` the offset of the character it stopped at."""

    def __init__(self, text: str, pos: int) -> None:
        super().__init__(f"Invalid time specification (pos={pos}): {text}")
        self.text = text
        self.pos = pos


_UNITS = (("seconds", 1), ("second", 1), ("minutes", 60), ("minute", 60), ("hours", 3600), ("hour", 3600),
          ("days", 86400), ("day", 86400), ("weeks", 604800), ("week", 604800))
_CLOCK_WORDS = (("midnight", 0), ("noon", 12), ("elevenses", 11), ("fika", 15), ("teatime", 16))


def parse_date(text: str, now: float | None = None, past: bool = False) -> float:
    """A ``--begin``/``--deadline``/``StartTime=``/``sacct -S -E`` time as an epoch, read as Slurm's
    parse_time() reads it; 0.0 when the text names no time at all (Slurm's 0).

    Forms (sbatch(1)): ``HH:MM[:SS] [AM|PM]``, ``MMDD[YY]``, ``MM/DD[/YY]``, ``MM.DD[.YY]``,
    ``YYYY-MM-DD[THH:MM[:SS]]``, ``today``, ``tomorrow``, ``midnight``, ``noon``, ``elevenses``,
    ``fika``, ``teatime``, ``now[{+|-}count[seconds|minutes|hours|days|weeks]]`` and ``uts<epoch>``,
    in any case, combined with blanks, ``-`` or ``T`` (``tomorrowT10:00``, ``12/25-10:00``). A time
    without a date is its next occurrence (its last with ``past``, as sacct reads -S/-E); a date
    without a year, the next (or last) such day. Out-of-range days roll over as mktime(3) rolls them
    (``2027-02-30`` is 2 March). Refused text raises DateSpecError at the position Slurm names.
    """
    now = _time.time() if now is None else now
    if text[:3].lower() == "uts":
        digits = text[3:]
        if not digits.isdigit() or int(digits) < 1000000:
            raise DateSpecError(text, 0)
        return float(int(digits))
    return _DateReader(text, now, past).read()


class _DateReader:
    """One parse_time() walk over ``text``: the date and clock fields it has set so far."""

    def __init__(self, text: str, now: float, past: bool) -> None:
        self.s = text
        self.now = now
        self.past = past
        self.tm = _time.localtime(now)
        self.hour = self.minute = -1
        self.second = 0
        self.year = self.month = self.mday = -1  # year as tm_year (since 1900), month from 0

    def at(self, i: int) -> str:
        return self.s[i] if 0 <= i < len(self.s) else ""

    def digit(self, i: int) -> bool:
        return "0" <= self.at(i) <= "9"

    def word(self, i: int, w: str) -> bool:
        return self.s[i:i + len(w)].lower() == w

    def set_date(self, epoch: float) -> None:
        tm = _time.localtime(epoch)
        self.year, self.month, self.mday = tm.tm_year - 1900, tm.tm_mon - 1, tm.tm_mday

    def read(self) -> float:
        pos = 0
        while pos < len(self.s) and self.s[pos] != "\n":
            c = self.s[pos]
            if c in " \t-T":
                pos += 1
                continue
            pos = self.token(pos) + 1
        if pos > len(self.s):  # Slurm's "now" arithmetic runs past the text's end: it reads garbage there
            raise DateSpecError(self.s, pos)
        return self.result(pos)

    def token(self, pos: int) -> int:
        """Reads the token at ``pos``; returns the position of its last character."""
        if self.word(pos, "today"):
            self.set_date(self.now)
            return pos + 4
        if self.word(pos, "tomorrow"):
            self.set_date(self.now + 86400)
            return pos + 7
        for w, hour in _CLOCK_WORDS:
            if self.word(pos, w):
                self.hour, self.minute, self.second = hour, 0, 0
                return pos + len(w) - 1
        if self.word(pos, "now"):
            return self.relative(pos)
        if not self.digit(pos):
            raise DateSpecError(self.s, pos)
        if self.at(pos + 1) == ":" or self.at(pos + 2) == ":":
            return self.clock(pos)
        return self.date(pos)

    def relative(self, pos: int) -> int:
        """``now[{+|-}count[unit]]``, with Slurm's arithmetic for where it goes on from."""
        delta = 0
        i = pos + 3
        while True:
            c = self.at(i)
            if c in ("+", "-"):
                pos += i
                pos, delta = self.count(pos)
                delta = -delta if c == "-" else delta
                break
            if c in (" ", "\t"):
                i += 1
                continue
            if c in ("", "\n"):
                pos += i - 1
                break
            raise DateSpecError(self.s, pos + i)
        moment = _time.localtime(self.now + delta)
        self.set_date(self.now + delta)
        self.hour, self.minute, self.second = moment.tm_hour, moment.tm_min, moment.tm_sec
        return pos

    def count(self, pos: int) -> tuple[int, int]:
        """The count and unit after a ``+``/``-`` at ``pos``: (last position, seconds)."""
        cnt = 0
        digits = 0
        off = pos + 1
        while self.at(off) not in ("", "\n"):
            c = self.at(off)
            if c in (" ", "\t"):
                off += 1
                continue
            unit = next(((w, m) for w, m in _UNITS if self.word(off, w)), None)
            if unit is not None:
                off += len(unit[0])
                cnt *= unit[1]
                break
            if not self.digit(off):
                raise DateSpecError(self.s, off - 1)
            cnt = cnt * 10 + int(c)
            digits += 1
            off += 1
        if not digits:
            raise DateSpecError(self.s, pos)
        return off - 1, cnt

    def two(self, off: int, first_required: bool = True) -> tuple[int, int]:
        """One or two digits at ``off`` (the first checked when ``first_required``): (value, next)."""
        if first_required and not self.digit(off):
            raise DateSpecError(self.s, off)
        value = ord(self.at(off) or "0") - 48
        off += 1
        if self.digit(off):
            value = value * 10 + int(self.at(off))
            off += 1
        return value, off

    def clock(self, off: int) -> int:
        """``HH:MM[:SS] [AM|PM]``."""
        hour, off = self.two(off)
        if hour > 23:
            raise DateSpecError(self.s, off - 2)
        if self.at(off) != ":":
            raise DateSpecError(self.s, off)
        minute, off = self.exactly_two(off + 1, 59)
        second = 0
        if self.at(off) == ":":
            second, off = self.exactly_two(off + 1, 59)
        while self.at(off) in (" ", "\t"):
            off += 1
        if self.word(off, "pm"):
            hour += 12
            if hour > 23:
                if hour != 24:
                    raise DateSpecError(self.s, off)
                hour = 12
            off += 2
        elif self.word(off, "am"):
            if hour > 11:
                if hour != 12:
                    raise DateSpecError(self.s, off)
                hour = 0
            off += 2
        self.hour, self.minute, self.second = hour, minute, second
        return off - 1

    def exactly_two(self, off: int, top: int) -> tuple[int, int]:
        for i in (off, off + 1):
            if not self.digit(i):
                raise DateSpecError(self.s, i)
        value = int(self.s[off:off + 2])
        if value > top:
            raise DateSpecError(self.s, off)
        return value, off + 2

    def date(self, off: int) -> int:
        """``YYYY-MM-DD``, or ``MM[/.]DD[/.][YY]``."""
        if len(self.s) >= off + 7 and self.at(off + 4) == "-" and self.at(off + 7) == "-":
            for i in range(off, off + 4):
                if not self.digit(i):
                    raise DateSpecError(self.s, i)
            year = int(self.s[off:off + 4])
            month, off = self.two(off + 5, first_required=False)
            if not 1 <= month <= 12:
                raise DateSpecError(self.s, off - 2)
            day, off = self.two(off + 1)
            if not 1 <= day <= 31:
                raise DateSpecError(self.s, off - 2)
            self.year, self.month, self.mday = year - 1900, month - 1, day
            return off - 1
        month, off = self.two(off, first_required=False)
        if not 1 <= month <= 12:
            raise DateSpecError(self.s, off - 2)
        if self.at(off) in (".", "/"):
            off += 1
        day, off = self.two(off)
        if not 1 <= day <= 31:
            raise DateSpecError(self.s, off - 2)
        if self.at(off) in (".", "/"):
            off += 1
        year = 0
        if self.digit(off):
            if not self.digit(off + 1):
                raise DateSpecError(self.s, off + 1)
            year = int(self.s[off:off + 2])
            off += 2
        self.month, self.mday = month - 1, day
        if year:  # "00" counts as no year, as in Slurm
            self.year = year + 100
        return off - 1

    def result(self, pos: int) -> float:
        tm = self.tm
        if self.hour == -1 and self.month == -1:
            return 0.0  # nothing specified
        if self.hour == -1:
            self.hour = self.minute = 0  # a date alone is its midnight
        elif self.month == -1:  # a time alone: today if still to come (or with past), else tomorrow
            later = (self.hour, self.minute) > (tm.tm_hour, tm.tm_min)
            self.set_date(self.now if self.past or later else self.now + 86400)
        if self.year == -1:
            cur = tm.tm_year - 1900
            if self.past:
                self.year = cur - 1 if self.month > tm.tm_mon - 1 else cur
            else:
                ahead = (self.month, self.mday, self.hour, self.minute) > \
                    (tm.tm_mon - 1, tm.tm_mday, tm.tm_hour, tm.tm_min)
                self.year = cur if ahead else cur + 1
        try:
            return float(_time.mktime((self.year + 1900, self.month + 1, self.mday, self.hour, self.minute,
                                       self.second, 0, 0, -1)))
        except (OverflowError, ValueError):
            raise DateSpecError(self.s, pos) from None
