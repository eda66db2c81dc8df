"""Memory and size units as Slurm reads and prints them (``--mem=4G``, ``ReqMem=8000M``).

Everything inside minihpc counts memory in MiB ("MB" in Slurm's words), as slurmctld does.
"""

from __future__ import annotations

import re

__all__ = ["SizeFormatError", "format_mem", "format_size", "parse_mem", "parse_size"]


class SizeFormatError(ValueError):
    """A memory or size string that Slurm would reject."""


_MEM_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMGTP]?)(?:B|iB)?$", re.IGNORECASE)
_MB_FACTOR = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024**2, "P": 1024**3, "": 1}


def parse_mem(text: str) -> int:
    """Parse ``--mem``/``--mem-per-cpu``: a number with an optional K/M/G/T suffix; MB by default."""
    m = _MEM_RE.match(text.strip())
    if not m:
        raise SizeFormatError(f"invalid memory constraint: {text}")
    value = float(m.group(1)) * _MB_FACTOR[m.group(2).upper()]
    return int(-(-value // 1))  # round up to whole MB


def format_mem(mb: int | float) -> str:
    """Memory in Slurm's compact form: ``8000M``, ``4G``, ``380000M`` (exact units only)."""
    mb = int(mb)
    if mb and mb % (1024 * 1024) == 0:
        return f"{mb // (1024 * 1024)}T"
    if mb and mb % 1024 == 0:
        return f"{mb // 1024}G"
    return f"{mb}M"


_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMGTP]?)(?:B|iB)?$", re.IGNORECASE)
_BYTES_FACTOR = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}


def parse_size(text: str | int) -> int:
    """Parse a storage size (``15G``, ``5T``, ``512M``, plain bytes) into bytes."""
    if isinstance(text, int):
        return text
    m = _SIZE_RE.match(str(text).strip())
    if not m:
        raise SizeFormatError(f"invalid size: {text}")
    return int(float(m.group(1)) * _BYTES_FACTOR[m.group(2).upper()])


def format_size(nbytes: int | float) -> str:
    """Human size with one decimal, powers of 1024: ``1.5G``, ``812.0K``, ``0``."""
    n = float(nbytes)
    for unit in ("", "K", "M", "G", "T", "P"):
        if abs(n) < 1024 or unit == "P":
            return f"{int(n)}" if unit == "" else f"{n:.1f}{unit}"
        n /= 1024
    return f"{n:.1f}P"
