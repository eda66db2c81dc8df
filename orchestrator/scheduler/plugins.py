"""The services the controller runs on top of its queue, in the order their hooks are called.

Each entry takes the Controller and returns a ``Plugin``. Adding a service means
adding one line here, not editing the controller. ``Plugin`` lives here rather
than in controller.py so that the node daemon, which imports the step service's
module, does not load the controller, its store and SQLite.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from orchestrator.scheduler.controller import Controller
    from orchestrator.scheduler.job import Job


class Plugin:
    """A service layered on the controller. Subclasses override what they need."""

    def handlers(self) -> dict[str, Any]:
        return {}

    def eligibility(self, job: Job) -> str | None:
        """A pending reason that keeps the job from starting, or None."""
        return None

    def on_submit(self, job: Job) -> None:
        """A job is about to be accepted (or tested); raise SlurmError to refuse it."""

    def on_start(self, job: Job) -> None:
        """The job was just allocated (state RUNNING, start_time set)."""

    def on_update(self, job: Job) -> None:
        """``scontrol update`` changed the job (a running job's time limit, say)."""

    def on_end(self, job: Job) -> None:
        """A run of the job ended (finished, or requeued); its end_time and steps are set."""

    async def launch(self, job: Job, tasks: dict[str, int]) -> bool:
        """The job is starting on its nodes; True when the plugin started it (no batch script to run)."""
        return False


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
