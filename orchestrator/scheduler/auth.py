"""munge credentials through libmunge (ctypes), as Slurm's auth/munge plugin uses them.

Encoding and decoding go through the local munged, whose key is shared by every
host of the service. ctypes keeps it in-process (no fork per request), which is
what keeps sbatch fast. The socket path can be moved for local mode with
``MINIHPC_MUNGE_SOCKET``.

Only the C core ``_ctypes`` is imported: the ``ctypes`` package defines every C
type and loader class in Python, about 2.5 ms of each user command's start-up,
and libmunge needs five functions and four types.
"""

from __future__ import annotations

import _ctypes
import os

from orchestrator.lazylog import get_logger

TYPE_CHECKING = False  # importing typing costs a user command milliseconds
if TYPE_CHECKING:
    from typing import Any

log = get_logger(__name__)

__all__ = ["AuthError", "Identity", "decode", "encode"]

_MUNGE_OPT_SOCKET = 8
_EMUNGE_SNAFU = 1
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


# the C types libmunge's prototypes use (what ctypes.c_int & co. are)
class _Int(_ctypes._SimpleCData):
    _type_ = "i"


class _UInt32(_ctypes._SimpleCData):
    _type_ = "I"


class _CharP(_ctypes._SimpleCData):
    _type_ = "z"


class _VoidP(_ctypes._SimpleCData):
    _type_ = "P"


class _Char(_ctypes._SimpleCData):
    _type_ = "c"


class _Func(_ctypes.CFuncPtr):
    _flags_ = _ctypes.FUNCFLAG_CDECL
    _restype_ = _Int


class _Lib:
    """A dlopen()ed library: what ctypes.CDLL is to CFuncPtr (it reads ``_handle``)."""

    def __init__(self, name: str | None) -> None:
        self._handle = _ctypes.dlopen(name, _ctypes.RTLD_LOCAL)  # type: ignore[arg-type]  # None: the program

    def fn(self, name: str, restype: type | None, *argtypes: type) -> Any:
        f = _Func((name, self))  # type: ignore[arg-type]  # any object with _handle, as CDLL
        f.restype = restype
        f.argtypes = argtypes
        return f


class _Munge:
    """libmunge's functions with their prototypes (munge.h)."""

    def __init__(self) -> None:
        try:
            lib = _Lib("libmunge.so.2")  # Debian's soname; find_library costs commands ~10 ms
        except OSError:
            from ctypes.util import find_library

            try:
                lib = _Lib(find_library("munge") or "libmunge.so")
            except OSError as exc:
                raise AuthError(f"cannot load libmunge ({exc}); install the libmunge2 package",
                                _EMUNGE_SNAFU) from None
        ptr = _ctypes.POINTER
        # char **cred: read as void* so that the same pointer can be given back to free()
        self.encode = lib.fn("munge_encode", _Int, ptr(_VoidP), _VoidP, _VoidP, _Int)
        self.decode = lib.fn("munge_decode", _Int, _CharP, _VoidP, ptr(_VoidP), ptr(_Int), ptr(_UInt32),
                             ptr(_UInt32))
        self.strerror = lib.fn("munge_strerror", _CharP, _Int)
        self.ctx_create = lib.fn("munge_ctx_create", _VoidP)
        self.ctx_destroy = lib.fn("munge_ctx_destroy", None, _VoidP)
        self.ctx_set = lib.fn("munge_ctx_set", _Int, _VoidP, _Int, _CharP)
        self.ctx_strerror = lib.fn("munge_ctx_strerror", _CharP, _VoidP)
        self.free = _Lib(None).fn("free", None, _VoidP)


_lib: _Munge | None = None


def _load() -> _Munge:
    global _lib
    if _lib is None:
        _lib = _Munge()
    return _lib


def _ctx(lib: _Munge) -> int | None:
    sock = os.environ.get("MINIHPC_MUNGE_SOCKET")
    if not sock:
        return None
    ctx = lib.ctx_create()
    lib.ctx_set(ctx, _MUNGE_OPT_SOCKET, sock.encode())
    return int(ctx)


def _error(lib: _Munge, ctx: int | None, rc: int) -> AuthError:
    detail = lib.ctx_strerror(ctx) if ctx else None
    text = (detail or lib.strerror(rc) or b"unknown munge error").decode(errors="replace")
    return AuthError(text, rc)


def _string_at(address: int, size: int) -> bytes:
    """``size`` bytes at ``address`` (ctypes.string_at)."""
    array: Any = type("_Bytes", (_ctypes.Array,), {"_type_": _Char, "_length_": size})
    return bytes(array.from_address(address).raw)


def encode(payload: bytes = b"") -> str:
    """A credential for the calling process's uid and gid, carrying ``payload``."""
    lib = _load()
    ctx = _ctx(lib)
    cred = _VoidP()
    try:
        rc = lib.encode(_ctypes.byref(cred), ctx, payload, len(payload))
        if rc != 0:
            raise _error(lib, ctx, rc)
        assert cred.value is not None
        text = _CharP.from_buffer(cred).value.decode()
    finally:
        if cred.value:
            lib.free(cred)
        if ctx:
            lib.ctx_destroy(ctx)
    return text


def decode(cred: str) -> Identity:
    """Check a credential; raises AuthError for bad, expired or replayed ones."""
    lib = _load()
    ctx = _ctx(lib)
    buf = _VoidP()
    length = _Int()
    uid = _UInt32()
    gid = _UInt32()
    try:
        rc = lib.decode(cred.encode(), ctx, _ctypes.byref(buf), _ctypes.byref(length),
                        _ctypes.byref(uid), _ctypes.byref(gid))
        payload = _string_at(buf.value, length.value) if buf.value and length.value > 0 else b""
        if rc != 0:
            raise _error(lib, ctx, rc)
    finally:
        if buf.value:
            lib.free(buf)
        if ctx:
            lib.ctx_destroy(ctx)
    return Identity(uid.value, gid.value, payload)
