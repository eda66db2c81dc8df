"""Full job lifecycles on the local-mode scheduler: every end state, as the submitting user."""

from __future__ import annotations

import os
import pwd
import re
import time

import pytest

USER = "mhalice"
OTHER = "mhbob"


def _uid(user: str) -> int:
    return pwd.getpwnam(user).pw_uid


def test_completed_job_runs_as_user_in_submit_dir(local):
    wd = local.workdir(USER)
    job = local.submit("#!/bin/bash\nid -u\npwd\necho job=$SLURM_JOB_ID node=$SLURMD_NODENAME\n"
                       "test -d \"$TMPDIR\" && echo tmpdir-ok\n", user=USER, cwd=wd)
    info = local.wait(job)
    assert info["state"] == "COMPLETED"
    out = (wd / f"slurm-{job}.out").read_text().splitlines()
    assert out[0] == str(_uid(USER))
    assert out[1] == str(wd)
    assert out[2] == f"job={job} node={info['nodes']}"
    assert "tmpdir-ok" in out
    assert (wd / f"slurm-{job}.out").stat().st_uid == _uid(USER)
    rec = local.acct(job)
    assert [s["step_id"] for s in rec["steps"]] == ["batch", "extern"]
    assert rec["steps"][0]["state"] == "COMPLETED"


def test_failed_job_reports_exit_code(local):
    job = local.submit("#!/bin/bash\necho failing >&2\nexit 3\n", user=USER)
    info = local.wait(job)
    assert info["state"] == "FAILED"
    assert info["exit_code"] == 3
    assert info["exit_signal"] == 0


def test_killed_by_signal_reports_signal(local):
    job = local.submit("#!/bin/bash\nkill -9 $$\n", user=USER)
    info = local.wait(job)
    assert info["state"] == "FAILED"
    assert info["exit_signal"] == 9
    # Slurm 22.05: the job FAILED, its batch step (killed by the signal) CANCELLED
    r = local.run(["sacct", "-j", str(job), "-P", "-n", "-o", "JobID,State,ExitCode"], user=USER)
    assert r.stdout.splitlines()[:2] == [f"{job}|FAILED|0:9", f"{job}.batch|CANCELLED|0:9"]
    # and slurmctld gives it the reason it gives a launch failure
    assert info["reason"] == "JobLaunchFailure"
    r = local.run(["squeue", "-h", "-t", "all", "-j", str(job), "-o", "%T %r"], user=USER)
    assert r.stdout == "FAILED JobLaunchFailure\n"


def test_cancelled_job_records_who_and_notes_it(local):
    wd = local.workdir(USER)
    job = local.submit("#!/bin/bash\necho started\nsleep 120\n", user=USER, cwd=wd)
    local.wait(job, ("RUNNING",))
    time.sleep(0.3)
    r = local.run(["scancel", str(job)], user=USER)
    assert r.returncode == 0, r.stderr
    info = local.wait(job)
    assert info["state"] == "CANCELLED"
    rec = local.acct(job)
    assert rec["cancelled_by"] == _uid(USER)
    text = (wd / f"slurm-{job}.out").read_text()
    assert f"slurmstepd-{info['nodes']}: error: *** JOB {job} ON {info['nodes']} CANCELLED AT" in text


def test_cancelled_pending_job_keeps_its_reason(local):
    # slurmctld 22.05: `JobState=CANCELLED Reason=JobHeldUser`, StartTime=EndTime=the moment of scancel
    held = local.submit("#!/bin/bash\ntrue\n", "--hold", user=USER)
    assert local.job(held)["reason"] == "JobHeldUser"
    assert local.run(["scancel", str(held)], user=USER).returncode == 0
    assert (local.job(held)["state"], local.job(held)["reason"]) == ("CANCELLED", "JobHeldUser")
    r = local.run(["scontrol", "show", "job", str(held)], user=USER)
    times = re.search(r"StartTime=(\S+) EndTime=(\S+) ", r.stdout)
    assert times and times.group(1) == times.group(2) != "Unknown", r.stdout
    r = local.run(["squeue", "-h", "-t", "all", "-j", str(held), "-o", "%T %r"], user=USER)
    assert r.stdout == "CANCELLED JobHeldUser\n"


def test_other_user_cannot_cancel(local):
    job = local.submit("#!/bin/bash\nsleep 60\n", user=USER)
    r = local.run(["scancel", str(job)], user=OTHER)
    assert r.returncode != 0
    assert f"scancel: error: Kill job error on job id {job}: Access/permission denied" in r.stderr
    assert local.job(job)["state"] in ("PENDING", "RUNNING")
    local.run(["scancel", str(job)], user=USER)
    local.wait(job)


