"""The running service as an admin sees it (testinfra over docker://) and as alice does (fabric, ssh).

Issue 2: packages, identical users and uids on every node, mounts and permissions, sshd and
munged running, tini as PID 1, no privileged containers; alice's id, $HOME, $DATA, bob's
home refused, a munge credential from the login node decoded on a compute node.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator

import pytest
import testinfra
from clusterlib import ClusterUnderTest, expected_plan
from fabric import Connection
from invoke.watchers import Responder

from orchestrator.cluster.keys import read_password
from orchestrator.cluster.plan import NodePlan

PLAN = expected_plan()
NODES = list(PLAN.nodes)
LOGINS = [n for n in NODES if n.role == "login"]
COMPUTES = [n for n in NODES if n.role == "compute"]
PACKAGES = ["openssh-server", "munge", "python3", "python3-yaml", "lmod", "openmpi-bin", "gcc", "gfortran",
            "tini", "procps", "r-base-core", "libscalapack-openmpi-dev"]
ids = [n.name for n in NODES]


def _host(node: NodePlan) -> testinfra.host.Host:
    return testinfra.get_host(f"docker://{node.name}")


@pytest.fixture(params=NODES, ids=ids)
def node(request: pytest.FixtureRequest) -> NodePlan:
    return request.param  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------- admin view (testinfra)


def test_packages_installed(node: NodePlan) -> None:
    host = _host(node)
    assert host.package("openssh-server").is_installed and host.package("munge").is_installed
    out = host.check_output("dpkg-query -W -f '${Package} ${db:Status-Status}\\n' " + " ".join(PACKAGES))
    installed = {line.split()[0] for line in out.splitlines() if line.endswith(" installed")}
    assert not set(PACKAGES) - installed


def test_same_users_uids_and_groups_everywhere(node: NodePlan, cluster: ClusterUnderTest) -> None:
    host = _host(node)
    assert host.user("alice").uid == cluster.config.user("alice").uid
    gids = {p.name: p.gid for p in cluster.config.projects}
    users = [u.name for u in cluster.config.users]
    script = "; ".join(f"getent passwd {u}; id -Gn {u}" for u in users)
    lines = host.check_output(script).splitlines()
    for u, (pw, groups) in zip(cluster.config.users, zip(lines[::2], lines[1::2], strict=True), strict=True):
        name, _, uid, gid, _, home, shell = pw.split(":")
        assert (name, int(uid), int(gid), home, shell) == (u.name, u.uid, gids[u.default_project],
                                                           f"/home/{u.name}", "/bin/bash")
        assert set(u.projects) <= set(groups.split())
    out = host.check_output("getent group " + " ".join(gids))
    assert {line.split(":")[0]: int(line.split(":")[2]) for line in out.splitlines()} == gids


def _stat(host: testinfra.host.Host, paths: list[str]) -> dict[str, tuple[str, str, int]]:
    """path -> (owner, group, mode) with one command (each docker exec costs ~0.2 s)."""
    out = host.check_output("stat -c '%n %U %G %a' " + " ".join(paths))
    result = {}
    for line in out.splitlines():
        name, user, group, mode = line.split()
        result[name] = (user, group, int(mode, 8))
    return result


def test_shared_mounts_and_permissions(node: NodePlan, cluster: ClusterUnderTest) -> None:
    host = _host(node)
    mounts = {m.split()[1]: m.split() for m in host.file("/proc/mounts").content_string.splitlines()}
    for path in ("/home", "/data", "/scratch", "/etc/minihpc"):
        assert path in mounts, f"{path} is not a mount point"
    assert "ro" in mounts["/etc/minihpc"][3].split(",")
    if node.role == "compute":
        assert mounts["/tmp"][2] == "tmpfs", "compute nodes have a node-local /tmp"
    config = cluster.config
    homes = [f"/home/{u.name}" for u in config.users]
    user_data = [f"/data/{p}/{u.name}" for u in config.users for p in u.projects]
    projects = [f"/data/{p.name}" for p in config.projects]
    st = _stat(host, [*homes, *user_data, *projects, "/scratch"])
    for u in config.users:
        assert st[f"/home/{u.name}"] == (u.name, u.default_project, 0o700)
        for p in u.projects:
            owner, group, _ = st[f"/data/{p}/{u.name}"]
            assert (owner, group) == (u.name, p)
    for p in config.projects:
        assert st[f"/data/{p.name}"] == ("root", p.name, 0o2770), "project dirs are group-owned and setgid"
    assert st["/scratch"][2] == 0o1777


def test_services_running(node: NodePlan) -> None:
    host = _host(node)
    assert host.process.get(pid=1).comm == "tini"
    assert host.process.filter(comm="munged"), "munged must run on every node"
    if node.role in ("login", "compute"):
        assert host.process.filter(comm="sshd")
        assert host.socket("tcp://0.0.0.0:22").is_listening
    key = host.file("/etc/munge/munge.key")
    assert key.user == "munge" and key.mode == 0o400


def test_client_view_and_config_in_place(node: NodePlan, cluster: ClusterUnderTest) -> None:
    host = _host(node)
    view = json.loads(host.file("/etc/minihpc/slurm.json").content_string)
    assert view["cluster"] == node.cluster
    assert set(view["clusters"]) == {c.name for c in cluster.config.clusters}
    assert host.file("/etc/minihpc/cluster.yaml").contains("apiVersion: minihpc/v1")
    assert host.run("runuser -u alice -- cat /etc/minihpc/secrets/munge.key").rc != 0, "users must not read secrets"
    for name in ("sbatch", "squeue", "sinfo", "srun", "mybalance"):
        assert host.file(f"/usr/local/bin/{name}").linked_to == "/run/minihpc/bin/slurm-command"


def test_fuse_friendly_root_and_commands_from_memory(node: NodePlan) -> None:
    """On fuse-overlayfs each permission check a user makes on a group-readable file is a round trip
    (minihpc-tune-rootfs): / and /usr carry no group bits, and the commands run from a tmpfs
    (build-command-cache): the launcher, the byte code this image runs and the extension modules they load."""
    host = _host(node)
    assert host.file("/").mode == 0o705 and host.file("/usr/lib/python3.11").mode == 0o705
    assert "C.utf8" in host.check_output("localedef --list-archive")
    assert host.mount_point("/run/minihpc").filesystem == "tmpfs"
    launcher = "/run/minihpc/bin/slurm-command"
    assert host.file(launcher).content_string == host.file("/opt/minihpc/bin/slurm-command").content_string
    where = host.check_output(
        "runuser -u alice -- python3 -IS -c 'import os, sys; sys.argv = [\"squeue\", \"--version\"]; os._exit = print; "
        f"exec(compile(open(\"{launcher}\").read(), \"{launcher}\", \"exec\"), {{\"__name__\": \"__main__\"}}); "
        "print(sys.modules[\"orchestrator.commands.squeue\"].__file__); print(__import__(\"_json\").__file__); "
        "print(sys.path[-1])'")
    squeue, json_ext, last = where.splitlines()[-3:]
    assert squeue == "/run/minihpc/py/orchestrator/commands/squeue.pyc", where
    # the extension modules from memory too, and the code on disk searched only last
    assert json_ext.startswith("/run/minihpc/lib-dynload/_json."), where
    assert last == "/opt/minihpc", where


def test_no_privileged_containers_and_labels() -> None:
    import docker

    client = docker.from_env()
    for n in NODES:
        c = client.containers.get(n.name)
        assert c.attrs["HostConfig"]["Privileged"] is False
        assert c.labels["minihpc.cluster"] == n.cluster and c.labels["minihpc.role"] == n.role
        assert c.attrs["Config"]["Hostname"] == n.name
        for bindings in (c.attrs["HostConfig"].get("PortBindings") or {}).values():
            assert all(b["HostIp"] == "127.0.0.1" for b in bindings), "publish only on loopback"


def test_no_secret_in_the_image() -> None:
    """munge and ssh host keys come from `up` at start; the image itself has none."""
    import docker

    client = docker.from_env()
    tag = client.containers.get(PLAN.nodes[0].name).image.tags[0]
    out = client.containers.run(tag, ["sh", "-c", "ls /etc/munge /etc/ssh"], entrypoint=[], remove=True).decode()
    assert "munge.key" not in out and "ssh_host_" not in out, f"keys baked into {tag}: {out}"


def test_logins_reach_every_controller() -> None:
    controllers = [n.name for n in NODES if n.role == "controller"]
    for login in LOGINS:
        host = _host(login)
        for ctl in controllers:
            assert host.run(f"getent hosts {ctl}").rc == 0, f"{login.name} cannot resolve {ctl}"


# ----------------------------------------------------------------------------- user view (fabric over ssh)


@pytest.fixture(scope="module")
def alice(cluster: ClusterUnderTest) -> Iterator[Connection]:
    c = cluster.config.clusters[0]
    conn = Connection("localhost", user="alice", port=c.ssh_port,
                      connect_kwargs={"key_filename": str(cluster.key("alice")), "look_for_keys": False,
                                      "allow_agent": False})
    yield conn
    conn.close()


def test_alice_id_home_and_data(alice: Connection, cluster: ClusterUnderTest) -> None:
    u = cluster.config.user("alice")
    r = alice.run("id -u; id -gn; id -Gn; hostname; echo $HOME; echo $DATA", hide=True, in_stream=False)
    uid, group, groups, hostname, home, data = r.stdout.split("\n")[:6]
    assert int(uid) == u.uid
    assert group == u.default_project and set(u.projects) <= set(groups.split())
    assert hostname == cluster.config.clusters[0].login_hostname
    assert home == "/home/alice"
    assert data == f"/data/{u.default_project}/alice"


def test_alice_writes_to_data_and_scratch(alice: Connection) -> None:
    token = secrets.token_hex(8)
    r = alice.run(f"echo {token} > $DATA/bringup-test && cat $DATA/bringup-test && stat -c %G $DATA/bringup-test "
                  f"&& echo {token} > /scratch/bringup-alice && rm $DATA/bringup-test /scratch/bringup-alice",
                  hide=True, in_stream=False)
    out = r.stdout.split()
    assert out[0] == token
    assert out[1] == "chem-proj", "files in $DATA belong to the project group (setgid)"


def test_alice_cannot_read_bobs_home(alice: Connection) -> None:
    r = alice.run("ls /home/bob", hide=True, warn=True, in_stream=False)
    assert r.exited != 0 and "Permission denied" in r.stderr


def test_munge_round_trip_to_a_compute_node(alice: Connection) -> None:
    compute = next(n.name for n in COMPUTES if n.cluster == LOGINS[0].cluster)
    r = alice.run(f"munge -n | ssh -o BatchMode=yes {compute} unmunge", hide=True, warn=True, in_stream=False)
    assert r.exited == 0, r.stderr
    assert "STATUS:          Success (0)" in r.stdout
    assert "UID:             alice (10001)" in r.stdout


def test_login_cpu_limit(alice: Connection, cluster: ClusterUnderTest) -> None:
    r = alice.run("ulimit -t", hide=True, in_stream=False)
    assert int(r.stdout) == max(60, -(-cluster.config.site.login_cpu_limit // 60) * 60)


def test_password_login_is_off(cluster: ClusterUnderTest) -> None:
    c = cluster.config.clusters[0]
    password = read_password(cluster.paths, "alice")
    assert password
    conn = Connection("localhost", user="alice", port=c.ssh_port,
                      connect_kwargs={"password": password, "look_for_keys": False, "allow_agent": False})
    import paramiko

    with pytest.raises(paramiko.AuthenticationException):
        conn.run("true", hide=True, in_stream=False)
    conn.close()


def test_passwd_works_on_the_login_node(alice: Connection, cluster: ClusterUnderTest) -> None:
    old = read_password(cluster.paths, "alice")
    assert old
    login = LOGINS[0].name
    # start from the initial password whatever an earlier run left behind
    subprocess.run(["docker", "exec", "-i", login, "chpasswd"], input=f"alice:{old}\n", text=True, check=True)
    new = "Mh-" + secrets.token_urlsafe(12)

    def change(frm: str, to: str) -> str:
        watchers = [Responder(r"[Cc]urrent password: ?", frm + "\n"),
                    Responder(r"New password: ?", to + "\n"),
                    Responder(r"Retype new password: ?", to + "\n")]
        r = alice.run("passwd", pty=True, watchers=watchers, hide=True, warn=True, in_stream=False)
        return r.stdout

    out = change(old, new)
    assert "password updated successfully" in out, out
    assert "password updated successfully" in change(new, old), "could not change it back"


def test_minihpc_ssh_checks_the_persistent_host_key(cluster: ClusterUnderTest) -> None:
    for c in cluster.config.clusters:
        r = subprocess.run([".venv/bin/minihpc", "ssh", "bob", "--cluster", c.name, "--", "hostname"],
                           capture_output=True, text=True, cwd=cluster.paths.root, timeout=60, check=False)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == c.login_hostname
