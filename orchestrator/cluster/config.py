"""The versioned cluster config (``apiVersion: minihpc/v1``, ``kind: Cluster``).

One file describes the whole service: users, projects, and each cluster's login,
controller, nodes and partitions. It is validated completely before anything starts,
and every error names the file, the key path, the bad value and what is allowed.
The scheduler daemons read the same file inside the containers, so this module
uses only the standard library and PyYAML.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from orchestrator.slurm.hostlist import HostlistError, expand
from orchestrator.slurm.timefmt import INFINITE, TimeFormatError, parse_limit
from orchestrator.slurm.units import SizeFormatError, parse_mem, parse_size

log = logging.getLogger(__name__)

API_VERSION = "minihpc/v1"
KIND = "Cluster"
DEFAULT_CONTROLLER_PORT = 6817
DEFAULT_NODE_PORT = 6818


class ConfigError(ValueError):
    """A config that cannot be used; the message says where and why."""

    def __init__(self, source: str, path: str, message: str) -> None:
        self.source = source
        self.path = path
        super().__init__(f"{source}: {path}: {message}" if path else f"{source}: {message}")


@dataclass(frozen=True)
class Gres:
    """One generic resource on a node, e.g. ``gpu:v100:2``."""

    name: str
    type: str | None
    count: int

    def __str__(self) -> str:
        return f"{self.name}:{self.type}:{self.count}" if self.type else f"{self.name}:{self.count}"


@dataclass(frozen=True)
class NodeSpec:
    """A compute node as declared (not as the host really is)."""

    name: str
    cpus: int
    memory_mb: int
    gres: tuple[Gres, ...] = ()
    features: tuple[str, ...] = ()
    port: int = DEFAULT_NODE_PORT


@dataclass(frozen=True)
class PartitionSpec:
    name: str
    nodes: tuple[str, ...]
    default: bool = False
    default_time: int = INFINITE  # minutes; INFINITE means "use max_time"
    max_time: int = INFINITE
    priority_tier: int = 1
    oversubscribe: int = 0  # 0 = NO, N = FORCE:N style sharing of CPUs
    max_nodes: int | None = None


@dataclass(frozen=True)
class ClusterSpec:
    name: str
    login_hostname: str
    ssh_port: int
    controller_hostname: str
    controller_port: int
    nodes: tuple[NodeSpec, ...]
    partitions: tuple[PartitionSpec, ...]

    def node(self, name: str) -> NodeSpec:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    @property
    def default_partition(self) -> PartitionSpec | None:
        for p in self.partitions:
            if p.default:
                return p
        return None


@dataclass(frozen=True)
class Project:
    name: str
    gid: int
    credits_hours: float
    data_quota: int  # bytes


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    projects: tuple[str, ...]

    @property
    def default_project(self) -> str:
        return self.projects[0]


@dataclass(frozen=True)
class Site:
    name: str = "minihpc"
    mem_per_cpu: int = 8000
    home_quota: int = 15 * 1024**3
    password_auth: bool = False
    login_cpu_limit: int = 3600
    max_array_size: int = 1001  # Slurm's MaxArraySize
    # optional module groups baked into the node image (images/modules/catalogue.yaml `groups`)
    optional_modules: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    source: str
    site: Site
    projects: tuple[Project, ...]
    users: tuple[User, ...]
    clusters: tuple[ClusterSpec, ...]
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def cluster(self, name: str) -> ClusterSpec:
        for c in self.clusters:
            if c.name == name:
                return c
        raise KeyError(name)

    def user(self, name: str) -> User:
        for u in self.users:
            if u.name == name:
                return u
        raise KeyError(name)

    def project(self, name: str) -> Project:
        for p in self.projects:
            if p.name == name:
                return p
        raise KeyError(name)


# ---------------------------------------------------------------- validation helpers

_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_HOST_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_GRES_RE = re.compile(r"^([a-z][a-z0-9_]*)(?::([A-Za-z0-9_.-]+))?:(\d+)$")


class _Reader:
    """Walks the raw YAML, tracking the key path for error messages."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, message: str) -> ConfigError:
        return ConfigError(self.source, path, message)

    def mapping(self, value: Any, path: str, allowed: dict[str, bool]) -> dict[str, Any]:
        """Check a mapping's keys: ``allowed`` maps key -> required."""
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a mapping, got {_show(value)}")
        for key in value:
            if key not in allowed:
                raise self.fail(f"{path}.{key}" if path else str(key),
                                f"unknown key {key!r}; allowed keys: {', '.join(sorted(allowed))}")
        for key, required in allowed.items():
            if required and key not in value:
                raise self.fail(f"{path}.{key}" if path else key, "required key is missing")
        return value

    def seq(self, value: Any, path: str, nonempty: bool = True) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(path, f"expected a list, got {_show(value)}")
        if nonempty and not value:
            raise self.fail(path, "must not be empty")
        return value

    def integer(self, value: Any, path: str, lo: int | None = None, hi: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"expected an integer, got {_show(value)}")
        if lo is not None and value < lo:
            raise self.fail(path, f"{value} is too small; allowed: {lo}..{hi if hi is not None else ''}")
        if hi is not None and value > hi:
            raise self.fail(path, f"{value} is too large; allowed: {lo}..{hi}")
        return value

    def number(self, value: Any, path: str, maximum: float = 1e15) -> float:
        """A number from 0 to ``maximum`` (YAML's .nan and .inf are not: credits must fit the ledger)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= maximum:
            raise self.fail(path, f"expected a number from 0 to {maximum:g}, got {_show(value)}")
        return float(value)

    def boolean(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, f"expected true or false, got {_show(value)}")
        return value

    def name(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not _NAME_RE.match(value):
            raise self.fail(path, f"invalid name {_show(value)}; allowed: lower-case letters, digits, '-' "
                                  "and '_', starting with a letter, at most 32 characters")
        return value

    def hostname(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not _HOST_RE.match(value):
            raise self.fail(path, f"invalid hostname {_show(value)}; allowed: lower-case letters, digits and '-'")
        return value

    def time_limit(self, value: Any, path: str) -> int:
        try:
            return parse_limit(str(value))
        except TimeFormatError:
            raise self.fail(path, f"invalid time {_show(value)}; allowed: M, H:M:S, D-H:M:S or UNLIMITED") from None

    def memory(self, value: Any, path: str) -> int:
        try:
            mb = parse_mem(str(value))
        except SizeFormatError:
            raise self.fail(path, f"invalid memory {_show(value)}; allowed: a number of MB or with K/M/G/T") from None
        if mb <= 0:
            raise self.fail(path, f"invalid memory {_show(value)}; must be more than 0")
        return mb

    def size(self, value: Any, path: str) -> int:
        """A quota: positive (a quota of 0 or less would refuse every job of the area)."""
        try:
            size = parse_size(value)
        except SizeFormatError:
            size = 0
        if size <= 0:
            raise self.fail(path, f"invalid size {_show(value)}; allowed: bytes or a number with K/M/G/T, "
                                  "more than 0")
        return size

    def hostlist(self, value: Any, path: str) -> list[str]:
        if not isinstance(value, str):
            raise self.fail(path, f"expected a host list such as 'arc-c[001-004]', got {_show(value)}")
        try:
            names = expand(value)
        except HostlistError:
            raise self.fail(path, f"invalid host list {_show(value)}; example: 'arc-c[001-004]'") from None
        for n in names:
            self.hostname(n, path)
        return names


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------- parsing


def _parse_site(r: _Reader, raw: Any) -> Site:
    if raw is None:
        return Site()
    m = r.mapping(raw, "site", {"name": False, "mem_per_cpu": False, "home_quota": False,
                                "password_auth": False, "login_cpu_limit": False, "max_array_size": False,
                                "optional_modules": False})
    d = Site()
    return Site(
        name=r.name(m["name"], "site.name") if "name" in m else d.name,
        mem_per_cpu=r.memory(m["mem_per_cpu"], "site.mem_per_cpu") if "mem_per_cpu" in m else d.mem_per_cpu,
        home_quota=r.size(m["home_quota"], "site.home_quota") if "home_quota" in m else d.home_quota,
        password_auth=r.boolean(m["password_auth"], "site.password_auth") if "password_auth" in m
        else d.password_auth,
        login_cpu_limit=r.integer(m["login_cpu_limit"], "site.login_cpu_limit", 1)
        if "login_cpu_limit" in m else d.login_cpu_limit,
        max_array_size=r.integer(m["max_array_size"], "site.max_array_size", 1, 4_000_001)
        if "max_array_size" in m else d.max_array_size,
        optional_modules=_parse_optional_modules(r, m["optional_modules"]) if "optional_modules" in m
        else d.optional_modules,
    )


def _parse_optional_modules(r: _Reader, raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list):
        raise r.fail("site.optional_modules", f"expected a list of module groups, got {_show(raw)}")
    names = [r.name(v, f"site.optional_modules[{i}]") for i, v in enumerate(raw)]
    return tuple(sorted(set(names)))


def _parse_gres(r: _Reader, value: Any, path: str) -> Gres:
    m = _GRES_RE.match(value) if isinstance(value, str) else None
    if not m:
        raise r.fail(path, f"invalid gres {_show(value)}; allowed: name[:type]:count, e.g. 'gpu:v100:2'")
    return Gres(m.group(1), m.group(2), int(m.group(3)))


def _parse_nodes(r: _Reader, raw: Any, path: str) -> list[NodeSpec]:
    nodes: list[NodeSpec] = []
    for i, item in enumerate(r.seq(raw, path)):
        p = f"{path}[{i}]"
        m = r.mapping(item, p, {"names": True, "cpus": True, "memory": True, "gres": False, "features": False})
        names = r.hostlist(m["names"], f"{p}.names")
        cpus = r.integer(m["cpus"], f"{p}.cpus", 1, 4096)
        mem = r.memory(m["memory"], f"{p}.memory")
        gres = tuple(_parse_gres(r, g, f"{p}.gres[{j}]") for j, g in enumerate(r.seq(m.get("gres", []), f"{p}.gres",
                                                                                     nonempty=False)))
        feats: list[str] = []
        for j, f in enumerate(r.seq(m.get("features", []), f"{p}.features", nonempty=False)):
            if not isinstance(f, str) or not re.match(r"^[A-Za-z0-9_.:-]+$", f):
                raise r.fail(f"{p}.features[{j}]", f"invalid feature {_show(f)}; allowed: letters, digits, "
                                                   "'_', '.', '-' and ':' (as in gpu_sku:V100)")
            feats.append(f)
        nodes.extend(NodeSpec(n, cpus, mem, gres, tuple(feats)) for n in names)
    return nodes


def _parse_partitions(r: _Reader, raw: Any, path: str, node_names: list[str]) -> list[PartitionSpec]:
    parts: list[PartitionSpec] = []
    for i, item in enumerate(r.seq(raw, path)):
        p = f"{path}[{i}]"
        m = r.mapping(item, p, {"name": True, "nodes": False, "default": False, "default_time": False,
                                "max_time": False, "priority_tier": False, "oversubscribe": False,
                                "max_nodes": False})
        name = r.name(m["name"], f"{p}.name")
        if any(x.name == name for x in parts):
            raise r.fail(f"{p}.name", f"duplicate partition {name!r}")
        if "nodes" in m and m["nodes"] != "ALL":
            members = r.hostlist(m["nodes"], f"{p}.nodes")
            for n in members:
                if n not in node_names:
                    raise r.fail(f"{p}.nodes", f"node {n!r} is not declared in this cluster's nodes; "
                                               f"declared: {', '.join(node_names)}")
        else:
            members = list(node_names)
        max_time = r.time_limit(m["max_time"], f"{p}.max_time") if "max_time" in m else INFINITE
        default_time = r.time_limit(m["default_time"], f"{p}.default_time") if "default_time" in m else INFINITE
        if max_time != INFINITE and default_time != INFINITE and default_time > max_time:
            raise r.fail(f"{p}.default_time", f"{m['default_time']!r} exceeds max_time {m['max_time']!r}")
        over = m.get("oversubscribe", 0)
        if isinstance(over, bool):
            over = 4 if over else 0
        parts.append(PartitionSpec(
            name=name,
            nodes=tuple(members),
            default=r.boolean(m["default"], f"{p}.default") if "default" in m else False,
            default_time=default_time,
            max_time=max_time,
            priority_tier=r.integer(m.get("priority_tier", 1), f"{p}.priority_tier", 1, 65533),
            oversubscribe=r.integer(over, f"{p}.oversubscribe", 0, 64),
            max_nodes=r.integer(m["max_nodes"], f"{p}.max_nodes", 1) if "max_nodes" in m else None,
        ))
    defaults = [x.name for x in parts if x.default]
    if len(defaults) > 1:
        raise r.fail(path, f"more than one default partition: {', '.join(defaults)}; allowed: at most one")
    return parts


def _parse_cluster(r: _Reader, raw: Any, path: str) -> ClusterSpec:
    m = r.mapping(raw, path, {"name": True, "login": True, "controller": False, "nodes": True,
                              "partitions": True})
    name = r.name(m["name"], f"{path}.name")
    login = r.mapping(m["login"], f"{path}.login", {"hostname": False, "ssh_port": True})
    login_host = r.hostname(login.get("hostname", f"{name}-login"), f"{path}.login.hostname")
    port = r.integer(login["ssh_port"], f"{path}.login.ssh_port", 1, 65535)
    ctl = r.mapping(m.get("controller") or {}, f"{path}.controller", {"hostname": False, "port": False})
    ctl_host = r.hostname(ctl.get("hostname", f"{name}-controller"), f"{path}.controller.hostname")
    ctl_port = r.integer(ctl.get("port", DEFAULT_CONTROLLER_PORT), f"{path}.controller.port", 1, 65535)
    nodes = _parse_nodes(r, m["nodes"], f"{path}.nodes")
    names = [n.name for n in nodes]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise r.fail(f"{path}.nodes", f"node declared twice: {', '.join(dup)}")
    parts = _parse_partitions(r, m["partitions"], f"{path}.partitions", names)
    return ClusterSpec(name, login_host, port, ctl_host, ctl_port, tuple(nodes), tuple(parts))


def parse(raw: Any, source: str = "<config>") -> Config:
    """Validate a loaded YAML document and return the typed config."""
    r = _Reader(source)
    top = r.mapping(raw, "", {"apiVersion": True, "kind": True, "site": False, "projects": True,
                              "users": True, "clusters": True})
    if top["apiVersion"] != API_VERSION:
        raise r.fail("apiVersion", f"unsupported value {_show(top['apiVersion'])}; allowed: {API_VERSION}")
    if top["kind"] != KIND:
        raise r.fail("kind", f"unsupported value {_show(top['kind'])}; allowed: {KIND}")
    site = _parse_site(r, top.get("site"))

    projects: list[Project] = []
    for i, item in enumerate(r.seq(top["projects"], "projects")):
        p = f"projects[{i}]"
        m = r.mapping(item, p, {"name": True, "gid": True, "credits": False, "data_quota": False})
        name = r.name(m["name"], f"{p}.name")
        if any(x.name == name for x in projects):
            raise r.fail(f"{p}.name", f"duplicate project {name!r}")
        gid = r.integer(m["gid"], f"{p}.gid", 1000, 65533)
        if any(x.gid == gid for x in projects):
            raise r.fail(f"{p}.gid", f"gid {gid} is used by another project")
        projects.append(Project(name, gid, r.number(m.get("credits", 25000), f"{p}.credits"),
                                r.size(m.get("data_quota", "5T"), f"{p}.data_quota")))
    project_names = [p.name for p in projects]

    users: list[User] = []
    for i, item in enumerate(r.seq(top["users"], "users")):
        p = f"users[{i}]"
        m = r.mapping(item, p, {"name": True, "uid": True, "projects": True})
        name = r.name(m["name"], f"{p}.name")
        if name in ("root", "munge", "sshd", "nobody") or any(x.name == name for x in users):
            raise r.fail(f"{p}.name", f"user name {name!r} is reserved or already used")
        uid = r.integer(m["uid"], f"{p}.uid", 1000, 65533)
        if any(x.uid == uid for x in users):
            raise r.fail(f"{p}.uid", f"uid {uid} is used by another user")
        projs = r.seq(m["projects"], f"{p}.projects")
        for j, pr in enumerate(projs):
            if pr not in project_names:
                raise r.fail(f"{p}.projects[{j}]", f"unknown project {_show(pr)}; allowed: {', '.join(project_names)}")
        users.append(User(name, uid, tuple(projs)))

    clusters: list[ClusterSpec] = []
    for i, item in enumerate(r.seq(top["clusters"], "clusters")):
        c = _parse_cluster(r, item, f"clusters[{i}]")
        if any(x.name == c.name for x in clusters):
            raise r.fail(f"clusters[{i}].name", f"duplicate cluster {c.name!r}")
        if any(x.ssh_port == c.ssh_port for x in clusters):
            raise r.fail(f"clusters[{i}].login.ssh_port", f"port {c.ssh_port} is used by another cluster")
        clusters.append(c)
    hosts: dict[str, str] = {}
    for i, c in enumerate(clusters):
        for h in [c.login_hostname, c.controller_hostname, *(n.name for n in c.nodes)]:
            if h in hosts:
                raise r.fail(f"clusters[{i}]", f"hostname {h!r} is used twice (also in cluster {hosts[h]})")
            hosts[h] = c.name
    return Config(source, site, tuple(projects), tuple(users), tuple(clusters), raw=top)


def load(path: str | Path | None = None) -> Config:
    """Load and validate a config file, or the packaged default when ``path`` is None."""
    import yaml

    if path is None:
        text = resources.files("orchestrator.cluster").joinpath("default.yaml").read_text()
        source = "default.yaml (built in)"
    else:
        p = Path(path)
        source = str(p)
        try:
            text = p.read_text()
        except OSError as exc:
            raise ConfigError(source, "", f"cannot read the file: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(source, where, f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
    return parse(raw, source)
