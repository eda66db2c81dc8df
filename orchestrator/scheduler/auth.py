"""munge credentials, as Slurm's auth/munge plugin uses them.

Encoding and decoding go through the local munged, whose key is shared by every host of the
service; the socket path can be moved for local mode with ``MINIHPC_MUNGE_SOCKET``.

Encoding, which every user command does once, speaks munged's socket protocol directly (the
message libmunge's munge_encode sends, src/libcommon/m_msg.c): loading libmunge through ctypes
costs a command ~1.3 ms (_ctypes, libffi and libmunge, each opened on fuse-overlayfs), sending
one message ~0.1. munged authenticates the caller from the socket itself (SO_PEERCRED), as for
libmunge's own clients, so the credential says who really asked. Decoding, which the daemons
do, goes through libmunge itself (libmunge.py).
"""

from __future__ import annotations

import _socket
import _struct
import os
import time

from orchestrator.scheduler.protocol import ProtocolError, recv_exact

__all__ = ["AuthError", "Identity", "decode", "encode"]

EMUNGE_SNAFU = 1
_EMUNGE_SOCKET = 6
_EMUNGE_CRED_REPLAYED = 17


class AuthError(Exception):
    """munge refused to make or accept a credential."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code

    @property
    def no_daemon(self) -> bool:
        return self.code == _EMUNGE_SOCKET

    @property
    def replayed(self) -> bool:
        return self.code == _EMUNGE_CRED_REPLAYED


class Identity:
    """Who made a credential, as munged vouches for it (a plain class: no dataclasses at command start-up)."""

    __slots__ = ("gid", "payload", "uid")

    def __init__(self, uid: int, gid: int, payload: bytes) -> None:
        self.uid = uid
        self.gid = gid
        self.payload = payload


SOCKET = "/run/munge/munge.socket.2"
"""munged's default socket (MUNGE_SOCKET_NAME)."""
_MAGIC = 0x00606D4B  # m_msg.h MUNGE_MSG_MAGIC
_VERSION = 4  # MUNGE_MSG_VERSION
_ENC_REQ, _ENC_RSP = 2, 3  # m_msg_type_t
_DEFAULT = 1  # MUNGE_CIPHER_DEFAULT, MUNGE_MAC_DEFAULT, MUNGE_ZIP_DEFAULT
_ANY = 0xFFFFFFFF  # MUNGE_UID_ANY, MUNGE_GID_ANY: any user may decode
_HEADER = _struct.Struct(">IBBBI")  # magic, version, type, retry, body length
_TIMEOUT = 2.0  # MUNGE_SOCKET_TIMEOUT_MSECS
_CONNECT_ATTEMPTS, _CONNECT_RETRY = 10, 0.05  # MUNGE_SOCKET_CONNECT_*: munged's backlog may be full


def encode(payload: bytes = b"") -> str:
    """A credential for the calling process's uid and gid, carrying ``payload`` (munge_encode with
    the default cipher, MAC, compression and time-to-live, decodable by anyone)."""
    path = os.environ.get("MINIHPC_MUNGE_SOCKET") or SOCKET
    body = _struct.pack(">BBBBIIII", _DEFAULT, _DEFAULT, _DEFAULT, 0, 0, _ANY, _ANY, len(payload)) + payload
    sock = _connect(path)
    try:
        sock.sendall(_HEADER.pack(_MAGIC, _VERSION, _ENC_REQ, 0, len(body)) + body)
        magic, version, kind, _retry, length = _HEADER.unpack(recv_exact(sock, _HEADER.size))
        if (magic, version, kind) != (_MAGIC, _VERSION, _ENC_RSP):
            raise AuthError(f"Received unexpected message type: wanted {_ENC_RSP}, got {kind}", _EMUNGE_SOCKET)
        reply = recv_exact(sock, length)
    except ProtocolError:
        raise AuthError("Received incomplete message from munged", _EMUNGE_SOCKET) from None
    except OSError as exc:
        raise AuthError(f"Failed to receive message: {exc.strerror or exc}", _EMUNGE_SOCKET) from None
    finally:
        sock.close()
    # error number and its text, then the credential: uint8, uint8 length, text, uint32 length, data
    if len(reply) < 2 or len(reply) < 6 + reply[1]:
        raise AuthError("Failed to unpack message body", _EMUNGE_SOCKET)
    error, elen = reply[0], reply[1]
    if error:
        raise AuthError(reply[2:2 + elen].rstrip(b"\0").decode(errors="replace") or f"munge error {error}", error)
    (dlen,) = _struct.unpack_from(">I", reply, 2 + elen)
    return reply[6 + elen:6 + elen + dlen].split(b"\0", 1)[0].decode()


def _connect(path: str) -> _socket.socket:
    """libmunge's connect: the socket must exist, and a full backlog is retried with a linear back-off."""
    try:
        os.stat(path)
    except OSError as exc:
        raise AuthError(f'Failed to access "{path}": {exc.strerror}', _EMUNGE_SOCKET) from None
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    sock.settimeout(_TIMEOUT)
    for attempt in range(1, _CONNECT_ATTEMPTS + 1):
        try:
            sock.connect(path)
            return sock
        except ConnectionRefusedError as exc:
            if attempt == _CONNECT_ATTEMPTS:
                sock.close()
                raise AuthError(f'Failed to connect to "{path}": {exc.strerror}', _EMUNGE_SOCKET) from None
            time.sleep(attempt * _CONNECT_RETRY)
        except OSError as exc:
            sock.close()
            raise AuthError(f'Failed to connect to "{path}": {exc.strerror}', _EMUNGE_SOCKET) from None
    raise AssertionError("unreachable")


def decode(cred: str) -> Identity:
    """Check a credential; raises AuthError for bad, expired or replayed ones (libmunge, libmunge.py)."""
    from orchestrator.scheduler.libmunge import decode as libmunge_decode

    return libmunge_decode(cred)
