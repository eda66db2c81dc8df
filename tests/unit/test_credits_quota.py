"""Storage quotas without daemons: measuring an area, the submit refusal, myquota's format and warnings."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cluster.config import Config, parse
from orchestrator.commands.myquota import flag, format_quota, format_warnings
from orchestrator.scheduler.controller import Controller
from orchestrator.scheduler.errors import SlurmError
from orchestrator.scheduler.job import Job
from orchestrator.scheduler.server import Request
from orchestrator.services.quota import Area, QuotaPlugin, Scanner, areas_for, measure

pytestmark = pytest.mark.unit


def write(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(os.urandom(size))
        f.flush()
        os.fsync(f.fileno())


def test_measure_counts_blocks_and_files_once(tmp_path):
    area = tmp_path / "home"
    write(area / "a.bin", 300 * 1024)
    write(area / "sub" / "b.bin", 100 * 1024)
    os.link(area / "a.bin", area / "sub" / "a-link.bin")  # a hard link is not more data
    os.symlink("/usr", area / "usr-link")  # never followed
    write(area / ".snapshot" / "hourly.0" / "a.bin", 300 * 1024)  # snapshots don't count
    u = measure(str(area), skip_top=(".snapshot",))
    assert 400 * 1024 <= u.used < 500 * 1024
    assert u.files == 5  # a.bin, sub, b.bin, a-link.bin, usr-link
    assert u.error == ""
    with_snap = measure(str(area))
    assert with_snap.used >= u.used + 300 * 1024


def test_measure_of_a_missing_area_is_empty(tmp_path):
    u = measure(str(tmp_path / "nope"))
    assert (u.used, u.files, u.error) == (0, 0, "")


def test_scanner_sees_new_files_on_its_next_pass(tmp_path):
    area = Area("data", "p", str(tmp_path / "p"), 10 * 1024**2)
    s = Scanner([area], interval=3600)
    s.scan_once()
    assert s.get("data:p").used == 0
    write(tmp_path / "p" / "x", 2 * 1024**2)
    assert s.get("data:p").used == 0  # reads never scan
    s.scan_once()
    assert s.get("data:p").used >= 2 * 1024**2


def cfg() -> Config:
    return parse({
        "apiVersion": "minihpc/v1", "kind": "Cluster", "site": {"home_quota": "1M"},
        "projects": [{"name": "proj-a", "gid": 30001, "data_quota": "2M"},
                     {"name": "proj-b", "gid": 30002, "data_quota": "5T"}],
        "users": [{"name": "alice", "uid": 31001, "projects": ["proj-a", "proj-b"]}],
        "clusters": [{"name": "c1", "login": {"ssh_port": 2222},
                      "nodes": [{"names": "n1", "cpus": 4, "memory": "2G"}],
                      "partitions": [{"name": "short", "default": True}]}],
    })


def test_areas_come_from_the_config(tmp_path):
    areas = areas_for(cfg(), "/home", "/data")
    assert [(a.label, a.path, a.quota) for a in areas] == [
        ("$HOME", "/home/alice", 1024**2), ("$DATA (proj-a)", "/data/proj-a", 2 * 1024**2),
        ("$DATA (proj-b)", "/data/proj-b", 5 * 1024**4)]


def _plugin(tmp_path: Path) -> QuotaPlugin:
    config = cfg()
    ctl = Controller(config, config.cluster("c1"), tmp_path / "state", ("127.0.0.1", 0))
    plugin = QuotaPlugin(ctl, str(tmp_path / "home"), str(tmp_path / "data"), interval=3600)
    plugin.scanner.stop()
    return plugin


def _job(**kw: Any) -> Job:
    base: dict[str, Any] = dict(job_id=0, cluster="c1", name="j", uid=31001, gid=30001, user="alice",
                                group="proj-a", account="proj-a", partition="short")
    base.update(kw)
    return Job(**base)


def test_submit_is_refused_over_quota_naming_area_usage_and_quota(tmp_path):
    plugin = _plugin(tmp_path)
    plugin.scanner.scan_once()
    plugin.on_submit(_job())  # empty areas: accepted
    write(tmp_path / "data" / "proj-a" / "alice" / "big", 3 * 1024**2)
    plugin.on_submit(_job())  # not measured yet: accepted
    plugin.scanner.scan_once()
    with pytest.raises(SlurmError) as exc:
        plugin.on_submit(_job())
    msg = exc.value.message
    assert msg.startswith("Disk quota exceeded: $DATA (proj-a) ")
    assert f"{tmp_path}/data/proj-a uses 3.0M of its 2.0M quota" in msg
    plugin.on_submit(_job(account="proj-b"))  # another project's jobs still run
    write(tmp_path / "home" / "alice" / "f", 2 * 1024**2)
    plugin.scanner.scan_once()
    with pytest.raises(SlurmError, match=r"\$HOME .*/home/alice uses 2\.0M of its 1\.0M quota"):
        plugin.on_submit(_job(account="proj-b"))


def test_quota_op_lists_home_and_each_project(tmp_path):
    plugin = _plugin(tmp_path)
    write(tmp_path / "data" / "proj-a" / "alice" / "big", 3 * 1024**2)
    plugin.scanner.scan_once()
    req = Request("quota", 0, 0, {"user": "alice"}, "test", None, None)  # type: ignore[arg-type]
    reply = asyncio.run(plugin.op_quota(req))
    assert [a["area"] for a in reply["areas"]] == ["$HOME", "$DATA (proj-a)", "$DATA (proj-b)"]
    text = format_quota(reply)
    lines = text.splitlines()
    assert lines[0].startswith("Storage quotas for alice (measured 0 seconds ago; usage is refreshed every 3600")
    assert lines[1].split() == ["Area", "Path", "Used", "Quota", "Use%", "Files"]
    row = next(ln for ln in lines if ln.startswith("$DATA (proj-a)"))
    assert row.split()[-6:] == ["3.0M", "2.0M", "150%", "2", "OVER", "QUOTA"]
    assert "writes still" in text and "refused" in text
    warn = format_warnings(reply)
    assert warn == (f"WARNING: $DATA (proj-a) {tmp_path}/data/proj-a is over its quota: 3.0M used of 2.0M. "
                    "New proj-a jobs are refused until you free space; writes are not blocked, as these volumes "
                    "cannot enforce quotas (run myquota).\n")


def test_flags_and_quiet_warnings():
    ok = {"area": "$HOME", "path": "/home/a", "used": 10, "quota": 100, "files": 1, "scanned": 1.0}
    near = dict(ok, used=95)
    assert flag(ok) == "" and flag(near) == "near quota"
    assert format_warnings({"areas": [ok]}) == ""
    assert format_warnings({"areas": [near]}) == ("Note: $HOME /home/a is at 95% of its quota (95 of 100). "
                                                  "New jobs are refused once it is over.\n")
