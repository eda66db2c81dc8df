"""The per-cluster directory mounted read-only at /etc/minihpc in every container.

It is regenerated at each ``up`` from the config and the persistent keys. The image's
entrypoint reads it (it knows nothing of YAML), so everything here is plain lines:

- ``cluster.yaml`` (the validated config source) and ``slurm.json`` (the client view);
- ``node.env``: shell variables for the entrypoint;
- ``accounts/``: passwd/group/shadow/gshadow lines and users.tsv/projects.tsv;
- ``ssh/``: authorised keys per user, known hosts, sshd Match blocks;
- ``secrets/`` (0700): munge key, host keys, users' private keys, initial passwords.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from orchestrator.cluster.config import ClusterSpec, Config
from orchestrator.cluster.keys import Keys, host_public_keys
from orchestrator.cluster.paths import Paths
from orchestrator.cluster.plan import SHARED_NETWORK, network_name

log = logging.getLogger(__name__)


def client_view(config: Config, cluster: str, addresses: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What the user commands need to find the controllers (``/etc/minihpc/slurm.json``);
    ``addresses`` are the controllers' IP addresses as this cluster's nodes reach them, by cluster."""
    clusters: dict[str, dict[str, Any]] = {}
    for c in config.clusters:
        entry: dict[str, Any] = {"host": c.controller_hostname, "port": c.controller_port}
        if addresses and addresses.get(c.name):
            entry["addr"] = addresses[c.name]
        clusters[c.name] = entry
    return {"cluster": cluster, "clusters": clusters, "munge_socket": None}


def record_controller_addresses(paths: Paths, config: Config,
                                networks_of: Callable[[str], Mapping[str, str]]) -> None:
    """Rewrite each cluster's slurm.json with the controllers' addresses (``networks_of(container)``
    maps its networks to its addresses): a cluster's own controller on the cluster's network, the
    others' on the shared one. The commands then connect without a name lookup (client.py).

    The file is replaced inside the directory the containers mount, so they see it at once.
    """
    nets = {c.name: networks_of(c.controller_hostname) for c in config.clusters}
    for c in config.clusters:
        addrs = {other.name: nets[other.name].get(network_name(c.name) if other is c else SHARED_NETWORK, "")
                 for other in config.clusters}
        path = paths.run / c.name / "slurm.json"
        tmp = path.with_name(".slurm.json.new")
        _write(tmp, json.dumps(client_view(config, c.name, addrs), indent=2) + "\n")
        os.replace(tmp, path)


def password_hashes(passwords: dict[str, str]) -> dict[str, str]:
    """SHA-512 crypt hashes made on the host, so login nodes need not run chpasswd at every start.

    Uses ``openssl passwd -6``; without openssl the result is empty and the entrypoint falls
    back to chpasswd with the plain initial passwords.
    """
    if shutil.which("openssl") is None:
        return {}
    hashes = {}
    for user, pw in passwords.items():
        r = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=pw + "\n", capture_output=True, text=True,
                           check=False)
        if r.returncode != 0 or not r.stdout.startswith("$6$"):
            return {}
        hashes[user] = r.stdout.strip()
    return hashes


def _accounts(config: Config, hashes: dict[str, str]) -> dict[str, str]:
    gids = {p.name: p.gid for p in config.projects}
    members: dict[str, list[str]] = {p.name: [] for p in config.projects}
    for u in config.users:
        for p in u.projects:
            members[p].append(u.name)
    return {
        "passwd": "".join(f"{u.name}:x:{u.uid}:{gids[u.default_project]}:{u.name}:/home/{u.name}:/bin/bash\n"
                          for u in config.users),
        "shadow": "".join(f"{u.name}:*:19700:0:99999:7:::\n" for u in config.users),
        # login nodes: the same with the initial password, so `passwd` (and password login) work
        "shadow.login": "".join(f"{u.name}:{hashes.get(u.name, '*')}:19700:0:99999:7:::\n" for u in config.users),
        "group": "".join(f"{p.name}:x:{p.gid}:{','.join(members[p.name])}\n" for p in config.projects),
        "gshadow": "".join(f"{p.name}:!::{','.join(members[p.name])}\n" for p in config.projects),
        "users.tsv": "".join(f"{u.name} {u.uid} {gids[u.default_project]} {','.join(u.projects)}\n"
                             for u in config.users),
        "projects.tsv": "".join(f"{p.name} {p.gid}\n" for p in config.projects),
    }


