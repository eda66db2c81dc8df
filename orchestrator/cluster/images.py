"""Images with no registry: a Debian base from ``images/base/packages.txt`` and thin role layers.

- The base image is tagged with a hash of the package list and this recipe. Where no
  registry answers (the usual case here), Debian's ``mmdebstrap`` writes a root file
  system tarball that ``docker import`` turns into the image; where one does,
  ``debian:bookworm-slim`` plus ``apt-get install`` of the same list.
- The node image (``images/node/Dockerfile``) adds minihpc on the base with a context
  assembled here, and is tagged with a hash of everything that goes in, so an unchanged
  tree builds nothing. The role images ``minihpc/{login,controller,compute}:<hash>`` are
  tags of it: every build layer costs ~6 s on fuse-overlayfs, so roles differ only in
  the MINIHPC_ROLE variable set when the container is created. ``docker build`` and ``docker import`` tag only on
  success, so a failed build never leaves an image under the final tag.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.cluster.errors import EnvironmentProblem, StepFailed
from orchestrator.cluster.paths import Paths
from orchestrator.cluster.plan import PREFIX, ROLES

if TYPE_CHECKING:
    import docker

log = logging.getLogger(__name__)

RECIPE = "3"  # bump when the base recipe below changes: it is part of the base tag
SUITE = "bookworm"
REGISTRY_BASE = f"debian:{SUITE}-slim"
BASE_REPO = f"{PREFIX}/base"
_SKIP_PARTS = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
_SKIP_SUFFIXES = (".pyc", ".pyo", ".swp", "~")

# Slim the root file system like the -slim images: no manuals, docs or translations.
_DPKG_EXCLUDES = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/info/*",
)
# Keys made by package scripts must not ship in an image: `up` installs the real ones.
_SCRUB = 'rm -f "$1"/etc/ssh/ssh_host_* "$1"/etc/munge/munge.key "$1"/etc/machine-id'
# images/base/minihpc-tune-rootfs: cheap path walks on fuse-overlayfs; the node image runs it too
TUNE = "minihpc-tune-rootfs"
TUNE_DIR = "/usr/local/sbin"
_IMPORT_CHANGES = ['ENV LANG=C.UTF-8', 'CMD ["/bin/bash"]']

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
Emit = Callable[[str], None]


def read_packages(path: Path) -> list[str]:
    """The package names in ``packages.txt`` (comments and blank lines dropped)."""
    names = []
    for line in path.read_text().splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            names.append(name)
    return names


def base_tag(paths: Paths, method: str) -> str:
    pkgs = "\n".join(read_packages(paths.images / "base" / "packages.txt"))
    tune = (paths.images / "base" / TUNE).read_text()
    digest = hashlib.sha256(f"{RECIPE}\n{method}\n{SUITE}\n{pkgs}\n{tune}".encode()).hexdigest()[:12]
    return f"{BASE_REPO}:{method[:4]}-{digest}"


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_PARTS)
        for f in sorted(filenames):
            if not f.endswith(_SKIP_SUFFIXES):
                yield Path(dirpath) / f


# Host-side modules (they drive Docker); they never run inside a container, so editing
# them must not rebuild the image.
HOST_ONLY = frozenset({
    "cli.py", "cluster/actions.py", "cluster/compose.py", "cluster/errors.py", "cluster/images.py",
    "cluster/keys.py", "cluster/paths.py", "cluster/plan.py", "cluster/provider.py", "cluster/render.py",
    "cluster/status.py",
})


def context_files(paths: Paths) -> list[tuple[str, Path]]:
    """(name in the build context, file on disk) for the node image, sorted."""
    files: list[tuple[str, Path]] = [("Dockerfile", paths.images / "node" / "Dockerfile")]
    code = paths.root / "orchestrator"
    modules = paths.images / "modules"
    if modules.is_dir() and os.environ.get("MINIHPC_NO_MODULES") != "1":  # developers: skip the software
        files += [(f"stage1/opt/minihpc/images/modules/{f.relative_to(modules).as_posix()}", f)
                  for f in _walk(modules)]
    files.append(("stage1/opt/minihpc/orchestrator/__init__.py", code / "__init__.py"))
    if (code / "modules").is_dir():
        files += [(f"stage1/opt/minihpc/orchestrator/modules/{f.relative_to(code / 'modules').as_posix()}", f)
                  for f in _walk(code / "modules")]
    common = paths.images / "common"
    files += [(f"stage2/{f.relative_to(common).as_posix()}", f) for f in _walk(common)]
    for f in _walk(code):
        rel = f.relative_to(code).as_posix()
        if rel not in HOST_ONLY:
            files.append((f"stage2/opt/minihpc/orchestrator/{rel}", f))
    return sorted(files)


def optional_groups(paths: Paths) -> list[str]:
    """The module groups a config may switch on (``optional: true`` in the catalogue)."""
    import yaml

    doc = yaml.safe_load((paths.images / "modules" / "catalogue.yaml").read_text()) or {}
    return sorted(name for name, g in (doc.get("groups") or {}).items() if (g or {}).get("optional"))


def node_tag(paths: Paths, base: str, optional: tuple[str, ...] = ()) -> str:
    """``minihpc/node:<hash of the base tag, the optional module groups and every input file>``."""
    h = hashlib.sha256(base.encode())
    if optional:
        h.update(b"\0optional=" + ",".join(optional).encode())
    for name, f in context_files(paths):
        h.update(b"\0" + name.encode() + b"\0" + (b"x" if os.access(f, os.X_OK) else b"-") + b"\0")
        h.update(f.read_bytes())
    return f"{PREFIX}/node:{h.hexdigest()[:12]}"


def role_tags(node: str) -> dict[str, str]:
    """The role images are tags of the node image: ``minihpc/<role>:<same hash>``."""
    version = node.rsplit(":", 1)[1]
    return {role: f"{PREFIX}/{role}:{version}" for role in ROLES}


def build_context(paths: Paths) -> bytes:
    """A tar of exactly the inputs that were hashed (mtimes zeroed, so the build cache holds)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("stage1", "stage2"):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for name, f in context_files(paths):
            info = tarfile.TarInfo(name)
            data = f.read_bytes()
            info.size = len(data)
            info.mode = 0o755 if os.access(f, os.X_OK) else 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _apt_sources() -> list[tuple[str, list[str]]]:
    """(URI, suites) of the host's apt sources, one-line and deb822 styles."""
    out: list[tuple[str, list[str]]] = []
    apt = Path("/etc/apt")
    files = [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.list"))]
    for f in files:
        if not f.is_file():
            continue
        for line in f.read_text(errors="replace").splitlines():
            parts = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
            if len(parts) >= 3 and parts[0] == "deb":
                out.append((parts[1], [parts[2]]))
    for f in sorted((apt / "sources.list.d").glob("*.sources")):
        if not f.is_file():
            continue
        for stanza in re.split(r"\n\s*\n", f.read_text(errors="replace")):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if ":" in line and not line.startswith(("#", " ")):
                    k, _, v = line.partition(":")
                    fields[k.strip().lower()] = v.strip()
            if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
                for uri in fields.get("uris", "").split():
                    out.append((uri, fields.get("suites", "").split()))
    return out


def debian_sources() -> list[str]:
    """Source lines for the base image: the host's Debian mirror for our suite, if it has one.

    With none (not a Debian host), mmdebstrap picks its own default mirror.
    ``MINIHPC_DEBIAN_MIRROR`` overrides the main archive.
    """
    main = os.environ.get("MINIHPC_DEBIAN_MIRROR")
    security = None
    for uri, suites in _apt_sources():
        if any(s.endswith("-security") for s in suites):
            security = security or uri
        elif main is None and "debian" in uri and "security" not in uri:
            main = uri
    if main is None:
        return []
    lines = [f"deb {main} {SUITE} main", f"deb {main} {SUITE}-updates main"]
    if security:
        lines.append(f"deb {security} {SUITE}-security main")
    return lines


@dataclass
class BuildResult:
    tags: dict[str, str]  # role (and "base") -> tag
    built: list[str]


class ImageBuilder:
    """Makes sure the base and role images exist, building only what is missing."""

    def __init__(self, client: docker.DockerClient, paths: Paths, emit: Emit,
                 optional: tuple[str, ...] = ()) -> None:
        self.client = client
        self.paths = paths
        self.emit = emit
        self.optional = optional  # site.optional_modules: extra module groups (e.g. octave)

    # -------------------------------------------------------------- helpers
    def exists(self, tag: str) -> bool:
        import docker.errors

        try:
            self.client.images.get(tag)
            return True
        except docker.errors.ImageNotFound:
            return False

    def _run(self, step: str, args: list[str], hint: str) -> None:
        """Run a host command, streaming its output to ``emit``; keep the tail for the error."""
        self.emit("$ " + " ".join(args))
        lines: list[str] = []
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace")
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            self.emit(line.rstrip("\n"))
        rc = proc.wait()
        if rc != 0:
            raise StepFailed(step, f"`{' '.join(args[:2])} ...` failed with exit status {rc}.",
                             output="\n".join(lines[-40:]), hint=hint)

    def base_method(self) -> str:
        """``registry`` when a registry answers (or the slim image is here), else ``mmdebstrap``."""
        forced = os.environ.get("MINIHPC_BASE_METHOD", "auto")
        if forced in ("mmdebstrap", "registry"):
            return forced
        if self.exists(REGISTRY_BASE):
            return "registry"
        import docker.errors

        try:
            self.emit(f"trying to pull {REGISTRY_BASE}")
            self.client.images.pull(REGISTRY_BASE)
            return "registry"
        except docker.errors.APIError as exc:
            self.emit(f"no registry ({str(exc).splitlines()[0][:200]}): building the base with mmdebstrap")
            return "mmdebstrap"

    # -------------------------------------------------------------- base
    def ensure_base(self) -> tuple[str, bool]:
        """The base image tag, and whether it had to be built."""
        for method in ("mmdebstrap", "registry"):
            if os.environ.get("MINIHPC_BASE_METHOD", method) == method and self.exists(base_tag(self.paths, method)):
                return base_tag(self.paths, method), False
        method = self.base_method()
        tag = base_tag(self.paths, method)
        if method == "registry":
            self._build_base_registry(tag)
        else:
            self._build_base_mmdebstrap(tag)
        return tag, True

    def _ensure_mmdebstrap(self) -> str:
        exe = shutil.which("mmdebstrap")
        if exe:
            return exe
        cmd = "apt-get install -y --no-install-recommends mmdebstrap"
        if os.geteuid() != 0:
            raise EnvironmentProblem(
                "Docker cannot pull images here, so minihpc builds its base image with Debian's mmdebstrap, "
                "which is not installed.",
                hint=f"Install it (sudo {cmd}) and run `make up` again.")
        self.emit("mmdebstrap is missing: installing it with apt-get")
        try:
            subprocess.run(cmd.split(), check=True, capture_output=True, text=True)
        except subprocess.CalledProcessError:
            self._run("Building images", ["apt-get", "update"], "check that the Debian archive is reachable")
            self._run("Building images", cmd.split(), "install mmdebstrap by hand and run again")
        exe = shutil.which("mmdebstrap")
        if not exe:
            raise EnvironmentProblem("mmdebstrap is still missing after installing it.",
                                     hint=f"Run `{cmd}` by hand and look at its output.")
        return exe

    def _build_base_mmdebstrap(self, tag: str) -> None:
        exe = self._ensure_mmdebstrap()
        pkgs = read_packages(self.paths.images / "base" / "packages.txt")
        self.paths.cache.mkdir(parents=True, exist_ok=True)
        tarball = self.paths.cache / f"base-{tag.rsplit(':', 1)[1]}.tar"
        partial = tarball.with_suffix(".tar.partial")
        partial.unlink(missing_ok=True)
        args = [exe, "--variant=apt", f"--include={','.join(pkgs)}", "--format=tar",
                '--aptopt=APT::Install-Recommends "false"',
                *(f"--dpkgopt={o}" for o in _DPKG_EXCLUDES),
                f"--customize-hook={_SCRUB}",
                f"--customize-hook=copy-in {self.paths.images / 'base' / TUNE} {TUNE_DIR}",
                f'--customize-hook=chroot "$1" python3 -I {TUNE_DIR}/{TUNE} /',
                SUITE, str(partial), *debian_sources()]
        try:
            self._run("Building images", args,
                      "mmdebstrap needs the Debian archive (check `apt-get update` works on this host) and root "
                      "(or unprivileged user namespaces); run `minihpc -v up` to see all of its output")
            os.replace(partial, tarball)
            self.emit(f"importing {tarball.name} as {tag}")
            t0 = time.monotonic()
            repo, _, version = tag.rpartition(":")
            self.client.api.import_image_from_file(str(tarball), repository=repo, tag=version,
                                                   changes=_IMPORT_CHANGES)
            self.emit(f"imported in {time.monotonic() - t0:.1f}s")
        finally:
            partial.unlink(missing_ok=True)
            tarball.unlink(missing_ok=True)
        if not self.exists(tag):
            raise StepFailed("Building images", f"docker import did not create {tag}.",
                             hint="run `minihpc -v up` and look at the import output")

    def _build_base_registry(self, tag: str) -> None:
        packages = (self.paths.images / "base" / "packages.txt").read_bytes()
        tune = (self.paths.images / "base" / TUNE).read_bytes()
        dockerfile = (
            f"FROM {REGISTRY_BASE}\n"
            "COPY packages.txt /tmp/packages.txt\n"
            f"COPY {TUNE} {TUNE_DIR}/{TUNE}\n"
            "RUN apt-get update && sed -e 's/#.*//' /tmp/packages.txt | xargs apt-get install -y "
            "--no-install-recommends && rm -rf /var/lib/apt/lists/* /tmp/packages.txt "
            f"/etc/ssh/ssh_host_* /etc/munge/munge.key && python3 -I {TUNE_DIR}/{TUNE} /\n"
            "ENV LANG=C.UTF-8\n"
        ).encode()
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for name, data, mode in (("Dockerfile", dockerfile, 0o644), ("packages.txt", packages, 0o644),
                                     (TUNE, tune, 0o755)):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = mode
                tar.addfile(info, io.BytesIO(data))
        self._docker_build("base", tag, buf.getvalue(), {})

    # -------------------------------------------------------------- roles
    def _docker_build(self, what: str, tag: str, context: bytes, buildargs: dict[str, str]) -> None:
        import docker.errors

        lines: list[str] = []
        error = None
        try:
            stream: Any = self.client.api.build(
                fileobj=io.BytesIO(context), custom_context=True, tag=tag, buildargs=buildargs, rm=True,
                forcerm=True, pull=False, decode=True)
            for chunk in stream:
                text = _ANSI.sub("", chunk.get("stream") or chunk.get("status") or "")
                if text:
                    for line in text.rstrip("\n").splitlines():
                        lines.append(line)
                        self.emit(line)
                if "error" in chunk:
                    error = str(chunk["error"]).strip()
        except docker.errors.APIError as exc:
            error = str(exc)
        if error:
            raise StepFailed("Building images", f"building the {what} image failed: {error}",
                             output="\n".join(lines[-40:]),
                             hint=f"fix the {what} image's inputs (images/, orchestrator/); nothing was tagged {tag}")

    def ensure_node(self, base: str) -> tuple[str, bool]:
        tag = node_tag(self.paths, base, self.optional)
        built = False
        if not self.exists(tag):
            unknown = sorted(set(self.optional) - set(optional_groups(self.paths))) if self.optional else []
            if unknown:
                raise StepFailed("Building images", f"site.optional_modules names unknown group(s) "
                                 f"{', '.join(unknown)}",
                                 hint="the optional groups are: " + (", ".join(optional_groups(self.paths)) or "none")
                                 + " (see images/modules/catalogue.yaml)")
            self.emit(f"building {tag}" + (f" with optional modules {','.join(self.optional)}" if self.optional else ""))
            self._docker_build("node", tag, build_context(self.paths),
                               {"BASE": base, "MINIHPC_OPTIONAL_MODULES": ",".join(self.optional)})
            built = True
        image = self.client.images.get(tag)
        for role_tag in [*role_tags(tag).values(), *(f"{PREFIX}/{r}:latest" for r in ("node", *ROLES))]:
            if role_tag not in image.tags:
                repo, _, version = role_tag.rpartition(":")
                image.tag(repo, version)  # :latest is what compose/docker-compose.yml runs
        return tag, built

    def wanted_tags(self) -> dict[str, str] | None:
        """The tags ``ensure`` would produce, when the base image already exists (else None)."""
        for method in ("mmdebstrap", "registry"):
            tag = base_tag(self.paths, method)
            if self.exists(tag):
                node = node_tag(self.paths, tag, self.optional)
                return {"base": tag, "node": node, **role_tags(node)}
        return None

    def ensure(self) -> BuildResult:
        base, built_base = self.ensure_base()
        node, built_node = self.ensure_node(base)
        result = BuildResult({"base": base, "node": node, **role_tags(node)},
                             [x for x, b in (("base", built_base), ("node", built_node)) if b])
        if result.built:
            self.prune(result.tags)
        return result

    def prune(self, keep: dict[str, str]) -> None:
        """Drop older minihpc images that no container uses, so disk use does not grow per edit."""
        import docker.errors

        used = {c.image.id for c in self.client.containers.list(all=True, filters={"label": "minihpc.managed"})
                if c.image is not None}
        for image in self.client.images.list(name=f"{PREFIX}/*"):
            if image.id in used or any(t in keep.values() for t in image.tags):
                continue
            for t in image.tags:
                if t.endswith(":latest") or not t.startswith(f"{PREFIX}/"):
                    continue
                try:
                    self.client.images.remove(t, noprune=False)
                    self.emit(f"removed old image {t}")
                except docker.errors.APIError as exc:
                    log.debug("could not remove %s: %s", t, exc)
