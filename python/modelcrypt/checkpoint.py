"""Encrypted checkpoints: mappings of names to arrays, saved in the safetensors layout.

The plaintext of an encrypted checkpoint is exactly a ``.safetensors`` file (8-byte little-endian
header size, a JSON header padded with spaces to a multiple of 8, then the tensor data), so
``modelcrypt.decrypt_file`` turns one into a file the ``safetensors`` package reads, and a
checkpoint saved without a key *is* a plain ``.safetensors`` file.

* ``save_checkpoint`` / ``load_checkpoint``: one file; ``load_checkpoint(names=...)`` reads and
  decrypts only the chunks that hold the requested tensors (random access).
* ``save_checkpoint(max_shard_size=...)`` / ``load_distributed_checkpoint``: shards plus a
  Hugging Face style ``*.index.json`` weight map (the index holds no secrets and stays plaintext).
* ``CheckpointConfig`` / ``ModelCheckpoint``: save every N training steps, keep the newest K files.
* ``enc_mode`` / ``dec_mode`` may be callables with MindSpore's custom-cipher signatures
  (``enc(model_stream: bytes, key: bytes) -> bytes`` and ``dec(cipher_file: str, key: bytes) ->
  bytes``). modelcrypt does not check a custom cipher's correctness or security: whatever it
  returns is written or parsed as is.

MindSpore ``.ckpt`` checkpoints (protobuf; see ``modelcrypt.mindspore``) are read too, plain or
encrypted by MindSpore (frames) or by modelcrypt, and ``save_checkpoint(..., format="mindspore")``
writes files that ``mindspore.load_checkpoint(path, dec_key=..., dec_mode=...)`` loads.

Nothing here ever writes plaintext of an encrypted checkpoint to disk.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
from collections.abc import Iterable, Mapping
from typing import Any, Callable, Optional, Union

import numpy as np

from . import _core, _metadata, _sets
from ._atomic import atomic_write
from ._custom import custom_decrypt, custom_encrypt
from ._sizes import parse_size
from ._state_tree import STRUCTURE_KEY, flatten, is_flat, unflatten
from ._api import (
    DEFAULT_CHUNK_SIZE,
    BytesLike,
    StrPath,
    _check_bool,
    _check_key,
    _check_mode,
    _check_read_format,
    _check_signing_key,
    _fspath,
    _reader_key,
    _shown,
    detect_format,
    encrypt_bytes,
    is_encrypted,
    load,
)
from ._random_access import EncryptedFile, open_encrypted
from .exceptions import FormatError

__all__ = [
    "save_checkpoint",
    "load_checkpoint",
    "load_distributed_checkpoint",
    "CheckpointConfig",
    "ModelCheckpoint",
]

EncMode = Union[str, Callable[[bytes, bytes], bytes]]
DecMode = Union[str, Callable[[str, bytes], bytes]]

#: safetensors' own limit on the JSON header (bytes).
MAX_HEADER_SIZE = 100_000_000

# safetensors dtype name -> little-endian numpy dtype. BF16 has no numpy dtype: raw uint16 bits.
_DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"),
    "U32": np.dtype("<u4"),
    "U16": np.dtype("<u2"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
# numpy kind+itemsize -> safetensors dtype name (for arrays we are given).
_NUMPY_TO_ST = {
    ("f", 8): "F64", ("f", 4): "F32", ("f", 2): "F16",
    ("i", 8): "I64", ("i", 4): "I32", ("i", 2): "I16", ("i", 1): "I8",
    ("u", 8): "U64", ("u", 4): "U32", ("u", 2): "U16", ("u", 1): "U8",
    ("b", 1): "BOOL",
}


# ------------------------------------------------------------------ converting the inputs


class _Tensor:
    """One tensor to write: its safetensors dtype, shape and C-contiguous little-endian bytes."""

    __slots__ = ("name", "dtype", "shape", "data")

    def __init__(self, name: str, dtype: str, shape: tuple[int, ...], data: np.ndarray):
        self.name, self.dtype, self.shape = name, dtype, shape
        self.data = data  # 1-d uint8 view of the bytes (no copy when the input already fits)

    @property
    def nbytes(self) -> int:
        return self.data.nbytes


def _from_torch(name: str, t: Any) -> tuple[np.ndarray, Optional[str]]:
    import torch  # only reached for objects that are torch tensors, so torch is installed

    if not isinstance(t, torch.Tensor):
        raise TypeError(f"checkpoint value {name!r} is a {type(t).__module__}.{type(t).__name__}, not a tensor")
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(np.uint16), "BF16"
    try:
        return t.numpy(), None
    except TypeError as exc:
        raise TypeError(f"checkpoint value {name!r}: torch dtype {t.dtype} is not supported ({exc})") from None


def _to_tensor(name: Any, value: Any) -> _Tensor:
    if not isinstance(name, str):
        raise TypeError(f"checkpoint names must be str, not {type(name).__name__}")
    if name == "__metadata__":
        raise ValueError("'__metadata__' is reserved by the safetensors format and cannot name a tensor")
    st_dtype = None
    if type(value).__module__.startswith("torch"):
        arr, st_dtype = _from_torch(name, value)
    elif isinstance(value, (np.ndarray, np.generic)):
        arr = np.asarray(value)
    else:
        raise TypeError(
            f"checkpoint value {name!r} must be a numpy array or a torch tensor, not {type(value).__name__}"
        )
    if st_dtype is None:
        if arr.dtype.name == "bfloat16":  # ml_dtypes / jax bfloat16: store its raw bits
            arr, st_dtype = arr.view(np.uint16), "BF16"
        else:
            st_dtype = _NUMPY_TO_ST.get((arr.dtype.kind, arr.dtype.itemsize))
            if st_dtype is None:
                supported = ", ".join(_DTYPES)
                raise TypeError(f"checkpoint value {name!r} has dtype {arr.dtype}, which has no safetensors "
                                f"equivalent supported here ({supported})")
    target = _DTYPES[st_dtype]
    arr = arr.astype(target, order="C", copy=False)  # copies only for byte order or non-contiguous input
    return _Tensor(name, st_dtype, tuple(int(d) for d in arr.shape), arr.reshape(-1).view(np.uint8))


def _collect(params: Any) -> list[_Tensor]:
    if not isinstance(params, Mapping):
        state_dict = getattr(params, "state_dict", None)
        if not callable(state_dict):
            raise TypeError(f"params must be a mapping of names to arrays, not {type(params).__name__}")
        params = state_dict()  # a torch.nn.Module (MindSpore passes the network itself)
    tensors = [_to_tensor(k, v) for k, v in params.items()]
    # Widest items first (stable), so every tensor starts at an offset aligned for its dtype.
    tensors.sort(key=lambda t: -_DTYPES[t.dtype].itemsize)
    return tensors


def _header_bytes(tensors: list[_Tensor], metadata: Optional[Mapping[str, str]]) -> bytes:
    header: dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    offset = 0
    for t in tensors:
        header[t.name] = {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": [offset, offset + t.nbytes]}
        offset += t.nbytes
    text = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    if len(text) > MAX_HEADER_SIZE:
        raise ValueError(f"the checkpoint header would be {len(text)} bytes; safetensors allows {MAX_HEADER_SIZE}")
    return struct.pack("<Q", len(text)) + text


def _check_metadata(metadata: Any) -> Optional[Mapping[str, str]]:
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a mapping of str to str or None, not {type(metadata).__name__}")
    for k, v in metadata.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError("metadata keys and values must be str")
    return metadata


def _parse_size(size: Any) -> int:
    return parse_size(size, "max_shard_size")  # the same spellings as the CLI's --chunk-size (_sizes.py)


# ------------------------------------------------------------------ writing




def _check_key_mode(key: Any, mode: Any, what: str) -> tuple[Any, Any]:
    mode = _check_mode(mode)  # a mode name, or a custom cipher callable
    if key is None:
        if callable(mode):
            raise ValueError(f"a custom {what}_mode callable needs {what}_key (it is passed to the callable)")
        return None, mode
    return _check_key(key), mode


def _check_enc(enc_key: Any, enc_mode: Any) -> tuple[Any, Any]:
    return _check_key_mode(enc_key, enc_mode, "enc")


def _check_signing(signing_key: Any, enc_key: Any, enc_mode: Any) -> Any:
    """A publisher signing key for an encrypted checkpoint (format v3), or None."""
    signing_key = _check_signing_key(signing_key)
    if signing_key is not None and (enc_key is None or callable(enc_mode)):
        raise ValueError("signing_key signs modelcrypt files: it needs enc_key and a modelcrypt enc_mode")
    return signing_key


def _write_one(path: str, tensors: list[_Tensor], metadata: Optional[Mapping[str, str]], enc_key: Any, enc_mode: Any,
               binding: Optional[Mapping[str, str]] = None, signing_key: Any = None) -> None:
    """``binding``: set-binding keys for the modelcrypt header's authenticated metadata (see _sets)."""
    header = _header_bytes(tensors, metadata)
    parts = [header, *(t.data for t in tensors)]
    if enc_key is None:
        atomic_write(path, parts)
    elif callable(enc_mode):
        plaintext = bytearray().join(parts)
        try:
            result = custom_encrypt(enc_mode, plaintext, enc_key)
        finally:
            _core.wipe_writable_buffer(plaintext)
        atomic_write(path, [result])
    else:
        _core.encrypt_parts_to_file(parts, _fspath(path, "path"), enc_key, enc_mode, DEFAULT_CHUNK_SIZE,
                                    _metadata.encode(binding), 0, signing_key=signing_key)


