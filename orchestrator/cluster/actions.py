"""Bring-up as a pipeline of small actions, listed in order in ``up_actions()``.

check environment -> keys and config -> images -> containers (all at once) -> sshd ->
munge on every node -> compute nodes registered with the scheduler. Each action has one
``execute(ctx)``; a failure names its step, keeps the failing command's output and, unless
``--retain`` was given, removes the half-made cluster (volumes are always kept).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from orchestrator.cluster.config import Config
from orchestrator.cluster.errors import EnvironmentProblem, MinihpcError, StepFailed
from orchestrator.cluster.keys import ensure_keys
from orchestrator.cluster.paths import Paths
from orchestrator.cluster.plan import LABEL_STATE, Plan, config_hash, make_plan
from orchestrator.cluster.provider import ContainerInfo, port_free
from orchestrator.cluster.render import record_controller_addresses, render_all
from orchestrator.cluster.status import Status

if TYPE_CHECKING:
    from orchestrator.cluster.images import ImageBuilder

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = float(os.environ.get("MINIHPC_UP_TIMEOUT", "120"))
MIN_FREE_BYTES_BUILD = 4 * 1024**3
MIN_FREE_BYTES = 1 * 1024**3
REGISTERED_STATES = {"idle", "mix", "mixed", "alloc", "allocated", "comp", "completing", "resv", "reserved",
                     "plnd", "planned"}


class AlreadyUp(Exception):
    """The cluster described by the config is already running: nothing to do."""


@dataclass
class Context:
    """What every action may use; actions fill in ``plan`` and ``images``."""

    config: Config
    config_text: str
    paths: Paths
    provider: Any  # DockerProvider, or a fake with the same methods in tests
    status: Status
    retain: bool = False
    timeout: float = DEFAULT_TIMEOUT
    plan: Plan | None = None
    images: dict[str, str] = field(default_factory=dict)
    started: bool = False
    created: list[str] = field(default_factory=list)  # containers this run made (the only ones it removes)
    notes: list[str] = field(default_factory=list)

    def require_plan(self) -> Plan:
        if self.plan is None:
            self.plan = make_plan(self.config, str(self.paths.run), config_hash(self.config_text),
                                  str(self.paths.state))
        return self.plan

    def image_builder(self) -> ImageBuilder:
        from orchestrator.cluster.images import ImageBuilder

        return ImageBuilder(self.provider.client, self.paths, self.status.detail, self.config.site.optional_modules)


class Action(Protocol):
    title: str

    def execute(self, ctx: Context) -> None: ...


def _poll(deadline: float, check: Callable[[], str | None], interval: float = 0.2) -> str | None:
    """Call ``check`` until it returns None (done) or the deadline passes; returns the last problem."""
    problem = check()
    while problem is not None and time.monotonic() < deadline:
        time.sleep(interval)
        problem = check()
    return problem


# ---------------------------------------------------------------------------- actions


class CheckEnvironment:
    title = "Checking the environment"

    def execute(self, ctx: Context) -> None:
        plan = ctx.require_plan()
        existing = ctx.provider.containers()
        wanted = {n.name for n in plan.nodes}
        if existing:
            homes = {c.labels.get(LABEL_STATE, "") for c in existing} - {"", str(ctx.paths.state)}
            if homes:
                raise EnvironmentProblem(
                    f"A minihpc cluster started from another checkout is running (its keys are in "
                    f"{', '.join(sorted(homes))}); one Docker engine runs one minihpc.",
                    hint="Use that checkout, or run `minihpc down` to remove it (its volumes are kept).")
            names = {c.name for c in existing}
            running = all(c.state == "running" for c in existing)
            same = all(c.config_hash == plan.config_hash for c in existing)
            if names == wanted and running and same:
                stale = self._stale_images(ctx, existing)
                if stale:
                    raise EnvironmentProblem(
                        f"The cluster is running, but on images older than this checkout ({stale}).",
                        hint="Run `make down` and `make up` to restart it on new images; volumes (homes, data, "
                             "job state) are kept.")
                raise AlreadyUp()
            if not same or not names <= wanted:
                others = ", ".join(sorted({c.cluster for c in existing}))
                raise EnvironmentProblem(
                    f"A minihpc cluster made from a different config is already running (clusters: {others}).",
                    hint="Run `minihpc down` (or `make down`) first; volumes (homes, data) are kept.")
            missing = sorted(wanted - names)
            stopped = sorted(c.name for c in existing if c.state != "running")
            raise EnvironmentProblem(
                "A minihpc cluster is partly there"
                + (f"; missing: {', '.join(missing)}" if missing else "")
                + (f"; not running: {', '.join(stopped)}" if stopped else "") + ".",
                hint="Run `minihpc down` (or `make down`; volumes are kept) and then `make up` again.")
        for c in ctx.config.clusters:
            if not port_free(c.ssh_port):
                user = ctx.provider.port_user(c.ssh_port)
                who = f"container {user}" if user else "another program"
                i = ctx.config.clusters.index(c)
                raise EnvironmentProblem(
                    f"Port {c.ssh_port} on 127.0.0.1 (ssh to {c.login_hostname}) is already in use by {who}.",
                    hint=f"Stop that program, or choose another port: copy orchestrator/cluster/default.yaml, set "
                         f"clusters[{i}].login.ssh_port, and run `minihpc up --config FILE`.")
        self._check_disk(ctx)

    @staticmethod
    def _stale_images(ctx: Context, existing: list[ContainerInfo]) -> str:
        """'' when every container runs the image this checkout would build, else an example."""
        wanted = ctx.image_builder().wanted_tags()
        for c in existing:
            want = (wanted or {}).get(c.role)
            if want is None or c.image != want:
                return f"{c.name} runs {c.image or 'an unknown image'}, this checkout builds {want or 'a new base'}"
        return ""

    def _check_disk(self, ctx: Context) -> None:
        need = MIN_FREE_BYTES if ctx.image_builder().wanted_tags() else MIN_FREE_BYTES_BUILD
        root = ctx.provider.info().get("DockerRootDir", "/var/lib/docker")
        for path in (root, str(ctx.paths.root)):
            try:
                free = shutil.disk_usage(path).free
            except OSError:
                continue
            if free < need:
                raise EnvironmentProblem(
                    f"Not enough disk space: {free / 1024**3:.1f} GB free under {path}, minihpc needs "
                    f"{need / 1024**3:.0f} GB.",
                    hint="Free some space (e.g. `docker system prune`) and run again.")


class PrepareKeys:
    title = "Preparing keys and config"

    def execute(self, ctx: Context) -> None:
        keys = ensure_keys(ctx.paths, ctx.config)
        render_all(ctx.paths, ctx.config, ctx.config_text, keys)


class EnsureImages:
    title = "Ensuring images"

    def execute(self, ctx: Context) -> None:
        result = ctx.image_builder().ensure()
        ctx.images = result.tags
        if result.built:
            ctx.notes.append(f"built images: {', '.join(result.built)}")


class StartContainers:
    title = "Starting containers"

    def execute(self, ctx: Context) -> None:
        plan = ctx.require_plan()
        for net in plan.networks:
            ctx.provider.ensure_network(net)
        for vol in plan.volumes:
            ctx.provider.ensure_volume(vol)
        ctx.started = True
        try:
            ctx.created = list(ctx.provider.start_nodes(plan.nodes, ctx.images))
        except Exception as exc:
            ctx.created = list(getattr(exc, "created", []))
            raise StepFailed(self.title, "Docker could not start every container.", output=str(exc),
                             hint="see the errors above") from None
        record_controller_addresses(ctx.paths, ctx.config, ctx.provider.addresses)


class WaitSSH:
    title = "Waiting for sshd on the login nodes"

    def execute(self, ctx: Context) -> None:
        deadline = time.monotonic() + ctx.timeout
        for c in ctx.config.clusters:
            def check(port: int = c.ssh_port) -> str | None:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                        banner = s.recv(64)
                except OSError as exc:
                    return f"127.0.0.1:{port}: {exc}"
                return None if banner.startswith(b"SSH-") else f"127.0.0.1:{port} answered {banner[:40]!r}"

            problem = _poll(deadline, check)
            if problem:
                raise StepFailed(self.title, f"sshd on {c.login_hostname} did not answer: {problem}",
                                 output=ctx.provider.logs(c.login_hostname, tail=30),
                                 hint=f"see `minihpc logs {c.login_hostname}`")


class WaitMunge:
    title = "Checking munge on every node"

    def execute(self, ctx: Context) -> None:
        plan = ctx.require_plan()
        deadline = time.monotonic() + ctx.timeout
        source = plan.role_nodes("login")[0].name
        cred = ""

        def encode() -> str | None:
            nonlocal cred
            r = ctx.provider.exec(source, ["sh", "-c", "test -e /run/minihpc/ready && munge -n"])
            if r.ok and r.output.startswith("MUNGE:"):
                cred = r.output.strip()
                return None
            return f"{source}: munge -n: {r.output.strip() or 'node not ready yet'}"

        problem = _poll(deadline, encode)
        if problem:
            raise StepFailed(self.title, "munge could not make a credential.", output=problem + "\n"
                             + ctx.provider.logs(source, tail=30), hint=f"see `minihpc logs {source}`")
        script = 'test -e /run/minihpc/ready || { echo "node not ready yet"; exit 1; }; printf %s "$1" | unmunge'

        def check_node(name: str) -> str | None:
            def once() -> str | None:
                r = ctx.provider.exec(name, ["sh", "-c", script, "sh", cred])
                return None if r.ok else r.output.strip()

            return _poll(deadline, once)

        names = [n.name for n in plan.nodes if n.name != source]
        with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
            problems = dict(zip(names, pool.map(check_node, names), strict=True))
        bad = {n: p for n, p in problems.items() if p}
        if bad:
            first = next(iter(bad))
            raise StepFailed(self.title, f"a credential made on {source} does not decode on {', '.join(bad)}.",
                             output=f"{first}: {bad[first]}\n" + ctx.provider.logs(first, tail=30),
                             hint="munged must run on every node with the same key; see `minihpc logs NODE`")


def scheduler_installed(paths: Paths) -> bool:
    """The scheduler exists once its daemon and sinfo are in the tree the images were built from."""
    return ((paths.root / "orchestrator" / "scheduler" / "daemon.py").exists()
            and (paths.root / "orchestrator" / "commands" / "sinfo.py").exists())


def parse_sinfo_nodes(output: str) -> dict[str, str]:
    """``sinfo -h -N -o "%N %t"`` -> {node: state} (a node in several partitions appears once)."""
    states: dict[str, str] = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 2:
            states[parts[0]] = parts[1]
    return states


class WaitScheduler:
    title = "Waiting for compute nodes to register"

    def execute(self, ctx: Context) -> None:
        if not scheduler_installed(ctx.paths):
            ctx.notes.append("scheduler not installed yet: skipped the node registration check")
            return
        deadline = time.monotonic() + ctx.timeout
        for c in ctx.config.clusters:
            wanted = {n.name for n in c.nodes}
            last = ""

            def check(login: str = c.login_hostname, wanted: set[str] = wanted) -> str | None:
                nonlocal last
                r = ctx.provider.exec(login, ["sinfo", "-h", "-N", "-o", "%N %t"])
                last = r.output.strip()
                if not r.ok:
                    return f"sinfo exited with status {r.exit_code}"
                states = parse_sinfo_nodes(r.output)
                waiting = sorted(n for n in wanted if states.get(n) not in REGISTERED_STATES)
                return f"not registered yet: {', '.join(waiting)}" if waiting else None

            problem = _poll(deadline, check, interval=0.25)
            if problem:
                raise StepFailed(self.title, f"cluster {c.name}: {problem} (after {ctx.timeout:.0f}s)",
                                 output=f"$ sinfo -h -N -o '%N %t'  (on {c.login_hostname})\n{last}\n\n"
                                        + ctx.provider.logs(c.controller_hostname, tail=30),
                                 hint=f"see `minihpc logs {c.controller_hostname}` and the compute nodes' logs; "
                                      "MINIHPC_UP_TIMEOUT=SECONDS waits longer")


class WaitMungeAndScheduler:
    """Both checks at once: they are independent, and on 2 cores waiting in turn costs seconds."""

    title = "Checking munge and node registration"

    def execute(self, ctx: Context) -> None:
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = [pool.submit(WaitMunge().execute, ctx), pool.submit(WaitScheduler().execute, ctx)]
            for f in futures:
                f.result()  # the first failure (munge first) is the one reported


def up_actions() -> list[Action]:
    return [CheckEnvironment(), PrepareKeys(), EnsureImages(), StartContainers(), WaitSSH(),
            WaitMungeAndScheduler()]


# ---------------------------------------------------------------------------- whole operations


def save_logs(ctx_provider: Any, paths: Paths, names: Sequence[str], reason: str) -> str:
    """Keep every container's log under .minihpc/logs/<time>-<reason>/ (before they are removed)."""
    d = paths.logs / f"{time.strftime('%Y%m%d-%H%M%S')}-{reason}"
    d.mkdir(parents=True, exist_ok=True)
    for name in names:
        try:
            (d / f"{name}.log").write_text(ctx_provider.logs(name))
        except Exception as exc:  # a log we cannot read must not hide the real failure
            (d / f"{name}.log").write_text(f"(could not read the log: {exc})\n")
    return str(d)


