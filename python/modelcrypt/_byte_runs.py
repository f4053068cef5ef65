"""Grouping the byte runs of a strided read into spans that skip the encryption chunks it does not need.

A cut of a row-major block (a column cut ``[:, 2:5]``, tensor parallelism's ``Shard(1)``) needs a
set of equal runs of bytes at ascending offsets. Reading each run alone would decrypt the chunks
two neighbouring runs share twice; reading from the first needed byte to the last decrypts chunks
holding no needed byte. The runs are therefore read in spans: neighbouring runs share a span unless
a whole encryption chunk lies between them (that chunk is then never read), and a span stays at or
below ``MAX_SPAN`` bytes. Runs whose gaps are shorter than a chunk (rows shorter than a chunk:
every chunk between two runs holds a needed byte anyway) or more than ``MAX_RUNS`` of them (a Python
step per run would cost more than it saves) are read from the first needed byte to the last
(``one_span``).

Used by modelcrypt.safe_open's slices (_safe_gather) and by Distributed Checkpoint loads
(checkpoint/_dcp_ranges). Plain integer arithmetic: no framework is imported here.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__: list[str] = []

MAX_SPAN = 64 << 20  # the most decrypted bytes held at once for one span (beyond the destination)
MAX_RUNS = 1 << 16  # beyond this many runs, one span


def one_span(run_bytes: int, pitch: int, n_runs: int, chunk: int) -> bool:
    """Whether ``n_runs`` runs of ``run_bytes``, neighbours starting ``pitch`` bytes apart at the
    closest (a row's length), in encryption chunks of ``chunk`` bytes, are read from the first needed
    byte to the last rather than grouped by ``group_spans``: no whole chunk fits between two
    neighbours, or there are too many runs."""
    return pitch - run_bytes < chunk or n_runs > MAX_RUNS


def group_spans(run_starts: Iterable[int], run_bytes: int, chunk: int) -> list[tuple[int, list[int]]]:
    """Groups ascending runs (their start offsets, each ``run_bytes`` long) into spans
    ``[(span start, [run starts])]``: a new span begins where a whole encryption chunk of ``chunk``
    bytes lies between two runs, or where the span would pass MAX_SPAN bytes. A span's length is
    its last run's start + ``run_bytes`` - its start."""
    spans: list[tuple[int, list[int]]] = []
    end = 0
    for s in run_starts:
        if spans and s // chunk <= (end - 1) // chunk + 1 and s + run_bytes - spans[-1][0] <= MAX_SPAN:
            spans[-1][1].append(s)
        else:
            spans.append((s, [s]))
        end = s + run_bytes
    return spans