CHECKPOINT_FORMATS = ("safetensors", "mindspore")


def _check_format(format: Any) -> str:
    if not isinstance(format, str):
        raise TypeError(f"format must be a str, not {type(format).__name__}")
    if format.lower() not in CHECKPOINT_FORMATS:
        raise ValueError(f"unknown checkpoint format {_shown(format)}; supported: {', '.join(CHECKPOINT_FORMATS)}")
    return format.lower()


def _write_mindspore(path: str, params: Any, enc_key: Any, enc_mode: Any) -> None:
    """A MindSpore checkpoint: plain, custom-encrypted, or in MindSpore's frame format."""
    from . import mindspore as _ms

    parts = _ms.build_parts(params)
    if enc_key is None:
        atomic_write(path, parts)
        return
    plaintext = bytearray().join(parts)
    for part in parts:  # serialized tensors: ours alone, wipe them now that they are joined
        if len(part) >= 2:
            _core.wipe_bytes_object(part)
    del parts
    try:
        if callable(enc_mode):
            result = custom_encrypt(enc_mode, plaintext, enc_key)
        else:
            result = encrypt_bytes(plaintext, enc_key, enc_mode, format="mindspore")
    finally:
        _core.wipe_writable_buffer(plaintext)
    atomic_write(path, [result])


