"""Format specs (squeue/sinfo ``-o``/``-O``, sacct ``-o``) and Slurm's value formatting."""

from __future__ import annotations

import pytest

from orchestrator.slurm.fmtspec import (
    Column,
    Spec,
    compile_format,
    convert_num_unit,
    node_state_code,
    node_state_compact,
    node_state_string,
    parse_format,
    parse_long_format,
    parse_sacct_format,
    print_str,
    render,
)
from orchestrator.slurm.timefmt import format_duration as secs_str
from orchestrator.slurm.timefmt import format_elapsed as secs2time_str


def test_parse_percent_format() -> None:
    prefix, specs = parse_format("%.18i %.9P %-10j|x%%y%Z")
    assert prefix == ""
    assert specs == [Spec("i", 18, True, " "), Spec("P", 9, True, " "), Spec("-", 0, False, "10j|x"),
                     Spec("y", 0, False, ""), Spec("Z", 0, False, "")]


def test_prefix_and_no_percent() -> None:
    assert parse_format("abc %i") == ("abc ", [Spec("i", 0, False, "")])
    assert parse_format("plain") == ("plain", [])


def test_parse_long_format() -> None:
    specs = parse_long_format("jobarrayid:.18 ,name:5,state:.10,reason:.6x,JobID")
    assert specs == [Spec("jobarrayid", 18, True, " "), Spec("name", 5, False, ""), Spec("state", 10, True, ""),
                     Spec("reason", 6, True, "x"), Spec("JobID", 20, False, "")]


def test_parse_sacct_format() -> None:
    assert parse_sacct_format("jobid%20,state,jobname%-15") == [("jobid", 20, True), ("state", None, True),
                                                                   ("jobname", 15, False)]


@pytest.mark.parametrize("text,width,right,cut,expected", [
    ("averyveryverylongjobname", 8, True, True, "averyver"),
    ("abc", 8, True, True, "     abc"),
    ("(Partition", 10, False, True, "(Partition"),
    ("(PartitionConfig)", 10, False, False, "(Partition"),  # left fields are always cut
    ("1-00:00:00", 5, True, False, "1-00:00:00"),         # right fields not cut when Slurm says so
    ("x", 0, False, True, "x"),
    ("x", -3, False, True, "x "),
])
def test_print_str(text: str, width: int, right: bool, cut: bool, expected: str) -> None:
    assert print_str(text, width, right, cut) == expected


def test_compile_and_render_match_print_str() -> None:
    cols = {"i": Column("JOBID", lambda r: r["id"]), "j": Column("NAME", lambda r: r["name"]),
            "M": Column("TIME", lambda r: r["t"], cut=False)}
    prefix, specs = parse_format("%.5i %4j|%.2M%%")
    template, funcs, header = compile_format(prefix, specs, cols)
    assert header == "JOBID NAME|TI"
    rows = [{"id": "12", "name": "longname", "t": "10:00"}, {"id": "123456", "name": "a", "t": "1"}]
    assert render(template, funcs, rows) == ["   12 long|10:00", "12345 a   | 1"]


def test_unknown_fields_print_their_literal() -> None:
    cols = {"i": Column("JOBID", lambda r: "7")}
    template, funcs, header = compile_format("", [Spec("?", 0, False, "", "%-10j|"), Spec("i", 3, True, "")], cols)
    assert header == "%-10j|JOBID"[:len("%-10j|") + 3]
    assert render(template, funcs, [{}]) == ["%-10j|  7"]


@pytest.mark.parametrize("num,orig,expected", [(0, 0, "0"), (2048, 0, "2K"), (100, 2, "100M"), (4096, 2, "4G"),
                                                (1536, 2, "1.50G"), (8000, 2, "8000M"), (2940, 1, "2940K"),
                                                (1048576, 1, "1G")])
def test_convert_num_unit(num: int, orig: int, expected: str) -> None:
    assert convert_num_unit(num, orig) == expected


@pytest.mark.parametrize("secs,expected", [(0, "0:00"), (61, "1:01"), (3600, "1:00:00"), (86400 + 3661, "1-01:01:01"),
                                           (-5, "INVALID")])
def test_secs_str(secs: int, expected: str) -> None:
    assert secs_str(secs) == expected


def test_secs2time_str() -> None:
    assert secs2time_str(10) == "00:00:10"
    assert secs2time_str(90061) == "1-01:01:01"


@pytest.mark.parametrize("state,flags,long,compact", [
    ("IDLE", [], "IDLE", "IDLE"), ("MIXED", [], "MIXED", "MIX"), ("ALLOCATED", [], "ALLOCATED", "ALLOC"),
    ("IDLE", ["DRAIN"], "DRAINED", "DRAIN"), ("MIXED", ["DRAIN"], "DRAINING", "DRNG"),
    ("DOWN", ["NOT_RESPONDING"], "DOWN*", "DOWN*"), ("IDLE", ["NOT_RESPONDING"], "IDLE*", "IDLE*"),
    ("COMPLETING", [], "COMPLETING", "COMP"), ("ALLOCATED", ["COMPLETING"], "ALLOCATED+", "ALLOC+"),
    ("UNKNOWN", [], "UNKNOWN", "UNK"),
])
def test_node_states(state: str, flags: list[str], long: str, compact: str) -> None:
    code = node_state_code(state, flags)
    assert node_state_string(code) == long
    assert node_state_compact(code) == compact
