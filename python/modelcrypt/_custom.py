"""Caller-supplied ciphers with MindSpore's signatures, used wherever a mode is accepted:

    enc_mode(model_stream: bytes, key: bytes) -> bytes      (encryption)
    dec_mode(cipher_file: str, key: bytes) -> bytes         (decryption)

modelcrypt does not (cannot) check a custom cipher's correctness or security: whatever it returns
is taken as the result. What modelcrypt does: plaintext it hands over or gets back is copied into
wiping memory and the Python copies are zeroed when nothing else holds them.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from . import _core


def _refs(obj: Any) -> int:
    return sys.getrefcount(obj)


def wipe_if_sole_owner(obj: Any, _probe: bool = False) -> Any:
    """Zero a bytes/bytearray that nothing but the caller's one local variable references.

    A custom cipher may keep or return the very object it was given; such shared objects are left
    alone. The reference count of a sole owner is measured once at import (_SOLE_OWNER_REFS), so
    the test holds whatever the interpreter's reference-counting conventions are.
    """
    if _probe:
        return _refs(obj)
    try:
        if _refs(obj) <= _SOLE_OWNER_REFS:
            if type(obj) is bytes and len(obj) >= 2:
                _core.wipe_bytes_object(obj)
            elif type(obj) is bytearray:
                _core.wipe_writable_buffer(obj)
    except Exception:  # wiping is best effort; never mask the real result
        pass
    return None


def _measure_sole_owner() -> int:
    local = bytearray(2)
    return wipe_if_sole_owner(local, _probe=True)


_SOLE_OWNER_REFS = _measure_sole_owner()


def _checked_output(result: Any, what: str) -> Any:
    if isinstance(result, str):
        raise TypeError(f"the custom {what} callable must return bytes, not str")
    try:
        memoryview(result)
    except TypeError:
        raise TypeError(f"the custom {what} callable must return bytes, not {type(result).__name__}") from None
    return result


def custom_decrypt(dec_mode: Any, path: Any, key: Any) -> "_core.DecryptedBuffer":
    """Runs dec_mode(cipher_file, key) and moves its output into a DecryptedBuffer. `key` is checked."""
    key_bytes = bytes(key)
    try:
        out = _checked_output(dec_mode(os.fsdecode(os.fspath(path)), key_bytes), "dec_mode")
    finally:
        wipe_if_sole_owner(key_bytes)
    buffer = _core.secure_copy(out)
    wipe_if_sole_owner(out)
    return buffer


def custom_encrypt(enc_mode: Any, plaintext: Any, key: Any) -> Any:
    """Runs enc_mode(model_stream, key) on bytes-like plaintext; returns its bytes-like output."""
    stream = bytes(plaintext)
    key_bytes = bytes(key)
    try:
        return _checked_output(enc_mode(stream, key_bytes), "enc_mode")
    finally:
        wipe_if_sole_owner(stream)
        wipe_if_sole_owner(key_bytes)
