"""save_checkpoint: one file, shards plus an index (``max_shard_size``), or a MindSpore checkpoint."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Optional, Union

from .._api import BytesLike, StrPath, _fspath
from .._state_tree import STRUCTURE_KEY, flatten, is_flat
from ._arguments import EncMode, _check_encryption, _check_format, _check_metadata, _parse_size
from ._layout import _collect
from ._one_file import _write_one
from ._other_formats import _write_mindspore
from ._shards import _earlier_shards, _remove_files, _save_shards


def save_checkpoint(
    params: Mapping[str, Any],
    path: StrPath,
    enc_key: Optional[BytesLike] = None,
    enc_mode: EncMode = "AES-GCM",
    *,
    max_shard_size: Union[int, str, None] = None,
    metadata: Optional[Mapping[str, str]] = None,
    format: str = "safetensors",
    signing_key: Any = None,
    recipients: Optional[list[Any]] = None,
    _binding: Optional[Mapping[str, str]] = None,
) -> str:
    """Save a mapping of names to arrays as a checkpoint (safetensors layout), encrypted with ``enc_key``.

    ``params`` maps str names (any unicode except ``"__metadata__"``) to numpy arrays or torch
    tensors (taken with ``.detach().cpu()``; torch is never imported for numpy-only input); an
    object with a ``state_dict()`` method (a ``torch.nn.Module``) is accepted too. Supported dtypes:
    float64/32/16, bfloat16 (stored as safetensors ``BF16``), int64/32/16/8, uint64/32/16/8 and
    bool; 0-d and empty arrays work. Tensors are stored widest dtype first (so each is aligned),
    in the given order otherwise.

    Without ``enc_key`` a plain ``.safetensors`` file is written. With a key and a string mode the
    file is a modelcrypt container whose plaintext is that ``.safetensors`` file, encrypted
    straight from the arrays' memory (no concatenated copy). ``enc_mode`` may instead be a
    callable ``(model_stream: bytes, key: bytes) -> bytes`` (MindSpore's custom cipher signature):
    it receives the whole plaintext and its result is written as is. modelcrypt does not check
    that a custom cipher is correct or secure.

    ``metadata`` (str -> str) goes into the safetensors ``__metadata__`` (so it is encrypted too).
    Every file appears atomically (temporary file beside it, fsync, rename): a failed save leaves
    an existing file at ``path`` untouched and no temporary file behind.

    ``max_shard_size`` (bytes, or a str like ``"500MB"``, ``"2GB"``, ``"1GiB"``): when the tensors
    add up to more, they are split into shards ``<stem>-00001-of-0000N<suffix>`` beside ``path``
    (``model.safetensors`` -> ``model-00001-of-00003.safetensors``), each a complete checkpoint
    encrypted like a single one, plus a plaintext index ``<path>.index.json``
    (``{"metadata": {"total_size": N}, "weight_map": {name: shard file name}}``), written last.
    A tensor larger than ``max_shard_size`` gets a shard of its own. Encrypted shards (string
    ``enc_mode``) are bound into one set: each authenticates the save's random id (also in the
    index's ``metadata`` as ``"modelcrypt.set"``), its file name, its place and the digest of the
    weight map, so loaders refuse a shard from another save, a missing, duplicated or renamed
    shard and an edited index (docs/FORMAT.md, "Sets of files").

    ``format="mindspore"``: write a MindSpore checkpoint instead (the protobuf of
    ``modelcrypt.mindspore.build_checkpoint``, parameters in the given order; ``str`` values
    allowed), encrypted in MindSpore's own frame format with a string ``enc_mode`` ("AES-GCM";
    "AES-CBC" and "SM4-CBC" are unauthenticated and warn) so that MindSpore loads it with
    ``mindspore.load_checkpoint(path, dec_key=enc_key, dec_mode=enc_mode)``; plain without a key.
    ``max_shard_size`` and ``metadata`` are not available in this format.

    ``signing_key`` (a SigningKey) signs every encrypted file as its publisher (format v3), so that
    loaders given ``trusted_signers`` know no key holder changed it (the plaintext index JSON is not
    signed, but every shard authenticates the digest of the weight map).

    ``recipients`` (X25519 recipients: ``"modelcrypt1..."`` / ``"age1..."`` text or Identity objects,
    as for encrypt_file) encrypts every file to them (format v2), with ``enc_key`` as one more
    recipient when given or without any symmetric key: each device loads the checkpoint with its
    own identity (``load_checkpoint(path, identity)``). A string ``enc_mode`` only.

    Returns the path written: ``path``, or the index path when the checkpoint was sharded.
    """
    target = os.fsdecode(_fspath(path, "path"))
    enc = _check_encryption(enc_key, enc_mode, recipients, signing_key)
    if _check_format(format) == "mindspore":
        if enc.recipients:
            raise ValueError('format="mindspore" files cannot have recipients (recipients needs format="safetensors")')
        if enc.signing_key is not None:
            raise ValueError('format="mindspore" files cannot be signed (signing_key needs format="safetensors")')
        if max_shard_size is not None or metadata is not None:
            raise ValueError('format="mindspore" supports neither max_shard_size nor metadata')
        _write_mindspore(target, params, enc.key, enc.mode)
        return target
    metadata = _check_metadata(metadata)
    if metadata and STRUCTURE_KEY in metadata:
        raise ValueError(f"metadata key {STRUCTURE_KEY!r} is reserved (it holds a training state's structure)")
    limit = None if max_shard_size is None else _parse_size(max_shard_size)
    if isinstance(params, Mapping) and not is_flat(params):  # a training state: tensors + a typed structure
        params, structure = flatten(params)
        metadata = {**(metadata or {}), STRUCTURE_KEY: structure}
    tensors = _collect(params)
    total = sum(t.nbytes for t in tensors)
    index_path = target + ".index.json"
    stale = _earlier_shards(index_path, target)  # an earlier sharded save to this path
    if limit is None or total <= limit:
        _write_one(target, tensors, metadata, enc, _binding)
        if stale is not None:  # the earlier save's index and shards would otherwise shadow this one
            _remove_files([index_path, *stale], directory=os.path.dirname(target))
        return target
    if _binding is not None:
        raise ValueError("a ModelCheckpoint file cannot be sharded")
    return _save_shards(target, tensors, total, limit, metadata, enc, stale)
