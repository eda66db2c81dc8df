"""What every user command shares: option parsing with Slurm's errors, help, clusters, users.

Kept free of heavy imports: a command pays only for what it touches. Tests swap
``make_client`` for a fake so commands run without daemons.
"""

from __future__ import annotations

import os
import sys

from orchestrator.lazylog import get_logger

TYPE_CHECKING = False  # importing typing (or collections.abc) costs a user command milliseconds
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any, NoReturn

log = get_logger(__name__)

VERSION_LINE = "slurm 22.05.8"


class Exit(Exception):
    """Leave the command with ``code`` (messages were already printed)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class _LazyClient:
    """Builds the real client on first use, so a missing or bad client configuration is an
    RpcError raised by ``call`` (where every command handles it), not at construction."""

    def __init__(self, cluster: str | None) -> None:
        self.cluster = cluster
        self._client: Any = None

    def call(self, op: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        if self._client is None:
            from orchestrator.scheduler.client import Client

            self._client = Client(self.cluster)
        result: dict[str, Any] = self._client.call(op, body)
        return result


def make_client(cluster: str | None = None) -> Any:
    """A scheduler client for ``cluster`` (None = this host's). Replaced by tests."""
    return _LazyClient(cluster)


def client_config() -> Any:
    """The client view (which cluster this is, which others exist); None if unreadable."""
    from orchestrator.scheduler.client import RpcError, load_client_config

    try:
        return load_client_config()
    except RpcError:
        return None


def rpc_error_type() -> type[Exception]:
    from orchestrator.scheduler.protocol import RpcError

    return RpcError


def argv0(default: str) -> str:
    """The name getopt's messages begin with.

    C programs see argv[0] as typed (``sbatch``); our launcher is a script, so the
    kernel hands it the full path. Users type the bare name, so print that.
    """
    from orchestrator import commands

    return os.path.basename(commands.argv0) or default


def out(text: str) -> None:
    sys.stdout.write(text)


def err(text: str) -> None:
    sys.stderr.write(text)


def error(prog: str, message: str) -> None:
    """Slurm's ``error()``: ``prog: error: message``."""
    sys.stderr.write(f"{prog}: error: {message}\n")


def fatal(prog: str, message: str, code: int = 1) -> NoReturn:
    sys.stderr.write(f"{prog}: fatal: {message}\n")
    raise Exit(code)


def die(prog: str, message: str, code: int = 1) -> NoReturn:
    error(prog, message)
    raise Exit(code)


def getopt(prog: str, argv: Sequence[str], shortopts: str, longopts: Sequence[Any],
           try_help: bool = True, code: int = 1) -> tuple[list[tuple[str, str | None]], list[str]]:
    """getopt_long with Slurm's reaction to a bad option: glibc's line, the ``Try`` hint, exit."""
    from orchestrator.slurm.options import OptionError, getopt_long

    try:
        return getopt_long(argv0(prog), argv, shortopts, longopts)
    except OptionError as exc:
        sys.stderr.write(exc.message + "\n")
        if try_help:
            sys.stderr.write(f'Try "{prog} --help" for more information\n')
        raise Exit(code) from None


def print_help(name: str, which: str = "help") -> None:
    import orchestrator.commands.helptext as helptext

    sys.stdout.write(getattr(helptext, which.upper())[name])


def print_version() -> None:
    sys.stdout.write(VERSION_LINE + "\n")


def run(prog: str, body: Callable[[], int | None]) -> int:
    """Run a command body, turning Exit into an exit status and stdout trouble into silence.

    Users never see a traceback: anything unexpected becomes one ``prog: error:`` line
    (set MINIHPC_DEBUG=1 to get the traceback as well).
    """
    try:
        return int(body() or 0)
    except Exit as exc:
        return exc.code
    except (KeyboardInterrupt, BrokenPipeError):
        raise
    except Exception as exc:  # the last line of defence for users
        if os.environ.get("MINIHPC_DEBUG"):
            import traceback

            traceback.print_exc()
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        sys.stderr.write(f"{prog}: error: {message}\n")
        return 1
    finally:
        try:
            sys.stdout.flush()
        except (BrokenPipeError, OSError):
            try:
                sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the interpreter's final flush
            except OSError:
                pass


# ------------------------------------------------------------------------------------ clusters

def resolve_clusters(prog: str, text: str) -> list[str]:
    """``-M a,b`` / ``-M all`` -> cluster names, refusing unknown ones as Slurm does."""
    cfg = client_config()
    known: list[str] = list(cfg.clusters) if cfg else []
    names = [c.strip() for c in text.split(",") if c.strip()]
    if any(n.lower() == "all" for n in names):
        if not known:
            die(prog, "No clusters can be reached now. Contact your admin to resolve the problem.")
        return known
    bad = [n for n in names if n not in known]
    if bad or not names:
        die(prog, f"'{text}' can't be reached now, or it is an invalid entry for --cluster.  "
                  "Use 'sacctmgr list clusters' to see available clusters.")
    out_names: list[str] = []
    for n in names:
        if n not in out_names:
            out_names.append(n)
    return out_names


def report_clusters(clusters: list[str] | None, noheader: bool, iterate: int, date_line: bool,
                    cluster_column: bool, show: Callable[[str | None, bool], bool]) -> int:
    """squeue/sinfo's report loop: ``CLUSTER: name`` sections for -M, a date line, repeated with -i.

    ``show(cluster, cluster_column)`` prints one report and returns True on error.
    """
    import time

    rc = 0
    while True:
        if date_line:
            from orchestrator.slurm.fmtspec import ctime2

            out(ctime2() + "\n")
        if not clusters:
            rc = 1 if show(None, False) else rc
        else:
            for n, cluster in enumerate(clusters):
                if not noheader:
                    out(("\n" if n else "") + f"CLUSTER: {cluster}\n")
                if show(cluster, cluster_column):
                    rc = 1
        if not iterate:
            return rc
        out("\n")
        sys.stdout.flush()
        time.sleep(iterate)


def local_cluster() -> str:
    cfg = client_config()
    return str(cfg.cluster) if cfg else ""


# ------------------------------------------------------------------------------------ users

_uid_cache: dict[int, str] = {}
_name_cache: dict[str, int | None] = {}
_gid_cache: dict[int, str] = {}


def user_name(uid: int) -> str:
    """uid -> login name (the uid as text when unknown), cached."""
    name = _uid_cache.get(uid)
    if name is None:
        import pwd

        try:
            name = pwd.getpwuid(uid).pw_name
        except (KeyError, OverflowError):
            name = str(uid)
        _uid_cache[uid] = name
    return name


def group_name(gid: int) -> str:
    name = _gid_cache.get(gid)
    if name is None:
        import grp

        try:
            name = grp.getgrgid(gid).gr_name
        except (KeyError, OverflowError):
            name = str(gid)
        _gid_cache[gid] = name
    return name


def group_id(name: str) -> int | None:
    """Group name or numeric gid -> gid; None when there is no such group."""
    import grp

    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return int(name) if name.isdigit() else None


def user_id(name: str) -> int | None:
    """Login name or numeric uid -> uid; None when there is no such user."""
    if name in _name_cache:
        return _name_cache[name]
    import pwd

    uid: int | None
    try:
        uid = pwd.getpwnam(name).pw_uid
    except KeyError:
        uid = int(name) if name.isdigit() else None
    _name_cache[name] = uid
    return uid


def split_list(text: str) -> list[str]:
    """Slurm's comma-separated lists: empty items dropped."""
    return [x for x in text.split(",") if x]


# ------------------------------------------------------------------------------------ errors

ERRNO: dict[str, int] = {
    "SLURM_ERROR": -1, "EINVAL": 22, "SLURM_COMMUNICATIONS_CONNECTION_ERROR": 1001,
    "SLURM_COMMUNICATIONS_RECEIVE_ERROR": 1003, "SLURM_PROTOCOL_AUTHENTICATION_ERROR": 1007,
    "ESLURM_INVALID_PARTITION_NAME": 2000, "ESLURM_DEFAULT_PARTITION_NOT_SET": 2001,
    "ESLURM_ACCESS_DENIED": 2002, "ESLURM_INVALID_NODE_COUNT": 2006, "ESLURM_JOB_SCRIPT_MISSING": 2009,
    "ESLURM_USER_ID_MISSING": 2010, "ESLURM_REQUESTED_NODE_CONFIG_UNAVAILABLE": 2014,
    "ESLURM_INVALID_JOB_ID": 2017, "ESLURM_INVALID_NODE_NAME": 2018, "ESLURM_TRANSITION_STATE_NO_UPDATE": 2020,
    "ESLURM_ALREADY_DONE": 2021, "ESLURM_JOB_PENDING": 2024, "ESLURM_INVALID_NODE_STATE": 2028,
    "ESLURM_INVALID_FEATURE": 2029, "ESLURM_NOT_SUPPORTED": 2036, "ESLURM_DISABLED": 2037,
    "ESLURM_DEPENDENCY": 2038, "ESLURM_BATCH_ONLY": 2039, "ESLURM_JOB_HELD": 2042, "ESLURM_INVALID_ACCOUNT": 2045,
    "ESLURM_INVALID_TIME_LIMIT": 2051, "ESLURM_INVALID_QOS": 2066, "ESLURM_INVALID_GRES": 2072,
    "ESLURM_JOB_NOT_PENDING": 2073, "ESLURM_INVALID_ARRAY": 2081, "ESLURM_JOB_FINISHED": 2084,
    "ESLURM_JOB_NOT_RUNNING": 2085,
    "ESLURM_ENVIRONMENT_MISSING": 2127, "ESLURM_INVALID_CLUSTER_NAME": 7104,
}
"""Slurm's errno values (slurm_errno.h): some commands exit with ``errno & 0xff``."""


def errno_of(code: str | None) -> int:
    if not code:
        return 0
    return ERRNO.get(code, 1)
