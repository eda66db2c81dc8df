"""The daemons' side of the wire: an asyncio server that authenticates every request.

Both the controller and the node daemon use it. A garbage, oversized or
unauthenticated frame gets an error reply and a closed connection; the daemon
carries on. Handlers see only the uid and gid munge vouched for.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct

# hmac's own constant-time comparison: importing hmac loads OpenSSL (~4 MB of each daemon's RSS)
from _operator import _compare_digest as compare_digest
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.scheduler import auth
from orchestrator.scheduler.protocol import (
    MAX_FRAME,
    VERSION,
    WRONG_CLUSTER,
    ProtocolError,
    RpcError,
    body_digest,
    encode_frame,
    parse_body,
    parse_header,
)

log = logging.getLogger(__name__)

__all__ = ["Request", "RpcServer", "read_frame_async", "reply_error", "reply_ok"]

_LEN = struct.Struct(">II")


@dataclass
class Request:
    op: str
    uid: int
    gid: int
    body: dict[str, Any]
    peer: str
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter


Handler = Callable[[Request], Awaitable[dict[str, Any] | None]]


async def read_frame_async(reader: asyncio.StreamReader) -> tuple[dict[str, Any], bytes]:
    try:
        hlen, blen = _LEN.unpack(await reader.readexactly(_LEN.size))
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            raise EOFError from None
        raise ProtocolError("truncated frame") from None
    if hlen > 65536 or hlen + blen > MAX_FRAME:
        raise ProtocolError(f"frame of {hlen + blen} bytes exceeds the limit of {MAX_FRAME}")
    try:
        header = parse_header(await reader.readexactly(hlen))
        body = await reader.readexactly(blen)
    except asyncio.IncompleteReadError:
        raise ProtocolError("truncated frame") from None
    return header, body


def reply_ok(body: dict[str, Any] | None = None) -> bytes:
    return encode_frame({"v": VERSION, "ok": True}, body or {})


def reply_error(code: str, message: str, err_msg: str = "") -> bytes:
    error = {"code": code, "message": message, **({"err_msg": err_msg} if err_msg else {})}
    return encode_frame({"v": VERSION, "ok": False, "error": error}, {})


class RpcServer:
    """Dispatches authenticated requests to handlers by op name.

    A handler returns the reply body, or None when it has taken over the connection
    (streaming ops such as step launch).
    """

    def __init__(self, name: str, handlers: dict[str, Handler], cluster: str = "") -> None:
        self.name = name
        self.handlers = handlers
        self.cluster = cluster  # requests naming another cluster are refused (WRONG_CLUSTER)
        self.server: asyncio.AbstractServer | None = None

    async def start(self, host: str, port: int) -> None:
        self.server = await asyncio.start_server(self._serve, host, port, limit=MAX_FRAME, reuse_address=True)
        log.info("%s listening on %s:%d", self.name, host, port)

    async def close(self) -> None:
        if self.server:
            self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = str(writer.get_extra_info("peername"))
        try:
            while True:
                try:
                    header, raw = await read_frame_async(reader)
                except EOFError:
                    return
                except ProtocolError as exc:
                    log.warning("bad frame from %s: %s", peer, exc)
                    writer.write(reply_error("SLURM_PROTOCOL_INSANE_MSG_LENGTH" if "exceeds" in str(exc)
                                             else "SLURM_PROTOCOL_VERSION_ERROR", str(exc)))
                    await writer.drain()
                    return
                keep = await self._dispatch(header, raw, peer, reader, writer)
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        except Exception:  # a handler bug must not take the daemon down
            log.exception("unexpected error serving %s", peer)
        finally:
            try:
                writer.close()
            except Exception:
                pass

    async def _dispatch(self, header: dict[str, Any], raw: bytes, peer: str,
                        reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        op = header.get("op")
        cred = header.get("cred")
        if not isinstance(op, str) or not isinstance(cred, str):
            writer.write(reply_error("SLURM_PROTOCOL_AUTHENTICATION_ERROR", "Protocol authentication error"))
            await writer.drain()
            return False
        try:
            # munged answers in a thread (ctypes lets go of the GIL): the loop serves others meanwhile
            ident = await asyncio.get_running_loop().run_in_executor(None, auth.decode, cred)
        except auth.AuthError as exc:
            log.warning("auth failure from %s (%s): %s", peer, op, exc)
            writer.write(reply_error("SLURM_PROTOCOL_AUTHENTICATION_ERROR",
                                     f"Protocol authentication error ({exc})"))
            await writer.drain()
            return False
        if not compare_digest(ident.payload, body_digest(op, raw)):
            log.warning("credential from %s does not match its request (%s)", peer, op)
            writer.write(reply_error("SLURM_PROTOCOL_AUTHENTICATION_ERROR", "Protocol authentication error"))
            await writer.drain()
            return False
        meant = header.get("cluster")
        if self.cluster and meant is not None and meant != self.cluster:
            writer.write(reply_error(WRONG_CLUSTER, f"Invalid cluster name: {meant} (this is {self.cluster})"))
            await writer.drain()
            return False
        handler = self.handlers.get(op)
        if handler is None:
            writer.write(reply_error("SLURM_PROTOCOL_VERSION_ERROR", f"Unknown operation {op!r}"))
            await writer.drain()
            return False
        try:
            body = parse_body(raw)
        except ProtocolError as exc:
            writer.write(reply_error("SLURM_PROTOCOL_VERSION_ERROR", str(exc)))
            await writer.drain()
            return False
        req = Request(op, ident.uid, ident.gid, body, peer, reader, writer)
        try:
            result = await handler(req)
        except RpcError as exc:
            writer.write(reply_error(exc.code, exc.message, exc.err_msg))
            await writer.drain()
            return True
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("malformed %s request from %s: %r", op, peer, exc)
            writer.write(reply_error("EINVAL", f"Invalid argument ({exc.__class__.__name__}: {exc})"))
            await writer.drain()
            return True
        except Exception as exc:  # values no check foresaw (a dict where SQLite wants a number ...): still an answer
            log.exception("%s request from %s failed", op, peer)
            writer.write(reply_error("EINVAL", f"Invalid argument ({exc.__class__.__name__}: {exc})"))
            await writer.drain()
            return False
        if result is None:
            return False
        writer.write(reply_ok(result))
        await writer.drain()
        return True


async def call_async(host: str, port: int, op: str, body: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """A signed request from one daemon to another, without blocking the event loop."""
    from orchestrator.scheduler.client import signed_request

    frame = await asyncio.get_running_loop().run_in_executor(None, signed_request, op, body)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, limit=MAX_FRAME), timeout)
    try:
        writer.write(frame)
        await writer.drain()
        header, raw = await asyncio.wait_for(read_frame_async(reader), timeout)
    finally:
        writer.close()
    if not header.get("ok"):
        err = header.get("error") or {}
        raise RpcError(str(err.get("code", "SLURM_ERROR")), str(err.get("message", "error")), str(err.get("err_msg", "")))
    return json.loads(raw) if raw else {}
