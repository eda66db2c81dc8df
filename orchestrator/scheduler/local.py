"""Local mode: a whole cluster as plain processes on one host, for tests and quick tries.

It starts a private munged (own key and socket), the controller and one node
daemon per configured node, each with its own name, port and spool, and writes
the client view the commands read. ``bin/`` holds the Slurm command names,
so jobs and tests call ``sbatch`` and ``squeue`` exactly as users do.

    python -m orchestrator.scheduler.local --dir /tmp/mh up
    eval "$(python -m orchestrator.scheduler.local --dir /tmp/mh env)"
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from orchestrator.cluster.config import Config, load

log = logging.getLogger(__name__)

__all__ = ["COMMANDS", "LocalCluster"]

COMMANDS = ("sbatch", "srun", "salloc", "squeue", "scancel", "sinfo", "scontrol", "sacct", "seff",
            "mybalance", "myquota")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalCluster:
    """Processes of one local-mode service rooted at ``base``."""

    def __init__(self, base: str | Path, config_path: str | Path | None = None, cluster: str | None = None,
                 kill_wait: int = 2, slurmd_timeout: int = 300, min_job_age: int = 300,
                 requeue_delay: int = 1) -> None:
        self.base = Path(base).resolve()
        self.config_path = Path(config_path) if config_path else None
        self.config: Config = load(self.config_path)
        self.cluster_name = cluster or self.config.clusters[0].name
        self.kill_wait = kill_wait
        self.slurmd_timeout = slurmd_timeout
        self.min_job_age = min_job_age
        self.requeue_delay = requeue_delay  # Slurm waits 121 s; local mode is for tests and quick tries
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    # ------------------------------------------------------------------ paths
    @property
    def bin(self) -> Path:
        return self.base / "bin"

    @property
    def conf_file(self) -> Path:
        return self.base / "slurm.json"

    @property
    def munge_socket(self) -> Path:
        return self.base / "munge" / "munge.socket"

    def env(self) -> dict[str, str]:
        """What a shell needs to use this cluster's commands."""
        return {"MINIHPC_CONF": str(self.conf_file), "MINIHPC_MUNGE_SOCKET": str(self.munge_socket),
                "PATH": f"{self.bin}:{os.environ.get('PATH', '/usr/bin:/bin')}"}

    # ------------------------------------------------------------------ start
    def up(self, timeout: float = 20.0) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        os.chmod(self.base, 0o755)
        (self.base / "logs").mkdir(exist_ok=True)
        self._write_config()
        self._write_bin()
        self._start_munged()
        cluster = self.config.cluster(self.cluster_name)
        env = {**os.environ, **self.env(), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        common = [sys.executable, "-m", "orchestrator.scheduler.daemon"]
        cfg = ["--config", str(self.config_file), "--cluster", self.cluster_name,
               "--kill-wait", str(self.kill_wait), "--slurmd-timeout", str(self.slurmd_timeout),
               "--min-job-age", str(self.min_job_age), "--requeue-delay", str(self.requeue_delay)]
        port = json.loads(self.conf_file.read_text())["clusters"][self.cluster_name]["port"]
        self._spawn("controller", [*common, "controller", *cfg, "--state-dir", str(self.base / "state"),
                                   "--listen", f"127.0.0.1:{port}"], env)
        scratch = self.base / "scratch"
        scratch.mkdir(exist_ok=True)
        os.chmod(scratch, 0o1777)
        for node in cluster.nodes:
            spool = self.base / "nodes" / node.name
            tmp = spool / "tmp"
            tmp.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, 0o1777)
            self._spawn(node.name, [*common, "noded", *cfg, "--node", node.name, "--spool", str(spool / "spool"),
                                    "--listen", f"127.0.0.1:{_free_port()}", "--advertise", "127.0.0.1",
                                    "--controller", f"127.0.0.1:{port}", "--tmp-base", str(tmp),
                                    "--scratch-base", str(scratch)], env)
        self.wait_ready(timeout)

    @property
    def config_file(self) -> Path:
        return self.base / "cluster.yaml"

    def _write_config(self) -> None:
        import yaml

        raw = dict(self.config.raw)
        self.config_file.write_text(yaml.safe_dump(raw, sort_keys=False))
        view = {"cluster": self.cluster_name,
                "clusters": {self.cluster_name: {"host": "127.0.0.1", "port": _free_port()}},
                "munge_socket": str(self.munge_socket), "local": True}
        if self.conf_file.exists():
            old = json.loads(self.conf_file.read_text())
            view["clusters"] = old.get("clusters", view["clusters"])
        self.conf_file.write_text(json.dumps(view, indent=1))
        os.chmod(self.conf_file, 0o644)

    def _write_bin(self) -> None:
        self.bin.mkdir(exist_ok=True)
        root = Path(__file__).resolve().parents[2]
        launcher = self.bin / "slurm-command"
        python = Path(sys.executable).resolve()
        if not all(os.stat(p).st_mode & 0o001 for p in [python, *python.parents]):
            python = Path("/usr/bin/python3")  # test users cannot reach an interpreter under /root
        launcher.write_text(f"#!{python} -IS\nimport sys\nsys.path.insert(0, {str(root)!r})\n"
                            "from orchestrator.commands import launch\nlaunch()\n")
        launcher.chmod(0o755)
        for name in COMMANDS:
            link = self.bin / name
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to("slurm-command")

    def _start_munged(self) -> None:
        mdir = self.base / "munge"
        mdir.mkdir(exist_ok=True)
        os.chmod(mdir, 0o755)
        key = mdir / "munge.key"
        if not key.exists():
            key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        munged = shutil.which("munged") or "/usr/sbin/munged"
        if not os.path.exists(munged):
            raise RuntimeError("munged is not installed; install Debian's 'munge' package (apt-get install munge)")
        cmd = [munged, "-F", "-f", f"--socket={self.munge_socket}", f"--key-file={key}",
               f"--pid-file={mdir / 'munged.pid'}", f"--log-file={mdir / 'munged.log'}",
               f"--seed-file={mdir / 'munged.seed'}", "--num-threads=4"]
        self._spawn("munged", cmd, dict(os.environ))
        deadline = time.time() + 10
        while not self.munge_socket.exists():
            if time.time() > deadline or self.procs["munged"].poll() is not None:
                raise RuntimeError(f"munged did not start; see {mdir / 'munged.log'}")
            time.sleep(0.05)

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str]) -> None:
        logf = open(self.base / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        self.procs[name] = subprocess.Popen(cmd, env=env, stdout=logf, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        logf.close()
        (self.base / "logs" / f"{name}.pid").write_text(str(self.procs[name].pid))

    def run(self, args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **self.env()}
        extra = kwargs.pop("env", None)
        if isinstance(extra, dict):
            env.update(extra)
        return subprocess.run(args, env=env, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Until every node is registered (sinfo shows no node down or unknown)."""
        deadline = time.time() + timeout
        names = {n.name for n in self.config.cluster(self.cluster_name).nodes}
        last = ""
        while time.time() < deadline:
            for name, p in self.procs.items():
                if p.poll() is not None:
                    log_text = (self.base / "logs" / f"{name}.log").read_text()[-2000:]
                    raise RuntimeError(f"{name} exited with {p.returncode}:\n{log_text}")
            try:
                nodes: list[dict[str, str]] = self.call("nodes")["nodes"]  # type: ignore[assignment]
            except Exception as exc:  # not listening yet
                last = str(exc)
            else:
                states = {n["name"]: n["state"] for n in nodes}
                last = str(states)
                if names <= set(states) and all(s == "IDLE" for s in states.values()):
                    return
            time.sleep(0.1)
        raise RuntimeError(f"local cluster not ready after {timeout}s: {last}")

    def call(self, op: str, body: dict[str, object] | None = None) -> dict[str, object]:
        """One request to this cluster's controller, as the current user."""
        os.environ["MINIHPC_MUNGE_SOCKET"] = str(self.munge_socket)
        from orchestrator.scheduler.client import Client

        port = json.loads(self.conf_file.read_text())["clusters"][self.cluster_name]["port"]
        return Client(address=("127.0.0.1", int(port))).call(op, body or {})

    # ------------------------------------------------------------------ stop
    def stop_process(self, name: str, sig: int = signal.SIGTERM) -> None:
        p = self.procs.get(name)
        if p is None or p.poll() is not None:
            return
        os.killpg(p.pid, sig)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()

    def restart(self, name: str) -> None:
        """Stop and start one process with the same command line (a daemon restart)."""
        p = self.procs[name]
        cmd = p.args
        self.stop_process(name)
        env = {**os.environ, **self.env(), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        self._spawn(name, list(cmd), env)  # type: ignore[arg-type]

    def down(self) -> None:
        for name in [n for n in self.procs if n != "munged"]:
            self.stop_process(name)
        self.stop_process("munged")
        self.procs.clear()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="minihpc-local", description="Run a minihpc cluster as local processes.")
    parser.add_argument("--dir", required=True)
    parser.add_argument("--config")
    parser.add_argument("--cluster")
    parser.add_argument("action", choices=["up", "env"])
    args = parser.parse_args(argv)
    lc = LocalCluster(args.dir, args.config, args.cluster)
    if args.action == "env":
        for k, v in lc.env().items():
            print(f"export {k}={v}")
        return 0
    lc.up()
    print(f"local cluster {lc.cluster_name} is up; use: eval \"$(python -m orchestrator.scheduler.local "
          f"--dir {args.dir} env)\"; stop with Ctrl-C")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        lc.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