def _known_hosts(config: Config, keys: Keys) -> str:
    lines = []
    for c in config.clusters:
        login = (keys.host_keys[c.login_hostname] / "ssh_host_ed25519_key.pub").read_text().split()
        lines.append(f"{c.login_hostname} {login[0]} {login[1]}\n")
        comp = (keys.host_keys[f"{c.name}-compute"] / "ssh_host_ed25519_key.pub").read_text().split()
        lines.append(f"{','.join(n.name for n in c.nodes)} {comp[0]} {comp[1]}\n")
    return "".join(lines)


def host_known_hosts(config: Config, keys: Keys) -> str:
    """``[localhost]:2222`` entries, so ``minihpc ssh`` checks host keys without prompting."""
    lines = []
    for c in config.clusters:
        for t in ("ed25519", "rsa"):
            pub = keys.host_keys[c.login_hostname] / f"ssh_host_{t}_key.pub"
            if pub.exists():
                kt, key = pub.read_text().split()[:2]
                lines.append(f"[localhost]:{c.ssh_port},[127.0.0.1]:{c.ssh_port} {kt} {key}\n")
    return "".join(lines)


def _node_env(config: Config, cluster: ClusterSpec) -> str:
    return (
        f"MINIHPC_CLUSTER={cluster.name}\n"
        f"MINIHPC_PASSWORD_AUTH={'yes' if config.site.password_auth else 'no'}\n"
        f"MINIHPC_LOGIN_CPU_MINUTES={max(1, math.ceil(config.site.login_cpu_limit / 60))}\n"
    )


def _write(path: Path, text: str | bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        path.write_text(text)
    else:
        path.write_bytes(text)
    os.chmod(path, mode)


def render_cluster(paths: Paths, config: Config, config_text: str, cluster: ClusterSpec, keys: Keys) -> Path:
    """(Re)write ``.minihpc/run/<cluster>/``; returns the directory."""
    d = paths.run / cluster.name
    tmp = paths.run / f".{cluster.name}.new"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    os.chmod(tmp, 0o755)
    _write(tmp / "cluster.yaml", config_text)
    _write(tmp / "slurm.json", json.dumps(client_view(config, cluster.name), indent=2) + "\n")
    _write(tmp / "node.env", _node_env(config, cluster))
    plain = {}
    for line in keys.passwords.read_text().splitlines():
        user, _, pw = line.partition(":")
        plain[user] = pw
    hashes = password_hashes(plain)
    for name, text in _accounts(config, hashes).items():
        _write(tmp / "accounts" / name, text, 0o600 if name.startswith("shadow") else 0o644)
    extra = host_public_keys()
    for u in config.users:
        own = Path(f"{keys.user_keys[u.name]}.pub").read_text().strip()
        _write(tmp / "ssh" / "authorized_keys" / u.name, "".join(f"{k}\n" for k in [own, *extra]))
    _write(tmp / "ssh" / "ssh_known_hosts", _known_hosts(config, keys))
    gids = {p.name: p.name for p in config.projects}
    _write(tmp / "ssh" / "sshd_match.conf", "".join(
        f"Match User {u.name}\n    SetEnv DATA=/data/{gids[u.default_project]}/{u.name}\n" for u in config.users))
    sec = tmp / "secrets"
    sec.mkdir(mode=0o700)
    os.chmod(sec, 0o700)
    _write(sec / "munge.key", keys.munge_key.read_bytes(), 0o600)
    # plain passwords only when they could not be hashed here (the entrypoint then runs chpasswd)
    _write(sec / "passwords", "" if hashes else keys.passwords.read_text(), 0o600)
    for u in config.users:
        _write(sec / "userkeys" / u.name, keys.user_keys[u.name].read_bytes(), 0o600)
    for src, dest in ((cluster.login_hostname, cluster.login_hostname), (f"{cluster.name}-compute", "compute")):
        for f in sorted(keys.host_keys[src].iterdir()):
            _write(sec / "hostkeys" / dest / f.name, f.read_bytes(), 0o644 if f.suffix == ".pub" else 0o600)
    shutil.rmtree(d, ignore_errors=True)
    os.replace(tmp, d)
    return d


def render_all(paths: Paths, config: Config, config_text: str, keys: Keys) -> None:
    for c in config.clusters:
        render_cluster(paths, config, config_text, c, keys)
    _write(paths.known_hosts, host_known_hosts(config, keys), 0o600)
