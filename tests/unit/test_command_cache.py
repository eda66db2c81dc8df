"""images/common/opt/minihpc/bin/build-command-cache: what the commands run, laid out for a tmpfs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from scriptload import load_script

SCRIPT = Path(__file__).parents[2] / "images" / "common" / "opt" / "minihpc" / "bin" / "build-command-cache"


def _load() -> Any:
    return load_script(SCRIPT, "build_command_cache")


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "opt"
    pkg = root / "orchestrator" / "commands"
    pkg.mkdir(parents=True)
    (root / "orchestrator" / "__init__.py").write_text("from __future__ import annotations\n")
    (pkg / "__init__.py").write_text("")
    (pkg / "hello.py").write_text("from __future__ import annotations\n\ndef main() -> int:\n"
                                  "    raise RuntimeError('boom')\n")
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "stale.cpython-311.pyc").write_bytes(b"junk")
    (root / "bin").mkdir()
    (root / "bin" / "slurm-command").write_text("#!/usr/bin/python3 -IS\n")
    return root


def test_byte_code_tree_holds_the_whole_package_and_is_what_gets_imported(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    out = tmp_path / "lib" / "commands"
    assert _load().main(["build-command-cache", str(out), str(root)]) == 0
    py = out / "py"
    names = {str(p.relative_to(py)) for p in py.rglob("*.pyc")}
    assert names == {"orchestrator/__init__.pyc", "orchestrator/commands/__init__.pyc",
                     "orchestrator/commands/hello.pyc", "__future__.pyc"}, "no __pycache__, no stale files"
    assert not list(py.rglob("*.py")), "byte code only: the sources stay on disk"
    assert (out / "bin" / "slurm-command").read_text() == "#!/usr/bin/python3 -IS\n"
    # a later edit on disk is not what runs: the byte code is (and tracebacks show the line from disk);
    # -IS as the launcher runs
    hello = root / "orchestrator" / "commands" / "hello.py"
    hello.write_text(hello.read_text().replace("boom", "bang"))
    code = ("import sys; sys.path[:0] = [sys.argv[1]]; sys.path.append(sys.argv[2])\n"
            "import orchestrator.commands.hello as h, __future__\n"
            "print(h.__file__); print(__future__.__file__); h.main()")
    r = subprocess.run([sys.executable, "-IS", "-c", code, str(py), str(root)], capture_output=True, text=True)
    assert r.stdout.splitlines()[0] == f"{py}/orchestrator/commands/hello.pyc"
    assert r.stdout.splitlines()[1] == f"{py}/__future__.pyc"
    assert "RuntimeError: boom" in r.stderr, r.stderr
    assert f'File "{hello}", line 4, in main' in r.stderr


def test_a_rebuild_replaces_the_tree_whole(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    out = tmp_path / "commands"
    assert _load().main(["build-command-cache", str(out), str(root)]) == 0
    (root / "orchestrator" / "commands" / "hello.py").unlink()
    assert _load().main(["build-command-cache", str(out), str(root)]) == 0
    assert not (out / "py" / "orchestrator" / "commands" / "hello.pyc").exists()
    assert not (tmp_path / "commands.partial").exists()


def test_extension_modules_are_copied_and_imported_from_the_copy(tmp_path: Path) -> None:
    """The launcher puts lib-dynload/ ahead of the standard library: the copies load."""
    dest = tmp_path / "lib-dynload"
    copied = _load().copy_extensions(str(dest), ("_json", "sys", "no_such_module"))
    if not copied:
        pytest.skip("this interpreter has _json built in")
    assert copied == [p.name for p in dest.iterdir()] and copied[0].startswith("_json.")
    code = "import sys; sys.path.insert(0, sys.argv[1]); import _json; print(_json.__file__)"
    r = subprocess.run([sys.executable, "-IS", "-c", code, str(dest)], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == str(dest / copied[0])


def test_main_reports_and_lays_out_the_extension_modules(tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "commands"
    assert _load().main(["build-command-cache", str(out), str(_tree(tmp_path))]) == 0
    ext = sorted(p.name.split(".")[0] for p in (out / "lib-dynload").iterdir())
    assert set(ext) <= {"_json", "_ctypes", "termios"} and "_json" in ext
    assert "4 modules and" in capsys.readouterr().out


def test_usage_error_exits_2(capsys: Any) -> None:
    assert _load().main(["build-command-cache"]) == 2
    assert "usage: build-command-cache OUT [ROOT]" in capsys.readouterr().err
