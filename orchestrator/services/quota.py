"""Storage quotas as on ARC: $HOME per user, $DATA per project, measured in the background and enforced at submit.

Docker volumes cannot enforce filesystem quotas, so minihpc enforces what it can
and says so: over quota, new jobs are refused (``on_submit``), ``myquota`` flags
the area and the login banner warns; writes themselves still succeed.

Usage is measured by a scanner thread in the controller, which sees /home and
/data as every node does: it walks each area, counts allocated blocks (as
``du`` and quota(1) do; hard links once, ``$HOME/.snapshot`` not at all) and
files, and keeps the result. Commands and submissions read the kept result, so
no call ever scans; a new file shows within one scan interval (30 s by default).
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator.scheduler.controller import Plugin
from orchestrator.scheduler.errors import SlurmError
from orchestrator.scheduler.job import Job
from orchestrator.scheduler.server import Request
from orchestrator.services.membership import projects_of, user_name
from orchestrator.slurm.units import format_size

if TYPE_CHECKING:
    from orchestrator.cluster.config import Config
    from orchestrator.scheduler.controller import Controller

log = logging.getLogger(__name__)

__all__ = ["Area", "QuotaPlugin", "Scanner", "Usage", "areas_for", "measure", "over_quota_message"]

SCAN_INTERVAL = 30.0
SNAPSHOT_DIR = ".snapshot"


@dataclass(frozen=True)
class Area:
    """One quota'd directory: a user's home or a project's data area."""

    kind: str  # "home" or "data"
    owner: str  # user (home) or project (data)
    path: str
    quota: int  # bytes

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.owner}"

    @property
    def label(self) -> str:
        return "$HOME" if self.kind == "home" else f"$DATA ({self.owner})"


@dataclass(frozen=True)
class Usage:
    used: int  # bytes allocated
    files: int  # files and directories below the area's top
    scanned: float  # when the scan finished (epoch)
    duration: float = 0.0
    error: str = ""


def areas_for(config: Config, home_root: str, data_root: str) -> list[Area]:
    """Every quota'd area of the config: each user's home, each project's data area."""
    out = [Area("home", u.name, os.path.join(home_root, u.name), config.site.home_quota) for u in config.users]
    out += [Area("data", p.name, os.path.join(data_root, p.name), p.data_quota) for p in config.projects]
    return out


def measure(path: str, skip_top: tuple[str, ...] = ()) -> Usage:
    """Walk one area without following symlinks: allocated bytes and entries."""
    t0 = time.time()
    used = 0
    files = 0
    seen: set[tuple[int, int]] = set()
    errors = 0
    try:
        top = os.lstat(path)
    except FileNotFoundError:
        return Usage(0, 0, time.time(), 0.0, "")
    except OSError as exc:
        return Usage(0, 0, time.time(), 0.0, exc.strerror or str(exc))
    used += top.st_blocks * 512
    stack = [path]
    first = True
    while stack:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                for entry in it:
                    if first and entry.name in skip_top:
                        continue
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        errors += 1
                        continue
                    files += 1
                    if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
                        ident = (st.st_dev, st.st_ino)
                        if ident in seen:
                            continue
                        seen.add(ident)
                    used += st.st_blocks * 512
                    if stat.S_ISDIR(st.st_mode):
                        stack.append(entry.path)
        except OSError:
            errors += 1
        first = False
    now = time.time()
    return Usage(used, files, now, now - t0, f"{errors} entries could not be read" if errors else "")


class Scanner:
    """Keeps every area's usage fresh from a background thread."""

    def __init__(self, areas: list[Area], interval: float = SCAN_INTERVAL) -> None:
        self.areas = {a.key: a for a in areas}
        self.interval = interval
        self.usage: dict[str, Usage] = {}
        self.passes = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="quota-scanner", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def scan_once(self) -> None:
        for area in list(self.areas.values()):
            skip = (SNAPSHOT_DIR,) if area.kind == "home" else ()
            try:
                self.usage[area.key] = measure(area.path, skip)
            except Exception as exc:  # never let one area stop the others
                log.exception("quota scan of %s failed", area.path)
                self.usage[area.key] = Usage(0, 0, time.time(), 0.0, str(exc))
        self.passes += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            t0 = time.time()
            self.scan_once()
            took = time.time() - t0
            if took > self.interval / 2:
                log.warning("quota scan took %.1fs (interval %.0fs)", took, self.interval)
            self._wake.wait(max(1.0, self.interval - took))
            self._wake.clear()

    def get(self, key: str) -> Usage | None:
        return self.usage.get(key)


def over_quota_message(area: Area, usage: Usage) -> str:
    return (f"Disk quota exceeded: {area.label} {area.path} uses {format_size(usage.used)} of its "
            f"{format_size(area.quota)} quota. Remove or move files (see myquota), then submit again")


class QuotaPlugin(Plugin):
    """Quota checks at submit and the ``quota`` op that ``myquota`` reads."""

    def __init__(self, ctl: Controller, home_root: str | None = None, data_root: str | None = None,
                 interval: float | None = None) -> None:
        self.ctl = ctl
        self.home_root = home_root or os.environ.get("MINIHPC_HOME_ROOT", "/home")
        self.data_root = data_root or os.environ.get("MINIHPC_DATA_ROOT", "/data")
        if interval is None:
            interval = float(os.environ.get("MINIHPC_QUOTA_INTERVAL", SCAN_INTERVAL))
        self.scanner = Scanner(areas_for(ctl.config, self.home_root, self.data_root), interval)
        self.scanner.start()

    def handlers(self) -> dict[str, Any]:
        return {"quota": self.op_quota}

    def on_submit(self, job: Job) -> None:
        for key in (f"home:{job.user}", f"data:{job.account}"):
            area = self.scanner.areas.get(key)
            usage = self.scanner.get(key)
            if area is None or usage is None:
                continue
            if usage.used > area.quota:
                raise SlurmError("EDQUOT", over_quota_message(area, usage))

    async def op_quota(self, req: Request) -> dict[str, Any]:
        """The caller's home and the data areas of their projects, with the last measured usage.

        Right after a start it waits (up to 10 s) for the first scan, unless ``wait`` is false
        (the login banner must not hold up a login).
        """
        user = user_name(req.uid)
        if req.body.get("user"):
            if req.uid not in (0, os.getuid()) and str(req.body["user"]) != user:
                raise SlurmError("ESLURM_ACCESS_DENIED")
            user = str(req.body["user"])
        keys = [f"home:{user}"] + [f"data:{p}" for p in projects_of(self.ctl.config, user)]
        deadline = time.time() + (10 if req.body.get("wait", True) else 0)
        while self.scanner.passes == 0 and time.time() < deadline:
            await asyncio.sleep(0.1)  # the first scan after a start
        out = []
        for key in keys:
            area = self.scanner.areas.get(key)
            if area is None:
                continue
            usage = self.scanner.get(key)
            out.append({"area": area.label, "kind": area.kind, "name": area.owner, "path": area.path,
                        "quota": area.quota, "used": usage.used if usage else None,
                        "files": usage.files if usage else None, "scanned": usage.scanned if usage else 0.0,
                        "error": usage.error if usage else "not measured yet"})
        return {"user": user, "areas": out, "interval": self.scanner.interval, "now": time.time()}
