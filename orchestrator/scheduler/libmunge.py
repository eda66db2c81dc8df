"""libmunge through ctypes, for decoding: what the daemons use to check every request.

Decoding stays with munge's own library (credential checks, replay refusal and errors exactly
as Slurm's auth/munge plugin gets them); the daemons load it once. The commands, which only
encode, speak munged's socket protocol instead (auth.py) and never load ctypes.

Only the C core ``_ctypes`` is imported: the ``ctypes`` package defines every C type and loader
class in Python, and libmunge needs a few functions and four types.
"""

from __future__ import annotations

import _ctypes
import os

from orchestrator.scheduler.auth import EMUNGE_SNAFU, AuthError, Identity

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["decode"]

_MUNGE_OPT_SOCKET = 8


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
                                EMUNGE_SNAFU) from None
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
