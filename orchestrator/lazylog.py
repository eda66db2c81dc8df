"""Module loggers that import :mod:`logging` only when something is logged.

User commands start in tens of milliseconds; importing logging (with traceback,
threading and string) on every sbatch costs a noticeable share of that on
fuse-overlayfs. Commands and the libraries they load keep one logger per module
through this, and pay for logging only when they use it.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing alone costs milliseconds
if TYPE_CHECKING:
    from typing import Any

__all__ = ["get_logger"]


class _LazyLogger:
    __slots__ = ("_logger", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, attr: str) -> Any:
        if self._logger is None:
            import logging

            self._logger = logging.getLogger(self._name)
        return getattr(self._logger, attr)


def get_logger(name: str) -> Any:
    """Like ``logging.getLogger(name)``, imported on first use."""
    return _LazyLogger(name)
