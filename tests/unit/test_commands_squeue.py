"""squeue against a fake controller; expected lines are real Slurm 22.05 output for the same queue."""

from __future__ import annotations

import time

import pytest
from fakeslurm import FakeSlurm, job, run, slurm_fixture  # noqa: F401 - the fixture

HEADER = "             JOBID PARTITION     NAME     USER ST       TIME  NODES NODELIST(REASON)\n"


@pytest.fixture
def queue(slurm: FakeSlurm) -> FakeSlurm:
    now = slurm.now
    slurm.jobs = [
        job(2, name="runner", state="RUNNING", start_time=now - 10, nodes="vm", num_nodes=1, time_limit=30),
        job(3, name="waiter", reason="Resources", time_limit=10, cpus_per_task=2),
        job(4, name="held", reason="JobHeldUser", priority=0, hold="user"),
        job(5, name="arr", reason="Priority", array_job_id=5, array_task_str="1-5", array_max_tasks=2,
            time_limit=5),
        job(6, name="later", reason="BeginTime"),
        job(7, name="bobjob", user="bob", uid=1002, group="bob", gid=1002, partition="devel", time_limit=5,
            reason="Nodes required for job are DOWN, DRAINED or reserved for jobs in higher priority partitions"),
        job(8, name="averyveryverylongjobname", reason="Priority"),
        job(9, name="big", num_nodes=3, reason="PartitionConfig"),
        job(1, name="done", state="COMPLETED", start_time=now - 100, end_time=now - 90, nodes="vm"),
    ]
    slurm.serve_jobs()
    return slurm


def test_default_format(queue: FakeSlurm) -> None:
    rc, out, err = run("squeue")
    assert (rc, err) == (0, "")
    assert out == HEADER + (
        "                 7     devel   bobjob      bob PD       0:00      1 (Nodes required for job are DOWN, "
        "DRAINED or reserved for jobs in higher priority partitions)\n"
        "                 3     short   waiter    alice PD       0:00      1 (Resources)\n"
        "         5_[1-5%2]     short      arr    alice PD       0:00      1 (Priority)\n"
        "                 6     short    later    alice PD       0:00      1 (BeginTime)\n"
        "                 8     short averyver    alice PD       0:00      1 (Priority)\n"
        "                 9     short      big    alice PD       0:00      3 (PartitionConfig)\n"
        "                 4     short     held    alice PD       0:00      1 (JobHeldUser)\n"
        "                 2     short   runner    alice  R       0:10      1 vm\n")


@pytest.mark.parametrize("args", [[], ["-l"], ["-t", "all"], ["-u", "alice"], ["-p", "devel,short"],
                                  ["-o", "%.18i %.9P %.8j %.8u %.2t %.10M %.6D %R %l %T %D"]])
def test_columnar_fast_path_matches_the_general_path(queue: FakeSlurm, args: list[str]) -> None:
    # an explicit sort equal to the default forces the general (per-row) path
    fast = run("squeue", *args)
    general = run("squeue", *args, "-S", "P,t,-p")
    skip = 1 if "-l" in args else 0  # the date line may tick between the two runs
    assert fast[1].splitlines()[skip:] == general[1].splitlines()[skip:]
    assert (fast[0], fast[2]) == (general[0], general[2])
    assert fast[1].count("\n") > 1


@pytest.mark.parametrize("args", [[], ["-l"], ["-o", "%.18i %.9P %j %u %.2t %.10M %.6D %R %l %T %Q"],
                                  ["-O", "JobID:6 ,Name:5 ,Reason"]])
def test_shared_values_print_as_every_row_does(slurm: FakeSlurm, args: list[str]) -> None:
    """A long uniform queue takes the columnar path with its constant columns baked into the line
    template; names with % and cut columns must still print exactly as the general path prints them."""
    slurm.jobs = [job(i, name="50%done %s", reason="JobHeldUser", hold="user", priority=100 - i % 3)
                  for i in range(10, 20)]
    slurm.serve_jobs()
    fast = run("squeue", *args)
    general = run("squeue", *args, "-S", "P,t,-p")
    skip = 1 if "-l" in args else 0
    assert fast[1].splitlines()[skip:] == general[1].splitlines()[skip:]
    assert (fast[0], fast[2]) == (general[0], general[2]) == (0, "")
    assert fast[1].count("50%") == 10 and fast[1].count("\n") == 11 + skip
    # priority descending, then the controller's order: 12 15 18 (100), 10 13 16 19 (99), 11 14 17 (98)
    ids = [line.split()[0] for line in fast[1].splitlines()[1 + skip:]]
    assert ids == ["12", "15", "18", "10", "13", "16", "19", "11", "14", "17"]
    assert slurm.ops("jobs")[0]["columnar"] is True


