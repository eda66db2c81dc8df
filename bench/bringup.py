"""Bring-up benchmark (``make bench``; not a test): times and sizes for the README.

Measures, on this machine:
- cold build: our images removed, ``minihpc build`` from nothing (only with ``--cold``:
  it deletes the minihpc images and takes minutes);
- warm ``minihpc up`` to ready (``--runs`` times, after ``minihpc down``);
- ``minihpc down``;
- image sizes;
- idle memory per container (sum of process RSS, and the cgroup's usage), after ``--settle`` s.

Results go to bench/results/bringup-<UTC time>.json, bench/results/bringup.md (latest) and
the README's table. A cluster that was running before is brought back up at the end.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
MINIHPC = [sys.executable, "-m", "orchestrator.cli"]


def run(*args: str, timeout: float = 1800) -> tuple[float, str]:
    """Run ``minihpc ARGS``; returns (seconds, output). Fails loudly: a benchmark of a failure is no use."""
    t0 = time.monotonic()
    r = subprocess.run([*MINIHPC, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
    elapsed = time.monotonic() - t0
    if r.returncode != 0:
        sys.exit(f"minihpc {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return elapsed, r.stdout


def machine() -> dict[str, Any]:
    import docker

    info = docker.from_env().info()
    return {
        "host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(),
        "kernel": platform.release(), "docker": info.get("ServerVersion"), "storage": info.get("Driver"),
        "cgroup": info.get("CgroupVersion"), "memory_gb": round(info.get("MemTotal", 0) / 1024**3, 1),
    }


def image_sizes() -> dict[str, float]:
    import docker

    client = docker.from_env()
    sizes: dict[str, float] = {}
    for image in client.images.list(name="minihpc/*"):
        for tag in image.tags:
            if not tag.endswith(":latest"):
                sizes[tag] = round(image.attrs["Size"] / 1e6, 1)
    return dict(sorted(sizes.items()))


def idle_memory() -> dict[str, dict[str, float]]:
    import docker

    client = docker.from_env()
    out: dict[str, dict[str, float]] = {}
    for c in sorted(client.containers.list(filters={"label": "minihpc.managed"}), key=lambda c: c.name):
        res = c.exec_run(["ps", "-e", "-o", "rss=,comm="])
        procs = [line.split(None, 1) for line in res.output.decode().splitlines() if line.strip()]
        rss_kb = sum(int(p[0]) for p in procs if p[1].strip() != "ps")
        stats = c.stats(stream=False)
        usage = stats.get("memory_stats", {}).get("usage", 0)
        cache = stats.get("memory_stats", {}).get("stats", {}).get("cache", 0)
        out[c.name] = {"rss_mb": round(rss_kb / 1024, 1), "cgroup_mb": round((usage - cache) / 1e6, 1),
                       "processes": len(procs) - 1}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cold", action="store_true", help="also remove the minihpc images and time a cold build")
    p.add_argument("--runs", type=int, default=3, help="warm up/down cycles (default 3)")
    p.add_argument("--settle", type=float, default=10, help="seconds to idle before measuring memory")
    p.add_argument("--config", help="config file (default: the built-in two-cluster config)")
    p.add_argument("--note", default="", help="a remark for the table (e.g. what else ran on the machine)")
    p.add_argument("--publish", metavar="JSON", help="only re-render the README table from a saved result")
    args = p.parse_args(argv)
    if args.publish:
        saved = json.loads(Path(args.publish).read_text())
        if args.note:
            saved["note"] = args.note
            Path(args.publish).write_text(json.dumps(saved, indent=2) + "\n")
        publish(saved)
        return 0
    cfg = ["--config", args.config] if args.config else []
    result: dict[str, Any] = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine(),
                              "config": args.config or "default.yaml (13 containers)", "note": args.note}
    import docker

    restore = bool(docker.from_env().containers.list(filters={"label": "minihpc.managed"}))
    run("down")
    if args.cold:
        client = docker.from_env()
        for image in client.images.list(name="minihpc/*"):
            for tag in image.tags:
                client.images.remove(tag, force=True)
        print("cold build from an empty engine (no minihpc images) ...", flush=True)
        result["cold_build_s"] = round(run("build")[0], 1)
        print(f"  {result['cold_build_s']} s", flush=True)
    ups, downs = [], []
    for i in range(args.runs):
        for _attempt in range(5):  # others may edit the tree meanwhile: a run that built is not warm
            run("build")
            elapsed, out = run("up", *cfg)
            if "built images" not in out:
                break
            run("down")
        else:
            sys.exit("the tree kept changing: could not measure a warm up")
        ups.append(round(elapsed, 2))
        if i == args.runs - 1:
            time.sleep(args.settle)
            result["idle_memory"] = idle_memory()
        downs.append(round(run("down")[0], 2))
        print(f"  run {i + 1}: up {ups[-1]} s, down {downs[-1]} s", flush=True)
    if "cold_build_s" not in result:  # keep the latest cold measurement in the table, with its date
        for old in sorted((ROOT / "bench" / "results").glob("bringup-*.json"), reverse=True):
            prev = json.loads(old.read_text())
            if "cold_build_s" in prev:
                result["cold_build_s"], result["cold_when"] = prev["cold_build_s"], prev["when"]
                break
    result["warm_up_s"] = {"runs": ups, "median": statistics.median(ups)}
    result["down_s"] = {"runs": downs, "median": statistics.median(downs)}
    result["image_sizes_mb"] = image_sizes()
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    (results / f"bringup-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    publish(result)
    if restore:
        print("bringing the cluster that was running back up ...", flush=True)
        run("up", *cfg)
    print(render(result))
    return 0


def publish(result: dict[str, Any]) -> None:
    """bench/results/bringup.md and the README's table, from one result."""
    md = render(result)
    (ROOT / "bench" / "results" / "bringup.md").write_text(md)
    readme = ROOT / "README.md"
    text = readme.read_text()
    begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        body = md.split("\n", 2)[2]  # drop the heading: the README has its own
        readme.write_text(f"{head}{begin}\n{body}{end}{rest.split(end, 1)[1]}")


