"""``--array`` specifications read as slurmctld 22.05 reads them (cases checked against a real one)."""

from __future__ import annotations

import pytest

from orchestrator.slurm.arrays import ArraySpecError, parse_array

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("spec", "ids", "throttle"), [
    ("1-3", [1, 2, 3], 0),
    ("1-15:4", [1, 5, 9, 13], 0),
    ("1,3,5%2", [1, 3, 5], 2),
    ("01-03", [1, 2, 3], 0),
    ("0-1000", list(range(1001)), 0),
    # Slurm's leniency: empty items skipped, an item may end at the %, the throttle is read like atoi()
    ("%2", [0], 2),
    ("%", [0], 0),
    ("1-3%", [1, 2, 3], 0),
    ("1-3%0", [1, 2, 3], 0),
    ("1,,2", [1, 2], 0),
    (",1", [1], 0),
    ("1-3,", [1, 2, 3], 0),
    ("1-3,%2", [0, 1, 2, 3], 2),
    (",2%2", [2], 2),
    ("1-3%x", [1, 2, 3], 0),
    ("1-3%2x", [1, 2, 3], 2),
    ("1-3%+2", [1, 2, 3], 2),
    ("1-3%-1", [1, 2, 3], 0),
    ("1-3%99999999999", [1, 2, 3], 1215752191),
    (",", [], 0),
])
def test_array_specs_slurm_accepts(spec: str, ids: list[int], throttle: int) -> None:
    parsed = parse_array(spec)
    assert (parsed.ids, parsed.throttle) == (ids, throttle)


@pytest.mark.parametrize("spec", ["0-1001", "1001", "a-b", "3-1", "1-5:0", "-1", "1-2:3:4", "5-", "1-3:-1", "1:2",
                                  "0x3", "1 ,2"])
def test_array_specs_slurm_refuses(spec: str) -> None:
    with pytest.raises(ArraySpecError):
        parse_array(spec)


@pytest.mark.parametrize(("spec", "step"), [("1-15:4", 4), ("1-3", 1), ("5", 1), ("2,4,6", 1), ("1-7:2,9", 2),
                                            ("1-9:2,1-9:4", 2), ("1-9:4,1-9:2", 4), ("0-4,5-9:5", 5),
                                            ("0-6:3%1", 3)])
def test_array_task_step_is_the_first_step_written(spec: str, step: int) -> None:
    assert parse_array(spec).step == step
