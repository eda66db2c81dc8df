"""munge credentials through libmunge (ctypes), as Slurm's auth/munge plugin uses them.

Encoding and decoding go through the local munged, whose key is shared by every
host of the service. ctypes keeps it in-process (no fork per request), which is
what keeps sbatch fast. The socket path can be moved for local mode with
``MINIHPC_MUNGE_SOCKET``.
"""

from __future__ import annotations

import ctypes
import os

from orchestrator.lazylog import get_logger

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


_lib: ctypes.CDLL | None = None


def _load() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        try:
            lib = ctypes.CDLL("libmunge.so.2")  # Debian's soname; find_library costs commands ~10 ms
        except OSError:
            from ctypes.util import find_library

            try:
                lib = ctypes.CDLL(find_library("munge") or "libmunge.so")
            except OSError as exc:
                raise AuthError(f"cannot load libmunge ({exc}); install the libmunge2 package",
                                _EMUNGE_SNAFU) from None
        lib.munge_encode.restype = ctypes.c_int
        lib.munge_encode.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
        lib.munge_decode.restype = ctypes.c_int
        lib.munge_decode.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p),
                                     ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_uint32),
                                     ctypes.POINTER(ctypes.c_uint32)]
        lib.munge_strerror.restype = ctypes.c_char_p
        lib.munge_strerror.argtypes = [ctypes.c_int]
        lib.munge_ctx_create.restype = ctypes.c_void_p
        lib.munge_ctx_destroy.argtypes = [ctypes.c_void_p]
        lib.munge_ctx_set.restype = ctypes.c_int
        lib.munge_ctx_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p]
        lib.munge_ctx_strerror.restype = ctypes.c_char_p
        lib.munge_ctx_strerror.argtypes = [ctypes.c_void_p]
        _lib = lib
    return _lib


_libc = ctypes.CDLL(None)
_libc.free.argtypes = [ctypes.c_void_p]


def _ctx(lib: ctypes.CDLL) -> int | None:
    sock = os.environ.get("MINIHPC_MUNGE_SOCKET")
    if not sock:
        return None
    ctx = lib.munge_ctx_create()
    lib.munge_ctx_set(ctx, _MUNGE_OPT_SOCKET, sock.encode())
    return int(ctx)


def _error(lib: ctypes.CDLL, ctx: int | None, rc: int) -> AuthError:
    detail = lib.munge_ctx_strerror(ctx) if ctx else None
    text = (detail or lib.munge_strerror(rc) or b"unknown munge error").decode(errors="replace")
    return AuthError(text, rc)


def encode(payload: bytes = b"") -> str:
    """A credential for the calling process's uid and gid, carrying ``payload``."""
    lib = _load()
    ctx = _ctx(lib)
    cred = ctypes.c_char_p()
    try:
        rc = lib.munge_encode(ctypes.byref(cred), ctx, payload, len(payload))
        if rc != 0:
            raise _error(lib, ctx, rc)
        assert cred.value is not None
        text = cred.value.decode()
    finally:
        if cred:
            _libc.free(ctypes.cast(cred, ctypes.c_void_p))
        if ctx:
            lib.munge_ctx_destroy(ctx)
    return text


def decode(cred: str) -> Identity:
    """Check a credential; raises AuthError for bad, expired or replayed ones."""
    lib = _load()
    ctx = _ctx(lib)
    buf = ctypes.c_void_p()
    length = ctypes.c_int()
    uid = ctypes.c_uint32()
    gid = ctypes.c_uint32()
    try:
        rc = lib.munge_decode(cred.encode(), ctx, ctypes.byref(buf), ctypes.byref(length),
                              ctypes.byref(uid), ctypes.byref(gid))
        payload = ctypes.string_at(buf, length.value) if buf and length.value > 0 else b""
        if rc != 0:
            raise _error(lib, ctx, rc)
    finally:
        if buf:
            _libc.free(buf)
        if ctx:
            lib.munge_ctx_destroy(ctx)
    return Identity(uid.value, gid.value, payload)