def test_out_of_memory(local):
    script = ("#!/bin/bash\npython3 -c \"import time; b = bytearray(300 * 1024 * 1024); "
              "b[::4096] = b'x' * len(b[::4096]); time.sleep(30)\"\n")
    job = local.submit(script, "--mem=50M", user=USER)
    info = local.wait(job, timeout=40)
    assert info["state"] == "OUT_OF_MEMORY"


def test_script_deleted_after_submit_still_runs(local):
    wd = local.workdir(USER)
    path = wd / "gone.sh"
    path.write_text("#!/bin/sh\necho still here\n")
    r = local.run(["sbatch", str(path)], user=USER, cwd=wd)
    assert r.returncode == 0, r.stderr
    job = int(r.stdout.split()[-1])
    path.unlink()
    assert local.wait(job)["state"] == "COMPLETED"
    assert (wd / f"slurm-{job}.out").read_text() == "still here\n"


def test_controller_restart_loses_nothing(local):
    wd = local.workdir(USER)
    running = local.submit("#!/bin/bash\nsleep 4\necho done\n", user=USER, cwd=wd)
    held = local.submit("#!/bin/bash\ntrue\n", "--hold", user=USER, cwd=wd)
    local.wait(running, ("RUNNING",))
    local.cluster.restart("controller")
    deadline = time.time() + 10
    while True:
        try:
            local.cluster.call("ping")
            break
        except Exception:
            if time.time() > deadline:
                raise
            time.sleep(0.1)
    assert local.job(held)["reason"] == "JobHeldUser"
    assert local.wait(running, timeout=30)["state"] == "COMPLETED"
    assert (wd / f"slurm-{running}.out").read_text() == "done\n"
    newer = local.submit("#!/bin/bash\ntrue\n", user=USER, cwd=wd)
    assert newer > held
    local.run(["scancel", str(held)], user=USER)


@pytest.mark.slow
def test_timeout_with_early_signal(local):
    wd = local.workdir(USER)
    script = ("#!/bin/bash\ntrap 'echo got USR1' USR1\nfor i in $(seq 200); do sleep 1; done\n")
    job = local.submit(script, "-t", "1", "--signal=B:USR1@55", user=USER, cwd=wd)
    info = local.wait(job, timeout=90)
    assert info["state"] == "TIMEOUT"
    text = (wd / f"slurm-{job}.out").read_text()
    assert "got USR1" in text
    assert f"slurmstepd-{info['nodes']}: error: *** JOB {job} ON {info['nodes']} CANCELLED AT" in text and "DUE TO TIME LIMIT ***" in text


@pytest.mark.slow
def test_lowering_a_running_jobs_time_limit_ends_it_at_the_new_limit(local):
    wd = local.workdir(USER)
    job = local.submit("#!/bin/bash\nsleep 300\n", "-t", "10", user=USER, cwd=wd)
    local.wait(job, states=("RUNNING",), timeout=30)
    r = local.run(["scontrol", "update", f"JobId={job}", "TimeLimit=1"], user=USER)
    assert r.returncode == 0, r.stderr
    info = local.wait(job, timeout=100)  # the node learns the new limit at its next heartbeat
    assert info["state"] == "TIMEOUT"
    assert f"*** JOB {job} ON {info['nodes']} CANCELLED AT" in (wd / f"slurm-{job}.out").read_text()
    r = local.run(["scontrol", "update", f"JobId={job}", "TimeLimit=20"], user=USER)
    assert r.returncode != 0  # a user may lower a limit but not raise it (nor touch an ended job)


def test_garbage_on_the_wire_is_refused_and_daemon_survives(local):
    import json
    import socket
    import struct

    port = json.loads(local.cluster.conf_file.read_text())["clusters"]["local"]["port"]
    for payload in (b"GET / HTTP/1.0\r\n\r\n", struct.pack(">II", 10, 2**31), b"\x00\x00\x00\x02{}" + b"\x00" * 6):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            reply = s.recv(65536)
        assert reply == b"" or b'"ok":false' in reply
    assert local.cluster.call("ping")["cluster"] == "local"


def test_authenticated_nonsense_gets_an_answer_and_daemon_survives(local):
    """Values of the wrong kind in a signed request (found by fuzzing every op): each gets an error reply, never
    a dropped connection, and the controller goes on answering."""
    from orchestrator.scheduler.protocol import RpcError

    cases = [("acct", {"start": {"a": 1}}), ("acct", {"end": [1, "2"]}), ("acct", {"start": 2**70}),
             ("update_job", {"job_ids": "n[1-", "set": "1_2"}), ("jobs", {"fields": {"a": 1}}),
             ("signal", {"job_ids": 5}), ("submit", {"job": {"partition": 5}})]
    errors = 0
    for op, body in cases:
        try:
            local.cluster.call(op, body)  # an answer, even one that only lists per-id errors, is fine
        except RpcError as exc:
            assert exc.code != "SLURM_COMMUNICATIONS_RECEIVE_ERROR", (op, body, exc.message)
            errors += 1
    assert errors >= 5  # the SQLite-bound ones among them went unanswered before
    assert local.cluster.call("ping")["cluster"] == "local"


