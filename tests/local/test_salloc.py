"""salloc on the local-mode scheduler: allocation messages, the command's environment, steps inside, revocation."""

from __future__ import annotations

import re
import time

USER = "mhalice"


def _job_id(stderr: str) -> int:
    m = re.search(r"salloc: Granted job allocation (\d+)", stderr)
    assert m, stderr
    return int(m.group(1))


def test_salloc_runs_the_command_in_the_allocation(local):
    wd = local.workdir(USER)
    cmd = ("echo JOB=$SLURM_JOB_ID NODES=$SLURM_JOB_NODELIST NN=$SLURM_JOB_NUM_NODES TPN=$SLURM_TASKS_PER_NODE "
           "NT=$SLURM_NTASKS NAME=$SLURM_JOB_NAME; srun -l hostname >/dev/null; srun -l bash -c 'echo $SLURM_JOB_ID.$SLURM_STEP_ID'")
    r = local.run(["salloc", "-N2", "-n2", "bash", "-c", cmd], user=USER, cwd=wd)
    assert r.returncode == 0, r.stderr
    job = _job_id(r.stderr)
    lines = r.stderr.splitlines()
    assert f"salloc: Granted job allocation {job}" in lines
    assert not any("are ready for job" in ln for ln in lines)  # as real salloc when nothing had to be readied
    assert lines[-1] == f"salloc: Relinquishing job allocation {job}"
    out = r.stdout.splitlines()
    assert out[0] == f"JOB={job} NODES=node[1-2] NN=2 TPN=1(x2) NT=2 NAME=interactive"
    assert sorted(out[1:]) == [f"0: {job}.1", f"1: {job}.1"]
    info = local.wait(job)
    assert info["state"] == "COMPLETED"
    steps = {s["step_id"]: s for s in local.acct(job)["steps"]}
    assert set(steps) == {"extern", "0", "1"}
    assert steps["1"]["num_tasks"] == 2 and steps["1"]["state"] == "COMPLETED"


def test_salloc_exit_status_becomes_the_jobs(local):
    r = local.run(["salloc", "-n1", "bash", "-c", "exit 4"], user=USER, cwd=local.workdir(USER))
    assert r.returncode == 4
    info = local.wait(_job_id(r.stderr))
    assert info["state"] == "FAILED" and info["exit_code"] == 4


def test_salloc_waits_for_busy_resources(local):
    wd = local.workdir(USER)
    blocker = local.submit("#!/bin/bash\n#SBATCH -p devel -n4\nsleep 4\n", user=USER, cwd=wd)
    local.wait(blocker, states=("RUNNING",))
    start = time.time()
    r = local.run(["salloc", "-p", "devel", "-n1", "true"], user=USER, cwd=wd, timeout=60)
    assert r.returncode == 0, r.stderr
    assert time.time() - start > 1.5
    m = re.search(r"salloc: Pending job allocation (\d+)", r.stderr)
    assert m, r.stderr
    job = m.group(1)
    lines = r.stderr.splitlines()
    i = lines.index(f"salloc: Pending job allocation {job}")
    assert lines[i:i + 4] == [f"salloc: Pending job allocation {job}",
                              f"salloc: job {job} queued and waiting for resources",
                              f"salloc: job {job} has been allocated resources",
                              f"salloc: Granted job allocation {job}"]


def test_srun_reports_queued_when_it_has_to_wait(local):
    wd = local.workdir(USER)
    blocker = local.submit("#!/bin/bash\n#SBATCH -p devel -n4\nsleep 4\n", user=USER, cwd=wd)
    local.wait(blocker, states=("RUNNING",))
    r = local.run(["srun", "-p", "devel", "-n1", "echo", "ran"], user=USER, cwd=wd, timeout=60)
    assert r.returncode == 0 and r.stdout == "ran\n"
    assert re.search(r"^srun: job (\d+) queued and waiting for resources\nsrun: job \1 has been allocated resources$",
                     r.stderr, re.M), r.stderr


def test_salloc_is_revoked_by_scancel(local):
    wd = local.workdir(USER)
    r = local.run(["salloc", "-n1", "bash", "-c", "echo JOB=$SLURM_JOB_ID; scancel $SLURM_JOB_ID; sleep 30; echo survived"],
                  user=USER, cwd=wd, timeout=60)
    job = _job_id(r.stderr)
    assert "survived" not in r.stdout
    assert f"salloc: Job allocation {job} has been revoked." in r.stderr
    assert "Relinquishing" not in r.stderr
    assert local.wait(job)["state"] == "CANCELLED"


