"""$HOME snapshots as ARC documents them: read-only, hourly- and daily-named copies in ``$HOME/.snapshot``.

The controller of the ledger's home cluster (it sees /home) copies every
configured user's home once an hour into ``$HOME/.snapshot/hourly.<date>_<HH>00``
and keeps the first copy of each day as ``daily.<date>``. Copies are real: file
contents are copied; a file unchanged since the previous snapshot is hard-linked
to that snapshot's copy (both are read-only, so they can never differ), which
keeps the cost of an unchanged home to its directory tree. Snapshots are owned by
root and carry no write bit, so users can read and restore from them but not
change or delete them; the quota scanner skips ``.snapshot``, so they do not count.

Everything runs as root inside directories users own, so the walk never follows
a path a user could swap for a symlink: each directory and file is opened with
``O_NOFOLLOW`` relative to its parent's descriptor (openat), and all writes go
to descriptors of the root-owned ``.snapshot`` directory. A ``.snapshot`` that
is not a root-owned directory (a user made one) is left alone and logged.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator.scheduler.controller import Plugin

if TYPE_CHECKING:
    from orchestrator.scheduler.controller import Controller

log = logging.getLogger(__name__)

__all__ = ["SnapshotPlugin", "Snapshotter", "snapshot_home"]

SNAPSHOT_DIR = ".snapshot"
KEEP_HOURLY = 24
KEEP_DAILY = 7
INTERVAL = 3600.0
MAX_FILE = 256 * 1024 * 1024
"""Larger files are left out of snapshots (logged): a snapshot must not fill the shared volume."""

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


@dataclass
class Stats:
    files: int = 0
    linked: int = 0
    copied_bytes: int = 0
    skipped: int = 0


def names_for(now: float) -> tuple[str, str]:
    """The hourly and daily snapshot names for a moment (local time, as users read them)."""
    t = time.localtime(now)
    return time.strftime("hourly.%Y-%m-%d_%H00", t), time.strftime("daily.%Y-%m-%d", t)


def _open_snapshot_dir(home_fd: int, home: str) -> int | None:
    """The root-owned ``.snapshot`` of a home, made if missing; None if a user owns that name."""
    try:
        os.mkdir(SNAPSHOT_DIR, 0o755, dir_fd=home_fd)
        made = True
    except FileExistsError:
        made = False
    try:
        fd = os.open(SNAPSHOT_DIR, _DIR_FLAGS, dir_fd=home_fd)
    except OSError:
        log.warning("snapshots: %s/%s is not a directory; not taking snapshots there", home, SNAPSHOT_DIR)
        return None
    st = os.fstat(fd)
    if made and st.st_uid == os.getuid():
        os.fchmod(fd, 0o755)
    if st.st_uid != 0 and os.getuid() == 0:
        log.warning("snapshots: %s/%s belongs to uid %d, not root; not taking snapshots there",
                    home, SNAPSHOT_DIR, st.st_uid)
        os.close(fd)
        return None
    return fd


def _read_only(mode: int, is_dir: bool) -> int:
    return 0o555 if is_dir else (0o444 | (mode & 0o111 and 0o555))


def _copy_tree(src_fd: int, dst_fd: int, prev_fd: int | None, stats: Stats, top: bool) -> None:
    """Copy the directory open at src_fd into the (root-owned, empty) one at dst_fd."""
    with os.scandir(src_fd) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        name = entry.name
        if top and name == SNAPSHOT_DIR:
            continue
        try:
            st = os.stat(name, dir_fd=src_fd, follow_symlinks=False)
        except OSError:
            stats.skipped += 1
            continue
        try:
            if stat.S_ISDIR(st.st_mode):
                sub = os.open(name, _DIR_FLAGS, dir_fd=src_fd)
                try:
                    os.mkdir(name, 0o700, dir_fd=dst_fd)
                    new = os.open(name, _DIR_FLAGS, dir_fd=dst_fd)
                    prev_sub = _open_opt(name, prev_fd)
                    try:
                        _copy_tree(sub, new, prev_sub, stats, False)
                        os.utime(new, ns=(st.st_atime_ns, st.st_mtime_ns))
                        os.fchmod(new, _read_only(st.st_mode, True))
                    finally:
                        os.close(new)
                        if prev_sub is not None:
                            os.close(prev_sub)
                finally:
                    os.close(sub)
            elif stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(name, dir_fd=src_fd), name, dir_fd=dst_fd)
                stats.files += 1
            elif stat.S_ISREG(st.st_mode):
                if st.st_size > MAX_FILE:
                    stats.skipped += 1
                    continue
                if prev_fd is not None and _same_as_prev(name, st, prev_fd):
                    os.link(name, name, src_dir_fd=prev_fd, dst_dir_fd=dst_fd, follow_symlinks=False)
                    stats.linked += 1
                else:
                    _copy_file(name, src_fd, dst_fd, st)
                    stats.copied_bytes += st.st_size
                stats.files += 1
            else:
                stats.skipped += 1  # sockets, fifos, devices: not data
        except OSError as exc:
            log.debug("snapshots: skipping %s: %s", name, exc)
            stats.skipped += 1


def _open_opt(name: str, parent: int | None) -> int | None:
    if parent is None:
        return None
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent)
    except OSError:
        return None


def _same_as_prev(name: str, st: os.stat_result, prev_fd: int) -> bool:
    try:
        p = os.stat(name, dir_fd=prev_fd, follow_symlinks=False)
    except OSError:
        return False
    return stat.S_ISREG(p.st_mode) and p.st_size == st.st_size and p.st_mtime_ns == st.st_mtime_ns and \
        bool(p.st_mode & 0o111) == bool(st.st_mode & 0o111) and p.st_uid == 0


def _copy_file(name: str, src_fd: int, dst_fd: int, st: os.stat_result) -> None:
    fin = os.open(name, _FILE_FLAGS, dir_fd=src_fd)
    try:
        if not stat.S_ISREG(os.fstat(fin).st_mode):
            raise OSError(f"{name} changed type while being copied")
        fout = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                       dir_fd=dst_fd)
        try:
            while True:
                chunk = os.read(fin, 1 << 20)
                if not chunk:
                    break
                os.write(fout, chunk)
            os.utime(fout, ns=(st.st_atime_ns, st.st_mtime_ns))
            os.fchmod(fout, _read_only(st.st_mode, False))
        finally:
            os.close(fout)
    finally:
        os.close(fin)


def _latest(snap_fd: int, prefix: str) -> str | None:
    names = sorted(n for n in os.listdir(snap_fd) if n.startswith(prefix))
    return names[-1] if names else None


def snapshot_home(home: str, now: float | None = None, keep_hourly: int = KEEP_HOURLY,
                  keep_daily: int = KEEP_DAILY) -> Stats | None:
    """Take this hour's snapshot of one home (replacing one taken earlier in the same hour); prune old ones."""
    now = time.time() if now is None else now
    hourly, daily = names_for(now)
    try:
        home_fd = os.open(home, _DIR_FLAGS)
    except OSError:
        return None
    try:
        snap_fd = _open_snapshot_dir(home_fd, home)
        if snap_fd is None:
            return None
        try:
            return _take(home_fd, snap_fd, hourly, daily, keep_hourly, keep_daily)
        finally:
            os.close(snap_fd)
    finally:
        os.close(home_fd)


