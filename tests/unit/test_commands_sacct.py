"""sacct against a fake controller; columns, truncation and parsable forms as real Slurm 22.05 prints them."""

from __future__ import annotations

import time

import pytest
from fakeslurm import FakeSlurm, job, run, slurm_fixture  # noqa: F401 - the fixture

T0 = time.time() - 3600


@pytest.fixture
def acct(slurm: FakeSlurm) -> FakeSlurm:
    batch = {"step_id": "batch", "name": "batch", "state": "COMPLETED", "start_time": T0, "end_time": T0 + 2,
             "cpus": 1, "num_nodes": 1, "num_tasks": 1, "nodes": "vm", "total_cpu": 0.002, "user_cpu": 0.002,
             "max_rss_kb": 2940, "max_rss_node": "vm"}
    slurm.jobs = [
        job(56, state="COMPLETED", start_time=T0, end_time=T0 + 2, alloc_cpus=1, nodes="vm", mem_per_cpu=100,
            alloc_mem=100, submit_time=T0 - 1, eligible_time=T0 - 1, steps=[batch]),
        job(57, state="FAILED", exit_code=3, start_time=T0, end_time=T0, alloc_cpus=1, nodes="vm",
            mem_per_cpu=100, submit_time=T0 - 1, steps=[dict(batch, state="FAILED", exit_code=3, max_rss_kb=0)]),
        job(59, name="cancelme", state="CANCELLED", cancelled_by=1001, mem_per_cpu=100, submit_time=T0 - 1,
            end_time=T0),
        job(60, name="arr2", array_job_id=60, array_task_str="1-2", mem_per_cpu=100, submit_time=T0 - 1),
        job(61, name="averyveryverylongjobname", state="RUNNING", start_time=T0, alloc_cpus=2, nodes="vm",
            submit_time=T0 - 1),
    ]
    slurm.serve_jobs()
    return slurm


def test_default(acct: FakeSlurm) -> None:
    rc, out, err = run("sacct")
    assert (rc, err) == (0, "")
    assert out == (
        "JobID           JobName  Partition    Account  AllocCPUS      State ExitCode \n"
        "------------ ---------- ---------- ---------- ---------- ---------- -------- \n"
        "56                 wrap      short   research          1  COMPLETED      0:0 \n"
        "56.batch          batch              research          1  COMPLETED      0:0 \n"
        "57                 wrap      short   research          1     FAILED      3:0 \n"
        "57.batch          batch              research          1     FAILED      3:0 \n"
        "59             cancelme      short   research          1 CANCELLED+      0:0 \n"
        "60_[1-2]           arr2      short   research          1    PENDING      0:0 \n"
        "61           averyvery+      short   research          2    RUNNING      0:0 \n")


def test_parsable(acct: FakeSlurm) -> None:
    assert run("sacct", "-p", "-j", "56")[1] == ("JobID|JobName|Partition|Account|AllocCPUS|State|ExitCode|\n"
                                                 "56|wrap|short|research|1|COMPLETED|0:0|\n"
                                                 "56.batch|batch||research|1|COMPLETED|0:0|\n")
    assert run("sacct", "-P", "-n", "-X", "-o", "JobID,State", "-j", "59")[1] == "59|CANCELLED by 1001\n"
    assert run("sacct", "-P", "-n", "-X", "-o", "jobid,state", "--delimiter=,", "-j", "57")[1] == "57,FAILED\n"


def test_a_named_step_selects_only_that_step(acct: FakeSlurm) -> None:
    assert run("sacct", "-P", "-n", "-o", "JobID,State", "-j", "56.batch")[1] == "56.batch|COMPLETED\n"
    assert run("sacct", "-P", "-n", "-o", "JobID,State", "-j", "56.batch,57")[1] == (
        "56.batch|COMPLETED\n57|FAILED\n57.batch|FAILED\n")
    assert run("sacct", "-P", "-n", "-o", "JobID", "-j", "56.7")[1] == ""  # no such step: nothing


