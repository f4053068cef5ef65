"""Tensors for modelcrypt.safe_open: the frameworks' views of decrypted bytes, and the bytes a slice needs.

``Framework`` turns the bytes of one tensor (or of the rows a slice needs) into a torch tensor or a
numpy array viewing them, with the dtype safetensors gives it; ``positions`` finds, for a basic
index (``[0:10]``, ``[:, 2:5]``, ``[3, ::2]``...), the positions it selects in every dimension
(_safe_gather turns them into the byte runs to read); ``narrow``, for any other index (lists,
masks: the framework indexes those), the smallest run of contiguous elements holding every element
it may select, and the index to apply to that run. A slice is first applied to a stand-in of
the tensor's shape that holds no data (stride 0), so a bad index raises the framework's own error
before anything is read.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from ._api import _shown
from .checkpoint._dtypes import NUMPY_DTYPES, TORCH_DTYPE_NAMES

__all__: list[str] = []


class Framework:
    """How tensors are returned: ``pt`` (torch tensors, moved to ``device``) or ``np`` (numpy arrays)."""

    name = ""

    def dtype(self, st_dtype: str) -> Any:
        raise NotImplementedError

    def storage_shape(self, st_dtype: str, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of the returned tensor (the header's, except for packed dtypes)."""
        return shape

    def view(self, buffer: Any, st_dtype: str, shape: tuple[int, ...]) -> Any:
        """A tensor of ``shape`` viewing all of ``buffer`` (no copy)."""
        raise NotImplementedError

    def stand_in(self, shape: tuple[int, ...]) -> Any:
        """A tensor of ``shape`` holding no data, to check an index on."""
        raise NotImplementedError

    def check_index(self, items: tuple[Any, ...], shape: tuple[int, ...]) -> None:
        """Refuse what this framework's safetensors slices refuse (before the stand-in is indexed)."""

    def index(self, view: Any, index: tuple[Any, ...]) -> Any:
        """``view[index]``, as safetensors returns it."""
        return view[index]

    def empty(self, st_dtype: str, shape: tuple[int, ...]) -> Any:
        raise NotImplementedError

    def raw_bytes(self, tensor: Any) -> np.ndarray:
        """The bytes of ``tensor`` (a contiguous CPU tensor of ``empty``) as a writable uint8 numpy array
        over its own memory."""
        raise NotImplementedError

    def finish(self, tensor: Any) -> Any:
        return tensor


