"""Issue 5 on the local scheduler: arrays, dependencies, GPUs and constraints, as users drive them."""

from __future__ import annotations

import re
import time

import pytest

USER = "mhalice"


def _squeue(local, *args: str) -> list[str]:
    r = local.run(["squeue", "-h", *args], user=USER)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def test_array_throttle_env_and_display(local):
    wd = local.workdir(USER)
    script = ("#!/bin/bash\necho $SLURM_ARRAY_JOB_ID $SLURM_ARRAY_TASK_ID $SLURM_ARRAY_TASK_COUNT "
              "$SLURM_ARRAY_TASK_MIN $SLURM_ARRAY_TASK_MAX $SLURM_ARRAY_TASK_STEP\nsleep 2\n")
    job = local.submit(script, "-a", "1-9:2%2", user=USER, cwd=wd)
    most = 0
    shown_pending = False
    deadline = time.time() + 60
    while time.time() < deadline:
        lines = _squeue(local, "-o", "%i %t", "-j", str(job))
        running = [ln for ln in lines if ln.endswith(" R")]
        most = max(most, len(running))
        if any(ln.startswith(f"{job}_[") and "%2]" in ln for ln in lines):
            shown_pending = True
        if not lines:
            break
        time.sleep(0.2)
    assert most <= 2 and most >= 1
    assert shown_pending
    outs = sorted(wd.glob(f"slurm-{job}_*.out"))
    assert [p.name for p in outs] == [f"slurm-{job}_{i}.out" for i in (1, 3, 5, 7, 9)]
    for p in outs:
        task = p.stem.split("_")[1]
        assert p.read_text().split() == [str(job), task, "5", "1", "9", "2"]


def test_array_cancel_one_task_and_a_range(local):
    job = local.submit("#!/bin/bash\nsleep 60\n", "-a", "0-5", "--hold", user=USER)
    assert local.run(["scancel", f"{job}_2"], user=USER).returncode == 0
    assert local.run(["scancel", f"{job}_[4-5]"], user=USER).returncode == 0
    lines = _squeue(local, "-o", "%i", "-j", str(job))
    assert lines == [f"{job}_[0-1,3]"]
    assert local.run(["scancel", str(job)], user=USER).returncode == 0
    assert _squeue(local, "-j", str(job)) == []


def test_cancelling_all_pending_tasks_of_an_array_cancels_its_one_record(local):
    job = local.submit("#!/bin/bash\nsleep 60\n", "-a", "0-499", "--hold", user=USER)
    assert local.run(["scancel", "-u", USER], user=USER).returncode == 0  # scancel names it {job}_[0-499]
    assert _squeue(local, "-j", str(job)) == []
    recs = local.cluster.call("acct", {"job_ids": [job]})["jobs"]
    assert [(r["job_id"], r["array_task_str"], r["state"]) for r in recs] == [(job, "0-499", "CANCELLED")]


def test_scontrol_update_array_task_throttle(local):
    job = local.submit("#!/bin/bash\nsleep 60\n", "-a", "0-6:3%1", "--hold", user=USER)
    for target, value, shown in ((str(job), "2", "0,3,6%2"), (f"{job}_3", "3", "0,3,6%3"), (str(job), "x", "0,3,6")):
        r = local.run(["scontrol", "update", f"JobId={target}", f"ArrayTaskThrottle={value}"], user=USER)
        assert (r.returncode, r.stderr) == (0, "")
        assert _squeue(local, "-o", "%K", "-j", str(job)) == [shown]
    r = local.run(["scontrol", "update", f"JobId={job}", "ArrayTaskThrottle=1"], user=USER)
    assert local.run(["scontrol", "release", str(job)], user=USER).returncode == 0
    time.sleep(2)
    assert len([ln for ln in _squeue(local, "-o", "%t", "-j", str(job)) if ln == "R"]) == 1
    local.run(["scancel", str(job)], user=USER)


