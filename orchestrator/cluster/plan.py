"""From a validated config to the containers, networks and volumes that make the service.

The plan is pure data (no Docker), so it is unit-tested and drives both the docker SDK
provider and the generated ``compose/docker-compose.yml``: the two cannot drift apart.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from orchestrator.cluster.config import ClusterSpec, Config

log = logging.getLogger(__name__)

PREFIX = "minihpc"
LABEL_CLUSTER = "minihpc.cluster"
LABEL_ROLE = "minihpc.role"
LABEL_CONFIG = "minihpc.config"
LABEL_MANAGED = "minihpc.managed"
LABEL_STATE = "minihpc.state"  # the .minihpc/ directory holding this cluster's keys
ROLES = ("login", "controller", "compute")
SHARED_NETWORK = f"{PREFIX}-shared"
CONF_DIR = "/etc/minihpc"
SHM_SIZE = "256m"
# tini is PID 1 (-g: signals go to the whole process group, so `docker stop` is quick).
ENTRYPOINT = ("/usr/bin/tini", "-g", "--", "/opt/minihpc/bin/entrypoint")
TMP_SIZE = "2g"
SPOOL_DIR = "/var/spool/minihpc"
SPOOL_SIZE = "256m"
# every node: the entrypoint's run state and the commands' launcher and code (build-command-cache), in memory
RUN_DIR = "/run/minihpc"
RUN_SIZE = "64m"
# CPU weight (cgroup cpu.shares; the engine's default is 1024). A laptop has two cores for all
# containers: jobs that saturate the compute nodes (a 96-rank mpirun) must not starve sshd on the
# login node or the controller, just as a real login node never shares cores with jobs.
CPU_SHARES = {"login": 1024, "controller": 1024, "compute": 128}

# Shared storage (one volume each, mounted on every node of every cluster).
SHARED_VOLUMES: tuple[tuple[str, str], ...] = (("home", "/home"), ("data", "/data"), ("scratch", "/scratch"))
STATE_DIR = "/var/lib/minihpc"


@dataclass(frozen=True)
class Mount:
    """``type`` is volume, bind or tmpfs; ``source`` is a volume name or a host path."""

    type: str
    target: str
    source: str = ""
    read_only: bool = False
    size: str = ""
    mode: int = 0

    @property
    def tmpfs_options(self) -> str:
        """Docker mounts a tmpfs noexec by default; on a node, jobs run scripts and programs from
        $TMPDIR and the node daemon from its spool, so these are exec."""
        opts = ["rw", "exec", "nosuid", "nodev"]
        if self.size:
            opts.append(f"size={self.size}")
        if self.mode:
            opts.append(f"mode={self.mode:o}")
        return ",".join(opts)


@dataclass(frozen=True)
class NodePlan:
    """One container. Its name is its hostname, so ``docker exec arc-login`` just works."""

    name: str
    cluster: str
    role: str
    networks: tuple[str, ...]
    mounts: tuple[Mount, ...]
    ports: tuple[tuple[int, int], ...] = ()  # (container port, host port on 127.0.0.1)
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def environment(self) -> dict[str, str]:
        """The role is chosen here, not baked into the image (see images/node/Dockerfile)."""
        return {"MINIHPC_ROLE": self.role}

    @property
    def hostname(self) -> str:
        return self.name

    @property
    def cpu_shares(self) -> int:
        return CPU_SHARES[self.role]


@dataclass(frozen=True)
class Plan:
    config: Config
    config_hash: str
    networks: tuple[str, ...]
    volumes: tuple[str, ...]
    nodes: tuple[NodePlan, ...]

    def cluster_nodes(self, cluster: str) -> tuple[NodePlan, ...]:
        return tuple(n for n in self.nodes if n.cluster == cluster)

    def role_nodes(self, role: str) -> tuple[NodePlan, ...]:
        return tuple(n for n in self.nodes if n.role == role)

    def node(self, name: str) -> NodePlan:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)


def config_hash(text: str) -> str:
    """Identifies the config a running cluster was made from (a container label)."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def network_name(cluster: str) -> str:
    return f"{PREFIX}-{cluster}"


def volume_name(name: str) -> str:
    return f"{PREFIX}-{name}"


def state_volume(cluster: str) -> str:
    return volume_name(f"{cluster}-state")


def _node(cluster: ClusterSpec, name: str, role: str, run_dir: str, chash: str, state: str) -> NodePlan:
    mounts = [Mount("volume", target, volume_name(vol)) for vol, target in SHARED_VOLUMES]
    mounts.append(Mount("bind", CONF_DIR, f"{run_dir}/{cluster.name}", read_only=True))
    mounts.append(Mount("tmpfs", RUN_DIR, size=RUN_SIZE, mode=0o755))
    networks = [network_name(cluster.name)]
    ports: tuple[tuple[int, int], ...] = ()
    if role == "controller":
        mounts.append(Mount("volume", STATE_DIR, state_volume(cluster.name)))
        networks.append(SHARED_NETWORK)  # other clusters' logins submit here (-M)
    elif role == "login":
        networks.append(SHARED_NETWORK)
        ports = ((22, cluster.ssh_port),)
    else:
        mounts.append(Mount("tmpfs", "/tmp", size=TMP_SIZE, mode=0o1777))  # node-local /tmp
        # the node daemon's spool (scripts, job state, results): a few small files per job, which
        # on the image's fuse-overlayfs cost more CPU than the short jobs themselves
        mounts.append(Mount("tmpfs", SPOOL_DIR, size=SPOOL_SIZE, mode=0o755))
    labels = {LABEL_CLUSTER: cluster.name, LABEL_ROLE: role, LABEL_CONFIG: chash, LABEL_MANAGED: "true"}
    if state:
        labels[LABEL_STATE] = state
    return NodePlan(name, cluster.name, role, tuple(networks), tuple(mounts), ports, labels)


def make_plan(config: Config, run_dir: str, chash: str = "", state: str = "") -> Plan:
    """Every container of every cluster. ``run_dir`` holds the per-cluster /etc/minihpc dirs;
    ``state`` (the .minihpc/ directory) is recorded so another checkout knows the keys are not its own."""
    nodes: list[NodePlan] = []
    volumes = [volume_name(v) for v, _ in SHARED_VOLUMES]
    networks = [SHARED_NETWORK]
    for c in config.clusters:
        networks.append(network_name(c.name))
        volumes.append(state_volume(c.name))
        nodes.append(_node(c, c.login_hostname, "login", run_dir, chash, state))
        nodes.append(_node(c, c.controller_hostname, "controller", run_dir, chash, state))
        nodes.extend(_node(c, n.name, "compute", run_dir, chash, state) for n in c.nodes)
    return Plan(config, chash, tuple(networks), tuple(volumes), tuple(nodes))
