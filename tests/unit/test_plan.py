"""Planning the containers from the config, with no Docker: names, roles, networks, mounts, labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.cluster.config import load
from orchestrator.cluster.plan import (
    CONF_DIR,
    LABEL_CLUSTER,
    LABEL_CONFIG,
    LABEL_MANAGED,
    LABEL_ROLE,
    SHARED_NETWORK,
    Plan,
    config_hash,
    make_plan,
)

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def plan() -> Plan:
    return make_plan(load(None), "/run-dir", "abc")


def test_default_has_thirteen_containers(plan: Plan) -> None:
    assert len(plan.nodes) == 13
    assert [n.name for n in plan.cluster_nodes("arc")] == [
        "arc-login", "arc-controller", "arc-c001", "arc-c002", "arc-c003", "arc-c004"]
    assert {n.name for n in plan.role_nodes("compute") if n.cluster == "htc"} == {
        "htc-c001", "htc-c002", "htc-g001", "htc-g002", "htc-h001"}


def test_labels_find_every_container(plan: Plan) -> None:
    for n in plan.nodes:
        assert n.labels[LABEL_CLUSTER] == n.cluster
        assert n.labels[LABEL_ROLE] == n.role
        assert n.labels[LABEL_CONFIG] == "abc"
        assert n.labels[LABEL_MANAGED] == "true"
        assert n.hostname == n.name
        assert n.environment == {"MINIHPC_ROLE": n.role}


def test_networks_private_per_cluster_and_shared_for_logins_and_controllers(plan: Plan) -> None:
    assert set(plan.networks) == {"minihpc-arc", "minihpc-htc", SHARED_NETWORK}
    for n in plan.nodes:
        assert n.networks[0] == f"minihpc-{n.cluster}"
        assert (SHARED_NETWORK in n.networks) == (n.role in ("login", "controller"))


def test_only_logins_publish_ssh_on_loopback(plan: Plan) -> None:
    published = {n.name: n.ports for n in plan.nodes if n.ports}
    assert published == {"arc-login": ((22, 2222),), "htc-login": ((22, 2223),)}


def test_shared_volumes_on_every_node_state_on_controllers_tmp_on_computes(plan: Plan) -> None:
    for n in plan.nodes:
        by_target = {m.target: m for m in n.mounts}
        for target, vol in (("/home", "minihpc-home"), ("/data", "minihpc-data"), ("/scratch", "minihpc-scratch")):
            assert by_target[target].type == "volume" and by_target[target].source == vol
        conf = by_target[CONF_DIR]
        assert conf.type == "bind" and conf.read_only and conf.source == f"/run-dir/{n.cluster}"
        assert ("/var/lib/minihpc" in by_target) == (n.role == "controller")
        if n.role == "controller":
            assert by_target["/var/lib/minihpc"].source == f"minihpc-{n.cluster}-state"
        assert (by_target.get("/tmp") is not None and by_target["/tmp"].type == "tmpfs") == (n.role == "compute")
    assert set(plan.volumes) == {"minihpc-home", "minihpc-data", "minihpc-scratch", "minihpc-arc-state",
                                 "minihpc-htc-state"}


def test_state_label_names_the_checkout() -> None:
    p = make_plan(load(None), "/r", "abc", "/repo/.minihpc")
    assert all(n.labels["minihpc.state"] == "/repo/.minihpc" for n in p.nodes)


def test_quick_example_plans_four_containers() -> None:
    p = make_plan(load(ROOT / "examples" / "quick.yaml"), "/r")
    assert [n.name for n in p.nodes] == ["arc-login", "arc-controller", "arc-c001", "arc-c002"]


def test_config_hash_changes_with_the_text() -> None:
    assert config_hash("a") != config_hash("b")
    assert config_hash("a") == config_hash("a") and len(config_hash("a")) == 12


def test_node_lookup(plan: Plan) -> None:
    assert plan.node("htc-g001").role == "compute"
    with pytest.raises(KeyError):
        plan.node("nope")
