"""Local-mode fixtures: one scheduler (munged, controller, node daemons) per test session, as processes."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.scheduler.local import LocalCluster

HERE = Path(__file__).parent
TEST_USERS = {"mhalice": 31001, "mhbob": 31002}
TEST_GROUP = ("proj-a", 30001)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.local)


def _ensure_users() -> bool:
    """Create the test users when running as root (as CI does); returns whether they exist."""
    if os.getuid() != 0:
        return all(_exists(u) for u in TEST_USERS)
    group, gid = TEST_GROUP
    subprocess.run(["groupadd", "-f", "-g", str(gid), group], check=False, capture_output=True)
    for user, uid in TEST_USERS.items():
        if not _exists(user):
            subprocess.run(["useradd", "-m", "-u", str(uid), "-G", group, "-s", "/bin/bash", user],
                           check=True, capture_output=True)
    return True


def _exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
        return True
    except KeyError:
        return False


@dataclass
class Local:
    """The running local cluster and helpers to act as a user on it."""

    cluster: LocalCluster
    users_ok: bool

    @property
    def base(self) -> Path:
        return self.cluster.base

    def run(self, cmd: list[str] | str, user: str | None = None, cwd: str | Path | None = None,
            input: str | None = None, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a command line (list, or a string for bash -c) as ``user`` with the cluster's commands on PATH."""
        args = ["bash", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        full_env = {**os.environ, **self.cluster.env(), **(env or {})}
        if user is not None and user != pwd.getpwuid(os.getuid()).pw_name:
            if not self.users_ok:
                pytest.skip("needs root to act as test users")
            keep = ",".join(["MINIHPC_CONF", "MINIHPC_MUNGE_SOCKET", "PATH", *(env or {}).keys()])
            args = ["runuser", "-u", user, "-w", keep, "--", *args]
            full_env["HOME"] = pwd.getpwnam(user).pw_dir
        # never the repository: a job submitted from here would write slurm-N.out into it
        return subprocess.run(args, cwd=str(cwd or self.base / "work"), env=full_env, input=input,
                              capture_output=True, text=True, timeout=timeout)

    def workdir(self, user: str | None = None) -> Path:
        """A fresh directory the user owns, for job scripts and output."""
        d = Path(tempfile.mkdtemp(dir=self.base / "work"))
        if user is not None and os.getuid() == 0:
            pw = pwd.getpwnam(user)
            os.chown(d, pw.pw_uid, pw.pw_gid)
        os.chmod(d, 0o755)
        return d

    def job(self, job_id: int | str, fields: tuple[str, ...] = ("state", "reason", "exit_code", "exit_signal",
                                                               "nodes")) -> dict[str, object]:
        rows = self.cluster.call("jobs", {"fields": list(fields), "job_ids": [job_id]})["rows"]
        return dict(zip(fields, rows[0], strict=True))  # type: ignore[arg-type]

    def acct(self, job_id: int) -> dict[str, object]:
        return self.cluster.call("acct", {"job_ids": [job_id]})["jobs"][0]  # type: ignore[index,no-any-return]

    def wait(self, job_id: int | str, states: tuple[str, ...] = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT",
                                                                 "OUT_OF_MEMORY", "NODE_FAIL"),
             timeout: float = 30) -> dict[str, object]:
        deadline = time.time() + timeout
        info: dict[str, object] = {}
        while time.time() < deadline:
            info = self.job(job_id)
            if info["state"] in states:
                return info
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} did not reach {states} in {timeout}s: {info}")

    def submit(self, script: str, *args: str, user: str | None = None, cwd: Path | None = None) -> int:
        cwd = cwd or self.workdir(user)
        path = cwd / "job.sh"
        path.write_text(script)
        os.chmod(path, 0o755)
        r = self.run(["sbatch", "--parsable", *args, str(path)], user=user, cwd=cwd)
        assert r.returncode == 0, r.stderr
        return int(r.stdout.strip().split(";")[0])


@pytest.fixture(scope="session")
def local() -> Iterator[Local]:
    if not shutil.which("munged") and not os.path.exists("/usr/sbin/munged"):
        if os.environ.get("CI"):  # CI must not pass by skipping the whole level
            pytest.fail("munge is not installed: `make host-deps` installs it", pytrace=False)
        pytest.skip("munge is not installed (apt-get install munge, or `make host-deps` as root)")
    users_ok = _ensure_users()
    base = Path(tempfile.mkdtemp(prefix="minihpc-local-"))
    os.chmod(base, 0o755)
    (base / "work").mkdir()
    os.chmod(base / "work", 0o1777)
    lc = LocalCluster(base, HERE / "cluster.yaml", kill_wait=2, slurmd_timeout=6)
    try:
        lc.up()
        yield Local(lc, users_ok)
    finally:
        lc.down()
        keep = os.environ.get("MINIHPC_KEEP_LOCAL")
        if not keep:
            shutil.rmtree(base, ignore_errors=True)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    report: pytest.TestReport = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture(autouse=True)
def _no_leftovers_after_a_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """A failed test may leave jobs holding nodes (its clean-up never ran); cancel them, so that the
    tests after it do not fail only because they queue behind them. The failure itself stands."""
    yield
    if not request.node.stash.get(_FAILED, False) or "local" not in request.fixturenames:
        return
    lc: Local = request.getfixturevalue("local")
    rows = lc.cluster.call("jobs", {"fields": ["job_id", "state"]})["rows"]
    active = [job_id for job_id, state in rows if state in ("PENDING", "RUNNING", "SUSPENDED", "REQUEUED")]
    if active:
        lc.cluster.call("signal", {"job_ids": active, "signal": None})