def test_widths_and_prefix_names(acct: FakeSlurm) -> None:
    out = run("sacct", "-j", "59", "-o", "jobid,state%30")[1]
    assert out == ("JobID                                 State \n"
                   "------------ ------------------------------ \n"
                   "59                        CANCELLED by 1001 \n")
    out = run("sacct", "-X", "-j", "61", "-o", "jobid%20,jobname%-15,state%5,nnod")[1]
    assert out == ("               JobID JobName         State   NNodes \n"
                   "-------------------- --------------- ----- -------- \n"
                   "                  61 averyveryveryl+ RUNN+        1 \n")


def test_step_values(acct: FakeSlurm) -> None:
    out = run("sacct", "-P", "-j", "56", "-o", "JobID,JobIDRaw,Elapsed,TotalCPU,MaxRSS,ReqMem,NTasks,NodeList,"
                                          "Timelimit,Reason,Layout")[1]
    assert out.splitlines()[1:] == ["56|56|00:00:02|00:00.002||100M||vm|01:00:00|None|",
                                    "56.batch|56.batch|00:00:02|00:00.002|2940K||1|vm|||Unknown"]
    out = run("sacct", "-P", "-n", "-X", "-j", "60", "-o", "NodeList,Start,End")[1]
    assert out == "None assigned|Unknown|Unknown\n"


def test_brief_and_long_headers(acct: FakeSlurm) -> None:
    assert run("sacct", "-b", "-X", "-j", "57")[1] == ("JobID             State ExitCode \n"
                                                       "------------ ---------- -------- \n"
                                                       "57               FAILED      3:0 \n")
    header = run("sacct", "-l", "-j", "57")[1].splitlines()[0]
    assert header.startswith("JobID        JobIDRaw        JobName  Partition  MaxVMSize  MaxVMSizeNode ")


def test_states_and_names(acct: FakeSlurm) -> None:
    # with -s alone the window is the present instant: jobs that ended before it are not listed (as in Slurm)
    assert run("sacct", "-n", "-X", "-o", "jobid", "-s", "CA,F")[1] == ""
    assert run("sacct", "-n", "-X", "-o", "jobid", "-s", "CA,F", "-S", "2020-01-01", "-E", "now")[1] == (
        "57           \n59           \n")
    assert run("sacct", "-n", "-X", "-o", "jobid", "--name=arr2")[1] == "60_[1-2]     \n"


def test_default_window_starts_at_midnight(acct: FakeSlurm) -> None:
    run("sacct")
    body = acct.ops("acct")[0]
    lt = time.localtime()
    midnight = time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday, 0, 0, 0, 0, 0, -1))
    assert body["start"] == midnight
    run("sacct", "-j", "56")
    assert acct.ops("acct")[1]["start"] is None and acct.ops("acct")[1]["job_ids"] == ["56"]


@pytest.mark.parametrize("args,err", [
    (["-s", "foo"], "sacct: fatal: unrecognized job state value 'foo'\n"),
    (["-j", "abc"], "sacct: fatal: Bad job/step specified: abc\n"),
    (["-o", "foo"], 'sacct: error: Invalid field requested: "foo"\n'),
    (["extra"], "sacct: error: Unknown arguments:\nsacct: error:  extra\n"),
    (["-S", "2020-01-01", "-E", "2019-01-01"],
     "sacct: error: Start time (2020-01-01T00:00:00) requested is after end time (2019-01-01T00:00:00).\n"),
    (["-S", "garbage"], "Invalid time specification (pos=0): garbage\n"),
    (["-u", "nosuchuser_x"], "sacct: error: Invalid user id: nosuchuser_x\n"),
    (["--foo"], "sacct: unrecognized option '--foo'\n"),
    # -B / --env-vars, as 22.05 words them
    (["-B"], "sacct: fatal: When requesting job scripts you must also request specific jobs with the '-j' option.\n"),
    (["--env-vars"], "sacct: fatal: When requesting job environment you must also request specific jobs with the "
                     "'-j' option.\n"),
    (["-B", "--env-vars", "-j", "5"], "sacct: fatal: Options --batch-script and --env-vars are mutually exclusive\n"),
])
def test_bad_input(acct: FakeSlurm, args: list[str], err: str) -> None:
    assert run("sacct", *args) == (1, "", err)


