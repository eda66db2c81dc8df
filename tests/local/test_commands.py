"""The user commands end to end on the local-mode scheduler: real launcher, real daemons, Slurm's output."""

from __future__ import annotations

import os
import re
import time

USER = "mhalice"
OTHER = "mhbob"
HEADER = "             JOBID PARTITION     NAME     USER ST       TIME  NODES NODELIST(REASON)"


def test_sbatch_squeue_scancel_cycle(local):
    wd = local.workdir(USER)
    r = local.run(["sbatch", "-J", "cyc", "-t", "5", "--wrap", "sleep 60"], user=USER, cwd=wd)
    assert r.returncode == 0, r.stderr
    m = re.fullmatch(r"Submitted batch job (\d+)\n", r.stdout)
    assert m, r.stdout
    job = int(m.group(1))
    local.wait(job, ("RUNNING",))
    r = local.run(["squeue", "-j", str(job)], user=USER)
    lines = r.stdout.splitlines()
    assert lines[0] == HEADER
    assert re.fullmatch(rf" +{job} +short +cyc +{USER[:8]} +R +\d+:\d\d +1 node[12]", lines[1]), lines[1]
    r = local.run(["squeue", "--noheader", "--format=%i|%T", "--states=all", "--name", "cyc"], user=USER)
    assert r.stdout == f"{job}|RUNNING\n"
    r = local.run(["scancel", str(job)], user=USER)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert local.wait(job)["state"] == "CANCELLED"
    r = local.run(["sacct", "-X", "-P", "-n", "-o", "JobID,State", "-j", str(job)], user=USER)
    assert r.stdout == f"{job}|CANCELLED by {local_uid(USER)}\n"


def local_uid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_uid


def test_another_users_job_is_refused(local):
    job = local.submit("#!/bin/sh\nsleep 60\n", "-H", user=USER)
    r = local.run(["scancel", str(job)], user=OTHER)
    assert r.returncode == 210
    assert r.stderr == f"scancel: error: Kill job error on job id {job}: Access/permission denied\n"
    r = local.run(["scontrol", "hold", str(job)], user=OTHER)
    assert r.returncode == 1
    assert r.stderr.startswith(f"Invalid user id for job {job}\n")
    r = local.run(["scancel", str(job)], user=USER)
    assert r.returncode == 0
    assert local.wait(job)["state"] == "CANCELLED"


def test_unknown_jobs_and_bad_input(local):
    assert local.run(["squeue", "-j", "999999"], user=USER).stderr == "slurm_load_jobs error: Invalid job id specified\n"
    assert local.run(["scancel", "999999"], user=USER).returncode == 0
    r = local.run(["sbatch", "-p", "nopart", "--wrap=true"], user=USER)
    assert (r.returncode, r.stderr) == (1, "sbatch: error: invalid partition specified: nopart\n"
                                           "sbatch: error: Batch job submission failed: Invalid partition name specified\n")
    r = local.run(["sbatch", "-p", "short,nopart", "--wrap=true"], user=USER)  # every one of a list must exist
    assert (r.returncode, r.stderr) == (1, "sbatch: error: invalid partition specified: nopart\n"
                                           "sbatch: error: Batch job submission failed: Invalid partition name specified\n")
    r = local.run(["sbatch", "--test-only", "-p", "nopart", "--wrap=true"], user=USER)
    assert (r.returncode, r.stderr) == (1, "sbatch: error: invalid partition specified: nopart\n"
                                           "allocation failure: Invalid partition name specified\n")
    r = local.run(["sbatch", "--foo"], user=USER)
    assert (r.returncode, r.stderr) == (255, "sbatch: unrecognized option '--foo'\nTry \"sbatch --help\" for more information\n")
    r = local.run(["sbatch", "/nonexistent.sh"], user=USER)
    assert (r.returncode, r.stderr) == (1, "sbatch: error: Unable to open file /nonexistent.sh\n")
    r = local.run(["sbatch"], user=USER, input="echo no shebang\n")
    assert r.returncode == 1 and "This does not look like a batch script" in r.stderr
    # the daemons are still serving
    assert local.run(["sinfo", "-h", "-o", "%P"], user=USER).returncode == 0


def test_script_copied_at_submit_and_directives_applied(local):
    wd = local.workdir(USER)
    script = wd / "job.sh"
    script.write_text("#!/bin/bash\n#SBATCH -J directive\n#SBATCH -o out-%j-%x.txt\necho ran\n")
    r = local.run(["sbatch", "--parsable", str(script)], user=USER, cwd=wd)
    job = int(r.stdout)
    script.unlink()
    assert local.wait(job)["state"] == "COMPLETED"
    assert (wd / f"out-{job}-directive.txt").read_text() == "ran\n"


