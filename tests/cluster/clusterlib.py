"""What cluster tests share: the config under test and the cluster it describes."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.cluster.config import Config, load
from orchestrator.cluster.paths import Paths
from orchestrator.cluster.plan import Plan, make_plan

TEST_CONFIG = os.environ.get("MINIHPC_TEST_CONFIG") or None
JOB_TIMEOUT = 180.0


def load_test_config() -> Config:
    return load(TEST_CONFIG)


@dataclass
class ClusterUnderTest:
    """What the cluster tests need to know about the running service."""

    config: Config
    plan: Plan
    paths: Paths
    started_here: bool

    def key(self, user: str) -> Path:
        return self.paths.keys / user


def expected_plan() -> Plan:
    """The containers the tests expect (known at collection time, before anything runs)."""
    return make_plan(load_test_config(), str(Paths.default().run))


@dataclass
class Shell:
    """ssh to a login node as a user, the way users do."""

    user: str
    argv: list[str]
    login_shell: bool = False  # bash -l: the profile is read, as in an interactive login

    def run(self, script: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        flags = "-lc" if self.login_shell else "-c"
        return subprocess.run([*self.argv, f"bash {flags} {shlex.quote(script)}"], capture_output=True, text=True,
                              timeout=timeout, check=False)

    def ok(self, script: str, timeout: float = 120) -> str:
        """stdout of a command that must succeed."""
        res = self.run(script, timeout)
        assert res.returncode == 0, f"{script!r} as {self.user} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
        return res.stdout

    def out(self, script: str, timeout: float = 120) -> str:
        """stdout and then stderr of a command that must succeed (Lmod writes to stderr)."""
        res = self.run(script, timeout)
        assert res.returncode == 0, f"{script!r} as {self.user} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
        return res.stdout + res.stderr

    def submit(self, script: str, *opts: str, workdir: str = "~") -> int:
        name = f"job-{uuid.uuid4().hex[:6]}.sh"
        self.ok(f"cd {workdir} && cat > {name} <<'EOF'\n{script}EOF\n")
        out = self.ok(f"cd {workdir} && sbatch --parsable {' '.join(shlex.quote(o) for o in opts)} {name}")
        return int(out.strip().split(";")[0])

    def state(self, job: int) -> tuple[str, str]:
        out = self.ok(f"scontrol show job {job}")
        state = re.search(r"JobState=(\S+)", out)
        reason = re.search(r"Reason=(\S+)", out)
        return (state.group(1) if state else "?", reason.group(1) if reason else "?")

    def wait(self, job: int, states: tuple[str, ...] = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT",
                                                          "NODE_FAIL", "OUT_OF_MEMORY"),
             timeout: float = JOB_TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        state = "?"
        while time.monotonic() < deadline:
            state = self.state(job)[0]
            if state in states:
                return state
            time.sleep(1)
        self.run(f"scancel {job}")
        pytest.fail(f"job {job} stayed {state} for {timeout:.0f} s")


def shell(user: str, cluster: str = "arc", login_shell: bool = False) -> Shell:
    """An ssh session factory for ``user`` on ``cluster``'s login node, once ssh answers."""
    from orchestrator.cli import ssh_command
    from orchestrator.cluster.config import load
    from orchestrator.cluster.paths import Paths

    argv = ssh_command(Paths.default(), load(None), user, cluster, ["true"])[:-1]
    deadline = time.monotonic() + 90
    while True:
        probe = subprocess.run([*argv, "true"], capture_output=True, text=True, timeout=60, check=False)
        if probe.returncode == 0:
            return Shell(user, argv, login_shell)
        if time.monotonic() > deadline:
            pytest.fail(f"ssh as {user} to {cluster}-login fails: {probe.stderr.strip()}")
        time.sleep(3)
