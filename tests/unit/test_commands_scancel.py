"""scancel against a fake controller: what it asks for and what real Slurm 22.05 prints back."""

from __future__ import annotations

from typing import Any

import pytest
from fakeslurm import FakeSlurm, job, run, slurm_fixture  # noqa: F401 - the fixture

from orchestrator.scheduler.protocol import RpcError


def results(*items: tuple[str, str | None, str]) -> dict[str, Any]:
    return {"results": [{"job_id": j, "error": e, "message": m} for j, e, m in items]}


def test_ids_go_straight_to_the_controller(slurm: FakeSlurm) -> None:
    slurm.on("signal", lambda body: results(*[(j, None, "") for j in body["job_ids"]]))
    assert run("scancel", "12", "13_2", "14_[1-3]", "15_*") == (0, "", "")
    body = slurm.ops("signal")[0]
    assert body["job_ids"] == ["12", "13_2", "14_[1-3]", "15"]
    assert body["signal"] is None and body["batch_only"] is False
    assert not slurm.ops("jobs")


def test_options_after_ids_and_comma_lists(slurm: FakeSlurm) -> None:
    slurm.on("signal", lambda body: results(*[(j, None, "") for j in body["job_ids"]]))
    assert run("scancel", "12,13", "--signal", "USR2", "-b")[0] == 0
    body = slurm.ops("signal")[0]
    assert body["job_ids"] == ["12", "13"] and body["signal"] == 12 and body["batch_only"] is True


def test_unknown_or_finished_is_silent_unless_verbose(slurm: FakeSlurm) -> None:
    slurm.on("signal", results(("99999", "ESLURM_INVALID_JOB_ID", "Invalid job id specified")))
    assert run("scancel", "99999") == (0, "", "")
    assert run("scancel", "-v", "99999") == (0, "", "scancel: Terminating job 99999\n"
                                                 "scancel: error: Kill job error on job id 99999: "
                                                 "Invalid job id specified\n")
    slurm.on("signal", results(("7", "ESLURM_ALREADY_DONE", "Job/step already completing or completed")))
    assert run("scancel", "7") == (0, "", "")


def test_another_users_job(slurm: FakeSlurm) -> None:
    slurm.on("signal", results(("47", "ESLURM_ACCESS_DENIED", "Access/permission denied")))
    assert run("scancel", "47") == (210, "", "scancel: error: Kill job error on job id 47: "
                                            "Access/permission denied\n")
    assert run("scancel", "-Q", "47") == (210, "", "")


def test_signal_verbose_message(slurm: FakeSlurm) -> None:
    slurm.on("signal", results(("5", None, "")))
    assert run("scancel", "-v", "-s", "USR1", "5") == (0, "", "scancel: Signal 10 to job 5\n")
    assert run("scancel", "-v", "-b", "5") == (0, "", "scancel: Terminating batch job 5\n")


@pytest.mark.parametrize("args,err", [
    ([], "scancel: error: No job identification provided\n"),
    (["abc"], "scancel: error: Invalid job id abc\n"),
    (["12_[1-3"], "scancel: error: Invalid job id 12_[1-3\n"),
    (["5_[a]"], "scancel: error: _parse_single_range: Invalid range: `a'\nscancel: error: Invalid job id 5_[a]\n"),
    (["5_[1,x]"], "scancel: error: _parse_single_range: Invalid range: `x'\nscancel: error: Invalid job id 5_[1,x]\n"),
    (["5_[2-1]"],
     "scancel: error: _parse_single_range: Invalid range: `2-1'\nscancel: error: Invalid job id 5_[2-1]\n"),
    (["5_[]"], "scancel: error: _parse_single_range: Invalid range: `'\nscancel: error: Invalid job id 5_[]\n"),
    (["5_[1:2]"],
     "scancel: error: _parse_single_range: Invalid range: `1:2'\nscancel: error: Invalid job id 5_[1:2]\n"),
    (["-s", "FOO", "3"], "Unknown job signal: FOO\n"),
    (["-t", "FOO"], "Invalid job state specified: FOO\nValid job states are PENDING, RUNNING, and SUSPENDED\n"),
    (["-u", "nosuchuser_x"], "scancel: error: Invalid user name: nosuchuser_x\n"),
    (["--foo"], "scancel: unrecognized option '--foo'\nTry \"scancel --help\" for more information\n"),
])
def test_bad_input(slurm: FakeSlurm, args: list[str], err: str) -> None:
    assert run("scancel", *args) == (1, "", err)


def test_filters_are_matched_client_side(slurm: FakeSlurm) -> None:
    slurm.jobs = [job(40, partition="devel"), job(41, partition="short"),
                  job(47, partition="devel", user="bob", uid=1002),
                  job(48, partition="devel", state="COMPLETED"),
                  job(50, partition="devel", state="RUNNING")]
    slurm.serve_jobs()
    slurm.on("signal", lambda body: results(*[(j, None, "") for j in body["job_ids"]]))
    rc, _out, err = run("scancel", "-v", "-p", "devel")
    assert rc == 0
    # pending first, then running; another user's job is tried (and refused by the controller), as in Slurm
    assert slurm.ops("signal")[0]["job_ids"] == ["40", "47", "50"]
    assert err == "scancel: Terminating job 40\nscancel: Terminating job 47\nscancel: Terminating job 50\n"


def test_no_match_with_verbose(slurm: FakeSlurm) -> None:
    slurm.jobs = [job(40)]
    slurm.serve_jobs()
    assert run("scancel", "-v", "-n", "nosuchname") == (
        0, "", "scancel: error: No active jobs match ALL job filters, including: job_name=nosuchname \n")
    assert not slurm.ops("signal")


def test_ids_with_filters_report_unknown_ids(slurm: FakeSlurm) -> None:
    slurm.jobs = [job(40, name="a")]
    slurm.serve_jobs()
    slurm.on("signal", lambda body: results(*[(j, None, "") for j in body["job_ids"]]))
    rc, _, err = run("scancel", "-n", "a", "40", "99")
    assert rc == 1
    assert err == "scancel: error: Kill job error on job id 99: Invalid job id specified\n"
    assert slurm.ops("signal")[0]["job_ids"] == ["40"]


def test_connection_failure(slurm: FakeSlurm) -> None:
    slurm.on("signal", RpcError("SLURM_COMMUNICATIONS_CONNECTION_ERROR",
                                "Unable to contact slurm controller (connect failure)"))
    rc, _, err = run("scancel", "5")
    assert rc == 1001 % 256
    assert err == ("scancel: error: Kill job error on job id 5: Unable to contact slurm controller "
                   "(connect failure)\n")


def test_help_usage_version(slurm: FakeSlurm) -> None:
    assert run("scancel", "-V") == (0, "slurm 22.05.8\n", "")
    assert run("scancel", "--usage")[1].startswith("Usage: scancel [-A account] [--batch]")
    assert run("scancel", "--help")[1].startswith("Usage: scancel [OPTIONS] [job_id[_array_id][.step_id]]\n")
