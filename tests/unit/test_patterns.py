"""Filename patterns of --output/--error/--input (slurmstepd's batch expansion rules)."""

from __future__ import annotations

import pytest

from orchestrator.slurm.patterns import default_output, expand, expand_path, remove_slashes

BASE = {"job_id": 42, "user": "alice", "job_name": "myjob", "node": "arc-c001.cluster"}


@pytest.mark.parametrize("pattern,expected", [
    ("slurm-%j.out", "slurm-42.out"),
    ("%x-%u-%4j.log", "myjob-alice-0042.log"),
    ("%12j", "0000000042"),          # widths stop at 10
    ("100%%-%j", "100%-42"),
    ("%N.out", "arc-c001.out"),       # short node name
    ("%J", "42"),                     # the batch script: no step suffix
    ("%s", "batch"),
    ("%a", "4294967294"),             # outside an array, Slurm's NO_VAL
    ("%A", "42"),
    ("%q-%j", "%q-42"),               # unknown letters stay
    ("a\\%j", "a%j"),                 # a backslash turns expansion off
    ("a\\\\b%j", "a\\b%j"),
    ("%t-%n", "0-0"),
])
def test_batch_patterns(pattern: str, expected: str) -> None:
    assert expand(pattern, **BASE) == expected  # type: ignore[arg-type]


def test_array_and_step_patterns() -> None:
    assert expand("out-%A_%a.txt", job_id=45, array_job_id=40, array_task_id=3) == "out-40_3.txt"
    assert expand("%4a", job_id=45, array_job_id=40, array_task_id=3) == "0003"
    assert expand("%J.%s.%t", job_id=42, step_id=0, task_id=5) == "42.0.0.5"


def test_remove_slashes() -> None:
    assert remove_slashes("plain") is None
    assert remove_slashes("a\\b") == "ab"


def test_paths_and_defaults() -> None:
    assert expand_path("slurm-%j.out", "/home/alice", job_id=7) == "/home/alice/slurm-7.out"
    assert expand_path("/tmp/x-%j", "/home/alice", job_id=7) == "/tmp/x-7"
    assert default_output(False) == "slurm-%j.out"
    assert default_output(True) == "slurm-%A_%a.out"
