"""Weights of a Hugging Face directory: safetensors shards decrypted into memory and viewed as torch
tensors without a copy, and torch tensors written as encrypted safetensors shards."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, Optional

import torch

from .. import _core, _metadata
from .._custom import wipe_if_sole_owner
from ..checkpoint._dtypes import CHECKPOINT_DTYPES, RAW_BITS_DTYPES, torch_dtype_of_raw_bits
from ..checkpoint._layout import _array, _header_bytes, _header_size, _parse_header, _to_tensor

__all__: list[str] = []

def shard_tensors(buffer: Any, where: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """({name: tensor}, safetensors ``__metadata__``) of a decrypted safetensors file held in
    ``buffer``. The header is validated strictly (checkpoint._layout); every tensor is a view of
    ``buffer`` (torch.from_numpy over np.frombuffer), which stays alive as long as any of them."""
    view = memoryview(buffer).cast("B")
    total = view.nbytes
    n = _header_size(bytes(view[:8]), total, where)
    header_json = bytes(view[8:8 + n])  # parsed, then wiped: it is plaintext of an encrypted file
    try:
        entries, header_metadata = _parse_header(header_json, total - 8 - n, where)
        raw_names = _raw_dtype_names(header_json)
    finally:
        wipe_if_sole_owner(header_json)
        del header_json
    base = -(8 + n)  # _array takes offsets relative to the data section
    out: dict[str, torch.Tensor] = {}
    for name, entry in entries.items():
        tensor = torch.from_numpy(_array(buffer, entry, base))
        real = torch_dtype_of_raw_bits(raw_names.get(name, ""))
        if real is not None:
            tensor = tensor.view(real)
        out[name] = tensor
    return out, header_metadata


def _raw_dtype_names(header_json: bytes) -> dict[str, str]:
    """name -> safetensors dtype name, for the tensors whose dtype NumPy lacks (header already validated)."""
    header = json.loads(header_json)
    return {name: info["dtype"] for name, info in header.items()
            if name != "__metadata__" and info["dtype"] in RAW_BITS_DTYPES}


def write_encrypted_shard(path: str, tensors: Mapping[str, torch.Tensor], key: Any,
                          binding: Mapping[str, str], signing_key: Any = None,
                          header_metadata: Optional[Mapping[str, str]] = None) -> int:
    """Encrypt ``tensors`` in the safetensors layout to ``path`` straight from their memory (the
    plaintext file is never assembled on disk nor, for contiguous CPU tensors, in memory). Returns
    the plaintext length."""
    items = [_to_tensor(name, t) for name, t in tensors.items()]
    items.sort(key=lambda t: -CHECKPOINT_DTYPES[t.dtype].itemsize)  # aligned offsets, as save_checkpoint writes
    header = _header_bytes(items, header_metadata)
    parts = [header, *(t.data for t in items)]
    _core.encrypt_parts_to_file(parts, os.fsencode(path), key, "AES-GCM", _core.DEFAULT_CHUNK_SIZE,
                                _metadata.encode(dict(binding)), 0, signing_key=signing_key)
    return len(header) + sum(t.nbytes for t in items)


def write_encrypted_bytes(path: str, data: bytes, key: Any, binding: Mapping[str, str],
                          signing_key: Any = None) -> int:
    """Encrypt ``data`` (a small file: config, index, tokenizer) to ``path``; returns its length."""
    _core.encrypt_parts_to_file([data], os.fsencode(path), key, "AES-GCM", _core.DEFAULT_CHUNK_SIZE,
                                _metadata.encode(dict(binding)), 0, signing_key=signing_key)
    return len(data)
