"""The host CLI's words: bad config and bad environment are one paragraph, never a traceback."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from orchestrator import cli
from orchestrator.cluster.config import load
from orchestrator.cluster.paths import Paths
from orchestrator.cluster.status import Status

FIXTURES = Path(__file__).parent / "fixtures"


def test_bad_config_is_refused_before_anything_starts(capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_provider", lambda: pytest.fail("must not reach Docker"))
    rc = cli.main(["up", "--config", str(FIXTURES / "invalid-port.yaml")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "invalid-port.yaml: clusters[0].login.ssh_port: 70000 is too large" in err
    assert "Traceback" not in err


def test_docker_not_running_is_one_paragraph(capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    rc = cli.main(["status"])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.startswith("ERROR: Docker is not running or not reachable")
    assert "Hint: Is the Docker engine running" in err
    assert "Traceback" not in err


def test_ssh_command_line(tmp_path: Path) -> None:
    paths = Paths(tmp_path, tmp_path / ".minihpc")
    (paths.keys).mkdir(parents=True)
    (paths.keys / "bob").write_text("key")
    argv = cli.ssh_command(paths, load(None), "bob", "htc", ["id", "-u"])
    assert argv[:3] == ["ssh", "-p", "2223"]
    assert argv[argv.index("-i") + 1] == str(paths.keys / "bob")
    assert f"UserKnownHostsFile={paths.known_hosts}" in argv
    assert argv[-3:] == ["bob@localhost", "id", "-u"]
    interactive = cli.ssh_command(paths, load(None), "bob", None, [])
    assert interactive[-2:] == ["-t", "bob@localhost"] and "2222" in interactive


def test_ssh_unknown_user_or_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["ssh", "mallory"]) == 1
    assert "No user 'mallory'" in capsys.readouterr().err
    assert cli.main(["ssh", "alice", "--cluster", "nope"]) == 1
    assert "No cluster 'nope'" in capsys.readouterr().err


def test_double_dash_splits_the_command() -> None:
    captured = {}

    def fake(args: object) -> int:
        captured["args"] = args
        return 0

    parser_main = cli.main
    cli_args = ["ssh", "bob", "--cluster", "htc", "--", "ls", "-l", "--color"]
    original = cli.cmd_ssh
    try:
        cli.cmd_ssh = fake  # type: ignore[assignment]
        # build_parser binds the function at parse time, so rebuild through main
        assert parser_main(cli_args) == 0
    finally:
        cli.cmd_ssh = original  # type: ignore[assignment]
    args = captured["args"]
    assert (args.user, args.cluster, args.command) == ("bob", "htc", ["ls", "-l", "--color"])  # type: ignore[attr-defined]


def test_status_lines_plain_when_not_a_terminal() -> None:
    out = io.StringIO()
    status = Status(out)
    with status.step("Doing a thing"):
        pass
    with pytest.raises(RuntimeError), status.step("Failing"):
        raise RuntimeError("x")
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(" ") and "Doing a thing (" in lines[0] and lines[0].endswith("s)")
    assert "Failing" in lines[1] and lines[0][1] != lines[1][1], "success and failure marks differ"
    assert "\r" not in out.getvalue()


def test_credits_is_handed_to_the_services_tool(monkeypatch: pytest.MonkeyPatch) -> None:
    import orchestrator.services.credits_cli as credits_cli

    seen = {}

    def fake(config: object, argv: list[str]) -> int:
        seen["argv"] = argv
        seen["source"] = config.source  # type: ignore[attr-defined]
        return 7

    monkeypatch.setattr(credits_cli, "host_main", fake)
    quick = str(Path(__file__).parents[2] / "examples" / "quick.yaml")
    assert cli.main(["--config", quick, "credits", "add", "chem-proj", "10"]) == 7
    assert seen == {"argv": ["add", "chem-proj", "10"], "source": quick}
    assert cli._subcommand(["-v", "--config", "x", "up"]) == "up"
