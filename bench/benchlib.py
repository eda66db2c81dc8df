"""What the benchmarks share: a local-mode cluster to measure on, and one way to record results."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


@contextmanager
def local_cluster(config_text: str, prefix: str) -> Iterator[tuple[object, Path]]:
    """A local-mode service from ``config_text`` and a world-writable work dir; the commands on PATH.

    An installed service runs from byte-compiled modules, so the benchmark compiles them first.
    """
    sys.path.insert(0, str(ROOT))
    from orchestrator.scheduler.local import LocalCluster

    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "orchestrator")], check=False,
                   stdout=subprocess.DEVNULL)
    base = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(base, 0o755)
    cfg = base / "bench.yaml"
    cfg.write_text(config_text)
    lc = LocalCluster(base, cfg)
    lc.up()
    try:
        work = base / "work"
        work.mkdir()
        os.chmod(work, 0o777)
        os.environ.update(lc.env())
        os.environ["PYTHONPATH"] = str(ROOT)
        yield lc, work
    finally:
        lc.down()
        shutil.rmtree(base, ignore_errors=True)


def report(bench: str, mode: str, results: dict[str, float], targets: Mapping[str, tuple[str, float]],
           digits: int = 1, record: bool = True) -> None:
    """Write bench/results/<bench>-<mode>.json (with the machine; unless not ``record``, as for a
    partial run) and print results beside targets."""
    if record:
        RESULTS.mkdir(parents=True, exist_ok=True)
        data = {"mode": mode, "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": {
            "cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "interpreter": sys.executable, "loadavg_1m": os.getloadavg()[0]}, "results": results}
        (RESULTS / f"{bench}-{mode}.json").write_text(json.dumps(data, indent=2) + "\n")
    print(f"{'measure':42} {'value':>10}  target")
    for key, value in results.items():
        op, target = targets.get(key, ("", 0.0))
        ok = "" if not op else ("ok" if (0 <= value <= target if op == "<=" else value >= target) else "MISSED")
        print(f"{key:42} {value:10.{digits}f}  {op} {target if op else ''} {ok}")


def run_in_login(script: Path, call: str, container: str = "arc-login", user: str = "alice") -> dict[str, float]:
    """Run a benchmark module's code inside a login container as a user; ``call`` is the
    expression (using ``workdir``, a fresh directory in the user's home) whose dict is returned.

    The module's source is sent whole, minus its ``__main__`` guard, so the same measuring
    code runs in local mode here and in the cluster there."""
    src = script.read_text().replace('if __name__ == "__main__":', "if False:")
    code = (src + "\nimport json, os, sys, tempfile\nsys.path.insert(0, '/opt/minihpc')\n"
            "workdir = tempfile.mkdtemp(dir=os.environ['HOME'])\n" f"print(json.dumps({call}))\n")
    r = subprocess.run(["docker", "exec", "-i", "-u", user, "-w", f"/home/{user}", container, "bash", "-lc",
                        "python3 -"], input=code, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"benchmark inside {container} failed:\n{r.stderr[-3000:]}")
    return dict(json.loads(r.stdout.strip().splitlines()[-1]))
