"""``load_checkpoint_into``: a checkpoint's tensors decrypted straight into arrays the caller owns.

The header is read (by random access) and every destination checked against it first: names,
dtypes, shapes, writability and contiguity. Only then are the tensors' byte ranges decrypted, all
of one file in one pass, each straight into its array (modelcrypt.load_into's machinery: bounded
batches of ciphertext, chunks authenticated in scratch memory before they are copied out). So
loading into an instantiated model needs no second copy of the weights.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, NamedTuple, Optional

import numpy as np

from .. import _sets
from .._api import StrPath, _check_bool, _check_threads, _fspath, _reader_key
from .._load_into import _is_torch_tensor, numpy_bytes, torch_bytes
from ..exceptions import FormatError
from ._arguments import _missing
from ._dtypes import CHECKPOINT_DTYPES, NUMPY_TO_CHECKPOINT, TORCH_TO_CHECKPOINT
from ._layout import _Entry
from ._one_file import _Checkpoint
from ._other_formats import _MindSporePlaintext
from ._shards import _read_index

__all__ = ["IncompatibleKeys", "load_checkpoint_into"]


class IncompatibleKeys(NamedTuple):
    """What load_checkpoint_into could not match (as torch's ``load_state_dict`` returns it)."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class _Destination:
    """One array to load into: the safetensors dtypes it accepts, its shape and its bytes."""

    __slots__ = ("name", "dtypes", "shown_dtype", "shape", "bytes", "address")

    def __init__(self, name: str, value: Any):
        where = f"arrays[{name!r}]"
        if _is_torch_tensor(value):
            st = TORCH_TO_CHECKPOINT.get(str(value.dtype).replace("torch.", ""))
            shown = str(value.dtype)
            self.bytes = torch_bytes(value, where)
        elif isinstance(value, np.ndarray):
            shown = str(value.dtype)
            if value.dtype.name == "bfloat16":  # ml_dtypes
                st = "BF16"
            elif value.dtype.byteorder == ">":
                raise ValueError(f"{where} has the big-endian dtype {value.dtype}; checkpoints are little-endian")
            else:
                st = NUMPY_TO_CHECKPOINT.get((value.dtype.kind, value.dtype.itemsize))
            self.bytes = numpy_bytes(value, where)
        else:
            raise TypeError(f"{where} must be a numpy array or a torch tensor, not {type(value).__name__}")
        if st is None:
            supported = ", ".join(CHECKPOINT_DTYPES)
            raise TypeError(f"{where} has dtype {shown}, which no safetensors dtype matches ({supported})")
        # load_checkpoint returns BF16 as raw uint16 bits: such arrays load BF16 tensors too
        self.dtypes = {st, "BF16"} if st == "U16" else {st}
        self.name, self.shown_dtype = name, shown
        self.shape = tuple(int(d) for d in value.shape)
        self.address = self.bytes.__array_interface__["data"][0] if self.bytes.nbytes else 0

    def check(self, e: _Entry, dtype_name: str) -> None:
        if dtype_name not in self.dtypes or self.shape != e.shape:
            raise ValueError(f"tensor {self.name!r} is {dtype_name} of shape {list(e.shape)} in the checkpoint but "
                             f"the array to load it into is {self.shown_dtype} of shape {list(self.shape)}")


def _destinations(arrays: Any) -> tuple[dict[str, _Destination], dict[str, list[str]]]:
    """The checked destinations, and the groups of names whose arrays are the same memory (tied
    weights: loaded once), keyed by their first name. Partly overlapping arrays are a ValueError."""
    if not isinstance(arrays, Mapping):
        raise TypeError(f"arrays must be a mapping of names to arrays (e.g. a state_dict), not {type(arrays).__name__}")
    dests: dict[str, _Destination] = {}
    for name, value in arrays.items():
        if not isinstance(name, str):
            raise TypeError(f"the names in arrays must be str, not {type(name).__name__}")
        dests[name] = _Destination(name, value)
    groups: dict[tuple[int, int], list[str]] = {}
    for d in dests.values():
        if d.bytes.nbytes:
            groups.setdefault((d.address, d.bytes.nbytes), []).append(d.name)
        else:
            groups[(id(d), -1)] = [d.name]
    spans = sorted((addr, n, names[0]) for (addr, n), names in groups.items() if n > 0)
    for (a, n, first), (b, _, second) in zip(spans, spans[1:]):
        if b < a + n:
            raise ValueError(f"arrays[{first!r}] and arrays[{second!r}] partly share memory; each tensor needs its "
                             "own (tied weights, fully shared, are fine)")
    return dests, {names[0]: names for names in groups.values()}


class _Found(NamedTuple):
    """A tensor of the checkpoint: its header entry, where its file's data starts, which file."""

    entry: _Entry
    start: int
    file_key: str


def _plan(dests: dict[str, _Destination], groups: dict[str, list[str]], found: dict[str, _Found]
          ) -> tuple[list[tuple[_Found, _Destination]], list[str], list[str]]:
    """(what to load into what), missing names, unexpected names; every dtype and shape checked."""
    loads: list[tuple[_Found, _Destination]] = []
    missing: list[str] = []
    consumed: set[str] = set()
    for names in groups.values():
        present = [n for n in names if n in found]
        for n in present:
            dests[n].check(found[n].entry, found[n].entry.st_dtype)
        consumed.update(present)
        if present:
            loads.append((found[present[0]], dests[present[0]]))  # tied weights: their memory once
        else:
            missing.extend(names)
    unexpected = [n for n in found if n not in consumed]
    return loads, missing, unexpected


def _entries_of(ckpt: _Checkpoint, file_key: str) -> dict[str, _Found]:
    try:
        entries, start = ckpt.header()
    except _MindSporePlaintext:
        raise FormatError(f"{ckpt.where} holds a MindSpore checkpoint, not the safetensors layout "
                          "load_checkpoint_into reads; use load_checkpoint") from None
    return {name: _Found(e, start, file_key) for name, e in entries.items()}


def _read(ckpt: _Checkpoint, spans: list[tuple[int, np.ndarray]], threads: int) -> None:
    """Every span (plaintext offset, destination bytes) of one checkpoint file, in one pass."""
    spans = [(o, b) for o, b in spans if b.nbytes]
    if ckpt.kind == "plain":
        with open(ckpt.path, "rb") as f:
            for offset, dst in sorted(spans, key=lambda s: s[0]):
                f.seek(offset)
                # (numpy's type hints give ndarray the buffer protocol only for Python >= 3.12)
                if f.readinto(memoryview(dst)) != dst.nbytes:  # type: ignore[arg-type]
                    raise FormatError(f"{ckpt.where}: truncated data")
        return
    file = ckpt._file
    assert file is not None
    handle = file._handle
    if hasattr(handle, "read_spans_into"):  # a local file: one pass over the chunks
        handle.read_spans_into(spans, threads)
        return
    file._expect_spans([(o, b.nbytes) for o, b in spans])  # a URL or file object: range by range
    try:
        for offset, dst in spans:
            file.read_range_into(offset, dst, threads=threads or None)
    except BaseException:
        for _, dst in spans:
            dst[...] = 0
        raise


def _is_index(target: str) -> bool:
    if not target.endswith(".json"):
        return False
    try:
        with open(target, "rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return False
    return head.lstrip()[:1] == b"{" and b'"weight_map"' in head


def load_checkpoint_into(
    arrays: Mapping[str, Any],
    path: StrPath,
    key: Any = None,
    *,
    strict: bool = True,
    identity: Any = None,
    trusted_signers: Optional[list] = None,
    threads: Optional[int] = None,
) -> IncompatibleKeys:
    """Decrypt a checkpoint written by save_checkpoint straight into the arrays of ``arrays``.

    ``arrays`` maps tensor names to writable, C-contiguous numpy arrays or CPU torch tensors (e.g. a
    model's ``state_dict()``); each tensor of the checkpoint is decrypted directly into the array of
    its name, with no second copy of the weights (a few MiB of working memory whatever the size).
    ``path`` is one checkpoint file or the ``*.index.json`` of a sharded one (save_checkpoint with
    ``max_shard_size``; its shards are checked as a set, as load_distributed_checkpoint does).
    A plaintext ``.safetensors`` file loads without a key.

    Checked before anything is decrypted: every name's dtype and shape against the checkpoint
    header (ValueError naming the tensor; a uint16 array takes a BF16 tensor's raw bits, as
    load_checkpoint returns them), read-only arrays (TypeError), non-contiguous ones (ValueError:
    decrypt into a contiguous array and copy), arrays that partly share memory (ValueError). Arrays
    that are exactly the same memory (tied weights) are one destination: loaded once, from the
    first of their names the checkpoint holds, and none of them is missing then.
    With ``strict`` (the default) a name of ``arrays`` the checkpoint lacks is a KeyError naming it,
    a tensor of the checkpoint that ``arrays`` lacks a ValueError (counted, not named: the names
    are part of the encrypted checkpoint); without, those are skipped and returned.

    Returns ``IncompatibleKeys(missing_keys, unexpected_keys)``. Errors as for load_into; on any
    error during decryption every array already written is zeroed (no partial plaintext is left).
    """
    _check_bool(strict, "strict")
    _check_threads(threads)
    target = os.fsdecode(_fspath(path, "path"))
    if trusted_signers is not None and key is None and identity is None:
        raise ValueError("trusted_signers needs key or identity=: a plaintext checkpoint carries no signature")
    credential = _reader_key(key, trusted_signers, "AES-GCM", identity)
    dests, groups = _destinations(arrays)
    opened: dict[str, _Checkpoint] = {}
    try:
        found: dict[str, _Found] = {}
        if _is_index(target):
            weight_map, index_set = _read_index(target)
            directory = os.path.dirname(os.path.abspath(target))
            for shard in dict.fromkeys(weight_map.values()):
                opened[shard] = _Checkpoint(os.path.join(directory, shard), credential, "AES-GCM")
            _sets.check_shards({name: ck.metadata for name, ck in opened.items()}, expected_names=weight_map.values(),
                               weight_map=weight_map, index_set=index_set, where=f"index {target}")
            for shard, ckpt in opened.items():
                here = _entries_of(ckpt, shard)
                stray = [n for n in here if weight_map.get(n) != shard]
                absent = [n for n, s in weight_map.items() if s == shard and n not in here]
                if stray or absent:
                    raise FormatError(f"index {target}: shard {shard} does not hold the tensors the index maps to it")
                found.update(here)  # (no name twice: each maps to one shard)
        else:
            opened[target] = _Checkpoint(target, credential, "AES-GCM")
            _sets.check_step(target, opened[target].metadata)
            found = _entries_of(opened[target], target)
        loads, missing, unexpected = _plan(dests, groups, found)
        if strict and missing:
            raise _missing(missing, f"checkpoint {target}")
        if strict and unexpected:
            raise ValueError(f"checkpoint {target} holds {len(unexpected)} tensor(s) that arrays has no entry for "
                             "(strict=False skips them and returns their names)")
        done: list[np.ndarray] = []
        try:
            for file_key, ckpt in opened.items():
                spans = [(f.start + f.entry.begin, d.bytes) for f, d in loads if f.file_key == file_key]
                _read(ckpt, spans, _check_threads(threads))
                done.extend(b for _, b in spans)
        except BaseException:
            for b in done:  # earlier shards: authenticated, but the load as a whole failed
                b[...] = 0
            raise
    finally:
        for ckpt in opened.values():
            ckpt.close()
    return IncompatibleKeys(missing, unexpected)
