"""The software catalogue (images/modules/catalogue.yaml): load, validate, model.

The catalogue is the one place that says which modules exist, so it is checked
completely before anything is installed: every problem is reported at once, each with
the file, the line, the key path and the reason, e.g.
``catalogue.yaml:120: modules[11].deps[0]: unknown module 'foss/2022c'``.
Runs during the image build, so it uses only the standard library and PyYAML.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
SYSTEM = "system"

# EasyBuild's module classes (``moduleclass`` in an easyconfig).
MODULE_CLASSES = frozenset(
    [
        "ai",
        "astro",
        "base",
        "bio",
        "cae",
        "chem",
        "compiler",
        "data",
        "debugger",
        "devel",
        "geo",
        "ide",
        "lang",
        "lib",
        "math",
        "mpi",
        "numlib",
        "perf",
        "phys",
        "quantum",
        "system",
        "toolchain",
        "tools",
        "vis",
    ]
)

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.+-]*$")
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
SUFFIX_RE = re.compile(r"^-[A-Za-z0-9_.+-]+$")
PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
COMMAND_RE = re.compile(r"^[A-Za-z0-9_+][A-Za-z0-9_.+-]*$")
ROOT_PLACEHOLDER = "{root}"  # in setenv values: the module's software directory
LUA_CLOSE = "]==]"  # closes the Lua long strings that help()/whatis() are written in

_TOP_KEYS = {"version", "prefix", "groups", "modules"}
_GROUP_KEYS = {"description", "packages", "optional"}
_MODULE_KEYS = {
    "name", "version", "toolchain", "versionsuffix", "group", "moduleclass", "homepage",
    "description", "usage", "deps", "build_deps", "commands_from", "commands", "links", "files",
    "build", "env", "message", "check",
}  # fmt: skip
_REQUIRED_MODULE_KEYS = ("name", "version", "group", "moduleclass", "homepage", "description")
_ENV_KEYS = {"prepend_path", "setenv"}

Path_ = tuple[str | int, ...]


class CatalogueError(ValueError):
    """A catalogue that must not be installed; ``problems`` lists every reason, one a line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Group:
    """A set of Debian packages behind some modules; optional groups are an image layer of their own."""

    name: str
    description: str
    packages: tuple[str, ...]
    optional: bool = False


@dataclass(frozen=True)
class Module:
    """One catalogue entry, i.e. one modulefile and one software directory."""

    name: str
    version: str
    group: str
    moduleclass: str
    homepage: str
    description: str
    toolchain: str = SYSTEM
    versionsuffix: str = ""
    usage: str = ""
    deps: tuple[str, ...] = ()
    build_deps: tuple[str, ...] = ()
    commands_from: tuple[str, ...] = ()
    commands: dict[str, str] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    build: tuple[str, ...] = ()
    prepend_path: dict[str, tuple[str, ...]] = field(default_factory=dict)
    setenv: dict[str, str] = field(default_factory=dict)
    message: str = ""
    check: str = ""

    @property
    def full_version(self) -> str:
        """EasyBuild's module version: version, then -<toolchain name>-<toolchain version>, then suffix."""
        tc = "" if self.toolchain == SYSTEM else "-" + self.toolchain.replace("/", "-", 1)
        return f"{self.version}{tc}{self.versionsuffix}"

    @property
    def full_name(self) -> str:
        """``Name/FullVersion``, what ``module load`` takes."""
        return f"{self.name}/{self.full_version}"

    @property
    def load_deps(self) -> tuple[str, ...]:
        """What the modulefile loads, in order: the toolchain first, as EasyBuild does."""
        first = () if self.toolchain == SYSTEM else (self.toolchain,)
        return first + tuple(d for d in self.deps if d not in first)

    @property
    def env_suffix(self) -> str:
        """The ``EBROOT``/``EBVERSION`` suffix: EasyBuild upper-cases, '-' -> 'MIN', '+' -> 'PLUS', drops '.'."""
        return self.name.replace("-", "min").replace("+", "plus").replace(".", "").upper()


