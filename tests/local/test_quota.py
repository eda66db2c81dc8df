"""Storage quotas on a running local service: myquota follows writes, sbatch refuses over quota, --warn."""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from arc_cluster import SCAN_INTERVAL, arc_service

PROFILE_D = Path(__file__).resolve().parents[2] / "images" / "common" / "etc" / "profile.d"


@pytest.fixture(scope="module")
def arc(local: Any) -> Iterator[Any]:
    with arc_service(local) as svc:
        yield svc


def write_as(user: str, path: Path, mib: int) -> None:
    with open(path, "wb") as f:
        f.write(os.urandom(mib * 1024 * 1024))
        f.flush()
        os.fsync(f.fileno())
    pw = pwd.getpwnam(user)
    os.chown(path, pw.pw_uid, pw.pw_gid)


def myquota(arc: Any, user: str, *args: str) -> str:
    r = arc.run(["myquota", *args], user=user)
    assert r.returncode == 0, r.stderr
    return str(r.stdout)


def row(text: str, label: str) -> list[str]:
    return next(line.split() for line in text.splitlines() if line.startswith(label))


def wait_for(check: Any, timeout: float = SCAN_INTERVAL * 3 + 5) -> None:
    deadline = time.time() + timeout
    while not check():
        assert time.time() < deadline, "not seen in time"
        time.sleep(0.2)


def test_myquota_lists_home_and_each_project(arc):
    text = myquota(arc, "mhbob")
    lines = text.splitlines()
    assert lines[0].startswith("Storage quotas for mhbob (measured ")
    assert lines[1].split() == ["Area", "Path", "Used", "Quota", "Use%", "Files"]
    home, data_b, data_a = row(text, "$HOME"), row(text, "$DATA (proj-b)"), row(text, "$DATA (proj-a)")
    assert (home[1], home[3]) == (str(arc.home / "mhbob"), "2.0M")
    assert (data_b[2], data_b[4]) == (str(arc.data / "proj-b"), "5.0T")
    assert (data_a[2], data_a[4]) == (str(arc.data / "proj-a"), "3.0M")
    assert [ln.split()[0] for ln in lines[2:5]] == ["$HOME", "$DATA", "$DATA"]


def test_usage_shows_within_the_scan_interval_and_sbatch_refuses_over_quota(arc):
    big = arc.data / "proj-a" / "mhalice" / "big.bin"
    write_as("mhalice", big, 4)
    try:
        wait_for(lambda: "OVER" in row(myquota(arc, "mhalice"), "$DATA (proj-a)"))
        cells = row(myquota(arc, "mhalice"), "$DATA (proj-a)")
        assert cells[3:] == ["4.0M", "3.0M", "133%", "3", "OVER", "QUOTA"]  # files: 2 member dirs + big.bin
        assert "writes still" in myquota(arc, "mhalice")
        warn = myquota(arc, "mhalice", "--warn")
        assert warn.startswith(f"WARNING: $DATA (proj-a) {arc.data / 'proj-a'} is over its quota: ")
        wd = arc.workdir("mhalice")
        (wd / "job.sh").write_text("#!/bin/bash\ntrue\n")
        r = arc.run(["sbatch", str(wd / "job.sh")], user="mhalice", cwd=wd)
        assert r.returncode == 1
        assert r.stderr.startswith("sbatch: error: Batch job submission failed: Disk quota exceeded: "
                                   f"$DATA (proj-a) {arc.data / 'proj-a'} uses 4.")
        assert "of its 3.0M quota" in r.stderr
        assert r.stdout == ""
        # a member's other project is not blocked
        r = arc.run(["sbatch", "-A", "proj-b", "--parsable", str(wd / "job.sh")], user="mhbob", cwd=wd)
        assert r.returncode == 0, r.stderr
        arc.wait(int(r.stdout.strip()))
    finally:
        big.unlink()
    wait_for(lambda: "OVER QUOTA" not in myquota(arc, "mhalice"))
    assert myquota(arc, "mhalice", "--warn") == ""
    job = arc.submit("#!/bin/bash\ntrue\n", user="mhalice")
    assert arc.wait(job)["state"] == "COMPLETED"


def test_home_over_quota_refuses_every_project_and_snapshots_do_not_count(arc):
    small, big = arc.home / "mhbob" / "small.bin", arc.home / "mhbob" / "big.bin"
    write_as("mhbob", small, 1)
    snap = arc.home / "mhbob" / ".snapshot"
    wait_for(lambda: any((d / "small.bin").exists() for d in snap.glob("hourly.*")))
    time.sleep(SCAN_INTERVAL + 1)
    assert "OVER" not in row(myquota(arc, "mhbob"), "$HOME")  # 1M live + 1M snapshot, quota 2M
    write_as("mhbob", big, 2)
    try:
        wait_for(lambda: "OVER" in row(myquota(arc, "mhbob"), "$HOME"))
        wd = arc.workdir("mhbob")
        (wd / "job.sh").write_text("#!/bin/bash\ntrue\n")
        for acct in ("proj-a", "proj-b"):
            r = arc.run(["sbatch", "-A", acct, str(wd / "job.sh")], user="mhbob", cwd=wd)
            assert r.returncode == 1
            assert f"Disk quota exceeded: $HOME {arc.home / 'mhbob'} uses 3." in r.stderr
    finally:
        big.unlink()
        small.unlink()