def _raw_sender(local):
    """A function that sends one hand-made frame to the controller and returns the reply's header."""
    import json
    import socket

    from orchestrator.scheduler.protocol import read_frame

    port = json.loads(local.cluster.conf_file.read_text())["clusters"]["local"]["port"]
    os.environ["MINIHPC_MUNGE_SOCKET"] = str(local.cluster.munge_socket)

    def send(frame: bytes) -> dict:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(frame)
            header, _ = read_frame(s)
        return header

    return send


def test_credentials_made_over_munged_socket_are_what_libmunge_decodes(local, tmp_path):
    """The commands encode by munged's socket protocol, the daemons decode with libmunge: who made it,
    its payload, and munge's own refusals (a replay; no munged) come through."""
    from orchestrator.scheduler import auth

    os.environ["MINIHPC_MUNGE_SOCKET"] = str(local.cluster.munge_socket)
    cred = auth.encode(b"payload \x00\xff bytes")
    assert cred.startswith("MUNGE:") and cred.endswith(":")
    ident = auth.decode(cred)
    assert (ident.uid, ident.gid, ident.payload) == (os.getuid(), os.getgid(), b"payload \x00\xff bytes")
    with pytest.raises(auth.AuthError) as replay:
        auth.decode(cred)
    assert replay.value.replayed and "replayed" in str(replay.value).lower()
    assert auth.decode(auth.encode()).payload == b""
    missing = tmp_path / "no-munged.socket"
    os.environ["MINIHPC_MUNGE_SOCKET"] = str(missing)
    try:
        with pytest.raises(auth.AuthError) as gone:
            auth.encode(b"x")
        assert gone.value.no_daemon and str(gone.value) == f'Failed to access "{missing}": No such file or directory'
    finally:
        os.environ["MINIHPC_MUNGE_SOCKET"] = str(local.cluster.munge_socket)


def test_unsigned_or_replayed_request_is_refused(local):
    import json

    from orchestrator.scheduler.client import signed_request
    from orchestrator.scheduler.protocol import encode_frame

    send = _raw_sender(local)
    forged = encode_frame({"v": 1, "op": "ping", "cred": "MUNGE:not-a-credential"}, {})
    assert send(forged)["ok"] is False
    frame = signed_request("ping", {})
    assert send(frame)["ok"] is True
    replay = send(frame)
    assert replay["ok"] is False and "authentication" in replay["error"]["message"].lower()
    # A credential cannot be moved onto another request body.
    good = signed_request("jobs", {"fields": ["job_id"]})
    hlen = int.from_bytes(good[:4], "big")
    header = json.loads(good[8:8 + hlen])
    swapped = encode_frame(header, {"fields": ["job_id", "uid"]})
    assert send(swapped)["ok"] is False


def test_a_request_meant_for_another_cluster_is_refused(local):
    """The commands name the cluster they mean (a recorded controller address may have gone to another
    cluster's controller): the controller refuses, and serves the right one as before."""
    from orchestrator.scheduler.client import signed_request
    from orchestrator.scheduler.protocol import WRONG_CLUSTER

    send = _raw_sender(local)
    wrong = send(signed_request("ping", {}, "htc"))
    assert wrong["ok"] is False and wrong["error"]["code"] == WRONG_CLUSTER
    assert "Invalid cluster name: htc" in wrong["error"]["message"]
    assert send(signed_request("ping", {}, "local"))["ok"] is True


def test_payload_cannot_choose_the_uid(local):
    """A hand-made submit naming uid 0 is rejected; the job's uid always comes from munge."""
    import json

    code = ("import json,sys,os\nsys.path.insert(0, %r)\n"
            "from orchestrator.scheduler.client import Client\n"
            "from orchestrator.scheduler.protocol import RpcError\n"
            "c = Client()\n"
            "try:\n"
            "    c.call('submit', {'job': {'uid': 0, 'work_dir': '/tmp'}, 'script': '#!/bin/sh\\nid -u\\n', 'env': {}})\n"
            "    print('accepted')\n"
            "except RpcError as e:\n"
            "    print('refused', e.message)\n"
            "r = c.call('submit', {'job': {'work_dir': '/tmp', 'std_out': '/dev/null'}, "
            "'script': '#!/bin/sh\\nid -u\\n', 'env': {}})\n"
            "print(json.dumps(r))\n").replace("%r", repr(os.getcwd()))
    r = local.run(["python3", "-c", code], user=USER)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("refused")
    job = json.loads(lines[1])["job_id"]
    rec = local.acct(job)
    assert rec["uid"] == _uid(USER)


