"""Per-job $TMPDIR and $SCRATCH: made for the user (0700) before the job starts, gone however it ends."""

from __future__ import annotations

import os
import pwd
import time
from pathlib import Path
from typing import Any

import pytest

USER = "mhalice"

SCRIPT = """#!/bin/bash
echo "TMPDIR=$TMPDIR"
echo "SCRATCH=$SCRATCH"
echo "RUN=${SLURM_RESTART_COUNT:-0} BEFORE=$( (ls -A "$TMPDIR"; ls -A "$SCRATCH") | tr -d '\\n')"
echo "MODES=$(stat -c '%U:%a' "$TMPDIR" "$SCRATCH" | tr '\\n' ' ')"
touch "$TMPDIR/file" "$SCRATCH/file"
echo READY
"""


def start(local: Any, tail: str, *args: str) -> tuple[int, Path]:
    wd = local.workdir(USER)
    job = local.submit(SCRIPT + tail, *args, user=USER, cwd=wd)
    return job, wd / f"slurm-{job}.out"


def wait_text(path: Path, text: str, timeout: float = 20) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and text in path.read_text():
            return path.read_text()
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not in {path}: {path.read_text() if path.exists() else '(missing)'}")


def dirs_of(output: str) -> tuple[Path, Path]:
    values = dict(line.split("=", 1) for line in output.splitlines() if line.startswith(("TMPDIR=", "SCRATCH=")))
    return Path(values["TMPDIR"]), Path(values["SCRATCH"])


def check_made_for_user(local: Any, job: int, output: str) -> tuple[Path, Path]:
    tmpdir, scratch = dirs_of(output)
    assert tmpdir.name == f"slurm-{job}" and tmpdir.parent.name == "tmp"  # node-local
    assert scratch.parts[-2:] == (USER, str(job))  # <scratch>/<user>/<jobid>, shared
    assert scratch.parent.parent == local.base / "scratch"
    assert f"MODES={USER}:700 {USER}:700" in output
    assert "RUN=0 BEFORE=\n" in output  # nothing in them when the job starts
    return tmpdir, scratch


def wait_gone(*paths: Path, timeout: float = 15) -> None:
    deadline = time.time() + timeout
    while any(p.exists() for p in paths):
        assert time.time() < deadline, f"still there: {[str(p) for p in paths if p.exists()]}"
        time.sleep(0.1)


@pytest.mark.parametrize(("tail", "state"), [("exit 0\n", "COMPLETED"), ("exit 2\n", "FAILED")])
def test_dirs_removed_when_job_ends_by_itself(local, tail, state):
    job, out = start(local, tail)
    assert local.wait(job)["state"] == state
    tmpdir, scratch = check_made_for_user(local, job, out.read_text())
    wait_gone(tmpdir, scratch, timeout=2)
    assert scratch.parent.exists()  # the user's scratch folder stays, only the job's goes


def test_dirs_removed_when_job_is_cancelled(local):
    job, out = start(local, "sleep 120\n")
    text = wait_text(out, "READY")
    tmpdir, scratch = check_made_for_user(local, job, text)
    assert (tmpdir / "file").exists() and (scratch / "file").exists()
    r = local.run(["scancel", str(job)], user=USER)
    assert r.returncode == 0, r.stderr
    assert local.wait(job)["state"] == "CANCELLED"
    wait_gone(tmpdir, scratch)


def test_dirs_removed_on_node_failure(local):
    job, out = start(local, "sleep 120\n", "--no-requeue")
    text = wait_text(out, "READY")
    tmpdir, scratch = check_made_for_user(local, job, text)
    node = str(local.job(job)["nodes"])
    local.cluster.call("update_node", {"nodes": node, "state": "DOWN", "reason": "jobdirs test"})
    try:
        assert local.wait(job)["state"] == "NODE_FAIL"
        wait_gone(tmpdir, scratch)
    finally:
        local.cluster.call("update_node", {"nodes": node, "state": "RESUME"})


def test_requeued_job_gets_fresh_dirs(local):
    job, out = start(local, "sleep 120\n", "--open-mode=append")
    text = wait_text(out, "READY")
    first_tmp, first_scratch = check_made_for_user(local, job, text)
    local.cluster.call("requeue", {"job_ids": [job]})
    deadline = time.time() + 30
    while out.read_text().count("READY") < 2:
        assert time.time() < deadline, out.read_text()
        time.sleep(0.1)
    second = out.read_text().split("RUN=1 ")[1]
    assert second.startswith("BEFORE=\n")  # the files of run 0 are gone: fresh directories
    tmpdir, scratch = dirs_of(out.read_text().split("RUN=0 ")[1])
    assert scratch == first_scratch and tmpdir.name == first_tmp.name
    local.cluster.call("signal", {"job_ids": [job]})
    local.wait(job)
    wait_gone(first_tmp, first_scratch, tmpdir, scratch)


def test_dirs_removed_when_the_node_daemon_died_with_the_job(local):
    """The daemon is killed, the job dies meanwhile; the restarted daemon cleans up."""
    job, out = start(local, "sleep 120\n", "--no-requeue")
    text = wait_text(out, "READY")
    tmpdir, scratch = check_made_for_user(local, job, text)
    node = str(local.job(job)["nodes"])
    local.cluster.stop_process(node, sig=9)
    uid = pwd.getpwnam(USER).pw_uid
    killed = []
    for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read()
            if f"SLURM_JOB_ID={job}\0".encode() in env and os.stat(f"/proc/{pid}").st_uid == uid:
                os.kill(pid, 9)
                killed.append(pid)
        except OSError:
            continue
    assert killed
    deadline = time.time() + 5
    while any(os.path.exists(f"/proc/{p}") for p in killed) and time.time() < deadline:
        time.sleep(0.1)  # reaped by init: the restarted daemon finds the job gone, not running
    assert tmpdir.exists()
    local.cluster.restart(node)
    try:
        wait_gone(tmpdir, scratch, timeout=20)
        assert local.wait(job, timeout=30)["state"] in ("NODE_FAIL", "FAILED", "CANCELLED")
    finally:
        local.cluster.call("update_node", {"nodes": node, "state": "RESUME"})


@pytest.mark.slow
def test_dirs_removed_on_timeout(local):
    job, out = start(local, "sleep 300\n", "-t", "1")
    text = wait_text(out, "READY")
    tmpdir, scratch = check_made_for_user(local, job, text)
    assert local.wait(job, timeout=100)["state"] == "TIMEOUT"
    wait_gone(tmpdir, scratch)