def _shard_groups(tensors: list[_Tensor], limit: int) -> list[list[_Tensor]]:
    groups: list[list[_Tensor]] = []
    current: list[_Tensor] = []
    size = 0
    for t in tensors:
        if current and size + t.nbytes > limit:
            groups.append(current)
            current, size = [], 0
        current.append(t)
        size += t.nbytes
    if current or not groups:
        groups.append(current)
    return groups


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

    Returns the path written: ``path``, or the index path when the checkpoint was sharded.
    """
    target = os.fsdecode(_fspath(path, "path"))
    enc_key, enc_mode = _check_enc(enc_key, enc_mode)
    signing_key = _check_signing(signing_key, enc_key, enc_mode)
    if _check_format(format) == "mindspore":
        if signing_key is not None:
            raise ValueError('format="mindspore" files cannot be signed (signing_key needs format="safetensors")')
        if max_shard_size is not None or metadata is not None:
            raise ValueError('format="mindspore" supports neither max_shard_size nor metadata')
        _write_mindspore(target, params, enc_key, enc_mode)
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
        _write_one(target, tensors, metadata, enc_key, enc_mode, _binding, signing_key)
        if stale is not None:  # the earlier save's index and shards would otherwise shadow this one
            _remove_files([index_path, *stale], directory=os.path.dirname(target))
        return target
    if _binding is not None:
        raise ValueError("a ModelCheckpoint file cannot be sharded")

    groups = _shard_groups(tensors, limit)
    directory, base = os.path.split(target)
    stem, suffix = os.path.splitext(base)
    count = len(groups)
    names = [f"{stem}-{i:05d}-of-{count:05d}{suffix}" for i in range(1, count + 1)]
    weight_map = {t.name: name for name, group in zip(names, groups) for t in group}
    # Encrypted shards (modelcrypt modes) are bound into one set: each authenticates the save's id,
    # its own name and place, and the digest of the whole weight map (so the plaintext index is
    # authenticated too). Custom ciphers have no authenticated metadata: their shards stay unbound.
    bound = enc_key is not None and not callable(enc_mode)
    set_id = _sets.new_set_id() if bound else None
    digest = _sets.weight_map_digest(weight_map)
    for i, (shard_name, group) in enumerate(zip(names, groups), 1):
        binding = _sets.shard_metadata(set_id, shard_name, i, count, digest) if set_id else None
        _write_one(os.path.join(directory, shard_name), group, metadata, enc_key, enc_mode, binding, signing_key)
    index_meta: dict[str, Any] = {"total_size": total}
    if set_id:
        index_meta[_sets.SET] = set_id
    index = {"metadata": index_meta, "weight_map": weight_map}
    atomic_write(index_path, [json.dumps(index, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"])
    if stale:  # shards of the earlier save that this one did not overwrite (it had more of them)
        _remove_files([name for name in stale if name not in names], directory=directory)
    return index_path


def _earlier_shards(index_path: str, target: str) -> Optional[list[str]]:
    """The shard file names of an earlier sharded save of ``target`` (listed in its index and named as
    save_checkpoint names shards), or None when there is no such index. Nothing else is ever deleted."""
    if not os.path.isfile(index_path):
        return None
    try:
        weight_map, _ = _read_index(index_path)
    except (FormatError, OSError):
        return None  # not an index save_checkpoint wrote: left alone
    stem, suffix = os.path.splitext(os.path.basename(target))
    pattern = re.compile(re.escape(stem) + r"-\d{5}-of-\d{5}" + re.escape(suffix))
    return sorted({shard for shard in weight_map.values() if pattern.fullmatch(shard)})


def _remove_files(names: Iterable[str], directory: str) -> None:
    for name in names:
        try:
            os.unlink(os.path.join(directory, os.path.basename(name)))
        except FileNotFoundError:
            pass


# ------------------------------------------------------------------ parsing the header


class _Entry:
    __slots__ = ("name", "dtype", "shape", "begin", "end")

    def __init__(self, name: str, dtype: np.dtype, shape: tuple[int, ...], begin: int, end: int):
        self.name, self.dtype, self.shape, self.begin, self.end = name, dtype, shape, begin, end


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for k, v in pairs:
        if k in result:  # (the key is not quoted: in an encrypted checkpoint's header it is plaintext)
            raise FormatError("checkpoint header: a key appears twice in one object")
        result[k] = v
    return result


def _is_uint(x: Any) -> bool:
    return type(x) is int and x >= 0


def _header_size(prefix: bytes, total: int, where: str) -> int:
    if total < 8 or len(prefix) < 8:
        raise FormatError(f"{where}: {total} bytes is too short for a safetensors checkpoint (needs an 8-byte header size)")
    (n,) = struct.unpack("<Q", prefix[:8])
    if n > MAX_HEADER_SIZE or 8 + n > total:
        why = (f"over the safetensors limit of {MAX_HEADER_SIZE} bytes" if n > MAX_HEADER_SIZE
               else f"past the end of its {total} bytes")
        raise FormatError(f"{where}: not a checkpoint: its data does not start with a safetensors header (the "
                          f"first 8 bytes give a header size of {n} bytes, {why}); a file encrypted with "
                          "encrypt_file or `modelcrypt encrypt` loads with modelcrypt.load, a checkpoint is "
                          "written by save_checkpoint")
    return n


def _decode_json(raw: bytes, where: str, hook: Any) -> Any:
    """UTF-8 JSON, or a FormatError that quotes none of the text (an encrypted checkpoint's header
    is plaintext) and chains nothing (a UnicodeDecodeError would carry all of it)."""
    problem = None
    try:
        text = bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        problem = f"not UTF-8 at byte {exc.start}"
    else:
        if not text.startswith("{"):
            problem = "it does not start with '{'"
        else:
            try:
                return json.loads(text, object_pairs_hook=hook)
            except json.JSONDecodeError as exc:
                problem = f"{exc.msg} at byte {exc.pos}"
            except (ValueError, RecursionError) as exc:
                problem = f"{type(exc).__name__}"
    raise FormatError(f"{where}: the header is not UTF-8 JSON: {problem}")


def _parse_header(raw: bytes, data_len: int, where: str, secret: bool = True) -> tuple[dict[str, _Entry], dict[str, str]]:
    """Strictly validate a safetensors JSON header against a data section of data_len bytes.

    ``secret``: the header came out of an encrypted file, so it is plaintext: messages then name
    tensors by their position in the header (``tensor #3``) and quote none of its values."""
    obj = _decode_json(raw, where, _no_duplicates)
    if not isinstance(obj, dict):
        raise FormatError(f"{where}: the header is not a JSON object")
    metadata = obj.pop("__metadata__", None)
    if metadata is None:
        metadata = {}
    elif not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise FormatError(f"{where}: __metadata__ must be an object of str to str")
    positions = {name: i for i, name in enumerate(obj)}

    def tensor(name: str) -> str:
        return f"tensor #{positions[name]}" if secret else f"tensor {name!r}"

    def value(v: Any) -> str:
        return "" if secret and not (isinstance(v, list) and all(type(x) is int for x in v)) else f" {v!r}"

    entries: dict[str, _Entry] = {}
    for name, info in obj.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise FormatError(f"{where}: {tensor(name)} must be an object with exactly dtype, shape, data_offsets")
        dtype_name, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if not isinstance(dtype_name, str) or dtype_name not in _DTYPES:
            shown = "" if secret else f" {dtype_name!r}"
            raise FormatError(f"{where}: {tensor(name)} has an unsupported dtype{shown} "
                              f"(supported: {', '.join(_DTYPES)})")
        if not isinstance(shape, list) or not all(_is_uint(d) for d in shape):
            raise FormatError(f"{where}: {tensor(name)} has an invalid shape{value(shape)}")
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_uint(o) for o in offsets)
                or offsets[0] > offsets[1] or offsets[1] > data_len):
            raise FormatError(f"{where}: {tensor(name)} has data_offsets{value(offsets)} outside the "
                              f"{data_len}-byte data section")
        dtype = _DTYPES[dtype_name]
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes != offsets[1] - offsets[0]:
            raise FormatError(f"{where}: {tensor(name)} of shape {shape} and dtype {dtype_name} needs {nbytes} "
                              f"bytes but data_offsets {offsets} cover {offsets[1] - offsets[0]}")
        entries[name] = _Entry(name, dtype, tuple(shape), offsets[0], offsets[1])
    position = 0
    for e in sorted(entries.values(), key=lambda e: (e.begin, e.end)):
        if e.begin != position:
            problem = "overlaps the previous tensor" if e.begin < position else "leaves a gap before it"
            raise FormatError(f"{where}: {tensor(e.name)} at data_offsets [{e.begin}, {e.end}] {problem}")
        position = e.end
    if position != data_len:
        raise FormatError(f"{where}: the tensors cover {position} bytes of a {data_len}-byte data section")
    return entries, metadata


