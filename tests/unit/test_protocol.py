"""The wire codec and the commands' start-up: same JSON as the json module, none of its imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.scheduler.protocol import dumps, loads

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]

VALUES: list[Any] = [
    {}, [], "", "x", 0, -7, 10**30, 1.5, -0.0, 1e-7, 1e300, None, True, False,
    {"job": {"name": "wrap", "env": {"A": "é\n\"\\\u2028\t", "B": ""}, "argv": ["a b", "c"]}},
    {"rows": [[1, "PENDING", None, 2.25, True], [2, "RUNNING", 3, 0.0, False]], "now": 1732420000.123456},
    {7: "int key", 2.5: "float key", True: "bool key", None: "null key"},
    ["\ud800 lone surrogate"], {"inf": float("inf"), "ninf": float("-inf")},
]


@pytest.mark.parametrize("value", VALUES)
def test_dumps_is_json_dumps_byte_for_byte(value: Any) -> None:
    assert dumps(value) == json.dumps(value, separators=(",", ":"))


@pytest.mark.parametrize("value", VALUES)
def test_loads_reads_what_json_reads(value: Any) -> None:
    text = json.dumps(value, indent=1)
    assert loads(text) == json.loads(text)
    assert loads(text.encode()) == json.loads(text)


@pytest.mark.parametrize("bad", [object(), {"a": {1, 2}}, {(1, 2): 3}])
def test_dumps_refuses_what_json_refuses(bad: Any) -> None:
    with pytest.raises(TypeError) as theirs:
        json.dumps(bad, separators=(",", ":"))
    with pytest.raises(TypeError) as ours:
        dumps(bad)
    assert str(ours.value) == str(theirs.value)


def test_dumps_detects_cycles_and_recovers() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        dumps(loop)
    shared = [1]
    assert dumps([shared, shared]) == "[[1],[1]]"  # the same object twice is not a cycle


@pytest.mark.parametrize("bad", ["", "   ", "[1,", '{"a":1}x', "nul", "[1] 2", b"\xff", "{'a': 1}"])
def test_loads_refuses_malformed_text(bad: str | bytes) -> None:
    with pytest.raises(ValueError):
        loads(bad)


def test_commands_start_without_heavy_modules() -> None:
    """What sbatch and squeue load before they run: no json/re/enum/socket/typing/collections/datetime/ctypes
    (munge credentials are made over munged's socket; only the daemons load libmunge)."""
    code = ("import sys\nsys.path.insert(0, sys.argv[1])\n"
            "import orchestrator.commands.sbatch, orchestrator.commands.squeue, orchestrator.scheduler.client\n"
            "import orchestrator.slurm.options, orchestrator.slurm.directives, orchestrator.slurm.timefmt\n"
            "print(' '.join(sorted(sys.modules)))\n")
    r = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(ROOT)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    loaded = set(r.stdout.split())
    heavy = {"json", "re", "enum", "socket", "selectors", "typing", "collections", "datetime", "importlib",
             "dataclasses", "logging", "encodings.idna", "ctypes", "_ctypes"}
    assert loaded & heavy == set()


def test_columns_travel_packed_only_when_every_value_is_the_same() -> None:
    from orchestrator.scheduler.protocol import pack_columns, unpack_columns

    columns: list[list[Any]] = [[1, 3, 2], ["PENDING"] * 3, [None] * 3, [0, 0.0, False], [0.0] * 3, [1, True, 1],
                                [[1], [1], [1]]]
    packed = pack_columns(columns)
    assert packed == [[1, 3, 2], {"all": "PENDING"}, {"all": None}, [0, 0.0, False], {"all": 0.0}, [1, True, 1],
                      {"all": [1]}]
    back = loads(dumps(packed))
    assert [list(c) for c in unpack_columns(back, 3)] == columns
    assert pack_columns([[], []]) == [[], []] and unpack_columns([[], []], 0) == [[], []]


def test_evenly_stepping_integers_travel_as_a_range() -> None:
    from orchestrator.scheduler.protocol import pack_columns, unpack_columns

    columns: list[list[Any]] = [[5, 6, 7, 8], [90, 80, 70, 60], [1, 2, 4, 5], [1, 2, 3.0, 4], [1, 2, True, 4],
                                [0, 1], [7, 7, 7, 7], [0, 0, 1, 2]]
    packed = pack_columns(columns)
    assert packed == [{"from": 5, "step": 1}, {"from": 90, "step": -10}, [1, 2, 4, 5], [1, 2, 3.0, 4],
                      [1, 2, True, 4], [0, 1], {"all": 7}, [0, 0, 1, 2]]
    back = unpack_columns(loads(dumps(packed)), 4)
    assert [list(c) for c in back[:5]] == columns[:5] and list(back[6]) == [7, 7, 7, 7]
    assert [type(v) for v in back[3]] == [int, int, float, int]
