"""Keys: parsing the forms users hold them in (raw bytes, hex, base64), key files, and wiping.

Every helper returns a bytearray, so the caller can wipe it when done (``modelcrypt.wipe(key)``).
Detection rules and limits are documented in docs/KEYS_AND_CLI.md.
"""

from __future__ import annotations

import binascii
import os
import re
import stat
import sys
import warnings
from typing import Union

from . import _core
from ._atomic import atomic_write
from ._key_looks import key_text_kind
from ._api import KEY_LENGTHS, DecryptedBuffer, StrPath, _check_bool, _check_key, _check_text, _fspath, _shown
from .exceptions import InsecureKeyFileWarning, KeyTextWarning

__all__ = [
    "key_from_hex",
    "key_from_base64",
    "read_key_file",
    "key_from_env",
    "write_key_file",
    "wipe",
    "KEY_FORMATS",
]

KEY_FORMATS = ("hex", "base64", "raw")
DEFAULT_KEY_ENV = "MODELCRYPT_KEY"

_HEX_DIGITS = re.compile(rb"[0-9a-fA-F]+")
_BASE64_TEXT = re.compile(rb"[A-Za-z0-9+/]+={0,2}")
_WHITESPACE = b" \t\r\n\v\f"

Text = Union[str, bytes, bytearray]


def _as_ascii(text: Text, what: str) -> bytes | bytearray:
    """Key text as bytes-like. A str is encoded (a new object the caller wipes with _wipe_copy);
    bytes and bytearray are returned as they are, not copied."""
    if isinstance(text, str):
        if text.isascii():  # (no encode attempt: a UnicodeEncodeError would hold the whole key text)
            return text.encode("ascii")
        raise ValueError(f"{what} contains non-ASCII characters")
    if isinstance(text, (bytes, bytearray)):
        return text
    raise TypeError(f"{what} must be str or bytes, not {type(text).__name__}")


