"""The services the controller runs on top of its queue, in the order their hooks are called.

Each entry takes the Controller and returns a ``controller.Plugin``. Adding a
service means adding one line here, not editing the controller.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.scheduler.controller import Controller, Plugin

PLUGINS: list[Callable[[Controller], Plugin]] = []


def _quota(ctl: Controller) -> Plugin:
    from orchestrator.services.quota import QuotaPlugin

    return QuotaPlugin(ctl)


def _credits(ctl: Controller) -> Plugin:
    from orchestrator.services.credits import CreditsPlugin

    return CreditsPlugin(ctl)


def _steps(ctl: Controller) -> Plugin:
    from orchestrator.scheduler.steps import ControllerSteps

    return ControllerSteps(ctl)


PLUGINS += [_steps]  # job steps (issue 4): srun/salloc allocations, step_create/step_complete/alloc_* ops
PLUGINS += [_quota, _credits]  # ARC services (issue 7): storage quotas at submit, credits at start/end


def _snapshots(ctl: Controller) -> Plugin:
    from orchestrator.services.snapshots import SnapshotPlugin

    return SnapshotPlugin(ctl)


PLUGINS += [_snapshots]  # hourly read-only copies of $HOME in $HOME/.snapshot (ledger's cluster, as root)
