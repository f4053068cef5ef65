"""Random access through one handle: ``open_encrypted(path, key) -> EncryptedFile``.

The file is opened once and its header authenticated once; every ``read_range`` goes through the
same descriptor with the same derived keys, so everything one handle returns belongs to the one
file that was authenticated. A file replaced at its path or rewritten in place while the handle is
open makes the next read raise AuthenticationError (saying the file changed); it never yields a
mix of two files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from . import _core, _metadata, _sources
from ._checks import (
    Credential,
    Mode,
    ProgressCallback,
    StrPath,
    _check_bool,
    _check_mode_name,
    _check_progress,
    _check_signing_key,
    _check_source_mode,
    _check_threads,
    _credential,
    _fspath,
    _writer_key,
)
from ._core import DecryptedBuffer

__all__ = ["EncryptedFile", "open_encrypted"]


def _check_uint(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


class EncryptedFile:
    """An encrypted file opened for random access (see :func:`open_encrypted`). Thread-safe."""

    __slots__ = ("_handle", "_path", "_metadata", "_owned")

    def __init__(self, handle: Any, path: str, owned: Any = None):
        self._handle = handle
        self._path = path
        self._metadata: dict[str, str] | None = None
        self._owned = owned  # the RangeReader of a URL, closed with the handle

    @property
    def path(self) -> str:
        return self._path

    @property
    def closed(self) -> bool:
        return self._handle.closed

    @property
    def plaintext_length(self) -> int:
        return self._handle.plaintext_length

    @property
    def chunk_size(self) -> int:
        return self._handle.chunk_size

    @property
    def file_length(self) -> int:
        return self._handle.file_length

    @property
    def metadata_raw(self) -> bytes:
        return self._handle.metadata_raw

    @property
    def metadata(self) -> dict[str, str]:
        """The authenticated metadata (dict of str to str; {} when none)."""
        if self._metadata is None:
            self._metadata = _metadata.decode(self._handle.metadata_raw)
        return dict(self._metadata)

    def read_range(self, offset: int, length: int, *, threads: int | None = None) -> DecryptedBuffer:
        """Plaintext bytes [offset, offset + length), reading and decrypting only the chunks that
        hold them. A range outside the plaintext is a ValueError."""
        offset, length = _check_uint(offset, "offset"), _check_uint(length, "length")
        self._expect(offset, length)
        return self._handle.read_range(offset, length, _check_threads(threads))

    def read_range_into(self, offset: int, out: Any, *, threads: int | None = None) -> None:
        """Plaintext bytes [offset, offset + len(out)) decrypted straight into ``out``, a writable
        C-contiguous buffer (bytearray, numpy array, memoryview, mmap; a torch tensor through
        ``t.view(torch.uint8).numpy()``): no second buffer holds the plaintext (only the at most two
        chunks the range cuts pass through wiping scratch memory). ``out`` must not be used by
        anyone else meanwhile. On any error (AuthenticationError, the file changed, I/O) every byte
        of ``out`` is wiped (zeroed) before the exception, so no partial plaintext is left in it."""
        offset = _check_uint(offset, "offset")
        try:
            self._expect(offset, memoryview(out).nbytes)
        except TypeError:
            pass  # not a buffer: the core says so
        self._handle.read_range_into(offset, out, _check_threads(threads))

    def read_all(self, *, threads: int | None = None) -> DecryptedBuffer:
        """The whole plaintext (as modelcrypt.load would return it)."""
        self._expect(0, self._handle.plaintext_length)
        return self._handle.read_range(0, self._handle.plaintext_length, _check_threads(threads))

    def _expect(self, offset: int, length: int) -> None:
        """Tells a URL's reader which chunks come next (unless announced already with _expect_spans), so
        that they are fetched coalesced and in parallel."""
        owned = self._owned
        if owned is not None and not self._handle.closed and offset + length <= self._handle.plaintext_length:
            owned.expect_chunks(self._handle, [(offset, length)], keep=True)

    def _expect_spans(self, spans: list[tuple[int, int]]) -> None:
        """Announces several plaintext spans (offset, length) that read_range will be asked for next
        (load_checkpoint(names=...)): a URL's reader fetches all their chunks in parallel."""
        owned = self._owned
        if owned is not None and not self._handle.closed:
            total = self._handle.plaintext_length
            owned.expect_chunks(self._handle, [(o, n) for o, n in spans if o + n <= total])

    def decrypt_to(self, dst: StrPath, *, threads: int | None = None, progress: ProgressCallback = None,
                   durable: bool = True) -> None:
        """modelcrypt.decrypt_file of this file, through this handle."""
        self._file_only("decrypt_to_file")(_fspath(dst, "dst"), _check_threads(threads), _check_progress(progress),
                                     _check_bool(durable, "durable"))

    def verify(self, *, threads: int | None = None, progress: ProgressCallback = None) -> None:
        """modelcrypt.verify of this file, through this handle."""
        self._file_only("verify")(_check_threads(threads), _check_progress(progress))

    def reencrypt_to(self, dst: StrPath, new_key: Credential | None = None, *, metadata_raw: bytes | None = None,
                     chunk_size: int | None = None, threads: int | None = None, progress: ProgressCallback = None,
                     durable: bool = True, recipients: list | None = None, signing_key: object = None) -> None:
        """Encrypt this file's plaintext to ``dst`` as a new file under ``new_key`` (key rotation), in
        bounded memory: decrypted and authenticated batch by batch through this handle, never on disk.
        ``metadata_raw`` (encoded metadata) defaults to this file's; ``chunk_size`` to its.
        ``recipients`` (as for encrypt_file) writes format v2 to them (with ``new_key`` too, if given):
        the way to move a v1 file to recipients, or to draw a new file key that removed devices lack.
        ``signing_key`` signs the new file (format v3); a new payload needs a new signature."""
        key, keys = _writer_key(new_key, recipients)
        self._file_only("reencrypt_to_file")(
            _fspath(dst, "dst"), key,
            self._handle.chunk_size if chunk_size is None else _check_uint(chunk_size, "chunk_size"),
            self._handle.metadata_raw if metadata_raw is None else metadata_raw,
            _check_threads(threads), _check_progress(progress), _check_bool(durable, "durable"), keys,
            _check_signing_key(signing_key))

    def close(self) -> None:
        """Close the file and wipe its derived keys. Buffers already returned stay valid."""
        self._handle.close()
        if self._owned is not None:
            owned, self._owned = self._owned, None
            owned.close()

    def _file_only(self, what: str) -> Any:
        if not hasattr(self._handle, what):
            raise ValueError(f"{what.replace('_file', '').replace('_', ' ')} needs a local file; "
                             f"{self._path} is read through a file object or URL (use read_range / read_all)")
        return getattr(self._handle, what)

    def __enter__(self) -> "EncryptedFile":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.closed:
            return f"<modelcrypt.EncryptedFile {self._path!r} closed>"
        return f"<modelcrypt.EncryptedFile {self._path!r} {self.plaintext_length} bytes>"