class TorchFramework(Framework):
    name = "pt"

    def __init__(self, device: Any):
        try:
            import torch
        except ImportError:
            raise ModuleNotFoundError("framework=\"pt\" returns torch tensors: pip install 'modelcrypt[torch]' "
                                      "(or open with framework=\"np\")") from None
        self._torch = torch
        if not isinstance(device, (str, int, torch.device)) or isinstance(device, bool):
            raise TypeError(f"device must be a str, an int or a torch.device, not {type(device).__name__}")
        try:
            parsed = torch.device(device)
        except (RuntimeError, TypeError, ValueError):
            parsed = None  # (torch's message repeats the value: raised outside, with no context)
        if parsed is None:
            raise ValueError(f"device {_shown(device)} is not a torch device (\"cpu\", \"cuda:0\", 0...)")
        self.device = parsed

    def dtype(self, st_dtype: str) -> Any:
        dtype = getattr(self._torch, TORCH_DTYPE_NAMES.get(st_dtype, "-"), None)
        if dtype is None:
            raise TypeError(f"dtype {st_dtype} has no torch dtype (torch {self._torch.__version__}); safetensors "
                            "cannot load it either")
        return dtype

    def storage_shape(self, st_dtype: str, shape: tuple[int, ...]) -> tuple[int, ...]:
        if st_dtype == "F4":  # two values a byte: torch's float4_e2m1fn_x2 halves the last dimension
            if not shape or shape[-1] % 2:
                raise ValueError(f"an F4 (float4_e2m1fn_x2) tensor needs an even last dimension in torch, got "
                                 f"shape {list(shape)}")
            return shape[:-1] + (shape[-1] // 2,)
        return shape

    def view(self, buffer: Any, st_dtype: str, shape: tuple[int, ...]) -> Any:
        torch = self._torch
        dtype = self.dtype(st_dtype)
        if math.prod(shape) == 0:
            return torch.empty(shape, dtype=dtype)
        return torch.frombuffer(buffer, dtype=torch.uint8).view(dtype).view(shape)

    def stand_in(self, shape: tuple[int, ...]) -> Any:
        return self._torch.empty((), dtype=self._torch.uint8).expand(shape)

    def empty(self, st_dtype: str, shape: tuple[int, ...]) -> Any:
        return self._torch.empty(shape, dtype=self.dtype(st_dtype))

    def raw_bytes(self, tensor: Any) -> np.ndarray:
        return tensor.reshape(-1).view(self._torch.uint8).numpy()

    def finish(self, tensor: Any) -> Any:
        return tensor if self.device.type == "cpu" else tensor.to(self.device)


class NumpyFramework(Framework):
    name = "np"

    def dtype(self, st_dtype: str) -> Any:
        numpy_dtype = NUMPY_DTYPES.get(st_dtype)
        if numpy_dtype is not None:
            return numpy_dtype
        # As safetensors' numpy framework: BF16 is numpy's "bfloat16" once something (ml_dtypes, when
        # imported) has registered it; the others are numpy attributes named as torch names them, which
        # numpy does not have.
        found: Any = None
        if st_dtype == "BF16":
            try:
                found = np.dtype("bfloat16")
            except TypeError:
                pass
        elif st_dtype in TORCH_DTYPE_NAMES:
            found = getattr(np, TORCH_DTYPE_NAMES[st_dtype], None)
        if found is not None:
            return np.dtype(found)
        hint = " (import ml_dtypes first to get ml_dtypes.bfloat16 arrays)" if st_dtype == "BF16" else ""
        raise TypeError(f"dtype {st_dtype} has no numpy dtype; safetensors' numpy framework cannot load it "
                        f"either{hint}: open the file with framework=\"pt\"")

    def view(self, buffer: Any, st_dtype: str, shape: tuple[int, ...]) -> Any:
        dtype = self.dtype(st_dtype)
        if math.prod(shape) == 0:
            return np.empty(shape, dtype=dtype)
        return np.frombuffer(buffer, dtype=dtype).reshape(shape)

    def stand_in(self, shape: tuple[int, ...]) -> Any:
        return np.broadcast_to(np.zeros((), dtype=np.uint8), shape)

    def check_index(self, items: tuple[Any, ...], shape: tuple[int, ...]) -> None:
        # safetensors' numpy slices take ints, slices with a positive step inside the dimension and one
        # ellipsis. (Negative indices work here as in numpy; safetensors' numpy slices raise
        # OverflowError for negative slice bounds.)
        if sum(item is Ellipsis for item in items) > 1:
            raise IndexError("Only one ellipsis (...) is allowed in slice index")
        explicit = [item for item in items if item is not Ellipsis]
        if len(explicit) > len(shape):
            raise IndexError(f"too many indices: {len(explicit)} for a tensor of {len(shape)} dimension(s)")
        after = len(items) - 1 - items.index(Ellipsis) if Ellipsis in items else 0
        dims = list(range(len(explicit) - after)) + list(range(len(shape) - after, len(shape)))
        for position, (item, d) in enumerate(zip(explicit, dims)):
            if _as_int(item) is not None:
                continue
            if not isinstance(item, slice):
                raise TypeError(f"Unsupported slice index at position {position}: expected slice, int, or ellipsis "
                                f"(got {type(item).__name__})")
            step = _as_int(item.step) if item.step is not None else None
            if item.step is not None and (step is None or step <= 0):
                raise ValueError(f"Slice step must be a positive integer, got {item.step!r}")
            n = shape[d]
            start = _as_int(item.start) if item.start is not None else None
            stop = _as_int(item.stop) if item.stop is not None else None
            if start is not None and start != 0 and (start + n if start < 0 else start) >= n:
                raise IndexError(f"index {start} out of bounds for tensor dimension #{d} of size {n}")
            if stop is not None and (stop + n if stop < 0 else stop) > n:
                raise IndexError(f"index {stop} out of bounds for tensor dimension #{d} of size {n}")

    def index(self, view: Any, index: tuple[Any, ...]) -> Any:
        # numpy turns an index of ints only into a scalar; safetensors returns a 0-d array
        return view[index if Ellipsis in index else index + (Ellipsis,)]

    def empty(self, st_dtype: str, shape: tuple[int, ...]) -> Any:
        return np.empty(shape, dtype=self.dtype(st_dtype))

    def raw_bytes(self, tensor: Any) -> np.ndarray:
        return tensor.reshape(-1).view(np.uint8)


def framework(name: Any, device: Any) -> Framework:
    """The Framework of safe_open's ``framework`` and ``device`` arguments (checked; values shown only
    as _shown shows them: a key passed in the wrong place is never repeated)."""
    if not isinstance(name, str):
        raise TypeError(f"framework must be a str ('pt' or 'np'), not {type(name).__name__}")
    if name in ("pt", "torch", "pytorch"):
        return TorchFramework(device)
    if name in ("np", "numpy"):
        if not (device == "cpu" and isinstance(device, str)):
            raise ValueError(f"framework {name!r} returns numpy arrays, which live on the CPU: device must be "
                             f"'cpu', not {_shown(device)}")
        return NumpyFramework()
    raise ValueError(f"framework must be 'pt' (torch) or 'np' (numpy), not {_shown(name)}")


def _as_int(item: Any) -> Optional[int]:
    """``item`` as an index that selects one position (int, numpy integer, 0-d integer array or tensor)."""
    if isinstance(item, bool) or isinstance(item, np.bool_):
        return None
    if isinstance(item, (int, np.integer)):
        return int(item)
    dtype = getattr(item, "dtype", None)
    if getattr(item, "ndim", None) == 0 and dtype is not None and getattr(dtype, "is_floating_point", None) is False \
            and not getattr(dtype, "is_complex", False) and str(dtype) != "torch.bool":
        return int(item.item())  # a 0-d torch integer tensor
    if isinstance(item, np.ndarray) and item.ndim == 0 and item.dtype.kind in "iu":
        return int(item)
    return None


class Narrowed:
    """The elements a slice needs: ``count`` elements from element ``offset`` of the tensor, viewed as
    ``shape``, then indexed by ``index``; or ``empty``: the slice selects nothing."""

    __slots__ = ("offset", "count", "shape", "index", "empty")

    def __init__(self, offset: int, count: int, shape: tuple[int, ...], index: tuple[Any, ...], empty: bool = False):
        self.offset, self.count, self.shape, self.index, self.empty = offset, count, shape, index, empty


def narrow(shape: tuple[int, ...], items: tuple[Any, ...]) -> Narrowed:
    """The run of a C-contiguous tensor of ``shape`` that ``items`` (an index already checked on a
    stand-in) needs: leading integer indices fix positions, and the first dimension taking a slice
    contributes the rows from its first to its last selected one; every later dimension is read whole."""
    ndim = len(shape)
    if math.prod(shape) == 0:
        return Narrowed(0, 0, shape, items, empty=True)
    strides = [math.prod(shape[k + 1:]) for k in range(ndim)]
    fixed: list[int] = []
    index: list[Any] = []
    rows: Optional[tuple[int, int]] = None
    rest: tuple[Any, ...] = ()
    for position, item in enumerate(items):
        if item is None:
            index.append(None)
            continue
        d = len(fixed)
        i = _as_int(item) if d < ndim else None
        if i is not None:
            fixed.append(i + shape[d] if i < 0 else i)
            index.append(0)
            continue
        if isinstance(item, slice) and d < ndim:
            start, stop, step = item.indices(shape[d])
            selected = range(start, stop, step)
            if not selected:
                return Narrowed(0, 0, shape, items, empty=True)
            lo, hi = min(selected[0], selected[-1]), max(selected[0], selected[-1]) + 1
            rows = (lo, hi)
            index.append(slice(selected[0] - lo, None if step < 0 else hi - lo, step))
            rest = items[position + 1:]
            break
        rest = items[position:]  # an ellipsis, an array index...: this dimension and the later ones whole
        break
    d = len(fixed)
    offset = sum(f * s for f, s in zip(fixed, strides))
    if d == ndim:
        return Narrowed(offset, 1, (1,) * ndim, tuple(index) + rest)
    lo, hi = rows if rows is not None else (0, shape[d])
    return Narrowed(offset + lo * strides[d], (hi - lo) * strides[d], (1,) * d + (hi - lo,) + shape[d + 1:],
                    tuple(index) + rest)


def positions(shape: tuple[int, ...], items: tuple[Any, ...]) -> Optional[list[tuple[int, int, int]]]:
    """The positions a basic index (ints, slices, ``...``, ``None``; already checked on a stand-in)
    selects in each dimension of a tensor of ``shape``: (first, count, step > 0), ints as one position;
    None for any other index (arrays, lists, masks, negative steps: ``narrow`` and the framework's
    own indexing take those) or one that selects nothing."""
    ndim = len(shape)
    if sum(item is Ellipsis for item in items) > 1:
        return None
    explicit = [item for item in items if item is not None and item is not Ellipsis]
    if len(explicit) > ndim:
        return None
    per_dim: list[Any] = []
    for item in items:
        if item is Ellipsis:
            per_dim += [slice(None)] * (ndim - len(explicit))
        elif item is not None:
            per_dim.append(item)
    per_dim += [slice(None)] * (ndim - len(per_dim))
    out = []
    for item, z in zip(per_dim, shape):
        i = _as_int(item)
        if i is not None:
            out.append((i + z if i < 0 else i, 1, 1))
            continue
        if not isinstance(item, slice):
            return None
        r = range(*item.indices(z))
        if r.step < 0 or not r:
            return None
        out.append((r.start, len(r), r.step if len(r) > 1 else 1))
    return out
