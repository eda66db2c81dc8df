"""Secrets made at the first ``up`` and kept under ``.minihpc/`` (never in an image).

- the munge key shared by every node of every cluster;
- an ssh key pair per user (``keys/<user>``), so ``ssh -i .minihpc/keys/alice`` works;
- persistent ssh host keys per login node and one per cluster's compute nodes, so
  reconnecting after ``down``/``up`` never warns;
- an initial password per user, so ``passwd`` works on a login node.
"""

from __future__ import annotations

import logging
import os
import secrets as pysecrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from orchestrator.cluster.config import Config
from orchestrator.cluster.errors import EnvironmentProblem
from orchestrator.cluster.paths import Paths

log = logging.getLogger(__name__)

MUNGE_KEY_BYTES = 1024
LOGIN_HOST_KEY_TYPES = ("ed25519", "rsa")
COMPUTE_HOST_KEY_TYPES = ("ed25519",)


@dataclass(frozen=True)
class Keys:
    munge_key: Path
    user_keys: dict[str, Path]  # user -> private key (public key beside it, + ".pub")
    host_keys: dict[str, Path]  # login hostname or "<cluster>-compute" -> directory
    passwords: Path


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _keygen(path: Path, key_type: str, comment: str) -> None:
    """ssh-keygen into a temporary name, then rename, so a crash leaves no half key pair."""
    if shutil.which("ssh-keygen") is None:
        raise EnvironmentProblem(
            "ssh-keygen is not installed, so minihpc cannot make the ssh keys it needs.",
            hint="Install the OpenSSH client (Debian/Ubuntu: apt-get install openssh-client) and run again.")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".new")
    for p in (tmp, Path(f"{tmp}.pub")):
        p.unlink(missing_ok=True)
    args = ["ssh-keygen", "-q", "-t", key_type, "-N", "", "-C", comment, "-f", str(tmp)]
    if key_type == "rsa":
        args[4:4] = ["-b", "3072"]
    subprocess.run(args, check=True, capture_output=True)
    os.replace(f"{tmp}.pub", f"{path}.pub")
    os.replace(tmp, path)


def ensure_keys(paths: Paths, config: Config) -> Keys:
    """Make whatever is missing; existing keys are kept (that is what makes them persistent)."""
    paths.state.mkdir(parents=True, exist_ok=True)
    os.chmod(paths.state, 0o700)
    munge = paths.state / "munge.key"
    if not munge.exists():
        log.info("generating the munge key")
        _write_private(munge, pysecrets.token_bytes(MUNGE_KEY_BYTES))
    user_keys: dict[str, Path] = {}
    for user in config.users:
        key = paths.keys / user.name
        if not key.exists() or not Path(f"{key}.pub").exists():
            log.info("generating an ssh key pair for %s", user.name)
            _keygen(key, "ed25519", f"{user.name}@minihpc")
        user_keys[user.name] = key
    host_keys: dict[str, Path] = {}
    for cluster in config.clusters:
        for name, types in ((cluster.login_hostname, LOGIN_HOST_KEY_TYPES),
                            (f"{cluster.name}-compute", COMPUTE_HOST_KEY_TYPES)):
            d = paths.hostkeys / name
            for t in types:
                key = d / f"ssh_host_{t}_key"
                if not key.exists():
                    _keygen(key, t, f"root@{name}")
            host_keys[name] = d
    passwords = paths.state / "passwords"
    known: dict[str, str] = {}
    if passwords.exists():
        for line in passwords.read_text().splitlines():
            name, _, pw = line.partition(":")
            if pw:
                known[name] = pw
    missing = [u.name for u in config.users if u.name not in known]
    if missing:
        for name in missing:
            known[name] = pysecrets.token_urlsafe(12)
        _write_private(passwords, "".join(f"{u}:{p}\n" for u, p in sorted(known.items())).encode())
    return Keys(munge, user_keys, host_keys, passwords)


def host_public_keys() -> list[str]:
    """The host user's own ``~/.ssh/*.pub`` keys, which are authorised for every user too."""
    home = Path(os.environ.get("HOME", "~")).expanduser()
    keys = []
    for pub in sorted((home / ".ssh").glob("*.pub")):
        try:
            text = pub.read_text().strip()
        except OSError:
            continue
        if text.startswith(("ssh-", "ecdsa-", "sk-")) and "\n" not in text:
            keys.append(text)
    return keys


def read_password(paths: Paths, user: str) -> str | None:
    """The initial password of ``user`` (for tests and for ``minihpc status``)."""
    f = paths.state / "passwords"
    if not f.exists():
        return None
    for line in f.read_text().splitlines():
        name, _, pw = line.partition(":")
        if name == user:
            return pw
    return None
