"""Cluster tests run against real containers; this brings them up when needed.

- If the test config's cluster (``MINIHPC_TEST_CONFIG``, default: the built-in config) is
  already running, the tests use it and leave it running.
- Otherwise the session runs ``minihpc up`` first and ``minihpc down`` at the end (set
  ``MINIHPC_KEEP_CLUSTER=1`` to keep it), then removes the networks and volumes that its ``up``
  created. Only what the session started is torn down: volumes that were there before (a
  user's homes and job state) stay, and so do the images, a build cache like ``make up``'s.
- When a cluster test fails, every container's log is kept under ``.minihpc/logs/``.
- Under CI (``CI`` set) a cluster left running from another checkout is taken down first.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
from clusterlib import TEST_CONFIG, ClusterUnderTest, load_test_config

from orchestrator.cluster.paths import Paths
from orchestrator.cluster.plan import LABEL_STATE, Plan, make_plan


def _all_running(provider: object, plan: Plan) -> bool:
    running = {c.name for c in provider.containers() if c.state == "running"}  # type: ignore[attr-defined]
    return {n.name for n in plan.nodes} <= running


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[ClusterUnderTest]:
    from orchestrator import cli
    from orchestrator.cluster.actions import down, save_logs
    from orchestrator.cluster.errors import MinihpcError
    from orchestrator.cluster.provider import DockerProvider
    from orchestrator.cluster.status import Status

    try:
        provider = DockerProvider()
    except MinihpcError as exc:
        pytest.fail(f"cluster tests need Docker: {exc.message} {exc.hint}", pytrace=False)
    config = load_test_config()
    paths = Paths.default()
    plan = make_plan(config, str(paths.run))
    others = {c.labels.get(LABEL_STATE) or "(unknown)" for c in provider.containers()} - {str(paths.state)}
    if others and os.environ.get("CI"):
        # CI runs in a fresh clone: a cluster left by someone else cannot be ours (its keys are elsewhere)
        down(provider, Status(sys.stderr))
    elif others - {"(unknown)"}:
        pytest.fail(f"a minihpc cluster from another checkout is running (keys in {', '.join(sorted(others))}); "
                    "run `minihpc down` there first", pytrace=False)
    started = False
    volumes, networks = set(provider.volumes()), set(provider.networks())
    if not _all_running(provider, plan):
        capture = request.config.pluginmanager.getplugin("capturemanager")
        with capture.global_and_fixture_disabled():  # show the progress lines
            print("\ncluster tests: no running cluster, bringing one up", file=sys.stderr)
            argv = ["up"] + (["--config", TEST_CONFIG] if TEST_CONFIG else [])
            if cli.main(argv) != 0:
                pytest.fail("`minihpc up` failed (see above); cluster tests cannot run", pytrace=False)
        started = True
    yield ClusterUnderTest(config, plan, paths, started)
    if request.session.testsfailed:
        names = [c.name for c in provider.containers()]
        where = save_logs(provider, paths, names, "cluster-tests-failed")
        print(f"\ncluster tests failed: container logs kept in {where}", file=sys.stderr)
    if started and os.environ.get("MINIHPC_KEEP_CLUSTER") != "1":
        down(provider, Status(sys.stderr))
        provider.remove_networks([n for n in provider.networks() if n not in networks])
        provider.remove_volumes([v for v in provider.volumes() if v not in volumes])


@pytest.fixture(autouse=True)
def _cluster_is_up(cluster: ClusterUnderTest) -> None:
    """Every cluster test needs the cluster, whether or not it asks for the fixture."""
