"""``minihpc``: bring the service up and down, look at it, and get into it.

    minihpc up [--config FILE] [--retain]     build missing images, start, wait until ready
    minihpc down [--cluster NAME]             remove the containers, keep the volumes
    minihpc clean                             also remove the volumes and the generated keys
    minihpc status                            what runs, and how to ssh in
    minihpc ssh [USER] [--cluster C] [-- CMD] ssh to a login node as a user
    minihpc logs [NODE] [-f]                  a container's log (all of them without NODE)
    minihpc exec NODE [--user U] [-- CMD]     run a command in a container (default: a login shell)
    minihpc build                             only build the images
    minihpc compose                           rewrite compose/docker-compose.yml
    minihpc credits add|list ...              project credits (orchestrator/services/credits_cli.py)
    minihpc credits add PROJECT HOURS | list  top up a project's credits (core-hours), show the ledger

Errors are one paragraph and a non-zero exit; ``-v`` adds subprocess output and tracebacks.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orchestrator.cluster.config import Config, ConfigError, load
from orchestrator.cluster.errors import EnvironmentProblem, MinihpcError, StepFailed
from orchestrator.cluster.paths import Paths

log = logging.getLogger(__name__)


def _config_text(path: str | None) -> str:
    from importlib import resources

    if path is None:
        return resources.files("orchestrator.cluster").joinpath("default.yaml").read_text()
    return Path(path).read_text()


def _load(args: argparse.Namespace) -> tuple[Config, str]:
    config = load(args.config)
    return config, _config_text(args.config)


def _provider() -> Any:
    from orchestrator.cluster.provider import DockerProvider

    return DockerProvider()


def _status(args: argparse.Namespace) -> Any:
    from orchestrator.cluster.status import Status

    return Status(sys.stdout, verbose=args.verbose)


def _ssh_lines(paths: Paths, config: Config) -> list[str]:
    user = config.users[0].name
    key = paths.display(paths.keys / user)
    lines = []
    for c in config.clusters:
        lines.append(f"  ssh -p {c.ssh_port} -i {key} {user}@localhost     # {c.login_hostname}")
    lines.append(f"  minihpc ssh {user} --cluster {config.clusters[-1].name}     "
                 "(or: make ssh USER=... CLUSTER=...)")
    return lines


# ------------------------------------------------------------------------- commands


def cmd_up(args: argparse.Namespace) -> int:
    from orchestrator.cluster import actions

    t0 = time.monotonic()
    config, text = _load(args)
    paths = Paths.default()
    status = _status(args)
    provider = _provider()
    names = ", ".join(c.name for c in config.clusters)
    status.line(f"Creating minihpc clusters {names} from {config.source} ...")
    ctx = actions.Context(config, text, paths, provider, status, retain=args.retain,
                          timeout=args.wait if args.wait else actions.DEFAULT_TIMEOUT)
    try:
        actions.up(ctx)
    except actions.AlreadyUp:
        status.line("The cluster is already running; nothing changed.")
        _print_status(paths, config, provider)
        _note_stale_images(paths, config, provider)
        return 0
    for note in ctx.notes:
        status.line(f"  note: {note}")
    status.line("")
    status.line(f"Ready in {time.monotonic() - t0:.1f}s. Log in with:")
    for line in _ssh_lines(paths, config):
        status.line(line)
    return 0


def _note_stale_images(paths: Paths, config: Config, provider: Any) -> None:
    """Say so when the tree has changed since the running containers were made."""
    from orchestrator.cluster.images import ImageBuilder

    wanted = ImageBuilder(provider.client, paths, lambda line: None, config.site.optional_modules).wanted_tags() or {}
    stale = sorted({c.role for c in provider.containers() if wanted.get(c.role) not in (None, c.image)})
    if stale:
        print(f"\nNote: images/ or orchestrator/ changed since the {', '.join(stale)} containers started; "
              "`make down && make up` rebuilds and restarts them (homes and data are kept).")


def cmd_down(args: argparse.Namespace) -> int:
    from orchestrator.cluster import actions

    t0 = time.monotonic()
    provider = _provider()
    removed = actions.down(provider, _status(args), args.cluster or None)
    print(f"Removed {len(removed)} containers in {time.monotonic() - t0:.1f}s; networks and volumes kept "
          "(`minihpc clean` removes them).")
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    from orchestrator.cluster import actions

    provider = _provider()
    status = _status(args)
    actions.down(provider, status)
    with status.step("Removing networks, volumes and generated keys"):
        provider.remove_networks(provider.networks())
        provider.remove_volumes(provider.volumes())
        paths = Paths.default()
        for sub in ("keys", "hostkeys", "run"):
            shutil.rmtree(paths.state / sub, ignore_errors=True)
        for f in ("munge.key", "passwords", "known_hosts"):
            (paths.state / f).unlink(missing_ok=True)
    print("Removed the networks, the volumes (homes, data, scratch, scheduler state) and the keys under .minihpc/.")
    return 0


def _print_status(paths: Paths, config: Config | None, provider: Any) -> bool:
    containers = provider.containers()
    if not containers:
        print("No minihpc containers. Start them with `make up` (or `minihpc up`).")
        return True
    print(f"{'NAME':<16} {'CLUSTER':<8} {'ROLE':<11} {'STATE':<9} {'IMAGE':<28} PORTS")
    for c in containers:
        print(f"{c.name:<16} {c.cluster:<8} {c.role:<11} {c.state:<9} {c.image:<28} {' '.join(c.ports)}")
    if config is not None and {c.cluster for c in containers} >= {c.name for c in config.clusters}:
        print("\nLog in with:")
        for line in _ssh_lines(paths, config):
            print(line)
    return all(c.state == "running" for c in containers)


def cmd_status(args: argparse.Namespace) -> int:
    config, _ = _load(args)
    # 3 when some container is not running (like `systemctl status`)
    return 0 if _print_status(Paths.default(), config, _provider()) else 3


def _login_port(config: Config, cluster: str | None) -> tuple[str, int]:
    if cluster is None:
        c = config.clusters[0]
    else:
        try:
            c = config.cluster(cluster)
        except KeyError:
            raise MinihpcError(f"No cluster {cluster!r} in {config.source}; clusters: "
                               f"{', '.join(x.name for x in config.clusters)}.") from None
    return c.login_hostname, c.ssh_port


def ssh_command(paths: Paths, config: Config, user: str, cluster: str | None, command: Sequence[str]) -> list[str]:
    """The ssh argv that ``minihpc ssh`` runs (also used by tests)."""
    try:
        config.user(user)
    except KeyError:
        raise MinihpcError(f"No user {user!r} in {config.source}; users: "
                           f"{', '.join(u.name for u in config.users)}.") from None
    _, port = _login_port(config, cluster)
    key = paths.keys / user
    if not key.exists():
        raise MinihpcError(f"No key for {user} at {key}.", hint="Run `make up` first; it makes the keys.")
    argv = ["ssh", "-p", str(port), "-i", str(key), "-o", "IdentitiesOnly=yes",
            "-o", f"UserKnownHostsFile={paths.known_hosts}", "-o", "StrictHostKeyChecking=yes",
            "-o", "LogLevel=ERROR"]
    if command:
        argv += [f"{user}@localhost", *command]
    else:
        argv += ["-t", f"{user}@localhost"]
    return argv


def cmd_ssh(args: argparse.Namespace) -> int:
    config, _ = _load(args)
    user = args.user or os.environ.get("MINIHPC_USER") or config.users[0].name
    argv = ssh_command(Paths.default(), config, user, args.cluster, args.command)
    if shutil.which("ssh") is None:
        raise EnvironmentProblem("ssh is not installed on this host.",
                                 hint="Install the OpenSSH client, or use `minihpc exec LOGIN -- su - USER`.")
    sys.stdout.flush()
    os.execvp("ssh", argv)
    return 0  # not reached


def cmd_logs(args: argparse.Namespace) -> int:
    provider = _provider()
    names = [args.node] if args.node else [c.name for c in provider.containers()]
    if not names:
        print("No minihpc containers.")
        return 0
    if args.follow:
        if len(names) != 1:
            raise MinihpcError("`minihpc logs -f` follows one container: name it, e.g. `minihpc logs -f arc-login`.")
        for chunk in provider.follow_logs(names[0], tail=args.tail):
            sys.stdout.write(chunk.decode(errors="replace"))
            sys.stdout.flush()
        return 0
    for name in names:
        try:
            text = provider.logs(name, tail=args.tail)
        except Exception as exc:
            raise MinihpcError(f"No log for {name}: {str(exc).splitlines()[0]}.",
                               hint="`minihpc status` lists the containers.") from None
        if len(names) > 1:
            print(f"==> {name} <==")
        sys.stdout.write(text)
    return 0


def cmd_exec(args: argparse.Namespace) -> int:
    command = args.command or ["bash", "-l"]
    if shutil.which("docker") is None:
        raise EnvironmentProblem("The docker command-line client is needed for `minihpc exec`.",
                                 hint="Install it, or use `minihpc ssh`.")
    argv = ["docker", "exec", "-i"] + (["-t"] if sys.stdin.isatty() and sys.stdout.isatty() else [])
    if args.user:
        argv += ["-u", args.user, "-w", f"/home/{args.user}"]
    argv += [args.node, *command]
    sys.stdout.flush()
    os.execvp("docker", argv)
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from orchestrator.cluster.images import ImageBuilder

    config, _ = _load(args)
    provider = _provider()
    status = _status(args)
    with status.step("Ensuring images"):
        result = ImageBuilder(provider.client, Paths.default(), status.detail, config.site.optional_modules).ensure()
    for role, tag in result.tags.items():
        print(f"  {role:<11} {tag}{'  (built)' if role in result.built else ''}")
    return 0


def cmd_credits(args: argparse.Namespace) -> int:
    from orchestrator.services.credits_cli import host_main

    config, _ = _load(args)
    return host_main(config, args.credits_args)


def cmd_compose(args: argparse.Namespace) -> int:
    from orchestrator.cluster.compose import generate

    config, _ = _load(args)
    out = Path(args.output) if args.output else Paths.default().root / "compose" / "docker-compose.yml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(generate(config))
    print(f"wrote {out}")
    return 0


# ------------------------------------------------------------------------- parsing


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="show subprocess output and tracebacks")
    common.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                        help="cluster config (default: the built-in orchestrator/cluster/default.yaml)")
    parser = argparse.ArgumentParser(prog="minihpc", description="An ARC-like HPC service in Docker.",
                                     parents=[common])
    sub = parser.add_subparsers(dest="cmd", metavar="COMMAND", required=True)

    p = sub.add_parser("up", parents=[common], help="build missing images, start the clusters, wait until ready")
    p.add_argument("--retain", action="store_true", help="keep a half-made cluster after a failure")
    p.add_argument("--wait", type=float, metavar="SECONDS", help="readiness deadline per phase (default 120)")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("down", parents=[common], help="remove the containers, keep the volumes")
    p.add_argument("--cluster", action="append", metavar="NAME", help="only this cluster (repeatable)")
    p.set_defaults(func=cmd_down)

    p = sub.add_parser("clean", parents=[common], help="remove containers, volumes and generated keys")
    p.set_defaults(func=cmd_clean)

    p = sub.add_parser("status", parents=[common], help="list the containers and the ssh command lines")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("ssh", parents=[common], help="ssh to a login node as a user")
    p.add_argument("user", nargs="?", help="user name (default: the first user in the config)")
    p.add_argument("--cluster", "-c", metavar="NAME", help="cluster (default: the first)")
    p.set_defaults(func=cmd_ssh)  # a command to run follows `--`

    p = sub.add_parser("logs", parents=[common], help="show container logs")
    p.add_argument("node", nargs="?", help="container (hostname); default: all")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("--tail", default="all", help="number of lines (default: all)")
    p.set_defaults(func=cmd_logs)

    p = sub.add_parser("exec", parents=[common], help="run a command in a container (default: a root shell)")
    p.add_argument("node")
    p.add_argument("--user", "-u", help="run as this user")
    p.set_defaults(func=cmd_exec)  # the command follows `--`

    p = sub.add_parser("build", parents=[common], help="only build the images")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("compose", parents=[common], help="rewrite compose/docker-compose.yml")
    p.add_argument("--output", "-o", metavar="FILE")
    p.set_defaults(func=cmd_compose)

    p = sub.add_parser("credits", parents=[common], help="add core-hours to a project, or list the credit ledger")
    p.add_argument("credits_args", nargs=argparse.REMAINDER, metavar="add PROJECT HOURS [--note T] | list [PROJECT]")
    p.set_defaults(func=cmd_credits)
    return parser


def _report(exc: MinihpcError) -> None:
    where = f"{exc.step} failed: " if isinstance(exc, StepFailed) else ""
    sys.stderr.write(f"ERROR: {where}{exc.message}\n")
    if exc.output.strip():
        sys.stderr.write("\n" + "\n".join("    " + line for line in exc.output.rstrip().splitlines()) + "\n\n")
    if exc.hint:
        sys.stderr.write(f"Hint: {exc.hint}\n")


def _subcommand(argv: list[str]) -> str | None:
    """The first word that is not a global option (``--config FILE``, ``-v``)."""
    i = 0
    while i < len(argv):
        if argv[i] == "--config":
            i += 2
        elif argv[i] in ("-v", "--verbose"):
            i += 1
        else:
            return argv[i]
    return None


def _credits(argv: list[str]) -> int:
    """``minihpc [--config FILE] credits ...``: the ARC services' admin tool (orchestrator/services)."""
    from orchestrator.services.credits_cli import host_main

    config_path = None
    if "--config" in argv[:-1]:
        i = argv.index("--config")
        config_path = argv[i + 1]
        del argv[i:i + 2]
    try:
        config = load(config_path)
    except ConfigError as exc:
        sys.stderr.write(f"ERROR: invalid config: {exc}\n")
        return 2
    return host_main(config, argv[argv.index("credits") + 1:])


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if _subcommand(argv) == "credits":  # its own parser lives with the ARC services
        return _credits(argv)
    command: list[str] = []
    if "--" in argv:  # everything after `--` is the command for ssh/exec, untouched by argparse
        i = argv.index("--")
        argv, command = argv[:i], argv[i + 1:]
    args = build_parser().parse_args(argv)
    args.command = command
    args.verbose = getattr(args, "verbose", False)
    args.config = getattr(args, "config", None)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        rc: int = args.func(args)
        return rc
    except ConfigError as exc:
        sys.stderr.write(f"ERROR: invalid config: {exc}\n"
                         "Hint: nothing was started; fix the file (see orchestrator/cluster/default.yaml) "
                         "and run again.\n")
        return 2
    except MinihpcError as exc:
        if args.verbose:
            log.exception("failed")
        _report(exc)
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        return 130
    except BrokenPipeError:  # `minihpc status | head`: the reader left, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # unexpected: still one paragraph unless -v
        if args.verbose:
            raise
        sys.stderr.write(f"ERROR: {type(exc).__name__}: {exc}\nHint: run again with -v for the full trace.\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
