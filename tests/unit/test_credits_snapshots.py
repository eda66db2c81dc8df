"""$HOME snapshots without daemons: real read-only copies, hourly/daily names, pruning, hostile homes."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from orchestrator.services.quota import measure
from orchestrator.services.snapshots import names_for, snapshot_home

pytestmark = [pytest.mark.unit,
              pytest.mark.skipif(os.getuid() != 0, reason="snapshots are taken by root (the controller)")]

UID, GID = 31001, 31001
T0 = time.mktime((2026, 3, 2, 9, 15, 0, 0, 0, -1))


def home(tmp_path: Path) -> Path:
    h = tmp_path / "alice"
    (h / "src").mkdir(parents=True)
    (h / "notes.txt").write_text("first version\n")
    (h / "src" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(h / "src" / "run.sh", 0o700)
    (h / "secret").write_text("mine only\n")
    os.chmod(h / "secret", 0o600)
    os.symlink("/etc/shadow", h / "shadow-link")
    os.mkfifo(h / "pipe")
    for p in [h, *h.rglob("*")]:
        os.lchown(p, UID, GID)
    os.chmod(h, 0o700)
    return h


def test_names_are_hourly_and_daily():
    assert names_for(T0) == ("hourly.2026-03-02_0900", "daily.2026-03-02")


def test_snapshot_is_a_real_read_only_copy(tmp_path):
    h = home(tmp_path)
    stats = snapshot_home(str(h), T0)
    assert stats is not None and stats.files == 4 and stats.skipped == 1  # the fifo is not data
    snap = h / ".snapshot"
    assert sorted(os.listdir(snap)) == ["daily.2026-03-02", "hourly.2026-03-02_0900"]
    s = snap / "hourly.2026-03-02_0900"
    assert (s / "notes.txt").read_text() == "first version\n"
    assert (s / "secret").read_text() == "mine only\n"
    assert os.readlink(s / "shadow-link") == "/etc/shadow"  # the link, never what it points to
    for p in [snap, s, *s.rglob("*")]:
        st = os.lstat(p)
        assert st.st_uid == 0
        if not stat.S_ISLNK(st.st_mode):
            assert st.st_mode & 0o222 == 0 or p == snap, oct(st.st_mode)
    assert os.stat(s / "src" / "run.sh").st_mode & 0o777 == 0o555
    assert os.stat(s / "notes.txt").st_mode & 0o777 == 0o444
    assert os.stat(snap).st_mode & 0o777 == 0o755 and os.stat(snap).st_uid == 0
    # a real copy: changing the live file leaves the snapshot as it was
    (h / "notes.txt").write_text("second version\n")
    assert (s / "notes.txt").read_text() == "first version\n"
    assert os.stat(h / "notes.txt").st_ino != os.stat(s / "notes.txt").st_ino


def test_next_hour_copies_changes_and_links_the_rest(tmp_path):
    h = home(tmp_path)
    snapshot_home(str(h), T0)
    (h / "notes.txt").write_text("second version\n")
    stats = snapshot_home(str(h), T0 + 3600)
    assert stats is not None and stats.linked == 2  # secret and run.sh did not change
    a, b = h / ".snapshot" / "hourly.2026-03-02_0900", h / ".snapshot" / "hourly.2026-03-02_1000"
    assert (a / "notes.txt").read_text() == "first version\n"
    assert (b / "notes.txt").read_text() == "second version\n"
    assert os.stat(a / "secret").st_ino == os.stat(b / "secret").st_ino
    assert sorted(os.listdir(h / ".snapshot")) == ["daily.2026-03-02", "hourly.2026-03-02_0900",
                                                   "hourly.2026-03-02_1000"]
    # the same hour again replaces that hour's snapshot
    (h / "notes.txt").write_text("third version\n")
    snapshot_home(str(h), T0 + 3700)
    assert (b / "notes.txt").read_text() == "third version\n"


def test_old_snapshots_are_pruned(tmp_path):
    h = home(tmp_path)
    for i in range(5):
        snapshot_home(str(h), T0 + i * 86400, keep_hourly=3, keep_daily=2)
    names = sorted(os.listdir(h / ".snapshot"))
    assert names == ["daily.2026-03-05", "daily.2026-03-06", "hourly.2026-03-04_0900", "hourly.2026-03-05_0900",
                     "hourly.2026-03-06_0900"]


def test_snapshots_do_not_count_towards_quota(tmp_path):
    h = home(tmp_path)
    (h / "big").write_bytes(os.urandom(1024 * 1024))
    before = measure(str(h), skip_top=(".snapshot",)).used
    snapshot_home(str(h), T0)
    assert measure(str(h), skip_top=(".snapshot",)).used == before
    assert measure(str(h)).used > before + 1024 * 1024


def test_a_users_own_dot_snapshot_is_left_alone(tmp_path):
    h = home(tmp_path)
    os.symlink("/etc", h / ".snapshot")  # an attempt to make root write into /etc
    os.lchown(h / ".snapshot", UID, GID)
    assert snapshot_home(str(h), T0) is None
    assert not any(n.startswith("hourly.") for n in os.listdir("/etc"))
    os.unlink(h / ".snapshot")
    (h / ".snapshot").mkdir()
    os.chown(h / ".snapshot", UID, GID)
    assert snapshot_home(str(h), T0) is None
    assert os.listdir(h / ".snapshot") == []
