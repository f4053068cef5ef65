"""Encrypted PyTorch files: ``torch.save`` payloads and safetensors-layout checkpoints.

    import modelcrypt.torch as mctorch

    mctorch.save(model.state_dict(), "model.pt.mcx", key)
    state = mctorch.load("model.pt.mcx", key)                  # torch.load from memory
    state = mctorch.load("s3://bucket/model.pt.mcx", key, storage_options={...})   # fsspec URLs
    model.load_state_dict(mctorch.load_state_dict("ckpt.mcx", key))   # modelcrypt.save_checkpoint files

Needs the ``torch`` extra: ``pip install "modelcrypt[torch]"``.
"""

from __future__ import annotations

import io
import json
import os
import struct
from collections.abc import Mapping
from typing import Any, Iterable

try:
    import torch as _torch  # the real PyTorch (absolute import), not this module
except ImportError as exc:  # pragma: no cover - exercised in environments without torch
    raise ImportError('modelcrypt.torch needs PyTorch: pip install "modelcrypt[torch]" (or pip install torch)') from exc

from .._api import _check_key, _check_source_mode, _fspath, _reader_key
from .._custom import _call_cipher, wipe_if_sole_owner
from .._frameworks import DecMode, EncMode, MemoryReader, decrypt_to_memory, encrypt_stream_to_file
from .._random_access import open_encrypted
from .._sets import shown_place
from .._sources import is_file_object, is_url
from .._state_tree import STRUCTURE_KEY, unflatten
from ..checkpoint import load_flat
from ..checkpoint._arguments import _check_names
from ..checkpoint._dtypes import torch_dtype_of_raw_bits
from ..checkpoint._load import load_flat_file
from ..checkpoint._remote_shards import is_index_url
from ..exceptions import FormatError
from ..keys import wipe
from ._load_into_model import load_into_model

__all__ = ["save", "load", "load_state_dict", "load_into_model"]

def save(obj: Any, path: Any, key: Any = None, mode: EncMode = "AES-GCM", **encrypt_kwargs: Any) -> None:
    """``torch.save(obj)`` into memory, then encrypt it to ``path`` (atomic: the old file stays until
    the new one is complete). No plaintext is written to disk.

    ``mode`` is a modelcrypt mode name or a MindSpore-style encryption callable
    ``(model_stream: bytes, key: bytes) -> bytes`` (modelcrypt does not check a custom cipher's
    correctness). ``encrypt_kwargs`` go to modelcrypt.encrypt_bytes (``chunk_size``, ``metadata``,
    ``threads``, ``signing_key``, ``recipients``: then ``key`` may be None). The serialized
    plaintext is held in memory once (plus whatever the in-memory stream left behind while
    growing) and wiped after encryption.
    """
    stream = io.BytesIO()
    _torch.save(obj, stream)
    encrypt_stream_to_file(stream, path, key, mode, **encrypt_kwargs)


def load(path: Any, key: Any = None, mode: DecMode = "AES-GCM", *, format: str = "modelcrypt",
         trusted_signers: Any = None, identity: Any = None, storage_options: Mapping[str, Any] | None = None,
         **torch_load_kwargs: Any) -> Any:
    """Decrypt a file written by :func:`save` (or an encrypted ``torch.save`` file) in memory and
    ``torch.load`` it. ``torch_load_kwargs`` go to ``torch.load`` (``map_location``,
    ``weights_only``, ...); ``weights_only`` keeps torch's own default (True since torch 2.6), so
    arbitrary pickled objects are refused unless you pass ``weights_only=False`` for a file you trust.
    ``mmap=True`` is refused: there is no plaintext file to map.

    The returned tensors own their memory; the decrypted buffer is wiped before this returns.
    ``mode``: a modelcrypt mode name or a MindSpore-style callable ``(cipher_file: str, key: bytes)
    -> bytes`` (modelcrypt does not check a custom cipher's correctness). ``format`` as for
    modelcrypt.load (format v1 only unless a legacy format is named); ``trusted_signers`` as for
    modelcrypt.load (a publisher signature is required and checked before torch sees a byte).
    ``identity=`` (an Identity) in place of ``key`` opens a file encrypted to its recipient (format v2).
    ``path`` may be a URL (``s3://``, ``http(s)://``, ... through fsspec; ``storage_options`` as
    fsspec takes them) or a seekable binary file object, as for modelcrypt.load.
    """
    key = _reader_key(key, trusted_signers, mode, identity)
    if torch_load_kwargs.get("mmap"):
        raise ValueError("mmap=True is not supported for encrypted files (nothing is written to disk to map)")
    with decrypt_to_memory(path, key, mode, format=format, storage_options=storage_options) as buf, \
            MemoryReader(buf) as reader:
        # (a binary file object, io.RawIOBase, which typeshed does not count as an IO[bytes])
        return _torch.load(reader, **torch_load_kwargs)  # type: ignore[arg-type]


