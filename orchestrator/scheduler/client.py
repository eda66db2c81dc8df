"""The commands' side of the wire: find a controller, sign a request, read the reply.

User commands import only this (and the standard library), so they start fast.
Where the controllers are comes from a small JSON file written at ``up`` (or by
local mode): ``$MINIHPC_CONF``, else ``/etc/minihpc/slurm.json``::

    {"cluster": "arc",
     "clusters": {"arc": {"host": "arc-controller", "port": 6817}, "htc": {...}},
     "munge_socket": null}
"""

from __future__ import annotations

import _socket
import os

from orchestrator.scheduler import auth
from orchestrator.scheduler.protocol import (
    VERSION,
    ProtocolError,
    RpcError,
    body_digest,
    dumps,
    encode_frame,
    loads,
    read_frame,
)

TYPE_CHECKING = False  # importing typing costs a user command milliseconds
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Client", "ClientConfig", "RpcError", "load_client_config", "open_tcp"]

DEFAULT_CONF = "/etc/minihpc/slurm.json"
TIMEOUT = 30.0


class ClientConfig:
    """Where this host's cluster and its siblings' controllers listen."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.cluster: str = data["cluster"]
        self.clusters: dict[str, dict[str, Any]] = data["clusters"]
        self.munge_socket: str | None = data.get("munge_socket")
        self.data = data

    def address(self, cluster: str | None = None) -> tuple[str, int]:
        c = self.clusters[cluster or self.cluster]
        return c["host"], int(c["port"])


_config: ClientConfig | None = None


def load_client_config() -> ClientConfig:
    global _config
    if _config is None:
        path = os.environ.get("MINIHPC_CONF", DEFAULT_CONF)
        try:
            with open(path) as f:
                _config = ClientConfig(loads(f.read()))
        except OSError as exc:
            raise RpcError("SLURM_COMMUNICATIONS_CONNECTION_ERROR",
                           f"Could not read the cluster configuration {path}: {exc.strerror}") from None
        if _config.munge_socket and "MINIHPC_MUNGE_SOCKET" not in os.environ:
            os.environ["MINIHPC_MUNGE_SOCKET"] = _config.munge_socket
    return _config


def signed_request(op: str, body: dict[str, Any]) -> bytes:
    raw = dumps(body).encode()
    try:
        cred = auth.encode(body_digest(op, raw))
    except auth.AuthError as exc:
        raise RpcError("SLURM_PROTOCOL_AUTHENTICATION_ERROR", f"Protocol authentication error ({exc})") from None
    return encode_frame({"v": VERSION, "op": op, "cred": cred}, raw_body=raw)


class Client:
    """One controller (or node daemon) connection per call; a call is one request and one reply."""

    def __init__(self, cluster: str | None = None, address: tuple[str, int] | None = None,
                 timeout: float = TIMEOUT) -> None:
        self.config = load_client_config() if address is None else None
        self.cluster = cluster or (self.config.cluster if self.config else "")
        if self.config and self.cluster not in self.config.clusters:
            raise RpcError("ESLURM_INVALID_CLUSTER_NAME", f"Invalid cluster name: {self.cluster}")
        self.address = address or (self.config.address(self.cluster) if self.config else ("127.0.0.1", 6817))
        self.timeout = timeout

    def connect(self) -> _socket.socket:
        try:
            return open_tcp(self.address, self.timeout)
        except OSError:
            raise RpcError("SLURM_COMMUNICATIONS_CONNECTION_ERROR",
                           "Unable to contact slurm controller (connect failure)") from None

    def call(self, op: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        frame = signed_request(op, body or {})
        sock = self.connect()
        try:
            sock.sendall(frame)
            header, raw = read_frame(sock)
        except (OSError, ProtocolError, ValueError):
            raise RpcError("SLURM_COMMUNICATIONS_RECEIVE_ERROR",
                           "Socket timed out on send/recv operation") from None
        finally:
            sock.close()
        if not header.get("ok"):
            err = header.get("error") or {}
            raise RpcError(str(err.get("code", "SLURM_ERROR")), str(err.get("message", "Unspecified error")))
        result: dict[str, Any] = loads(raw) if raw else {}
        return result


def open_tcp(address: tuple[str, int], timeout: float) -> _socket.socket:
    """``socket.create_connection`` on the C module: the ``socket`` package costs a command ~5 ms
    (enum, selectors), and a str host name would load the idna codec."""
    host, port = address
    try:
        name: str | bytes = host.encode("ascii")
    except UnicodeError:
        name = host
    error: OSError | None = None
    for family, kind, proto, _canon, addr in _socket.getaddrinfo(name, port, 0, _socket.SOCK_STREAM):
        sock = _socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(addr)
            return sock
        except OSError as exc:
            error = exc
            sock.close()
    raise error or OSError("getaddrinfo returns an empty list")
