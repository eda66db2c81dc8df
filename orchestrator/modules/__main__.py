"""``python3 -m orchestrator.modules``: validate, render, install the catalogue; report sizes.

Subcommands:
  validate [CATALOGUE]                     check the catalogue; every problem as file:line: key: reason
  render [CATALOGUE] OUTDIR [--optional G] write the Lua modulefiles only (no root, no Debian changes)
  install [CATALOGUE] [--optional G,...]   the image-build step (root): see orchestrator.modules.install
  sizes [--json]                           image size each module group adds (inside an image)
The optional groups may also come from $MINIHPC_OPTIONAL_MODULES (comma-separated).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from orchestrator.modules.catalogue import CatalogueError, load

log = logging.getLogger(__name__)

DEFAULT_CATALOGUE = Path(__file__).resolve().parents[2] / "images" / "modules" / "catalogue.yaml"


def _groups(text: str | None) -> set[str]:
    raw = text if text is not None else os.environ.get("MINIHPC_OPTIONAL_MODULES", "")
    return {g.strip() for g in raw.replace(" ", ",").split(",") if g.strip()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m orchestrator.modules", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_val = sub.add_parser("validate", help="check the catalogue")
    p_val.add_argument("catalogue", nargs="?", type=Path, default=DEFAULT_CATALOGUE)
    p_ren = sub.add_parser("render", help="write the Lua modulefiles into a directory")
    p_ren.add_argument("catalogue", type=Path)
    p_ren.add_argument("outdir", type=Path)
    p_ren.add_argument("--optional", default=None)
    p_ins = sub.add_parser("install", help="install into this image (root)")
    p_ins.add_argument("catalogue", nargs="?", type=Path, default=DEFAULT_CATALOGUE)
    p_ins.add_argument("--optional", default=None, help="optional groups to switch on, e.g. octave")
    p_ins.add_argument("--no-check", action="store_true", help="skip loading every module after install")
    p_siz = sub.add_parser("sizes", help="size each module group adds to this image")
    p_siz.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="modules: %(message)s", stream=sys.stderr)

    try:
        if args.cmd == "validate":
            cat = load(args.catalogue)
            print(f"{args.catalogue}: ok, {len(cat.modules)} modules in {len(cat.groups)} groups")
            return 0
        if args.cmd == "render":
            from orchestrator.modules.lua import render

            cat = load(args.catalogue)
            for m in cat.enabled(_groups(args.optional)):
                path = args.outdir / m.name / f"{m.full_version}.lua"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(render(cat, m), encoding="utf-8")
            return 0
        if args.cmd == "install":
            from orchestrator.modules.install import install

            cat = load(args.catalogue)
            install(
                cat,
                _groups(args.optional),
                base_dir=args.catalogue.resolve().parent,
                run_checks=not args.no_check,
            )
            return 0
        if args.cmd == "sizes":
            from orchestrator.modules.sizes import format_table, measure

            report = measure()
            print(json.dumps(report, indent=1) if args.json else format_table(report))
            return 0
    except CatalogueError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    except (RuntimeError, OSError) as exc:
        print(f"modules: error: {exc}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