EncryptedFile.__module__ = "modelcrypt"


def open_encrypted(path: StrPath | Any, key: Credential | None = None, mode: Mode = "AES-GCM", *,
                   identity: object = None, trusted_signers: list | None = None,
                   storage_options: Mapping[str, Any] | None = None) -> EncryptedFile:
    """Open a modelcrypt file for random access: the header is read and authenticated now, once.

    Raises KeyMismatchError for a wrong key, AuthenticationError for a modified header, FormatError
    for a file that is not format v1. Reads through the handle then use the same descriptor and
    keys; see :class:`EncryptedFile`. Use it as a context manager, or call ``close()``.
    ``trusted_signers`` (as for load): the signature is verified now, once, and every range read
    checks its chunks against the signed hashes.
    """
    if _sources.is_file_object(path) or _sources.is_url(path):
        return _open_source(path, _credential(key, identity, trusted_signers), mode, storage_options)
    if storage_options is not None:
        raise ValueError("storage_options apply to URLs (s3://..., https://...), not to a local path")
    raw = _fspath(path, "path")
    if callable(mode):
        raise TypeError("open_encrypted needs a modelcrypt mode; a custom dec_mode callable cannot read part of a file")
    handle = _core.open_encrypted(raw, _credential(key, identity, trusted_signers), _check_mode_name(mode))
    return EncryptedFile(handle, os.fsdecode(raw))


def _open_source(source: Any, credential: object, mode: Mode,
                 storage_options: Mapping[str, Any] | None) -> EncryptedFile:
    """open_encrypted of a file object (read from its current position) or a URL (through fsspec)."""
    _check_source_mode(mode)
    if not _sources.is_url(source):
        if storage_options is not None:
            raise ValueError("storage_options apply to URLs, not to a file object")
        reader = _sources.FileObjectReader(source)
        name = getattr(source, "name", None)
        return EncryptedFile(_core.open_source(reader, reader.size, credential, "AES-GCM"),
                             name if isinstance(name, str) else f"<{type(source).__name__}>")
    url_reader = _sources.RangeReader(source, storage_options)
    try:
        return EncryptedFile(_core.open_source(url_reader, url_reader.size, credential, "AES-GCM"),
                             _sources.shown_url(source), url_reader)
    except BaseException:
        url_reader.close()
        raise
