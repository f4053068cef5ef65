"""Whole-object reads of a modelcrypt file at a URL (s3://, gs://, https://, ... through fsspec):
what verify, verify_signature and decrypt_file do for a local path, through a RangeReader (the
object's size and version pinned when it is opened). Bounded memory: the reader's prefetch window
plus one block; nothing is written to disk but decrypt_file's destination, installed atomically once
every chunk is authenticated. The command line's URL commands use these (cli/_urls.py).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping

from . import _core, _sources
from ._atomic import install_streamed, write_all
from ._checks import Credential, _check_bool, _check_progress, _check_threads
from ._random_access import open_encrypted

#: Plaintext bytes authenticated per step by verify_url (and written per step by the command
#: line's decrypt of a URL): a RangeReader block, so each step waits for one fetch at most.
STEP_BYTES = 16 << 20


def each_block(f: Any, threads: int | None = None, progress: Callable[[int], None] | None = None):
    """The plaintext of the opened URL handle ``f`` (an EncryptedFile) in order, STEP_BYTES at a
    time, each block authenticated before it is yielded (a DecryptedBuffer, closed after the
    consumer's turn). The whole object is announced first, so its blocks are fetched ahead, in
    parallel, within the reader's window."""
    total = f.plaintext_length
    f._expect_spans([(0, total)])
    for offset in range(0, total, STEP_BYTES):
        with f.read_range(offset, min(STEP_BYTES, total - offset), threads=threads) as block:
            yield block
        if progress is not None:
            progress(min(offset + STEP_BYTES, total))


def verify_url(url: str, key: Credential | None = None, *, threads: int | None = None,
               progress: Callable[[int], None] | None = None, identity: object = None,
               trusted_signers: list | None = None,
               storage_options: Mapping[str, Any] | None = None) -> None:
    """modelcrypt.verify of the object at ``url``: every chunk authenticated (and checked against
    the signed hashes with ``trusted_signers``), in bounded memory, nothing kept."""
    _check_threads(threads)  # (read_range takes threads as the caller gave them)
    progress = _check_progress(progress)
    with open_encrypted(url, key, identity=identity, trusted_signers=trusted_signers,
                        storage_options=storage_options) as f:
        for _ in each_block(f, threads, progress):
            pass


def verify_signature_url(url: str, trusted_signers: list, *, threads: int | None = None,
                         progress: Callable[[int], None] | None = None,
                         storage_options: Mapping[str, Any] | None = None) -> str:
    """modelcrypt.verify_signature of the object at ``url`` (keyless; the whole object is read once,
    its chunks hashed, nothing decrypted). Returns the signer's public key text."""
    from ._trust import signer_keys

    keys = signer_keys(trusted_signers)
    if keys is None:
        raise TypeError("verify_signature needs trusted_signers (a list of signer public keys)")
    threads, progress = _check_threads(threads), _check_progress(progress)
    with _sources.RangeReader(url, storage_options) as reader:
        reader.whole()
        return _core.format_signer(_core.verify_signature_source(reader, reader.size, keys, threads, progress))


def write_decrypted(f: Any, dst: str, *, threads: int | None = None, progress: Callable[[int], None] | None = None,
                    durable: bool = True, replace: bool = True) -> None:
    """The plaintext of the opened handle ``f`` (an EncryptedFile) into the local file ``dst``, block
    by block (each_block), through install_streamed: ``dst`` (mode 0600) appears, or replaces the
    old file, only once every chunk is authenticated; on any failure it is left as it was.
    ``replace=False``: an existing ``dst`` is a FileExistsError."""

    def write_blocks(fd: int) -> None:
        for block in each_block(f, threads, progress):
            write_all(fd, block)

    install_streamed(dst, write_blocks, durable=durable, replace=replace)


def decrypt_url(src: Any, dst: str, key: Credential | None = None, *, threads: int | None = None,
                progress: Callable[[int], None] | None = None, durable: bool = True, identity: object = None,
                trusted_signers: list | None = None, storage_options: Mapping[str, Any] | None = None) -> None:
    """modelcrypt.decrypt_file of the object at the URL ``src`` (or in the seekable binary file
    object ``src``) into the local file ``dst`` (write_decrypted; an existing ``dst`` is replaced,
    as for a local source). Every failure leaves ``dst`` as it was."""
    _check_threads(threads)  # (read_range takes threads as the caller gave them)
    progress, durable = _check_progress(progress), _check_bool(durable, "durable")
    if os.path.isdir(dst):
        raise IsADirectoryError(f"{dst} is a directory; give the path of the file to write")
    with open_encrypted(src, key, identity=identity, trusted_signers=trusted_signers,
                        storage_options=storage_options) as f:
        write_decrypted(f, dst, threads=threads, progress=progress, durable=durable)
