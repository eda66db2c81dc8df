"""Modules benchmark (issue 6): Lmod timings and the image size each module group adds.

    python bench/modules.py                       # against the running arc-login, as alice
    python bench/modules.py --container NAME --user USER --runs 20

Times are what a user waits for at the prompt: the `module` shell function (Lmod + eval),
timed inside a login shell on the container, median of --runs after one warm-up. Targets:
`module avail` <= 300 ms and `module load foss/2022b` <= 300 ms. Sizes come from the
image itself (python3 -m orchestrator.modules sizes) and from `docker history` (the layer
the installer wrote). Results: bench/results/modules.json, and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
TARGET_MS = 300.0

# name -> (setup, timed command); each run is a fresh subshell of one login shell, so nothing
# is loaded before the setup part.
MEASURES: dict[str, tuple[str, str]] = {
    "module avail": ("", "module avail"),
    "module spider openmpi": ("", "module spider openmpi"),
    "module load foss/2022b": ("", "module load foss/2022b"),
    "module load R/4.2.2-foss-2022b": ("", "module load R/4.2.2-foss-2022b"),
    "module list (foss loaded)": ("module load foss/2022b", "module list"),
    "module purge (foss loaded)": ("module load foss/2022b", "module purge"),
}


def _shell_timer(setup: str, timed: str, runs: int) -> str:
    """A bash -l script printing "<run> <microseconds>" for each run of ``timed``."""
    return (
        f"for i in $(seq 0 {runs}); do\n"
        "  (\n"
        f"    {setup or ':'} >/dev/null 2>&1\n"
        "    s=$(date +%s%N)\n"
        f"    {timed} >/dev/null 2>&1\n"
        "    e=$(date +%s%N)\n"
        '    echo "$i $(( (e - s) / 1000 ))"\n'
        "  )\n"
        "done\n"
    )


def _exec(container: str, user: str, script: str, timeout: float = 600) -> str:
    res = subprocess.run(["docker", "exec", "-u", user, "-w", "/tmp", container, "bash", "-lc", script],
                         capture_output=True, text=True, timeout=timeout, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"docker exec {container} failed ({res.returncode}): {res.stderr.strip()[-500:]}")
    return res.stdout


def time_commands(container: str, user: str, runs: int) -> dict[str, dict[str, float]]:
    """Median/p90/min in ms for every measure; the first run (cold page cache) is dropped."""
    out: dict[str, dict[str, float]] = {}
    for name, (setup, timed) in MEASURES.items():
        text = _exec(container, user, _shell_timer(setup, timed, runs))
        samples = [int(parts[1]) / 1000 for row in text.splitlines() if len(parts := row.split()) == 2
                   and parts[0] != "0"]
        if not samples:
            raise RuntimeError(f"no timings for {name!r}: {text[:300]}")
        samples.sort()
        out[name] = {"median_ms": round(statistics.median(samples), 1),
                     "p90_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.9))], 1),
                     "min_ms": round(samples[0], 1), "runs": len(samples)}
    return out


def sizes(container: str) -> dict[str, Any]:
    text = _exec(container, "root", "cd /opt/minihpc && python3 -m orchestrator.modules sizes --json")
    return dict(json.loads(text))


def image_layers(container: str) -> dict[str, Any]:
    """Total image size and the layer that ran the modules installer, from `docker history`."""
    image = subprocess.run(["docker", "inspect", "-f", "{{.Image}}", container], capture_output=True, text=True,
                           check=True).stdout.strip()
    total = int(subprocess.run(["docker", "image", "inspect", "-f", "{{.Size}}", image], capture_output=True,
                               text=True, check=True).stdout.strip())
    hist = subprocess.run(["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}\t{{.Size}}", image],
                          capture_output=True, text=True, check=True).stdout.splitlines()
    installer = [row.split("\t")[1] for row in hist if "images/modules/install.sh" in row]
    return {"image": image[:19], "image_mb": round(total / 1e6, 1), "installer_layers": installer}


def report(result: dict[str, Any]) -> str:
    rows = [f"modules benchmark on {result['container']} as {result['user']} ({result['runs']} runs each)", ""]
    rows.append(f"{'measure':<34} {'median ms':>10} {'p90 ms':>8}  target")
    for name, t in result["timings"].items():
        target = ""
        if name in ("module avail", "module load foss/2022b"):
            target = f"<= {TARGET_MS:.0f} ms " + ("ok" if t["median_ms"] <= TARGET_MS else "MISSED")
        rows.append(f"{name:<34} {t['median_ms']:>10.1f} {t['p90_ms']:>8.1f}  {target}")
    s = result.get("sizes")
    if s:
        rows += ["", f"{'group':<10} {'adds MB':>8} {'only MB':>8}  modules"]
        for g, info in s["groups"].items():
            state = "" if info.get("enabled", True) else "  (optional: off in this image)"
            rows.append(f"{g:<10} {info['adds_kib'] / 1024:>8.1f} {info['kib'] / 1024:>8.1f}  "
                        f"{', '.join(info.get('modules', []))}{state}")
        rows.append(f"{'base':<10} {s['base_kib'] / 1024:>8.1f} {'':>8}  the image without any module group")
        rows.append("adds = Debian installed size on top of the base and the groups above; only = no other group "
                    "needs it")
    layers = result.get("layers")
    if layers:
        rows.append(f"image {layers['image']}: {layers['image_mb']} MB; installer layer(s): "
                    f"{', '.join(layers['installer_layers']) or 'none'}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--container", default="arc-login")
    parser.add_argument("--user", default="alice")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--out", type=Path, default=RESULTS / "modules.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="bench: %(message)s")
    started = time.time()
    try:
        result: dict[str, Any] = {
            "container": args.container, "user": args.user, "runs": args.runs,
            "host": platform.node(), "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "timings": time_commands(args.container, args.user, args.runs),
            "sizes": sizes(args.container),
            "layers": image_layers(args.container),
        }
    except (RuntimeError, subprocess.SubprocessError, OSError, ValueError) as exc:
        print(f"bench/modules.py: {exc}", file=sys.stderr)
        return 1
    result["seconds"] = round(time.time() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(report(result))
    ok = all(result["timings"][m]["median_ms"] <= TARGET_MS for m in ("module avail", "module load foss/2022b"))
    return 0 if ok else 3


if __name__ == "__main__":
    sys.exit(main())