def up(ctx: Context, actions: Sequence[Action] | None = None) -> None:
    """Run the pipeline; on failure remove what was started unless ``ctx.retain``."""
    for action in actions if actions is not None else up_actions():
        try:
            with ctx.status.step(action.title):
                action.execute(ctx)
        except AlreadyUp:
            raise
        except MinihpcError as exc:
            _cleanup_after_failure(ctx, exc)
            raise
        except Exception as exc:
            err = StepFailed(action.title, f"{type(exc).__name__}: {exc}",
                             hint="run `minihpc -v up` for the full trace")
            _cleanup_after_failure(ctx, err)
            raise err from exc


def _cleanup_after_failure(ctx: Context, exc: MinihpcError) -> None:
    if not ctx.started:
        return
    names = list(ctx.created)
    where = save_logs(ctx.provider, ctx.paths, names, "up-failed")
    if ctx.retain:
        exc.hint = (exc.hint + "; " if exc.hint else "") + f"the cluster was kept (--retain); logs in {where}"
        return
    ctx.provider.remove_containers(names)
    exc.hint = (exc.hint + "; " if exc.hint else "") + (
        f"the half-made cluster was removed (logs kept in {where}); `minihpc up --retain` keeps it")


def down(provider: Any, status: Status, clusters: Sequence[str] | None = None) -> list[ContainerInfo]:
    """Remove containers (all minihpc ones, or those of ``clusters``); keep networks and volumes.

    The networks stay, like the volumes, for the next ``up`` (``clean`` removes them): the
    engine releases a removed container's endpoints seconds later, so removing the networks
    would make every ``down`` wait ~4 s for it."""
    existing = [c for c in provider.containers() if not clusters or c.cluster in clusters]
    with status.step(f"Removing {len(existing)} containers"):
        provider.remove_containers([c.name for c in existing])
    return existing