def _take(home_fd: int, snap_fd: int, hourly: str, daily: str, keep_hourly: int, keep_daily: int) -> Stats:
    stats = Stats()
    tmp = f".tmp-{hourly}"
    shutil.rmtree(tmp, dir_fd=snap_fd, ignore_errors=True)
    prev_name = _latest(snap_fd, "hourly.")
    os.mkdir(tmp, 0o700, dir_fd=snap_fd)
    tmp_fd = os.open(tmp, _DIR_FLAGS, dir_fd=snap_fd)
    prev_fd = _open_opt(prev_name, snap_fd) if prev_name else None
    try:
        _copy_tree(home_fd, tmp_fd, prev_fd, stats, True)
        os.fchmod(tmp_fd, 0o555)
    finally:
        os.close(tmp_fd)
        if prev_fd is not None:
            os.close(prev_fd)
    if hourly in os.listdir(snap_fd):
        shutil.rmtree(hourly, dir_fd=snap_fd)
    os.rename(tmp, hourly, src_dir_fd=snap_fd, dst_dir_fd=snap_fd)
    if daily not in os.listdir(snap_fd):
        _link_copy(snap_fd, hourly, daily)
    for prefix, keep in (("hourly.", keep_hourly), ("daily.", keep_daily)):
        old = sorted(n for n in os.listdir(snap_fd) if n.startswith(prefix))[:-keep or None]
        for name in old:
            shutil.rmtree(name, dir_fd=snap_fd, ignore_errors=True)
    return stats