def test_long_format_has_a_date_line(queue: FakeSlurm) -> None:
    _rc, out, _ = run("squeue", "-l", "-j", "2")
    lines = out.splitlines()
    time.strptime(lines[0], "%a %b %d %H:%M:%S %Y")
    assert lines[1] == ("             JOBID PARTITION     NAME     USER    STATE       TIME TIME_LIMI  NODES "
                        "NODELIST(REASON)")
    assert lines[2] == "                 2     short   runner    alice  RUNNING       0:10     30:00      1 vm"


def test_noheader_and_array_expansion(queue: FakeSlurm) -> None:
    _rc, out, _ = run("squeue", "-h", "-r", "-o", "%i %t", "-j", "5")
    assert out == "5_1 PD\n5_2 PD\n5_3 PD\n5_4 PD\n5_5 PD\n"


def test_percent_formats(queue: FakeSlurm) -> None:
    _rc, out, err = run("squeue", "-j", "6", "-o", "%-10j|%.5i|%5i|%i|%10R|x%%y|%Z")
    assert err == "squeue: error: Invalid job format specification: -\n"
    assert out == ("%-10j|JOBID|JOBID|JOBID|NODELIST(R|xNICE|WORK_DIR\n"
                   "%-10j|    6|6    |6|(BeginTime|x0|/home/alice\n")


def test_long_field_format(queue: FakeSlurm) -> None:
    _, out, _ = run("squeue", "-j", "6,9", "-O", "jobid,name:5,state:.10,reason:.6x")
    assert out == ("JOBID               NAME      STATEREASONx\n"
                   "6                   later   PENDINGBeginTx\n"
                   "9                   big     PENDINGPartitx\n")
    _, out, _ = run("squeue", "-j", "6", "-O", "JobID:6 ,Name")
    assert out == "JOBID  NAME                \n6      later               \n"


def test_only_needed_fields_are_requested(queue: FakeSlurm) -> None:
    run("squeue", "-h", "-o", "%i %t")
    fields = set(queue.ops("jobs")[0]["fields"])
    assert "work_dir" not in fields and "comment" not in fields
    assert {"job_id", "state", "array_task_str"} <= fields


def test_finished_jobs_are_left_with_the_controller(queue: FakeSlurm) -> None:
    run("squeue")
    run("squeue", "-t", "CD,r")
    run("squeue", "-t", "all")
    run("squeue", "-j", "1")
    asked = [body.get("states") for body in queue.ops("jobs")]
    assert asked[0] == ["COMPLETING", "CONFIGURING", "PENDING", "RESIZING", "RUNNING", "SIGNALING", "STAGE_OUT",
                        "SUSPENDED"]
    assert asked[1:] == [["COMPLETED", "RUNNING"], None, None]
    # -j with a finished job: the controller is asked for it whatever its state, and shows nothing
    assert run("squeue", "-h", "-j", "1") == (0, "", "")


def test_job_filters(queue: FakeSlurm) -> None:
    assert run("squeue", "-h", "-o", "%i", "-u", "bob")[1] == "7\n"
    assert run("squeue", "-h", "-o", "%i", "-p", "devel")[1] == "7\n"
    assert run("squeue", "-h", "-o", "%i", "-n", "BIG")[1] == "9\n"      # names match case-insensitively
    assert run("squeue", "-h", "-o", "%i", "-t", "r")[1] == "2\n"
    assert run("squeue", "-h", "-o", "%i %T", "-t", "all", "-j", "1")[1] == "1 COMPLETED\n"
    assert run("squeue", "-h", "-o", "%i", "-j", "1")[1] == ""            # finished: not shown by default
    assert run("squeue", "-h", "-o", "%i", "--jobs=3", "-j", "8")[1] == "8\n"


