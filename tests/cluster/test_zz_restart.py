"""`make down && make up` keeps $HOME and $DATA, builds nothing, and ssh never warns.

Named to run last among the cluster tests: it recreates every container (volumes stay).
"""

from __future__ import annotations

import secrets
import subprocess
import time

import docker
from clusterlib import ClusterUnderTest


def _minihpc(cluster: ClusterUnderTest, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    argv = [str(cluster.paths.root / ".venv" / "bin" / "minihpc"), *args]
    return subprocess.run(argv, capture_output=True, text=True, cwd=cluster.paths.root, timeout=timeout,
                          check=False)


def _ssh(cluster: ClusterUnderTest, user: str, command: str, cluster_name: str | None = None) -> str:
    name = cluster_name or cluster.config.clusters[0].name
    r = _minihpc(cluster, "ssh", user, "--cluster", name, "--", command, timeout=60)
    assert r.returncode == 0, f"{command!r} as {user}: {r.stderr}"
    return r.stdout


def test_up_on_a_running_cluster_changes_nothing(cluster: ClusterUnderTest) -> None:
    client = docker.from_env()
    before = {c.name: c.id for c in client.containers.list(filters={"label": "minihpc.managed"})}
    t0 = time.monotonic()
    r = _minihpc(cluster, "up", *(["--config", str(cluster.config.source)]
                                  if not cluster.config.source.startswith("default.yaml") else []))
    assert r.returncode == 0, r.stderr
    assert "already running; nothing changed" in r.stdout
    assert time.monotonic() - t0 < 30
    after = {c.name: c.id for c in client.containers.list(filters={"label": "minihpc.managed"})}
    assert after == before


def test_down_up_keeps_files_and_host_keys_and_builds_nothing(cluster: ClusterUnderTest) -> None:
    config_args = [] if cluster.config.source.startswith("default.yaml") else ["--config", cluster.config.source]
    assert _minihpc(cluster, "build").returncode == 0  # the images the next up uses
    token = secrets.token_hex(6)
    _ssh(cluster, "alice", f"echo {token} > ~/persist-{token} && echo {token} > $DATA/persist-{token}")
    r = _minihpc(cluster, "down")
    assert r.returncode == 0, r.stderr
    client = docker.from_env()
    assert not client.containers.list(all=True, filters={"label": "minihpc.managed"})
    assert {v.name for v in client.volumes.list(filters={"label": "minihpc.managed"})} >= {
        "minihpc-home", "minihpc-data", "minihpc-scratch"}
    r = _minihpc(cluster, "up", *config_args)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "built images" not in r.stdout, "a second up must build nothing"
    assert "Ready in" in r.stdout
    # minihpc ssh checks host keys strictly against .minihpc/known_hosts: no warning, no prompt
    out = _ssh(cluster, "alice", f"cat ~/persist-{token} $DATA/persist-{token}; rm ~/persist-{token} $DATA/persist-{token}")
    assert out.split() == [token, token]