def _array(buffer: Any, e: _Entry, base: int) -> np.ndarray:
    count = (e.end - e.begin) // e.dtype.itemsize
    if count == 0:
        return np.empty(e.shape, dtype=e.dtype)
    return np.frombuffer(buffer, dtype=e.dtype, count=count, offset=e.begin - base).reshape(e.shape)


# ------------------------------------------------------------------ reading one checkpoint


def _check_dec(dec_key: Any, dec_mode: Any) -> tuple[Any, Any]:
    return _check_key_mode(dec_key, dec_mode, "dec")


def _check_names(names: Any) -> Optional[list[str]]:
    if names is None:
        return None
    if isinstance(names, (str, bytes)):
        raise TypeError("names must be an iterable of str (a list), not a single str")
    names = list(names)
    for n in names:
        if not isinstance(n, str):
            raise TypeError(f"names must be str, not {type(n).__name__}")
    return list(dict.fromkeys(names))


class _MindSporePlaintext(FormatError):
    """Internal: the plaintext is a MindSpore checkpoint, so it has no safetensors header to read by range."""


def _is_mindspore_plaintext(buf: Any) -> bool:
    from .mindspore import looks_like_checkpoint

    with memoryview(buf) as view:
        return looks_like_checkpoint(bytes(view[:16]))


def _mindspore_arrays(buf: Any, where: str, secret: bool = True) -> dict[str, np.ndarray]:
    """Parse MindSpore checkpoint plaintext into arrays (copies), then wipe a modelcrypt buffer."""
    from .mindspore import _parse_checkpoint

    try:
        return _parse_checkpoint(buf, secret)
    except FormatError as exc:
        raise FormatError(f"{where}: {exc}") from None
    finally:
        close = getattr(buf, "close", None)
        if isinstance(buf, _core.DecryptedBuffer) and close is not None:
            close()


def _read_plain_mindspore(path: str) -> Optional[dict[str, np.ndarray]]:
    """The arrays of a plaintext MindSpore checkpoint file, or None when it does not look like one."""
    with open(path, "rb") as f:
        head = f.read(16)
        if not _is_mindspore_plaintext(head):
            return None
        data = head + f.read()
    return _mindspore_arrays(data, f"checkpoint {path}", secret=False)


