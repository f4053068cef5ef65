"""The Python API of modelcrypt. Arguments are checked here (types and sizes, pyca-style) before
the native core runs; the core then does all cryptography and file I/O with the GIL released."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

from . import _core, _metadata, _sources
from ._atomic import atomic_write
from ._trust import requires_signature, with_trusted_signers
from ._custom import custom_decrypt, custom_encrypt
from ._key_looks import warn_if_key_looks_like_text
from .exceptions import InsecureFormatWarning

__all__ = [
    "DecryptedBuffer",
    "FileInfo",
    "generate_key",
    "encrypt_file",
    "encrypt_bytes",
    "load",
    "load_range",
    "decrypt_bytes",
    "decrypt_file",
    "verify",
    "is_encrypted",
    "detect_format",
    "inspect",
    "SUPPORTED_MODES",
    "READ_FORMATS",
    "KEY_LENGTHS",
    "DEFAULT_CHUNK_SIZE",
]

StrPath = Union[str, "os.PathLike[str]", bytes, "os.PathLike[bytes]"]
BytesLike = Union[bytes, bytearray, memoryview]
ProgressCallback = Optional[Callable[[int], None]]
# A mode is a name ("AES-GCM") or, MindSpore-style, a caller's own cipher: for encryption
# enc(model_stream: bytes, key: bytes) -> bytes, for decryption dec(cipher_file: str, key: bytes) -> bytes.
# modelcrypt does not (cannot) check a custom cipher's security or correctness.
Mode = Union[str, Callable[..., bytes]]

KEY_LENGTHS = (16, 24, 32)
SUPPORTED_MODES = tuple(_core.supported_modes())
DEFAULT_CHUNK_SIZE = _core.DEFAULT_CHUNK_SIZE

DecryptedBuffer = _core.DecryptedBuffer
DecryptedBuffer.__module__ = "modelcrypt"
DecryptedBuffer.metadata = property(  # type: ignore[attr-defined]
    lambda self: _metadata.decode(self.metadata_raw),
    doc="The file's authenticated metadata (dict of str to str; {} when none).",
)
DecryptedBuffer.__repr__ = lambda self: (  # type: ignore[method-assign]
    "<modelcrypt.DecryptedBuffer closed>" if self.closed else f"<modelcrypt.DecryptedBuffer {len(self)} bytes>"
)


@dataclass(frozen=True)
class FileInfo:
    """Header fields of an encrypted file. Read without the key, none of it is authenticated; read
    with one (``inspect(path, key)`` / ``identity=``), ``authenticated`` is True: every field but
    ``file_length`` and ``signer`` comes from the header the key authenticated, and ``opened_by``
    says which stanza opened it.

    For MindSpore and PaddleX files (``format`` "mindspore" / "paddlex") the modelcrypt-only fields
    are None; ``cipher`` and ``frames`` describe them (``plaintext_length`` is None for CBC files,
    whose padding is only known after decryption).
    """

    path: str
    file_length: int
    plaintext_length: int | None
    format: str = "modelcrypt"
    cipher: str = "AES-256-GCM"
    frames: int | None = None
    version: int | None = None
    algorithm: str | None = None
    chunk_size: int | None = None
    chunk_count: int | None = None
    header_length: int | None = None
    expected_file_length: int | None = None
    salt: bytes | None = None
    key_commitment: bytes | None = None
    metadata_raw: bytes = b""
    #: Format v2: the recipients block's size and its stanzas, [{"type": "x25519" | "symmetric" |
    #: "unknown", "type_id": int, "fingerprint": hex str | None}], in file order ([] for v1).
    recipients_length: int | None = None
    recipients: tuple = ()
    #: Format v3: the publisher the signature trailer names ("modelcrypt-signer1..."). Unauthenticated
    #: (inspect needs no key): it is a claim until verify_signature / trusted_signers= checks it.
    signer: str | None = None
    #: Whether the header was authenticated (inspect with a key or identity).
    authenticated: bool = False
    #: With a key or identity: what opened the file: "key" (format v1), "symmetric" (a v2 key stanza)
    #: or "x25519 <fingerprint>" (the identity's stanza). None without one.
    opened_by: str | None = None

    @property
    def metadata(self) -> dict[str, str]:
        return _metadata.decode(self.metadata_raw)


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


def _check_key(key: BytesLike) -> BytesLike:
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


def _credential(key: object, identity: object, trusted_signers: object = None) -> object:
    """What a reader opens a file with: ``key`` (bytes-like or an Identity) or ``identity=``, requiring
    a publisher signature by one of ``trusted_signers`` when given."""
    if identity is None:
        return with_trusted_signers(_check_key(key), trusted_signers)
    if key is not None:
        raise TypeError("give either a key or identity=, not both")
    if not isinstance(identity, _core.X25519Identity):
        raise TypeError(f"identity must be a modelcrypt.Identity, not {type(identity).__name__}")
    return with_trusted_signers(identity, trusted_signers)


def _reader_key(key: object, trusted_signers: object, mode: object = "AES-GCM", identity: object = None) -> object:
    """``key`` for the framework loaders and checkpoint readers: as given (``identity=`` in its place:
    an Identity opens format v2 files), or (``trusted_signers`` given) a credential that requires a
    publisher signature, accepted by every read path."""
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


def _check_signing_key(signing_key: object) -> object:
    if signing_key is not None and not isinstance(signing_key, _core.SigningKey):
        raise TypeError(f"signing_key must be a modelcrypt.SigningKey (read_signing_key_file), not {type(signing_key).__name__}")
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


def _writer_key(key: object, recipients: object) -> tuple[object, list[bytes] | None]:
    keys = _recipient_keys(recipients)
    if key is None:
        if not keys:
            raise TypeError("a key or at least one recipient is needed")
        return None, keys
    return _check_key(key), keys


def _check_mode(mode: Mode) -> Mode:
    if callable(mode):
        return mode
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
        # Checked here as well as in the core, whose messages repeat the mode: what reaches it is known words and digits.
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
                          "'modelcrypt' unless MindSpore itself must read the file", InsecureFormatWarning, stacklevel=3)
    return format


def _warn_if_insecure(reason: str, stacklevel: int = 3) -> None:
    """Warns at the API caller's line (stacklevel counts this function and the API function)."""
    if reason:
        warnings.warn(reason, InsecureFormatWarning, stacklevel=stacklevel)