def test_completion_records_are_disabled(acct: FakeSlurm) -> None:
    assert run("sacct", "-c") == (1, "Slurm job completion is disabled", "")  # JobCompType=jobcomp/none


def test_helpformat(slurm: FakeSlurm) -> None:
    out = run("sacct", "-e")[1].splitlines()
    assert out[0] == "Account             AdminComment        AllocCPUS           AllocNodes         "
    assert out[-1] == "WorkDir            "


def test_help_usage_version(slurm: FakeSlurm) -> None:
    assert run("sacct", "-V") == (0, "slurm 22.05.8\n", "")
    assert run("sacct", "--usage") == (0, "Usage: sacct [options]\n\tUse --help for help\n", "")
    assert run("sacct", "--help")[1].startswith("sacct [<OPTION>]")


def test_derived_exit_code_is_a_wait_status(slurm: FakeSlurm) -> None:
    # the controller sends DerivedExitCode as slurmctld keeps it: code << 8 | signal
    slurm.jobs = [job(9, state="FAILED", exit_code=5, derived_exit_code=256, start_time=T0, end_time=T0 + 1),
                  job(12, state="COMPLETED", derived_exit_code=9, start_time=T0, end_time=T0 + 1)]
    slurm.serve_jobs()
    out = run("sacct", "-X", "-P", "-n", "-o", "JobID,ExitCode,DerivedExitCode", "-j", "9,12")[1]
    assert out == "9|5:0|1:0\n12|0:0|0:9\n"


def test_exit_codes_of_128_and_more_lose_128(slurm: FakeSlurm) -> None:
    # sacct 22.05 prints `exit 200` as 72:0 and `exit 139` as 11:0; DerivedExitCode and scontrol do not
    step = {"step_id": "0", "name": "bash", "state": "FAILED", "exit_code": 200, "start_time": T0, "end_time": T0 + 1}
    slurm.jobs = [job(11, state="FAILED", exit_code=139, derived_exit_code=200 << 8, start_time=T0, end_time=T0 + 1,
                      steps=[step]),
                  job(13, state="FAILED", exit_code=127, start_time=T0, end_time=T0 + 1)]
    slurm.serve_jobs()
    out = run("sacct", "-P", "-n", "-o", "JobID,ExitCode,DerivedExitCode", "-j", "11,13")[1]
    assert out == "11|11:0|200:0\n11.0|72:0|\n13|127:0|0:0\n"


def test_reason_is_the_last_one_waited_for_not_the_end_reason(slurm: FakeSlurm) -> None:
    # slurmdbd keeps state_reason_prev: a job that waited on a dependency shows Dependency once it ran,
    # a failed one that only waited its turn None (scontrol's Reason=NonZeroExitCode is not in accounting)
    slurm.jobs = [job(20, state="COMPLETED", reason="None", reason_prev="Dependency", start_time=T0, end_time=T0 + 1),
                  job(21, state="FAILED", reason="NonZeroExitCode", exit_code=3, start_time=T0, end_time=T0 + 1),
                  job(22, state="PENDING", reason="Resources", reason_prev="JobHeldUser")]
    slurm.serve_jobs()
    out = run("sacct", "-X", "-P", "-n", "-o", "JobID,State,Reason", "-j", "20,21,22")[1]
    assert out == "20|COMPLETED|Dependency\n21|FAILED|None\n22|PENDING|JobHeldUser\n"


