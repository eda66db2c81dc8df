"""scontrol against a fake controller; record layouts and messages as real Slurm 22.05 prints them."""

from __future__ import annotations

from typing import Any

import pytest
from fakeslurm import FakeSlurm, job, run, slurm_fixture  # noqa: F401 - the fixture

from orchestrator.scheduler.protocol import RpcError


@pytest.fixture
def jobs(slurm: FakeSlurm) -> FakeSlurm:
    slurm.jobs = [
        job(53, name="showme", time_limit=10, std_out="/tmp/x-%j.out", comment="hi there", reason="Resources",
            submit_time=1764000000, eligible_time=1764000000, mem_per_cpu=100, submit_host="localhost"),
        job(54, name="arr", array_job_id=54, array_task_str="1-3", array_max_tasks=1, priority=0,
            reason="JobHeldUser", submit_time=1764000000, mem_per_cpu=100, submit_host="localhost"),
    ]
    slurm.serve_jobs()
    return slurm


def test_show_job(jobs: FakeSlurm) -> None:
    rc, out, err = run("scontrol", "show", "job", "53")
    assert (rc, err) == (0, "")
    assert out == (
        "JobId=53 JobName=showme\n"
        "   UserId=alice(1001) GroupId=alice(1001) MCS_label=N/A\n"
        "   Priority=4294901704 Nice=0 Account=research QOS=normal\n"
        "   JobState=PENDING Reason=Resources Dependency=(null)\n"
        "   Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0\n"
        "   RunTime=00:00:00 TimeLimit=00:10:00 TimeMin=N/A\n"
        "   SubmitTime=2025-11-24T16:00:00 EligibleTime=2025-11-24T16:00:00\n"
        "   AccrueTime=2025-11-24T16:00:00\n"
        "   StartTime=Unknown EndTime=Unknown Deadline=N/A\n"
        "   SuspendTime=None SecsPreSuspend=0 LastSchedEval=2025-11-24T16:00:00 Scheduler=Main\n"
        "   Partition=short AllocNode:Sid=localhost:0\n"
        "   ReqNodeList=(null) ExcNodeList=(null)\n"
        "   NodeList=\n"
        "   NumNodes=1 NumCPUs=1 NumTasks=1 CPUs/Task=1 ReqB:S:C:T=0:0:*:*\n"
        "   TRES=cpu=1,mem=100M,node=1,billing=1\n"
        "   Socks/Node=* NtasksPerN:B:S:C=0:0:*:* CoreSpec=*\n"
        "   MinCPUsNode=1 MinMemoryCPU=100M MinTmpDiskNode=0\n"
        "   Features=(null) DelayBoot=00:00:00\n"
        "   OverSubscribe=OK Contiguous=0 Licenses=(null) Network=(null)\n"
        "   Command=(null)\n"
        "   WorkDir=/home/alice\n"
        "   Comment=hi there \n"
        "   StdErr=/tmp/x-53.out\n"
        "   StdIn=/dev/null\n"
        "   StdOut=/tmp/x-53.out\n"
        "   Power=\n"
        "   \n\n")


def test_show_job_oneliner_and_array(jobs: FakeSlurm) -> None:
    out = run("scontrol", "-o", "show", "job", "53")[1]
    assert out.startswith("JobId=53 JobName=showme UserId=alice(1001) GroupId=alice(1001) MCS_label=N/A ")
    assert out.endswith("StdOut=/tmp/x-53.out Power= \n") and out.count("\n") == 1
    out = run("scontrol", "show", "job", "54")[1]
    assert out.startswith("JobId=54 ArrayJobId=54 ArrayTaskId=1-3%1 ArrayTaskThrottle=1 JobName=arr\n")
    assert "   StdOut=/home/alice/slurm-54_4294967294.out\n" in out
    out = run("scontrol", "show", "job", "54_2")[1]
    assert out.startswith("JobId=54 ArrayJobId=54 ArrayTaskId=2 ArrayTaskThrottle=1 JobName=arr\n")
    assert "   StdOut=/home/alice/slurm-54_2.out\n" in out


