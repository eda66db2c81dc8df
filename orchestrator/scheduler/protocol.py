"""The wire protocol between commands, the controller and the node daemons.

A message is one frame: ``>II`` (header length, body length), then a JSON header
and a JSON body. Requests carry ``{"v": 1, "op": ..., "cred": <munge credential>}`` (and from
the commands ``"cluster"``, the cluster meant, which a controller of another one refuses);
the credential's payload is the SHA-256 of ``op``, a NUL and the body bytes, so a
credential cannot be lifted onto another request, and munged refuses replays.
The receiver takes the caller's uid and gid only from the decoded credential.

Replies carry ``{"v": 1, "ok": true}`` or ``{"v": 1, "ok": false, "error": {"code",
"message"}}`` where ``message`` is Slurm's own error text (``slurm_strerror``).

Operations (controller unless noted; bodies are JSON objects):

========================  =====================================================
``ping``                  -> ``{"cluster", "now"}``
``submit``                ``{"job": {...}, "script", "env", "test_only"}`` -> ``{"job_id"}``
                          or ``{"test_only": {"job_id","start_time","cpus","nodes","partition"}}``
``jobs``                  ``{"fields": [...], "job_ids": [...], "users": [...], "states": [...],
                          "partitions": [...], "names": [...], "accounts": [...], "steps": bool}``
                          -> ``{"fields": [...], "rows": [[...]], "now"}`` (active jobs and ones
                          finished within MinJobAge; unknown single id -> ESLURM_INVALID_JOB_ID);
                          with ``"columnar": true`` (and no ``steps`` field) -> ``{"fields",
                          "columns": [column, ...], "count", "now"}`` (see ``pack_columns``)
``acct``                  ``{"job_ids", "users", "all_users", "start", "end", "states", "names",
                          "accounts", "partitions"}`` -> ``{"jobs": [record, ...]}`` (with steps)
``nodes``                 ``{}`` -> ``{"nodes": [node record]}``
``partitions``            ``{}`` -> ``{"partitions": [partition record]}``
``config``                ``{}`` -> ``{"config": [[key, value], ...]}``
``signal``                ``{"job_ids": [...], "signal": int|None, "batch_only": bool, "users",
                          "partitions", "states", "names"}`` -> ``{"results": [{"job_id",
                          "error": code|None, "message"}]}``  (signal None = cancel)
``hold`` / ``release``    ``{"job_ids": [...], "admin": bool}`` -> ``{"results": [...]}``
``requeue``               ``{"job_ids": [...], "hold": bool}`` -> ``{"results": [...]}``
``update_job``            ``{"job_ids": [...], "set": {"TimeLimit": "..", ...}}`` -> ``{"results"}``
``update_node``           ``{"nodes": "list", "state": "DRAIN|RESUME|DOWN", "reason"}`` (root only)
``allocate``              as ``submit`` with ``job.batch = false``; -> ``{"job_id"}``
``alloc_wait``            ``{"job_id", "timeout", "until": "start"|"end"}`` -> ``{"state", "nodes", "env", ...}``
``alloc_complete``        ``{"job_id", "exit_code", "signal"}``: salloc/srun give their allocation back
``step_create``           ``{"job_id", "ntasks", "min_nodes", "nodelist", "exact", "overlap", ...}`` ->
                          ``{"step_id", "nodes", "addrs", "tasks", "cpus", "env", ...}`` (steps.py)
``step_complete``         ``{"job_id", "step_id", "node", "exit_code", "signal", "user_cpu", ...}``
``step_signal``           ``{"job_id", "step_id", "signal"}`` (controller, and controller -> node daemon);
                          ``signal`` with ``N.S`` ids routes here (scancel of a step)
``job_prepare``           controller -> node daemon: a job record on a node without its batch script
``credits`` / ``quota``   ARC services (mybalance, myquota)
``node_register``         node daemon -> controller (root only)
``node_heartbeat``        node daemon -> controller (root only)
``job_ended``             node daemon -> controller (root only)
``launch`` / ``kill``     controller -> node daemon (root only)
``step_launch``           srun -> node daemon: streams task I/O on the same connection (frames: steps.py)
========================  =====================================================
"""

from __future__ import annotations

import _json
import _struct

TYPE_CHECKING = False  # importing typing costs a user command milliseconds
if TYPE_CHECKING:
    from _socket import socket  # socket.socket's base: the commands use the C module directly
    from collections.abc import Sequence
    from typing import Any

try:  # the built-in module imports in microseconds; hashlib loads OpenSSL (~5 ms per command)
    from _sha256 import sha256
except ImportError:  # pragma: no cover - Pythons built without it
    from hashlib import sha256

__all__ = [
    "MAX_FRAME",
    "VERSION",
    "WRONG_CLUSTER",
    "ProtocolError",
    "RpcError",
    "body_digest",
    "dumps",
    "encode_frame",
    "is_constant",
    "loads",
    "pack_columns",
    "read_frame",
    "recv_exact",
    "unpack_columns",
]

VERSION = 1
MAX_FRAME = 16 * 1024 * 1024
WRONG_CLUSTER = "ESLURM_INVALID_CLUSTER_NAME"
"""The error for a request whose header names another cluster than the receiver's."""
"""Largest header + body accepted; Slurm caps batch scripts at 4 MB, environments add more."""

_LEN = _struct.Struct(">II")