def _loaded(buffer: DecryptedBuffer) -> DecryptedBuffer:
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
    if isinstance(data, str):
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


def generate_key(length: int = 32) -> bytes:
    """A fresh random master key from OpenSSL's CSPRNG (16, 24 or 32 bytes)."""
    if isinstance(length, bool) or not isinstance(length, int):
        raise TypeError(f"length must be an int, not {type(length).__name__}")
    if length not in KEY_LENGTHS:
        raise ValueError(f"length must be 16, 24 or 32, got {length}")
    return _core.random_bytes(length)


def encrypt_file(
    src: StrPath,
    dst: StrPath,
    key: BytesLike | None = None,
    mode: Mode = "AES-GCM",
    *,
    chunk_size: int | None = None,
    metadata: Mapping[str, str] | None = None,
    threads: int | None = None,
    progress: ProgressCallback = None,
    format: str = "modelcrypt",
    durable: bool = True,
    recipients: list | None = None,
    signing_key: object = None,
    storage_options: Mapping[str, Any] | None = None,
) -> None:
    """Encrypt the file ``src`` into ``dst`` (format v1), streaming in bounded memory.

    ``dst`` may be a URL (``s3://...``, fsspec, ``storage_options`` as for load): the ciphertext is
    uploaded as it is sealed (s3fs: a multipart upload, memory bounded whatever the file's size) and
    the object appears only once complete; on any failure the upload is aborted and an existing
    object under that name is left as it was (modelcrypt format only).

    ``recipients`` (X25519 recipients: "modelcrypt1..." or "age1..." text, or Identity objects)
    writes format v2 instead: the file opens with any recipient's identity, and with ``key`` too
    when one is given (``key=None`` for recipients only). An Identity passed as ``key`` means its
    recipient. Recipients can be added and removed later without re-encrypting (add_recipients).

    ``signing_key`` (a SigningKey) signs the file as its publisher (format v3): readers that pass
    ``trusted_signers=[its public key]`` then know no key holder changed a byte. The signature
    survives adding and removing recipients.

    ``dst`` appears atomically when complete (temporary file beside it, fsync, rename); on any
    error, and on KeyboardInterrupt, it is left as it was and no temporary file remains. On Linux
    the temporary file is unnamed (O_TMPFILE) until complete, so a killed process leaves none either.
    ``durable=False`` skips the fsyncs: the rename stays atomic for readers and against a crash or
    kill of this process, but a power loss or kernel crash soon after may leave ``dst`` empty or
    partial. Use it for scratch outputs when the disk's flush speed is the bottleneck.
    ``metadata`` is authenticated but stored in clear. ``progress(bytes_done)`` is called after
    each batch of up to 16 MiB is written, the last time once the output is complete and flushed,
    just before the rename; an exception it raises (Ctrl-C included) cancels the operation and
    leaves ``dst`` untouched. Reading, encryption (``threads``, default all cores) and writing
    run concurrently in three 16 MiB buffers.

    ``format="mindspore"`` writes MindSpore's frame format instead (mode "AES-GCM", or the
    unauthenticated "AES-CBC" / "SM4-CBC" with an InsecureFormatWarning), which MindSpore loads with
    ``dec_key``/``dec_mode``; frames of at most 64 MiB, a fresh random IV per frame.
    """
    if _sources.is_url(dst) or storage_options is not None:
        from ._upload import encrypt_file_to_url

        return encrypt_file_to_url(src, dst, key, mode, recipients, signing_key, storage_options, chunk_size=chunk_size,
                                   metadata=metadata, threads=threads, progress=progress, format=format)
    if recipients is None and signing_key is None and not isinstance(key, _core.X25519Identity):
        if _check_format(format, mode, chunk_size, metadata) == "mindspore":
            _core.mindspore_encrypt_file(_fspath(src, "src"), _fspath(dst, "dst"), _check_key(key), mode)
            return
        if callable(mode):
            src_path, dst_path, key = _fspath(src, "src"), _fspath(dst, "dst"), _check_key(key)
            with open(src_path, "rb") as f:
                atomic_write(os.fsdecode(dst_path), custom_encrypt(mode, f.read(), key))
            return
    elif format != "modelcrypt" or callable(mode):
        raise ValueError("recipients and signing_key need format='modelcrypt' and mode 'AES-GCM'")
    key, keys = _writer_key(key, recipients)
    _core.encrypt_file(
        _fspath(src, "src"), _fspath(dst, "dst"), key, _check_mode(mode),
        _check_chunk_size(chunk_size), _metadata.encode(metadata), _check_threads(threads), _check_progress(progress),
        _check_bool(durable, "durable"), keys, _check_signing_key(signing_key),
    )