def _load_other_format(path: str, dec_key: Any, dec_mode: Any, fmt: str, format: str) -> Optional[dict[str, np.ndarray]]:
    """Checkpoints that are not modelcrypt v1 files: MindSpore ``.ckpt`` (plain or MindSpore-encrypted),
    and any plaintext checkpoint inside a legacy container (PaddleX, Paddle ``paddle:...`` modes).
    Returns None for the files the safetensors reader handles (v1 containers, plain safetensors)."""
    where = f"checkpoint {path}"
    legacy = fmt in ("mindspore", "paddlex") or (isinstance(dec_mode, str) and dec_mode.lower().startswith("paddle:"))
    if legacy:
        if dec_key is None:
            kind = "Paddle cipher" if fmt == "unknown" else fmt
            raise ValueError(f"{path} is an encrypted checkpoint ({kind} format): pass dec_key")
        buf = load(path, dec_key, dec_mode, format=format)  # legacy formats only when the caller chose one
        if _is_mindspore_plaintext(buf):
            return _mindspore_arrays(buf, where)
        with memoryview(buf) as view:  # a safetensors plaintext in a legacy container
            total = view.nbytes
            n = _header_size(bytes(view[:8]), total, where)
            entries, _ = _parse_header(bytes(view[8:8 + n]), total - 8 - n, where)
        return {name: _array(buf, e, -(8 + n)) for name, e in entries.items()}
    if fmt == "unknown":
        if dec_key is not None:
            with open(path, "rb") as f:
                head = f.read(16)
            if _is_mindspore_plaintext(head):
                raise FormatError(f"{path} is a plaintext MindSpore checkpoint, not an encrypted file; refusing to "
                                  "load it unauthenticated with dec_key (pass dec_key=None to load it)")
            return None  # the safetensors reader refuses it the same way
        return _read_plain_mindspore(path)
    return None


