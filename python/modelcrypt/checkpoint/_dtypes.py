"""The safetensors dtypes: their names, bits per element, numpy dtypes and torch dtypes, in one table.

Every reader and writer of the safetensors layout takes its dtype mappings from here: load_checkpoint
and save_checkpoint (``CHECKPOINT_DTYPES``), modelcrypt.safe_open (``SAFETENSORS_DTYPE_BITS``,
``NUMPY_DTYPES``, ``TORCH_DTYPE_NAMES``), modelcrypt.torch, modelcrypt.transformers and the DCP reader
(``RAW_BITS_DTYPES``, ``torch_dtype``). torch is imported only by ``torch_dtype``, when it is called,
so importing this module imports no framework.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import numpy as np

__all__: list[str] = []


class _DType(NamedTuple):
    bits: int  # bits per element
    numpy: Optional[str]  # the numpy dtype safetensors.numpy gives it (little-endian), None: numpy has none
    torch: Optional[str]  # the torch dtype attribute safetensors.torch gives it, None: torch has none


# Every dtype the safetensors format defines (safetensors 0.8), as safetensors.numpy and
# safetensors.torch map them.
_TABLE: dict[str, _DType] = {
    "F64": _DType(64, "<f8", "float64"),
    "F32": _DType(32, "<f4", "float32"),
    "F16": _DType(16, "<f2", "float16"),
    "BF16": _DType(16, None, "bfloat16"),
    "I64": _DType(64, "<i8", "int64"),
    "I32": _DType(32, "<i4", "int32"),
    "I16": _DType(16, "<i2", "int16"),
    "I8": _DType(8, "i1", "int8"),
    "U64": _DType(64, "<u8", "uint64"),
    "U32": _DType(32, "<u4", "uint32"),
    "U16": _DType(16, "<u2", "uint16"),
    "U8": _DType(8, "u1", "uint8"),
    "BOOL": _DType(8, "?", "bool"),
    "F8_E4M3": _DType(8, None, "float8_e4m3fn"),
    "F8_E4M3FNUZ": _DType(8, None, "float8_e4m3fnuz"),
    "F8_E5M2": _DType(8, None, "float8_e5m2"),
    "F8_E5M2FNUZ": _DType(8, None, "float8_e5m2fnuz"),
    "F8_E8M0": _DType(8, None, "float8_e8m0fnu"),
    "F6_E2M3": _DType(6, None, None),
    "F6_E3M2": _DType(6, None, None),
    "F4": _DType(4, None, "float4_e2m1fn_x2"),
    "C64": _DType(64, "<c8", "complex64"),
}

#: Every safetensors dtype with its bits per element: what a reader of any .safetensors file
#: (modelcrypt.safe_open) accepts.
SAFETENSORS_DTYPE_BITS: dict[str, int] = {name: d.bits for name, d in _TABLE.items()}

#: safetensors dtype name -> numpy dtype, as safetensors.numpy maps them (no bf16, fp8, fp6, fp4).
NUMPY_DTYPES: dict[str, np.dtype] = {name: np.dtype(d.numpy) for name, d in _TABLE.items() if d.numpy}

#: safetensors dtype name -> torch dtype attribute name, as safetensors.torch maps them (F6_* have none).
TORCH_DTYPE_NAMES: dict[str, str] = {name: d.torch for name, d in _TABLE.items() if d.torch}

# The dtypes load_checkpoint and save_checkpoint handle (the others load as raw bytes).
_CHECKPOINT_NAMES = ("F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8", "BOOL")

#: The checkpoint dtypes that numpy has no dtype for: load_checkpoint holds them as raw bits, unsigned
#: integers of the same width (BF16 as uint16), which torch reinterprets as their real dtype.
RAW_BITS_DTYPES: frozenset[str] = frozenset(name for name in _CHECKPOINT_NAMES if _TABLE[name].numpy is None)

#: safetensors dtype name -> the little-endian numpy dtype load_checkpoint returns (raw bits for
#: RAW_BITS_DTYPES), for the dtypes load_checkpoint and save_checkpoint handle.
CHECKPOINT_DTYPES: dict[str, np.dtype] = {
    name: NUMPY_DTYPES[name] if name not in RAW_BITS_DTYPES else np.dtype(f"<u{_TABLE[name].bits // 8}")
    for name in _CHECKPOINT_NAMES
}

#: numpy (kind, itemsize) -> checkpoint dtype name, for the arrays we are given to write.
NUMPY_TO_CHECKPOINT: dict[tuple[str, int], str] = {
    (NUMPY_DTYPES[name].kind, NUMPY_DTYPES[name].itemsize): name
    for name in _CHECKPOINT_NAMES if name not in RAW_BITS_DTYPES
}

#: torch dtype attribute name -> checkpoint dtype name, for the torch tensors we are given.
TORCH_TO_CHECKPOINT: dict[str, str] = {TORCH_DTYPE_NAMES[name]: name for name in _CHECKPOINT_NAMES}


def torch_dtype(name: str) -> Any:
    """The torch dtype of safetensors dtype ``name``, None when torch has none (F6_*, or one this
    torch version lacks). Imports torch: call it only where torch is needed anyway."""
    import torch

    attribute = TORCH_DTYPE_NAMES.get(name)
    return getattr(torch, attribute, None) if attribute is not None else None


def torch_dtype_of_raw_bits(name: str) -> Any:
    """For a tensor of safetensors dtype ``name`` that load_checkpoint returns as raw bits
    (RAW_BITS_DTYPES: BF16), the torch dtype to view those bits as; None for every other dtype (the
    array already has its dtype). Imports torch, as torch_dtype."""
    return torch_dtype(name) if name in RAW_BITS_DTYPES else None
