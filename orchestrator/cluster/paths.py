"""Where minihpc keeps things on the host: the checkout and its git-ignored ``.minihpc/``."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


def repo_root() -> Path:
    """The checkout holding ``images/`` (the package is installed editable from it)."""
    env = os.environ.get("MINIHPC_ROOT")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Paths:
    """Everything generated lives under ``state`` (``.minihpc/`` in the checkout)."""

    root: Path
    state: Path

    @classmethod
    def default(cls) -> Paths:
        root = repo_root()
        state = Path(os.environ.get("MINIHPC_STATE", root / ".minihpc")).resolve()
        return cls(root, state)

    @property
    def images(self) -> Path:
        return self.root / "images"

    @property
    def keys(self) -> Path:
        """Users' ssh key pairs: ``keys/<user>`` and ``keys/<user>.pub``."""
        return self.state / "keys"

    @property
    def hostkeys(self) -> Path:
        return self.state / "hostkeys"

    @property
    def run(self) -> Path:
        """Per-cluster directories mounted read-only at /etc/minihpc."""
        return self.state / "run"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def cache(self) -> Path:
        return self.state / "cache"

    @property
    def known_hosts(self) -> Path:
        """Host keys of the published login nodes, for ``minihpc ssh``."""
        return self.state / "known_hosts"

    def display(self, path: Path) -> str:
        """A path relative to the current directory when that is shorter (for ssh lines)."""
        try:
            return os.path.relpath(path)
        except ValueError:
            return str(path)