def test_array_task_step_is_the_step_written(local):
    wd = local.workdir(USER)
    job = local.submit("#!/bin/bash\necho $SLURM_ARRAY_TASK_STEP $SLURM_ARRAY_TASK_COUNT\n", "-a", "2,4,6",
                       user=USER, cwd=wd)
    local.wait(f"{job}_2")
    assert (wd / f"slurm-{job}_2.out").read_text().split() == ["1", "3"]


def test_invalid_array_is_refused(local):
    r = local.run(["sbatch", "-a", "0-5000", "--wrap", "true"], user=USER)
    assert r.returncode == 1
    assert "sbatch: error: Batch job submission failed: Invalid job array specification" in r.stderr


def test_afterok_chain_with_failing_middle(local):
    first = local.submit("#!/bin/bash\ntrue\n", user=USER)
    middle = local.submit("#!/bin/bash\nexit 1\n", f"--dependency=afterok:{first}", user=USER)
    last = local.submit("#!/bin/bash\ntrue\n", f"--dependency=afterok:{middle}", user=USER)
    assert local.wait(first)["state"] == "COMPLETED"
    assert local.wait(middle)["state"] == "FAILED"
    deadline = time.time() + 15
    while local.job(last)["reason"] != "DependencyNeverSatisfied" and time.time() < deadline:
        time.sleep(0.2)
    info = local.job(last)
    assert (info["state"], info["reason"]) == ("PENDING", "DependencyNeverSatisfied")
    # afternotok on the failed job runs; afterany always runs
    other = local.submit("#!/bin/bash\ntrue\n", f"--dependency=afternotok:{middle}?afterany:{first}", user=USER)
    assert local.wait(other)["state"] == "COMPLETED"
    local.run(["scancel", str(last)], user=USER)


def test_dependency_on_unknown_job_counts_as_satisfied_and_bad_lists_are_refused(local):
    # slurmctld takes ids it does not know (purged, never existed) as satisfied
    job = local.submit("#!/bin/bash\ntrue\n", "--dependency=afterok:999999", user=USER)
    assert local.wait(job)["state"] == "COMPLETED"
    first = local.submit("#!/bin/bash\ntrue\n", "--hold", user=USER)
    for dep, msg in ((f"afterok:{first}?", "Job dependency problem"), (f"afterok:{first},", "Job dependency problem"),
                     (f"afterok:{first}+0", "Job dependency problem"), ("afterok:0", "Job dependency problem"),
                     ("bogus:1", "Job dependency problem"), (f"expand:{first}",
                                                             "Requested operation not supported on this system")):
        r = local.run(["sbatch", f"--dependency={dep}", "--wrap", "true"], user=USER)
        assert (r.returncode, r.stderr) == (1, f"sbatch: error: Batch job submission failed: {msg}\n"), dep
    # the old form (bare ids) is afterany, and repeated ids are kept once
    old = local.submit("#!/bin/bash\ntrue\n", "--hold", f"--dependency={first}", user=USER)
    r = local.run(["squeue", "-h", "-o", "%E", "-j", str(old)], user=USER)
    assert r.stdout.strip().startswith(f"afterany:{first}")
    r = local.run(["scontrol", "update", f"JobId={old}", f"Dependency=afterok:{first}:{first}"], user=USER)
    assert r.returncode == 0
    r = local.run(["squeue", "-h", "-o", "%E", "-j", str(old)], user=USER)
    assert r.stdout.strip().startswith(f"afterok:{first}") and f"{first}:{first}" not in r.stdout
    r = local.run(["scontrol", "update", f"JobId={old}", "Dependency="], user=USER)
    assert r.returncode == 0
    assert local.run(["squeue", "-h", "-o", "%E", "-j", str(old)], user=USER).stdout.strip() == "(null)"
    assert local.run(["scontrol", "update", f"JobId={old}", f"Dependency=afterok:{first}"], user=USER).returncode == 0
    r = local.run(["scontrol", "update", f"JobId={old}", "Dependency=0"], user=USER)  # 0 clears too
    assert (r.returncode, r.stderr) == (0, "")
    assert local.run(["squeue", "-h", "-o", "%E", "-j", str(old)], user=USER).stdout.strip() == "(null)"
    local.run(["scancel", str(first), str(old)], user=USER)


