"""Encrypting a local file straight into object storage (``encrypt_file(src, "s3://...", key)``).

The core seals the plaintext in 16 MiB batches and hands each batch's ciphertext to a writer as soon
as it is sealed; here that writer is an fsspec file opened with ``autocommit=False``: for s3fs a
multipart upload whose parts go out as the buffer fills, completed only after the last byte (and the
signature trailer) is written. Until then readers see nothing new under the name: on any failure
(an exception in the source, the network, the server, a progress callback, Ctrl-C) the upload is
discarded (multipart aborted) and an existing object under that name stays as it was. Filesystems
not known to defer the commit (memory://, ...) get a hidden temporary name beside the destination
and one ``mv``, removed on failure. Memory: the core's three batches plus the filesystem's write
buffer (one part).
"""

from __future__ import annotations

import os
import secrets
from typing import Any, Mapping

from . import _sources

#: Write buffer (multipart part size) for s3fs and other buffered fsspec files: S3 takes at most
#: 10,000 parts of at least 5 MiB, so the part size grows with the file beyond 160 GB.
PART_SIZE = 16 << 20
MAX_PARTS = 9000


def _part_size(size: int) -> int:
    return max(PART_SIZE, -(-size // MAX_PARTS))


class _Deferred:
    """An fsspec file opened with autocommit=False: commit() publishes it, discard() drops it."""

    def __init__(self, fs: Any, path: str, size: int):
        self._f = fs.open(path, "wb", autocommit=False, block_size=_part_size(size))

    def write(self, data: memoryview) -> None:  # lent by the core until this returns: copied by the file
        self._f.write(data)

    def commit(self) -> None:
        self._f.close()  # flushes the last part; with autocommit=False, publishes nothing
        self._f.commit()

    def discard(self) -> None:
        try:
            self._f.discard()
        finally:
            try:
                self._f.closed = True  # so neither close() nor __del__ flushes or publishes anything
            except AttributeError:  # a file whose close() publishes nothing without commit() (file://)
                pass


class _TemporaryName:
    """For other filesystems (memory://, ...): a hidden temporary name beside the destination, moved
    over it when complete and removed on failure."""

    def __init__(self, fs: Any, path: str):
        head, _, tail = path.rpartition("/")
        hidden = f".{tail}.{secrets.token_hex(8)}.part"
        self._fs, self._path, self._tmp = fs, path, f"{head}/{hidden}" if head else hidden
        self._f = fs.open(self._tmp, "wb")

    def write(self, data: memoryview) -> None:  # lent by the core until this returns: copied by the file
        self._f.write(data)

    def commit(self) -> None:
        self._f.close()
        self._fs.mv(self._tmp, self._path)

    def discard(self) -> None:
        try:
            self._f.close()
        finally:
            if self._fs.exists(self._tmp):
                self._fs.rm(self._tmp)


#: fsspec filesystems whose files honour autocommit=False (nothing is published before commit()):
#: s3fs (multipart upload), gcsfs (resumable upload), adlfs (staged blocks), the local filesystem.
DEFERRED_COMMIT = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "file", "local"}


def _open_output(fs: Any, path: str, size: int) -> Any:
    protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
    if protocols & DEFERRED_COMMIT:
        return _Deferred(fs, path, size)
    return _TemporaryName(fs, path)


def encrypt_file_to_url(src: Any, url: Any, key: Any, mode: Any, recipients: Any, signing_key: Any,
                        storage_options: Mapping[str, Any] | None, *, chunk_size: Any, metadata: Any, threads: Any,
                        progress: Any, format: str) -> None:
    """encrypt_file(src, url, ...): the arguments checked as for a local destination, then the core's
    streaming encryption of ``src`` written into the object at ``url``, published only when complete."""
    from . import _api, _core, _metadata

    if not _sources.is_url(url):
        raise ValueError("storage_options apply to URLs (s3://..., https://...), not to a local path")
    if _sources.is_url(src):
        raise ValueError("encrypt_file reads a local src; download it first or encrypt it where it is")
    if format != "modelcrypt" or callable(mode):
        raise ValueError("encrypting to a URL writes modelcrypt files (format='modelcrypt', mode 'AES-GCM')")
    src_path = _api._fspath(src, "src")
    key, keys = _api._writer_key(key, recipients)
    args = (key, _api._check_mode_name(mode), _api._check_chunk_size(chunk_size), _metadata.encode(metadata),
            _api._check_threads(threads), _api._check_progress(progress), keys, _api._check_signing_key(signing_key))
    size = os.stat(src_path).st_size  # a missing or unreadable source fails before anything is opened remotely
    fs, path = _sources.url_filesystem(url, storage_options)
    out = _open_output(fs, path, size)
    try:
        _core.encrypt_file_to_writer(src_path, out.write, *args)
        out.commit()
    except BaseException:
        out.discard()
        raise