def render(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        f"# Bring-up benchmark ({r['when']})", "",
        f"Machine: {m['cpus']} cores, {m['memory_gb']} GB, Docker {m['docker']} ({m['storage']}, cgroup v{m['cgroup']}), "
        f"kernel {m['kernel']}. Config: {r['config']}." + (f" {r['note']}" if r.get("note") else ""), "",
        "| measure | result |", "|---|---|",
    ]
    if "cold_build_s" in r:
        when = f" (measured {r['cold_when']})" if "cold_when" in r else ""
        lines.append(f"| cold build (empty engine: mmdebstrap base + node image){when} | {r['cold_build_s']} s |")
    lines.append(f"| warm `minihpc up` to ready (median of {len(r['warm_up_s']['runs'])}) | "
                 f"{r['warm_up_s']['median']} s (runs: {', '.join(map(str, r['warm_up_s']['runs']))}) |")
    lines.append(f"| `minihpc down` (median) | {r['down_s']['median']} s |")
    sizes = r["image_sizes_mb"]
    base = next((v for k, v in sizes.items() if k.startswith("minihpc/base:")), None)
    for tag, size in sizes.items():
        if tag.startswith(("minihpc/login:", "minihpc/controller:", "minihpc/compute:")):
            continue  # tags of the node image
        extra = f" ({size - base:.1f} MB above the base; login, controller and compute are its tags)" \
            if tag.startswith("minihpc/node:") and base is not None else ""
        lines.append(f"| image {tag} | {size} MB{extra} |")
    mem = r.get("idle_memory", {})
    if mem:
        lines += ["", "Idle memory per container (sum of process RSS; cgroup usage without page cache):", "",
                  "| container | RSS MB | cgroup MB | processes |", "|---|---|---|---|"]
        for name, v in mem.items():
            lines.append(f"| {name} | {v['rss_mb']} | {v['cgroup_mb']} | {v['processes']} |")
        total = sum(v["rss_mb"] for v in mem.values())
        lines.append(f"| **total** | **{total:.0f}** | | |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
