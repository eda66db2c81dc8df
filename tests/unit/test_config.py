"""The versioned config: valid-*.yaml load, invalid-*.yaml are refused with a precise message.

Each invalid fixture's first line is ``# error: <text>``: the message must name the file
and contain that text (key path, bad value and what is allowed).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.cluster.config import API_VERSION, ConfigError, load, parse
from orchestrator.slurm.timefmt import INFINITE

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parents[2]
VALID = sorted(FIXTURES.glob("valid-*.yaml"))
INVALID = sorted(FIXTURES.glob("invalid-*.yaml"))


def test_fixtures_exist() -> None:
    assert len(VALID) >= 2 and len(INVALID) >= 15


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_fixture_loads(path: Path) -> None:
    config = load(path)
    assert config.source == str(path)
    assert config.clusters and config.users and config.projects
    for c in config.clusters:
        assert c.default_partition is not None


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_fixture_is_refused(path: Path) -> None:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# error: "), f"{path.name} must start with '# error: ...'"
    expected = first.removeprefix("# error: ")
    with pytest.raises(ConfigError) as err:
        load(path)
    message = str(err.value)
    assert message.startswith(str(path)), message
    assert expected in message


def test_default_models_the_seed() -> None:
    config = load(None)
    assert config.source.startswith("default.yaml")
    arc, htc = config.cluster("arc"), config.cluster("htc")
    assert (arc.login_hostname, arc.ssh_port) == ("arc-login", 2222)
    assert (htc.login_hostname, htc.ssh_port) == ("htc-login", 2223)
    assert [n.name for n in arc.nodes] == ["arc-c001", "arc-c002", "arc-c003", "arc-c004"]
    assert all(n.cpus == 48 and n.memory_mb >= 380 * 1000 for n in arc.nodes)
    parts = {p.name: p for p in arc.partitions}
    assert set(parts) == {"short", "medium", "long", "devel", "interactive"}
    assert arc.default_partition is not None and arc.default_partition.name == "short"
    assert (parts["short"].default_time, parts["short"].max_time) == (60, 12 * 60)
    assert (parts["medium"].default_time, parts["medium"].max_time) == (12 * 60, 2 * 24 * 60)
    assert (parts["long"].default_time, parts["long"].max_time) == (24 * 60, INFINITE)
    assert parts["devel"].max_time == 10 and len(parts["devel"].nodes) == 2
    assert parts["interactive"].max_time == 24 * 60 and parts["interactive"].oversubscribe > 0
    gpus = [n for n in htc.nodes if n.gres]
    assert len(gpus) == 2
    assert {g.type for n in gpus for g in n.gres} == {"v100", "a100"}
    for n in gpus:
        keys = {f.split(":")[0] for f in n.features}
        assert {"gpu_sku", "gpu_gen", "gpu_cc", "gpu_mem", "nvlink"} <= keys
    assert len([n for n in htc.nodes if not n.gres and n.memory_mb < 1000 * 1024]) == 2
    assert any(n.memory_mb >= 3000 * 1024 for n in htc.nodes)
    assert {u.name for u in config.users} == {"alice", "bob", "carol"}
    assert all(p.credits_hours > 0 and p.data_quota > 0 for p in config.projects)


def test_quick_example_is_one_cluster_two_nodes() -> None:
    config = load(ROOT / "examples" / "quick.yaml")
    assert len(config.clusters) == 1
    assert len(config.clusters[0].nodes) == 2


def test_unreadable_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"nope.yaml: cannot read the file"):
        load(missing)


def test_yaml_error_gives_the_line() -> None:
    with pytest.raises(ConfigError, match=r"line \d+, column \d+"):
        load(FIXTURES / "invalid-yaml.yaml")


def test_parse_rejects_a_non_mapping() -> None:
    with pytest.raises(ConfigError, match="expected a mapping"):
        parse(["not", "a", "mapping"], "list.yaml")


def test_hostnames_unique_across_clusters() -> None:
    raw = {
        "apiVersion": API_VERSION, "kind": "Cluster",
        "projects": [{"name": "p", "gid": 20000}],
        "users": [{"name": "u", "uid": 10000, "projects": ["p"]}],
        "clusters": [
            {"name": "a", "login": {"ssh_port": 2000}, "nodes": [{"names": "n1", "cpus": 1, "memory": 100}],
             "partitions": [{"name": "p"}]},
            {"name": "b", "login": {"ssh_port": 2001}, "nodes": [{"names": "n1", "cpus": 1, "memory": 100}],
             "partitions": [{"name": "p"}]},
        ],
    }
    with pytest.raises(ConfigError, match="hostname 'n1' is used twice"):
        parse(raw, "dup.yaml")
