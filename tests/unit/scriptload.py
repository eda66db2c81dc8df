"""Load a script of the images (a file with no .py suffix, run inside containers) as a module, to test it."""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path
from typing import Any


def load_script(path: Path, name: str) -> Any:
    loader = importlib.machinery.SourceFileLoader(name, str(path))
    spec = importlib.util.spec_from_loader(name, loader)
    assert spec is not None
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod
