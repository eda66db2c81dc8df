"""squeue -s, scontrol show step and sacct's step lines for a batch job with srun steps, as Slurm 22.05
(with PrologFlags=Contain, so every job has an extern step) prints them."""

from __future__ import annotations

import re
import time

USER = "mhalice"


def _wait_for(local, cmd: list[str], text: str, timeout: float = 15) -> str:
    deadline = time.time() + timeout
    out = ""
    while time.time() < deadline:
        out = local.run(cmd, user=USER).stdout
        if text in out:
            return out
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not in {cmd} output: {out!r}")


def test_running_batch_job_shows_its_batch_and_extern_steps(local):
    wd = local.workdir(USER)
    job = local.submit("#!/bin/bash\n#SBATCH -J myjob\nsrun -n1 --job-name=sstep sleep 30\n", user=USER, cwd=wd)
    try:
        _wait_for(local, ["squeue", "-s", "-h", "-o", "%i"], f"{job}.0\n")
        r = local.run(["squeue", "-s", "-h", "-j", str(job), "-o", "%i %j %A %N %P"], user=USER)
        assert r.stdout.splitlines() == [f"{job}.0 sstep 1 node1 short", f"{job}.batch batch 1 node1 short",
                                         f"{job}.extern extern 1 node1 short"]
        # an empty sort list keeps the controller's order: extern, batch, then the numbered steps
        r = local.run(["squeue", "-s", "-h", "-S", "", "-j", str(job), "-o", "%i"], user=USER)
        assert r.stdout.split() == [f"{job}.extern", f"{job}.batch", f"{job}.0"]
        r = local.run(["squeue", f"--steps={job}.batch", "-h", "-o", "%i"], user=USER)
        assert r.stdout.split() == [f"{job}.0"]  # Slurm reads "batch" as step 0
        r = local.run(["squeue", "-s", "-h", "-j", str(job), "-O", "stepid:10,numcpus:4,numtasks:4"], user=USER)
        assert r.stdout.splitlines() == [f"{f'{job}.0':<10}1   1   ", f"{f'{job}.batch':<10}0   1   ",
                                         f"{f'{job}.extern':<10}0   1   "]

        r = local.run(["scontrol", "show", "step", str(job)], user=USER)
        assert r.returncode == 0
        records = r.stdout.split("\n\n")
        assert [rec.split()[0] for rec in records if rec] == [f"StepId={job}.extern", f"StepId={job}.batch",
                                                             f"StepId={job}.0"]
        start = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"
        assert re.fullmatch(
            rf"StepId={job}\.batch UserId=31001 StartTime={start} TimeLimit=UNLIMITED\n"
            r"   State=RUNNING Partition=short NodeList=node1\n"
            r"   Nodes=1 CPUs=0 Tasks=1 Name=batch Network=\(null\)\n"
            r"   TRES=\(null\)\n"
            r"   ResvPorts=\(null\)\n"
            r"   CPUFreqReq=Default\n"
            r"   SrunHost:Pid=\(null\):0", records[1]), records[1]
        assert re.fullmatch(
            rf"StepId={job}\.0 UserId=31001 StartTime={start} TimeLimit=UNLIMITED\n"
            r"   State=RUNNING Partition=short NodeList=node1\n"
            r"   Nodes=1 CPUs=1 Tasks=1 Name=sstep Network=\(null\)\n"
            r"   TRES=cpu=1,mem=100M,node=1\n"
            r"   ResvPorts=\(null\)\n"
            r"   CPUFreqReq=Default Dist=Cyclic\n"
            r"   SrunHost:Pid=\S+:\d+", records[2]), records[2]
        r = local.run(["scontrol", "show", "step", f"{job}.batch"], user=USER)
        assert r.stdout.startswith(f"StepId={job}.0 ") and r.stdout.count("StepId=") == 1
    finally:
        local.run(["scancel", str(job)], user=USER)
    local.wait(job)
    time.sleep(0.3)
    r = local.run(["scontrol", "show", "step", str(job)], user=USER)
    assert (r.returncode, r.stdout) == (1, f"Job step {job}. not found\n")
    r = local.run(["sacct", "-j", str(job), "-P", "-n", "-o", "JobID,JobName,State,ExitCode,DerivedExitCode"],
                  user=USER)
    # the job line of a job the controller ended keeps exit code 0:0; its killed steps show the signal
    assert r.stdout.splitlines() == [f"{job}|myjob|CANCELLED by 31001|0:0|0:0", f"{job}.batch|batch|CANCELLED|0:15|",
                                     f"{job}.extern|extern|COMPLETED|0:0|", f"{job}.0|sstep|CANCELLED|0:15|"]


def test_derived_exit_code_is_the_worst_srun_step(local):
    wd = local.workdir(USER)
    job = local.submit("#!/bin/bash\nsrun -n1 sh -c 'exit 1'\nsrun -n1 true\nexit 5\n", user=USER, cwd=wd)
    assert local.wait(job)["state"] == "FAILED"
    r = local.run(["sacct", "-j", str(job), "-X", "-P", "-n", "-o", "ExitCode,DerivedExitCode"], user=USER)
    assert r.stdout == "5:0|1:0\n"  # the batch script's own status is not a step's
    r = local.run(["scontrol", "-d", "show", "job", str(job)], user=USER)
    assert "   Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=5:0\n   DerivedExitCode=1:0\n" in r.stdout
    r = local.run(["squeue", "-h", "-t", "all", "-j", str(job), "-O", "derivedec:6,exit_code:6"], user=USER)
    assert r.stdout == "256   1280  \n"  # squeue prints both as wait statuses
    job = local.submit("#!/bin/bash\nsrun -n1 sh -c 'kill -9 $$'\nexit 0\n", user=USER, cwd=wd)
    assert local.wait(job)["state"] == "COMPLETED"
    r = local.run(["sacct", "-j", str(job), "-X", "-P", "-n", "-o", "ExitCode,DerivedExitCode"], user=USER)
    assert r.stdout == "0:0|0:9\n"
    r = local.run(["sacct", "-j", f"{job}.0", "-P", "-n", "-o", "JobID,State,ExitCode"], user=USER)
    assert r.stdout == f"{job}.0|CANCELLED|0:9\n"  # a step killed by a signal is CANCELLED, not FAILED