def test_dependency_is_shown_as_slurmctld_keeps_it(local):
    def shown(job: int) -> str:
        r = local.run(["scontrol", "show", "job", str(job)], user=USER)
        return r.stdout.split("Dependency=", 1)[1].split()[0]

    ok = local.submit("#!/bin/bash\ntrue\n", user=USER)
    bad = local.submit("#!/bin/bash\nexit 1\n", user=USER)
    held = local.submit("#!/bin/bash\ntrue\n", "--hold", user=USER)
    local.wait(ok)
    local.wait(bad)
    both = local.submit("#!/bin/bash\ntrue\n", f"--dependency=afterok:{ok}:{held}", user=USER)
    failed = local.submit("#!/bin/bash\ntrue\n", f"--dependency=afterok:{bad}", user=USER)
    wd = local.workdir(USER)
    anyof = local.submit("#!/bin/bash\necho $SLURM_JOB_DEPENDENCY\n", f"--dependency=afterok:{held}?afterok:{ok}",
                         user=USER, cwd=wd)
    deadline = time.time() + 15
    while time.time() < deadline and local.job(failed)["reason"] != "DependencyNeverSatisfied":
        time.sleep(0.2)
    assert shown(both) == f"afterok:{held}(unfulfilled)"  # the satisfied half is dropped
    assert shown(failed) == f"afterok:{bad}(failed)"
    assert local.wait(anyof)["state"] == "COMPLETED"
    assert shown(anyof) == "(null)"
    assert (wd / f"slurm-{anyof}.out").read_text().strip() == f"afterok:{held}?afterok:{ok}"  # as given
    r = local.run(["squeue", "-h", "-o", "%E", "-j", str(both)], user=USER)
    assert r.stdout.strip() == f"afterok:{held}(unfulfilled)"
    local.run(["scancel", str(held), str(both), str(failed)], user=USER)


def test_kill_on_invalid_dep_cancels_a_job_whose_dependency_can_never_hold(local):
    bad = local.submit("#!/bin/bash\nexit 3\n", user=USER)
    assert local.wait(bad)["state"] == "FAILED"
    killed = local.submit("#!/bin/bash\ntrue\n", "--kill-on-invalid-dep=yes", f"--dependency=afterok:{bad}",
                          user=USER)
    kept = local.submit("#!/bin/bash\ntrue\n", "--kill-on-invalid-dep=no", f"--dependency=afterok:{bad}",
                        user=USER)
    info = local.wait(killed, states=("CANCELLED",), timeout=15)
    assert info["reason"] == "DependencyNeverSatisfied"
    # slurmctld 22.05 cancels it in the name of nobody, StartTime=EndTime, the reason kept
    r = local.run(["scontrol", "show", "job", str(killed)], user=USER)
    assert "JobState=CANCELLED Reason=DependencyNeverSatisfied " in r.stdout
    times = re.search(r"StartTime=(\S+) EndTime=(\S+) ", r.stdout)
    assert times and times.group(1) == times.group(2) != "Unknown", r.stdout
    r = local.run(["sacct", "-j", str(killed), "-X", "-P", "-n", "-o", "State,ExitCode"], user=USER)
    assert r.stdout == "CANCELLED|0:0\n"
    assert (local.job(kept)["state"], local.job(kept)["reason"]) == ("PENDING", "DependencyNeverSatisfied")
    local.run(["scancel", str(kept)], user=USER)
    r = local.run(["sbatch", "--kill-on-invalid-dep=maybe", "--wrap", "true"], user=USER)
    assert (r.returncode, r.stderr) == (255, "sbatch: error: Invalid --kill-on-invalid-dep specification\n")


