"""srun's option checks against a fake controller: the words and exit statuses of real Slurm 22.05's srun."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakeslurm import FakeSlurm, run, slurm_fixture  # noqa: F401 - the fixture

from orchestrator.scheduler.protocol import RpcError

pytestmark = pytest.mark.unit

FATAL = "srun: fatal: Failed to parse --cpu-bind= values.\n"


@pytest.mark.parametrize("value", ["q", "quiet", "none", "no", "cores", "verbose", "v,cores", "rank,v", "Sockets",
                                   "map_cpu:0,1", "mask_cpu:0x3,0xc", "map_cpu:0*2,1", "one_thread,threads"])
def test_cpu_bind_values_srun_accepts_reach_the_step(slurm: FakeSlurm, monkeypatch: pytest.MonkeyPatch,
                                                     value: str) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    slurm.on("step_create", RpcError("ESLURM_DISABLED", "Requested operation is presently disabled"))
    rc, _, err = run("srun", f"--cpu-bind={value}", "true")
    assert (rc, err) == (1, "srun: error: Unable to create step for job 7: Requested operation is presently "
                            "disabled\n")
    assert slurm.ops("step_create")[0]["cpu_bind"] == value


@pytest.mark.parametrize(("value", "message"), [
    ("bogus", 'srun: error: unrecognized --cpu-bind argument "bogus"\n'),
    ("map_cpu:0,x1", 'srun: error: unrecognized --cpu-bind argument "x1"\n'),
    ("v,,cores", 'srun: error: unrecognized --cpu-bind argument "v,"\n'),
    ("map_cpu:", 'srun: error: missing list for "--cpu-bind=map_cpu:<list>"\n'),
    ("map_cpu:1a", "srun: error: Failed to validate number: 1a, the offending character is a\n"),
    ("mask_cpu:0xg", "srun: error: Failed to validate number: g, the offending character is g\n"),
    ("map_cpu:1*x", "srun: error: Failed to validate number: *x, the offending character is x\n"),
    ("map_cpu:1*0", "srun: error: Invalid map_cpu multiplier: 0\n"),
])
def test_bad_cpu_bind_values_are_fatal(slurm: FakeSlurm, value: str, message: str) -> None:
    rc, out, err = run("srun", f"--cpu-bind={value}", "true")
    assert (rc, out, err) == (1, "", message + FATAL)
    assert not slurm.calls


def test_unparsable_nodelist_outside_and_inside_an_allocation(slurm: FakeSlurm,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    rc, _, err = run("srun", "-w", "bad[", "true")
    assert (rc, err) == (1, "srun: error: Unable to allocate resources: Invalid node name specified\n")
    monkeypatch.setenv("SLURM_JOB_ID", "12")
    rc, _, err = run("srun", "-w", "bad[", "true")
    assert (rc, err) == (1, "srun: error: Unable to create step for job 12: Requested node configuration is not "
                            "available\n")
    assert not slurm.calls


@pytest.mark.parametrize("prog", ["srun", "salloc"])
def test_unknown_cluster_gets_the_multi_cluster_message(slurm: FakeSlurm, prog: str) -> None:
    rc, _, err = run(prog, "-M", "nosuch", "true")
    assert (rc, err) == (1, f"{prog}: error: 'nosuch' can't be reached now, or it is an invalid entry for "
                            "--cluster.  Use 'sacctmgr list clusters' to see available clusters.\n")
    assert not slurm.calls


def test_missing_stdin_file_stops_srun_before_anything_runs(slurm: FakeSlurm, tmp_path: Path) -> None:
    rc, _, err = run("srun", "-i", str(tmp_path / "missing.txt"), "true")
    assert (rc, err) == (1, "srun: error: Could not open stdin file: No such file or directory\n")
    assert not slurm.calls


@pytest.mark.parametrize(("spec", "ntasks", "nnodes", "mem_known", "env"), [
    # as real srun 22.05 sets SLURM_DISTRIBUTION in its tasks
    ("", 1, 1, False, {}),                                  # srun -n1 making its own allocation
    ("", 1, 1, True, {"SLURM_DISTRIBUTION": "cyclic"}),     # inside one, or with --mem/--mem-per-cpu
    ("", 2, 1, False, {}),                                  # srun -n2 making its own allocation
    ("", 2, 1, True, {"SLURM_DISTRIBUTION": "block"}),      # inside one, or with --mem/--mem-per-cpu
    ("cyclic", 2, 1, False, {"SLURM_DISTRIBUTION": "cyclic"}),
    ("block:cyclic", 2, 1, False, {"SLURM_DISTRIBUTION": "block:cyclic"}),
    ("plane=2", 2, 1, False, {"SLURM_DISTRIBUTION": "plane", "SLURM_DIST_PLANESIZE": "2"}),
])
def test_distribution_in_the_task_environment(spec: str, ntasks: int, nnodes: int, mem_known: bool,
                                              env: dict[str, str]) -> None:
    from orchestrator.commands.srun import distribution_env

    assert distribution_env(spec, ntasks, nnodes, mem_known) == env


@pytest.mark.parametrize("prog", ["srun", "salloc"])
def test_help_and_usage_are_slurms_whole_texts(slurm: FakeSlurm, prog: str) -> None:
    # 22.05's texts, exit 0; they were only their first line
    rc, out, err = run(prog, "--help")
    assert (rc, err) == (0, "") and out.startswith(f"Usage: {prog} [OPTIONS(0)...")
    assert "  -A, --account=name          charge job to specified account\n" in out
    assert out.rstrip().splitlines()[-1].startswith("  -V, --version")
    rc, out, _ = run(prog, "--usage")
    assert rc == 0 and out.startswith(f"Usage: {prog} [-N n") and len(out.splitlines()) > 10
