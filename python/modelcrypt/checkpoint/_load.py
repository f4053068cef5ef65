"""Loading one checkpoint file: load_checkpoint and load_flat (with ``names=``: random access)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any, Optional

import numpy as np

from .. import _sets, _sources
from .._api import (
    Credential,
    StrPath,
    _check_bool,
    _check_read_format,
    _check_source_mode,
    _fspath,
    _reader_key,
    detect_format,
)
from .._random_access import open_encrypted
from .._state_tree import STRUCTURE_KEY, unflatten
from ..exceptions import FormatError
from ._arguments import DecMode, _check_dec, _check_names, _missing
from ._one_file import _Checkpoint
from ._other_formats import _load_other_format, _MindSporePlaintext
from ._remote_shards import is_index_url, load_index_url


def load_checkpoint(
    path: StrPath,
    dec_key: Optional[Credential] = None,
    dec_mode: DecMode = "AES-GCM",
    *,
    names: Optional[Iterable[str]] = None,
    format: str = "modelcrypt",
    with_metadata: bool = False,
    trusted_signers: Optional[Iterable[Any]] = None,
    identity: Any = None,
    storage_options: Optional[Mapping[str, Any]] = None,
) -> Any:
    """Load a checkpoint written by save_checkpoint (or any ``.safetensors`` file) as numpy arrays.

    A training state saved by save_checkpoint (nested dicts, lists, tuples, Python scalars and
    strings alongside tensors, e.g. ``{"model": ..., "optimizer": opt.state_dict(), "step": 3}``)
    comes back with the same structure and types, its tensors as numpy arrays; a flat mapping comes
    back as ``{name: ndarray}``. ``names`` selects tensors by their dotted names
    (``"optimizer.state.0.exp_avg"``) and returns ``{name: ndarray}``.

    ``with_metadata=True`` returns ``(state, metadata)``: the ``metadata`` given to save_checkpoint
    (authenticated and, in an encrypted file, encrypted), without modelcrypt's own ``modelcrypt.``
    keys.

    An encrypted checkpoint (``modelcrypt.is_encrypted``) needs ``dec_key``; it is decrypted into
    one modelcrypt-owned buffer and every array is a zero-copy, writable view into it (the buffer
    lives as long as any array does, and is wiped when freed). A plaintext ``.safetensors`` file
    is loaded without a key (copy-on-write memory map: writable arrays, the file never changes);
    with a key given, a plaintext file is refused with FormatError rather than loaded
    unauthenticated.

    ``names``: load only these tensors. For an encrypted file this is random access: only the
    chunks holding the header and those tensors are read and decrypted, so one 4 MiB tensor of a
    1 GiB checkpoint costs about 4 MiB of decryption. Unknown names raise KeyError.

    ``dec_mode`` may be a callable ``(cipher_file: str, key: bytes) -> bytes`` (MindSpore's
    custom-cipher signature) returning the whole plaintext, which is copied into modelcrypt-owned
    memory and parsed there (``names`` then selects after a full decryption). modelcrypt does not
    check a custom cipher's correctness.

    The header is validated strictly before anything is allocated (size <= 100 MB, UTF-8 JSON,
    known dtypes, shapes matching byte lengths, offsets contiguous and inside the data); violations
    raise FormatError. BF16 tensors come back as uint16 arrays holding the raw bfloat16 bits
    (``torch.from_numpy(a).view(torch.bfloat16)`` or ``a.view(ml_dtypes.bfloat16)`` restores them).
    Arrays are returned in file order (or in the order of ``names``).

    MindSpore checkpoints (``.ckpt`` protobuf) load too, into ``{name: ndarray}`` with exact
    values (see ``modelcrypt.mindspore.parse_checkpoint``): a plain one without ``dec_key``; one
    encrypted by MindSpore (``save_checkpoint(..., enc_key=, enc_mode=)``) with ``dec_key``,
    ``format="mindspore"`` (legacy formats are read only when asked for, see modelcrypt.load) and
    the ``dec_mode`` it was written with ("AES-GCM", "AES-CBC" or "SM4-CBC"; all three warn: GCM
    frames can be dropped or reordered, CBC is unauthenticated); one migrated into a modelcrypt
    file with its key. Their arrays are
    copies (protobuf parses into its own memory; the decrypted buffer is wiped right after), and
    ``names`` selects after decrypting the whole file.

    ``identity=`` (an Identity) in place of ``dec_key`` opens a checkpoint saved to its recipient
    (``save_checkpoint(..., recipients=[...])``); an Identity passed as ``dec_key`` works too.

    ``path`` may also be a URL (``s3://...``, through fsspec; ``storage_options`` as fsspec takes
    them) or a seekable binary file object holding an encrypted checkpoint: with ``names`` only the
    header's and those tensors' chunks are read (downloaded). A URL ending in ``.index.json`` is a
    sharded checkpoint's index (save_checkpoint with max_shard_size): every shard's header is read
    and the shards checked as a set as load_distributed_checkpoint does, then only the shards
    holding ``names`` are read, by range.

    ``trusted_signers`` (signer public keys): every file read must carry a publisher signature by
    one of them (format v3), else SignatureError; with ``names`` only the chunks read are checked.
    """
    _check_bool(with_metadata, "with_metadata")
    if _sources.is_url(path) or _sources.is_file_object(path):
        state, header_metadata = _load_from_source(path, dec_key, dec_mode, names, format, trusted_signers, identity,
                                                   storage_options)
        return (state, user_metadata(header_metadata)) if with_metadata else state
    if storage_options is not None:
        raise ValueError("storage_options apply to URLs (s3://..., https://...), not to a local path")
    target = os.fsdecode(_fspath(path, "path"))
    if trusted_signers is not None and dec_key is None and identity is None:
        raise ValueError("trusted_signers needs dec_key or identity=: a plaintext checkpoint carries no signature")
    dec_key = _reader_key(dec_key, trusted_signers, dec_mode, identity)
    arrays, header_metadata = load_flat(target, dec_key, dec_mode, names=names, format=format)
    state = arrays
    if names is None and STRUCTURE_KEY in header_metadata:
        state = unflatten(header_metadata[STRUCTURE_KEY], arrays, f"checkpoint {target}")
    if with_metadata:
        return state, user_metadata(header_metadata)
    return state


def _load_from_source(source: Any, dec_key: Any, dec_mode: Any, names: Any, format: str, trusted_signers: Any,
                      identity: Any, storage_options: Optional[Mapping[str, Any]]) -> tuple[Any, dict[str, str]]:
    """load_checkpoint of a URL or file object: an encrypted (modelcrypt) checkpoint file, read by range."""
    if dec_key is None and identity is None:
        raise ValueError("a checkpoint from a URL or file object must be encrypted: pass dec_key (or identity=)")
    _check_source_mode(dec_mode, format)
    credential = _reader_key(dec_key, trusted_signers, dec_mode, identity)
    wanted = _check_names(names)
    if is_index_url(source):  # a sharded checkpoint: its index, then the shards by range
        return load_index_url(source, credential, wanted, storage_options)
    with open_encrypted(source, credential, storage_options=storage_options) as f:
        arrays, header_metadata = load_flat_file(f, wanted)
        if wanted is None and STRUCTURE_KEY in header_metadata:
            return unflatten(header_metadata[STRUCTURE_KEY], arrays, f"checkpoint {f.path}"), header_metadata
        return arrays, header_metadata


def load_flat_file(f: Any, wanted: Optional[list[str]]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """({dotted name: ndarray}, the safetensors __metadata__) of an opened encrypted checkpoint file
    (an EncryptedFile: a local file, a URL or a file object); ``wanted`` (checked names) by range."""
    where = f.path
    with _Checkpoint.of_file(f) as ckpt:
        _sets.check_step(where, ckpt.metadata)
        if wanted is None:
            return ckpt.load_all(), ckpt.header_metadata
        entries, start = ckpt.header()
        unknown = [n for n in wanted if n not in entries]
        if unknown:
            raise _missing(unknown, f"checkpoint {where}")
        return ckpt.load_names(wanted, entries, start), ckpt.header_metadata


def user_metadata(header_metadata: Mapping[str, str]) -> dict[str, str]:
    """The metadata given to save_checkpoint: the safetensors __metadata__ without modelcrypt's keys."""
    return {k: v for k, v in header_metadata.items() if not k.startswith("modelcrypt.")}