def test_unknown_single_job_and_several(queue: FakeSlurm) -> None:
    assert run("squeue", "-j", "99999") == (1, "", "slurm_load_jobs error: Invalid job id specified\n")
    assert run("squeue", "-j", "99999,99998") == (0, HEADER, "")


@pytest.mark.parametrize("args,rc,err", [
    (["-j", "abc"], 1, "squeue: error: Invalid job id: abc\n"),
    (["--foo"], 1, "squeue: unrecognized option '--foo'\nTry \"squeue --help\" for more information\n"),
    (["-Z"], 1, "squeue: invalid option -- 'Z'\nTry \"squeue --help\" for more information\n"),
    (["--long=3"], 1, "squeue: option '--long' doesn't allow an argument\nTry \"squeue --help\" for more information\n"),
    (["-o"], 1, "squeue: option requires an argument -- 'o'\nTry \"squeue --help\" for more information\n"),
    (["--fo"], 1, "squeue: option '--format' requires an argument\nTry \"squeue --help\" for more information\n"),
    (["-t", "FOO"], 1, "squeue: error: Invalid job state specified: FOO\nsqueue: error: Valid job states include: "
                       "PENDING,RUNNING,SUSPENDED,COMPLETED,CANCELLED,FAILED,TIMEOUT,NODE_FAIL,PREEMPTED,BOOT_FAIL,"
                       "DEADLINE,OUT_OF_MEMORY,COMPLETING,CONFIGURING,RESIZING,RESV_DEL_HOLD,REQUEUED,REQUEUE_FED,"
                       "REQUEUE_HOLD,REVOKED,SIGNALING,SPECIAL_EXIT,STAGE_OUT,STOPPED\n\n"),
])
def test_bad_input(queue: FakeSlurm, args: list[str], rc: int, err: str) -> None:
    got_rc, _, got_err = run("squeue", *args)
    assert (got_rc, got_err) == (rc, err)


def test_unknown_user_is_reported_and_shows_nothing(queue: FakeSlurm) -> None:
    assert run("squeue", "-u", "nosuchuser") == (0, HEADER, "squeue: error: Invalid user: nosuchuser\n\n")


def test_sort_option(queue: FakeSlurm) -> None:
    _, out, _ = run("squeue", "-h", "-o", "%i", "-S", "-i")
    assert out.split() == ["9", "8", "7", "6", "5_[1-5%2]", "4", "3", "2"]
    # 22.05 prints its header before it sorts, so an unknown key comes after it (the last key first)
    assert run("squeue", "-o", "%i", "-S", "junk") == (1, "JOBID\n", "squeue: error: Invalid sort specification: k\n")


def test_clusters_sections(slurm: FakeSlurm) -> None:
    slurm.config.clusters["htc"] = {"host": "htc-controller", "port": 6817}
    slurm.jobs = [job(11, name="a")]
    slurm.serve_jobs()
    _, out, _ = run("squeue", "-M", "arc,htc", "-o", "%i")
    assert out == "CLUSTER: arc\nJOBID\n11\n\nCLUSTER: htc\nJOBID\n11\n"


def test_version_and_help(slurm: FakeSlurm) -> None:
    assert run("squeue", "-V") == (0, "slurm 22.05.8\n", "")
    assert run("squeue", "--usage")[1].startswith("Usage: squeue [-A account] [--clusters names]")
    assert run("squeue", "--help")[1].startswith("Usage: squeue [OPTIONS]\n")


def test_ten_thousand_pending_jobs_format_fast(slurm: FakeSlurm) -> None:
    rows = [job(i, name=f"job{i}", reason="Priority") for i in range(1, 10001)]
    fields_cache: dict[tuple[str, ...], list[list[object]]] = {}

    def jobs(body: dict[str, object]) -> dict[str, object]:
        fields = tuple(body["fields"])  # type: ignore[arg-type]
        if fields not in fields_cache:
            fields_cache[fields] = [[r.get(f) for f in fields] for r in rows]
        return {"fields": list(fields), "rows": fields_cache[fields], "now": slurm.now}

    slurm.on("jobs", jobs)
    run("squeue")  # warm the cache (building fake rows is not squeue's cost)
    best = 1e9
    for _ in range(3):
        t0 = time.perf_counter()
        rc, out, _ = run("squeue")
        best = min(best, time.perf_counter() - t0)
    assert rc == 0 and out.count("\n") == 10001
    assert best < 0.2, f"squeue formatting of 10,000 jobs took {best * 1000:.0f} ms"