def test_salloc_errors(local):
    r = local.run(["salloc", "-p", "nosuch", "true"], user=USER)
    assert r.returncode == 1
    assert "salloc: error: invalid partition specified: nosuch" in r.stderr
    assert "salloc: error: Job submit/allocate failed: Invalid partition name specified" in r.stderr
    r = local.run(["salloc", "-n1", "no-such-command-x"], user=USER, cwd=local.workdir(USER))
    assert r.returncode == 1
    assert 'salloc: error: _fork_command: Unable to find command "no-such-command-x"' in r.stderr
    assert "salloc: Relinquishing job allocation" in r.stderr
    # 22.05 side by side: option errors exit 255, a bad number 1
    for args, rc, text in ((["--bogus"], 255, "salloc: unrecognized option '--bogus'\nTry \"salloc --help\" for more "
                                                  "information\n"),
                           (["-t", "abc"], 255, "salloc: error: Invalid --time specification\n"),
                           (["--signal=FOO"], 255, "salloc: error: Invalid --signal specification\n"),
                           (["-c", "abc"], 1, 'salloc: error: Invalid numeric value "abc" for --cpus-per-task.\n')):
        r = local.run(["salloc", *args, "true"], user=USER)
        assert (r.returncode, r.stderr) == (rc, text), args


def test_tasks_inside_salloc_get_the_variables_slurmstepd_adds(local):
    cmd = "srun -l -n1 bash -c 'echo U=$SLURM_JOB_USER L=$SLURM_LABELIO S=${SLURM_JOB_START_TIME-unset}'"
    r = local.run(["salloc", "-n1", "bash", "-c", cmd], user=USER, cwd=local.workdir(USER))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"0: U={USER} L=1 S=unset"  # no SLURM_JOB_START_TIME in 22.05


def test_salloc_lines_as_real_slurm(local):
    """An immediate grant prints only 'Granted' and 'Relinquishing' (no 'Nodes ... are ready': that is for nodes
    that had to be readied), -Q prints nothing, --no-shell only 'Granted'."""
    wd = local.workdir(USER)
    r = local.run(["salloc", "-n1", "-J", "named", "true"], user=USER, cwd=wd)
    assert r.returncode == 0, r.stderr
    job = _job_id(r.stderr)
    assert r.stderr.splitlines() == [f"salloc: Granted job allocation {job}",
                                     f"salloc: Relinquishing job allocation {job}"]
    r = local.run(["salloc", "-Q", "-n1", "true"], user=USER, cwd=wd)
    assert (r.returncode, r.stderr) == (0, "")
    r = local.run(["salloc", "--no-shell", "-n1"], user=USER, cwd=wd)
    assert r.returncode == 0
    job = _job_id(r.stderr)
    assert r.stderr.splitlines() == [f"salloc: Granted job allocation {job}"]
    local.run(["scancel", str(job)], user=USER)


def test_salloc_exports_memory_only_when_asked_for(local):
    show = "echo ${SLURM_MEM_PER_CPU-unset} ${SLURM_MEM_PER_NODE-unset}"
    wd = local.workdir(USER)
    r = local.run(["salloc", "-Q", "-n1", "bash", "-c", show], user=USER, cwd=wd)
    assert r.stdout.strip() == "unset unset", r.stderr
    r = local.run(["salloc", "-Q", "-n1", "--mem-per-cpu=200", "bash", "-c", show], user=USER, cwd=wd)
    assert r.stdout.strip() == "200 unset", r.stderr
    r = local.run(["salloc", "-Q", "-n1", "--mem=300", "bash", "-c", show], user=USER, cwd=wd)
    assert r.stdout.strip() == "unset 300", r.stderr


def test_salloc_interrupted_while_pending_cancels_its_job(local):
    # slurmctld 22.05: the withdrawn request is `CANCELLED by UID`, with the reason it waited for kept
    wd = local.workdir(USER)
    blocker = local.submit("#!/bin/bash\n#SBATCH -p devel -n4\nsleep 12\n", user=USER, cwd=wd)
    local.wait(blocker, states=("RUNNING",))
    r = local.run(["timeout", "-s", "INT", "2", "salloc", "-p", "devel", "-n1", "true"], user=USER, cwd=wd)
    m = re.search(r"salloc: Pending job allocation (\d+)", r.stderr)
    assert m, r.stderr
    job = int(m.group(1))
    assert r.stderr.splitlines()[-2:] == [f"salloc: Job allocation {job} has been revoked.",
                                          "salloc: Job aborted due to signal"]
    info = local.wait(job, states=("CANCELLED",))
    assert info["reason"] == "Resources"
    r = local.run(["sacct", "-j", str(job), "-X", "-P", "-n", "-o", "State"], user=USER)
    assert r.stdout == f"CANCELLED by {local.run(['id', '-u'], user=USER).stdout.strip()}\n"
    r = local.run(["timeout", "-s", "INT", "2", "srun", "-p", "devel", "-n1", "true"], user=USER, cwd=wd)
    m = re.search(r"srun: job (\d+) queued and waiting for resources", r.stderr)
    assert m, r.stderr
    assert r.stderr.splitlines()[-2:] == [f"srun: Job allocation {m.group(1)} has been revoked",
                                          f"srun: Force Terminated JobId={m.group(1)}"]
    local.run(["scancel", str(blocker)], user=USER)
