"""A second local-mode service for the ARC-services tests: its own tiny credits and quotas.

Draining a project's credit or filling its quota would hold or refuse other
tests' jobs in the shared ``local`` service, so these tests get their own,
with $HOME and $DATA roots in a temporary directory (the quota scanner reads
them through MINIHPC_HOME_ROOT / MINIHPC_DATA_ROOT), a 2-second scan and
$HOME snapshots every 2 seconds (same-hour snapshots replace each other).
"""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from orchestrator.scheduler.local import LocalCluster

HERE = Path(__file__).parent
CONFIG = HERE / "arc_services.yaml"
SCAN_INTERVAL = 2


@contextmanager
def arc_service(local: Any) -> Iterator[Any]:
    """Start the service; yields a ``Local`` (same helpers as the shared fixture) with ``home``/``data`` roots."""
    if not local.users_ok:
        pytest.skip("needs root to act as test users")
    base = Path(tempfile.mkdtemp(prefix="minihpc-arc-"))
    os.chmod(base, 0o755)
    (base / "work").mkdir()
    os.chmod(base / "work", 0o1777)
    home, data = base / "home", base / "data"
    for user, projects in (("mhalice", ["proj-a"]), ("mhbob", ["proj-b", "proj-a"])):
        pw = pwd.getpwnam(user)
        (home / user).mkdir(parents=True)
        os.chown(home / user, pw.pw_uid, pw.pw_gid)
        os.chmod(home / user, 0o700)
        for p in projects:
            d = data / p / user
            d.mkdir(parents=True, exist_ok=True)
            os.chown(d, pw.pw_uid, pw.pw_gid)
            os.chmod(data / p, 0o755)
    env = {"MINIHPC_HOME_ROOT": str(home), "MINIHPC_DATA_ROOT": str(data),
           "MINIHPC_QUOTA_INTERVAL": str(SCAN_INTERVAL), "MINIHPC_SNAPSHOT_INTERVAL": str(SCAN_INTERVAL)}
    lc = LocalCluster(base, CONFIG, cluster="arc", kill_wait=2, slurmd_timeout=6)
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        try:
            lc.up()
            svc = type(local)(lc, local.users_ok)
            svc.home = home  # type: ignore[attr-defined]
            svc.data = data  # type: ignore[attr-defined]
            yield svc
        finally:
            lc.down()
            if not os.environ.get("MINIHPC_KEEP_LOCAL"):
                shutil.rmtree(base, ignore_errors=True)
