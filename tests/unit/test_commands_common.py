"""The dispatcher and what every command shares: names, clusters, no tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fakeslurm import FakeSlurm, run, slurm_fixture  # noqa: F401 - the fixture

ROOT = Path(__file__).resolve().parents[2]


def test_dispatch_on_program_name() -> None:
    from orchestrator.commands import main

    assert main(["/usr/local/bin/nosuchcommand"]) == 127


def test_python_dash_m_runs_a_command_by_name() -> None:
    r = subprocess.run([sys.executable, "-m", "orchestrator.commands", "sbatch", "--version"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout) == (0, "slurm 22.05.8\n")


def test_getopt_messages_use_the_bare_command_name(slurm: FakeSlurm, capsys: pytest.CaptureFixture[str]) -> None:
    from orchestrator.commands import main

    rc = main(["/usr/local/bin/squeue", "--bogus"])
    assert rc == 1
    assert capsys.readouterr().err == ("squeue: unrecognized option '--bogus'\n"
                                       "Try \"squeue --help\" for more information\n")


def test_unexpected_failures_are_one_line(slurm: FakeSlurm) -> None:
    slurm.on("jobs", lambda body: 1 / 0)  # type: ignore[arg-type,return-value]
    rc, out, err = run("squeue")
    assert (rc, out) == (1, "")
    assert err == "squeue: error: division by zero\n"


def test_missing_client_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import orchestrator.scheduler.client as client

    monkeypatch.setattr(client, "_config", None)
    monkeypatch.setenv("MINIHPC_CONF", str(tmp_path / "missing.json"))
    rc, _out, err = run("squeue")
    assert rc == 1
    assert err == f"slurm_load_jobs error: Could not read the cluster configuration {tmp_path}/missing.json: " \
                  "No such file or directory\n"
