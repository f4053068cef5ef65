"""Slices of modelcrypt.safe_open that are not one contiguous run, gathered from the chunks they need.

A basic index (ints, positive-step slices, ``...``, ``None``) selects, in each dimension of a
row-major tensor, the positions ``lo, lo + step, ...`` (``n`` of them). Past the last dimension it
cuts, every dimension is whole; so the selected elements are equal byte runs: with a unit step in
that dimension one run per index of the dimensions before it (``[:, 2:5]`` of an ``(R, C)`` tensor:
``R`` runs of 3 elements), with a larger step one run per selected position of it too. The runs are
read in spans (_byte_runs: every encryption chunk holding no needed byte is skipped, spans stay at
or below 64 MiB; rows shorter than a chunk or very many runs: spans from the first needed byte to
the last, cut along the first dimension so that each stays at or below 64 MiB). Each span is one
range read (``read_range``: whole chunks decrypted and authenticated into a modelcrypt buffer) and
closed (wiped) as soon as its runs are copied into the result: one allocation of the slice's
shape, which the returned tensor owns. A slice that is one contiguous run is not gathered: safe_open
reads that range alone and returns a view of its decrypted buffer.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ._byte_runs import MAX_SPAN, group_spans, one_span
from ._safe_slices import positions

__all__: list[str] = []


class Gather:
    """The runs of a slice: ``n_runs`` runs of ``run_bytes`` bytes, the first at byte ``first`` of the
    tensor's data, the others ``stride`` bytes apart along each ``outer`` dimension ((count, stride),
    outermost first); gathered in order, they are the slice's elements in a tensor of ``box`` shape
    (the selected positions of every dimension, ints as dimensions of 1)."""

    __slots__ = ("first", "outer", "run_bytes", "box")

    def __init__(self, first: int, outer: list[tuple[int, int]], run_bytes: int, box: tuple[int, ...]):
        self.first, self.outer, self.run_bytes, self.box = first, outer, run_bytes, box

    @property
    def n_runs(self) -> int:
        return math.prod(n for n, _ in self.outer)


def plan(shape: tuple[int, ...], items: tuple[Any, ...], itemsize: int) -> Optional[Gather]:
    """The runs of ``items`` (a basic index selecting something) over a tensor of ``shape`` (elements
    of ``itemsize`` bytes); None for another index. One run (``n_runs == 1``): the slice is one
    contiguous range of the tensor."""
    dims = positions(shape, items)
    if dims is None:
        return None
    cut = [d for d, ((lo, n, step), z) in enumerate(zip(dims, shape)) if (lo, n, step) != (0, z, 1)]
    if not cut:
        return Gather(0, [], math.prod(shape) * itemsize, tuple(shape))  # the whole tensor
    k = cut[-1]
    strides = [math.prod(shape[d + 1:]) for d in range(len(shape))]
    first = sum(dims[d][0] * strides[d] for d in range(k + 1)) * itemsize
    if dims[k][2] == 1:
        outer_dims, run_elements = range(k), dims[k][1] * strides[k]
    else:
        outer_dims, run_elements = range(k + 1), strides[k]
    outer = [(dims[d][1], dims[d][2] * strides[d] * itemsize) for d in outer_dims]
    return Gather(first, outer, run_elements * itemsize, tuple(n for _, n, _ in dims))


def gather(g: Gather, out: np.ndarray, read: Callable[[int, int], Any], chunk: int,
           expect: Callable[[list[tuple[int, int]]], None]) -> None:
    """Fills ``out`` (the bytes of the result, a writable uint8 array of ``g.n_runs * g.run_bytes``)
    with the runs of ``g``: ``read(offset, length)`` returns a buffer (a DecryptedBuffer, or a view of
    a plaintext file's map) usable as a context manager, closed here once copied; ``expect(spans)``
    announces the spans first (a URL fetches their chunks in parallel). On any error ``out`` is
    zeroed (no partial plaintext is left in it)."""
    dst = out.reshape(g.n_runs, g.run_bytes)
    try:
        pitch = min(s for n, s in g.outer if n > 1)  # (some outer dimension selects several positions)
        if one_span(g.run_bytes, pitch, g.n_runs, chunk):
            _gather_pieces(g, dst, read, expect)
        else:
            _gather_spans(g, dst, read, chunk, expect)
    except BaseException:
        out.fill(0)
        raise


def _gather_spans(g: Gather, dst: np.ndarray, read: Callable[[int, int], Any], chunk: int,
                  expect: Callable[[list[tuple[int, int]]], None]) -> None:
    """Runs at least a chunk apart, at most MAX_RUNS of them: grouped into spans that skip the chunks
    between them holding no needed byte; one copy per run."""
    starts = np.full((), g.first, dtype=np.int64)
    for n, stride in g.outer:
        starts = np.add.outer(starts, np.arange(n, dtype=np.int64) * stride)
    spans = group_spans(starts.ravel().tolist(), g.run_bytes, chunk)
    rb = g.run_bytes
    expect([(s, runs[-1] + rb - s) for s, runs in spans])
    i = 0
    for s, runs in spans:
        with read(s, runs[-1] + rb - s) as buf:
            raw = np.frombuffer(buf, dtype=np.uint8)
            for r in runs:
                dst[i] = raw[r - s:r - s + rb]
                i += 1
            del raw  # the view of the buffer is gone before the buffer is closed (wiped)


def _gather_pieces(g: Gather, dst: np.ndarray, read: Callable[[int, int], Any],
                   expect: Callable[[list[tuple[int, int]]], None]) -> None:
    """Runs of short rows or very many runs: from the first needed byte to the last, in pieces along
    the first outer dimension that stay at or below MAX_SPAN bytes (one position at least), each
    copied out through a strided view."""
    (n0, s0), rest = g.outer[0], g.outer[1:]
    extent = sum((n - 1) * s for n, s in rest) + g.run_bytes  # the bytes one position of dimension 0 spans
    per = max(1, (MAX_SPAN - extent) // s0 + 1)
    pieces = [(j, min(n0, j + per)) for j in range(0, n0, per)]
    spans = [(g.first + j0 * s0, (j1 - 1 - j0) * s0 + extent) for j0, j1 in pieces]
    expect(spans)
    inner = g.n_runs // n0
    for (j0, j1), (offset, length) in zip(pieces, spans):
        shape = (j1 - j0,) + tuple(n for n, _ in rest) + (g.run_bytes,)
        with read(offset, length) as buf:
            raw = np.frombuffer(buf, dtype=np.uint8)
            src = as_strided(raw, shape=shape, strides=(s0,) + tuple(s for _, s in rest) + (1,), writeable=False)
            np.copyto(dst[j0 * inner:j1 * inner].reshape(shape), src)
            del raw, src  # the views of the buffer are gone before the buffer is closed (wiped)
