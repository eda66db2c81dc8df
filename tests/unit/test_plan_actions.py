"""The bring-up pipeline against a fake provider: order, readiness checks, failure cleanup."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cluster import actions
from orchestrator.cluster.config import load
from orchestrator.cluster.errors import EnvironmentProblem, StepFailed
from orchestrator.cluster.paths import Paths
from orchestrator.cluster.plan import NodePlan, make_plan
from orchestrator.cluster.provider import ContainerInfo, ExecResult
from orchestrator.cluster.status import Status


class FakeProvider:
    """Records calls; ``exec`` answers from ``replies`` (node -> function of argv)."""

    def __init__(self) -> None:
        self.running: dict[str, ContainerInfo] = {}
        self.calls: list[str] = []
        self.fail_exec: set[str] = set()
        self.sinfo = ""

    def containers(self) -> list[ContainerInfo]:
        return list(self.running.values())

    def ensure_network(self, name: str) -> None:
        self.calls.append(f"network {name}")

    def ensure_volume(self, name: str) -> None:
        self.calls.append(f"volume {name}")

    def start_nodes(self, nodes: Sequence[NodePlan], images: dict[str, str]) -> list[str]:
        for n in nodes:
            self.running[n.name] = ContainerInfo(n.name, n.cluster, n.role, "running", images[n.role],
                                                 n.labels["minihpc.config"])
        self.calls.append(f"start {len(nodes)}")
        return [n.name for n in nodes]

    def remove_containers(self, names: Sequence[str]) -> None:
        for n in names:
            self.running.pop(n, None)
        self.calls.append(f"remove {len(names)}")

    def exec(self, name: str, cmd: Sequence[str], user: str | None = None) -> ExecResult:
        if name in self.fail_exec:
            return ExecResult(1, "unmunge: Error: Invalid credential")
        if cmd[0] == "sinfo":
            return ExecResult(0, self.sinfo)
        if "munge -n" in " ".join(cmd):
            return ExecResult(0, "MUNGE:AbCd==:\n")
        return ExecResult(0, "STATUS: Success (0)\n")

    def logs(self, name: str, tail: int | str = "all") -> str:
        return f"log of {name}\n"

    def addresses(self, name: str) -> dict[str, str]:
        return {"minihpc-shared": "10.9.0.1"} if name in self.running else {}

    def port_user(self, port: int) -> str | None:
        return None


@pytest.fixture
def ctx(tmp_path: Path) -> actions.Context:
    config = load(None)
    paths = Paths(Path(__file__).parents[2], tmp_path / ".minihpc")
    ctx = actions.Context(config, "text", paths, FakeProvider(), Status(io.StringIO()), timeout=0.3)
    ctx.images = {"login": "l", "controller": "c", "compute": "n"}
    return ctx


STEPS = [actions.StartContainers(), actions.WaitMunge()]


def test_pipeline_starts_everything_and_checks_munge(ctx: actions.Context) -> None:
    actions.up(ctx, STEPS)
    fake: Any = ctx.provider
    assert len(fake.running) == 13
    assert fake.calls[-1] == "start 13"
    assert "network minihpc-shared" in fake.calls and "volume minihpc-home" in fake.calls
    # the controllers' addresses, once they run, for the commands (no name lookup per command)
    view = json.loads((ctx.paths.run / "arc" / "slurm.json").read_text())
    assert view["clusters"]["htc"]["addr"] == "10.9.0.1" and "addr" not in view["clusters"]["arc"]
    out = ctx.status.stream.getvalue()  # type: ignore[attr-defined]
    assert " ✓ Starting containers (" in out or " + Starting containers (" in out


def test_failure_removes_the_half_made_cluster_and_keeps_logs(ctx: actions.Context) -> None:
    fake: Any = ctx.provider
    fake.fail_exec = {"htc-c002"}
    with pytest.raises(StepFailed) as err:
        actions.up(ctx, STEPS)
    assert err.value.step == "Checking munge on every node"
    assert "htc-c002" in err.value.message and "Invalid credential" in err.value.output
    assert "removed" in err.value.hint and "--retain" in err.value.hint
    assert fake.running == {}
    logs = list((ctx.paths.logs).glob("*-up-failed/htc-c002.log"))
    assert logs and logs[0].read_text() == "log of htc-c002\n"


def test_retain_keeps_the_half_made_cluster(ctx: actions.Context) -> None:
    fake: Any = ctx.provider
    fake.fail_exec = {"arc-c001"}
    ctx.retain = True
    with pytest.raises(StepFailed) as err:
        actions.up(ctx, STEPS)
    assert len(fake.running) == 13
    assert "kept" in err.value.hint


def test_unexpected_exception_becomes_a_step_failure(ctx: actions.Context) -> None:
    class Boom:
        title = "Exploding"

        def execute(self, ctx: actions.Context) -> None:
            raise ValueError("bad thing")

    with pytest.raises(StepFailed, match="ValueError: bad thing") as err:
        actions.up(ctx, [Boom()])
    assert err.value.step == "Exploding"


def test_scheduler_wait_until_every_node_is_idle(ctx: actions.Context, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(actions, "scheduler_installed", lambda paths: True)
    fake: Any = ctx.provider
    all_nodes = [n.name for c in ctx.config.clusters for n in c.nodes]
    fake.sinfo = "".join(f"{n} idle\n" for n in all_nodes)
    actions.WaitScheduler().execute(ctx)
    fake.sinfo = "".join(f"{n} {'down*' if n == 'htc-g002' else 'idle'}\n" for n in all_nodes)
    with pytest.raises(StepFailed, match="htc-g002"):
        actions.WaitScheduler().execute(ctx)


def test_scheduler_wait_skipped_before_the_scheduler_exists(ctx: actions.Context,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(actions, "scheduler_installed", lambda paths: False)
    actions.WaitScheduler().execute(ctx)
    assert any("skipped" in n for n in ctx.notes)


def test_munge_and_registration_checked_together(ctx: actions.Context, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(actions, "scheduler_installed", lambda paths: True)
    fake: Any = ctx.provider
    fake.sinfo = "".join(f"{n.name} idle\n" for c in ctx.config.clusters for n in c.nodes)
    actions.up(ctx, [actions.StartContainers(), actions.WaitMungeAndScheduler()])
    fake.fail_exec = {"arc-c003"}
    with pytest.raises(StepFailed, match="arc-c003") as err:
        actions.WaitMungeAndScheduler().execute(ctx)
    assert "munge" in err.value.message or "decode" in err.value.message
    assert [type(a).__name__ for a in actions.up_actions()][-1] == "WaitMungeAndScheduler"


def test_parse_sinfo_nodes() -> None:
    out = "arc-c001 idle\narc-c001 idle\narc-c002 mix\n\ngarbage line here\n"
    assert actions.parse_sinfo_nodes(out) == {"arc-c001": "idle", "arc-c002": "mix"}


class EnvProvider(FakeProvider):
    """Adds what CheckEnvironment needs: an engine with the images already there."""

    class _Images:
        def get(self, tag: str) -> object:
            return object()

    class _Client:
        def __init__(self) -> None:
            self.images = EnvProvider._Images()

    def __init__(self, root: str) -> None:
        super().__init__()
        self.client = self._Client()
        self.root = root

    def info(self) -> dict[str, str]:
        return {"DockerRootDir": self.root}


def _wanted(ctx: actions.Context) -> dict[str, str]:
    from orchestrator.cluster.images import ImageBuilder

    tags = ImageBuilder(ctx.provider.client, ctx.paths, lambda _: None).wanted_tags()
    assert tags is not None
    return tags


def test_running_cluster_is_left_alone(ctx: actions.Context) -> None:
    fake = EnvProvider(str(ctx.paths.root))
    ctx.provider = fake
    plan = ctx.require_plan()
    fake.start_nodes(plan.nodes, _wanted(ctx))
    with pytest.raises(actions.AlreadyUp):
        actions.CheckEnvironment().execute(ctx)


def test_running_cluster_on_older_images_says_how_to_restart_it(ctx: actions.Context) -> None:
    fake = EnvProvider(str(ctx.paths.root))
    ctx.provider = fake
    plan = ctx.require_plan()
    fake.start_nodes(plan.nodes, ctx.images)
    with pytest.raises(EnvironmentProblem, match="images older than this checkout") as err:
        actions.CheckEnvironment().execute(ctx)
    assert "make down" in err.value.hint and "kept" in err.value.hint
    assert len(fake.running) == len(plan.nodes), "nothing is removed"


def test_partly_running_cluster_is_refused_not_removed(ctx: actions.Context) -> None:
    fake = EnvProvider(str(ctx.paths.root))
    ctx.provider = fake
    plan = ctx.require_plan()
    fake.start_nodes(plan.nodes[:3], ctx.images)
    with pytest.raises(EnvironmentProblem, match="partly there; missing: arc-c002") as err:
        actions.CheckEnvironment().execute(ctx)
    assert "minihpc down" in err.value.hint
    assert len(fake.running) == 3, "someone else's containers are never removed by up"


def test_cleanup_removes_only_what_this_run_created(ctx: actions.Context) -> None:
    fake: Any = ctx.provider
    fake.running["arc-login"] = ContainerInfo("arc-login", "arc", "login", "running", "x", "other")

    class HalfStart:
        title = "Starting containers"

        def execute(self, ctx: actions.Context) -> None:
            ctx.started = True
            ctx.created = ["arc-c001"]
            fake.running["arc-c001"] = ContainerInfo("arc-c001", "arc", "compute", "running", "x", "abc")
            raise StepFailed(self.title, "name conflict")

    with pytest.raises(StepFailed):
        actions.up(ctx, [HalfStart()])
    assert set(fake.running) == {"arc-login"}


def test_cluster_of_another_checkout_is_refused(ctx: actions.Context) -> None:
    fake = EnvProvider(str(ctx.paths.root))
    ctx.provider = fake
    fake.running["arc-login"] = ContainerInfo("arc-login", "arc", "login", "running", "x", "abc",
                                              labels={"minihpc.state": "/elsewhere/.minihpc"})
    with pytest.raises(EnvironmentProblem, match=r"another checkout .*/elsewhere/\.minihpc"):
        actions.CheckEnvironment().execute(ctx)


def test_cluster_from_another_config_is_refused(ctx: actions.Context) -> None:
    fake = EnvProvider(str(ctx.paths.root))
    ctx.provider = fake
    other = make_plan(load(Path(__file__).parents[2] / "examples" / "quick.yaml"), "/x", "other")
    fake.start_nodes(other.nodes, ctx.images)
    with pytest.raises(EnvironmentProblem, match="different config"):
        actions.CheckEnvironment().execute(ctx)


def test_busy_port_is_named_with_a_fix(ctx: actions.Context, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx.provider = EnvProvider(str(ctx.paths.root))
    monkeypatch.setattr(actions, "port_free", lambda port: port != 2223)
    with pytest.raises(EnvironmentProblem) as err:
        actions.CheckEnvironment().execute(ctx)
    assert "Port 2223" in err.value.message and "htc-login" in err.value.message
    assert "clusters[1].login.ssh_port" in err.value.hint


def test_low_disk_is_refused(ctx: actions.Context, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx.provider = EnvProvider(str(ctx.paths.root))
    monkeypatch.setattr(actions, "port_free", lambda port: True)

    class Usage:
        free = 100 * 1024**2

    monkeypatch.setattr(actions.shutil, "disk_usage", lambda path: Usage())
    with pytest.raises(EnvironmentProblem, match=r"Not enough disk space: 0\.1 GB free"):
        actions.CheckEnvironment().execute(ctx)
