"""Waiting for an allocation: what srun and salloc do when a signal withdraws the request."""
from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from orchestrator.commands import _alloc
from orchestrator.commands._common import Exit

pytestmark = pytest.mark.unit


class _SignalledClient:
    """Pending for ever; each call delivers a SIGINT, as timeout(1) does to the command and then its group."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def call(self, op: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(op)
        os.kill(os.getpid(), signal.SIGINT)
        return {"state": "PENDING", "reason": "Resources"}


def test_a_second_signal_does_not_interrupt_withdrawing_the_request(capsys):
    client = _SignalledClient()
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(Exit) as exc:
        _alloc.wait_allocation("salloc", client, 7, pending_line=True, immediate=False)
    assert exc.value.code == 1
    assert client.calls == ["alloc_wait", "alloc_complete"]
    assert capsys.readouterr().err.splitlines()[-2:] == ["salloc: Job allocation 7 has been revoked.",
                                                        "salloc: Job aborted due to signal"]
    assert signal.getsignal(signal.SIGINT) is before


class _SlowQueueClient:
    """Pending for three polls, then running: records how long each poll asked the controller to block."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def call(self, op: str, body: dict[str, Any]) -> dict[str, Any]:
        self.waits.append(float(body["timeout"]))
        if len(self.waits) < 4:
            return {"state": "PENDING", "reason": "Resources"}
        return {"state": "RUNNING", "nodes": "node1", "env": {}, "ready": True}


def test_a_long_wait_polls_within_the_clients_socket_timeout(capsys):
    # a poll that blocks longer than the socket timeout would fail a job pending for 30 s with
    # "Socket timed out on send/recv operation"
    from orchestrator.scheduler.client import TIMEOUT

    client = _SlowQueueClient()
    state = _alloc.wait_allocation("srun", client, 8, pending_line=False, immediate=False)
    assert state["state"] == "RUNNING"
    assert len(client.waits) == 4 and max(client.waits) < TIMEOUT
    assert capsys.readouterr().err.splitlines() == ["srun: job 8 queued and waiting for resources",
                                                    "srun: job 8 has been allocated resources"]