# JSON straight through CPython's C accelerator (what ``json.dumps``/``json.loads`` use for these
# calls, so the bytes are identical): importing the ``json`` package drags in ``re`` and ``enum``,
# about 5 ms of every user command's start-up.

def _not_serializable(o: Any) -> Any:
    raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")


def dumps(obj: Any) -> str:
    """``json.dumps(obj, separators=(",", ":"))``, byte for byte."""
    if isinstance(obj, str):
        return _json.encode_basestring_ascii(obj)
    # a fresh encoder per call, as json.dumps makes: its circular-reference markers stay clean
    encode = _json.make_encoder({}, _not_serializable, _json.encode_basestring_ascii, None, ":", ",",
                                False, False, True)
    return "".join(encode(obj, 0))


class _DecodeContext:
    """The attributes ``_json.make_scanner`` reads from ``json.JSONDecoder``, with its defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}.__getitem__


_scan = _json.make_scanner(_DecodeContext())  # type: ignore[arg-type]  # duck-typed JSONDecoder
_WS = " \t\n\r"


def loads(text: str | bytes) -> Any:
    """``json.loads`` for UTF-8 text; malformed input raises ValueError."""
    if not isinstance(text, str):
        text = text.decode()
    idx = 0
    end = len(text)
    while idx < end and text[idx] in _WS:
        idx += 1
    try:
        obj, idx = _scan(text, idx)
    except StopIteration as exc:
        raise ValueError(f"Expecting value: char {exc.value}") from None
    while idx < end and text[idx] in _WS:
        idx += 1
    if idx != end:
        raise ValueError(f"Extra data: char {idx}")
    return obj


class ProtocolError(Exception):
    """A frame that cannot be read: garbage, oversized, truncated or the wrong version."""


class RpcError(Exception):
    """An error reply, carrying Slurm's error code name and its message text, and what slurmctld's reply
    may add (its err_msg: "invalid partition specified: x"), which Slurm's commands print first."""

    def __init__(self, code: str, message: str, err_msg: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.err_msg = err_msg


def body_digest(op: str, body: bytes) -> bytes:
    """What a request's munge credential must carry."""
    return sha256(op.encode() + b"\0" + body).digest()


def encode_frame(header: dict[str, Any], body: Any = None, raw_body: bytes | None = None) -> bytes:
    h = dumps(header).encode()
    b = raw_body if raw_body is not None else dumps(body if body is not None else {}).encode()
    return _LEN.pack(len(h), len(b)) + h + b


def recv_exact(sock: socket, n: int) -> bytes:
    chunks: list[bytes] = []
    while n:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            raise ProtocolError("connection closed mid-frame")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def decode_parts(hlen: int, blen: int) -> None:
    if hlen > 65536 or hlen + blen > MAX_FRAME:
        raise ProtocolError(f"frame of {hlen + blen} bytes exceeds the limit of {MAX_FRAME}")


def parse_header(raw: bytes) -> dict[str, Any]:
    try:
        header = loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError("header is not JSON") from exc
    if not isinstance(header, dict) or header.get("v") != VERSION:
        raise ProtocolError(f"unsupported protocol version {header.get('v') if isinstance(header, dict) else '?'}")
    return header


def parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = loads(raw) if raw else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError("body is not JSON") from exc
    if not isinstance(body, dict):
        raise ProtocolError("body is not a JSON object")
    return body


def read_frame(sock: socket) -> tuple[dict[str, Any], bytes]:
    """Read one frame from a blocking socket; returns the header and the raw body bytes."""
    hlen, blen = _LEN.unpack(recv_exact(sock, _LEN.size))
    decode_parts(hlen, blen)
    header = parse_header(recv_exact(sock, hlen))
    return header, recv_exact(sock, blen)


# Columnar replies: ten thousand queued jobs mostly share their partition, state, name, user and
# reason, so a column travels as a list only when its values differ; and a block of jobs submitted
# one after another has ids (and age-based priorities) that step evenly, which travel as a range.
# squeue's reply for a long queue is then a few hundred bytes instead of a megabyte of rows.

def pack_columns(columns: list[list[Any]]) -> list[Any]:
    """Each column as sent: ``{"all": v}`` when every value is ``v`` (of one type), ``{"from": a,
    "step": s}`` for the integers a, a+s, a+2s, ..., else the list."""
    packed: list[Any] = []
    for col in columns:
        if col and is_constant(col):
            packed.append({"all": col[0]})
        elif len(col) > 2 and type(col[0]) is int and set(map(type, col)) == {int}:
            start, step = col[0], col[1] - col[0]
            packed.append({"from": start, "step": step}
                          if step and col == list(range(start, start + step * len(col), step)) else col)
        else:
            packed.append(col)
    return packed


def is_constant(col: Sequence[Any]) -> bool:
    """True when every value of a non-empty ``col`` is the same value of the same type."""
    if not col:
        return False
    v = col[0]
    # count() compares with ==, where 1 == 1.0 == True: the types must agree as well
    return col.count(v) == len(col) and (v is None or type(v) is str or set(map(type, col)) == {type(v)})


def unpack_columns(packed: list[Any], count: int) -> list[Any]:
    """The columns back as sequences of ``count`` values (constant ones as tuples, steps as ranges)."""
    out: list[Any] = []
    for col in packed:
        if not isinstance(col, dict):
            out.append(col)
        elif "all" in col:
            out.append((col["all"],) * count)
        else:
            out.append(range(col["from"], col["from"] + col["step"] * count, col["step"]))
    return out
