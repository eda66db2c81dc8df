"""Errors the host CLI shows as one paragraph (plus the failing command's output), never a traceback."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class MinihpcError(Exception):
    """A failure with words for the user: what, the command output if any, and what to do."""

    def __init__(self, message: str, *, output: str = "", hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.output = output
        self.hint = hint


class EnvironmentProblem(MinihpcError):
    """The machine is not ready for minihpc (Docker down, port taken, disk full...)."""


class StepFailed(MinihpcError):
    """One bring-up step failed; the cluster may be half made."""

    def __init__(self, step: str, message: str, *, output: str = "", hint: str = "") -> None:
        super().__init__(message, output=output, hint=hint)
        self.step = step
