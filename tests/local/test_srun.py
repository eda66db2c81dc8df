"""srun on the local-mode scheduler: steps inside and outside allocations, as the test users see them."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

USER = "mhalice"
OTHER = "mhbob"


def _steps(local, job_id: int) -> dict[str, dict]:
    return {s["step_id"]: s for s in local.acct(job_id)["steps"]}


def _job_of(stderr_or_env: str) -> int:
    m = re.search(r"JOB=(\d+)", stderr_or_env)
    assert m, stderr_or_env
    return int(m.group(1))


def test_srun_outside_allocation_runs_a_job_with_one_step(local):
    wd = local.workdir(USER)
    r = local.run(["srun", "-n2", "-l", "bash", "-c", "echo JOB=$SLURM_JOB_ID task=$SLURM_PROCID user=$(id -un)"],
                  user=USER, cwd=wd)
    assert r.returncode == 0, r.stderr
    lines = sorted(r.stdout.splitlines())
    assert [ln.split()[0] for ln in lines] == ["0:", "1:"]
    assert all(ln.endswith(f"user={USER}") for ln in lines)
    job = _job_of(r.stdout)
    info = local.wait(job)
    assert info["state"] == "COMPLETED"
    steps = _steps(local, job)
    assert set(steps) == {"extern", "0"}
    assert steps["0"]["state"] == "COMPLETED"
    assert steps["0"]["num_tasks"] == 2
    assert steps["0"]["name"] == "bash"
    assert local.acct(job)["name"] == "bash"


def test_task_environment_in_a_two_node_step(local):
    wd = local.workdir(USER)
    script = ("echo $SLURM_PROCID $SLURM_LOCALID $SLURM_NODEID $SLURMD_NODENAME $SLURM_STEP_ID "
              "$SLURM_STEP_NODELIST $SLURM_STEP_NUM_NODES $SLURM_STEP_NUM_TASKS $SLURM_STEP_TASKS_PER_NODE "
              "$SLURM_NTASKS $SLURM_JOB_NUM_NODES $SLURM_CPUS_ON_NODE [$TMPDIR] [$SLURM_JOB_ID]")
    r = local.run(["srun", "-N2", "--ntasks-per-node=2", "bash", "-c", script], user=USER, cwd=wd)
    assert r.returncode == 0, r.stderr
    rows = sorted(line.split() for line in r.stdout.splitlines())
    assert [row[:4] for row in rows] == [["0", "0", "0", "node1"], ["1", "1", "0", "node1"],
                                         ["2", "0", "1", "node2"], ["3", "1", "1", "node2"]]
    for row in rows:
        assert row[4:11] == ["0", "node[1-2]", "2", "4", "2(x2)", "4", "2"]
        assert row[12] != "[]" and f"slurm-{row[13][1:-1]}" in row[12]


def test_exit_code_is_the_highest_task_exit_code(local):
    wd = local.workdir(USER)
    r = local.run(["srun", "-n3", "bash", "-c", "exit $SLURM_PROCID"], user=USER, cwd=wd)
    assert r.returncode == 2
    assert "srun: error: node1: task 1: Exited with exit code 1" in r.stderr
    assert "srun: error: node1: task 2: Exited with exit code 2" in r.stderr
    r = local.run(["srun", "-n2", "bash", "-c", "exit 3"], user=USER, cwd=wd)
    assert r.returncode == 3
    # tasks that end together are reported together
    assert "srun: error: node1: tasks 0-1: Exited with exit code 3" in r.stderr or \
        r.stderr.count("srun: error: node1: task ") == 2


def test_task_killed_by_a_signal(local):
    r = local.run(["srun", "bash", "-c", "kill -9 $$"], user=USER, cwd=local.workdir(USER))
    assert r.returncode == 137
    assert re.search(r"srun: error: node\d: task 0: Killed", r.stderr)
    assert re.search(r"srun: Force Terminated StepId=\d+\.0", r.stderr)
    # Slurm 22.05: the job FAILED with reason JobLaunchFailure, its step CANCELLED
    r = local.run(["srun", "bash", "-c", "echo JOB=$SLURM_JOB_ID; kill -11 $$"], user=USER, cwd=local.workdir(USER))
    assert r.returncode == 139
    job = _job_of(r.stdout)
    info = local.wait(job)
    assert (info["state"], info["reason"], info["exit_signal"]) == ("FAILED", "JobLaunchFailure", 11)
    r = local.run(["sacct", "-j", str(job), "-P", "-n", "-o", "JobID,State,ExitCode"], user=USER)
    assert f"{job}.0|CANCELLED|0:11" in r.stdout.splitlines()


def test_failed_step_fails_the_job_and_shows_in_acct(local):
    wd = local.workdir(USER)
    r = local.run(["srun", "bash", "-c", "echo JOB=$SLURM_JOB_ID; exit 7"], user=USER, cwd=wd)
    assert r.returncode == 7
    job = _job_of(r.stdout)
    info = local.wait(job)
    assert info["state"] == "FAILED" and info["exit_code"] == 7
    step = _steps(local, job)["0"]
    assert step["state"] == "FAILED" and step["exit_code"] == 7


def test_labels_are_padded_to_the_widest_task_id(local):
    r = local.run(["srun", "-n2", "-N2", "--ntasks-per-node=1", "-l", "printf", "a\\nb\\n"], user=USER,
                  cwd=local.workdir(USER))
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == ["0: a", "0: b", "1: a", "1: b"]
    r = local.run(["salloc", "-n4", "srun", "-n12", "--overcommit", "-l", "echo", "x"], user=USER,
                  cwd=local.workdir(USER))
    assert r.returncode == 0, r.stderr
    assert " 0: x" in r.stdout.splitlines() and "11: x" in r.stdout.splitlines()


def test_unbuffered_output_passes_partial_lines(local):
    r = local.run(["srun", "-u", "bash", "-c", "printf abc; sleep 0.2; printf 'def\\n'"], user=USER,
                  cwd=local.workdir(USER))
    assert r.returncode == 0 and r.stdout == "abcdef\n"


def test_output_error_and_input_patterns(local):
    wd = local.workdir(USER)
    (wd / "in.txt").write_text("from-file\n")
    r = local.run(["srun", "-N2", "-n2", "-o", "out-%j-%s-%t-%N-%n.txt", "-e", "err-%t.txt", "-i", "in.txt",
                   "bash", "-c", "read x; echo $x $SLURM_PROCID; echo oops >&2; echo JOB=$SLURM_JOB_ID >&2"],
                  user=USER, cwd=wd)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    job = _job_of((wd / "err-0.txt").read_text())
    for task, node in ((0, "node1"), (1, "node2")):
        out = wd / f"out-{job}-0-{task}-{node}-{task}.txt"
        assert out.read_text() == f"from-file {task}\n"
        assert out.stat().st_uid == pwd.getpwnam(USER).pw_uid
        assert (wd / f"err-{task}.txt").read_text().startswith("oops\n")
    # one file for all tasks: stdout and stderr together, truncated first
    local.run(["bash", "-c", "echo old content that must go > both.txt"], user=USER, cwd=wd)
    r = local.run(["srun", "-n2", "-o", "both.txt", "bash", "-c", "echo out$SLURM_PROCID; echo err$SLURM_PROCID >&2"],
                  user=USER, cwd=wd)
    assert r.returncode == 0, r.stderr
    assert sorted((wd / "both.txt").read_text().split()) == ["err0", "err1", "out0", "out1"]
    # as in Slurm, a name that starts with "all" means all tasks to srun's own output
    r = local.run(["srun", "-n2", "-o", "all.txt", "echo", "hi"], user=USER, cwd=wd)
    assert r.stdout == "hi\nhi\n" and not (wd / "all.txt").exists()
    # none, and one task only
    r = local.run(["srun", "-n2", "-o", "none", "echo", "hidden"], user=USER, cwd=wd)
    assert r.returncode == 0 and r.stdout == ""
    r = local.run(["srun", "-n2", "-l", "-o", "1", "bash", "-c", "echo t$SLURM_PROCID"], user=USER, cwd=wd)
    assert r.stdout == "1: t1\n"


def test_stdin_goes_to_every_task_or_one(local):
    wd = local.workdir(USER)
    r = local.run(["srun", "-n2", "-l", "cat"], user=USER, cwd=wd, input="hello\n")
    assert sorted(r.stdout.splitlines()) == ["0: hello", "1: hello"]
    r = local.run(["srun", "-n2", "-l", "-i", "1", "cat"], user=USER, cwd=wd, input="only\n")
    assert r.stdout.splitlines() == ["1: only"]


def test_chdir_export_and_missing_programs(local):
    wd = local.workdir(USER)
    sub = wd / "sub"
    sub.mkdir()
    os.chown(sub, pwd.getpwnam(USER).pw_uid, -1) if os.getuid() == 0 else None
    r = local.run(["srun", "-D", str(sub), "pwd"], user=USER, cwd=wd)
    assert r.stdout.strip() == str(sub)
    r = local.run(["srun", "-D", "/nonexistent", "pwd"], user=USER, cwd=wd)
    assert r.stdout.strip() == "/tmp"
    note = "slurmstepd-node1: error: couldn't chdir to `/nonexistent': No such file or directory: going to /tmp instead"
    assert r.stderr.splitlines() == [note, note]  # once for slurmstepd, once per task, as 22.05 prints it
    r = local.run(["srun", "-n2", "-l", "-D", "/nonexistent", "pwd"], user=USER, cwd=wd)
    assert r.stderr.splitlines() == [f"0: {note}"] * 3 and sorted(r.stdout.split()) == ["/tmp", "/tmp", "0:", "1:"]
    job = local.submit("#!/bin/bash\npwd\n", "-D", "/nonexistent", "-o", str(wd / "batch.out"), user=USER, cwd=wd)
    local.wait(job)
    assert (wd / "batch.out").read_text().splitlines() == [note, note, "/tmp"]
    r = local.run(["srun", "--export=NONE,FOO", "/bin/bash", "-c", "echo FOO=$FOO BAR=$BAR S=${SLURM_JOB_ID:+set}"],
                  user=USER, cwd=wd, env={"FOO": "1", "BAR": "2"})
    assert r.stdout.strip() == "FOO=1 BAR= S=set"
    # without PATH in the tasks' environment a bare name is not found, as in real Slurm
    r = local.run(["srun", "--export=NONE,FOO", "bash", "-c", "true"], user=USER, cwd=wd, env={"FOO": "1"})
    assert r.returncode == 2
    assert "error: execve(): bash: No such file or directory" in r.stderr
    r = local.run(["srun", "--export=ALL,BAZ=3", "bash", "-c", "echo FOO=$FOO BAZ=$BAZ"], user=USER, cwd=wd,
                  env={"FOO": "1"})
    assert r.stdout.strip() == "FOO=1 BAZ=3"
    r = local.run(["srun", "no-such-program-here"], user=USER, cwd=wd)
    assert r.returncode == 2
    assert "error: execve(): no-such-program-here: No such file or directory" in r.stderr
    assert "srun: error: node1: task 0: Exited with exit code 2" in r.stderr


def test_steps_inside_a_batch_job(local):
    wd = local.workdir(USER)
    job = local.submit("#!/bin/bash\n#SBATCH -N2 --ntasks-per-node=2\n"
                       "srun -l hostname >/dev/null\n"
                       "srun bash -c 'echo $SLURM_STEP_ID $SLURM_NTASKS' | sort | uniq -c\n"
                       "srun -n1 -N1 --exact bash -c 'exit 3'\n"
                       "echo done\n", user=USER, cwd=wd)
    info = local.wait(job)
    assert info["state"] == "COMPLETED"
    out = (wd / f"slurm-{job}.out").read_text()
    assert re.search(r"^\s+4 1 4$", out, re.M), out
    assert "srun: error: node1: task 0: Exited with exit code 3" in out
    steps = _steps(local, job)
    assert set(steps) == {"batch", "extern", "0", "1", "2"}
    assert steps["0"]["nodes"] == "node[1-2]" and steps["0"]["num_tasks"] == 4
    assert steps["0"]["tasks_per_node"] == "2(x2)"
    assert steps["2"]["state"] == "FAILED" and steps["2"]["exit_code"] == 3
    assert steps["2"]["num_tasks"] == 1


def test_running_step_shows_in_squeue_steps(local):
    wd = local.workdir(USER)
    job = local.submit("#!/bin/bash\nsrun -n1 sleep 30\n", user=USER, cwd=wd)
    deadline = time.time() + 15
    out = ""
    while time.time() < deadline:
        out = local.run(["squeue", "-s", "-h"], user=USER).stdout
        if any(line.split()[:2] == [f"{job}.0", "sleep"] for line in out.splitlines()):
            break
        time.sleep(0.2)
    row = next(line.split() for line in out.splitlines() if line.split()[0] == f"{job}.0")
    assert row[1:4] == ["sleep", "short", USER] and row[-1] == "node1"
    local.run(["scancel", str(job)], user=USER)
    info = local.wait(job)
    assert info["state"] == "CANCELLED"
    assert _steps(local, job)["0"]["state"] == "CANCELLED"


def test_parallel_steps_share_the_allocation_with_exact(local):
    wd = local.workdir(USER)
    script = ("#!/bin/bash\n#SBATCH -n2\n"
              "srun -n1 --exact bash -c 'date +%s.%N; sleep 2; date +%s.%N' > a.txt &\n"
              "sleep 0.5\n"
              "srun -n1 --exact bash -c 'date +%s.%N' > b.txt\n"
              "wait\n"
              "srun -n1 bash -c 'sleep 2' &\n"
              "sleep 0.5\n"
              "srun -n1 true\n"
              "wait\n")
    job = local.submit(script, user=USER, cwd=wd)
    assert local.wait(job, timeout=40)["state"] == "COMPLETED"
    a_start, a_end = (float(x) for x in (wd / "a.txt").read_text().split())
    b = float((wd / "b.txt").read_text())
    assert a_start < b < a_end  # the second --exact step ran while the first was running
    out = (wd / f"slurm-{job}.out").read_text()
    # a step that wants the whole allocation waits, as in Slurm 22.05
    assert f"srun: Job {job} step creation temporarily disabled, retrying (Requested nodes are busy)" in out
    assert f"srun: Step created for job {job}" in out


def test_step_errors_use_slurms_words(local):
    wd = local.workdir(USER)
    job = local.submit("#!/bin/bash\n#SBATCH -n2\n"
                       "srun -n4 true; echo rc=$?\n"
                       "srun -N2 true; echo rc=$?\n"
                       "srun -w node2 true; echo rc=$?\n", user=USER, cwd=wd)
    local.wait(job)
    out = (wd / f"slurm-{job}.out").read_text()
    assert f"srun: error: Unable to create step for job {job}: More processors requested than permitted" in out
    assert "srun: error: Only allocated 1 nodes asked for 2" in out
    assert f"srun: error: Unable to create step for job {job}: Requested node configuration is not available" in out
    assert out.count("rc=1") == 3
    r = local.run(["srun", "--jobid=999999", "true"], user=USER)
    assert r.returncode == 1
    assert "srun: error: Unable to confirm allocation for job 999999: Invalid job id specified" in r.stderr
    assert "srun: Check SLURM_JOB_ID environment variable. Expired or invalid job 999999" in r.stderr
    r = local.run(["srun"], user=USER)
    assert r.returncode == 1 and "srun: fatal: No command given to execute." in r.stderr
    r = local.run(["srun", "--bogus", "true"], user=USER)
    assert r.returncode == 255 and "unrecognized option '--bogus'" in r.stderr  # getopt's error: exit(-1)
    r = local.run(["srun", "-p", "nosuch", "true"], user=USER)
    assert r.returncode == 1
    assert "srun: error: Unable to allocate resources: Invalid partition name specified" in r.stderr


def test_kill_on_bad_exit_ends_the_other_tasks(local):
    start = time.time()
    r = local.run(["srun", "-n2", "-K", "-l", "bash", "-c", "[ $SLURM_PROCID = 1 ] && exit 4; sleep 20"],
                  user=USER, cwd=local.workdir(USER))
    assert time.time() - start < 15
    assert "srun: error: node1: task 1: Exited with exit code 4" in r.stderr
    assert re.search(r"srun: launch/slurm: _step_signal: Terminating StepId=\d+\.0", r.stderr)
    assert re.search(r"srun: Force Terminated StepId=\d+\.0", r.stderr)
    assert r.returncode == 143


def test_wait_limit_kills_the_step_as_srun_w_does(local):
    r = local.run(["srun", "-n2", "-W", "1", "bash", "-c", "[ $SLURM_PROCID = 0 ] && exit 0; sleep 20"],
                  user=USER, cwd=local.workdir(USER))
    lines = r.stderr.splitlines()
    assert lines[0] == "srun: First task exited 1s ago", lines
    assert re.fullmatch(r"srun: launch/slurm: _step_signal: Terminating StepId=\d+\.0", lines[3]), lines
    assert lines[-2:] == ["srun: Job step aborted: Waiting up to 4 seconds for job step to finish.",
                          "srun: error: node1: task 1: Killed"], lines
    assert r.returncode == 137


def test_bad_mpi_and_distribution_and_node_count(local):
    r = local.run(["srun", "--mpi=bogus", "true"], user=USER)
    assert r.returncode == 1
    assert r.stderr.splitlines()[-1] == "srun: error: Invalid MPI type 'bogus', --mpi=list for acceptable types"
    for cmd in (["srun", "-m", "bogus", "true"], ["sbatch", "-m", "bogus", "--wrap", "true"]):
        r = local.run(cmd, user=USER)
        assert (r.returncode, r.stderr) == (255, f"{cmd[0]}: error: Invalid --distribution specification\n")
    assert local.run(["srun", "-m", "cyclic:block", "-n2", "true"], user=USER).returncode == 0
    r = local.run(["srun", "-N", "0", "true"], user=USER)
    assert (r.returncode, r.stderr) == (1, "srun: error: Unable to allocate resources: Node count specification "
                                           "invalid\n")


def _spawn(local, args: list[str], wd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, **local.cluster.env()}
    cmd = ["runuser", "-u", USER, "-w", "MINIHPC_CONF,MINIHPC_MUNGE_SOCKET,PATH", "--", *args] \
        if os.getuid() == 0 else args
    return subprocess.Popen(cmd, cwd=wd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_for(path: Path, text: str, timeout: float = 15) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not in {path}")


def _srun_pid(p: subprocess.Popen[str]) -> int:
    """The srun process itself (under runuser when the tests run as root)."""
    if os.getuid() != 0:
        return p.pid
    for _ in range(50):
        r = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True)
        if r.stdout.strip():
            return int(r.stdout.split()[0])
        time.sleep(0.1)
    raise AssertionError("srun did not start")


def test_signals_reach_the_tasks(local):
    wd = local.workdir(USER)
    task = ("trap 'echo got INT $SLURM_PROCID >> sig.log; exit 5' INT; "
            "trap 'echo got USR1 $SLURM_PROCID >> sig.log' USR1; echo ready >> sig.log; "
            "while true; do sleep 0.1; done")
    p = _spawn(local, ["srun", "-n2", "-l", "bash", "-c", task], wd)
    _wait_for(wd / "sig.log", "ready\nready\n")
    pid = _srun_pid(p)
    os.kill(pid, signal.SIGUSR1)
    _wait_for(wd / "sig.log", "got USR1 1")
    os.kill(pid, signal.SIGINT)  # one Ctrl-C: status only
    time.sleep(0.3)
    os.kill(pid, signal.SIGINT)  # a second within a second: SIGINT to the tasks
    _out, err = p.communicate(timeout=20)
    log = (wd / "sig.log").read_text()
    assert "got USR1 0" in log and "got USR1 1" in log
    assert "got INT 0" in log and "got INT 1" in log
    assert "srun: interrupt (one more within 1 sec to abort)" in err
    assert re.search(r"srun: StepId=\d+\.0 tasks 0-1: running", err)
    assert re.search(r"srun: sending Ctrl-C to StepId=\d+\.0", err)
    assert p.returncode == 5
    # SIGTERM to srun ends the step
    (wd / "sig.log").unlink()
    p = _spawn(local, ["srun", "bash", "-c", "trap 'echo got TERM >> sig.log; exit 6' TERM; echo ready >> sig.log; "
                                             "while true; do sleep 0.1; done"], wd)
    _wait_for(wd / "sig.log", "ready")
    os.kill(_srun_pid(p), signal.SIGTERM)
    _out, err = p.communicate(timeout=20)
    assert "srun: forcing job termination" in err
    assert "got TERM" in (wd / "sig.log").read_text()
    assert p.returncode == 6


def test_attach_to_a_running_job_with_jobid(local):
    wd = local.workdir(USER)
    job = local.submit("#!/bin/bash\n#SBATCH -N2\nsrun sleep 30\n", user=USER, cwd=wd)
    local.wait(job, states=("RUNNING",))
    time.sleep(0.5)
    r = local.run(["srun", f"--jobid={job}", "-l", "bash", "-c", "echo $SLURM_JOB_ID $SLURMD_NODENAME $(id -un)"],
                  user=USER, cwd=wd)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"0: {job} node1 {USER}"
    r = local.run(["srun", f"--jobid={job}", "true"], user=OTHER, cwd="/tmp")
    assert r.returncode == 1
    assert f"srun: error: Unable to create step for job {job}: Access/permission denied" in r.stderr
    local.run(["scancel", str(job)], user=USER)
    local.wait(job)
    r = local.run(["srun", f"--jobid={job}", "true"], user=USER, cwd=wd)
    assert r.returncode == 1 and f"srun: error: Slurm job {job} has expired" in r.stderr


def test_interactive_pty_session(local):
    pexpect = pytest.importorskip("pexpect")
    wd = local.workdir(USER)
    env = {**os.environ, **local.cluster.env()}
    cmd = "srun --pty /bin/bash --norc --noprofile"
    if os.getuid() == 0:
        cmd = f"runuser -u {USER} -w MINIHPC_CONF,MINIHPC_MUNGE_SOCKET,PATH -- {cmd}"
    child = pexpect.spawn(cmd, cwd=str(wd), env=env, encoding="utf-8", timeout=20, dimensions=(30, 100))
    prompt = r"[#$] $"
    child.expect(prompt)
    child.sendline("echo JOB=$SLURM_JOB_ID HOST=$SLURMD_NODENAME; tty; stty size")
    child.expect(r"JOB=(\d+) HOST=(\S+)")
    job = int(child.match.group(1))
    child.expect(r"/dev/pts/\d+")
    child.expect("30 100")
    child.setwinsize(40, 120)
    time.sleep(0.3)
    child.sendline("stty size")
    child.expect("40 120")
    child.sendline("sleep 30")
    time.sleep(0.5)
    child.sendcontrol("c")  # reaches the remote foreground job, not srun
    child.expect(prompt)
    child.sendline("sleep 30 &")
    child.sendline("jobs")
    child.expect("Running")
    child.sendline("kill %1; exit 3")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 3
    info = local.wait(job)
    assert info["state"] == "FAILED" and info["exit_code"] == 3


@pytest.mark.skipif(not shutil.which("mpirun") or not shutil.which("mpicc"), reason="needs openmpi-bin, libopenmpi-dev")
def test_openmpi_mpirun_uses_srun_to_start_its_daemons(local):
    wd = local.workdir(USER)
    src = wd / "hello.c"
    src.write_text('#include <mpi.h>\n#include <stdio.h>\nint main(int c, char **v) { int r, s, l; '
                   'char n[MPI_MAX_PROCESSOR_NAME]; MPI_Init(&c, &v); MPI_Comm_rank(MPI_COMM_WORLD, &r); '
                   'MPI_Comm_size(MPI_COMM_WORLD, &s); MPI_Get_processor_name(n, &l); '
                   'printf("Hello world from processor %s, rank %d out of %d processors\\n", n, r, s); '
                   'MPI_Finalize(); return 0; }\n')
    subprocess.run(["mpicc", "-o", str(wd / "mpihello"), str(src)], check=True)
    os.chmod(wd / "mpihello", 0o755)
    # all "nodes" are this host: keep Open MPI off shared memory between them
    job = local.submit("#!/bin/bash\n#SBATCH -N2 --ntasks-per-node=2\n"
                       "export OMPI_MCA_btl=self,tcp OMPI_MCA_btl_tcp_if_include=lo\n"
                       f"mpirun {wd / 'mpihello'}\n", user=USER, cwd=wd)
    info = local.wait(job, timeout=60)
    out = (wd / f"slurm-{job}.out").read_text()
    assert info["state"] == "COMPLETED", out
    ranks = sorted(int(m.group(1)) for m in re.finditer(r"rank (\d+) out of 4 processors", out))
    assert ranks == [0, 1, 2, 3], out
    steps = _steps(local, job)
    assert steps["0"]["num_tasks"] == 2 and steps["0"]["nodes"] == "node[1-2]"  # one orted per node
    assert steps["0"]["state"] == "COMPLETED"


def test_time_limit_ends_the_step_with_slurms_message(local):
    wd = local.workdir(USER)
    start = time.time()
    r = local.run(["srun", "-t", "1", "bash", "-c", "echo started; sleep 300"], user=USER, cwd=wd, timeout=120)
    assert 55 < time.time() - start < 100
    assert r.stdout == "started\n"
    assert "srun: Job step aborted: Waiting up to 4 seconds for job step to finish." in r.stderr
    assert re.search(r"slurmstepd-node1: error: \*\*\* STEP \d+\.0 ON node1 CANCELLED AT "
                     r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d DUE TO TIME LIMIT \*\*\*", r.stderr)
    assert r.stderr.index("Job step aborted") < r.stderr.index("DUE TO TIME LIMIT")
    assert r.returncode == 143


def test_scancel_of_one_step_leaves_the_job_running(local):
    wd = local.workdir(USER)
    job = local.submit("#!/bin/bash\nsrun -n1 sleep 60; echo step_rc=$?\nsrun -n1 echo second\n", user=USER, cwd=wd)
    deadline = time.time() + 15
    while f"{job}.0" not in local.run(["squeue", "-s", "-h"], user=USER).stdout:
        assert time.time() < deadline
        time.sleep(0.2)
    r = local.run(["scancel", f"{job}.0"], user=USER)
    assert r.returncode == 0, r.stderr
    assert local.wait(job)["state"] == "COMPLETED"
    out = (wd / f"slurm-{job}.out").read_text()
    assert "srun: Job step aborted: Waiting up to 4 seconds for job step to finish." in out
    assert re.search(rf"slurmstepd-node1: error: \*\*\* STEP {job}\.0 ON node1 CANCELLED AT \S+ \*\*\*", out)
    # slurmstepd kills a scancelled step's tasks with SIGKILL at once: srun says Killed and exits 137
    assert "srun: error: node1: task 0: Killed" in out
    assert "step_rc=137" in out and "second" in out
    steps = _steps(local, job)
    assert steps["0"]["state"] == "CANCELLED" and steps["1"]["state"] == "COMPLETED"
    r = local.run(["sacct", "-j", str(job), "-P", "-n", "-o", "JobID,State,ExitCode,DerivedExitCode"], user=USER)
    assert f"{job}|COMPLETED|0:0|0:9" in r.stdout.splitlines()
    assert f"{job}.0|CANCELLED by {pwd.getpwnam(USER).pw_uid}|0:9|" in r.stdout.splitlines()


def test_losing_a_node_ends_the_job_as_node_fail(local):
    wd = local.workdir(USER)
    p = _spawn(local, ["srun", "-N2", "-l", "bash", "-c", "echo JOB=$SLURM_JOB_ID >> where.log; exec sleep 60"], wd)
    try:
        _wait_for(wd / "where.log", "JOB=")
        job = _job_of((wd / "where.log").read_text())
        time.sleep(0.5)
        local.cluster.stop_process("node2", signal.SIGKILL)
        _out, err = p.communicate(timeout=40)
        assert "srun: error: Node failure on node2" in err
        assert local.wait(job, timeout=30)["state"] == "NODE_FAIL"
    finally:
        if p.poll() is None:
            p.kill()
        local.cluster.restart("node2")
        deadline = time.time() + 30
        while time.time() < deadline:
            nodes = {n["name"]: n for n in local.cluster.call("nodes")["nodes"]}  # type: ignore[union-attr]
            if nodes["node2"]["state"] == "IDLE" and not nodes["node2"]["flags"]:
                break
            time.sleep(0.3)


def test_a_node_back_from_a_reboot_ends_its_jobs_as_node_fail(local):
    """A node that registers again having booted after a job started there (a compute container killed
    and started faster than srun's check noticed) has lost its part of the job, even when it is not the
    batch host: NODE_FAIL, as slurmctld does for a rebooted node. One that merely registers again (its
    daemon restarted, same boot) keeps it."""
    if os.getuid() != 0:
        pytest.skip("node registration is root's")
    wd = local.workdir(USER)
    job = local.submit("#!/bin/bash\nsrun sleep 60\n", "-N2", "--no-requeue", user=USER, cwd=wd)
    local.wait(job, ("RUNNING",))
    other = "node2" if local.job(job, ("batch_host",))["batch_host"] == "node1" else "node1"
    args = list(local.cluster.procs[other].args)  # type: ignore[attr-defined]
    port = int(args[args.index("--listen") + 1].rsplit(":", 1)[1])
    booted = {n["name"]: n["boot_time"] for n in local.cluster.call("nodes")["nodes"]}[other]  # type: ignore[union-attr]

    def register(boot_time: float) -> None:
        local.cluster.call("node_register", {"node": other, "host": "127.0.0.1", "port": port, "running": [],
                                             "results": [], "boot_time": boot_time})

    try:
        register(booted)
        time.sleep(0.5)
        assert local.job(job)["state"] == "RUNNING"
        time.sleep(1.5)  # boot times are whole seconds: the reboot comes clearly after the start
        register(time.time())
        assert local.wait(job, timeout=30)["state"] == "NODE_FAIL"
    finally:
        register(booted)
        local.run(["scancel", str(job)], user=USER)


def test_gpu_steps_see_their_nodes_gpus(local):
    r = local.run(["srun", "-p", "gpu", "--gres=gpu:1", "bash", "-c",
                   "echo $CUDA_VISIBLE_DEVICES $SLURM_STEP_GPUS $SLURM_GPUS_ON_NODE $SLURMD_NODENAME"],
                  user=USER, cwd=local.workdir(USER))
    assert r.returncode == 0, r.stderr
    cuda, ids, count, node = r.stdout.split()
    assert (cuda, count, node) == ("0", "1", "gpu1") and ids in ("0", "1")


def test_cpu_bind_map_binds_the_task_and_reports_it(local):
    r = local.run(["srun", "-n1", "-l", "--cpu-bind=verbose,map_cpu:0", "bash", "-c",
                   "grep Cpus_allowed_list /proc/self/status; echo $SLURM_CPU_BIND $SLURM_CPU_BIND_TYPE"],
                  user=USER, cwd=local.workdir(USER))
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(r"0: cpu-bind=MAP  - node1, task  0  0 \[\d+\]: mask 0x1 set\n", r.stderr), r.stderr
    assert r.stdout.splitlines() == ["0: Cpus_allowed_list:\t0", "0: verbose,map_cpu:0 map_cpu:"]


def test_tasks_know_their_pid_and_where_srun_listens(local):
    """SLURM_TASK_PID is the task's own pid; SLURM_LAUNCH_NODE_IPADDR/SLURM_SRUN_COMM_HOST are the address srun
    reaches the node from, and SLURM_SRUN_COMM_PORT (= SLURM_STEP_LAUNCHER_PORT) is a port srun listens on."""
    script = ("echo $SLURM_TASK_PID $$ $SLURM_LAUNCH_NODE_IPADDR $SLURM_SRUN_COMM_HOST $SLURM_SRUN_COMM_PORT "
              "$SLURM_STEP_LAUNCHER_PORT; exec 3<>/dev/tcp/$SLURM_SRUN_COMM_HOST/$SLURM_SRUN_COMM_PORT && echo open")
    r = local.run(["srun", "-n2", "-l", "bash", "-c", script], user=USER, cwd=local.workdir(USER))
    assert r.returncode == 0, r.stderr
    rows = sorted(line.split() for line in r.stdout.splitlines())
    assert [row[0] for row in rows] == ["0:", "0:", "1:", "1:"]
    env_rows = [row[1:] for row in rows if row[1] != "open"]
    assert len(env_rows) == 2 and [row for row in rows if row[1] == "open"] == [["0:", "open"], ["1:", "open"]]
    for pid, shell_pid, ip, host, port, launcher in env_rows:
        assert pid == shell_pid
        assert ip == host == "127.0.0.1"
        assert port == launcher and port.isdigit()
    assert env_rows[0][0] != env_rows[1][0]
    assert env_rows[0][4] == env_rows[1][4]


def test_step_environment_inside_an_allocation_as_real_srun(local):
    """Inside salloc/sbatch srun adds SLURM_DISTRIBUTION and SLURM_JOB_CPUS_PER_NODE_PACK_GROUP_0; outside, neither
    (srun -n2 making its own allocation leaves the distribution unset)."""
    names = ("SLURM_DISTRIBUTION SLURM_JOB_CPUS_PER_NODE_PACK_GROUP_0 SLURM_MEM_PER_CPU SLURM_NODE_ALIASES "
             "SLURM_WORKING_CLUSTER")
    show = "for v in " + names + "; do echo $v=${!v-unset}; done"
    wd = local.workdir(USER)
    conf = local.run(["scontrol", "show", "config"], user=USER).stdout
    host = re.search(r"^SlurmctldHost\[0\]\s*=\s*(\S+)", conf, re.M)
    port = re.search(r"^SlurmctldPort\s*=\s*(\d+)", conf, re.M)
    assert host and port, conf
    cluster = f"local:{host.group(1)}:{port.group(1)}:9984:109"
    r = local.run(["srun", "-n2", "-l", "bash", "-c", show], user=USER, cwd=wd)
    assert r.returncode == 0, r.stderr
    assert sorted(set(r.stdout.replace("1: ", "0: ").splitlines())) == [
        "0: SLURM_DISTRIBUTION=unset", "0: SLURM_JOB_CPUS_PER_NODE_PACK_GROUP_0=unset",
        "0: SLURM_MEM_PER_CPU=unset", "0: SLURM_NODE_ALIASES=unset", "0: SLURM_WORKING_CLUSTER=" + cluster]
    for args, dist in ((["-n1"], "unset"), (["-n1", "--mem=100"], "cyclic"), (["-n2", "--mem=100"], "block")):
        r = local.run(["srun", *args, "bash", "-c", "echo ${SLURM_DISTRIBUTION-unset}"], user=USER, cwd=wd)
        assert set(r.stdout.split()) == {dist}, (args, r.stdout, r.stderr)
    inner = f"srun -n2 -l bash -c '{show}' | sort -u; srun -n1 bash -c 'echo $SLURM_DISTRIBUTION'"
    r = local.run(["salloc", "-n2", "bash", "-c", inner], user=USER, cwd=wd)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert sorted(set(ln[3:] for ln in lines[:-1])) == [
        "SLURM_DISTRIBUTION=block", "SLURM_JOB_CPUS_PER_NODE_PACK_GROUP_0=2", "SLURM_MEM_PER_CPU=unset",
        "SLURM_NODE_ALIASES=(null)", "SLURM_WORKING_CLUSTER=" + cluster]
    assert lines[-1] == "cyclic"


def test_batch_script_environment_as_slurmd_sets_it(local):
    wd = local.workdir(USER)
    job = local.submit("#!/bin/bash\necho $SLURM_TASK_PID $$ $SLURM_NODE_ALIASES\n", user=USER, cwd=wd)
    assert local.wait(job)["state"] == "COMPLETED"
    pid, shell_pid, aliases = (wd / f"slurm-{job}.out").read_text().split()
    assert pid == shell_pid and aliases == "(null)"


def test_cpu_bind_cores_binds_each_task_to_a_block_of_the_jobs_cpus(local):
    """cores (and threads, sockets, ldoms) as task/affinity does them: task i gets the i-th of the step's CPUs,
    SLURM_CPU_BIND* name the resulting masks, verbose prints the MASK lines."""
    if len(os.sched_getaffinity(0)) < 2 or not {0, 1} <= os.sched_getaffinity(0):
        pytest.skip("needs CPUs 0 and 1")
    script = "grep Cpus_allowed_list /proc/self/status; echo $SLURM_CPU_BIND $SLURM_CPU_BIND_TYPE $SLURM_CPU_BIND_LIST"
    inner = f"srun -n2 -l --cpu-bind=verbose,cores bash -c '{script}'"
    # a whole node, so that the job's CPUs are node1's 0-3 whatever else ran before
    r = local.run(["salloc", "-w", "node1", "--exclusive", "-n2", "bash", "-c", inner], user=USER,
                  cwd=local.workdir(USER))
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == [
        "0: Cpus_allowed_list:\t0", "0: verbose,mask_cpu:0x1,0x2 mask_cpu: 0x1,0x2",
        "1: Cpus_allowed_list:\t1", "1: verbose,mask_cpu:0x1,0x2 mask_cpu: 0x1,0x2"]
    lines = sorted(ln for ln in r.stderr.splitlines() if "cpu-bind" in ln)
    assert len(lines) == 2, r.stderr
    # printed by each task before its exec, so on its own (labelled) stderr
    assert re.fullmatch(r"0: cpu-bind=MASK - node1, task  0  0 \[\d+\]: mask 0x1 set", lines[0])
    assert re.fullmatch(r"1: cpu-bind=MASK - node1, task  1  1 \[\d+\]: mask 0x2 set", lines[1])


def test_no_cpu_bind_leaves_tasks_unbound(local):
    r = local.run(["srun", "-n1", "bash", "-c", "echo ${SLURM_CPU_BIND-unset}; grep Cpus_allowed_list /proc/self/status"],
                  user=USER, cwd=local.workdir(USER))
    assert r.returncode == 0, r.stderr
    mine = [ln for ln in Path("/proc/self/status").read_text().splitlines() if ln.startswith("Cpus_allowed_list")]
    assert r.stdout.splitlines() == ["unset", *mine]


def test_verbose_srun_and_salloc_print_their_defined_options(local):
    # srun/salloc 22.05 -v: slurm_print_set_options before anything else
    wd = local.workdir(USER)
    r = local.run(["srun", "-v", "-N1", "-l", "-J", "foo", "true"], user=USER, cwd=wd)
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines()[:8] == [
        "srun: defined options", "srun: -------------------- --------------------",
        "srun: job-name            : foo", "srun: label               : set", "srun: nodes               : 1",
        "srun: verbose             : 1", "srun: -------------------- --------------------",
        "srun: end of defined options"]
    r = local.run(["salloc", "-v", "-n1", "true"], user=USER, cwd=wd)
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines()[:6] == [
        "salloc: defined options", "salloc: -------------------- --------------------",
        "salloc: ntasks              : 1", "salloc: verbose             : 1",
        "salloc: -------------------- --------------------", "salloc: end of defined options"]
