"""``sbatch``: submit a batch script, exactly as Slurm's sbatch reads options and reports.

Order of precedence is Slurm's: ``#SBATCH`` directives, then SBATCH_* input
variables, then the command line. The script (a file, standard input or
``--wrap``) is read and checked here and sent with the request, because the
controller keeps its own copy.
"""

from __future__ import annotations

import os
import sys

from orchestrator.commands._common import Exit, argv0, die, err, error, out, run
from orchestrator.lazylog import get_logger

TYPE_CHECKING = False  # importing typing costs a user command milliseconds
if TYPE_CHECKING:
    from typing import Any

log = get_logger(__name__)

PROG = "sbatch"


def main(argv: list[str] | None = None) -> int:
    return run(PROG, lambda: _main(list(sys.argv[1:] if argv is None else argv)))


def _early(opts: list[tuple[str, str | None]]) -> bool:
    """--help/--usage/--version act as soon as they are read; True if one did."""
    from orchestrator.commands._common import print_help, print_version

    for key, _value in opts:
        if key == "h":
            print_help(PROG)
            return True
        if key == "usage":
            print_help(PROG, "usage")
            return True
        if key == "V":
            print_version()
            return True
    return False


def _main(argv: list[str]) -> int:
    from orchestrator.slurm.options import (
        JobOptions,
        OptionError,
        OptionValueError,
        getopt_long,
        job_longopts,
        job_shortopts,
    )

    longs = job_longopts(PROG)
    shorts = job_shortopts(PROG)
    try:
        cli, positionals = getopt_long(argv0(PROG), argv, shorts, longs)
    except OptionError as exc:
        if _early(exc.parsed):
            return 0
        err(exc.message + "\n")
        err(f'Try "{PROG} --help" for more information\n')
        raise Exit(255) from None
    if _early(cli):
        return 0
    wrap = None
    quiet = False
    for key, value in cli:
        if key == "wrap":
            wrap = value or ""
        elif key == "Q":
            quiet = True
    if positionals and wrap is not None:
        die(PROG, "Script arguments not permitted with --wrap option")

    # the script
    script_path = ""
    if wrap is not None:
        script = f"#!/bin/sh\n# This script was created by sbatch --wrap.\n\n{wrap}\n"
        file_label = "stdin"
    else:
        script_path = _find_script(positionals[0]) if positionals else ""
        script = _read_script(script_path or None)
        file_label = os.path.basename(script_path) if script_path else "stdin"

    opts = JobOptions(command=PROG)
    try:
        # 1. directives
        from orchestrator.slurm.directives import DirectiveError, parse_directives

        try:
            found = parse_directives(script, file_label)
        except DirectiveError as exc:
            err(f"{PROG}: fatal: {exc.message}\n")
            raise Exit(1) from None
        for warning in found.warnings:
            error(PROG, warning)
        if found.args:
            try:
                dopts, rest = getopt_long(PROG, found.args, shorts, longs)
            except OptionError as exc:
                err(exc.message + "\n")
                err(f'Try "{PROG} --help" for more information\n')
                raise Exit(255) from None
            _apply(opts, dopts)
            if rest:
                die(PROG, f"Invalid directive found in batch script: {rest[0]}", 255)
        # 2. input environment variables
        from orchestrator.slurm.options import SBATCH_ENV

        opts.apply_env(os.environ, SBATCH_ENV)
        # 3. the command line
        _apply(opts, cli)
        opts.validate()
    except OptionValueError as exc:
        if exc.exit_code == 0:
            out(exc.message + "\n")
            raise Exit(0) from None
        if exc.fatal:
            err(f"{PROG}: fatal: {exc.message}\n")
        else:
            error(PROG, exc.message)
        raise Exit(exc.exit_code) from None
    opts.quiet = opts.quiet or quiet

    if opts.name is None:
        opts.name = "wrap" if wrap is not None else (os.path.basename(script_path) if script_path else "sbatch")
    try:
        cwd = os.getcwd()
    except OSError as exc:
        die(PROG, f"getcwd failed: {exc.strerror}")
    if opts.verbose:
        from orchestrator.slurm.options import defined_options

        err("".join(f"{PROG}: {line}\n" for line in defined_options(opts, cwd)))
    import _socket  # not socket: its enum and selectors imports cost milliseconds

    job = opts.job(cwd=cwd, submit_host=_socket.gethostname().split(".")[0],
                   command_path=os.path.abspath(script_path) if script_path else "")
    from orchestrator.slurm.options import export_environment

    body: dict[str, Any] = {"job": job, "script": script,
                            "env": export_environment(opts.export, os.environ),
                            "argv": positionals[1:] if positionals else [],
                            "test_only": opts.test_only}
    return _submit(opts, body)