def test_requeue_keeps_the_earlier_run_for_sacct_duplicates(local):
    wd = local.workdir(USER)
    job = local.submit("#!/bin/bash\necho run $SLURM_RESTART_COUNT\nsleep 30\n", "--open-mode=append",
                       user=USER, cwd=wd)
    local.wait(job, ("RUNNING",))
    time.sleep(0.5)
    r = local.run(["scontrol", "requeue", str(job)], user=USER)
    assert r.returncode == 0, r.stderr
    deadline = time.time() + 30
    while time.time() < deadline:
        info = local.job(job, ("state", "restart_count"))
        if info["state"] == "RUNNING" and info["restart_count"] == 1:
            break
        time.sleep(0.2)
    assert info == {"state": "RUNNING", "restart_count": 1}
    local.run(["scancel", str(job)], user=USER)
    local.wait(job)
    plain = local.run(["sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j", str(job)], user=USER)
    dup = local.run(["sacct", "-X", "-D", "-n", "-P", "-o", "JobID,State", "-j", str(job)], user=USER)
    assert plain.stdout.splitlines() == [f"{job}|CANCELLED by {_uid(USER)}"]
    assert dup.stdout.splitlines() == [f"{job}|REQUEUED", f"{job}|CANCELLED by {_uid(USER)}"]
    text = (wd / f"slurm-{job}.out").read_text()
    assert "run\n" in text or "run \n" in text
    assert "run 1" in text


def test_requeue_and_requeuehold_refuse_a_pending_job(local):
    job = local.submit("#!/bin/bash\ntrue\n", "--hold", user=USER)
    for cmd in ("requeue", "requeuehold"):
        r = local.run(["scontrol", cmd, str(job)], user=USER)
        assert (r.returncode, r.stderr) == (1, f"Job is pending execution for job {job}\n"), cmd
    assert local.job(job, ("state", "reason")) == {"state": "PENDING", "reason": "JobHeldUser"}
    local.run(["scancel", str(job)], user=USER)


def test_hold_and_release_of_a_running_job_do_nothing_and_of_a_finished_one_fail(local):
    job = local.submit("#!/bin/bash\nsleep 30\n", user=USER)
    local.wait(job, ("RUNNING",))
    for cmd in ("hold", "uhold", "release"):
        r = local.run(["scontrol", cmd, str(job)], user=USER)
        assert (r.returncode, r.stderr) == (0, ""), cmd
    assert local.job(job, ("state",)) == {"state": "RUNNING"}
    local.run(["scancel", str(job)], user=USER)
    local.wait(job)
    r = local.run(["scontrol", "hold", str(job)], user=USER)
    assert (r.returncode, r.stderr) == (1, f"Job has already finished for job {job}\n"
                                           "slurm_suspend error: Job has already finished\n")


def test_a_requeued_jobs_earlier_steps_show_only_with_duplicates(local):
    # sacct (22.05) after scontrol requeue: the new run is a record of its own, submitted at the requeue, with
    # its own steps numbered from 0; the earlier run and its steps are listed before it only with -D
    job = local.submit("#!/bin/bash\nsrun true\nsleep 30\n", user=USER)
    local.wait(job, ("RUNNING",))
    deadline = time.time() + 15
    while time.time() < deadline and "0" not in [s["step_id"] for s in local.acct(job)["steps"]]:
        time.sleep(0.2)
    submitted = local.acct(job)["submit_time"]
    assert local.run(["scontrol", "requeue", str(job)], user=USER).returncode == 0
    deadline = time.time() + 30
    while time.time() < deadline:
        rec = local.acct(job)
        if rec["state"] == "RUNNING" and "0" in [s["step_id"] for s in rec["steps"]]:
            break
        time.sleep(0.2)
    local.run(["scancel", str(job)], user=USER)
    local.wait(job)
    plain = local.run(["sacct", "-n", "-P", "-o", "JobID,State", "-j", str(job)], user=USER)
    dup = local.run(["sacct", "-D", "-n", "-P", "-o", "JobID,State", "-j", str(job)], user=USER)
    cancelled = f"CANCELLED by {_uid(USER)}"
    run2 = [f"{job}|{cancelled}", f"{job}.batch|CANCELLED", f"{job}.extern|COMPLETED", f"{job}.0|COMPLETED"]
    assert plain.stdout.splitlines() == run2
    assert dup.stdout.splitlines() == [f"{job}|REQUEUED", f"{job}.batch|CANCELLED", f"{job}.extern|COMPLETED",
                                       f"{job}.0|COMPLETED", *run2]
    rec = local.acct(job)
    assert rec["submit_time"] > submitted and rec["restart_count"] == 1