@pytest.mark.parametrize("args,rc,out,err", [
    (["show", "job", "99999"], 1, "", "slurm_load_jobs error: Invalid job id specified\n"),
    (["show", "job", "abc"], 1, "", "scontrol_print_job error: Invalid job id specified\n"),
    (["foo"], 1, "", "invalid keyword: foo\n"),
    (["show", "foo"], 1, "", "invalid entity:foo for keyword:show \n"),
    (["show"], 1, "", "too few arguments for keyword:show\n"),
    (["hold"], 1, "", "too few arguments for keyword:hold\n"),
    (["--foo"], 1, "", "scontrol: unrecognized option '--foo'\nTry \"scontrol --help\" for more information\n"),
])
def test_errors(jobs: FakeSlurm, args: list[str], rc: int, out: str, err: str) -> None:
    assert run("scontrol", *args) == (rc, out, err)


def test_hostnames_and_hostlist_work_offline(slurm: FakeSlurm, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run("scontrol", "show", "hostnames", "a[1-3],b") == (0, "a1\na2\na3\nb\n", "")
    assert run("scontrol", "show", "hostlist", "a1,a2,a3,b") == (0, "a[1-3],b\n", "")
    # real scontrol: order kept, adjacent names of one prefix share a bracket
    assert run("scontrol", "show", "hostlist", "b,a2,a1") == (0, "b,a[2,1]\n", "")
    assert run("scontrol", "show", "hostlist", "a1,a3,a2,b1,a4") == (0, "a[1,3,2],b1,a4\n", "")
    assert run("scontrol", "show", "hostlistsorted", "a1,a3,a2,b1,a4") == (0, "a[1-4],b1\n", "")
    monkeypatch.delenv("SLURM_NODELIST", raising=False)
    assert run("scontrol", "show", "hostnames") == (0, "", "scontrol: error: host list is empty\n")
    monkeypatch.setenv("SLURM_NODELIST", "arc-c[001-002]")
    assert run("scontrol", "show", "hostname")[1] == "arc-c001\narc-c002\n"
    assert not slurm.calls


def control(slurm: FakeSlurm, op: str, error: str | None = None, message: str = "") -> None:
    slurm.on(op, lambda body: {"results": [{"job_id": j, "error": error, "message": message}
                                           for j in body["job_ids"]]})


def test_hold_release_messages(slurm: FakeSlurm) -> None:
    control(slurm, "hold", "ESLURM_INVALID_JOB_ID", "Invalid job id specified")
    assert run("scontrol", "hold", "99999") == (1, "", "Invalid job id specified for job 99999\n"
                                                      "slurm_suspend error: Invalid job id specified\n")
    control(slurm, "release", "ESLURM_ACCESS_DENIED", "Access/permission denied")
    assert run("scontrol", "release", "55") == (1, "", "Invalid user id for job 55\n"
                                                     "slurm_suspend error: Invalid user id\n")
    control(slurm, "hold")
    assert run("scontrol", "hold", "54") == (0, "", "")
    assert slurm.ops("hold")[-1] == {"job_ids": ["54"], "user": False}
    assert run("scontrol", "uhold", "54")[0] == 0
    assert slurm.ops("hold")[-1]["user"] is True


def test_update_job(slurm: FakeSlurm) -> None:
    control(slurm, "update_job")
    assert run("scontrol", "update", "JobId=54", "TimeLimit=30", "Name=new") == (0, "", "")
    assert slurm.ops("update_job")[0] == {"job_ids": ["54"], "set": {"TimeLimit": "30", "Name": "new"}}
    assert run("scontrol", "update", "jobid=54", "timelimit+=10")[0] == 0
    assert slurm.ops("update_job")[1]["set"] == {"TimeLimit": "+10"}
    assert run("scontrol", "update", "JobId=54", "TimeLimit=abc") == (1, "", "scontrol: error: Invalid TimeLimit value\n")
    assert run("scontrol", "update", "JobId=54", "Foo=bar") == (
        1, "", "Update of this parameter is not supported: Foo=bar\nRequest aborted\n")
    assert run("scontrol", "update", "Foo=bar") == (
        1, "", 'No valid entity in update command\nInput line must include "NodeName", "PartitionName", '
               '"Reservation", "JobId", or "SlurmctldDebug"\n')
    # StartTime is read here as parse_time() reads it: a refused one is reported and left out (22.05 side by side)
    assert run("scontrol", "update", "JobId=54", "StartTime=junk", "TimeLimit=5") == (
        0, "", "Invalid time specification (pos=0): junk\n")
    assert slurm.ops("update_job")[-1]["set"] == {"TimeLimit": "5"}
    assert run("scontrol", "update", "JobId=54", "StartTime=junk") == (
        1, "", "Invalid time specification (pos=0): junk\nNo changes specified\n")
    assert run("scontrol", "update", "JobId=54", "StartTime=") == (1, "", "No changes specified\n")
    assert run("scontrol", "update", "JobId=54", "StartTime=uts1900000000")[0] == 0
    assert slurm.ops("update_job")[-1]["set"] == {"StartTime": "uts1900000000"}
    control(slurm, "update_job", "ESLURM_INVALID_JOB_ID", "Invalid job id specified")
    assert run("scontrol", "update", "JobId=99999", "TimeLimit=5") == (1, "", "Invalid job id specified for job 99999\n")


def test_requeue_and_top(slurm: FakeSlurm) -> None:
    control(slurm, "requeue", "ESLURM_INVALID_JOB_ID", "Invalid job id specified")
    assert run("scontrol", "requeue", "99999") == (1, "", "Invalid job id specified for job 99999\n")
    control(slurm, "requeue")
    assert run("scontrol", "requeuehold", "5")[0] == 0
    assert slurm.ops("requeue")[-1] == {"job_ids": ["5"], "hold": True}
    assert slurm.ops("requeue")[0] == {"job_ids": ["99999"], "hold": False}
    control(slurm, "top")
    assert run("scontrol", "top", "54")[0] == 0
    assert run("scontrol", "top", "54", "55") == (1, "", "too many arguments for keyword:top\n")
    assert run("scontrol", "requeue") == (1, "", "too few arguments for keyword:requeue\n")


def test_update_node(slurm: FakeSlurm) -> None:
    slurm.on("update_node", {})
    assert run("scontrol", "update", "NodeName=c001", "State=DRAIN") == (
        1, "", "You must specify a reason when DOWNING or DRAINING a node. Request denied\n")
    assert run("scontrol", "update", "NodeName=c001", "State=DRAIN", "Reason=bad disk") == (0, "", "")
    assert slurm.ops("update_node")[0] == {"nodes": "c001", "state": "DRAIN", "reason": "bad disk"}
    assert run("scontrol", "update", "nodename=c001", "state=resume")[0] == 0
    slurm.on("update_node", RpcError("ESLURM_ACCESS_DENIED", "Access/permission denied"))
    assert run("scontrol", "update", "NodeName=c001", "State=RESUME") == (
        1, "", "slurm_update error: Invalid user id\n")


def node_rec(**kw: Any) -> dict[str, Any]:
    rec = {"name": "vm", "state": "IDLE", "flags": ["DRAIN"], "reason": "x", "reason_user": "root",
           "reason_time": 1764000000, "cpus": 2, "alloc_cpus": 0, "memory": 8000, "alloc_mem": 0,
           "free_mem": 21011, "gres": "", "gres_used": "", "features": "", "partitions": ["short", "devel"],
           "boot_time": 1764000000, "slurmd_start_time": 1764000000, "last_busy": 1764000000, "addr": "vm",
           "hostname": "vm", "cpu_load": 1.51, "arch": "x86_64", "os": "Linux 6.1", "version": "22.05.8"}
    rec.update(kw)
    return rec


def test_show_node_and_partition(slurm: FakeSlurm) -> None:
    slurm.on("nodes", {"nodes": [node_rec()]})
    out = run("scontrol", "show", "node", "vm")[1]
    assert out.startswith("NodeName=vm Arch=x86_64 CoresPerSocket=1 \n   CPUAlloc=0 CPUEfctv=2 CPUTot=2 CPULoad=1.51\n")
    assert "   State=IDLE+DRAIN ThreadsPerCore=1 TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A\n" in out
    assert "   Partitions=short,devel \n" in out
    assert out.endswith("   Reason=x [root@2025-11-24T16:00:00]\n\n")
    assert run("scontrol", "show", "node", "nope") == (1, "Node nope not found\n", "")
    slurm.on("partitions", {"partitions": [{"name": "devel", "default": False, "nodes": "vm", "max_time": 10,
                                            "default_time": -1, "priority_tier": 1, "oversubscribe": 0,
                                            "max_nodes": None, "state": "UP", "total_cpus": 2, "total_nodes": 1,
                                            "def_mem_per_cpu": 0}]})
    assert run("scontrol", "-o", "show", "partition", "devel")[1] == (
        "PartitionName=devel AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL AllocNodes=ALL Default=NO QoS=N/A "
        "DefaultTime=NONE DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 Hidden=NO MaxNodes=UNLIMITED "
        "MaxTime=00:10:00 MinNodes=0 LLN=NO MaxCPUsPerNode=UNLIMITED Nodes=vm PriorityJobFactor=1 PriorityTier=1 "
        "RootOnly=NO ReqResv=NO OverSubscribe=NO OverTimeLimit=NONE PreemptMode=OFF State=UP TotalCPUs=2 "
        "TotalNodes=1 SelectTypeParameters=NONE JobDefaults=(null) DefMemPerNode=UNLIMITED "
        "MaxMemPerNode=UNLIMITED TRES=cpu=2,node=1,billing=2\n")
    assert run("scontrol", "show", "partition", "nope") == (1, "Partition nope not found\n", "")


def test_show_config(slurm: FakeSlurm) -> None:
    slurm.on("config", {"config": [["ClusterName", "arc"], ["MinJobAge", "300 sec"],
                                   ["SlurmctldHost[0]", "arc-controller"]]})
    out = run("scontrol", "show", "config")[1].splitlines()
    assert out[0].startswith("Configuration data as of ")
    assert out[1:] == ["ClusterName             = arc", "MinJobAge               = 300 sec",
                       "SlurmctldHost[0]        = arc-controller", "",
                       "Slurmctld(primary) at arc-controller is UP"]


def test_ping_and_version(slurm: FakeSlurm) -> None:
    slurm.on("ping", {"cluster": "arc"})
    assert run("scontrol", "ping") == (0, "Slurmctld(primary) at arc-controller is UP\n", "")
    assert run("scontrol", "version") == (0, "slurm 22.05.8\n", "")
    assert run("scontrol", "-V") == (0, "slurm 22.05.8\n", "")
    assert run("scontrol", "--usage")[1] == run("scontrol", "--help")[1]


@pytest.fixture
def steps(slurm: FakeSlurm) -> FakeSlurm:
    """A running batch job with two srun steps, its steps in the order slurmctld lists them."""
    run_ = {"state": "RUNNING", "start_time": 1764000000, "nodes": "vm", "num_nodes": 1}
    slurm.jobs = [
        job(15, name="memjob", state="RUNNING", start_time=1764000000, nodes="vm", mem_per_node=300, steps=[
            dict(run_, step_id="extern", name="extern", num_tasks=1, cpus=0),
            dict(run_, step_id="batch", name="batch", num_tasks=1, cpus=0),
            dict(run_, step_id="0", name="two", num_tasks=2, cpus=2, srun_host="vm", srun_pid=24810),
            dict(run_, step_id="1", name="one", num_tasks=1, cpus=2, srun_host="vm", srun_pid=24830,
                 start_time=1764000001),
            dict(run_, step_id="2", name="done", state="COMPLETED", num_tasks=1, cpus=1)]),
        job(16, name="percpu", state="RUNNING", start_time=1764000000, nodes="vm[1-2]", mem_per_cpu=100, steps=[
            dict(run_, step_id="0", name="wide", num_tasks=4, cpus=4, nodes="vm[1-2]", num_nodes=2,
                 srun_host="vm1", srun_pid=7)]),
        job(17, name="waiting", reason="Priority"),
    ]
    slurm.serve_jobs()
    return slurm


# real scontrol 22.05 output for the same steps (PrologFlags=Contain)
EXTERN_15 = ("StepId=15.extern UserId=1001 StartTime=2025-11-24T16:00:00 TimeLimit=UNLIMITED\n"
             "   State=RUNNING Partition=short NodeList=vm\n"
             "   Nodes=1 CPUs=0 Tasks=1 Name=extern Network=(null)\n"
             "   TRES=(null)\n"
             "   ResvPorts=(null)\n"
             "   CPUFreqReq=Default\n"
             "   SrunHost:Pid=(null):0\n\n")
STEP_15_0 = ("StepId=15.0 UserId=1001 StartTime=2025-11-24T16:00:00 TimeLimit=UNLIMITED\n"
             "   State=RUNNING Partition=short NodeList=vm\n"
             "   Nodes=1 CPUs=2 Tasks=2 Name=two Network=(null)\n"
             "   TRES=cpu=2,mem=300M,node=1\n"
             "   ResvPorts=(null)\n"
             "   CPUFreqReq=Default Dist=Block\n"
             "   SrunHost:Pid=vm:24810\n\n")


def test_show_step_lists_extern_batch_and_srun_steps(steps: FakeSlurm) -> None:
    rc, out, err = run("scontrol", "show", "step", "15")
    assert (rc, err) == (0, "")
    records = out.split("\n\n")[:-1]
    assert [r.split()[0] for r in records] == ["StepId=15.extern", "StepId=15.batch", "StepId=15.0", "StepId=15.1"]
    assert out.startswith(EXTERN_15 + EXTERN_15.replace("extern", "batch") + STEP_15_0)
    assert records[3] == ("StepId=15.1 UserId=1001 StartTime=2025-11-24T16:00:01 TimeLimit=UNLIMITED\n"
                          "   State=RUNNING Partition=short NodeList=vm\n"
                          "   Nodes=1 CPUs=2 Tasks=1 Name=one Network=(null)\n"
                          "   TRES=cpu=2,mem=300M,node=1\n"
                          "   ResvPorts=(null)\n"
                          "   CPUFreqReq=Default Dist=Cyclic\n"
                          "   SrunHost:Pid=vm:24830")
    out = run("scontrol", "show", "step", "16.0")[1]
    assert "   Nodes=2 CPUs=4 Tasks=4 Name=wide Network=(null)\n   TRES=cpu=4,mem=400M,node=2\n" in out
    assert run("scontrol", "-o", "show", "step", "15.0")[1] == STEP_15_0.replace("\n   ", " ")[:-1]


def test_show_step_ids_read_as_slurm_reads_them(steps: FakeSlurm) -> None:
    # a step name is read as a number: "batch" and "extern" are step 0
    assert run("scontrol", "show", "step", "15.batch") == (0, STEP_15_0, "")
    assert run("scontrol", "show", "step", "15.extern") == (0, STEP_15_0, "")
    # no number at all is every step
    rc, out, _ = run("scontrol", "show", "step", "foo")
    assert rc == 0 and out.count("StepId=") == 5
    assert run("scontrol", "show", "step", "15.7") == (1, "Job step 15.7 not found\n", "")
    assert run("scontrol", "show", "step", "17") == (1, "Job step 17. not found\n", "")
    assert run("scontrol", "show", "step", "15.2") == (1, "Job step 15.2 not found\n", "")  # ended steps are gone
    assert run("scontrol", "show", "step", "99.0") == (1, "", "slurm_get_job_steps error: Invalid job id specified\n")


def test_show_job_details_derived_exit_code(slurm: FakeSlurm) -> None:
    slurm.jobs = [job(12, state="COMPLETED", derived_exit_code=9, start_time=1764000000, end_time=1764000001)]
    slurm.serve_jobs()
    out = run("scontrol", "-d", "show", "job", "12")[1]
    assert "ExitCode=0:0\n   DerivedExitCode=0:9\n" in out


def test_show_job_accrue_time_outlives_a_hold(slurm: FakeSlurm) -> None:
    # slurmctld clears a held job's EligibleTime (details->begin_time); its AccrueTime stays
    slurm.jobs = [job(55, reason="JobHeldUser", priority=0, submit_time=1764000000, eligible_time=0,
                      accrue_time=1764000000)]
    slurm.serve_jobs()
    out = run("scontrol", "show", "job", "55")[1]
    assert "   SubmitTime=2025-11-24T16:00:00 EligibleTime=Unknown\n   AccrueTime=2025-11-24T16:00:00\n" in out


def test_show_job_start_and_end_of_a_pending_job_are_the_expected_ones(slurm: FakeSlurm) -> None:
    slurm.jobs = [job(56, reason="BeginTime", time_limit=7, submit_time=1764000000, begin_time=1764000060,
                      eligible_time=1764000060, expected_start=1764000060)]
    slurm.serve_jobs()
    out = run("scontrol", "show", "job", "56")[1]
    assert "   StartTime=2025-11-24T16:01:00 EndTime=2025-11-24T16:08:00 Deadline=N/A\n" in out


def test_show_job_names_the_nodes_a_pending_job_is_expected_on(slurm: FakeSlurm) -> None:
    # slurm_job_info.c: " SchedNodeList=" after NodeList= when backfill planned the job, and its Scheduler
    slurm.jobs = [job(57, reason="Resources", expected_start=1764000060, sched_nodes="n[1-2]"),
                  job(58, reason="Priority")]
    slurm.serve_jobs()
    out = run("scontrol", "show", "job", "57")[1]
    assert "   NodeList= SchedNodeList=n[1-2]\n" in out and "Scheduler=Backfill:*\n" in out
    out = run("scontrol", "show", "job", "58")[1]
    assert "   NodeList=\n" in out and "Scheduler=Main\n" in out


def test_notify_wait_job_suspend_and_the_admin_keywords(slurm: FakeSlurm, monkeypatch: pytest.MonkeyPatch) -> None:
    # each compared with 22.05 as alice: words, streams and exit statuses
    import os

    slurm.jobs = [job(60, state="RUNNING", nodes="n1"), job(61, state="COMPLETED"), job(62, reason="Priority")]
    slurm.serve_jobs()
    slurm.on("notify", {})
    assert run("scontrol", "notify", "60", "two", "words") == (0, "", "")
    assert slurm.ops("notify") == [{"job_id": 60, "message": "two words"}]
    slurm.on("notify", RpcError("ESLURM_DISABLED", "Requested operation is presently disabled"))
    assert run("scontrol", "notify", "62", "hi") == (1, "", "job notify failure: Requested operation is presently "
                                                            "disabled\n")
    assert run("scontrol", "notify", "60") == (1, "", "too few arguments for keyword:notify\n")
    assert run("scontrol", "wait_job", "60") == (0, "", "scontrol: Nodes are ready for job 60\n")
    assert run("scontrol", "wait_job", "61") == (1, "", "scontrol: Job 61 no longer running\n")
    assert run("scontrol", "wait_job", "99999") == (1, "", "scontrol: Problem running job 99999\n")
    assert run("scontrol", "suspend", "99999") == (1, "", "Unexpected message received for job 99999\n")
    assert run("scontrol", "suspend", "60") == (1, "", "Access/permission denied for job 60\n")
    assert run("scontrol", "update") == (1, "", "too few arguments for update keyword\n")
    monkeypatch.setattr(os, "getuid", lambda: 31001)
    assert run("scontrol", "reconfigure") == (1, "", "slurm_reconfigure error: Invalid user id\n")
    assert run("scontrol", "shutdown") == (1, "", "slurm_shutdown error: Invalid user id\n")