def test_home_snapshots_are_readable_copies_users_cannot_change(arc):
    notes = arc.home / "mhalice" / "notes.txt"
    notes.write_text("version 1\n")
    os.chown(notes, pwd.getpwnam("mhalice").pw_uid, -1)
    snap = arc.home / "mhalice" / ".snapshot"
    wait_for(lambda: any((d / "notes.txt").exists() for d in snap.glob("hourly.*")))
    hourly = next(d for d in sorted(snap.glob("hourly.*")) if (d / "notes.txt").exists())
    assert any(p.name.startswith("daily.") for p in snap.iterdir())
    r = arc.run(f"cat {hourly}/notes.txt", user="mhalice")
    assert r.stdout == "version 1\n", r.stderr
    for attempt in (f"echo changed > {hourly}/notes.txt", f"rm -f {hourly}/notes.txt", f"rm -rf {hourly}",
                    f"touch {hourly}/new", f"chmod u+w {hourly}/notes.txt", f"rm -rf {snap}"):
        r = arc.run(attempt, user="mhalice")
        assert r.returncode != 0, attempt
    assert (hourly / "notes.txt").read_text() == "version 1\n"
    notes.unlink()


def test_users_see_only_their_own_areas(arc):
    r = arc.run(["myquota", "-u", "mhbob"], user="mhalice")
    assert r.returncode == 1
    assert "only administrators" in r.stderr
    text = myquota(arc, "mhalice")
    assert "proj-b" not in text and "mhbob" not in text


def login(arc: Any, user: str, interactive: bool) -> subprocess.CompletedProcess[str]:
    """A login shell of ``user`` with the image's /etc/profile.d and a login node's limits file.

    A private mount namespace puts them over the host's /etc/profile.d and
    /etc/security/limits.d, so the host's own /etc/profile runs them as it would in
    the image. Interactive: ``bash -l`` on a terminal, as sshd gives; otherwise
    ``bash -l -c true`` with no terminal, as ``ssh host cmd`` and scp give.
    """
    if os.getuid() != 0 or not all(shutil.which(c) for c in ("unshare", "script", "runuser")):
        pytest.skip("needs root, unshare, script and runuser")
    tmp = Path(tempfile.mkdtemp(dir=arc.base))
    os.chmod(tmp, 0o755)
    pd, ld = tmp / "profile.d", tmp / "limits.d"
    pd.mkdir(mode=0o755)
    ld.mkdir(mode=0o755)
    for f in [*Path("/etc/profile.d").glob("*.sh"), *PROFILE_D.glob("*.sh")]:
        shutil.copy(f, pd / f.name)
    # the image has the commands in /usr/local/bin, on /etc/profile's PATH; here they are in the service's bin
    (pd / "00-minihpc-local.sh").write_text(f'PATH="{arc.cluster.bin}:$PATH"\n')
    (ld / "minihpc-login.conf").write_text("* hard cpu 60\n")
    for f in pd.iterdir():
        os.chmod(f, 0o644)
    shell = f"runuser -u {user} -w MINIHPC_CONF,MINIHPC_MUNGE_SOCKET -- bash -l"
    run = f"script -qec {shlex.quote(shell)} /dev/null" if interactive else f"{shell} -c true"
    setup = (f"mount --make-rprivate / && mount --bind {pd} /etc/profile.d && "
             f"mount --bind {ld} /etc/security/limits.d && exec {run}")
    return subprocess.run(["unshare", "-m", "sh", "-c", setup], input="exit\n", capture_output=True, text=True,
                          timeout=60, cwd=str(arc.base / "work"), env={**os.environ, **arc.cluster.env()})


def test_login_banner_warns_in_interactive_login_shells_only(arc):
    quiet = login(arc, "mhalice", interactive=True)
    assert quiet.returncode == 0, quiet.stderr
    assert "quota" not in quiet.stdout  # under quota: nothing
    big = arc.data / "proj-a" / "mhalice" / "banner.bin"
    write_as("mhalice", big, 4)
    try:
        wait_for(lambda: "OVER" in row(myquota(arc, "mhalice"), "$DATA (proj-a)"))
        r = login(arc, "mhalice", interactive=True)
        assert r.returncode == 0, r.stderr
        text = r.stdout.replace("\r", "")
        assert (f"WARNING: $DATA (proj-a) {arc.data / 'proj-a'} is over its quota: 4.0M used of 3.0M. "
                "New proj-a jobs are refused until you free space; writes are not blocked, as these volumes "
                "cannot enforce quotas (run myquota).\n") in text, text
        r = login(arc, "mhbob", interactive=True)  # a member of proj-a too
        assert "WARNING: $DATA (proj-a) " in r.stdout, r.stdout
        r = login(arc, "mhalice", interactive=False)  # ssh host cmd, scp: their output must stay clean
        assert r.returncode == 0, r.stderr
        assert (r.stdout, r.stderr) == ("", "")
    finally:
        big.unlink()
