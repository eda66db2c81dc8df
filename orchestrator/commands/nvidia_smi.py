"""``nvidia-smi`` on minihpc's GPU nodes: lists exactly the GPUs the job was given.

There are no real GPUs in the containers. The node's GPUs are declared in the
cluster config (``gres: ["gpu:v100:2"]`` plus ``gpu_mem:`` features); this
program shows the ones in the job's CUDA_VISIBLE_DEVICES with the model and
memory users' scripts print, and says plainly in its table that they are
emulated. Query output (``--query-gpu``, ``-L``) keeps NVIDIA's formats.
"""

from __future__ import annotations

import os
import socket
import sys
import time

MODELS = {
    "v100": ("Tesla V100-SXM2-32GB", 32768, "7.0"),
    "a100": ("NVIDIA A100-SXM4-40GB", 40960, "8.0"),
    "p100": ("Tesla P100-PCIE-16GB", 16384, "6.0"),
    "rtx": ("NVIDIA TITAN RTX", 24576, "7.5"),
    "rtx8000": ("Quadro RTX 8000", 49152, "7.5"),
    "h100": ("NVIDIA H100 80GB HBM3", 81920, "9.0"),
    "l40s": ("NVIDIA L40S", 46068, "8.9"),
}


def _node_gpus() -> list[tuple[int, str, int, str]]:
    """(index, name, memory MiB, compute capability) for every GPU declared on this node."""
    if sys.flags.no_site:  # the launcher skips site for speed; PyYAML lives in the site directories
        import site

        site.main()
    from orchestrator.cluster.config import load

    path = os.environ.get("MINIHPC_CLUSTER_CONFIG", "/etc/minihpc/cluster.yaml")
    node = os.environ.get("SLURMD_NODENAME") or socket.gethostname().split(".")[0]
    config = load(path)
    for cluster in config.clusters:
        for spec in cluster.nodes:
            if spec.name != node:
                continue
            mem_feature = next((f.split(":", 1)[1] for f in spec.features if f.startswith("gpu_mem:")), "")
            out = []
            idx = 0
            for g in spec.gres:
                if g.name != "gpu":
                    continue
                name, mem, cc = MODELS.get((g.type or "").lower(), (f"GPU {g.type or ''}".strip(), 16384, "7.0"))
                if mem_feature.upper().endswith("GB") and mem_feature[:-2].isdigit():
                    mem = int(mem_feature[:-2]) * 1024
                for _ in range(g.count):
                    out.append((idx, name, mem, cc))
                    idx += 1
            return out
    return []


def _visible(gpus: list[tuple[int, str, int, str]]) -> list[tuple[int, str, int, str]]:
    vis = os.environ.get("CUDA_VISIBLE_DEVICES")
    if vis is None:
        return gpus if os.getuid() == 0 else []
    wanted = [int(v) for v in vis.split(",") if v.strip().isdigit()]
    return [g for g in gpus if g[0] in wanted]


def _uuid(index: int) -> str:
    host = socket.gethostname().split(".")[0]
    digest = sum(ord(c) for c in host) * 7919 + index
    return f"GPU-{digest:08x}-minihpc-0000-{index:012d}"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        gpus = _visible(_node_gpus())
    except Exception:
        gpus = []
    if not gpus:
        print("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
              "Make sure that the latest NVIDIA driver is installed and running.")
        return 9
    if "-L" in args or "--list-gpus" in args:
        for i, (idx, name, _mem, _cc) in enumerate(gpus):
            print(f"GPU {i}: {name} (UUID: {_uuid(idx)})")
        return 0
    query = next((a.split("=", 1)[1] for a in args if a.startswith("--query-gpu=")), None)
    if query is not None:
        fmt = next((a.split("=", 1)[1] for a in args if a.startswith("--format=")), "csv")
        fields = [f.strip() for f in query.split(",")]
        units = "nounits" not in fmt
        if "noheader" not in fmt:
            print(", ".join(f + (" [MiB]" if f.startswith("memory.") and units else "") for f in fields))
        for i, (idx, name, mem, cc) in enumerate(gpus):
            values = {"index": str(i), "name": name, "uuid": _uuid(idx), "memory.total": f"{mem}",
                      "memory.used": "0", "memory.free": f"{mem}", "utilization.gpu": "0",
                      "compute_cap": cc, "pci.bus_id": f"00000000:{0x3B + idx:02X}:00.0",
                      "driver_version": "525.147.05", "temperature.gpu": "35"}
            row = [values.get(f, "[N/A]") + (" MiB" if f.startswith("memory.") and units else "") for f in fields]
            print(", ".join(row))
        return 0
    print(time.strftime("%a %b %d %H:%M:%S %Y"))
    print("+-----------------------------------------------------------------------------+")
    print("| NVIDIA-SMI 525.147.05   Driver Version: 525.147.05   CUDA Version: 12.0     |")
    print("|-------------------------------+----------------------+----------------------+")
    print("| GPU  Name        Persistence-M| Bus-Id        Disp.A | Volatile Uncorr. ECC |")
    print("| Fan  Temp  Perf  Pwr:Usage/Cap|         Memory-Usage | GPU-Util  Compute M. |")
    print("|===============================+======================+======================|")
    for i, (idx, name, mem, _cc) in enumerate(gpus):
        print(f"| {i:>3}  {name[:20]:<20}  On   | 00000000:{0x3B + idx:02X}:00.0 Off |                    0 |")
        print(f"| N/A   35C    P0    40W / 300W |  {0:>5}MiB / {mem:>5}MiB |      0%      Default |")
        print("+-------------------------------+----------------------+----------------------+")
    print("| minihpc: emulated GPUs declared in the cluster config; no CUDA device exists here. |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
