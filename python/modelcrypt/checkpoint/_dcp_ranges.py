"""Reading the part of a stored DCP chunk that a load request needs, and nothing more.

A stored chunk is a row-major block of ``sizes`` elements at byte ``start`` of a rank file's
plaintext. A request wants the sub-block ``lens`` at ``offs`` inside it:

* a row cut (every dimension but the first whole) is one contiguous range, decrypted straight into
  the destination tensor when it has the stored dtype and layout (no buffer, no copy);
* any other cut (a column cut of tensor parallelism, ``Shard(1)``) is a set of equal runs, one per
  index of the dimensions before the last cut one. Runs are read in spans: neighbouring runs share a
  span unless a whole encryption chunk lies between them (that chunk is then never read), and a span
  stays below ``MAX_SPAN`` bytes. Runs of short rows (gaps under one encryption chunk: every chunk
  holds a needed byte anyway) or very many runs are read as one span from the first needed byte to
  the last. The grouping is modelcrypt._byte_runs, shared with modelcrypt.safe_open's slices.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import torch

from .._byte_runs import group_spans, one_span  # (shared with modelcrypt.safe_open's slices)

__all__ = ["read_sub_block"]


def _writable_bytes(target: torch.Tensor, dtype: torch.dtype, shape: list[int]) -> Any:
    """The bytes of ``target`` as a writable numpy array over its own memory, when the stored bytes
    can be decrypted into it as they are (a contiguous CPU tensor of the stored dtype and shape);
    else None (the caller decrypts into a buffer and copies)."""
    if (target.device.type != "cpu" or target.dtype != dtype or list(target.size()) != shape
            or not target.is_contiguous() or target.numel() == 0):
        return None
    try:
        return target.reshape(-1).view(torch.uint8).numpy()
    except (RuntimeError, TypeError):  # e.g. a tensor subclass or layout numpy cannot share
        return None


def read_sub_block(f: Any, start: int, sizes: list[int], offs: list[int], lens: list[int], dtype: torch.dtype,
                   target: torch.Tensor, threads: Any) -> None:
    """Reads sub-block ``lens`` at ``offs`` of the stored chunk (``sizes``, at plaintext byte ``start``
    of ``f``, an open EncryptedFile) into ``target``; the caller has checked the bounds."""
    itemsize = dtype.itemsize
    if not sizes:  # a scalar
        _read_contiguous(f, start, itemsize, [], dtype, target, threads)
        return
    strides = [math.prod(sizes[d + 1:]) for d in range(len(sizes))]  # in elements
    cut = [d for d in range(len(sizes)) if offs[d] != 0 or lens[d] != sizes[d]]
    if not cut or cut == [0]:  # whole chunk, or rows only: one contiguous range
        _read_contiguous(f, start + offs[0] * strides[0] * itemsize, math.prod(lens) * itemsize, list(lens), dtype,
                         target, threads)
        return
    if math.prod(lens) == 0:
        return
    k = cut[-1]
    run_bytes = lens[k] * strides[k] * itemsize
    outer = [range(offs[d], offs[d] + lens[d]) for d in range(k)]
    n_runs = math.prod(len(r) for r in outer)
    pitch = min((strides[d] * itemsize for d in range(k) if lens[d] > 1), default=run_bytes + f.chunk_size)
    if one_span(run_bytes, pitch, n_runs, f.chunk_size):
        _read_one_span(f, start, strides, offs, lens, dtype, target, threads)
        return
    base = start + offs[k] * strides[k] * itemsize
    index_of = {}
    starts = []
    for idx in itertools.product(*outer):
        s = base + sum(i * strides[d] for d, i in enumerate(idx)) * itemsize
        index_of[s] = tuple(i - offs[d] for d, i in enumerate(idx))
        starts.append(s)
    for span_start, runs in group_spans(starts, run_bytes, f.chunk_size):
        with f.read_range(span_start, runs[-1] + run_bytes - span_start, threads=threads) as buf:
            raw = torch.frombuffer(buf, dtype=torch.uint8)
            for s in runs:
                src = raw[s - span_start:s - span_start + run_bytes].view(dtype).reshape(lens[k:])
                target[index_of[s]].copy_(src)
            del raw, src  # the views of the decrypted buffer are gone before the buffer is wiped


def _read_contiguous(f: Any, start: int, length: int, shape: list[int], dtype: torch.dtype, target: torch.Tensor,
                     threads: Any) -> None:
    if not length:
        return
    out = _writable_bytes(target, dtype, shape)
    if out is not None:  # decrypted straight into the destination tensor: no buffer, no copy
        f.read_range_into(start, out, threads=threads)
        return
    with f.read_range(start, length, threads=threads) as buf:
        src = torch.frombuffer(buf, dtype=torch.uint8).view(dtype).reshape(shape)
        target.copy_(src)
        del src


def _read_one_span(f: Any, start: int, strides: list[int], offs: list[int], lens: list[int], dtype: torch.dtype,
                   target: torch.Tensor, threads: Any) -> None:
    """From the first needed element to the last, viewed with the stored strides."""
    first = sum(o * s for o, s in zip(offs, strides))
    last = sum((o + n - 1) * s for o, n, s in zip(offs, lens, strides))
    itemsize = dtype.itemsize
    with f.read_range(start + first * itemsize, (last - first + 1) * itemsize, threads=threads) as buf:
        src = torch.frombuffer(buf, dtype=torch.uint8).view(dtype).as_strided(lens, strides)
        target.copy_(src)
        del src
