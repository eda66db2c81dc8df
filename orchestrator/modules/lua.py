"""Render one catalogue entry as an EasyBuild-style Lua modulefile.

The layout follows what EasyBuild 4 writes for Lmod (help sections, whatis lines,
``local root``, guarded ``load()`` of dependencies, ``EBROOT``/``EBVERSION``), so that
``module show`` on minihpc looks like it does on an EasyBuild site. Lmod itself does all
the module logic; this only writes text.
"""

from __future__ import annotations

import logging
import textwrap

from orchestrator.modules.catalogue import ROOT_PLACEHOLDER, Catalogue, Module

log = logging.getLogger(__name__)


def lua_string(value: str) -> str:
    """A double-quoted Lua string literal."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\0", "\\0")
    )
    return f'"{escaped}"'


def _long(value: str) -> str:
    """A Lua long string; the catalogue rejects text containing the closing bracket."""
    return f"[==[{value}]==]"


def _wrap(text: str, width: int = 100) -> str:
    """Re-wrap prose paragraphs; keep indented (example) blocks as written."""
    out: list[str] = []
    for para in text.strip("\n").split("\n\n"):
        lines = para.split("\n")
        if any(line.startswith((" ", "\t")) for line in lines):
            out.append(para.rstrip())
        else:
            out.append(textwrap.fill(" ".join(line.strip() for line in lines), width=width))
    return "\n\n".join(out)


def help_text(module: Module) -> str:
    """The help() body: Description, optional Usage, More information (EasyBuild's sections)."""
    parts = ["", "Description", "===========", _wrap(module.description), ""]
    if module.usage:
        parts += ["", "Usage", "=====", _wrap(module.usage), ""]
    parts += ["", "More information", "================", f" - Homepage: {module.homepage}"]
    return "\n".join(parts) + "\n"


def _path_expr(entry: str) -> str:
    return lua_string(entry) if entry.startswith("/") else f"pathJoin(root, {lua_string(entry)})"


def _value_expr(value: str) -> str:
    """A setenv value; ``{root}`` and ``{root}/sub`` mean the software directory."""
    if value == ROOT_PLACEHOLDER:
        return "root"
    if value.startswith(ROOT_PLACEHOLDER + "/"):
        return f"pathJoin(root, {lua_string(value[len(ROOT_PLACEHOLDER) + 1 :])})"
    return lua_string(value)


def render(catalogue: Catalogue, module: Module) -> str:
    """The complete modulefile text for ``module``."""
    desc_line = " ".join(module.description.split())
    lines = [
        f"help({_long(chr(10) + help_text(module))})",
        "",
        f"whatis({_long('Description: ' + desc_line)})",
        f"whatis({_long('Homepage: ' + module.homepage)})",
        f"whatis({_long('URL: ' + module.homepage)})",
        "",
        f"local root = {lua_string(catalogue.root(module))}",
        "",
    ]
    for dep in module.load_deps:
        lines += [
            f"if not ( isloaded({lua_string(dep)}) ) then",
            f"    load({lua_string(dep)})",
            "end",
            "",
        ]
    for var in sorted(module.prepend_path):
        for entry in module.prepend_path[var]:
            lines.append(f"prepend_path({lua_string(var)}, {_path_expr(entry)})")
    suffix = module.env_suffix
    lines += [
        f'setenv("EBROOT{suffix}", root)',
        f'setenv("EBVERSION{suffix}", {lua_string(module.version)})',
    ]
    for var in sorted(module.setenv):
        lines.append(f"setenv({lua_string(var)}, {_value_expr(module.setenv[var])})")
    if module.message:
        lines += [
            "",
            'if mode() == "load" then',
            f"    LmodMessage({lua_string(' '.join(module.message.split()))})",
            "end",
        ]
    lines += ["", f"-- Built with minihpc's catalogue ({module.group} group)", ""]
    return "\n".join(lines)
