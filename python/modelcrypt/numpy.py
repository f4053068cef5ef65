"""Encrypted NumPy ``.npy`` / ``.npz`` files, loaded straight from memory.

    import modelcrypt.numpy as mcnp

    mcnp.save("x.npy.mcx", arr, key)
    arr = mcnp.load("x.npy.mcx", key)                 # an ndarray (a copy; the plaintext is wiped)
    mcnp.savez("arrays.npz.mcx", key, a=arr, b=arr2)
    arrays = mcnp.load("arrays.npz.mcx", key)          # a dict of ndarrays
    arr = mcnp.load("s3://bucket/x.npy.mcx", key, storage_options={...})   # fsspec URLs, file objects

NumPy is imported here with an absolute ``import numpy``, which is the real NumPy package, not this
module: Python 3 has no implicit relative imports.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._api import _reader_key
from ._frameworks import DecMode, EncMode, MemoryReader, decrypt_to_memory, encrypt_stream_to_file

__all__ = ["load", "save", "savez", "savez_compressed"]

def load(path: Any, key: Any = None, mode: DecMode = "AES-GCM", *, format: str = "modelcrypt",
         trusted_signers: Any = None, identity: Any = None, storage_options: Mapping[str, Any] | None = None,
         **np_load_kwargs: Any) -> Any:
    """Load an encrypted ``.npy`` or ``.npz`` file: ``np.load`` over the decrypted plaintext in memory.

    Returns what ``np.load`` returns for the plaintext: an ndarray for ``.npy``, and for ``.npz`` a
    plain ``dict`` of ndarrays (read eagerly, so the plaintext can be wiped before returning). The
    arrays are copies; the decrypted plaintext is wiped before this returns. ``allow_pickle`` stays
    ``False`` unless you pass ``allow_pickle=True`` (only for files you trust). ``mmap_mode`` is not
    supported (there is no plaintext file to map).

    ``mode`` is a modelcrypt mode name or a MindSpore-style callable
    ``(cipher_file: str, key: bytes) -> bytes``; modelcrypt does not check a custom cipher's
    correctness. ``format`` as for modelcrypt.load (format v1 only unless a legacy format is named);
    ``trusted_signers`` as for modelcrypt.load. ``identity=`` (an Identity) in place of ``key`` opens
    a file encrypted to its recipient (format v2). ``path`` may be a URL (``s3://``, ``http(s)://``,
    ... through fsspec; ``storage_options`` as fsspec takes them) or a seekable binary file object,
    as for modelcrypt.load.
    """
    key = _reader_key(key, trusted_signers, mode, identity)
    if np_load_kwargs.get("mmap_mode") is not None:
        raise ValueError("mmap_mode is not supported for encrypted files (nothing is written to disk to map)")
    np_load_kwargs.pop("mmap_mode", None)
    with decrypt_to_memory(path, key, mode, format=format, storage_options=storage_options) as buf, \
            MemoryReader(buf) as reader:
        result = np.load(reader, **np_load_kwargs)
        if isinstance(result, np.lib.npyio.NpzFile):
            with result:
                return {name: result[name] for name in result.files}
        return result  # np.load copies out of a non-file stream: nothing refers to the plaintext


def save(path: Any, arr: Any, key: Any = None, mode: EncMode = "AES-GCM", *, allow_pickle: bool = False,
         **encrypt_kwargs: Any) -> None:
    """``np.save`` into memory, then encrypt to ``path`` (atomic). No plaintext is written to disk.

    Unlike ``np.save``, no ``.npy`` suffix is appended to ``path``. ``encrypt_kwargs`` go to
    modelcrypt.encrypt_bytes (``chunk_size``, ``metadata``, ``threads``, ``signing_key``,
    ``recipients``: the file opens with any recipient's identity, ``load(path, identity=...)``).
    """
    stream = io.BytesIO()
    np.save(stream, arr, allow_pickle=allow_pickle)
    encrypt_stream_to_file(stream, path, key, mode, **encrypt_kwargs)


def savez(path: Any, key: Any = None, mode: EncMode = "AES-GCM", *, metadata: Any = None, signing_key: Any = None,
          recipients: Any = None, **arrays: Any) -> None:
    """``np.savez(**arrays)`` into memory, then encrypt to ``path`` (atomic); load with :func:`load`.
    ``signing_key`` signs the file (format v3) and ``recipients`` encrypts it to X25519 recipients
    (format v2; with ``key`` too if given), as for modelcrypt.encrypt_file."""
    stream = io.BytesIO()
    np.savez(stream, **arrays)
    encrypt_stream_to_file(stream, path, key, mode, **_writer_options(metadata, signing_key, recipients))


def savez_compressed(path: Any, key: Any = None, mode: EncMode = "AES-GCM", *, metadata: Any = None,
                     signing_key: Any = None, recipients: Any = None, **arrays: Any) -> None:
    """Like :func:`savez` with ``np.savez_compressed``."""
    stream = io.BytesIO()
    np.savez_compressed(stream, **arrays)
    encrypt_stream_to_file(stream, path, key, mode, **_writer_options(metadata, signing_key, recipients))


def _writer_options(metadata: Any, signing_key: Any, recipients: Any) -> dict[str, Any]:
    """The encrypt_bytes options savez passes on (none by default, so custom ciphers keep working)."""
    options = {"metadata": metadata, "signing_key": signing_key, "recipients": recipients}
    return {name: value for name, value in options.items() if value is not None}

