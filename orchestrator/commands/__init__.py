"""The user commands (sbatch, squeue, ...): one launcher, dispatched on the name it was run as.

Every command is a symlink to one launcher that calls ``main()``; the command's
module is imported only then, so each command loads just what it needs and
starts fast. ``python -m orchestrator.commands <name> args...`` runs one too.
"""

from __future__ import annotations

import os
import sys

from orchestrator.lazylog import get_logger

log = get_logger(__name__)

__all__ = ["argv0", "launch", "main"]

argv0 = ""
"""argv[0] exactly as the command was invoked: getopt's messages start with it (``/usr/bin/sbatch: ...``)."""

# name as typed -> module under orchestrator.commands (others: the name with - replaced by _)
_ALIASES = {"nvidia-smi": "nvidia_smi"}


def main(argv: list[str] | None = None) -> int:
    """Run the command named by ``argv[0]`` (default ``sys.argv``); returns its exit status."""
    args = list(sys.argv if argv is None else argv)
    name = os.path.basename(args[0]) if args else ""
    if name in ("__main__.py", "commands", "python", "python3") or name.startswith("python"):
        args = args[1:]
        name = os.path.basename(args[0]) if args else ""
    module = _ALIASES.get(name, name.replace("-", "_"))
    if not module.isidentifier() or module.startswith("_"):
        sys.stderr.write(f"minihpc: unknown command '{name}'\n")
        return 127
    try:  # __import__, not importlib: the importlib package costs a command ~1 ms
        mod = __import__(f"orchestrator.commands.{module}", fromlist=["main"])
    except ModuleNotFoundError as exc:
        if exc.name != f"orchestrator.commands.{module}":
            raise
        sys.stderr.write(f"minihpc: unknown command '{name}'\n")
        return 127
    global argv0
    argv0 = args[0]
    try:
        rc = mod.main(args[1:])
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `squeue | head`: quiet like a C program killed by SIGPIPE
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the interpreter's final flush
        except OSError:
            pass
        return 141
    return int(rc or 0)


def launch() -> None:
    """What the command launchers run: ``main()``, then exit without the interpreter's teardown
    (freeing every module and object costs each command ~2 ms; a command owns no files or
    threads that need it). Standard streams are flushed first; a broken pipe is not reported."""
    rc = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(rc & 0xFF)