def test_reason_filter_selects_on_the_reason_waited_for(slurm: FakeSlurm) -> None:
    # --reason filters on slurmdbd's state_reason_prev; names are read in any case (job_reason_num), and
    # a job that only waited its turn counts as None. The short -R is missing from 22.05's getopt string.
    slurm.jobs = [job(20, state="COMPLETED", reason="None", reason_prev="Dependency", start_time=T0, end_time=T0 + 1),
                  job(21, state="FAILED", reason="NonZeroExitCode", exit_code=3, start_time=T0, end_time=T0 + 1),
                  job(22, state="COMPLETED", reason="None", reason_prev="BeginTime", start_time=T0, end_time=T0 + 1)]
    slurm.serve_jobs()
    assert run("sacct", "-X", "-P", "-n", "-o", "JobID", "--reason=dependency")[1] == "20\n"
    assert run("sacct", "-X", "-P", "-n", "-o", "JobID", "--reason", "None,BeginTime")[1] == "21\n22\n"


def test_reason_filter_refuses_a_name_slurm_does_not_know(slurm: FakeSlurm) -> None:
    rc, out, err = run("sacct", "--reason=Dependency,bogus,None")
    assert (rc, out, err) == (1, "", "sacct: fatal: unrecognized job reason value 'bogus'\n")
    rc, _out, err = run("sacct", "-R", "Dependency")
    assert (rc, err) == (1, "sacct: invalid option -- 'R'\n")


def test_eligible_is_unknown_for_a_job_never_eligible_and_the_window_leaves_it_out(slurm: FakeSlurm) -> None:
    # slurmdbd selects -S/-E by time_eligible: a job held or dependent since its submission has none, and is
    # listed only when named with -j
    slurm.jobs = [job(30, state="PENDING", reason="JobHeldUser", reason_prev="JobHeldUser", eligible_time=0),
                  job(31, state="PENDING", reason="Resources", submit_time=T0, eligible_time=T0 + 5)]
    slurm.serve_jobs()
    assert run("sacct", "-X", "-P", "-n", "-o", "JobID")[1] == "31\n"
    out = run("sacct", "-X", "-P", "-n", "-o", "JobID,Eligible", "-j", "30,31")[1]
    assert out.splitlines() == ["30|Unknown", f"31|{time.strftime('%Y-%m-%dT%H:%M:%S', time.localtime(T0 + 5))}"]


def test_qos_group_size_and_time_limit_filters(acct: FakeSlurm) -> None:
    # -q, -g, -i, -I, -k/-K select as slurmdbd does (22.05 side by side); -K alone selects nothing out
    acct.jobs[0].update(time_limit=60, qos="priority", gid=30001, num_nodes=2)
    acct.jobs[1].update(time_limit=5)
    acct.jobs[2].update(time_limit=1)
    acct.jobs[3].update(time_limit=1)
    acct.jobs[4].update(time_limit=-1)

    def ids(*args: str) -> list[str]:
        return run("sacct", "-a", "-X", "-n", "-P", "-o", "JobIDRaw", "-S", "2000-01-01", *args)[1].split()

    everything = ids()
    assert ids("-q", "priority") == ["56"] and "56" not in ids("-q", "normal")
    assert ids("-g", "30001") == ["56"]
    assert ids("-i", "2") == ["56"] and ids("-i", "2-3") == ["56"]
    assert ids("-I", "2") == ["61"]
    assert ids("-k", "10") == ["56", "61"]  # an UNLIMITED limit is more than any
    assert ids("-k", "5", "-K", "30") == ["57"]
    assert ids("-K", "10") == everything
    assert run("sacct", "-q", "foo") == (1, "", "sacct: error: You gave a bad qos 'foo'. Valid QOS's are "
                                               "normal,priority\nsacct: fatal: problem processing qos list\n")
    assert run("sacct", "-i", "abc") == (1, "", 'sacct: error: Invalid numeric value "abc" for requested node range.\n')
    assert run("sacct", "-I", "1-") == (1, "", 'sacct: error: Invalid numeric value "1-" for requested cpu range.\n')
    assert run("sacct", "-k", "abc") == (1, "", "sacct: fatal: Invalid time limit specification\n")
    assert run("sacct", "-g", "nosuchgroup_x") == (1, "", "sacct: error: Invalid group id: nosuchgroup_x\n")