#: Path text that could be a key (a key given where a key file's path was expected): not echoed.
_KEYLIKE_PATH = re.compile(r"[0-9A-Fa-f]{16,}|[A-Za-z0-9+=]{20,}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _path_shown(name: str) -> str:
    """A key file's path for messages; withheld when it looks like key text (hex or base64)."""
    if len(name) > 4096 or _KEYLIKE_PATH.search(name):
        return "<key file path not shown: it looks like key text; a key file option takes the PATH of a file holding the key>"
    return name.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates as escapes


def _env_name(name: object) -> str:
    """A checked environment variable name, and how messages show it (never key-like text)."""
    _check_text(name, "the environment variable name")
    if not name or "=" in name or "\0" in name:
        raise ValueError("the environment variable name must be non-empty, without '=' or NUL")
    return name if _ENV_NAME.fullmatch(name) and len(name) <= 64 and not _KEYLIKE_TEXT_IN_NAME.search(name) \
        else _shown(name)


_KEYLIKE_TEXT_IN_NAME = re.compile(r"[0-9A-Fa-f]{16,}|[A-Za-z0-9]{20,}")


def _wipe_copy(copy: bytes | bytearray, original: object) -> None:
    """Wipe a copy of key material this module made (never the caller's own object)."""
    if copy is not original and len(copy) >= 2:
        wipe(copy)


def _to_key(raw: bytes) -> bytearray:
    """bytearray copy of a freshly decoded key; the decoded bytes object is wiped."""
    try:
        return bytearray(raw)
    finally:
        if len(raw) >= 2:
            wipe(raw)


def _checked(key: bytearray, source: str) -> bytearray:
    if len(key) not in KEY_LENGTHS:
        n = len(key)
        wipe(key)
        raise ValueError(f"{source} decodes to {n} bytes; a key must be 16, 24 or 32 bytes")
    return key


def _hex_key(digits: bytes, source: str) -> bytearray:
    if len(digits) not in (32, 48, 64):
        raise ValueError(f"{source}: hex key of {len(digits)} digits; expected 32, 48 or 64")
    return _to_key(binascii.unhexlify(digits))


# Canonical padded base64, what binascii's strict_mode (Python 3.11+) accepts; checked by hand before 3.11.
_STRICT_BASE64 = re.compile(rb"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def _strict_a2b_base64(text: bytes) -> bytes:
    """binascii.a2b_base64(text, strict_mode=True), also on Python 3.9 and 3.10 (no strict_mode there)."""
    if sys.version_info >= (3, 11):
        return binascii.a2b_base64(text, strict_mode=True)
    if not _STRICT_BASE64.fullmatch(text):
        raise binascii.Error("only padded base64 (A-Z a-z 0-9 + /, '=' only at the end) is allowed")
    return binascii.a2b_base64(text)


def _base64_key(text: bytes, source: str) -> bytearray:
    try:
        raw = _strict_a2b_base64(text)
    except binascii.Error as exc:
        raise ValueError(f"{source} is not valid base64: {exc}") from None
    return _checked(_to_key(raw), source)


def key_from_hex(text: Text) -> bytearray:
    """A key from hex text (either case, surrounding whitespace and an optional 0x prefix ignored)."""
    ascii_text = _as_ascii(text, "hex key")
    view = _stripped(ascii_text)
    try:
        if view[:2] in (b"0x", b"0X"):
            view = view[2:]
        if not _HEX_DIGITS.fullmatch(view):
            raise ValueError("hex key contains characters that are not hex digits")
        return _hex_key(view, "hex key")
    finally:
        view.release()
        _wipe_copy(ascii_text, text)


def key_from_base64(text: Text) -> bytearray:
    """A key from standard base64 text with padding (as PaddleX's encryption tool prints it)."""
    ascii_text = _as_ascii(text, "base64 key")
    view = _stripped(ascii_text)
    try:
        if not _BASE64_TEXT.fullmatch(view) or len(view) % 4:
            raise ValueError("base64 key must be standard base64 (A-Z a-z 0-9 + /) with '=' padding")
        return _base64_key(view, "base64 key")
    finally:
        view.release()
        _wipe_copy(ascii_text, text)


def _stripped(content: bytes | bytearray) -> memoryview:
    """A view of `content` without surrounding whitespace (bytes.strip would copy the key text)."""
    start, end = 0, len(content)
    while start < end and content[start] in _WHITESPACE:
        start += 1
    while end > start and content[end - 1] in _WHITESPACE:
        end -= 1
    return memoryview(content)[start:end]


def _key_from_text(content: bytes | bytearray, source: str, allow_raw: bool) -> bytearray:
    with _stripped(content) as text:
        if text[:2] in (b"0x", b"0X") and len(text) > 2 and _HEX_DIGITS.fullmatch(text[2:]):
            with text[2:] as digits:  # an optional 0x prefix, as key_from_hex accepts
                return _hex_key(digits, source)
        if text and _HEX_DIGITS.fullmatch(text):
            if allow_raw and len(text) not in (32, 48, 64) and len(content) in (16, 24):
                # Exactly 16 or 24 hex-digit bytes: no hex key has that many digits, so a raw ASCII key
                # (MindSpore style, b"0123456789ABCDEF"); used as it is, with a KeyTextWarning.
                _warn_raw_text_key(source)
                return bytearray(content)
            if not allow_raw and len(text) in (16, 24):
                raise ValueError(f"{source}: hex key of {len(text)} digits; expected 32, 48 or 64 (a raw ASCII key "
                                 "such as MindSpore's can only come from a key file holding exactly its bytes)")
            return _hex_key(text, source)
        if text and _BASE64_TEXT.fullmatch(text) and len(text) % 4 == 0:
            return _base64_key(text, source)
    if allow_raw and len(content) in KEY_LENGTHS:
        if key_text_kind(content) is not None:  # a raw key that is text: a password?
            _warn_raw_text_key(source)
        return bytearray(content)
    raise ValueError(
        f"{source} holds {len(content)} bytes that are neither a hex key (32/48/64 digits), a base64 key"
        + (" nor a raw 16/24/32-byte key" if allow_raw else "")
    )


def _warn_raw_text_key(source: str) -> None:
    warnings.warn(f"{source} holds a raw key that is printable text (a MindSpore-style ASCII key or a password): "
                  "it works, but is only as strong as its text; a random key (`modelcrypt keygen`) is stronger",
                  KeyTextWarning, stacklevel=4)


def read_key_file(path: StrPath) -> bytearray:
    """Read a key file holding a hex, base64 or raw key (detection rules: docs/KEYS_AND_CLI.md).

    Warns with InsecureKeyFileWarning when the file is accessible to group or others.
    """
    raw_path = _fspath(path, "path")
    name = _path_shown(os.fsdecode(raw_path))
    failure = None
    try:
        f = open(raw_path, "rb", buffering=0)  # unbuffered: no copy of the key text in a read buffer
    except OSError as exc:  # re-raised below with the name as shown, outside this block (no chained original)
        failure = (exc.errno, exc.strerror or "cannot open")
    if failure is not None:
        raise OSError(failure[0], failure[1], name)  # OSError(errno, ...) is FileNotFoundError etc.
    content = bytearray(1 << 16)
    with f:
        mode = os.fstat(f.fileno()).st_mode
        size = 0
        while size < len(content):
            n = f.readinto(memoryview(content)[size:])
            if not n:
                break
            size += n
    if stat.S_IMODE(mode) & 0o077:
        warnings.warn(
            f"key file {name} is accessible to other users (mode {stat.S_IMODE(mode):04o}); run: chmod 600 {name}",
            InsecureKeyFileWarning,
            stacklevel=2,
        )
    try:
        with memoryview(content)[:size] as view:
            return _key_from_text(view, f"key file {name}", allow_raw=True)
    finally:
        wipe(content)


def key_from_env(name: str = DEFAULT_KEY_ENV) -> bytearray:
    """A key from an environment variable holding hex or base64 text."""
    shown = _env_name(name)
    value = os.environ.get(name)
    if not value:
        hint = ("" if shown == name else
                " (a key environment variable option takes the NAME of a variable, such as MODELCRYPT_KEY; "
                "the name given looks like key text and is not shown)")
        raise ValueError((f"environment variable {shown} is not set" if value is None
                          else f"environment variable {shown} is empty") + hint)
    ascii_text = _as_ascii(value, f"environment variable {shown}")
    try:
        return _key_from_text(ascii_text, f"environment variable {shown}", allow_raw=False)
    finally:
        _wipe_copy(ascii_text, value)


def write_key_file(path: StrPath, key: bytes | bytearray | memoryview, format: str = "hex", *, force: bool = False) -> None:
    """Write a key file with mode 0600, atomically. Refuses to replace a file unless force=True."""
    if not isinstance(format, str):
        raise TypeError(f"format must be a str, not {type(format).__name__}")
    if format not in KEY_FORMATS:
        raise ValueError(f"format must be one of {', '.join(KEY_FORMATS)}, got {_shown(format)}")
    _check_bool(force, "force")
    target = _fspath(path, "path")
    _check_key(key)  # bytes-like of 16, 24 or 32 bytes, checked before any copy
    raw = memoryview(key).cast("B")  # no copy
    if format == "raw":
        content = bytearray(raw)
    else:
        text = binascii.hexlify(raw) if format == "hex" else binascii.b2a_base64(raw, newline=False)
        content = bytearray(len(text) + 1)  # the text and a newline, without concatenating copies
        content[:-1] = text
        content[-1] = 0x0A
        wipe(text)
    try:
        atomic_write(os.fsdecode(target), content, permissions=0o600, exact_permissions=True, replace=force)
    except FileExistsError:
        raise FileExistsError(f"{_path_shown(os.fsdecode(target))} exists; refusing to overwrite it without force=True") from None
    finally:
        wipe(content)


def wipe(obj: bytearray | memoryview | bytes | DecryptedBuffer) -> None:
    """Overwrite a key or other secret with zeros, in place.

    bytearray / writable memoryview: zeroed. bytes (length >= 2): its storage is zeroed in place
    and its cached hash reset; use this only on bytes objects nothing else shares (never on a
    literal from code). A read-only memoryview of bytes wipes that bytes object. DecryptedBuffer:
    closed (which wipes it). See docs/KEYS_AND_CLI.md for what Python may still have copied.
    """
    if isinstance(obj, DecryptedBuffer):
        obj.close()
        return
    if isinstance(obj, memoryview):
        if not obj.readonly:
            _core.wipe_writable_buffer(obj)
            return
        if type(obj.obj) is not bytes:
            raise TypeError(f"cannot wipe a read-only memoryview of {type(obj.obj).__name__}")
        obj = obj.obj
    if isinstance(obj, bytearray):
        _core.wipe_writable_buffer(obj)
    elif type(obj) is bytes:
        if len(obj) < 2:
            raise ValueError("refusing to wipe a bytes object of length 0 or 1: those are shared interpreter-wide singletons")
        _core.wipe_bytes_object(obj)
    else:
        raise TypeError(f"cannot wipe a {type(obj).__name__}; expected bytearray, memoryview, bytes or DecryptedBuffer")