def test_gpu_jobs_get_distinct_devices_and_gpu_nodes_need_a_gpu_request(local):
    wd = local.workdir(USER)
    script = "#!/bin/bash\necho $CUDA_VISIBLE_DEVICES $SLURM_JOB_GPUS $SLURM_GPUS_ON_NODE\nsleep 3\n"
    a = local.submit(script, "-p", "gpu", "--gres=gpu:v100:1", user=USER, cwd=wd)
    b = local.submit(script, "-p", "gpu", "--gres=gpu:1", user=USER, cwd=wd)
    assert local.wait(a)["state"] == "COMPLETED" and local.wait(b)["state"] == "COMPLETED"
    seen = sorted((wd / f"slurm-{j}.out").read_text().split()[0] for j in (a, b))
    assert seen == ["0", "1"]
    r = local.run(["sbatch", "-p", "gpu", "--wrap", "true"], user=USER)
    assert r.returncode == 1
    assert "Requested node configuration is not available" in r.stderr


def test_gpu_request_options_are_echoed_in_the_job_environment(local):
    wd = local.workdir(USER)
    script = "#!/bin/bash\necho G=$SLURM_GPUS N=$SLURM_GPUS_PER_NODE T=$SLURM_GPUS_PER_TASK\n"
    jobs = {local.submit(script, "-p", "gpu", *args, user=USER, cwd=wd): want for args, want in (
        (("--gpus=2",), "G=2 N= T="), (("--gpus-per-node=1",), "G= N=1 T="),
        (("--gpus-per-task=1",), "G= N= T=1"), (("--gres=gpu:1",), "G= N= T="))}
    for job, want in jobs.items():
        assert local.wait(job)["state"] == "COMPLETED"
        assert (wd / f"slurm-{job}.out").read_text().strip() == want


def test_invalid_gres_and_unknown_feature_are_refused(local):
    r = local.run(["sbatch", "-p", "gpu", "--gres=gpu:h100:1", "--wrap", "true"], user=USER)
    assert r.returncode == 1
    assert "Invalid generic resource (gres) specification" in r.stderr
    r = local.run(["sbatch", "-C", "nosuchfeature", "--wrap", "true"], user=USER)
    assert r.returncode == 1
    assert "Invalid feature specification" in r.stderr


@pytest.mark.parametrize("args,error", [
    # slurmctld's _job_create checks -w names, the partition, the account, the QOS, the GRES, -x names, the
    # dependency and the features in that order; whether any nodes could hold the job comes last
    (["-p", "nosuch", "-C", "nofeat", "-w", "nonode"], "Invalid node name specified"),
    (["-C", "nofeat", "-w", "nonode"], "Invalid node name specified"),
    (["-w", "nonode", "-A", "nosuchacct"], "Invalid node name specified"),
    (["-p", "nosuch", "-A", "nosuchacct"], "Invalid partition name specified"),
    (["-C", "nofeat", "-A", "nosuchacct"], "Invalid account or account/partition combination specified"),
    (["-A", "nosuchacct", "--qos=nosuchqos"], "Invalid account or account/partition combination specified"),
    (["-C", "nofeat", "--qos=nosuchqos"], "Invalid qos specification"),
    (["-x", "nonode", "--gres=gpu:h100:1"], "Invalid generic resource (gres) specification"),
    (["-C", "nofeat", "-x", "nonode"], "Invalid node name specified"),
    (["-C", "nofeat", "-d", "afterok:abc"], "Job dependency problem"),
    (["-C", "nofeat", "-n", "1000"], "Invalid feature specification"),
    (["-n", "1000"], "Requested node configuration is not available"),
])
def test_test_only_names_the_fault_slurm_checks_first(local, args, error):
    r = local.run(["sbatch", "--test-only", *args, "--wrap", "true"], user=USER)
    assert (r.returncode, r.stderr.splitlines()[-1]) == (1, f"allocation failure: {error}")


def test_constraint_selects_the_node(local):
    job = local.submit("#!/bin/bash\ntrue\n", "-p", "gpu", "--gres=gpu:1", "-C", "gpu_sku:V100&gpu_gen:Volta",
                       user=USER)
    info = local.wait(job)
    assert (info["state"], info["nodes"]) == ("COMPLETED", "gpu1")