def test_units_and_noconvert(acct: FakeSlurm) -> None:
    # 22.05 side by side: ReqMem 100M prints 102400K with --units=K and 0.10G with --units=g
    def req_mem(*args: str) -> str:
        return run("sacct", "-j", "56", "-X", "-n", "-P", "-o", "ReqMem,MaxRSS", *args)[1].strip()

    assert req_mem() == "100M|"
    assert req_mem("--units=K") == "102400K|"
    assert req_mem("--units=g") == "0.10G|"
    assert run("sacct", "-j", "56", "-n", "-P", "-o", "MaxRSS", "--units=M")[1].splitlines() == ["", "2.87M"]
    acct.jobs[0]["mem_per_cpu"] = 2048
    assert req_mem() == "2G|" and req_mem("--noconvert") == "2048M|"
    assert run("sacct", "--units=Q") == (1, "", "sacct: error: Invalid unit type 'Q'. Possible options are 'KMGTP'\n"
                                                "sacct: fatal: Invalid unit type\n")


def _stamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(epoch))


def test_jobs_named_by_id_still_keep_to_an_explicit_window(acct: FakeSlurm) -> None:
    # 22.05 side by side: -j with -S after a job ended lists nothing; a job held since its submission is listed
    # for any window that ends after it was submitted
    acct.jobs.append(job(62, reason="JobHeldUser", priority=0, hold="user", submit_time=T0 - 1, eligible_time=0))

    def ids(*args: str) -> list[str]:
        return run("sacct", "-X", "-n", "-P", "-o", "JobIDRaw", *args)[1].split()

    assert ids("-j", "56") == ["56"]
    assert ids("-j", "56", "-S", _stamp(T0 + 60)) == []  # it ended at T0 + 2
    assert ids("-j", "62") == ["62"]
    assert ids("-j", "62", "-S", _stamp(time.time() + 3600), "-E", _stamp(time.time() + 7200)) == ["62"]
    assert ids("-j", "62", "-E", _stamp(T0 - 60)) == []  # before it was submitted


def test_truncate_cuts_times_to_the_window(acct: FakeSlurm) -> None:
    # -T: job 61 runs since T0; cut to [T0 + 600, T0 + 900] it starts and ends there and lasted 300 s
    out = run("sacct", "-T", "-j", "61", "-X", "-n", "-P", "-o", "Start,End,Elapsed",
              "-S", _stamp(T0 + 600), "-E", _stamp(T0 + 900))[1]
    assert out == f"{_stamp(T0 + 600)}|{_stamp(T0 + 900)}|00:05:00\n"
    out = run("sacct", "-j", "61", "-X", "-n", "-P", "-o", "End", "-S", _stamp(T0 + 600), "-E", _stamp(T0 + 900))[1]
    assert out == "Unknown\n"


def test_a_job_named_by_id_is_listed_before_it_may_start(acct: FakeSlurm) -> None:
    # 22.05: --begin=now+1hour, or a requeued job waiting out its delay, is listed by sacct -j at once
    later = time.time() + 3600
    acct.jobs.append(job(63, reason="BeginTime", submit_time=T0, eligible_time=later, begin_time=later))
    assert run("sacct", "-j", "63", "-X", "-n", "-P", "-o", "JobIDRaw")[1] == "63\n"
    assert run("sacct", "-j", "63", "-X", "-n", "-P", "-o", "JobIDRaw", "-E", _stamp(T0 - 60))[1] == ""