def load_flat(target: str, dec_key: Any, dec_mode: Any, *, names: Optional[Iterable[str]] = None,
              format: str = "modelcrypt") -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """({dotted name: ndarray}, the safetensors __metadata__) of one checkpoint file."""
    dec_key, dec_mode = _check_dec(dec_key, dec_mode)
    wanted = _check_names(names)
    _check_read_format(format)
    _refuse_index(target)
    arrays = None if callable(dec_mode) else _load_other_format(target, dec_key, dec_mode, detect_format(target),
                                                                format)
    if arrays is None:
        with _Checkpoint(target, dec_key, dec_mode) as ckpt:
            _sets.check_step(target, ckpt.metadata)  # a ModelCheckpoint file: named after its step
            if wanted is None:
                return ckpt.load_all(), ckpt.header_metadata
            try:
                entries, start = ckpt.header()
            except _MindSporePlaintext:  # no header to read by range: decrypt it all, then select
                arrays = ckpt.load_all()
            else:
                unknown = [n for n in wanted if n not in entries]
                if unknown:
                    raise _missing(unknown, f"checkpoint {target}")
                return ckpt.load_names(wanted, entries, start), ckpt.header_metadata
    if wanted is None:
        return arrays, {}
    unknown = [n for n in wanted if n not in arrays]
    if unknown:
        raise _missing(unknown, f"checkpoint {target}")
    return {n: arrays[n] for n in wanted}, {}


def _refuse_index(target: str) -> None:
    """load_checkpoint of a sharded checkpoint's index: say which function reads it."""
    if target.endswith(".json"):
        try:
            with open(target, "rb") as f:
                head = f.read(1 << 16)
        except OSError:
            return  # reported when the file is opened
        if head.lstrip()[:1] == b"{" and b'"weight_map"' in head:
            raise FormatError(f"{target} is the index of a sharded checkpoint, not a checkpoint file: load it with "
                              f"modelcrypt.load_distributed_checkpoint({target!r}, key, names=...)")
