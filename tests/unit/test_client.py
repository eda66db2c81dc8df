"""The commands' client: which controller address it tries, and when it falls back to the name."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.scheduler import client
from orchestrator.scheduler.client import Client, ClientConfig
from orchestrator.scheduler.protocol import WRONG_CLUSTER, RpcError

VIEW = {"cluster": "arc", "munge_socket": None, "clusters": {
    "arc": {"host": "arc-controller", "addr": "10.1.0.3", "port": 6817},
    "htc": {"host": "htc-controller", "port": 6818}}}


def test_recorded_address_first_then_the_name() -> None:
    cfg = ClientConfig(VIEW)
    assert cfg.addresses() == [("10.1.0.3", 6817), ("arc-controller", 6817)]
    assert cfg.addresses("htc") == [("htc-controller", 6818)]
    assert cfg.address() == ("arc-controller", 6817), "the name is what scontrol ping shows"


class Wire:
    """Stands in for the network: which addresses refuse, and what each one answers."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, refuse: set[str], answers: dict[str, dict[str, Any]]) -> None:
        self.tried: list[tuple[str, float]] = []
        self.sent: list[tuple[str, bytes]] = []
        monkeypatch.setattr(client, "_config", ClientConfig(VIEW))
        monkeypatch.setattr(client, "signed_request", lambda op, body, cluster="": f"{op}:{cluster}".encode())
        monkeypatch.setattr(client, "open_tcp", self.open_tcp)
        monkeypatch.setattr(Client, "_exchange", staticmethod(self.exchange))
        self.refuse = refuse
        self.answers = answers

    def open_tcp(self, address: tuple[str, int], timeout: float) -> Any:
        self.tried.append((address[0], timeout))
        if address[0] in self.refuse:
            raise ConnectionRefusedError(111, "Connection refused")
        class Sock:
            host = address[0]

            def settimeout(self, t: float) -> None:
                pass

        return Sock()

    def exchange(self, sock: Any, frame: bytes) -> tuple[dict[str, Any], bytes]:
        self.sent.append((sock.host, frame))
        return self.answers[sock.host], b'{"job_id": 7}'


def test_connects_to_the_recorded_address_without_a_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    wire = Wire(monkeypatch, set(), {"10.1.0.3": {"ok": True}})
    assert Client().call("submit", {}) == {"job_id": 7}
    assert wire.tried == [("10.1.0.3", client.ADDR_TIMEOUT)]
    assert wire.sent == [("10.1.0.3", b"submit:arc")], "the request names the cluster it is meant for"


def test_a_stale_address_falls_back_to_the_name(monkeypatch: pytest.MonkeyPatch) -> None:
    wire = Wire(monkeypatch, {"10.1.0.3"}, {"arc-controller": {"ok": True}})
    assert Client().call("ping", {}) == {"job_id": 7}
    assert [h for h, _ in wire.tried] == ["10.1.0.3", "arc-controller"]
    assert wire.tried[1][1] == client.TIMEOUT


def test_an_address_now_of_another_cluster_falls_back_to_the_name(monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = {"ok": False, "error": {"code": WRONG_CLUSTER, "message": "Invalid cluster name: arc"}}
    wire = Wire(monkeypatch, set(), {"10.1.0.3": wrong, "arc-controller": {"ok": True}})
    assert Client().call("submit", {}) == {"job_id": 7}
    assert [h for h, _ in wire.sent] == ["10.1.0.3", "arc-controller"]


def test_the_name_failing_too_is_slurms_connect_error(monkeypatch: pytest.MonkeyPatch) -> None:
    Wire(monkeypatch, {"10.1.0.3", "arc-controller"}, {})
    with pytest.raises(RpcError) as exc:
        Client().call("ping", {})
    assert exc.value.code == "SLURM_COMMUNICATIONS_CONNECTION_ERROR"
    assert exc.value.message == "Unable to contact slurm controller (connect failure)"


def test_wrong_cluster_from_the_name_itself_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = {"ok": False, "error": {"code": WRONG_CLUSTER, "message": "Invalid cluster name: htc"}}
    Wire(monkeypatch, set(), {"htc-controller": wrong})
    with pytest.raises(RpcError) as exc:
        Client("htc").call("ping", {})
    assert exc.value.code == WRONG_CLUSTER