def test_stdin_and_wrap(local):
    wd = local.workdir(USER)
    r = local.run(["sbatch", "--parsable"], user=USER, cwd=wd, input="#!/bin/sh\necho from-stdin\n")
    job = int(r.stdout)
    assert local.wait(job)["state"] == "COMPLETED"
    assert (wd / f"slurm-{job}.out").read_text() == "from-stdin\n"
    r = local.run(["sbatch", "--parsable", "--wrap", "echo wrapped"], user=USER, cwd=wd)
    job = int(r.stdout)
    assert local.wait(job)["state"] == "COMPLETED"
    assert (wd / f"slurm-{job}.out").read_text() == "wrapped\n"
    r = local.run(["scontrol", "show", "job", str(job)], user=USER)
    assert f"JobId={job} JobName=wrap\n" in r.stdout and "   Command=(null)\n" in r.stdout


def test_sinfo_and_scontrol_views(local):
    r = local.run(["sinfo"], user=USER)
    lines = r.stdout.splitlines()
    assert lines[0] == "PARTITION AVAIL  TIMELIMIT  NODES  STATE NODELIST"
    assert any(re.fullmatch(r"short\*\s+up\s+12:00:00\s+\d\s+\w+ .*node.*", ln) for ln in lines[1:]), lines
    r = local.run(["sinfo", "-N", "-h", "-o", "%N %c %m"], user=USER)
    assert "node1 4 2048" in r.stdout.splitlines()
    r = local.run(["scontrol", "show", "node", "node1"], user=USER)
    assert r.stdout.startswith("NodeName=node1 Arch=x86_64 CoresPerSocket=1 \n")
    r = local.run(["scontrol", "show", "partition", "devel"], user=USER)
    assert "   MaxNodes=UNLIMITED MaxTime=00:10:00 MinNodes=0 LLN=NO MaxCPUsPerNode=UNLIMITED\n" in r.stdout
    r = local.run(["scontrol", "show", "config"], user=USER)
    assert re.search(r"^ClusterName +\= local$", r.stdout, re.M)
    r = local.run(["scontrol", "show", "hostnames", "node[1-2]"], user=USER)
    assert r.stdout == "node1\nnode2\n"


def test_drain_is_root_only_and_shows_in_sinfo(local):
    r = local.run(["scontrol", "update", "NodeName=node2", "State=DRAIN", "Reason=maint"], user=USER)
    assert (r.returncode, r.stderr) == (1, "slurm_update error: Invalid user id\n")
    r = local.run(["scontrol", "update", "NodeName=node2", "State=DRAIN", "Reason=maint"])
    if r.returncode != 0:  # not root: nothing more to check here
        return
    try:
        r = local.run(["sinfo", "-R", "-h"], user=USER)
        assert re.match(r"maint +\S+ +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d node2", r.stdout), r.stdout
        r = local.run(["sinfo", "-h", "-p", "long", "-t", "drain", "-o", "%t %N"], user=USER)
        assert r.stdout.split() in (["drain", "node2"], ["drng", "node2"])
    finally:
        local.run(["scontrol", "update", "NodeName=node2", "State=RESUME"])


def test_hold_release_update(local):
    job = local.submit("#!/bin/sh\ntrue\n", "-H", "-t", "10", user=USER)
    r = local.run(["squeue", "-h", "-o", "%i %t %r %l", "-j", str(job)], user=USER)
    assert r.stdout == f"{job} PD JobHeldUser 10:00\n"
    assert local.run(["scontrol", "update", f"JobId={job}", "TimeLimit=5", "Name=renamed"], user=USER).returncode == 0
    r = local.run(["squeue", "-h", "-o", "%j %l", "-j", str(job)], user=USER)
    assert r.stdout == "renamed 5:00\n"
    assert local.run(["scontrol", "release", str(job)], user=USER).returncode == 0
    assert local.wait(job)["state"] == "COMPLETED"


def test_sacct_steps_and_seff(local):
    job = local.submit("#!/bin/bash\npython3 -c 'x = bytearray(20 * 1024 * 1024); import time; time.sleep(1)'\n",
                       user=USER)
    assert local.wait(job)["state"] == "COMPLETED"
    time.sleep(0.5)
    r = local.run(["sacct", "-j", str(job)], user=USER)
    lines = r.stdout.splitlines()
    assert lines[0] == "JobID           JobName  Partition    Account  AllocCPUS      State ExitCode "
    assert lines[2].startswith(f"{job:<12} ") and "COMPLETED      0:0 " in lines[2]
    assert lines[3].startswith(f"{job}.batch") and lines[3].rstrip().endswith("COMPLETED      0:0")
    r = local.run(["sacct", "-P", "-n", "-o", "JobID,MaxRSS", "-j", f"{job}.batch"], user=USER)
    rss = dict(line.split("|") for line in r.stdout.splitlines())
    # sacct's exact units: KiB unless a multiple of 512 KiB makes it exact in M (31744K is "31M")
    m = re.fullmatch(r"(\d+(?:\.\d\d)?)([KMG])", rss[f"{job}.batch"])
    assert m, r.stdout
    assert float(m[1]) * 1024 ** "KMG".index(m[2]) >= 20 * 1024, "the script held a 20 MiB bytearray"
    r = local.run(["seff", str(job)], user=USER)
    assert r.returncode == 0
    assert r.stdout.startswith(f"Job ID: {job}\nCluster: local\nUser/Group: {USER}/")
    assert "State: COMPLETED (exit code 0)\n" in r.stdout
    assert re.search(r"^Memory Utilized: \d+\.\d\d MB$", r.stdout, re.M), r.stdout