@pytest.fixture
def stepq(slurm: FakeSlurm) -> FakeSlurm:
    now = slurm.now
    run_ = {"state": "RUNNING", "start_time": now - 65, "nodes": "vm", "num_nodes": 1}
    slurm.jobs = [
        job(2, name="runner", state="RUNNING", start_time=now - 70, nodes="vm", steps=[
            dict(run_, step_id="batch", name="batch", num_tasks=1, cpus=1),
            dict(run_, step_id="extern", name="extern", num_tasks=1, cpus=1),
            dict(run_, step_id="0", name="hostname", num_tasks=4, cpus=4, start_time=now - 3725),
            dict(run_, step_id="1", name="done", state="COMPLETED")]),
        job(11, name="task", state="RUNNING", start_time=now - 70, nodes="vm", array_job_id=10, array_task_id=3,
            steps=[dict(run_, step_id="0", name="", num_tasks=2, cpus=2)]),
        job(12, name="bobs", user="bob", uid=1002, partition="devel", state="RUNNING", start_time=now - 70,
            nodes="vm", steps=[dict(run_, step_id="1", name="mpi", num_tasks=96, cpus=96, nodes="vm[1-2]")]),
        job(13, name="waiting", reason="Priority"),
    ]
    slurm.serve_jobs()
    return slurm


def test_steps_default_format_and_order(stepq: FakeSlurm) -> None:
    rc, out, err = run("squeue", "-s")
    assert (rc, err) == (0, "")
    assert out == (
        "         STEPID     NAME PARTITION     USER      TIME NODELIST\n"
        "           12.1      mpi     devel      bob      1:05 vm[1-2]\n"
        "            2.0 hostname     short    alice   1:02:05 vm\n"
        "        2.batch    batch     short    alice      1:05 vm\n"
        "       2.extern   extern     short    alice      1:05 vm\n"
        "         10_3.0     task     short    alice      1:05 vm\n")
    assert run("squeue", "-s", "-h", "-u", "bob")[1] == "           12.1      mpi     devel      bob      1:05 vm[1-2]\n"


def test_steps_honour_format_and_Format(stepq: FakeSlurm) -> None:
    rc, out, err = run("squeue", "-s", "-h", "-u", "alice", "-o", "%i|%A|%j|%P|%u|%U|%l|%N|%.3M")
    assert (rc, err) == (0, "")
    assert out.splitlines() == ["2.0|4|hostname|short|alice|1001|UNLIMITED|vm|1:02:05",
                                "2.batch|1|batch|short|alice|1001|UNLIMITED|vm|1:05",
                                "2.extern|1|extern|short|alice|1001|UNLIMITED|vm|1:05",
                                "10_3.0|2|task|short|alice|1001|UNLIMITED|vm|1:05"]
    _, out, _ = run("squeue", "--steps", "-u", "bob", "--format=%10i %5j%4N %.12S %b")
    start = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(int(stepq.now - 65)))
    # left-justified fields are always cut (even NODELIST); START_TIME's header is never right-justified
    assert out == ("STEPID     NAME NODE START_TIME   TRES_PER_JOB\n"
                   f"12.1       mpi  vm[1 {start[:12]} (null)\n")
    _, out, _ = run("squeue", "-s", "-u", "bob", "-O", "StepId:8,NumTasks:.6,ArrayTaskId:6,JobId:.7 ,StepState")
    assert out == ("STEPID   TASKSARRAY_ JOB_ID STATE               \n"
                   "12.1        96N/A        12 RUNNING             \n")


def test_steps_invalid_format_fields(stepq: FakeSlurm) -> None:
    rc, out, err = run("squeue", "-s", "-h", "-u", "bob", "-o", "%i %T %Q")
    assert rc == 0
    assert err == ("squeue: error: Invalid job step format specification: T\n"
                   "squeue: error: Invalid job step format specification: Q\n")
    assert out == "12.1 %T %Q\n"
    rc, out, err = run("squeue", "-s", "-h", "-u", "bob", "-O", "stepid:6,reason:4")
    assert (rc, err) == (0, "squeue: error: Invalid job step format specification: reason\n")
    assert out == "12.1  \n"