def encrypt_bytes(
    data: BytesLike,
    key: BytesLike | None = None,
    mode: Mode = "AES-GCM",
    *,
    chunk_size: int | None = None,
    metadata: Mapping[str, str] | None = None,
    threads: int | None = None,
    format: str = "modelcrypt",
    recipients: list | None = None,
    signing_key: object = None,
) -> bytes:
    """Encrypt bytes-like ``data`` into a format v1 blob (the same bytes encrypt_file would write).

    ``format="mindspore"``: MindSpore's frame format, as for encrypt_file. ``recipients`` and
    ``signing_key`` as for encrypt_file."""
    if recipients is None and signing_key is None and not isinstance(key, _core.X25519Identity):
        if _check_format(format, mode, chunk_size, metadata) == "mindspore":
            return _core.mindspore_encrypt_bytes(_check_data(data, "data"), _check_key(key), mode)
        if callable(mode):
            return bytes(custom_encrypt(mode, _check_data(data, "data"), _check_key(key)))
    elif format != "modelcrypt" or callable(mode):
        raise ValueError("recipients and signing_key need format='modelcrypt' and mode 'AES-GCM'")
    key, keys = _writer_key(key, recipients)
    return _core.encrypt_bytes(
        _check_data(data, "data"), key, _check_mode(mode), _check_chunk_size(chunk_size),
        _metadata.encode(metadata), _check_threads(threads), keys, _check_signing_key(signing_key),
    )


