"""The commands' side of the wire: find a controller, sign a request, read the reply.

User commands import only this (and the standard library), so they start fast.
Where the controllers are comes from a small JSON file written at ``up`` (or by
local mode): ``$MINIHPC_CONF``, else ``/etc/minihpc/slurm.json``::

    {"cluster": "arc",
     "clusters": {"arc": {"host": "arc-controller", "addr": "172.19.0.3", "port": 6817}, "htc": {...}},
     "munge_socket": null}

``addr`` is optional, as in slurm.conf's ``SlurmctldHost=name(addr)``: where it is known (``up``
records it once the containers run) a command connects to it without a name lookup, which costs
a fresh process about a millisecond (glibc's resolver set-up and Docker's DNS); where it does not
answer, the command falls back to the name.
"""

from __future__ import annotations

import _socket
import os

from orchestrator.scheduler import auth
from orchestrator.scheduler.protocol import (
    VERSION,
    WRONG_CLUSTER,
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
ADDR_TIMEOUT = 1.0
"""Connect timeout for a recorded address: one gone stale (its container was recreated by hand)
costs at most this before the name is tried."""


class ClientConfig:
    """Where this host's cluster and its siblings' controllers listen."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.cluster: str = data["cluster"]
        self.clusters: dict[str, dict[str, Any]] = data["clusters"]
        self.munge_socket: str | None = data.get("munge_socket")
        self.data = data

    def address(self, cluster: str | None = None) -> tuple[str, int]:
        """The controller's host name and port (what scontrol ping names)."""
        c = self.clusters[cluster or self.cluster]
        return c["host"], int(c["port"])

    def addresses(self, cluster: str | None = None) -> list[tuple[str, int]]:
        """Where to connect, in order: the recorded address, if any, then the host name."""
        c = self.clusters[cluster or self.cluster]
        port = int(c["port"])
        addr = c.get("addr")
        return [(addr, port), (c["host"], port)] if addr and addr != c["host"] else [(c["host"], port)]


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


def signed_request(op: str, body: dict[str, Any], cluster: str = "") -> bytes:
    """A request frame; ``cluster``, when given, is the cluster it is meant for (the receiver
    refuses it with WRONG_CLUSTER if that is not its own)."""
    raw = dumps(body).encode()
    try:
        cred = auth.encode(body_digest(op, raw))
    except auth.AuthError as exc:
        raise RpcError("SLURM_PROTOCOL_AUTHENTICATION_ERROR", f"Protocol authentication error ({exc})") from None
    header: dict[str, Any] = {"v": VERSION, "op": op, "cred": cred}
    if cluster:
        header["cluster"] = cluster
    return encode_frame(header, raw_body=raw)


class Client:
    """One controller (or node daemon) connection per call; a call is one request and one reply."""

    def __init__(self, cluster: str | None = None, address: tuple[str, int] | None = None,
                 timeout: float = TIMEOUT) -> None:
        self.config = load_client_config() if address is None else None
        self.cluster = cluster or (self.config.cluster if self.config else "")
        if self.config and self.cluster not in self.config.clusters:
            raise RpcError("ESLURM_INVALID_CLUSTER_NAME", f"Invalid cluster name: {self.cluster}")
        if address is not None:
            self.addresses = [address]
        elif self.config:
            self.addresses = self.config.addresses(self.cluster)
        else:
            self.addresses = [("127.0.0.1", 6817)]
        self.timeout = timeout

    def connect(self, start: int = 0) -> tuple[_socket.socket, int]:
        """A connection to the first of ``addresses[start:]`` that takes one, and its index."""
        last = len(self.addresses) - 1
        for i in range(start, last + 1):
            try:
                sock = open_tcp(self.addresses[i], self.timeout if i == last else min(ADDR_TIMEOUT, self.timeout))
            except OSError:
                if i < last:
                    continue
                raise RpcError("SLURM_COMMUNICATIONS_CONNECTION_ERROR",
                               "Unable to contact slurm controller (connect failure)") from None
            sock.settimeout(self.timeout)
            return sock, i
        raise RpcError("SLURM_COMMUNICATIONS_CONNECTION_ERROR", "Unable to contact slurm controller (connect failure)")

    def call(self, op: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        frame = signed_request(op, body or {}, self.cluster)
        sock, used = self.connect()
        header, raw = self._exchange(sock, frame)
        err = header.get("error") or {}
        if not header.get("ok") and err.get("code") == WRONG_CLUSTER and used < len(self.addresses) - 1:
            # a recorded address now belongs to another cluster's controller: ask by name (a fresh
            # credential, since munged refuses to decode one twice)
            sock, used = self.connect(used + 1)
            header, raw = self._exchange(sock, signed_request(op, body or {}, self.cluster))
            err = header.get("error") or {}
        if not header.get("ok"):
            raise RpcError(str(err.get("code", "SLURM_ERROR")), str(err.get("message", "Unspecified error")),
                           str(err.get("err_msg", "")))
        result: dict[str, Any] = loads(raw) if raw else {}
        return result

    @staticmethod
    def _exchange(sock: _socket.socket, frame: bytes) -> tuple[dict[str, Any], bytes]:
        try:
            sock.sendall(frame)
            return read_frame(sock)
        except (OSError, ProtocolError, ValueError):
            raise RpcError("SLURM_COMMUNICATIONS_RECEIVE_ERROR",
                           "Socket timed out on send/recv operation") from None
        finally:
            sock.close()


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
