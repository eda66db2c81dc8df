"""sbatch against a fake controller: the request it sends and the words it prints (real Slurm 22.05's)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fakeslurm import FakeSlurm, run, slurm_fixture  # noqa: F401 - the fixture

from orchestrator.scheduler.protocol import RpcError

TRY = 'Try "sbatch --help" for more information\n'


def submit_ok(s: FakeSlurm, job_id: int = 42) -> None:
    s.on("submit", lambda body: {"job_id": job_id, "cluster": "arc"})


def test_wrap_submits_slurms_wrapper_script(slurm: FakeSlurm) -> None:
    submit_ok(slurm)
    rc, out, err = run("sbatch", "-J", "x", "-t", "10", "--wrap", "echo hi")
    assert (rc, out, err) == (0, "Submitted batch job 42\n", "")
    body = slurm.ops("submit")[0]
    assert body["script"] == "#!/bin/sh\n# This script was created by sbatch --wrap.\n\necho hi\n"
    assert body["job"]["name"] == "x" and body["job"]["time_limit"] == 10
    assert body["job"]["command"] == "" and body["job"]["batch"] is True
    assert body["test_only"] is False and body["argv"] == []


def test_default_names(slurm: FakeSlurm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    submit_ok(slurm)
    run("sbatch", "--wrap=true")
    assert slurm.ops("submit")[-1]["job"]["name"] == "wrap"
    run("sbatch", stdin="#!/bin/sh\ntrue\n")
    assert slurm.ops("submit")[-1]["job"]["name"] == "sbatch"
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/sh\ntrue\n")
    monkeypatch.chdir(tmp_path)
    run("sbatch", "job.sh", "arg1", "--arg2")
    body = slurm.ops("submit")[-1]
    assert body["job"]["name"] == "job.sh"
    assert body["job"]["command"] == str(script)
    assert body["job"]["work_dir"] == str(tmp_path)
    assert body["argv"] == ["arg1", "--arg2"]


def test_script_is_read_before_submitting(slurm: FakeSlurm, tmp_path: Path) -> None:
    submit_ok(slurm)
    script = tmp_path / "s.sh"
    script.write_text("#!/bin/bash\n#SBATCH -J fromdirective\n#SBATCH --time=5\necho ok\n")
    rc, out, _ = run("sbatch", "--parsable", "-t", "7", str(script))
    assert (rc, out) == (0, "42\n")
    body = slurm.ops("submit")[0]
    assert body["script"] == script.read_text()
    assert body["job"]["name"] == "fromdirective"
    assert body["job"]["time_limit"] == 7  # the command line wins over the directive


def test_stdin_script(slurm: FakeSlurm) -> None:
    submit_ok(slurm)
    rc, _, _ = run("sbatch", stdin="#!/bin/sh\n#SBATCH -p devel\nhostname\n")
    assert rc == 0
    assert slurm.ops("submit")[0]["job"]["partition"] == "devel"


@pytest.mark.parametrize("args,err", [
    (["--foo"], "sbatch: unrecognized option '--foo'\n" + TRY),
    (["-Z"], "sbatch: invalid option -- 'Z'\n" + TRY),
    (["--ti=5", "--wrap=true"], "sbatch: option '--ti=5' is ambiguous; possibilities: '--time' '--time-min'\n" + TRY),
    (["--mem"], "sbatch: option '--mem' requires an argument\n" + TRY),
    (["--foo", "--help"], "sbatch: unrecognized option '--foo'\n" + TRY),
    (["-t", "abc", "--wrap=true"], "sbatch: error: Invalid --time specification\n"),
    (["--mem=4X", "--wrap=true"], "sbatch: error: Invalid --mem specification\n"),
    (["-N", "abc", "--wrap=true"], 'sbatch: error: "abc" is not a valid node count\n'),
    (["-N", "2-1", "--wrap=true"], "sbatch: error: Maximum node count 1 is less than minimum node count 2\n"),
    (["--open-mode=foo", "--wrap=true"], "sbatch: error: Invalid --open-mode specification\n"),
    (["--signal=FOO", "--wrap=true"], "sbatch: error: Invalid --signal specification\n"),
    (["--mail-type=FOO", "--wrap=true"], "sbatch: error: Invalid --mail-type specification\n"),
    (["--exclusive=foo", "--wrap=true"], "sbatch: error: Invalid --exclusive specification\n"),
])
def test_option_errors_exit_255(slurm: FakeSlurm, args: list[str], err: str) -> None:
    rc, out, got = run("sbatch", *args)
    assert (rc, out, got) == (255, "", err)
    assert not slurm.ops("submit")


@pytest.mark.parametrize("args,err", [
    (["-n", "0", "--wrap=true"], 'sbatch: error: Invalid numeric value "0" for --ntasks.\n'),
    (["-c", "abc", "--wrap=true"], 'sbatch: error: Invalid numeric value "abc" for --cpus-per-task.\n'),
    (["--mem=1G", "--mem-per-cpu=1G", "--wrap=true"],
     "sbatch: fatal: --mem, --mem-per-cpu, and --mem-per-gpu are mutually exclusive.\n"),
    (["--wrap=true", "extra"], "sbatch: error: Script arguments not permitted with --wrap option\n"),
    (["/nonexistent/job.sh"], "sbatch: error: Unable to open file /nonexistent/job.sh\n"),
])
def test_errors_exit_1(slurm: FakeSlurm, args: list[str], err: str) -> None:
    rc, _, got = run("sbatch", *args)
    assert (rc, got) == (1, err)


@pytest.mark.parametrize("script,err", [
    ("", "sbatch: error: Batch script is empty!\n"),
    ("  \n", "sbatch: error: Batch script contains only whitespace!\n"),
    ("echo hi\n", "sbatch: error: This does not look like a batch script.  The first\n"
                  "sbatch: error: line must start with #! followed by the path to an interpreter.\n"
                  "sbatch: error: For instance: #!/bin/sh\n"),
    ("#!/bin/sh\r\ntrue\r\n", "sbatch: error: Batch script contains DOS line breaks (\\r\\n)\n"
                              "sbatch: error: instead of expected UNIX line breaks (\\n).\n"),
])
def test_bad_scripts(slurm: FakeSlurm, script: str, err: str) -> None:
    rc, _, got = run("sbatch", stdin=script)
    assert (rc, got) == (1, err)
    assert not slurm.ops("submit")


@pytest.mark.parametrize("script,rc,err", [
    ("#!/bin/sh\n#SBATCH --foo\ntrue\n", 255, "sbatch: unrecognized option '--foo'\n" + TRY),
    ("#!/bin/sh\n#SBATCH -J x y\ntrue\n", 255, "sbatch: error: Invalid directive found in batch script: y\n"),
    ('#!/bin/sh\n#SBATCH -J "x\n', 1, 'sbatch: fatal: stdin: line 2: Unmatched `"` in [ "x]\n'),
    ("#!/bin/sh\n#SBATCH : -J x\n", 1, "sbatch: fatal: stdin: line 2: Unexpected `:` in [: -J x]\n"),
    ("#!/bin/sh\n#SBATCH -t abc\ntrue\n", 255, "sbatch: error: Invalid --time specification\n"),
])
def test_bad_directives(slurm: FakeSlurm, script: str, rc: int, err: str) -> None:
    got_rc, _, got = run("sbatch", "-t", "5", stdin=script)
    assert (got_rc, got) == (rc, err)


def test_directive_help_is_ignored_and_old_magic_warns(slurm: FakeSlurm) -> None:
    submit_ok(slurm)
    rc, out, err = run("sbatch", "-H", "--parsable", stdin="#!/bin/sh\n#SBATCH --help\n#SLURM -J old\ntrue\n")
    assert (rc, out) == (0, "42\n")
    assert err == ("sbatch: error: Change from #SLURM to #SBATCH in your script and verify the options are "
                   "valid in sbatch\n")
    assert slurm.ops("submit")[0]["job"]["name"] == "old"


def test_submission_failure(slurm: FakeSlurm) -> None:
    # slurmctld's err_msg comes first (it names the partition of a list that does not exist)
    slurm.on("submit", RpcError("ESLURM_INVALID_PARTITION_NAME", "Invalid partition name specified",
                                "invalid partition specified: nopart"))
    rc, out, err = run("sbatch", "-p", "short,nopart", "--wrap=true")
    assert (rc, out) == (1, "")
    assert err == ("sbatch: error: invalid partition specified: nopart\n"
                   "sbatch: error: Batch job submission failed: Invalid partition name specified\n")
    slurm.on("submit", RpcError("ESLURM_INVALID_TIME_LIMIT",
                                "Requested time limit is invalid (missing or exceeds some limit)"))
    rc, _, err = run("sbatch", "-t", "9999", "--wrap=true")
    assert rc == 1
    assert err == ("sbatch: error: Batch job submission failed: Requested time limit is invalid "
                   "(missing or exceeds some limit)\n")


def test_test_only(slurm: FakeSlurm) -> None:
    slurm.on("submit", {"test_only": {"job_id": 22, "start_time": 0, "cpus": 1, "nodes": "vm",
                                      "partition": "short"}})
    rc, out, err = run("sbatch", "--test-only", "--wrap=true")
    assert (rc, out) == (0, "")
    assert err == "sbatch: Job 22 to start at Unknown using 1 processors on nodes vm in partition short\n"
    assert slurm.ops("submit")[0]["test_only"] is True
    slurm.on("submit", RpcError("ESLURM_INVALID_PARTITION_NAME", "Invalid partition name specified",
                                "invalid partition specified: nopart"))
    assert run("sbatch", "--test-only", "-p", "nopart", "--wrap=true") == (
        1, "", "sbatch: error: invalid partition specified: nopart\nallocation failure: Invalid partition name specified\n")


def test_clusters(slurm: FakeSlurm) -> None:
    submit_ok(slurm, 25)
    assert run("sbatch", "-M", "arc", "--wrap=true")[1] == "Submitted batch job 25 on cluster arc\n"
    assert run("sbatch", "-M", "arc", "--parsable", "--wrap=true")[1] == "25;arc\n"
    rc, _, err = run("sbatch", "-M", "nope", "--wrap=true")
    assert rc == 1
    assert err == ("sbatch: error: 'nope' can't be reached now, or it is an invalid entry for --cluster.  "
                   "Use 'sacctmgr list clusters' to see available clusters.\n")


def test_quiet_prints_nothing(slurm: FakeSlurm) -> None:
    submit_ok(slurm)
    assert run("sbatch", "-Q", "--wrap=true") == (0, "", "")


def test_export_none_sends_only_slurm_variables(slurm: FakeSlurm, monkeypatch: pytest.MonkeyPatch) -> None:
    submit_ok(slurm)
    monkeypatch.setenv("SLURM_SOMETHING", "1")
    monkeypatch.setenv("MY_VAR", "x")
    run("sbatch", "--export=NONE", "--wrap=env")
    env = slurm.ops("submit")[-1]["env"]
    assert env.get("SLURM_SOMETHING") == "1" and "MY_VAR" not in env and "PATH" not in env
    run("sbatch", "--wrap=env")
    assert slurm.ops("submit")[-1]["env"]["MY_VAR"] == "x"


def test_input_environment_variables(slurm: FakeSlurm, monkeypatch: pytest.MonkeyPatch) -> None:
    submit_ok(slurm)
    monkeypatch.setenv("SBATCH_PARTITION", "devel")
    monkeypatch.setenv("SBATCH_TIMELIMIT", "3")
    run("sbatch", "-t", "4", stdin="#!/bin/sh\n#SBATCH -p long\n#SBATCH -t 9\ntrue\n")
    job = slurm.ops("submit")[-1]["job"]
    # environment beats directives, the command line beats the environment
    assert (job["partition"], job["time_limit"]) == ("devel", 4)


def test_help_usage_version(slurm: FakeSlurm) -> None:
    rc, out, _ = run("sbatch", "--usage")
    assert rc == 0 and out.startswith("Usage: sbatch [-N nnodes] [-n ntasks]\n")
    rc, out, _ = run("sbatch", "--help", "--foo")
    assert rc == 0 and out.startswith("Usage: sbatch [OPTIONS(0)...] [ : [OPTIONS(N)...]] script(0) [args(0)...]")
    assert run("sbatch", "-V") == (0, "slurm 22.05.8\n", "")


def test_wait_returns_the_jobs_exit_code(slurm: FakeSlurm) -> None:
    submit_ok(slurm)
    slurm.on("jobs", {"fields": ["state", "exit_code", "exit_signal"], "rows": [["FAILED", 3, 0]], "now": 0})
    rc, out, _ = run("sbatch", "-W", "--wrap=exit 3")
    assert (rc, out) == (3, "Submitted batch job 42\n")


def test_work_dir_option(slurm: FakeSlurm, tmp_path: Path) -> None:
    submit_ok(slurm)
    run("sbatch", "-D", str(tmp_path), "--wrap=true")
    assert slurm.ops("submit")[-1]["job"]["work_dir"] == str(tmp_path)
    run("sbatch", "--chdir=rel", "--wrap=true")
    assert slurm.ops("submit")[-1]["job"]["work_dir"] == os.path.join(os.getcwd(), "rel")


def test_verbose_prints_the_defined_options(slurm: FakeSlurm) -> None:
    # sbatch 22.05 -v (slurm_print_set_options): set options in the option table's order, -e left out
    submit_ok(slurm)
    rc, out, err = run("sbatch", "-v", "-N", "1-2", "-n", "4", "--mem=2G", "-o", "/tmp/out.%j", "-e", "err",
                       "--begin=2030-01-01T10:00:00", "--exclusive", "--hold", "--signal=USR1@60", "-t", "1-2:00",
                       "--open-mode=append", "--gres=gpu:1", "-J", "name", "--wrap", "true")
    assert (rc, out) == (0, "Submitted batch job 42\n")
    assert err == "".join(f"sbatch: {line}\n" for line in [
        "defined options", "-------------------- --------------------",
        "begin               : 2030-01-01T10:00:00", "exclusive           : exclusive",
        "gres                : gres:gpu:1", "hold                : set", "job-name            : name",
        "mem                 : 2G", "nodes               : 1-2", "ntasks              : 4",
        "open-mode           : a", "output              : /tmp/out.%j", "signal              : USR1",
        "time                : 1-02:00:00", "verbose             : 1", "wrap                : true",
        "-------------------- --------------------", "end of defined options"])
    rc, _, err = run("sbatch", "-vv", "--mem-per-cpu=200", "-t", "5", "--wrap", "true")
    assert "sbatch: mem-per-cpu         : 200\nsbatch: time                : 00:05:00\n" in err
    assert "sbatch: verbose             : 2\n" in err
    assert run("sbatch", "-Q", "-v", "--wrap", "true")[::2] == (
        1, "sbatch: error: don't specify both --verbose (-v) and --quiet (-Q)\n")
