"""The `matlab` stand-in translates MATLAB's command line into GNU Octave's (Octave stubbed here)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

MATLAB = Path(__file__).resolve().parents[2] / "images" / "modules" / "files" / "matlab"


@pytest.fixture
def stub(tmp_path: Path) -> Path:
    """A fake octave-cli that prints its arguments, one per line, and fails on 'error('."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "octave-cli"
    fake.write_text('#!/bin/bash\nfor a in "$@"; do echo "ARG:$a"; done\n'
                    'echo "OMP:${OMP_NUM_THREADS-unset}"\ncase "$*" in *"error("*) exit 1;; esac\n')
    fake.chmod(0o755)
    return bindir


def run(bindir: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "HOME": str(bindir)}
    return subprocess.run([str(MATLAB), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=30,
                          check=False)


def args_of(res: subprocess.CompletedProcess[str]) -> list[str]:
    return [line[4:] for line in res.stdout.splitlines() if line.startswith("ARG:")]


def test_batch_runs_octave_eval_and_ignores_java_flags(stub: Path) -> None:
    res = run(stub, "-nojvm", "-nosplash", "-batch", "disp(42)")
    assert res.returncode == 0, res.stderr
    assert args_of(res) == ["--no-gui", "--no-window-system", "--quiet", "--no-history", "--eval", "disp(42)"]


def test_batch_error_gives_exit_status_1(stub: Path) -> None:
    assert run(stub, "-batch", "error('x')").returncode == 1


def test_r_stays_at_the_prompt(stub: Path) -> None:
    res = run(stub, "-nodisplay", "-r", "x=1")  # stdin is not a terminal here: no history either
    assert args_of(res) == ["--no-gui", "--no-window-system", "--quiet", "--no-history", "--persist", "--eval", "x=1"]


def test_batch_without_statement_is_an_error(stub: Path) -> None:
    res = run(stub, "-batch")
    assert res.returncode == 1
    assert "matlab: -batch requires a MATLAB statement" in res.stderr


def test_batch_and_r_together_are_refused(stub: Path) -> None:
    res = run(stub, "-batch", "a", "-r", "b")
    assert res.returncode == 1 and "cannot be used together" in res.stderr


def test_single_comp_thread_and_sd(stub: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    res = run(stub, "-singleCompThread", "-sd", str(work), "-batch", "pwd")
    assert "OMP:1" in res.stdout


def test_help_says_it_is_octave(stub: Path) -> None:
    res = run(stub, "-h")
    assert res.returncode == 0
    assert "This is not MATLAB" in res.stdout and "GNU Octave" in res.stdout


def test_unknown_option_is_warned_about_not_fatal(stub: Path) -> None:
    res = run(stub, "-nofoo", "-batch", "1")
    assert res.returncode == 0
    assert "ignoring option '-nofoo'" in res.stderr


def test_logfile_gets_a_copy(stub: Path, tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    res = run(stub, "-logfile", str(log), "-batch", "disp(1)")
    assert res.returncode == 0
    assert "ARG:disp(1)" in log.read_text()


def test_script_is_executable() -> None:
    assert os.access(MATLAB, os.X_OK)


def test_script_on_stdin_runs_without_history(stub: Path) -> None:
    env = {"PATH": f"{stub}:/usr/bin:/bin", "HOME": str(stub)}
    res = subprocess.run([str(MATLAB), "-nodisplay", "-nosplash"], input="disp(1)\n", capture_output=True, text=True,
                         env=env, timeout=30, check=False)
    assert res.returncode == 0
    assert args_of(res) == ["--no-gui", "--no-window-system", "--quiet", "--no-history"]