class _Checkpoint:
    """One checkpoint file opened for reading: its parsed header and a way to read byte ranges."""

    def __init__(self, path: str, dec_key: Any, dec_mode: Any):
        self.path = path
        self.where = f"checkpoint {path}"
        self._key, self._mode = dec_key, dec_mode
        self._file: Optional[EncryptedFile] = None  # encrypted: one handle for the header and every range
        self._whole: Any = None  # a buffer holding the whole plaintext (decrypted, custom or mapped)
        #: the authenticated modelcrypt metadata (encrypted files; {} otherwise)
        self.metadata: dict[str, str] = {}
        #: the safetensors __metadata__ (inside the plaintext), once the header has been parsed
        self.header_metadata: dict[str, str] = {}
        if callable(dec_mode):
            self._whole = custom_decrypt(dec_mode, path, dec_key)
            self.kind = "custom"
        elif is_encrypted(path):
            if dec_key is None:
                raise ValueError(f"{path} is an encrypted checkpoint: pass dec_key")
            self.kind = "encrypted"
            self._file = open_encrypted(path, dec_key, dec_mode)
            self.metadata = self._file.metadata
        else:
            if dec_key is not None:
                raise FormatError(f"{path} is not an encrypted modelcrypt file; refusing to load it unauthenticated "
                                  "with dec_key (pass dec_key=None to load a plaintext .safetensors checkpoint)")
            self.kind = "plain"

    # -- lifetime of the handle (encrypted random access)
    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "_Checkpoint":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _range(self, offset: int, length: int) -> Any:
        assert self._file is not None
        return self._file.read_range(offset, length)

    # -- loading
    def load_all(self) -> dict[str, np.ndarray]:
        if self.kind == "encrypted":
            assert self._file is not None
            self._whole = self._file.read_all()
        elif self.kind == "plain":
            self._whole = _map_plain(self.path)
        buf = self._whole
        if self.kind != "plain" and _is_mindspore_plaintext(buf):
            return _mindspore_arrays(buf, self.where)
        with memoryview(buf) as view:
            total = view.nbytes
            n = _header_size(bytes(view[:8]), total, self.where)
            entries, self.header_metadata = _parse_header(bytes(view[8:8 + n]), total - 8 - n, self.where,
                                                          secret=self.kind != "plain")
        base = -(8 + n)
        return {name: _array(buf, e, base) for name, e in entries.items()}

    def header(self) -> tuple[dict[str, _Entry], int]:
        """The validated header (entries, data start) read with as little decryption as possible."""
        if self.kind == "custom":
            if _is_mindspore_plaintext(self._whole):
                raise _MindSporePlaintext(f"{self.where} holds a MindSpore checkpoint")
            with memoryview(self._whole) as view:
                total = view.nbytes
                n = _header_size(bytes(view[:8]), total, self.where)
                entries, self.header_metadata = _parse_header(bytes(view[8:8 + n]), total - 8 - n, self.where)
            return entries, 8 + n
        if self.kind == "plain":
            with open(self.path, "rb") as f:
                total = os.fstat(f.fileno()).st_size
                n = _header_size(f.read(8), total, self.where)
                raw = f.read(n)
            if len(raw) != n:
                raise FormatError(f"{self.where}: truncated header")
            entries, self.header_metadata = _parse_header(raw, total - 8 - n, self.where, secret=False)
            return entries, 8 + n
        assert self._file is not None
        total, cs = self._file.plaintext_length, self._file.chunk_size  # authenticated when opened
        with self._range(0, min(total, cs)) as first:  # decrypting 8 bytes costs chunk 0 anyway
            if _is_mindspore_plaintext(first):
                raise _MindSporePlaintext(f"{self.where} holds a MindSpore checkpoint")
            n = _header_size(bytes(memoryview(first)[:8]), total, self.where)
            if 8 + n <= len(first):
                raw = bytes(memoryview(first)[8:8 + n])
            else:
                raw = None
        if raw is None:
            with self._range(8, n) as rest:
                raw = bytes(rest)
        self._chunk_size = cs
        entries, self.header_metadata = _parse_header(raw, total - 8 - n, self.where)
        return entries, 8 + n

    def load_names(self, wanted: list[str], entries: dict[str, _Entry], start: int) -> dict[str, np.ndarray]:
        selected = [entries[n] for n in wanted]
        if self.kind == "custom":
            return {e.name: _array(self._whole, e, -start) for e in selected}
        if self.kind == "plain":
            out = {}
            with open(self.path, "rb") as f:
                for e in selected:
                    f.seek(start + e.begin)
                    out[e.name] = np.fromfile(f, dtype=e.dtype, count=(e.end - e.begin) // e.dtype.itemsize).reshape(e.shape)
            return out
        cs = self._chunk_size
        ranges: list[list[Any]] = []  # [begin, end, entries] in plaintext coordinates
        for e in sorted((e for e in selected if e.end > e.begin), key=lambda e: e.begin):
            b, f = start + e.begin, start + e.end
            if ranges and (b <= ranges[-1][1] or b // cs == (ranges[-1][1] - 1) // cs):
                ranges[-1][1] = max(ranges[-1][1], f)
                ranges[-1][2].append(e)
            else:
                ranges.append([b, f, [e]])
        out = {e.name: np.empty(e.shape, dtype=e.dtype) for e in selected if e.end == e.begin}
        for b, f, group in ranges:
            buf = self._range(b, f - b)
            for e in group:
                out[e.name] = _array(buf, e, b - start)
        return {n: out[n] for n in wanted}


def _map_plain(path: str) -> Any:
    """A copy-on-write map of a plaintext checkpoint: zero-copy, writable arrays, the file unchanged."""
    import mmap

    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return b""
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)


def _missing(names: Iterable[str], where: str) -> KeyError:
    missing = list(names)
    shown = ", ".join(_shown(n, 200) for n in missing[:20]) + (", ..." if len(missing) > 20 else "")
    return KeyError(f"{len(missing)} name(s) not in {where}: {shown}")


def load_checkpoint(
    path: StrPath,
    dec_key: Optional[BytesLike] = None,
    dec_mode: DecMode = "AES-GCM",
    *,
    names: Optional[Iterable[str]] = None,
    format: str = "modelcrypt",
    with_metadata: bool = False,
    trusted_signers: Optional[Iterable[Any]] = None,
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

    ``trusted_signers`` (signer public keys): every file read must carry a publisher signature by
    one of them (format v3), else SignatureError; with ``names`` only the chunks read are checked.
    """
    _check_bool(with_metadata, "with_metadata")
    target = os.fsdecode(_fspath(path, "path"))
    if trusted_signers is not None and dec_key is None:
        raise ValueError("trusted_signers needs dec_key: a plaintext checkpoint carries no signature")
    dec_key = _reader_key(dec_key, trusted_signers, dec_mode)
    arrays, header_metadata = load_flat(target, dec_key, dec_mode, names=names, format=format)
    state = arrays
    if names is None and STRUCTURE_KEY in header_metadata:
        state = unflatten(header_metadata[STRUCTURE_KEY], arrays, f"checkpoint {target}")
    if with_metadata:
        return state, user_metadata(header_metadata)
    return state


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
    arrays = None if callable(dec_mode) else _load_other_format(target, dec_key, dec_mode, detect_format(target), format)
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


def _read_index(index_path: str) -> tuple[dict[str, str], Optional[str]]:
    try:
        with open(index_path, "rb") as f:
            index = json.loads(f.read().decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormatError(f"index {index_path} is not UTF-8 JSON: {exc}") from None
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict):
        raise FormatError(f"index {index_path} has no 'weight_map' object")
    for name, shard in weight_map.items():
        if not isinstance(shard, str) or not shard or os.path.isabs(shard) or ".." in re.split(r"[\\/]", shard):
            raise FormatError(f"index {index_path}: tensor {name!r} maps to {shard!r}, which is not a file name "
                              "beside the index")
    meta = index.get("metadata")
    index_set = meta.get(_sets.SET) if isinstance(meta, dict) else None
    if index_set is not None and not isinstance(index_set, str):
        raise FormatError(f"index {index_path}: metadata {_sets.SET} is not a string")
    return weight_map, index_set


def load_distributed_checkpoint(
    index_or_paths: Union[StrPath, Iterable[StrPath]],
    dec_key: Optional[BytesLike] = None,
    dec_mode: DecMode = "AES-GCM",
    *,
    names: Optional[Iterable[str]] = None,
    trusted_signers: Optional[Iterable[Any]] = None,
) -> dict[str, np.ndarray]:
    """Load a sharded checkpoint: an index JSON (``{"weight_map": {name: shard file}}``) or a list of shards.

    With an index path, only the shards holding the requested ``names`` are decrypted (every
    shard when ``names`` is None); shard file names are resolved beside the index and must not
    leave its directory. Shards saved as a set (encrypted by save_checkpoint) are checked as a
    whole before any tensor is returned: every shard of the index is opened and its header
    authenticated, and a shard from another save, a missing, duplicated or renamed shard, or an
    index whose weight map is not the one the shards authenticate raise SetMismatchError. For
    unbound shards (plaintext, custom ciphers, older files) each tensor's presence in the shard
    the index names is checked against that shard's header: a mismatch raises FormatError.

    With a list of shard paths every shard is loaded, or, with ``names``, each shard's header is
    read by random access and only the requested tensors are decrypted; bound shards are checked
    as a set the same way (each under the file name it was saved as).
    A name found in two shards raises FormatError; unknown names raise KeyError. Keys, modes and
    arrays behave as in load_checkpoint (one key for all shards); ``trusted_signers`` as for
    load_checkpoint: every shard must be signed by one of them.
    """
    if trusted_signers is not None and dec_key is None:
        raise ValueError("trusted_signers needs dec_key: plaintext shards carry no signature")
    dec_key = _reader_key(dec_key, trusted_signers, dec_mode)
    dec_key, dec_mode = _check_dec(dec_key, dec_mode)
    wanted = _check_names(names)
    out: dict[str, np.ndarray] = {}

    def tensor(name: str) -> str:  # names read from an encrypted shard are plaintext: not quoted
        return f"tensor {name!r}" if dec_key is None else "a tensor"

    def merge(arrays: dict[str, np.ndarray], shard: str) -> None:
        for name, arr in arrays.items():
            if name in out:
                raise FormatError(f"{tensor(name)} appears in more than one shard (again in {shard})")
            out[name] = arr

    if isinstance(index_or_paths, (str, bytes, os.PathLike)):
        index_path = os.fsdecode(_fspath(index_or_paths, "index_or_paths"))
        weight_map, index_set = _read_index(index_path)
        directory = os.path.dirname(os.path.abspath(index_path))
        if wanted is not None:
            unknown = [n for n in wanted if n not in weight_map]
            if unknown:
                raise _missing(unknown, f"index {index_path}")
        by_shard: dict[str, list[str]] = {}
        for name in (wanted if wanted is not None else weight_map):
            by_shard.setdefault(weight_map[name], []).append(name)
        opened: dict[str, _Checkpoint] = {}
        try:
            # Every shard the index names is opened (its header authenticated) before any is read,
            # so the set is checked as a whole: the needed ones stay open and are read through the
            # same handles; the others only have their headers checked (modelcrypt files only: a
            # custom cipher would decrypt the whole file just to open it).
            for shard in dict.fromkeys(weight_map.values()):
                shard_path = os.path.join(directory, shard)
                if shard in by_shard:
                    opened[shard] = _Checkpoint(shard_path, dec_key, dec_mode)
                elif not callable(dec_mode) and os.path.isfile(shard_path) and is_encrypted(shard_path) \
                        and dec_key is not None:
                    opened[shard] = _Checkpoint(shard_path, dec_key, dec_mode)
                    opened[shard].close()
            _sets.check_shards({name: ck.metadata for name, ck in opened.items()},
                               expected_names=weight_map.values(), weight_map=weight_map, index_set=index_set,
                               where=f"index {index_path}")
            for shard, shard_names in by_shard.items():
                shard_path = os.path.join(directory, shard)
                ckpt = opened[shard]
                if wanted is None:
                    arrays = ckpt.load_all()
                    stray = [n for n in arrays if weight_map.get(n) != shard]
                    if stray:
                        raise FormatError(f"shard {shard_path} holds {len(stray)} tensor(s) the index does not map "
                                          "to it" + ("" if dec_key is not None else ": " + ", ".join(
                                              repr(n) for n in stray[:20])))
                    absent = [n for n in shard_names if n not in arrays]
                else:
                    entries, start = ckpt.header()
                    absent = [n for n in shard_names if n not in entries]
                    arrays = {} if absent else ckpt.load_names(shard_names, entries, start)
                if absent:
                    raise FormatError(f"index {index_path} maps tensors to {shard} but it does not hold them: "
                                      + ", ".join(repr(n) for n in absent[:20]))
                merge(arrays, shard_path)
        finally:
            for ckpt in opened.values():
                ckpt.close()
        if wanted is not None:
            return {n: out[n] for n in wanted}
        return _with_structure(out, [opened[s] for s in by_shard], f"index {index_path}")

    if isinstance(index_or_paths, Mapping) or not isinstance(index_or_paths, Iterable):
        raise TypeError("index_or_paths must be an index path or a list of shard paths, "
                        f"not {type(index_or_paths).__name__}")
    paths = [os.fsdecode(_fspath(p, "shard path")) for p in index_or_paths]
    if not paths:
        raise ValueError("no shard paths given")
    found: dict[str, str] = {}
    ckpts: list[_Checkpoint] = []
    try:
        metas: dict[str, dict[str, str]] = {}
        seen: set[str] = set()
        for shard_path in paths:  # all opened (headers authenticated) and checked as a set first
            ckpt = _Checkpoint(shard_path, dec_key, dec_mode)
            ckpts.append(ckpt)
            real = os.path.realpath(shard_path)
            if real in seen:  # the same file twice: the tensors then appear twice (FormatError below)
                continue
            seen.add(real)
            name = os.path.basename(shard_path)
            if name in metas and (metas[name] or ckpt.metadata):
                raise _sets.SetMismatchError(f"two shards are named {name} ({shard_path}): duplicated")
            metas[name] = ckpt.metadata
        _sets.check_shards(metas, where="the shards " + ", ".join(paths))
        rebuilt: dict[str, str] = {}  # the weight map the shards hold, checked against the one they authenticate
        for shard_path, ckpt in zip(paths, ckpts):
            if wanted is None:
                arrays = ckpt.load_all()
                rebuilt.update((n, os.path.basename(shard_path)) for n in arrays)
                merge(arrays, shard_path)
                continue
            entries, start = ckpt.header()
            rebuilt.update((n, os.path.basename(shard_path)) for n in entries)
            for name in entries:
                if name in found:
                    raise FormatError(f"{tensor(name)} appears in more than one shard ({found[name]} and {shard_path})")
                found[name] = shard_path
            here = [n for n in wanted if n in entries]
            if here:
                merge(ckpt.load_names(here, entries, start), shard_path)
        bound = [md for md in metas.values() if _sets.SET in md]
        if bound and bound[0].get(_sets.WEIGHT_MAP) != _sets.weight_map_digest(rebuilt):
            raise _sets.SetMismatchError("the shards " + ", ".join(paths) + " do not hold the tensors their save "
                                         "authenticated (a shard's contents were swapped)")
    finally:
        for ckpt in ckpts:
            ckpt.close()
    if wanted is not None:
        unknown = [n for n in wanted if n not in out]
        if unknown:
            raise _missing(unknown, "the shards " + ", ".join(paths))
        return {n: out[n] for n in wanted}
    return _with_structure(out, ckpts, "the shards " + ", ".join(paths))


def _with_structure(arrays: dict[str, np.ndarray], shards: list["_Checkpoint"], where: str) -> Any:
    """A sharded training state rebuilt from the structure every shard carries (the same in each)."""
    structures = {ck.header_metadata.get(STRUCTURE_KEY) for ck in shards}
    if structures == {None} or not structures:
        return arrays
    if len(structures) != 1:
        raise FormatError(f"{where}: the shards carry different training-state structures (from different saves?)")
    return unflatten(structures.pop(), arrays, where)


# ------------------------------------------------------------------ training-loop helpers


class CheckpointConfig:
    """How often ModelCheckpoint saves and how many files it keeps (MindSpore's names).

    ``save_checkpoint_steps``: save when ``step % save_checkpoint_steps == 0``. ``keep_checkpoint_max``:
    how many checkpoints of the prefix to keep. ``enc_key`` / ``enc_mode`` / ``signing_key`` as for
    save_checkpoint (no key: plain .safetensors checkpoints).
    """

    def __init__(
        self,
        save_checkpoint_steps: int = 1,
        keep_checkpoint_max: int = 5,
        enc_key: Optional[BytesLike] = None,
        enc_mode: EncMode = "AES-GCM",
        signing_key: Any = None,
    ):
        for what, value in (("save_checkpoint_steps", save_checkpoint_steps), ("keep_checkpoint_max", keep_checkpoint_max)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{what} must be an int, not {type(value).__name__}")
            if value < 1:
                raise ValueError(f"{what} must be >= 1, got {value}")
        self.save_checkpoint_steps = save_checkpoint_steps
        self.keep_checkpoint_max = keep_checkpoint_max
        self.enc_key, self.enc_mode = _check_enc(enc_key, enc_mode)
        self.signing_key = _check_signing(signing_key, self.enc_key, self.enc_mode)

    def __repr__(self) -> str:
        mode = getattr(self.enc_mode, "__name__", "custom") if callable(self.enc_mode) else self.enc_mode
        return (f"CheckpointConfig(save_checkpoint_steps={self.save_checkpoint_steps}, "
                f"keep_checkpoint_max={self.keep_checkpoint_max}, "
                f"enc_key={'<set>' if self.enc_key is not None else None}, enc_mode={mode!r}"
                + (f", signing_key={self.signing_key!r})" if self.signing_key is not None else ")"))


class ModelCheckpoint:
    """Saves ``<directory>/<prefix>-<step>.ckpt`` every ``config.save_checkpoint_steps`` steps.

    Keeps the newest ``config.keep_checkpoint_max`` checkpoints of this prefix by step number,
    counting those left in the directory by an earlier run; the checkpoint just written is always
    kept. Older files are deleted only after the new one is complete, and every save is atomic,
    so a crash or error during a save never destroys the previous checkpoint.

    Encrypted checkpoints (string ``enc_mode``) carry, authenticated, this object's
    ``series_id``, their file name and their step: ``load_checkpoint`` refuses (SetMismatchError)
    such a file under any name but ``<prefix>-<step>.ckpt`` with its own step, so an old
    checkpoint cannot be renamed to pass for a newer one.
    ``directory`` defaults to the current directory and is created if missing.
    """

    def __init__(self, prefix: str, directory: Optional[StrPath] = None, config: Optional[CheckpointConfig] = None):
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, not {type(prefix).__name__}")
        if not prefix or "/" in prefix or os.sep in prefix or prefix in (".", ".."):
            raise ValueError(f"prefix must be a non-empty file name prefix without path separators, got {_shown(prefix)}")
        if config is None:
            config = CheckpointConfig()
        elif not isinstance(config, CheckpointConfig):
            raise TypeError(f"config must be a CheckpointConfig or None, not {type(config).__name__}")
        self.prefix = prefix
        self.directory = os.path.abspath(os.fsdecode(_fspath(directory, "directory")) if directory is not None else ".")
        self.config = config
        self._pattern = re.compile(re.escape(prefix) + r"-(\d+)\.ckpt")
        self._last_saved: Optional[str] = None
        #: the id binding this object's checkpoints into one series (authenticated in each file)
        self.series_id = _sets.new_set_id()
        os.makedirs(self.directory, exist_ok=True)

    def _existing(self) -> list[tuple[int, str]]:
        found = []
        for entry in os.listdir(self.directory):
            m = self._pattern.fullmatch(entry)
            if m:
                found.append((int(m.group(1)), os.path.join(self.directory, entry)))
        return sorted(found)

    def checkpoints(self) -> list[str]:
        """Paths of this prefix's checkpoints in the directory, oldest step first."""
        return [p for _, p in self._existing()]

    @property
    def latest(self) -> Optional[str]:
        """The checkpoint this object saved last, else the highest-step one in the directory, else None."""
        if self._last_saved is not None and os.path.exists(self._last_saved):
            return self._last_saved
        existing = self._existing()
        return existing[-1][1] if existing else None

    def step(self, params: Mapping[str, Any], step: int) -> Optional[str]:
        """Save ``params`` if ``step`` is a multiple of save_checkpoint_steps; returns the path or None."""
        if isinstance(step, bool) or not isinstance(step, int):
            raise TypeError(f"step must be an int, not {type(step).__name__}")
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        if step % self.config.save_checkpoint_steps:
            return None
        name = f"{self.prefix}-{step}.ckpt"
        path = os.path.join(self.directory, name)
        binding = None
        if self.config.enc_key is not None and not callable(self.config.enc_mode):
            binding = {_sets.SET: self.series_id, _sets.MEMBER: name, _sets.STEP: str(step)}
        save_checkpoint(params, path, self.config.enc_key, self.config.enc_mode, signing_key=self.config.signing_key,
                        _binding=binding)
        self._last_saved = path
        others = [p for _, p in self._existing() if p != path]
        keep = self.config.keep_checkpoint_max - 1
        for old in others[: max(0, len(others) - keep)]:
            try:
                os.unlink(old)
            except FileNotFoundError:
                pass
        return path