def _link_copy(snap_fd: int, src: str, dst: str) -> None:
    """A daily snapshot: the same read-only files as the hourly one, in its own directory tree."""
    s = os.open(src, _DIR_FLAGS, dir_fd=snap_fd)
    tmp = f".tmp-{dst}"
    shutil.rmtree(tmp, dir_fd=snap_fd, ignore_errors=True)
    os.mkdir(tmp, 0o700, dir_fd=snap_fd)
    d = os.open(tmp, _DIR_FLAGS, dir_fd=snap_fd)
    try:
        _copy_tree(s, d, s, Stats(), False)
        os.fchmod(d, 0o555)
    finally:
        os.close(s)
        os.close(d)
    os.rename(tmp, dst, src_dir_fd=snap_fd, dst_dir_fd=snap_fd)


class Snapshotter:
    """Snapshots every configured home once per interval, from a background thread."""

    def __init__(self, homes: list[str], interval: float = INTERVAL) -> None:
        self.homes = homes
        self.interval = interval
        self.passes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="home-snapshots", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def run_once(self, now: float | None = None) -> None:
        for home in self.homes:
            try:
                stats = snapshot_home(home, now)
            except Exception:
                log.exception("snapshot of %s failed", home)
                continue
            if stats is not None:
                log.info("snapshot of %s: %d files (%d unchanged, %d bytes copied, %d skipped)", home,
                         stats.files, stats.linked, stats.copied_bytes, stats.skipped)
        self.passes += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            t0 = time.time()
            self.run_once()
            self._stop.wait(max(60.0, self.interval - (time.time() - t0)) if self.interval >= 60
                            else max(1.0, self.interval))


class SnapshotPlugin(Plugin):
    """Runs the snapshotter in the controller that keeps the ledger (one per service), when root."""

    def __init__(self, ctl: Controller) -> None:
        self.snapshotter: Snapshotter | None = None
        configured = os.environ.get("MINIHPC_SNAPSHOT_INTERVAL")
        if configured is None and _local_mode():
            return  # local mode runs on a real host: never write into its users' homes unless asked
        interval = float(configured or INTERVAL)
        home_root = os.environ.get("MINIHPC_HOME_ROOT", "/home")
        first = ctl.config.clusters[0].name if ctl.config.clusters else ctl.cluster.name
        if interval <= 0 or ctl.cluster.name != first or os.getuid() != 0:
            return
        homes = [os.path.join(home_root, u.name) for u in ctl.config.users]
        self.snapshotter = Snapshotter(homes, interval)
        self.snapshotter.start()


def _local_mode() -> bool:
    try:
        from orchestrator.scheduler.client import load_client_config

        return bool(load_client_config().data.get("local"))
    except Exception:
        return False
