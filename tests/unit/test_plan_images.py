"""Image inputs and tags, with no Docker: the package list, what is hashed, what is copied."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path
from typing import Any

import pytest
from scriptload import load_script

from orchestrator.cluster import images
from orchestrator.cluster.paths import Paths

ROOT = Path(__file__).parents[2]
REQUIRED = ["openssh-server", "openssh-client", "munge", "libmunge2", "python3", "python3-yaml", "python3-venv", "lmod", "openmpi-bin", "libopenmpi-dev", "gcc", "g++", "gfortran", "make", "tini", "procps", "iproute2", "iputils-ping", "less", "nano", "passwd", "bash-completion", "ca-certificates", "libopenblas-dev", "libfftw3-dev", "libscalapack-openmpi-dev", "r-base-core", "util-linux"]


def _tree(tmp_path: Path) -> Paths:
    """A small checkout: images/{base,common,node}, orchestrator/ with host and container code."""
    (tmp_path / "images" / "base").mkdir(parents=True)
    (tmp_path / "images" / "base" / "packages.txt").write_text("# comment\ntini\n\npython3  # the runtime\n")
    (tmp_path / "images" / "base" / images.TUNE).write_text("# tune v1\n")
    (tmp_path / "images" / "node").mkdir()
    (tmp_path / "images" / "node" / "Dockerfile").write_text("FROM x\n")
    (tmp_path / "images" / "common" / "opt" / "minihpc" / "bin").mkdir(parents=True)
    ep = tmp_path / "images" / "common" / "opt" / "minihpc" / "bin" / "entrypoint"
    ep.write_text("#!/bin/sh\n")
    ep.chmod(0o755)
    code = tmp_path / "orchestrator"
    (code / "cluster").mkdir(parents=True)
    (code / "__pycache__").mkdir()
    (code / "__init__.py").write_text("")
    (code / "__pycache__" / "x.pyc").write_bytes(b"junk")
    (code / "cluster" / "config.py").write_text("# runs in containers\n")
    (code / "cluster" / "images.py").write_text("# host only\n")
    (code / "cli.py").write_text("# host only\n")
    return Paths(tmp_path, tmp_path / ".minihpc")


def test_package_list_has_what_the_service_needs() -> None:
    pkgs = images.read_packages(ROOT / "images" / "base" / "packages.txt")
    missing = [p for p in REQUIRED if p not in pkgs]
    assert not missing, f"images/base/packages.txt lacks {missing}"
    assert len(pkgs) == len(set(pkgs)), "a package is listed twice"


def test_read_packages_drops_comments(tmp_path: Path) -> None:
    paths = _tree(tmp_path)
    assert images.read_packages(paths.images / "base" / "packages.txt") == ["tini", "python3"]


def test_base_tag_follows_the_package_list_and_method(tmp_path: Path) -> None:
    paths = _tree(tmp_path)
    tag = images.base_tag(paths, "mmdebstrap")
    assert tag.startswith("minihpc/base:mmde-")
    assert images.base_tag(paths, "registry") != tag
    (paths.images / "base" / "packages.txt").write_text("tini\npython3\n# a new comment only\n")
    assert images.base_tag(paths, "mmdebstrap") == tag, "comments must not rebuild the base"
    (paths.images / "base" / "packages.txt").write_text("tini\npython3\nnano\n")
    assert images.base_tag(paths, "mmdebstrap") != tag
    tag = images.base_tag(paths, "mmdebstrap")
    (paths.images / "base" / images.TUNE).write_text("# tune v2\n")
    assert images.base_tag(paths, "mmdebstrap") != tag, "the root file system tuning is part of the base"


def _load_tune() -> Any:
    """images/base/minihpc-tune-rootfs is a script (it runs in the base image), loaded here as a module."""
    return load_script(ROOT / "images" / "base" / images.TUNE, "tune_rootfs")


def test_tune_rootfs_clears_only_group_bits_that_duplicate_the_other_bits(tmp_path: Path) -> None:
    tune = _load_tune()
    uid, gid = os.getuid(), os.getgid()
    modes = {"dir755": 0o755, "file644": 0o644, "file755": 0o755, "file640": 0o640, "file664": 0o664,
             "file600": 0o600, "setuid4755": 0o4755, "setgid2755": 0o2755, "file775": 0o775}
    root = tmp_path / "root"
    root.mkdir()
    for name, mode in modes.items():
        p = root / name
        p.mkdir() if name.startswith("dir") else p.write_text("x")
        p.chmod(mode)
    (root / "link").symlink_to("file640")
    root.chmod(0o755)
    changed = tune.clear_group_bits(str(root), uid, gid)
    got = {name: stat.S_IMODE((root / name).stat().st_mode) for name in modes}
    assert got == {"dir755": 0o705, "file644": 0o604, "file755": 0o705, "file640": 0o640, "file664": 0o664,
                   "file600": 0o600, "setuid4755": 0o4705, "setgid2755": 0o2755, "file775": 0o775}
    assert stat.S_IMODE(root.stat().st_mode) == 0o705, "the top directory itself is walked too"
    assert changed == 5
    assert tune.clear_group_bits(str(root), uid, gid) == 0, "a second run changes nothing"
    assert tune.clear_group_bits(str(root), uid + 1, gid) == 0, "another owner's files are left alone"


def test_context_has_container_code_but_not_host_code_or_caches(tmp_path: Path) -> None:
    paths = _tree(tmp_path)
    names = [n for n, _ in images.context_files(paths)]
    assert "Dockerfile" in names
    assert "stage2/opt/minihpc/bin/entrypoint" in names
    assert "stage2/opt/minihpc/orchestrator/cluster/config.py" in names
    assert "stage1/opt/minihpc/orchestrator/__init__.py" in names
    assert not any(n.endswith(("cluster/images.py", "/cli.py", ".pyc")) for n in names)


def test_node_tag_changes_with_container_code_not_host_code(tmp_path: Path) -> None:
    paths = _tree(tmp_path)
    tag = images.node_tag(paths, "minihpc/base:x")
    assert tag.startswith("minihpc/node:")
    (paths.root / "orchestrator" / "cluster" / "images.py").write_text("# edited host code\n")
    assert images.node_tag(paths, "minihpc/base:x") == tag
    assert images.node_tag(paths, "minihpc/base:y") != tag
    (paths.root / "orchestrator" / "cluster" / "config.py").write_text("# edited\n")
    assert images.node_tag(paths, "minihpc/base:x") != tag


def test_role_tags_are_tags_of_the_node_image() -> None:
    assert images.role_tags("minihpc/node:abc") == {
        "login": "minihpc/login:abc", "controller": "minihpc/controller:abc", "compute": "minihpc/compute:abc"}


def test_build_context_is_a_tar_of_the_hashed_files(tmp_path: Path) -> None:
    paths = _tree(tmp_path)
    with tarfile.open(fileobj=io.BytesIO(images.build_context(paths))) as tar:
        members = {m.name: m for m in tar.getmembers()}
    for name, _ in images.context_files(paths):
        assert name in members
    assert members["stage2/opt/minihpc/bin/entrypoint"].mode == 0o755
    assert members["stage2/opt/minihpc/orchestrator/cluster/config.py"].mode == 0o644
    assert members["Dockerfile"].mtime == 0


def test_debian_sources_honours_the_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINIHPC_DEBIAN_MIRROR", "http://mirror.invalid/debian")
    lines = images.debian_sources()
    assert lines[0] == "deb http://mirror.invalid/debian bookworm main"
    assert lines[1].endswith("bookworm-updates main")


class _FakeImages:
    def __init__(self) -> None:
        self.tags: set[str] = set()

    def get(self, tag: str) -> object:
        import docker.errors

        if tag not in self.tags:
            raise docker.errors.ImageNotFound(tag)
        return self

    def tag(self, repo: str, version: str) -> None:
        self.tags.add(f"{repo}:{version}")


class _FakeAPI:
    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.built: list[str] = []

    def build(self, **kw: object) -> object:
        yield {"stream": "Step 1/2 : FROM base\n"}
        if self.fail:
            yield {"error": "The command '/bin/sh -c false' returned a non-zero code: 1"}
        else:
            self.built.append(str(kw["tag"]))


class _FakeClient:
    def __init__(self, fail: bool) -> None:
        self.images = _FakeImages()
        self.api = _FakeAPI(fail)


def test_failed_build_tags_nothing(tmp_path: Path) -> None:
    from orchestrator.cluster.errors import StepFailed

    paths = _tree(tmp_path)
    client = _FakeClient(fail=True)
    lines: list[str] = []
    builder = images.ImageBuilder(client, paths, lines.append)  # type: ignore[arg-type]
    with pytest.raises(StepFailed) as err:
        builder.ensure_node("minihpc/base:x")
    assert "returned a non-zero code" in err.value.message
    assert "Step 1/2" in err.value.output and "Step 1/2 : FROM base" in lines
    assert client.images.tags == set(), "nothing may be tagged after a failed build"


def test_successful_build_tags_the_roles_and_a_second_run_builds_nothing(tmp_path: Path) -> None:
    paths = _tree(tmp_path)
    client = _FakeClient(fail=False)
    builder = images.ImageBuilder(client, paths, lambda line: None)  # type: ignore[arg-type]
    tag = images.node_tag(paths, "minihpc/base:x")
    client.images.tags.add(tag)  # what a successful docker build leaves
    node, built = builder.ensure_node("minihpc/base:x")
    assert (node, built) == (tag, False)
    assert set(images.role_tags(tag).values()) <= client.images.tags
    assert "minihpc/login:latest" in client.images.tags
    assert client.api.built == []


def _catalogue(paths: Paths) -> None:
    (paths.images / "modules").mkdir(exist_ok=True)
    (paths.images / "modules" / "catalogue.yaml").write_text(
        "groups:\n  core: {packages: [gcc]}\n  octave: {optional: true, packages: [octave]}\n")


def test_optional_modules_change_the_node_tag_and_reach_the_build(tmp_path: Path) -> None:
    paths = _tree(tmp_path)
    _catalogue(paths)
    plain = images.node_tag(paths, "minihpc/base:x")
    with_octave = images.node_tag(paths, "minihpc/base:x", ("octave",))
    assert plain != with_octave
    client = _FakeClient(fail=False)
    builder = images.ImageBuilder(client, paths, lambda line: None, ("octave",))  # type: ignore[arg-type]
    sent: dict[str, object] = {}
    real_build = client.api.build

    def build(**kw: object) -> object:
        sent.update(kw)
        client.images.tags.add(str(kw["tag"]))
        return real_build(**kw)

    client.api.build = build  # type: ignore[method-assign]
    node, built = builder.ensure_node("minihpc/base:x")
    assert (node, built) == (with_octave, True)
    assert sent["buildargs"] == {"BASE": "minihpc/base:x", "MINIHPC_OPTIONAL_MODULES": "octave"}


def test_unknown_optional_group_is_refused_before_building(tmp_path: Path) -> None:
    from orchestrator.cluster.errors import StepFailed

    paths = _tree(tmp_path)
    _catalogue(paths)
    client = _FakeClient(fail=False)
    builder = images.ImageBuilder(client, paths, lambda line: None, ("matlab",))  # type: ignore[arg-type]
    with pytest.raises(StepFailed) as err:
        builder.ensure_node("minihpc/base:x")
    assert "unknown group(s) matlab" in err.value.message and "octave" in err.value.hint
    assert client.api.built == []