def test_arrays_display(local):
    job = local.submit("#!/bin/sh\nsleep 30\n", "--array=1-4%1", "-J", "arrtest", user=USER)
    local.wait(f"{job}_1", ("RUNNING",))
    r = local.run(["squeue", "-h", "-o", "%i %t", "-n", "arrtest"], user=USER)
    lines = r.stdout.splitlines()
    assert f"{job}_[2-4%1] PD" in lines and f"{job}_1 R" in lines, lines
    r = local.run(["squeue", "-h", "-r", "-o", "%i", "-n", "arrtest", "-t", "pd"], user=USER)
    assert r.stdout.split() == [f"{job}_2", f"{job}_3", f"{job}_4"]
    assert local.run(["scancel", str(job)], user=USER).returncode == 0


def test_notify_writes_into_a_running_batch_jobs_stderr(local):
    # 22.05: slurmstepd writes `slurmstepd-NODE: error: MESSAGE` to the job's stderr; only the owner may
    wd = local.workdir(USER)
    job = local.submit("#!/bin/bash\nsleep 4\n", user=USER, cwd=wd)
    held = local.submit("#!/bin/bash\ntrue\n", "-H", user=USER, cwd=wd)
    node = local.wait(job, states=("RUNNING",))["nodes"]
    r = local.run(["scontrol", "notify", str(job), "checkpoint", "now"], user=USER)
    assert (r.returncode, r.stderr) == (0, "")
    r = local.run(["scontrol", "notify", str(job), "hi"], user=OTHER)
    assert (r.returncode, r.stderr) == (1, "job notify failure: Invalid user id\n")
    r = local.run(["scontrol", "notify", str(held), "hi"], user=USER)
    assert (r.returncode, r.stderr) == (1, "job notify failure: Requested operation is presently disabled\n")
    r = local.run(["scontrol", "wait_job", str(job)], user=USER)
    assert (r.returncode, r.stderr) == (0, f"scontrol: Nodes are ready for job {job}\n")
    local.wait(job)
    assert (wd / f"slurm-{job}.out").read_text() == f"slurmstepd-{node}: error: checkpoint now\n"
    r = local.run(["scontrol", "wait_job", str(job)], user=USER)
    assert (r.returncode, r.stderr) == (1, f"scontrol: Job {job} no longer running\n")
    local.run(["scancel", str(held)], user=USER)


def test_sacct_shows_a_batch_jobs_script_and_environment_to_its_owner(local):
    # AccountingStoreFlags=job_script,job_env; layouts as 22.05 printed them side by side
    wd = local.workdir(USER)
    script = "#!/bin/bash\n#SBATCH -J scr\necho hi\n"
    job = local.submit(script, user=USER, cwd=wd)
    local.wait(job)
    rule = "-" * 80
    r = local.run(["sacct", "-B", "-j", f"{job}.batch"], user=USER)
    assert (r.returncode, r.stdout) == (0, f"Batch Script for {job}\n{rule}\n{script}\n")
    r = local.run(["sacct", "--env-vars", "-j", str(job)], user=USER)
    assert r.stdout.startswith(f"Environment used for {job} (must be batch to display)\n{rule}\n")
    assert r.stdout.endswith("\n\n") and "\nHOME=" in r.stdout
    r = local.run(["sacct", "-B", "-j", str(job)], user=OTHER)  # another user's job: nothing, as in Slurm
    assert (r.returncode, r.stdout) == (0, "")
    r = local.run(["salloc", "-Q", "-n1", "true"], user=USER, cwd=wd)
    alloc = local.run(["sacct", "-X", "-n", "-o", "JobIDRaw", "-S", "now-5minutes"], user=USER).stdout.split()[-1]
    r = local.run(["sacct", "-B", "-j", alloc], user=USER)
    assert r.stdout == f"Batch Script for {alloc}\n{rule}\nNONE\n\n"


def test_a_note_sent_before_the_job_opens_its_output_is_kept(local):
    # the job's stdout is a FIFO nobody reads yet, so its wrapper is stuck before it truncates stderr: a
    # notify now must wait for that, not be truncated away (seen on a fresh cluster right after wait_job)
    wd = local.workdir(USER)
    fifo = wd / "out.fifo"
    local.run(["mkfifo", str(fifo)], user=USER)
    job = local.submit("#!/bin/bash\necho body\n", "-o", str(fifo), "-e", str(wd / "err.txt"), user=USER, cwd=wd)
    node = local.wait(job, states=("RUNNING",))["nodes"]
    r = local.run(["scontrol", "notify", str(job), "early", "note"], user=USER)
    assert (r.returncode, r.stderr) == (0, "")
    # one reader held open from here on lets the wrapper open the FIFO (twice: to truncate, to append)
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        local.wait(job)
        assert os.read(fd, 100) == b"body\n"
    finally:
        os.close(fd)
    assert (wd / "err.txt").read_text() == f"slurmstepd-{node}: error: early note\n"