def test_sacct_by_array_id_lists_every_task(local):
    job = local.submit("#!/bin/bash\ntrue\n", "-a", "1-3", user=USER)
    deadline = time.time() + 30
    while _squeue(local, "-j", str(job)) and time.time() < deadline:
        time.sleep(0.2)
    r = local.run(["sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j", str(job)], user=USER)
    assert sorted(r.stdout.split()) == [f"{job}_{i}|COMPLETED" for i in (1, 2, 3)]


def _sacct(local, job: int, fmt: str) -> str:
    r = local.run(["sacct", "-X", "-P", "-n", "-o", fmt, "-j", str(job)], user=USER)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_sacct_reason_is_the_last_reason_a_job_waited_for(local):
    # slurmdbd's Reason is state_reason_prev: what a job waited for besides its turn or room, kept once it ran;
    # scontrol shows the job's reason now (None once it ran, NonZeroExitCode once it failed)
    first = local.submit("#!/bin/bash\nsleep 1\n", user=USER)
    after = local.submit("#!/bin/bash\ntrue\n", f"--dependency=afterok:{first}", user=USER)
    held = local.submit("#!/bin/bash\nexit 3\n", "--hold", user=USER)
    time.sleep(1)
    assert local.run(["scontrol", "release", str(held)], user=USER).returncode == 0
    assert local.wait(after)["state"] == "COMPLETED"
    assert local.wait(held)["state"] == "FAILED"
    assert local.wait(first)["state"] == "COMPLETED"
    assert _sacct(local, first, "Reason") == "None"
    assert _sacct(local, after, "Reason") == "Dependency"
    assert _sacct(local, held, "State,Reason") == "FAILED|JobHeldUser"
    r = local.run(["scontrol", "show", "job", str(held)], user=USER)
    assert " JobState=FAILED Reason=NonZeroExitCode " in r.stdout
    r = local.run(["scontrol", "show", "job", str(after)], user=USER)
    assert " JobState=COMPLETED Reason=None " in r.stdout
    # sacct --reason selects on that reason
    r = local.run(["sacct", "-X", "-n", "-P", "-o", "JobID", "-j", f"{first},{after},{held}", "--reason=dependency"],
                  user=USER)
    assert (r.returncode, r.stdout) == (0, f"{after}\n")


def _eligible(local, job: int) -> str:
    r = local.run(["scontrol", "show", "job", str(job)], user=USER)
    return r.stdout.split("EligibleTime=", 1)[1].split()[0]


def test_eligible_time_is_when_a_job_could_first_run(local):
    # slurmctld's EligibleTime: the submission for a plain job, the --begin time (at once), the release of a
    # held job and the satisfaction of a dependency; Unknown until then. sacct's Eligible is the same time.
    plain = local.submit("#!/bin/bash\nsleep 2\n", user=USER)
    later = local.submit("#!/bin/bash\ntrue\n", "--begin=now+2", user=USER)
    held = local.submit("#!/bin/bash\ntrue\n", "--hold", user=USER)
    after = local.submit("#!/bin/bash\ntrue\n", f"--dependency=afterok:{plain}", user=USER)
    submitted = local.run(["squeue", "-h", "-o", "%V", "-j", str(plain)], user=USER).stdout.strip()
    assert _eligible(local, plain) == submitted
    begin = _eligible(local, later)
    assert begin != "Unknown" and begin > submitted and local.job(later)["state"] == "PENDING"
    assert _eligible(local, held) == "Unknown" and _eligible(local, after) == "Unknown"
    time.sleep(1)
    local.run(["scontrol", "release", str(held)], user=USER)
    for job in (plain, later, held, after):
        assert local.wait(job)["state"] == "COMPLETED"
    released, satisfied = _eligible(local, held), _eligible(local, after)
    assert "Unknown" not in (released, satisfied) and released > submitted and satisfied > submitted
    r = local.run(["scontrol", "show", "job", str(plain)], user=USER)
    assert re.search(r" EndTime=(\S+) ", r.stdout)[1] <= satisfied  # type: ignore[index]
    for job, when in ((plain, submitted), (later, begin), (held, released), (after, satisfied)):
        assert _sacct(local, job, "Eligible") == when
