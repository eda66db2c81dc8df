"""minihpc: an ARC-style HPC service in Docker with a Slurm-compatible Python scheduler."""
from __future__ import annotations

__version__ = "0.1.0"
SLURM_VERSION = "22.05.8"
