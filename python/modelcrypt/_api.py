"""The Python API of modelcrypt. Arguments are checked here (types and sizes, pyca-style) before
the native core runs; the core then does all cryptography and file I/O with the GIL released."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from . import _core, _metadata, _sources
from ._atomic import atomic_write
from ._custom import custom_decrypt, custom_encrypt
from ._url_files import decrypt_url, verify_url

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
from ._checks import (  # noqa: F401  (also imported from here by the other modules)
    _PADDLE_MODE,
    DEFAULT_CHUNK_SIZE,
    FORMATS,
    KEY_LENGTHS,
    MAX_UINT64,
    PADDLE_CIPHER_NAMES,
    READ_FORMATS,
    SUPPORTED_MODES,
    BytesLike,
    Credential,
    Mode,
    ProgressCallback,
    StrPath,
    _check_bool,
    _check_chunk_size,
    _check_data,
    _check_format,
    _check_key,
    _check_mode,
    _check_mode_name,
    _check_progress,
    _check_read_format,
    _check_signing_key,
    _check_source_mode,
    _check_text,
    _check_threads,
    _check_uint,
    _credential,
    _fspath,
    _loaded,
    _no_custom_with_signature,
    _reader_key,
    _recipient_keys,
    _shown,
    _warn_if_insecure,
    _writer_key,
)
from ._file_info import FileInfo, _file_info_fields, inspect  # noqa: F401

DecryptedBuffer = _core.DecryptedBuffer
DecryptedBuffer.__module__ = "modelcrypt"
# (_core.pyi declares the metadata property, which is defined here, in Python)
DecryptedBuffer.metadata = property(  # type: ignore[method-assign,assignment]
    lambda self: _metadata.decode(self.metadata_raw),
    doc="The file's authenticated metadata (dict of str to str; {} when none).",
)


def _buffer_repr(self: DecryptedBuffer) -> str:
    return "<modelcrypt.DecryptedBuffer closed>" if self.closed else f"<modelcrypt.DecryptedBuffer {len(self)} bytes>"


DecryptedBuffer.__repr__ = _buffer_repr  # type: ignore[method-assign,assignment]


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
    key: Credential | None = None,
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
            _core.mindspore_encrypt_file(_fspath(src, "src"), _fspath(dst, "dst"), _check_key(key),
                                         _check_mode_name(mode))
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
        _fspath(src, "src"), _fspath(dst, "dst"), key, _check_mode_name(mode),
        _check_chunk_size(chunk_size), _metadata.encode(metadata), _check_threads(threads), _check_progress(progress),
        _check_bool(durable, "durable"), keys, _check_signing_key(signing_key),
    )


def encrypt_bytes(
    data: BytesLike,
    key: Credential | None = None,
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
            return _core.mindspore_encrypt_bytes(_check_data(data, "data"), _check_key(key), _check_mode_name(mode))
        if callable(mode):
            return bytes(custom_encrypt(mode, _check_data(data, "data"), _check_key(key)))
    elif format != "modelcrypt" or callable(mode):
        raise ValueError("recipients and signing_key need format='modelcrypt' and mode 'AES-GCM'")
    key, keys = _writer_key(key, recipients)
    return _core.encrypt_bytes(
        _check_data(data, "data"), key, _check_mode_name(mode), _check_chunk_size(chunk_size),
        _metadata.encode(metadata), _check_threads(threads), keys, _check_signing_key(signing_key),
    )


def load(
    path: StrPath | Any, key: Credential | None = None, mode: Mode = "AES-GCM", *, format: str = "modelcrypt",
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
    # (a format v2 file opens with an Identity of one of its recipients)
    key = _credential(key, identity, trusted_signers)
    if _sources.is_file_object(path) or _sources.is_url(path):
        return _load_source(path, key, mode, format, threads, storage_options)
    if storage_options is not None:
        raise ValueError("storage_options apply to URLs (s3://..., https://...), not to a local path")
    if callable(mode):
        _no_custom_with_signature(key)
        return custom_decrypt(mode, _fspath(path, "path"), _check_key(key))
    return _loaded(_core.load(_fspath(path, "path"), key, _check_mode_name(mode), _check_read_format(format),
                              _check_threads(threads)))


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
    file_reader = _sources.FileObjectReader(source)
    return _loaded(_core.load_source(file_reader, file_reader.size, key, "AES-GCM", threads))


def load_range(
    path: StrPath | Any, key: Credential | None = None, mode: Mode = "AES-GCM", *, offset: int, length: int,
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
    raw, key, mode = _fspath(path, "path"), _credential(key, identity, trusted_signers), _check_mode_name(mode)
    if mode.lower().startswith("paddle:") or _core.detect_format(raw) in ("mindspore", "paddlex"):
        raise ValueError(f"{os.fsdecode(raw)}: random access needs a modelcrypt file; legacy formats load whole "
                         "(use load with format=...)")
    with open_encrypted(raw, key, mode) as f:
        return f.read_range(offset, length, threads=threads)


def decrypt_bytes(
    blob: BytesLike, key: Credential | None = None, mode: Mode = "AES-GCM", *, format: str = "modelcrypt",
    threads: int | None = None, identity: object = None, trusted_signers: list | None = None,
) -> DecryptedBuffer:
    """Decrypt a format v1 blob held in memory (``format`` as for load).

    Every byte of ``blob`` is copied once into modelcrypt's memory before it is parsed,
    authenticated and decrypted, so a blob that changes meanwhile (an ``mmap`` of a file being
    rewritten) yields its authentic plaintext or an error, never anything else."""
    if callable(mode):
        raise TypeError("a custom dec_mode callable reads a file (cipher_file: str, key: bytes); "
                        "use load(path, key, mode)")
    return _loaded(_core.decrypt_bytes(_check_data(blob, "blob"), _credential(key, identity, trusted_signers),
                                       _check_mode_name(mode), _check_read_format(format), _check_threads(threads)))


def decrypt_file(
    src: StrPath | Any,
    dst: StrPath,
    key: Credential | None = None,
    mode: Mode = "AES-GCM",
    *,
    format: str = "modelcrypt",
    threads: int | None = None,
    progress: ProgressCallback = None,
    durable: bool = True,
    identity: object = None,
    trusted_signers: list | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> None:
    """The converter: decrypt ``src`` into the plaintext file ``dst``, on purpose.

    Streams in bounded memory; ``dst`` (mode 0600) appears only after every chunk has been
    authenticated, so a tampered input leaves no partial plaintext behind, and an existing ``dst``
    is replaced only then (a failed decryption leaves it as it was). ``progress`` and ``durable``
    as for encrypt_file, ``format`` as for load.

    ``src`` may be a URL (``s3://...``, ``https://...``, through fsspec; ``storage_options`` as
    fsspec takes them) or a seekable binary file object holding a modelcrypt file: it is read once,
    by ranges fetched ahead in parallel (an object changed meanwhile is a SourceChangedError);
    ``dst`` is a local path, written as for a local ``src``.
    """
    if _sources.is_url(dst):
        raise ValueError(f"dst must be a local path, not a URL ({_sources.shown_url(dst)}): decrypt_file writes the "
                         "plaintext to a local file")
    if _sources.is_url(src) or _sources.is_file_object(src):
        _check_source_mode(mode, format)
        decrypt_url(src, os.fsdecode(_fspath(dst, "dst")), key, threads=threads, progress=progress,
                    durable=durable, identity=identity, trusted_signers=trusted_signers,
                    storage_options=storage_options)
        return
    if storage_options is not None:
        raise ValueError("storage_options apply to URLs (s3://..., https://...), not to a local path")
    key = _credential(key, identity, trusted_signers)
    if callable(mode):
        _no_custom_with_signature(key)
        dst_path = _fspath(dst, "dst")
        with custom_decrypt(mode, _fspath(src, "src"), _check_key(key)) as plaintext:
            atomic_write(os.fsdecode(dst_path), plaintext, permissions=0o600, exact_permissions=True)
        return
    _warn_if_insecure(_core.decrypt_file(
        _fspath(src, "src"), _fspath(dst, "dst"), key, _check_mode_name(mode), _check_read_format(format),
        _check_threads(threads), _check_progress(progress), _check_bool(durable, "durable"),
    ))


def verify(
    path: StrPath,
    key: Credential | None = None,
    mode: Mode = "AES-GCM",
    *,
    format: str = "modelcrypt",
    threads: int | None = None,
    progress: ProgressCallback = None,
    identity: object = None,
    trusted_signers: list | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> None:
    """Authenticate a whole encrypted file in bounded memory, writing nothing.

    Returns None when every chunk authenticates; raises KeyMismatchError, AuthenticationError or
    FormatError (as load would) otherwise. ``format`` as for load: by default only a format v1 file
    passes. ``trusted_signers`` as for load; with no key at all, see verify_signature (keyless).

    ``path`` may be a URL (``s3://...``, through fsspec; ``storage_options`` as fsspec takes them):
    the object is read once, by ranges fetched ahead in parallel, and nothing is kept.
    """
    if _sources.is_url(path):
        _check_source_mode(mode, format)
        verify_url(path, key, threads=threads, progress=progress, identity=identity, trusted_signers=trusted_signers,
                   storage_options=storage_options)
        return
    if storage_options is not None:
        raise ValueError("storage_options apply to URLs (s3://..., https://...), not to a local path")
    key = _credential(key, identity, trusted_signers)
    if callable(mode):
        _no_custom_with_signature(key)  # a custom cipher is trusted to raise on bad input; modelcrypt cannot check it
        custom_decrypt(mode, _fspath(path, "path"), _check_key(key)).close()
        return
    _warn_if_insecure(_core.verify_file(_fspath(path, "path"), key, _check_mode_name(mode),
                                        _check_read_format(format), _check_threads(threads), _check_progress(progress)))


def is_encrypted(path: StrPath) -> bool:
    """True when the file starts with the modelcrypt format v1 magic."""
    return _core.is_encrypted(_fspath(path, "path"))


def detect_format(path: StrPath) -> str:
    """The format a file's first bytes announce: "modelcrypt", "mindspore", "paddlex" or "unknown".

    Paddle core cipher files carry no magic and show as "unknown" (read them with a "paddle:..." mode).
    """
    return _core.detect_format(_fspath(path, "path"))