@pytest.mark.parametrize("step", [-1, 1])
def test_priorities_that_step_evenly_still_sort(slurm: FakeSlurm, step: int) -> None:
    slurm.jobs = [job(i, reason="Priority", priority=1000 + step * i) for i in range(10, 20)]
    slurm.serve_jobs()
    rc, out, _ = run("squeue", "-h", "-o", "%i")
    assert rc == 0
    assert out.split() == [str(i) for i in (range(10, 20) if step < 0 else range(19, 9, -1))]
    assert run("squeue", "-h", "-o", "%i", "-S", "P,t,-p")[1] == out


def test_steps_filters(stepq: FakeSlurm) -> None:
    ids = lambda *args: run("squeue", "-s", "-h", "-o", "%i", *args)[1].split()  # noqa: E731
    assert ids("-j", "2") == ["2.0", "2.batch", "2.extern"]
    assert ids("-j", "10") == ids("-j", "10_3") == ["10_3.0"]
    assert ids("-p", "devel") == ["12.1"]
    assert ids("-w", "vm2") == ["12.1"]
    assert run("squeue", "-h", "-o", "%i", "--steps=2.0,12.1")[1].split() == ["12.1", "2.0"]
    assert run("squeue", "-h", "-o", "%i", "-s", "10_3.0")[1].split() == ["10_3.0"]
    assert run("squeue", "-h", "-o", "%i", "-s", "2.batch")[1].split() == ["2.0"]  # Slurm reads "batch" as 0
    assert run("squeue", "-s", "2") == (1, "", "squeue: error: Invalid job_step id: 2.??\n")
    assert run("squeue", "-s", "-j") == (1, "", "squeue: error: Incompatible options --jobs and --steps\n")
    # the controller picks the jobs; one it does not know lists no steps, without an error (as 22.05)
    assert ids("-j", "999") == []
    assert run("squeue", "-s", "-j", "999") == (0, "         STEPID     NAME PARTITION     USER      TIME NODELIST\n", "")
    ids("-u", "alice", "-p", "devel", "-j", "10_3,12")
    assert {k: v for k, v in stepq.ops("jobs")[-1].items() if k in ("users", "partitions", "job_ids")} == \
        {"users": ["1001"], "partitions": ["devel"], "job_ids": ["10_3", "12"]}


@pytest.fixture
def sortq(slurm: FakeSlurm) -> FakeSlurm:
    """Two jobs' steps as a real 22.05 controller listed them (batch first); times from the side-by-side run."""
    now = slurm.now
    run_ = {"state": "RUNNING", "nodes": "vm", "num_nodes": 1, "num_tasks": 1, "cpus": 1}
    slurm.jobs = [
        job(4, name="jobA", state="RUNNING", start_time=now - 42, nodes="vm", steps=[
            dict(run_, step_id="batch", name="batch", start_time=now - 42, cpus=0),
            dict(run_, step_id="0", name="zeta", start_time=now - 42),
            dict(run_, step_id="1", name="alpha", start_time=now - 39)]),
        job(5, name="jobB", user="bob", uid=1002, partition="devel", state="RUNNING", start_time=now - 12, nodes="vm",
            steps=[dict(run_, step_id="batch", name="batch", start_time=now - 12, cpus=0),
                   dict(run_, step_id="0", name="mid", start_time=now - 10)]),
    ]
    slurm.serve_jobs()
    return slurm


@pytest.mark.parametrize(("sort", "expect"), [
    # the orders real squeue 22.05 printed for the same steps
    (None, "5.0 5.batch 4.0 4.1 4.batch"),  # "P,i": partition, then job and step id (batch after numbers)
    ("", "4.batch 4.0 4.1 5.batch 5.0"),  # an empty list sorts nothing: the controller's order
    ("i", "4.0 4.1 4.batch 5.0 5.batch"),
    ("-i", "5.batch 5.0 4.batch 4.1 4.0"),
    ("P", "5.batch 5.0 4.batch 4.0 4.1"),
    ("-P", "4.batch 4.0 4.1 5.batch 5.0"),
    ("P,-i", "5.batch 5.0 4.batch 4.1 4.0"),
    ("-P,i", "4.0 4.1 4.batch 5.0 5.batch"),
    ("u", "4.batch 4.0 4.1 5.batch 5.0"),
    ("-u", "5.batch 5.0 4.batch 4.0 4.1"),
    ("-U", "5.batch 5.0 4.batch 4.0 4.1"),
    ("M", "5.0 5.batch 4.1 4.batch 4.0"),
    ("-M", "4.batch 4.0 4.1 5.batch 5.0"),
    ("S", "4.batch 4.0 4.1 5.batch 5.0"),
    ("-S", "5.0 5.batch 4.1 4.batch 4.0"),
    ("j", "4.batch 4.0 4.1 5.batch 5.0"),  # keys steps do not have are skipped, silently
    ("-j,t,x,l", "4.batch 4.0 4.1 5.batch 5.0"),
])
def test_steps_sort(sortq: FakeSlurm, sort: str | None, expect: str) -> None:
    args = ["-s", "-h", "-o", "%i"] + ([] if sort is None else ["-S", sort])
    rc, out, err = run("squeue", *args)
    assert (rc, err) == (0, "")
    assert out.split() == expect.split()


