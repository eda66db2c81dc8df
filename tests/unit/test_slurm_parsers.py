"""Host lists, times, memory sizes and states: the shared parsers every command relies on."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from orchestrator.slurm.hostlist import HostlistError, compress, expand, host_key
from orchestrator.slurm.patterns import expand as expand_pattern
from orchestrator.slurm.states import JobState, parse_job_states
from orchestrator.slurm.timefmt import (
    INFINITE,
    DateSpecError,
    TimeFormatError,
    format_duration,
    format_elapsed,
    format_limit,
    parse_date,
    parse_limit,
)
from orchestrator.slurm.units import SizeFormatError, format_mem, parse_mem, parse_size

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("text,names", [
    ("arc-c001", ["arc-c001"]),
    ("arc-c[001-003]", ["arc-c001", "arc-c002", "arc-c003"]),
    ("arc-c[001-002,005],htc-g001", ["arc-c001", "arc-c002", "arc-c005", "htc-g001"]),
    ("n[8-10]", ["n8", "n9", "n10"]),
    ("a[1-2]b[1-2]", ["a1b1", "a1b2", "a2b1", "a2b2"]),
    ("x,x", ["x"]),
    ("n[1-]", ["n1"]),  # Slurm's _parse_single_range: LO- is LO (scontrol show hostnames 'n[1-]' -> n1)
    ("n[01-,5]", ["n01", "n5"]),
])
def test_expand(text, names):
    assert expand(text) == names


def test_node_name_order():
    # sinfo's _sort_by_node_list and squeue -S N: at the first difference digits compare as numbers
    assert sorted(["n10", "n9", "gpu1", "a10x", "a9x", "n1"], key=host_key) == ["a9x", "a10x", "gpu1", "n1", "n9",
                                                                               "n10"]


@pytest.mark.parametrize("bad", ["arc-c[001-", "arc-c[3-1]", "a[1-x]", "a]1[", "a[[1]]", "a[]", "n[1-3-4]",
                                 "n[-3]", "n[1,,2]"])
def test_expand_rejects_malformed(bad):
    with pytest.raises(HostlistError):
        expand(bad)


@pytest.mark.parametrize("names,text", [
    (["arc-c001", "arc-c002", "arc-c003", "arc-c005"], "arc-c[001-003,005]"),
    (["arc-c002"], "arc-c002"),
    (["htc-g001", "htc-c001", "htc-c002"], "htc-c[001-002],htc-g001"),
    (["login"], "login"),
])
def test_compress(names, text):
    assert compress(names) == text
    assert sorted(expand(compress(names))) == sorted(names)


@pytest.mark.parametrize("text,minutes", [
    ("10", 10), ("10:30", 11), ("1:00:00", 60), ("2-00:00:00", 2880), ("1-2", 1560), ("1-2:30", 1590),
    ("0:59", 1), ("UNLIMITED", INFINITE), ("infinite", INFINITE),
])
def test_parse_limit(text, minutes):
    assert parse_limit(text) == minutes


@pytest.mark.parametrize("bad", ["", "abc", "1:2:3:4", "-5", "1-", "1h"])
def test_parse_limit_rejects(bad):
    with pytest.raises(TimeFormatError):
        parse_limit(bad)


def test_duration_formats_match_squeue_and_sacct():
    assert format_duration(7) == "0:07"
    assert format_duration(3725) == "1:02:05"
    assert format_duration(90061) == "1-01:01:01"
    assert format_limit(60) == "1:00:00"
    assert format_limit(INFINITE) == "UNLIMITED"
    assert format_limit(10) == "10:00"
    assert format_elapsed(7) == "00:00:07"
    assert format_elapsed(90061) == "1-01:01:01"


def test_parse_date_forms():
    now = datetime(2025, 2, 25, 12, 0, 0).timestamp()
    assert parse_date("now", now) == now
    assert parse_date("now+1hour", now) == now + 3600
    assert parse_date("now+90", now) == now + 90
    assert parse_date("2025-02-25T16:43:59", now) == datetime(2025, 2, 25, 16, 43, 59).timestamp()
    assert parse_date("16:00", now) == datetime(2025, 2, 25, 16, 0).timestamp()
    assert parse_date("11:00", now) == datetime(2025, 2, 26, 11, 0).timestamp()
    assert parse_date("tomorrow", now) == datetime(2025, 2, 26).timestamp()
    with pytest.raises(TimeFormatError):
        parse_date("next tuesday", now)
    assert parse_date("now") <= time.time()


_NOW = datetime(2026, 12, 3, 15, 30, 0).timestamp()


@pytest.mark.parametrize("text,when", [
    # forms Slurm 22.05's sbatch --begin accepted side by side with these readings
    ("noon tomorrow", datetime(2026, 12, 4, 12)), ("tomorrowT10:00", datetime(2026, 12, 4, 10)),
    ("10:00 PM", datetime(2026, 12, 3, 22)), ("10:00pm", datetime(2026, 12, 3, 22)),
    ("12:00 am", datetime(2026, 12, 4, 0)), ("now + 1 hour", datetime(2026, 12, 3, 16, 30)),
    ("NOW+1HOUR", datetime(2026, 12, 3, 16, 30)), ("now-5minutes", datetime(2026, 12, 3, 15, 25)),
    ("now+1week", datetime(2026, 12, 10, 15, 30)), ("uts1900000000", datetime.fromtimestamp(1900000000)),
    ("12/25", datetime(2026, 12, 25)), ("122527", datetime(2027, 12, 25)), ("12.25.27", datetime(2027, 12, 25)),
    ("12/25-10:00", datetime(2026, 12, 25, 10)), ("0101", datetime(2027, 1, 1)),
    ("2027-02-30", datetime(2027, 3, 2)), ("today", datetime(2026, 12, 3)), ("midnight", datetime(2026, 12, 4)),
])
def test_parse_date_reads_what_slurm_reads(text, when):
    assert parse_date(text, _NOW) == when.timestamp()


@pytest.mark.parametrize("text,pos", [
    # the positions real Slurm 22.05 printed for each (`Invalid time specification (pos=N): TEXT`)
    ("junk", 0), ("12:99", 3), ("2026-13-01", 5), ("now+abc", 3), ("now+5x", 4), ("25:00", 0), ("13/45", 0),
    ("2026-01-01Tjunk", 11), ("noon junk", 5), ("2027-1-5", 0), ("1:5", 3), ("24:00", 0), ("12:60", 3),
    ("12:30:61", 6), ("now+1h", 4),
])
def test_parse_date_refuses_where_slurm_does(text, pos):
    with pytest.raises(DateSpecError) as exc:
        parse_date(text, _NOW)
    assert str(exc.value) == f"Invalid time specification (pos={pos}): {text}"


def test_parse_date_past_and_nothing():
    # sacct reads -S/-E looking back: a time of day still to come today is today's, not tomorrow's
    assert parse_date("16:00", _NOW, past=True) == datetime(2026, 12, 3, 16).timestamp()
    assert parse_date("16:00", _NOW) == datetime(2026, 12, 3, 16).timestamp()
    assert parse_date("15:00", _NOW, past=True) == datetime(2026, 12, 3, 15).timestamp()
    assert parse_date("15:00", _NOW) == datetime(2026, 12, 4, 15).timestamp()
    assert parse_date("", _NOW) == 0.0 and parse_date("T", _NOW) == 0.0  # Slurm's 0: no time named


@pytest.mark.parametrize("text,mb", [("4G", 4096), ("100", 100), ("1.5G", 1536), ("512K", 1), ("2T", 2097152),
                                     ("380G", 389120), ("8000M", 8000)])
def test_parse_mem(text, mb):
    assert parse_mem(text) == mb


def test_mem_and_size_errors_and_formats():
    with pytest.raises(SizeFormatError):
        parse_mem("lots")
    assert format_mem(8000) == "8000M"
    assert format_mem(4096) == "4G"
    assert parse_size("15G") == 15 * 1024**3
    assert parse_size("5T") == 5 * 1024**4


def test_job_states_accept_long_and_compact_names():
    assert parse_job_states("pd,R") == {JobState.PENDING, JobState.RUNNING}
    assert parse_job_states("all") is None
    assert parse_job_states("CANCELED") == {JobState.CANCELLED}
    with pytest.raises(ValueError):
        parse_job_states("bogus")
    assert JobState.OUT_OF_MEMORY.compact == "OOM"
    assert JobState.TIMEOUT.finished and not JobState.PENDING.finished


@pytest.mark.parametrize("pattern,expected", [
    ("slurm-%j.out", "slurm-42.out"),
    ("%x-%u-%4j.log", "myjob-alice-0042.log"),
    ("out-%A_%a.txt", "out-40_3.txt"),
    ("%N-%n-%t-%s-%J", "arc-c001-1-5-0-42.0"),
    ("100%%-%j", "100%-42"),
    ("a\\%j", "a%j"),
])
def test_filename_patterns(pattern, expected):
    kwargs = dict(job_id=42, user="alice", job_name="myjob", node="arc-c001")
    if "%A" in pattern:
        kwargs.update(array_job_id=40, array_task_id=3)
    if "%t" in pattern:
        kwargs.update(node_index=1, task_id=5, step_id=0)
    assert expand_pattern(pattern, **kwargs) == expected
