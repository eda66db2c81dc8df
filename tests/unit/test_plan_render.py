"""Keys made once and kept; the /etc/minihpc directory rendered for each cluster."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from orchestrator.cluster.config import load
from orchestrator.cluster.keys import ensure_keys, read_password
from orchestrator.cluster.paths import Paths
from orchestrator.cluster.render import client_view, record_controller_addresses, render_all


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_test.pub").write_text("ssh-ed25519 AAAAC3NzaHOSTKEY me@host\n")
    (home / ".ssh" / "notakey.pub").write_text("garbage\n")
    monkeypatch.setenv("HOME", str(home))
    return Paths(tmp_path, tmp_path / ".minihpc")


def test_keys_are_made_once_and_kept(env: Paths) -> None:
    config = load(None)
    keys = ensure_keys(env, config)
    assert len(keys.munge_key.read_bytes()) == 1024
    assert stat.S_IMODE(keys.munge_key.stat().st_mode) == 0o600
    assert set(keys.user_keys) == {"alice", "bob", "carol"}
    alice_pub = Path(f"{keys.user_keys['alice']}.pub").read_text()
    assert alice_pub.startswith("ssh-ed25519 ")
    for host in ("arc-login", "htc-login", "arc-compute", "htc-compute"):
        assert (keys.host_keys[host] / "ssh_host_ed25519_key").exists()
    assert (keys.host_keys["arc-login"] / "ssh_host_rsa_key.pub").exists()
    munge = keys.munge_key.read_bytes()
    pw = read_password(env, "alice")
    assert pw and len(pw) >= 12
    again = ensure_keys(env, config)
    assert again.munge_key.read_bytes() == munge
    assert Path(f"{again.user_keys['alice']}.pub").read_text() == alice_pub
    assert read_password(env, "alice") == pw
    assert read_password(env, "nobody") is None


def test_rendered_cluster_directory(env: Paths) -> None:
    config = load(None)
    keys = ensure_keys(env, config)
    render_all(env, config, "apiVersion: minihpc/v1 # text\n", keys)
    arc = env.run / "arc"
    assert (arc / "cluster.yaml").read_text() == "apiVersion: minihpc/v1 # text\n"
    view = json.loads((arc / "slurm.json").read_text())
    assert view == client_view(config, "arc")
    assert view["cluster"] == "arc"
    assert view["clusters"]["htc"] == {"host": "htc-controller", "port": 6817}
    assert "munge_socket" in view
    passwd = (arc / "accounts" / "passwd").read_text().splitlines()
    assert "alice:x:10001:20001:alice:/home/alice:/bin/bash" in passwd
    group = (arc / "accounts" / "group").read_text().splitlines()
    assert "chem-proj:x:20001:alice,bob" in group
    assert (arc / "accounts" / "users.tsv").read_text().splitlines()[0] == "alice 10001 20001 chem-proj,phys-proj"
    shadow = dict(line.split(":", 2)[:2] for line in (arc / "accounts" / "shadow.login").read_text().splitlines())
    assert shadow["alice"].startswith("$6$"), "login nodes get hashed initial passwords"
    assert (arc / "accounts" / "shadow").read_text().startswith("alice:*:")
    assert stat.S_IMODE((arc / "accounts" / "shadow.login").stat().st_mode) == 0o600
    env_lines = (arc / "node.env").read_text().splitlines()
    assert "MINIHPC_CLUSTER=arc" in env_lines and "MINIHPC_PASSWORD_AUTH=no" in env_lines
    assert "MINIHPC_LOGIN_CPU_MINUTES=60" in env_lines
    auth = (arc / "ssh" / "authorized_keys" / "alice").read_text().splitlines()
    assert auth[0].startswith("ssh-ed25519 ") and "me@host" in auth[1] and len(auth) == 2
    known = (arc / "ssh" / "ssh_known_hosts").read_text()
    assert "arc-c001,arc-c002,arc-c003,arc-c004 ssh-ed25519" in known and "htc-login ssh-ed25519" in known
    assert "SetEnv DATA=/data/chem-proj/alice" in (arc / "ssh" / "sshd_match.conf").read_text()
    secrets = arc / "secrets"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
    assert (secrets / "munge.key").read_bytes() == keys.munge_key.read_bytes()
    assert (secrets / "hostkeys" / "arc-login" / "ssh_host_ed25519_key").exists()
    assert (secrets / "hostkeys" / "compute" / "ssh_host_ed25519_key").exists()
    assert not (secrets / "hostkeys" / "htc-login").exists(), "a cluster gets only its own host keys"
    assert "[localhost]:2222" in env.known_hosts.read_text()


def test_password_auth_switch(env: Paths, tmp_path: Path) -> None:
    fixture = Path(__file__).parent / "fixtures" / "valid-gpu.yaml"
    config = load(fixture)
    render_all(env, config, fixture.read_text(), ensure_keys(env, config))
    lines = (env.run / "gpu" / "node.env").read_text().splitlines()
    assert "MINIHPC_PASSWORD_AUTH=yes" in lines and "MINIHPC_LOGIN_CPU_MINUTES=10" in lines


def test_controller_addresses_recorded_as_each_cluster_reaches_them(env: Paths) -> None:
    """Own controller: its address on the cluster's network; the other cluster's: on the shared one
    (only those two networks reach a controller from a cluster's nodes)."""
    config = load(None)
    render_all(env, config, "apiVersion: minihpc/v1\n", ensure_keys(env, config))
    nets = {"arc-controller": {"minihpc-arc": "10.1.0.3", "minihpc-shared": "10.9.0.2"},
            "htc-controller": {"minihpc-htc": "10.2.0.4", "minihpc-shared": "10.9.0.5"}}
    record_controller_addresses(env, config, nets.__getitem__)
    arc = json.loads((env.run / "arc" / "slurm.json").read_text())
    htc = json.loads((env.run / "htc" / "slurm.json").read_text())
    assert arc["clusters"] == {"arc": {"host": "arc-controller", "addr": "10.1.0.3", "port": 6817},
                               "htc": {"host": "htc-controller", "addr": "10.9.0.5", "port": 6817}}
    assert htc["clusters"]["htc"]["addr"] == "10.2.0.4" and htc["clusters"]["arc"]["addr"] == "10.9.0.2"
    assert arc == client_view(config, "arc", {"arc": "10.1.0.3", "htc": "10.9.0.5"})
    # a controller without an address on that network: the name alone, as before
    record_controller_addresses(env, config, {"arc-controller": {}, "htc-controller": {}}.__getitem__)
    assert json.loads((env.run / "arc" / "slurm.json").read_text()) == client_view(config, "arc")
    assert not list((env.run / "arc").glob(".slurm.json*")), "written atomically, nothing left behind"
