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


def _may_hold_secrets(exc: BaseException, secrets: tuple) -> bool:
    """Whether an exception a custom cipher raised could carry the key or data it was given: any
    bytes-like value in its args (a UnicodeDecodeError holds the whole input it choked on), a bytes
    repr or the key's hex in its text, anywhere along its chain of causes."""
    seen: set[int] = set()
    stack: list = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, UnicodeError):
            return True
        args = getattr(e, "args", ())
        if any(isinstance(a, (bytes, bytearray, memoryview)) for a in args):
            return True
        try:
            text = str(e) + repr(args)
        except Exception:  # noqa: BLE001 - a message that cannot even be formatted is not passed on
            return True
        if "b'" in text or 'b"' in text or "bytearray(" in text:
            return True
        for secret in secrets:
            if len(secret) <= 64 and secret and (secret.hex() in text.lower() or secret.decode("latin-1") in text):
                return True
        stack.extend([e.__cause__, e.__context__])
    return False


def _call_cipher(func: Any, what: str, first: Any, key_bytes: bytes, secrets: tuple) -> Any:
    """Runs a custom cipher. An exception it raises passes through unless it may carry the key or
    the data: then it is replaced (same type where possible, else ValueError) by one that names only
    its type, with no chained original."""
    try:
        return func(first, key_bytes)
    except Exception as exc:  # noqa: BLE001 - examined and re-raised
        if not _may_hold_secrets(exc, secrets):
            raise
        kind = type(exc)
    message = (f"the custom {what} callable raised {kind.__name__}; its message is withheld because it may "
               "contain key or model bytes")
    try:
        replacement = kind(message)
    except Exception:  # noqa: BLE001 - e.g. UnicodeDecodeError needs five arguments
        replacement = None
    if not isinstance(replacement, BaseException) or isinstance(replacement, UnicodeError):
        replacement = (ValueError if issubclass(kind, ValueError) else RuntimeError)(message)
    raise replacement


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
        out = _checked_output(_call_cipher(dec_mode, "dec_mode", os.fsdecode(os.fspath(path)), key_bytes,
                                           (key_bytes,)), "dec_mode")
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
        return _checked_output(_call_cipher(enc_mode, "enc_mode", stream, key_bytes, (key_bytes,)), "enc_mode")
    finally:
        wipe_if_sole_owner(stream)
        wipe_if_sole_owner(key_bytes)