@dataclass(frozen=True)
class Catalogue:
    """A validated catalogue; ``source`` is the file it came from (for messages)."""

    source: str
    prefix: str
    groups: dict[str, Group]
    modules: tuple[Module, ...]

    @property
    def modules_dir(self) -> str:
        return f"{self.prefix}/modules/all"

    @property
    def software_dir(self) -> str:
        return f"{self.prefix}/software"

    def root(self, module: Module) -> str:
        """The software directory of a module (its ``EBROOT``)."""
        return f"{self.software_dir}/{module.name}/{module.full_version}"

    def modulefile(self, module: Module) -> str:
        return f"{self.modules_dir}/{module.name}/{module.full_version}.lua"

    def by_name(self) -> dict[str, Module]:
        return {m.full_name: m for m in self.modules}

    def enabled(self, optional: set[str]) -> tuple[Module, ...]:
        """The modules to install when the optional groups in ``optional`` are switched on."""
        on = {g.name for g in self.groups.values() if not g.optional or g.name in optional}
        return tuple(m for m in self.modules if m.group in on)


# --------------------------------------------------------------------------- YAML positions


def _node_lines(node: yaml.Node, path: Path_, out: dict[Path_, int], dupes: list[tuple[Path_, int]]) -> None:
    """Record the 1-based line of every key path; note duplicate mapping keys (PyYAML keeps the last)."""
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            k = str(key.value)
            if k in seen:
                dupes.append(((*path, k), key.start_mark.line + 1))
            seen.add(k)
            out[(*path, k)] = key.start_mark.line + 1
            _node_lines(value, (*path, k), out, dupes)
            out[(*path, k)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _node_lines(item, (*path, i), out, dupes)


def format_path(path: Path_) -> str:
    """``("modules", 3, "deps", 0)`` -> ``modules[3].deps[0]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + part
    return text


class _Checker:
    """Collects problems with their positions instead of stopping at the first."""

    def __init__(self, source: str, lines: dict[Path_, int]) -> None:
        self.source = source
        self.lines = lines
        self.problems: list[str] = []

    def error(self, path: Path_, reason: str) -> None:
        probe = path
        while probe and probe not in self.lines:
            probe = probe[:-1]
        line = self.lines.get(probe)
        where = f"{self.source}:{line}" if line else self.source
        key = format_path(path)
        self.problems.append(f"{where}: {key}: {reason}" if key else f"{where}: {reason}")

    # typed getters: return a safe default and record the problem when the value is wrong

    def string(
        self,
        value: Any,
        path: Path_,
        *,
        required: bool = False,
        pattern: re.Pattern[str] | None = None,
        what: str = "",
    ) -> str:
        if value is None:
            if required:
                self.error(path, "is required")
            return ""
        if isinstance(value, bool) or not isinstance(value, str):
            hint = (
                f' (quote it: "{value}")'
                if isinstance(value, int | float) and not isinstance(value, bool)
                else ""
            )
            self.error(path, f"must be a string, not {type(value).__name__} {value!r}{hint}")
            return ""
        if not value.strip():
            self.error(path, "must not be empty")
            return ""
        if LUA_CLOSE in value:
            self.error(path, f"must not contain {LUA_CLOSE!r} (it would end the Lua string early)")
            return ""
        if pattern is not None and not pattern.match(value):
            self.error(path, f"{value!r} is not a valid {what or 'value'}")
            return ""
        return value

    def string_list(
        self, value: Any, path: Path_, *, pattern: re.Pattern[str] | None = None, what: str = ""
    ) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.error(path, f"must be a list, not {type(value).__name__}")
            return ()
        out = [
            self.string(v, (*path, i), required=True, pattern=pattern, what=what) for i, v in enumerate(value)
        ]
        return tuple(v for v in out if v)

    def mapping(self, value: Any, path: Path_) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(path, f"must be a mapping, not {type(value).__name__}")
            return {}
        return value

    def known_keys(self, value: dict[str, Any], allowed: set[str], path: Path_) -> None:
        for key in value:
            if key not in allowed:
                self.error((*path, str(key)), f"unknown key (allowed: {', '.join(sorted(allowed))})")


def _relative(path: str) -> bool:
    p = PurePosixPath(path.rstrip("/") or ".")
    return bool(path) and not p.is_absolute() and ".." not in p.parts and path not in (".", "./")


# --------------------------------------------------------------------------- parsing


def _parse_group(ck: _Checker, name: str, raw: Any, path: Path_) -> Group:
    data = ck.mapping(raw, path)
    ck.known_keys(data, _GROUP_KEYS, path)
    if not NAME_RE.match(name):
        ck.error(path, f"{name!r} is not a valid group name")
    optional = data.get("optional", False)
    if not isinstance(optional, bool):
        ck.error((*path, "optional"), f"must be true or false, not {optional!r}")
        optional = False
    return Group(
        name=name,
        description=ck.string(data.get("description"), (*path, "description"), required=True),
        packages=ck.string_list(
            data.get("packages"), (*path, "packages"), pattern=PACKAGE_RE, what="Debian package name"
        ),
        optional=optional,
    )


def _parse_env(ck: _Checker, raw: Any, path: Path_) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    data = ck.mapping(raw, path)
    ck.known_keys(data, _ENV_KEYS, path)
    prepend: dict[str, tuple[str, ...]] = {}
    for var, entries in ck.mapping(data.get("prepend_path"), (*path, "prepend_path")).items():
        vpath = (*path, "prepend_path", str(var))
        if not ENV_RE.match(str(var)):
            ck.error(vpath, f"{var!r} is not a valid environment variable name")
            continue
        if isinstance(entries, str):
            ck.error(vpath, "must be a list of paths, e.g. [bin]")
            continue
        items = ck.string_list(entries, vpath, what="path")
        for i, item in enumerate(items):
            if not item.startswith("/") and not _relative(item):
                ck.error(
                    (*vpath, i), f"{item!r} must be relative to the software directory (no '..') or absolute"
                )
        prepend[str(var)] = items
    setenv: dict[str, str] = {}
    for var, value in ck.mapping(data.get("setenv"), (*path, "setenv")).items():
        vpath = (*path, "setenv", str(var))
        if not ENV_RE.match(str(var)):
            ck.error(vpath, f"{var!r} is not a valid environment variable name")
            continue
        text = ck.string(value, vpath, required=True)
        if "{" in text and not (text == ROOT_PLACEHOLDER or text.startswith(ROOT_PLACEHOLDER + "/")):
            ck.error(
                vpath,
                f"{text!r}: only a leading {ROOT_PLACEHOLDER} (the software directory) may be substituted",
            )
            continue
        setenv[str(var)] = text
    return prepend, setenv


def _parse_links(ck: _Checker, raw: Any, path: Path_, *, target_absolute: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, target in ck.mapping(raw, path).items():
        kpath = (*path, str(key))
        if not _relative(str(key)):
            ck.error(kpath, f"{key!r} must be a path relative to the software directory (no '..')")
            continue
        value = ck.string(target, kpath, required=True)
        if not value:
            continue
        if target_absolute and not all(t.startswith("/") for t in value.split()):
            ck.error(kpath, f"target {value!r} must be an absolute path (or, for a directory, absolute globs)")
            continue
        if target_absolute and not str(key).endswith("/") and len(value.split()) != 1:
            ck.error(kpath, f"target {value!r} must be one path; only a directory key (ending in '/') takes globs")
            continue
        if not target_absolute and not _relative(value):
            ck.error(kpath, f"{value!r} must be a file name under images/modules/files/ (no '..')")
            continue
        out[str(key)] = value
    return out


def _parse_module(ck: _Checker, raw: Any, path: Path_) -> Module | None:
    if not isinstance(raw, dict):
        ck.error(path, f"must be a mapping, not {type(raw).__name__}")
        return None
    ck.known_keys(raw, _MODULE_KEYS, path)
    for key in _REQUIRED_MODULE_KEYS:
        if raw.get(key) is None:
            ck.error((*path, key), "is required")

    def s(key: str, **kw: Any) -> str:
        return ck.string(raw.get(key), (*path, key), **kw)

    commands: dict[str, str] = {}
    for cmd, target in ck.mapping(raw.get("commands"), (*path, "commands")).items():
        cpath = (*path, "commands", str(cmd))
        if not COMMAND_RE.match(str(cmd)):
            ck.error(cpath, f"{cmd!r} is not a valid command name")
            continue
        value = ck.string(target, cpath, required=True)
        if value and not value.startswith("/"):
            ck.error(cpath, f"target {value!r} must be an absolute path")
        elif value:
            commands[str(cmd)] = value

    toolchain = s("toolchain") or SYSTEM
    if toolchain != SYSTEM and toolchain.count("/") != 1:
        ck.error((*path, "toolchain"), f"{toolchain!r} must be 'system' or a module 'Name/Version'")
        toolchain = SYSTEM
    moduleclass = s("moduleclass")
    if moduleclass and moduleclass not in MODULE_CLASSES:
        ck.error(
            (*path, "moduleclass"),
            f"{moduleclass!r} is not an EasyBuild module class ({', '.join(sorted(MODULE_CLASSES))})",
        )
    prepend, setenv = _parse_env(ck, raw.get("env"), (*path, "env"))
    return Module(
        name=s("name", pattern=NAME_RE, what="module name"),
        version=s("version", pattern=VERSION_RE, what="version"),
        toolchain=toolchain,
        versionsuffix=s("versionsuffix", pattern=SUFFIX_RE, what="version suffix (starts with '-')"),
        group=s("group"),
        moduleclass=moduleclass,
        homepage=s("homepage"),
        description=s("description"),
        usage=s("usage"),
        deps=ck.string_list(raw.get("deps"), (*path, "deps")),
        build_deps=ck.string_list(raw.get("build_deps"), (*path, "build_deps")),
        commands_from=ck.string_list(
            raw.get("commands_from"), (*path, "commands_from"), pattern=PACKAGE_RE, what="Debian package name"
        ),
        commands=commands,
        links=_parse_links(ck, raw.get("links"), (*path, "links"), target_absolute=True),
        files=_parse_links(ck, raw.get("files"), (*path, "files"), target_absolute=False),
        build=ck.string_list(raw.get("build"), (*path, "build")),
        prepend_path=prepend,
        setenv=setenv,
        message=s("message"),
        check=s("check"),
    )


def _check_graph(
    ck: _Checker, modules: list[tuple[Path_, Module]], groups: dict[str, Group], files_dir: Path | None
) -> None:
    """Cross-entry checks: unique names, known groups, deps and toolchains that exist, no cycles."""
    index: dict[str, tuple[Path_, Module]] = {}
    for path, m in modules:
        if not (m.name and m.version):
            continue
        if m.full_name in index:
            first = format_path(index[m.full_name][0])
            ck.error(path, f"{m.full_name} is already defined by {first}")
            continue
        index[m.full_name] = (path, m)
    for path, m in modules:
        if m.group and m.group not in groups:
            ck.error((*path, "group"), f"unknown group {m.group!r} (groups: {', '.join(sorted(groups))})")
        refs: list[tuple[Path_, str]] = []
        if m.toolchain != SYSTEM:
            refs.append(((*path, "toolchain"), m.toolchain))
        refs += [((*path, "deps", i), d) for i, d in enumerate(m.deps)]
        refs += [((*path, "build_deps", i), d) for i, d in enumerate(m.build_deps)]
        for rpath, ref in refs:
            if ref == m.full_name:
                ck.error(rpath, f"{m.full_name} cannot depend on itself")
            elif ref not in index:
                ck.error(rpath, f"unknown module {ref!r} (not in the catalogue)")
            elif rpath[-2] != "build_deps":
                dep = index[ref][1]
                g = groups.get(dep.group)
                if g is not None and g.optional and dep.group != m.group:
                    ck.error(
                        rpath,
                        f"{m.full_name} depends on {ref} from optional group {dep.group!r}; "
                        f"put both in the same group",
                    )
        if files_dir is not None:
            for rel, src in m.files.items():
                if not (files_dir / src).is_file():
                    ck.error((*path, "files", rel), f"{src!r} does not exist in {files_dir}")
        if m.build and not m.prepend_path and not m.commands:
            ck.error(
                (*path, "env"),
                "a module that builds software must put something on a path (env.prepend_path)",
            )
    # cycles over load_deps (toolchains included)
    state: dict[str, int] = {}

    def visit(name: str, stack: list[str]) -> None:
        state[name] = 1
        for dep in index[name][1].load_deps:
            if dep not in index:
                continue
            if state.get(dep) == 1:
                cycle = " -> ".join([*stack[stack.index(dep) :], dep]) if dep in stack else f"{name} -> {dep}"
                ck.error(index[name][0], f"dependency cycle: {cycle}")
            elif dep not in state:
                visit(dep, [*stack, dep])
        state[name] = 2

    for name in index:
        if name not in state:
            visit(name, [name])


def parse(text: str, source: str = "catalogue.yaml", files_dir: Path | None = None) -> Catalogue:
    """Validate catalogue text; raises CatalogueError listing every problem."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        reason = getattr(exc, "problem", None) or str(exc)
        raise CatalogueError([f"{where}: invalid YAML: {reason}"]) from None
    lines: dict[Path_, int] = {}
    dupes: list[tuple[Path_, int]] = []
    if node is not None:
        _node_lines(node, (), lines, dupes)
    ck = _Checker(source, lines)
    for dpath, _line in dupes:
        ck.error(dpath, "duplicate key (the earlier value would be silently lost)")
    if not isinstance(raw, dict):
        ck.error((), "must be a mapping with version, prefix, groups and modules")
        raise CatalogueError(ck.problems)
    ck.known_keys(raw, _TOP_KEYS, ())
    if raw.get("version") != SCHEMA_VERSION:
        ck.error(("version",), f"must be {SCHEMA_VERSION}, not {raw.get('version')!r}")
    prefix = ck.string(raw.get("prefix"), ("prefix",), required=True)
    if prefix and (not prefix.startswith("/") or prefix.rstrip("/") != prefix or " " in prefix):
        ck.error(("prefix",), f"{prefix!r} must be an absolute path without a trailing '/' or spaces")
    groups = {
        str(name): _parse_group(ck, str(name), g, ("groups", str(name)))
        for name, g in ck.mapping(raw.get("groups"), ("groups",)).items()
    }
    if not groups:
        ck.error(("groups",), "must define at least one group")
    entries = raw.get("modules")
    parsed: list[tuple[Path_, Module]] = []
    if not isinstance(entries, list) or not entries:
        ck.error(("modules",), "must be a non-empty list")
    else:
        for i, entry in enumerate(entries):
            m = _parse_module(ck, entry, ("modules", i))
            if m is not None:
                parsed.append((("modules", i), m))
    _check_graph(ck, parsed, groups, files_dir)
    if ck.problems:
        raise CatalogueError(ck.problems)
    return Catalogue(source=source, prefix=prefix, groups=groups, modules=tuple(m for _, m in parsed))


def load(path: Path) -> Catalogue:
    """Read and validate a catalogue file; files: entries are looked up in ``files/`` beside it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogueError([f"{path}: cannot read: {exc.strerror}"]) from None
    return parse(text, source=str(path), files_dir=path.parent / "files")
