"""The container runtime behind one small interface (the docker SDK implements it).

Actions talk to a ``Provider`` and to ``Node`` objects ("something that runs commands"),
never to docker directly, so they can be tested against a fake. Containers are found by
their ``minihpc.*`` labels: there is no state file to get out of step.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from orchestrator.cluster.errors import EnvironmentProblem
from orchestrator.cluster.plan import (
    ENTRYPOINT,
    LABEL_CLUSTER,
    LABEL_CONFIG,
    LABEL_MANAGED,
    LABEL_ROLE,
    SHM_SIZE,
    NodePlan,
)

if TYPE_CHECKING:
    import docker

log = logging.getLogger(__name__)

STAGGER = 0.3  # seconds between submitting logins/controllers and compute nodes (measured best)


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass(frozen=True)
class ContainerInfo:
    """A minihpc container as the runtime reports it."""

    name: str
    cluster: str
    role: str
    state: str  # running, exited, created...
    image: str
    config_hash: str
    ports: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict, compare=False)


class Node(Protocol):
    name: str

    def run(self, cmd: Sequence[str], user: str | None = None) -> ExecResult: ...


class Provider(Protocol):
    def ping(self) -> None: ...
    def containers(self) -> list[ContainerInfo]: ...
    def ensure_network(self, name: str) -> None: ...
    def ensure_volume(self, name: str) -> None: ...
    def start_nodes(self, nodes: Sequence[NodePlan], images: dict[str, str]) -> list[str]: ...
    def remove_containers(self, names: Sequence[str]) -> None: ...
    def remove_networks(self, names: Sequence[str]) -> None: ...
    def remove_volumes(self, names: Sequence[str]) -> None: ...
    def exec(self, name: str, cmd: Sequence[str], user: str | None = None) -> ExecResult: ...
    def logs(self, name: str, tail: int | str = "all") -> str: ...
    def addresses(self, name: str) -> dict[str, str]: ...


class StartError(RuntimeError):
    """Some containers did not start; ``created`` lists those this run did create."""

    def __init__(self, message: str, created: list[str]) -> None:
        super().__init__(message)
        self.created = created


@dataclass
class DockerNode:
    """A container reached with ``docker exec``."""

    provider: DockerProvider
    name: str

    def run(self, cmd: Sequence[str], user: str | None = None) -> ExecResult:
        return self.provider.exec(self.name, cmd, user)


def _docker_hint() -> str:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    return (f"Is the Docker engine running and may you use it ({host})? Start it (e.g. `sudo systemctl start "
            "docker`, or `sudo dockerd &`), make sure your user can reach it (the `docker` group), and run again.")


class DockerProvider:
    """Provider on the docker SDK (``docker`` is imported only here and in images.py)."""

    def __init__(self, timeout: int = 120) -> None:
        try:
            import docker
            import docker.errors
        except ImportError:
            raise EnvironmentProblem("The Python docker package is missing.",
                                     hint="Run `make up` (it installs it into .venv) or `pip install docker`.") from None
        self._docker = docker
        try:
            self.client: docker.DockerClient = docker.from_env(timeout=timeout, max_pool_size=32)
            self.client.ping()
        except Exception as exc:  # any failure to reach the engine means the same thing to the user
            raise EnvironmentProblem(f"Docker is not running or not reachable: {str(exc).splitlines()[0][:200]}.",
                                     hint=_docker_hint()) from None

    def ping(self) -> None:
        self.client.ping()

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = self.client.info()
        return info

    # ------------------------------------------------------------ listing
    def containers(self) -> list[ContainerInfo]:
        out = []
        raw = self.client.api.containers(all=True, filters={"label": LABEL_MANAGED})
        for c in raw:
            labels = c.get("Labels") or {}
            ports = tuple(f"{p.get('IP', '')}:{p['PublicPort']}->{p['PrivatePort']}"
                          for p in c.get("Ports") or [] if p.get("PublicPort"))
            out.append(ContainerInfo(
                name=c["Names"][0].lstrip("/"), cluster=labels.get(LABEL_CLUSTER, ""),
                role=labels.get(LABEL_ROLE, ""), state=c.get("State", ""), image=c.get("Image", ""),
                config_hash=labels.get(LABEL_CONFIG, ""), ports=ports, labels=labels))
        return sorted(out, key=lambda c: (c.cluster, ("login", "controller", "compute").index(c.role)
                                          if c.role in ("login", "controller", "compute") else 9, c.name))

    def port_user(self, port: int) -> str | None:
        """The container publishing host ``port``, if any."""
        for c in self.client.api.containers(all=False):
            for p in c.get("Ports") or []:
                if p.get("PublicPort") == port:
                    return str(c["Names"][0].lstrip("/"))
        return None

    # ------------------------------------------------------------ networks, volumes
    def ensure_network(self, name: str) -> None:
        if not self.client.networks.list(names=[name]):
            self.client.networks.create(name, driver="bridge", labels={LABEL_MANAGED: "true"})

    def ensure_volume(self, name: str) -> None:
        import docker.errors

        try:
            self.client.volumes.get(name)
        except docker.errors.NotFound:
            self.client.volumes.create(name, labels={LABEL_MANAGED: "true"})

    def volumes(self) -> list[str]:
        return sorted(v.name for v in self.client.volumes.list(filters={"label": LABEL_MANAGED}) if v.name)

    def networks(self) -> list[str]:
        return sorted(n.name for n in self.client.networks.list(filters={"label": LABEL_MANAGED}) if n.name)

    def remove_networks(self, names: Sequence[str]) -> None:
        import docker.errors

        for n in self.client.networks.list(names=list(names)):
            if n.name not in names:
                continue
            for attempt in range(20):  # endpoints of just-removed containers go away a moment later
                try:
                    n.remove()
                    break
                except docker.errors.NotFound:
                    break
                except docker.errors.APIError as exc:
                    if "active endpoints" not in str(exc) or attempt == 19:
                        log.warning("could not remove network %s: %s", n.name, exc)
                        break
                    time.sleep(0.2)

    def remove_volumes(self, names: Sequence[str]) -> None:
        import docker.errors

        for name in names:
            try:
                self.client.volumes.get(name).remove(force=True)
            except docker.errors.NotFound:
                pass

    # ------------------------------------------------------------ containers
    def _create_and_start(self, node: NodePlan, image: str, created: list[str]) -> None:
        types = self._docker.types
        mounts = []
        tmpfs: dict[str, str] = {}
        for m in node.mounts:
            if m.type == "tmpfs":
                tmpfs[m.target] = m.tmpfs_options  # with exec: jobs run what they put there
            else:
                mounts.append(types.Mount(m.target, m.source, type=m.type, read_only=m.read_only))
        ports = {f"{cport}/tcp": ("127.0.0.1", hport) for cport, hport in node.ports}
        container = self.client.containers.create(
            image, name=node.name, hostname=node.hostname, labels=dict(node.labels), mounts=mounts, tmpfs=tmpfs,
            ports=ports, network=node.networks[0], shm_size=SHM_SIZE, cpu_shares=node.cpu_shares, detach=True,
            stop_signal="SIGTERM", entrypoint=list(ENTRYPOINT), environment=node.environment)
        created.append(node.name)
        for net in node.networks[1:]:
            self.client.networks.get(net).connect(container)
        container.start()

    def start_nodes(self, nodes: Sequence[NodePlan], images: dict[str, str]) -> list[str]:
        """Create and start all containers at once; returns the names this call created.

        On failure the exception carries ``created``, so a cleanup removes only what this run
        made (never a container of the same name made by someone else meanwhile).
        """
        # The engine starts containers nearly one after another (~0.3 s each here) and favours
        # the latest requests: submit logins and controllers, wait a moment, then the compute
        # nodes, so sshd and the controllers are up while the compute nodes still start.
        created: list[str] = []
        errors: list[str] = []
        first = [n for n in nodes if n.role in ("login", "controller")]
        rest = [n for n in nodes if n not in first]
        with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
            futures = [pool.submit(self._create_and_start, n, images[n.role], created) for n in first]
            if first and rest:
                time.sleep(STAGGER)
            futures += [pool.submit(self._create_and_start, n, images[n.role], created) for n in rest]
            for n, f in zip([*first, *rest], futures, strict=True):
                exc = f.exception()
                if exc is not None:
                    errors.append(f"{n.name}: {exc}")
        if errors:
            raise StartError("\n".join(errors), created)
        return created

    def addresses(self, name: str) -> dict[str, str]:
        """A running container's IPv4 address on each of its networks, by network name."""
        nets = self.client.api.inspect_container(name)["NetworkSettings"]["Networks"] or {}
        return {net: str(v["IPAddress"]) for net, v in nets.items() if v.get("IPAddress")}

    def remove_containers(self, names: Sequence[str]) -> None:
        """Stop (TERM, 3 s grace) and remove, all at once; anonymous volumes go too."""
        import docker.errors

        def rm(name: str) -> None:
            try:
                c = self.client.containers.get(name)
                if c.status == "running":
                    c.stop(timeout=3)
                c.remove(v=True, force=True)
            except docker.errors.NotFound:
                pass

        with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
            list(pool.map(rm, names))

    def exec(self, name: str, cmd: Sequence[str], user: str | None = None) -> ExecResult:
        res = self.client.api.exec_create(name, list(cmd), user=user or "")
        out = self.client.api.exec_start(res["Id"])
        code = self.client.api.exec_inspect(res["Id"]).get("ExitCode")
        text = out.decode(errors="replace") if isinstance(out, bytes) else str(out)
        return ExecResult(int(code) if code is not None else -1, text)

    def node(self, name: str) -> DockerNode:
        return DockerNode(self, name)

    def logs(self, name: str, tail: int | str = "all") -> str:
        out = self.client.api.logs(name, stdout=True, stderr=True, tail=tail, timestamps=False)
        return out.decode(errors="replace") if isinstance(out, bytes) else str(out)

    def follow_logs(self, name: str, tail: int | str = 50) -> Iterator[bytes]:
        return self.client.api.logs(name, stdout=True, stderr=True, tail=tail, stream=True, follow=True)


def port_free(port: int) -> bool:
    """Whether 127.0.0.1:``port`` can be bound on the host."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
