"""compose/docker-compose.yml must match what the generator makes from the built-in config."""

from __future__ import annotations

from pathlib import Path

import yaml

from orchestrator.cluster.compose import generate
from orchestrator.cluster.config import load
from orchestrator.cluster.plan import make_plan

COMPOSE = Path(__file__).parents[2] / "compose" / "docker-compose.yml"


def test_compose_file_in_sync_with_generator() -> None:
    assert COMPOSE.read_text() == generate(load(None)), (
        "compose/docker-compose.yml is stale: run `minihpc compose` (or `make compose`) and commit it")


def test_compose_mirrors_the_plan() -> None:
    config = load(None)
    doc = yaml.safe_load(generate(config))
    plan = make_plan(config, "../.minihpc/run")
    assert list(doc["services"]) == [n.name for n in plan.nodes]
    for n in plan.nodes:
        svc = doc["services"][n.name]
        assert svc["hostname"] == n.name and svc["container_name"] == n.name
        assert svc["image"] == f"minihpc/{n.role}:latest"
        assert svc["networks"] == list(n.networks)
        assert svc["environment"] == {"MINIHPC_ROLE": n.role}
        assert "privileged" not in svc
        if n.role == "login":
            assert svc["ports"][0].startswith("127.0.0.1:")
        else:
            assert "ports" not in svc
    assert set(doc["volumes"]) == set(plan.volumes)