def load(
    path: StrPath | Any, key: BytesLike | None = None, mode: Mode = "AES-GCM", *, format: str = "modelcrypt",
    threads: int | None = None, identity: object = None, trusted_signers: list | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> DecryptedBuffer:
    """Decrypt the file at ``path`` into memory; nothing is written to disk.

    ``path`` may also be a seekable binary file object (read from its current position) or a URL
    (``s3://``, ``gs://``, ``az://``, ``http(s)://``, ... through fsspec, ``storage_options`` as
    fsspec takes them; ``pip install 'modelcrypt[remote]'``). Those hold modelcrypt files only
    (no legacy format, no custom cipher); every byte is read once into memory modelcrypt owns.

    Raises KeyMismatchError for a wrong key, AuthenticationError for modified, truncated or extended
    data, FormatError for a file that is not format v1. The returned DecryptedBuffer holds the only
    copy of the plaintext; ``close()`` (or leaving a ``with`` block) wipes it. Views of it
    (memoryview, np.frombuffer, torch.frombuffer) read that copy: while any is alive, closing raises
    BufferError and leaves the buffer intact (release them, or copy with ``np.array(v, copy=True)``).

    ``format`` is which formats you accept: "modelcrypt" (the default) reads format v1 only, so
    nobody can swap a model for a weaker legacy file under the same key. To read a legacy file, say
    so: "mindspore", "paddlex", "paddle-cipher" (each also reads v1 files) or "auto" (any); modes that
    only exist in a legacy format ("AES-CBC", "SM4-CBC", "paddle:...") choose it themselves. Weak
    formats warn (InsecureFormatWarning); ``buf.format`` tells which format was read.

    ``trusted_signers`` (signer public keys, "modelcrypt-signer1..." text): the file must carry a
    valid publisher signature (format v3) by one of them, checked chunk by chunk beside the
    decryption; unsigned, signed by someone else or changed: SignatureError, no plaintext.
    """
    key = _credential(key, identity, trusted_signers)  # a format v2 file opens with an Identity of one of its recipients
    if _sources.is_file_object(path) or _sources.is_url(path):
        return _load_source(path, key, mode, format, threads, storage_options)
    if storage_options is not None:
        raise ValueError("storage_options apply to URLs (s3://..., https://...), not to a local path")
    if callable(mode):
        _no_custom_with_signature(key)
        return custom_decrypt(mode, _fspath(path, "path"), _check_key(key))
    return _loaded(_core.load(_fspath(path, "path"), key, _check_mode(mode), _check_read_format(format),
                              _check_threads(threads)))


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


def _load_source(source: Any, key: object, mode: Mode, format: str, threads: int | None,
                 storage_options: Mapping[str, Any] | None) -> DecryptedBuffer:
    """load() of a file object or URL: modelcrypt files only, through the core's read callback."""
    _check_source_mode(mode, format)
    threads = _check_threads(threads)
    if _sources.is_url(source):
        with _sources.RangeReader(source, storage_options) as reader:
            reader.whole()
            return _loaded(_core.load_source(reader, reader.size, key, "AES-GCM", threads))
    if storage_options is not None:
        raise ValueError("storage_options apply to URLs, not to a file object")
    reader = _sources.FileObjectReader(source)
    return _loaded(_core.load_source(reader, reader.size, key, "AES-GCM", threads))


def load_range(
    path: StrPath | Any, key: BytesLike | None = None, mode: Mode = "AES-GCM", *, offset: int, length: int,
    threads: int | None = None, identity: object = None, trusted_signers: list | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> DecryptedBuffer:
    """Decrypt only plaintext bytes [offset, offset + length) of an encrypted file (random access).

    The header is authenticated exactly as by load(); only the chunks covering the range are read
    and decrypted, each authenticated. A range outside the plaintext is a ValueError. For several
    ranges of one file use ``open_encrypted(path, key)``: one handle, one header authentication.
    ``path`` may be a file object or a URL, as for load().
    """
    offset, length = _check_uint(offset, "offset"), _check_uint(length, "length")
    if offset + length > MAX_UINT64:
        raise ValueError("offset + length must be at most 2**64 - 1")
    if callable(mode):
        raise TypeError("load_range needs a modelcrypt mode; a custom dec_mode callable cannot read part of a file")
    from ._random_access import open_encrypted

    if _sources.is_file_object(path) or _sources.is_url(path):
        with open_encrypted(path, key, mode, identity=identity, trusted_signers=trusted_signers,
                            storage_options=storage_options) as f:
            return f.read_range(offset, length, threads=threads)
    raw, key, mode = _fspath(path, "path"), _credential(key, identity, trusted_signers), _check_mode(mode)
    if mode.lower().startswith("paddle:") or _core.detect_format(raw) in ("mindspore", "paddlex"):
        raise ValueError(f"{os.fsdecode(raw)}: random access needs a modelcrypt file; legacy formats load whole "
                         "(use load with format=...)")
    with open_encrypted(raw, key, mode) as f:
        return f.read_range(offset, length, threads=threads)


def decrypt_bytes(
    blob: BytesLike, key: BytesLike | None = None, mode: Mode = "AES-GCM", *, format: str = "modelcrypt",
    threads: int | None = None, identity: object = None, trusted_signers: list | None = None,
) -> DecryptedBuffer:
    """Decrypt a format v1 blob held in memory (``format`` as for load).

    Every byte of ``blob`` is copied once into modelcrypt's memory before it is parsed,
    authenticated and decrypted, so a blob that changes meanwhile (an ``mmap`` of a file being
    rewritten) yields its authentic plaintext or an error, never anything else."""
    if callable(mode):
        raise TypeError("a custom dec_mode callable reads a file (cipher_file: str, key: bytes); use load(path, key, mode)")
    return _loaded(_core.decrypt_bytes(_check_data(blob, "blob"), _credential(key, identity, trusted_signers), _check_mode(mode),
                                       _check_read_format(format), _check_threads(threads)))


def decrypt_file(
    src: StrPath,
    dst: StrPath,
    key: BytesLike | None = None,
    mode: Mode = "AES-GCM",
    *,
    format: str = "modelcrypt",
    threads: int | None = None,
    progress: ProgressCallback = None,
    durable: bool = True,
    identity: object = None,
    trusted_signers: list | None = None,
) -> None:
    """The converter: decrypt ``src`` into the plaintext file ``dst``, on purpose.

    Streams in bounded memory; ``dst`` (mode 0600) appears only after every chunk has been
    authenticated, so a tampered input leaves no partial plaintext behind. ``progress`` and
    ``durable`` as for encrypt_file, ``format`` as for load.
    """
    key = _credential(key, identity, trusted_signers)
    if callable(mode):
        _no_custom_with_signature(key)
        dst_path = _fspath(dst, "dst")
        with custom_decrypt(mode, _fspath(src, "src"), _check_key(key)) as plaintext:
            atomic_write(os.fsdecode(dst_path), plaintext, permissions=0o600, exact_permissions=True)
        return
    _warn_if_insecure(_core.decrypt_file(
        _fspath(src, "src"), _fspath(dst, "dst"), key, _check_mode(mode), _check_read_format(format),
        _check_threads(threads), _check_progress(progress), _check_bool(durable, "durable"),
    ))


def verify(
    path: StrPath,
    key: BytesLike | None = None,
    mode: Mode = "AES-GCM",
    *,
    format: str = "modelcrypt",
    threads: int | None = None,
    progress: ProgressCallback = None,
    identity: object = None,
    trusted_signers: list | None = None,
) -> None:
    """Authenticate a whole encrypted file in bounded memory, writing nothing.

    Returns None when every chunk authenticates; raises KeyMismatchError, AuthenticationError or
    FormatError (as load would) otherwise. ``format`` as for load: by default only a format v1 file
    passes. ``trusted_signers`` as for load; with no key at all, see verify_signature (keyless).
    """
    key = _credential(key, identity, trusted_signers)
    if callable(mode):
        _no_custom_with_signature(key)  # a custom cipher is trusted to raise on bad input; modelcrypt cannot check it
        custom_decrypt(mode, _fspath(path, "path"), _check_key(key)).close()
        return
    _warn_if_insecure(_core.verify_file(_fspath(path, "path"), key, _check_mode(mode),
                                        _check_read_format(format), _check_threads(threads), _check_progress(progress)))


def is_encrypted(path: StrPath) -> bool:
    """True when the file starts with the modelcrypt format v1 magic."""
    return _core.is_encrypted(_fspath(path, "path"))


def detect_format(path: StrPath) -> str:
    """The format a file's first bytes announce: "modelcrypt", "mindspore", "paddlex" or "unknown".

    Paddle core cipher files carry no magic and show as "unknown" (read them with a "paddle:..." mode).
    """
    return _core.detect_format(_fspath(path, "path"))


def inspect(path: StrPath, key: BytesLike | None = None, *, identity: object = None) -> FileInfo:
    """Header fields of an encrypted file. No key needed, and then nothing returned is authenticated.

    With ``key`` (or ``identity=``) the header of a modelcrypt file is authenticated first (reader
    steps 1-8 of docs/FORMAT.md, no chunk is read): a wrong key is KeyMismatchError, a modified
    header AuthenticationError, and the fields returned are those of the authenticated header, with
    ``authenticated`` True and ``opened_by`` naming the stanza that opened it. The payload is not
    checked (that is :func:`verify`), and ``signer`` stays a claim (see verify_signature)."""
    raw = _fspath(path, "path")
    if key is not None or identity is not None:
        return _inspect_authenticated(raw, _credential(key, identity))
    if _core.detect_format(raw) in ("mindspore", "paddlex"):
        return FileInfo(path=os.fsdecode(raw), **_core.describe_legacy(raw))
    return FileInfo(path=os.fsdecode(raw), **_file_info_fields(_core.inspect(raw)))


def _file_info_fields(fields: dict) -> dict:
    """FileInfo's fields from the core's header dict (fingerprints and signer as text)."""
    signer = fields.pop("signer", None)
    fields["signer"] = _core.format_signer(signer) if signer is not None else None
    fields["recipients"] = tuple(
        {**r, "fingerprint": r["fingerprint"].hex() if r["fingerprint"] is not None else None} for r in fields["recipients"])
    return fields


def _inspect_authenticated(raw: bytes, credential: object) -> FileInfo:
    fmt = _core.detect_format(raw)
    if fmt in ("mindspore", "paddlex"):
        raise ValueError(f"inspect with a key authenticates modelcrypt headers; a {fmt} file has no authenticated "
                         "header (verify it with format=..., or migrate it to modelcrypt)")
    handle = _core.open_encrypted(raw, credential, "AES-GCM")
    try:
        fields = _file_info_fields(handle.header_info)
    finally:
        handle.close()
    if not fields["recipients"]:
        opened_by = "key"  # format v1: the key itself
    elif isinstance(credential, _core.X25519Identity):
        opened_by = f"x25519 {_core.recipient_fingerprint(credential.public_key).hex()}"
    else:
        opened_by = "symmetric"
    # The signer is in the v3 trailer, which the header does not cover: a claim, read as inspect reads it.
    claimed_signer = _core.inspect(raw)["signer"] if fields["version"] == 3 else None
    fields["signer"] = _core.format_signer(claimed_signer) if claimed_signer is not None else None
    return FileInfo(path=os.fsdecode(raw), authenticated=True, opened_by=opened_by, **fields)
