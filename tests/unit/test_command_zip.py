"""images/common/opt/minihpc/bin/build-command-zip: the commands' code as one zip, imported from it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from scriptload import load_script

SCRIPT = Path(__file__).parents[2] / "images" / "common" / "opt" / "minihpc" / "bin" / "build-command-zip"


def _load() -> Any:
    return load_script(SCRIPT, "build_command_zip")


def test_the_zip_holds_the_whole_package_and_is_what_gets_imported(tmp_path: Path) -> None:
    root = tmp_path / "opt"
    pkg = root / "orchestrator" / "commands"
    pkg.mkdir(parents=True)
    (root / "orchestrator" / "__init__.py").write_text("from __future__ import annotations\n")
    (pkg / "__init__.py").write_text("")
    (pkg / "hello.py").write_text("from __future__ import annotations\n\ndef main() -> int:\n"
                                  "    raise RuntimeError('boom')\n")
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "stale.cpython-311.pyc").write_bytes(b"junk")
    out = tmp_path / "run" / "commands.zip"
    assert _load().main(["build-command-zip", str(out), str(root)]) == 0
    names = set(zipfile.ZipFile(out).namelist())
    assert {"orchestrator/__init__.pyc", "orchestrator/commands/hello.pyc", "__future__.pyc"} <= names
    assert not any("__pycache__" in n for n in names)
    # a later edit on disk is not what runs: the zip is (and tracebacks show the line from disk); -IS as
    # the launcher runs
    hello = root / "orchestrator" / "commands" / "hello.py"
    hello.write_text(hello.read_text().replace("boom", "bang"))
    code = ("import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
            "import orchestrator.commands.hello as h, __future__\n"
            "print(h.__file__); print(__future__.__file__); h.main()")
    r = subprocess.run([sys.executable, "-IS", "-c", code, str(out), str(root)], capture_output=True, text=True)
    assert r.stdout.splitlines()[0] == f"{out}/orchestrator/commands/hello.pyc"
    assert r.stdout.splitlines()[1] == f"{out}/__future__.pyc"
    assert "RuntimeError: boom" in r.stderr, r.stderr
    assert f'File "{hello}", line 4, in main' in r.stderr


def test_usage_error_exits_2(capsys: Any) -> None:
    assert _load().main(["build-command-zip"]) == 2
    assert "usage: build-command-zip OUT.zip [ROOT]" in capsys.readouterr().err


def test_extension_modules_are_copied_and_imported_from_the_copy(tmp_path: Path) -> None:
    """The launcher puts lib-dynload/ beside the zip ahead of the standard library: the copies load."""
    dest = tmp_path / "lib-dynload"
    copied = _load().copy_extensions(str(dest), ("_json", "sys", "no_such_module"))
    if not copied:
        pytest.skip("this interpreter has _json built in")
    assert copied == [p.name for p in dest.iterdir()] and copied[0].startswith("_json.")
    code = "import sys; sys.path.insert(0, sys.argv[1]); import _json; print(_json.__file__)"
    r = subprocess.run([sys.executable, "-IS", "-c", code, str(dest)], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == str(dest / copied[0])


def test_main_writes_the_zip_and_the_extension_modules_beside_it(tmp_path: Path, capsys: Any) -> None:
    root = tmp_path / "opt"
    (root / "orchestrator").mkdir(parents=True)
    (root / "orchestrator" / "__init__.py").write_text("")
    out = tmp_path / "lib" / "commands.zip"
    assert _load().main(["build-command-zip", str(out), str(root)]) == 0
    ext = sorted(p.name.split(".")[0] for p in (tmp_path / "lib" / "lib-dynload").iterdir())
    assert set(ext) <= {"_json", "_ctypes", "termios"} and "_json" in ext
    assert "extension modules beside it" in capsys.readouterr().out
