"""One progress line per phase, as kind prints them.

On a terminal a spinner turns while a phase runs and the line closes with ✓ or ✗ and the
phase's time; otherwise (CI, pipes) each phase is one plain line when it ends. With
``-v`` the phase's subprocess output is shown indented beneath it (no spinner then).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

log = logging.getLogger(__name__)

_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class Status:
    def __init__(self, stream: TextIO | None = None, verbose: bool = False) -> None:
        self.stream = stream or sys.stdout
        self.verbose = verbose
        self.tty = self.stream.isatty() and not verbose
        self._lock = threading.Lock()
        self._title = ""
        self.phases: list[tuple[str, float, bool]] = []
        self.ok = "✓" if self._unicode() else "+"
        self.bad = "✗" if self._unicode() else "x"

    def _unicode(self) -> bool:
        enc = (getattr(self.stream, "encoding", None) or "").lower()
        return "utf" in enc

    def _write(self, text: str) -> None:
        with self._lock:
            self.stream.write(text)
            self.stream.flush()

    def line(self, text: str) -> None:
        """A plain line (a heading, a note)."""
        self._write(text + "\n")

    def detail(self, text: str) -> None:
        """Subprocess output: shown only with -v."""
        if self.verbose:
            self._write(f"    {text}\n")

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        t0 = time.monotonic()
        self._title = title
        stop = threading.Event()
        spinner = None
        if self.tty:
            def spin() -> None:
                i = 0
                while not stop.wait(0.1):
                    self._write(f"\r {_FRAMES[i % len(_FRAMES)]} {title} ({time.monotonic() - t0:.1f}s)\x1b[K")
                    i += 1

            spinner = threading.Thread(target=spin, daemon=True)
            spinner.start()
        elif self.verbose:
            self._write(f" • {title} ...\n")
        ok = False
        try:
            yield
            ok = True
        finally:
            stop.set()
            if spinner is not None:
                spinner.join()
            elapsed = time.monotonic() - t0
            self.phases.append((title, elapsed, ok))
            mark = self.ok if ok else self.bad
            prefix = "\r" if self.tty else ""
            self._write(f"{prefix} {mark} {title} ({elapsed:.1f}s)" + ("\x1b[K" if self.tty else "") + "\n")
