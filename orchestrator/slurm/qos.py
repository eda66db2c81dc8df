"""The QOS names the accounting knows: ARC's ``normal`` and ``priority`` (charged to ``<project>-priority``).

One place for the controller, which refuses others at submit, and sacct, which refuses them in ``-q``.
"""

from __future__ import annotations

__all__ = ["QOS_NAMES"]

QOS_NAMES = ("normal", "priority")
