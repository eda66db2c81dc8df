"""Marker plumbing for the test pyramid: a test's directory gives its level.

tests/unit -> ``unit`` (no daemons, no Docker), tests/local -> ``local`` (daemons as
processes), tests/cluster -> ``cluster`` (real containers). ``make test`` runs each level
with ``-m LEVEL``, so a test never needs to repeat what its directory already says.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent
LEVELS = ("unit", "local", "cluster")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.fspath)).resolve()
        for level in LEVELS:
            if (HERE / level) in path.parents and not item.get_closest_marker(level):
                item.add_marker(getattr(pytest.mark, level))
