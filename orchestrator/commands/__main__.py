"""``python -m orchestrator.commands <name> args...``: run one user command by name."""

from __future__ import annotations

import sys

from orchestrator.commands import main

sys.exit(main(sys.argv[1:]))