def load_state_dict(
    path: Any, key: Any = None, mode: DecMode = "AES-GCM", *, names: Iterable[str] | None = None,
    trusted_signers: Any = None, identity: Any = None, storage_options: Mapping[str, Any] | None = None,
) -> dict[str, "_torch.Tensor"]:
    """Load a checkpoint in safetensors layout (written by modelcrypt.save_checkpoint) as a dict of
    ``torch.Tensor``, ready for ``module.load_state_dict``. A training state saved by save_checkpoint
    (``{"model": model.state_dict(), "optimizer": opt.state_dict(), "step": n}``) comes back with
    its structure and types, torch tensors inside (``opt.load_state_dict(state["optimizer"])``).

    The tensors share memory with the decrypted checkpoint (``torch.from_numpy`` over the arrays of
    modelcrypt.load_checkpoint, no copy); it stays alive while any tensor does. bfloat16 tensors,
    which NumPy holds as raw uint16 bits, come back with their real torch dtype, as
    recorded in the checkpoint's header. ``names`` loads only those tensors (random access).
    ``mode``: a modelcrypt mode name or a MindSpore-style callable ``(cipher_file: str, key: bytes)
    -> bytes`` (modelcrypt does not check a custom cipher's correctness). ``trusted_signers`` as for
    modelcrypt.load: with ``names``, only the chunks read are checked against the signed hashes.
    ``path`` may be a URL (``s3://``, ``http(s)://``, ... through fsspec; ``storage_options`` as
    fsspec takes them) or a seekable binary file object holding an encrypted checkpoint: with
    ``names`` only the header's and those tensors' chunks are downloaded.
    """
    key = _reader_key(key, trusted_signers, mode, identity)
    if is_url(path) or is_file_object(path):
        arrays, header_metadata, dtypes = _from_source(path, key, mode, names, storage_options)
    elif storage_options is not None:
        raise ValueError("storage_options apply to URLs (s3://..., https://...), not to a local path")
    elif callable(mode):
        path_text, key = os.fsdecode(_fspath(path, "path")), _check_key(key)  # checked before the cipher sees them
        key_bytes = bytes(key)  # a copy unless key is bytes already: wiped below if nothing else holds it
        try:
            plaintext = _call_cipher(mode, "dec_mode", path_text, key_bytes, (key_bytes,))  # called only once
        finally:
            wipe_if_sole_owner(key_bytes)
            del key_bytes
        try:
            arrays, header_metadata = load_flat(os.fsdecode(_fspath(path, "path")), key,
                                                lambda _path, _key: plaintext, names=names)
            dtypes = _header_dtypes(memoryview(plaintext))
        finally:
            if isinstance(plaintext, (bytes, bytearray)) and len(plaintext) >= 2:
                wipe(plaintext)  # load_checkpoint has copied it into modelcrypt-owned memory
    else:
        # validated strictly
        arrays, header_metadata = load_flat(os.fsdecode(_fspath(path, "path")), key, mode, names=names)
        dtypes = _header_dtypes_from_file(path, key, mode)
    tensors = {}
    for name, array in arrays.items():
        tensor = _torch.from_numpy(array)
        real = torch_dtype_of_raw_bits(dtypes.get(name, ""))
        if real is not None and tensor.dtype != real:
            tensor = tensor.view(real)
        tensors[name] = tensor
    if names is None and STRUCTURE_KEY in header_metadata:  # a training state: its structure, torch tensors inside
        return unflatten(header_metadata[STRUCTURE_KEY], tensors, f"checkpoint {shown_place(path)}")
    return tensors


def _from_source(path: Any, key: Any, mode: Any, names: Iterable[str] | None,
                 storage_options: Mapping[str, Any] | None) -> tuple[dict, dict[str, str], dict[str, str]]:
    """(arrays, header metadata, safetensors dtypes) of an encrypted checkpoint at a URL or in a file
    object, through one handle (its header authenticated once)."""
    if key is None:
        raise ValueError("a checkpoint from a URL or file object must be encrypted: pass key (or identity=)")
    _check_source_mode(mode)
    if is_index_url(path):
        raise FormatError(f"{shown_place(path)} is the index of a sharded checkpoint: load it with "
                          "modelcrypt.load_checkpoint(url, key, storage_options=...)")
    with open_encrypted(path, key, storage_options=storage_options) as f:
        dtypes = _header_dtypes_of(f)
        arrays, header_metadata = load_flat_file(f, _check_names(names))
    return arrays, header_metadata, dtypes


def _dtypes(header_json: bytes) -> dict[str, str]:
    header = json.loads(header_json)
    return {name: info["dtype"] for name, info in header.items() if name != "__metadata__"}


def _dtypes_wiped(header: memoryview) -> dict[str, str]:
    """_dtypes of the decrypted header JSON in `header`; json.loads needs a copy, wiped afterwards."""
    header_json = bytes(header)
    try:
        return _dtypes(header_json)
    finally:
        wipe_if_sole_owner(header_json)


def _header_dtypes(plaintext: memoryview) -> dict[str, str]:
    """name -> safetensors dtype string, from a whole safetensors file ("u64 length, JSON header, data")."""
    (length,) = struct.unpack("<Q", plaintext[:8])
    return _dtypes_wiped(plaintext[8:8 + length])


def _header_dtypes_from_file(path: Any, key: Any, mode: str) -> dict[str, str]:
    """The same, from an encrypted file, decrypting only the chunks the header covers (or from a
    plaintext .safetensors file when ``key`` is None, as load_checkpoint allows)."""
    if key is None:
        with open(path, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            return _dtypes(f.read(length))
    with open_encrypted(path, key, mode) as f:
        return _header_dtypes_of(f)


def _header_dtypes_of(f: Any) -> dict[str, str]:
    """name -> safetensors dtype string of an opened encrypted checkpoint (EncryptedFile), decrypting
    only the chunks its header covers."""
    with f.read_range(0, 8) as prefix:
        (length,) = struct.unpack("<Q", memoryview(prefix))
    with f.read_range(8, length) as header:
        return _dtypes_wiped(memoryview(header))