def _apply(opts: Any, parsed: list[tuple[str, str | None]]) -> None:
    early = {"h", "usage", "V", "Q", "wrap"}
    for key, value in parsed:
        if key in early:
            if key == "Q":
                opts.quiet = True
            elif key == "wrap":
                opts.given[key] = value  # shown by -v
            continue
        opts.apply(key, value)


def _find_script(name: str) -> str:
    """Slurm's search_path for the script: as given, else in the current directory, else on PATH."""
    if "/" in name or os.path.exists(name):
        return name
    for d in os.environ.get("PATH", "").split(":"):
        cand = os.path.join(d or ".", name)
        if os.path.isfile(cand) and os.access(cand, os.R_OK):
            return cand
    return name


def _read_script(path: str | None) -> str:
    """Read and check the script as sbatch does; exits with Slurm's messages."""
    try:
        if path is None:
            data = sys.stdin.buffer.read()
        else:
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except IsADirectoryError:
                data = b""
    except OSError:
        die(PROG, f"Unable to open file {path}")
    if not data:
        die(PROG, "Batch script is empty!")
    if not data.strip():
        die(PROG, "Batch script contains only whitespace!")
    if not data.startswith(b"#!"):
        error(PROG, "This does not look like a batch script.  The first")
        error(PROG, "line must start with #! followed by the path to an interpreter.")
        die(PROG, "For instance: #!/bin/sh")
    if b"\0" in data:
        error(PROG, "The Slurm controller does not allow scripts that")
        die(PROG, "contain a NULL character '\\0'.")
    if b"\r\n" in data:
        error(PROG, "Batch script contains DOS line breaks (\\r\\n)")
        die(PROG, "instead of expected UNIX line breaks (\\n).")
    return data.decode("utf-8", "surrogateescape")


def _submit(opts: Any, body: dict[str, Any]) -> int:
    from orchestrator.commands import _common

    RpcError = _common.rpc_error_type()
    clusters: list[str | None] = [None]
    named = False
    if opts.clusters:
        clusters = list(_common.resolve_clusters(PROG, opts.clusters))
        named = True
    try:
        cluster = clusters[0]
        if len(clusters) > 1:
            cluster = _earliest(clusters, body)
        client = _common.make_client(cluster)
        reply = client.call("submit", body)
    except RpcError as exc:
        if exc.err_msg:  # type: ignore[attr-defined]
            error(PROG, exc.err_msg)  # type: ignore[attr-defined]
        if body["test_only"]:
            err(f"allocation failure: {exc.message}\n")  # type: ignore[attr-defined]
            raise Exit(1) from None
        die(PROG, f"Batch job submission failed: {exc.message}")  # type: ignore[attr-defined]
    if body["test_only"]:
        t = reply.get("test_only") or {}
        from orchestrator.slurm.fmtspec import make_time_str

        err(f"{PROG}: Job {t.get('job_id')} to start at {make_time_str(t.get('start_time'), 'Unknown')} "
            f"using {t.get('cpus')} processors on nodes {t.get('nodes')} in partition {t.get('partition')}\n")
        return 0
    job_id = int(reply["job_id"])
    if not opts.quiet:
        cname = cluster or reply.get("cluster") or ""
        if opts.parsable:
            out(f"{job_id};{cname}\n" if named else f"{job_id}\n")
        else:
            out(f"Submitted batch job {job_id} on cluster {cname}\n" if named
                else f"Submitted batch job {job_id}\n")
        sys.stdout.flush()
    if opts.wait:
        return _wait(client, job_id)
    return 0


def _earliest(clusters: list[str | None], body: dict[str, Any]) -> str | None:
    """With ``-M a,b`` Slurm submits where the job would start first."""
    from orchestrator.commands import _common

    RpcError = _common.rpc_error_type()
    best: tuple[float, str | None] | None = None
    for c in clusters:
        try:
            t = _common.make_client(c).call("submit", {**body, "test_only": True}).get("test_only") or {}
        except RpcError:
            continue
        start = float(t.get("start_time") or 0)
        if best is None or start < best[0]:
            best = (start, c)
    return best[1] if best else clusters[0]


def _wait(client: Any, job_id: int) -> int:
    """``--wait``: poll until the job ends; exit with its exit code (128+signal if killed)."""
    import time

    from orchestrator.commands import _common

    RpcError = _common.rpc_error_type()
    finished = {"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL",
                "DEADLINE", "OUT_OF_MEMORY"}
    delay = 0.1
    while True:
        try:
            reply = client.call("jobs", {"fields": ["state", "exit_code", "exit_signal"], "job_ids": [job_id]})
            rows = reply.get("rows") or []
        except RpcError:
            rows = []
        if rows:
            state, code, sig = rows[0]
            if state in finished:
                if sig:
                    return 128 + int(sig)
                return int(code or 0)
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
