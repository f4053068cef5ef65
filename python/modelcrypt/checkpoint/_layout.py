"""The safetensors layout of a checkpoint's plaintext: the header and the tensor data (dtypes: _dtypes).

8-byte little-endian header size, a JSON header padded with spaces to a multiple of 8, then the
tensors' bytes. Writing: arrays and torch tensors become ``_Tensor`` (dtype, shape, bytes) and
``_header_bytes`` builds the header. Reading: ``_header_size`` and ``_parse_header`` validate a
header strictly, ``_array`` views a tensor's bytes as a numpy array.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from typing import Any, Optional

import numpy as np

from .._torch_arrays import torch_to_numpy
from ..exceptions import FormatError
from ._dtypes import CHECKPOINT_DTYPES, NUMPY_TO_CHECKPOINT

#: safetensors' own limit on the JSON header (bytes).
MAX_HEADER_SIZE = 100_000_000

_RAW_BYTES = np.dtype("u1")  # the dtype of tensors outside CHECKPOINT_DTYPES: their raw bytes


# ------------------------------------------------------------------ writing: the inputs and the header


class _Tensor:
    """One tensor to write: its safetensors dtype, shape and C-contiguous little-endian bytes."""

    __slots__ = ("name", "dtype", "shape", "data")

    def __init__(self, name: str, dtype: str, shape: tuple[int, ...], data: np.ndarray):
        self.name, self.dtype, self.shape = name, dtype, shape
        self.data = data  # 1-d uint8 view of the bytes (no copy when the input already fits)

    @property
    def nbytes(self) -> int:
        return self.data.nbytes


def _to_tensor(name: Any, value: Any) -> _Tensor:
    if not isinstance(name, str):
        raise TypeError(f"checkpoint names must be str, not {type(name).__name__}")
    if name == "__metadata__":
        raise ValueError("'__metadata__' is reserved by the safetensors format and cannot name a tensor")
    st_dtype = None
    if type(value).__module__.startswith("torch"):
        arr, st_dtype = torch_to_numpy(name, value)
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
            st_dtype = NUMPY_TO_CHECKPOINT.get((arr.dtype.kind, arr.dtype.itemsize))
            if st_dtype is None:
                supported = ", ".join(CHECKPOINT_DTYPES)
                raise TypeError(f"checkpoint value {name!r} has dtype {arr.dtype}, which has no safetensors "
                                f"equivalent supported here ({supported})")
    target = CHECKPOINT_DTYPES[st_dtype]
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
    tensors.sort(key=lambda t: -CHECKPOINT_DTYPES[t.dtype].itemsize)
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


# ------------------------------------------------------------------ reading: parsing the header


class _Entry:
    """One tensor of a parsed header: ``st_dtype`` its safetensors dtype name, ``dtype`` the numpy
    dtype load_checkpoint returns it as (raw bytes, ``u1``, for dtypes outside CHECKPOINT_DTYPES), ``shape`` the
    header's shape, [begin, end) its bytes in the data section."""

    __slots__ = ("name", "dtype", "shape", "begin", "end", "st_dtype")

    def __init__(self, name: str, dtype: np.dtype, shape: tuple[int, ...], begin: int, end: int, st_dtype: str = ""):
        self.name, self.dtype, self.shape, self.begin, self.end = name, dtype, shape, begin, end
        self.st_dtype = st_dtype


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
        raise FormatError(f"{where}: {total} bytes is too short for a safetensors checkpoint "
                          "(needs an 8-byte header size)")
    (n,) = struct.unpack("<Q", prefix[:8])
    if n > MAX_HEADER_SIZE or 8 + n > total:
        # the size itself is not quoted: it is 8 bytes of the (decrypted) content
        why = (f"over the safetensors limit of {MAX_HEADER_SIZE} bytes" if n > MAX_HEADER_SIZE
               else "past the end of the data")
        raise FormatError(f"{where}: not a checkpoint: its data does not start with a safetensors header (its "
                          f"first 8 bytes give a header size {why}); a file encrypted with encrypt_file or "
                          "`modelcrypt encrypt` loads with modelcrypt.load, a checkpoint is written by "
                          "save_checkpoint")
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


def _parse_header(raw: bytes, data_len: int, where: str, secret: bool = True, *,
                  dtype_bits: Optional[Mapping[str, int]] = None,
                  none_without_metadata: bool = False) -> tuple[dict[str, _Entry], Any]:
    """Strictly validate a safetensors JSON header against a data section of data_len bytes.

    ``secret``: the header came out of an encrypted file, so it is plaintext: messages then name
    tensors by their position in the header (``tensor #3``) and quote none of its values.
    ``dtype_bits`` ({dtype name: bits per element}, e.g. SAFETENSORS_DTYPE_BITS) accepts those dtypes
    in place of CHECKPOINT_DTYPES (load_checkpoint's); ``none_without_metadata``: the metadata is None, not {},
    when the header has no ``__metadata__`` (as safetensors' ``metadata()`` returns it)."""
    bits = dtype_bits if dtype_bits is not None else {k: 8 * v.itemsize for k, v in CHECKPOINT_DTYPES.items()}
    obj = _decode_json(raw, where, _no_duplicates)
    if not isinstance(obj, dict):
        raise FormatError(f"{where}: the header is not a JSON object")
    metadata = obj.pop("__metadata__", None)
    if metadata is None:
        metadata = None if none_without_metadata else {}
    elif not isinstance(metadata, dict) \
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
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
        if not isinstance(dtype_name, str) or dtype_name not in bits:
            shown = "" if secret else f" {dtype_name!r}"
            raise FormatError(f"{where}: {tensor(name)} has an unsupported dtype{shown} "
                              f"(supported: {', '.join(bits)})")
        if not isinstance(shape, list) or not all(_is_uint(d) for d in shape):
            raise FormatError(f"{where}: {tensor(name)} has an invalid shape{value(shape)}")
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_uint(o) for o in offsets)
                or offsets[0] > offsets[1] or offsets[1] > data_len):
            raise FormatError(f"{where}: {tensor(name)} has data_offsets{value(offsets)} outside the "
                              f"{data_len}-byte data section")
        dtype = CHECKPOINT_DTYPES.get(dtype_name, _RAW_BYTES)
        nbits = math.prod(shape) * bits[dtype_name]
        nbytes = nbits // 8
        if nbits % 8:
            raise FormatError(f"{where}: {tensor(name)} of shape {shape} and dtype {dtype_name} does not fill whole "
                              f"bytes ({nbits} bits)")
        if nbytes != offsets[1] - offsets[0]:
            raise FormatError(f"{where}: {tensor(name)} of shape {shape} and dtype {dtype_name} needs {nbytes} "
                              f"bytes but data_offsets {offsets} cover {offsets[1] - offsets[0]}")
        entries[name] = _Entry(name, dtype, tuple(shape), offsets[0], offsets[1], dtype_name)
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
