"""Argument checks of the Python API (types and sizes, pyca-style, before the native core runs),
the argument types it documents, and the key, credential, mode and format rules they apply.

Messages name the argument and what is wrong with it, never a key or anything key-like."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping
from typing import Any, Callable, Optional, Union

from . import _core
from ._key_looks import warn_if_key_looks_like_text
from ._trust import requires_signature, with_trusted_signers
from .exceptions import InsecureFormatWarning

StrPath = Union[str, "os.PathLike[str]", bytes, "os.PathLike[bytes]"]
BytesLike = Union[bytes, bytearray, memoryview]
ProgressCallback = Optional[Callable[[int], None]]
# A mode is a name ("AES-GCM") or, MindSpore-style, a caller's own cipher: for encryption
# enc(model_stream: bytes, key: bytes) -> bytes, for decryption dec(cipher_file: str, key: bytes) -> bytes.
# modelcrypt does not (cannot) check a custom cipher's security or correctness.
Mode = Union[str, Callable[..., bytes]]
#: What a file is opened or written with: a key (bytes-like), an Identity (format v2 files) or a
#: credential that also requires a publisher signature (trusted_signers).
Credential = Union[bytes, bytearray, memoryview, _core.X25519Identity, _core.TrustedCredential]

KEY_LENGTHS = (16, 24, 32)
SUPPORTED_MODES = tuple(_core.supported_modes())
DEFAULT_CHUNK_SIZE = _core.DEFAULT_CHUNK_SIZE

#: Runs of text that could be (most of) a hex or base64 key: a caller's str that contains one is
#: never repeated in a message, so a key passed in the wrong argument is not echoed back.
_KEYLIKE_TEXT = re.compile(r"[0-9A-Fa-f]{16,}|[A-Za-z0-9+/]{20,}")

#: Offsets, lengths and sizes must fit the core's 64-bit unsigned integers.
MAX_UINT64 = (1 << 64) - 1


def _shown(value: object, limit: int = 64) -> str:
    """A caller's value as it may appear in an error message, without risking a key in it.

    A short str with nothing key-like in it is shown repr()-escaped (so lone surrogates and control
    characters appear as escapes, never raw); anything else only by its type and length.
    """
    if isinstance(value, str):
        if len(value) <= limit and not _KEYLIKE_TEXT.search(value):
            return repr(value)
        return f"<a str of {len(value)} characters, not shown>"
    return f"<a {type(value).__name__}, not shown>"


def _check_text(value: object, name: str) -> str:
    """A str argument that must be encodable text (UTF-8): no lone surrogates (e.g. from
    surrogateescape'd command-line bytes). The message says where, never what the text is."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        position = exc.start
    else:
        return value
    raise ValueError(f"{name} is not valid text: it has an undecodable character (a lone surrogate, e.g. from "
                     f"non-UTF-8 command-line bytes) at position {position}")


def _check_uint(value: object, name: str, maximum: int = MAX_UINT64) -> int:
    """An int argument (not bool) in [0, maximum]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    if value > maximum:
        raise ValueError(f"{name} must be at most {maximum}, got a larger number")
    return int(value)


def _fspath(path: StrPath, what: str) -> bytes:
    try:
        raw = os.fsencode(os.fspath(path))
    except TypeError:
        raise TypeError(f"{what} must be str, bytes or os.PathLike, not {type(path).__name__}") from None
    except UnicodeEncodeError:  # a str path with characters the file system encoding cannot encode
        raise ValueError(f"{what} cannot be encoded for the file system") from None
    if not isinstance(raw, bytes):  # an os.PathLike whose __fspath__ returned something odd
        raise TypeError(f"{what} must be str, bytes or os.PathLike, not {type(path).__name__}")
    if b"\0" in raw:
        raise ValueError(f"{what} contains a NUL byte")
    return raw


def _check_key(key: object) -> Credential:
    if isinstance(key, _core.X25519Identity):  # an identity opens format v2 files encrypted to its recipient
        return key
    if isinstance(key, _core.TrustedCredential):  # a key or identity that requires a publisher signature
        return key
    if key is None:
        raise TypeError("a key (bytes-like) or an identity (identity=...) is needed")
    if not isinstance(key, (bytes, bytearray, memoryview)):
        raise TypeError(f"key must be bytes-like (bytes, bytearray, memoryview), not {type(key).__name__}")
    n = key.nbytes if isinstance(key, memoryview) else len(key)
    if n not in KEY_LENGTHS:
        raise ValueError(f"key must be 16, 24 or 32 bytes long, got {n} bytes")
    warn_if_key_looks_like_text(key)  # KeyTextWarning, attributed to the user's call
    return key


def _credential(key: object, identity: object, trusted_signers: object = None) -> Credential:
    """What a reader opens a file with: ``key`` (bytes-like or an Identity) or ``identity=``, requiring
    a publisher signature by one of ``trusted_signers`` when given."""
    if identity is None:
        return with_trusted_signers(_check_key(key), trusted_signers)
    if key is not None:
        raise TypeError("give either a key or identity=, not both")
    if not isinstance(identity, _core.X25519Identity):
        raise TypeError(f"identity must be a modelcrypt.Identity, not {type(identity).__name__}")
    return with_trusted_signers(identity, trusted_signers)


def _reader_key(key: Any, trusted_signers: object, mode: object = "AES-GCM", identity: object = None) -> Any:
    """``key`` for the framework loaders and checkpoint readers: as given (``identity=`` in its place:
    an Identity opens format v2 files), or (``trusted_signers`` given) a credential that requires a
    publisher signature, accepted by every read path. (Typed Any: the caller's key passes through
    unchecked, to be checked by the read path it reaches, which may be a custom cipher's.)"""
    if identity is not None:
        if key is not None:
            raise TypeError("give either a key or identity=, not both")
        if not isinstance(identity, _core.X25519Identity):
            raise TypeError(f"identity must be a modelcrypt.Identity, not {type(identity).__name__}")
        if callable(mode):
            raise ValueError("identity= opens modelcrypt files; a custom cipher callable takes a key")
        key = identity
    if trusted_signers is None:
        return key
    if callable(mode):
        raise ValueError("trusted_signers needs a modelcrypt file; a custom cipher callable cannot be checked")
    return _credential(key, None, trusted_signers)


def _no_custom_with_signature(key: object) -> None:
    if requires_signature(key):
        raise ValueError("trusted_signers needs a modelcrypt file; a custom cipher callable cannot be checked")


def _check_signing_key(signing_key: object) -> _core.SigningKey | None:
    if signing_key is not None and not isinstance(signing_key, _core.SigningKey):
        raise TypeError("signing_key must be a modelcrypt.SigningKey (read_signing_key_file), "
                        f"not {type(signing_key).__name__}")
    return signing_key


def _recipient_keys(recipients: object) -> list[bytes] | None:
    """32-byte X25519 public keys from recipients given as text (modelcrypt1... / age1...),
    Identity objects (their recipient) or 32-byte public keys."""
    if recipients is None:
        return None
    if isinstance(recipients, (str, bytes)) or not hasattr(recipients, "__iter__"):
        raise TypeError("recipients must be a list of recipients (str such as 'modelcrypt1...'), not a single value")
    out = []
    for r in recipients:
        if isinstance(r, str):
            out.append(_core.parse_recipient(r))
        elif isinstance(r, _core.X25519Identity):
            out.append(r.public_key)
        elif isinstance(r, (bytes, bytearray)) and len(r) == 32:
            out.append(bytes(r))
        else:
            raise TypeError(f"each recipient must be a str ('modelcrypt1...' or 'age1...'), not {type(r).__name__}")
    return out


def _writer_key(key: object, recipients: object) -> tuple[Credential | None, list[bytes] | None]:
    keys = _recipient_keys(recipients)
    if key is None:
        if not keys:
            raise TypeError("a key or at least one recipient is needed")
        return None, keys
    return _check_key(key), keys


def _check_mode(mode: Mode) -> Mode:
    """A mode name checked (as by _check_mode_name), or a custom cipher callable as given."""
    if callable(mode):
        return mode
    return _check_mode_name(mode)


def _check_mode_name(mode: object) -> str:
    """A mode name ("AES-GCM", "paddle:..."), for the core: custom cipher callables are handled before."""
    if callable(mode):
        raise TypeError("a custom cipher callable cannot be used here; give a mode name such as 'AES-GCM'")
    if not isinstance(mode, str):
        raise TypeError(f"mode must be a str or a callable, not {type(mode).__name__}")
    _check_text(mode, "mode")
    if len(mode) > 256:
        raise ValueError(f"mode is {len(mode)} characters long; a mode name is short (e.g. 'AES-GCM')")
    if mode.upper() not in SUPPORTED_MODES and not mode.lower().startswith("paddle:"):
        supported = ", ".join(repr(m) for m in SUPPORTED_MODES)
        raise ValueError(f"unsupported mode {_shown(mode)}; supported modes: {supported}, and "
                         "'paddle:<cipher_name>[:iv=<bits>][:tag=<bits>]' for Paddle cipher files")
    if mode.lower().startswith("paddle:") and not _PADDLE_MODE.fullmatch(mode):
        # Checked here as well as in the core, whose messages repeat the mode: what reaches it is known words
        # and digits.
        raise ValueError(f"bad Paddle mode {_shown(mode)}: expected 'paddle:<cipher_name>[:iv=<bits>][:tag=<bits>]' "
                         f"with cipher_name one of {', '.join(PADDLE_CIPHER_NAMES)}")
    return mode


PADDLE_CIPHER_NAMES = ("AES_CTR_NoPadding", "AES_CBC_PKCSPadding", "AES_ECB_PKCSPadding", "AES_GCM_NoPadding")
_PADDLE_MODE = re.compile(r"(?i:paddle):(?:" + "|".join(PADDLE_CIPHER_NAMES) + r")(?::(?:iv|tag)=[0-9]{1,5})*")


FORMATS = ("modelcrypt", "mindspore")
# What readers accept (docs/LEGACY.md): "modelcrypt" (the default) is format v1 only; a legacy format
# is read only when named here, or when the mode exists only in a legacy format ("AES-CBC",
# "SM4-CBC": MindSpore; "paddle:...": Paddle cipher). "auto" reads any format detected.
READ_FORMATS = ("modelcrypt", "mindspore", "paddlex", "paddle-cipher", "auto")


def _check_read_format(format: str) -> str:
    if not isinstance(format, str):
        raise TypeError(f"format must be a str, not {type(format).__name__}")
    if format not in READ_FORMATS:
        # (the value is not repeated: a key pasted into the wrong argument must not reach a log)
        raise ValueError(f"format must be one of {', '.join(map(repr, READ_FORMATS))}")
    return format


def _check_format(format: str, mode: Mode, chunk_size: int | None, metadata: Mapping[str, str] | None) -> str:
    if not isinstance(format, str):
        raise TypeError(f"format must be a str, not {type(format).__name__}")
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(map(repr, FORMATS))}, got {_shown(format)}")
    if format == "mindspore":
        if isinstance(mode, str):
            _check_text(mode, "mode")
        if not isinstance(mode, str) or mode.upper() not in SUPPORTED_MODES:
            shown = _shown(mode) if isinstance(mode, str) else f"a {type(mode).__name__}"
            raise ValueError(f"format='mindspore' takes mode 'AES-GCM', 'AES-CBC' or 'SM4-CBC', got {shown}")
        if chunk_size is not None or metadata is not None:
            raise ValueError("chunk_size and metadata belong to modelcrypt files; MindSpore's format has neither")
        if mode.upper() != "AES-GCM":
            warnings.warn(f"MindSpore {mode.upper()} files are not authenticated: anyone can modify them undetected; "
                          "prefer mode 'AES-GCM'", InsecureFormatWarning, stacklevel=3)
        else:
            warnings.warn("MindSpore AES-GCM files authenticate each frame on its own: frames can be dropped, "
                          "reordered and spliced between files under the same key undetected; write format "
                          "'modelcrypt' unless MindSpore itself must read the file", InsecureFormatWarning,
                          stacklevel=3)
    return format


def _warn_if_insecure(reason: str, stacklevel: int = 3) -> None:
    """Warns at the API caller's line (stacklevel counts this function and the API function)."""
    if reason:
        warnings.warn(reason, InsecureFormatWarning, stacklevel=stacklevel)


def _loaded(buffer: _core.DecryptedBuffer) -> _core.DecryptedBuffer:
    _warn_if_insecure(buffer.insecure_reason, stacklevel=4)
    return buffer


def _check_bool(value: bool, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, not {type(value).__name__}")
    return value


def _check_threads(threads: int | None) -> int:
    if threads is None:
        return 0
    if isinstance(threads, bool) or not isinstance(threads, int):
        raise TypeError(f"threads must be an int or None, not {type(threads).__name__}")
    if threads < 1:
        raise ValueError(f"threads must be >= 1 (or None for all cores), got {threads}")
    return min(threads, 1024)


def _check_chunk_size(chunk_size: int | None) -> int:
    if chunk_size is None:
        return DEFAULT_CHUNK_SIZE
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int):
        raise TypeError(f"chunk_size must be an int or None, not {type(chunk_size).__name__}")
    if not (_core.MIN_CHUNK_SIZE <= chunk_size <= _core.MAX_CHUNK_SIZE) or chunk_size % _core.CHUNK_SIZE_MULTIPLE:
        raise ValueError(
            f"chunk_size must be a multiple of {_core.CHUNK_SIZE_MULTIPLE} between {_core.MIN_CHUNK_SIZE} "
            f"and {_core.MAX_CHUNK_SIZE}, got {chunk_size}"
        )
    return chunk_size


def _check_data(data: BytesLike, what: str) -> BytesLike:
    if isinstance(data, str):  # type: ignore[unreachable]  # (a str given despite the annotation: a clear error)
        raise TypeError(f"{what} must be bytes-like, not str (encode it first)")
    try:
        memoryview(data)
    except TypeError:
        raise TypeError(f"{what} must be bytes-like, not {type(data).__name__}") from None
    return data


def _check_progress(progress: ProgressCallback) -> ProgressCallback:
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be callable or None, not {type(progress).__name__}")
    return progress


def _check_source_mode(mode: Mode, format: str = "modelcrypt") -> None:
    """File objects and URLs hold modelcrypt files: no custom cipher, no legacy format or mode."""
    if callable(mode):
        raise ValueError("a custom dec_mode callable reads a local path; file objects and URLs hold modelcrypt files")
    if _check_read_format(format) != "modelcrypt":
        raise ValueError(f"format={format!r}: file objects and URLs are read as modelcrypt files only "
                         "(migrate legacy files first)")
    mode = _check_mode(mode)
    if not isinstance(mode, str) or mode.upper() != "AES-GCM":
        raise ValueError(f"mode {mode!r} is a legacy mode; file objects and URLs hold modelcrypt files (AES-GCM)")