def test_steps_sort_by_nodes_compares_numbers(slurm: FakeSlurm) -> None:
    now = slurm.now
    run_ = {"state": "RUNNING", "num_nodes": 1, "num_tasks": 1, "cpus": 1, "start_time": now - 5}
    slurm.jobs = [job(7, state="RUNNING", start_time=now - 5, nodes="vm[3,9-10]", steps=[
        dict(run_, step_id="0", nodes="vm10"), dict(run_, step_id="1", nodes="vm9"),
        dict(run_, step_id="2", nodes="vm[10,3]"), dict(run_, step_id="3", nodes="vl20")])]
    slurm.serve_jobs()
    assert run("squeue", "-s", "-h", "-o", "%i", "-S", "N")[1].split() == ["7.3", "7.2", "7.1", "7.0"]
    assert run("squeue", "-s", "-h", "-o", "%i", "-S", "-N")[1].split() == ["7.0", "7.1", "7.2", "7.3"]


def test_exit_codes_print_as_wait_statuses(slurm: FakeSlurm) -> None:
    slurm.jobs = [job(9, state="FAILED", exit_code=5, derived_exit_code=256),
                  job(8, state="CANCELLED", exit_signal=15, derived_exit_code=15)]
    slurm.serve_jobs()
    out = run("squeue", "-h", "-t", "all", "-O", "jobid:4,derivedec:6,exit_code:6")[1]
    assert sorted(out.splitlines()) == ["8   15    15    ", "9   256   1280  "]


def test_pending_jobs_show_when_they_are_expected_to_start(slurm: FakeSlurm) -> None:
    # slurmctld gives a pending job its --begin time or the scheduler's estimate as StartTime, and an end a
    # time limit after it; squeue --start lists them soonest first and the unknown ones (N/A) last
    t = 1764000000.0
    slurm.jobs = [job(40, reason="Resources", time_limit=10, expected_start=t + 240),
                  job(41, reason="BeginTime", time_limit=7, begin_time=t, expected_start=t),
                  job(11, reason="JobHeldUser", priority=0, hold="user")]
    slurm.serve_jobs()

    def stamp(e: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(e))

    _, out, _ = run("squeue", "-h", "--start", "-o", "%i %S %e")
    assert out.splitlines() == [f"41 {stamp(t)} {stamp(t + 420)}", f"40 {stamp(t + 240)} {stamp(t + 840)}",
                                "11 N/A N/A"]
    _, out, _ = run("squeue", "-h", "-S", "-S", "-o", "%i")
    assert out.split() == ["40", "41", "11"]


def test_schednodes_are_where_the_estimate_would_start_a_pending_job(slurm: FakeSlurm) -> None:
    # squeue %Y / -O SchedNodes: slurmctld's sched_nodes, set by backfill for a pending job, (null) otherwise
    slurm.jobs = [job(40, reason="Resources", expected_start=1764000240, sched_nodes="n[1-2]"),
                  job(41, reason="Priority"), job(42, state="RUNNING", nodes="n3", sched_nodes="n3")]
    slurm.serve_jobs()
    _, out, _ = run("squeue", "-h", "-o", "%i %Y")
    assert sorted(out.splitlines()) == ["40 n[1-2]", "41 (null)", "42 (null)"]
    _, out, _ = run("squeue", "-h", "-j", "40", "-O", "JobID:4,SchedNodes")
    assert out == "40  n[1-2]              \n"
