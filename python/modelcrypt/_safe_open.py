"""``modelcrypt.safe_open``: ``safetensors.safe_open`` over encrypted checkpoints, decrypting per call.

Opening reads and authenticates the modelcrypt header and reads the safetensors JSON header by
range (the chunks holding it); ``get_tensor`` then reads and decrypts only that tensor's chunks and
``get_slice(name)[...]`` only the chunks holding bytes the slice selects (_safe_gather: a column
slice ``[:, 2:5]`` of wide rows skips the chunks between its columns). A sharded checkpoint opens
through its ``*.index.json``: every shard's header is authenticated and the shards are checked as
one set (as load_distributed_checkpoint checks them) before any tensor is read. Tensors and slices
that are one contiguous range are views of modelcrypt-owned buffers that are wiped when the last
view is freed; other slices are gathered into memory the returned tensor owns (the decrypted
spans they come from are wiped as soon as they are copied).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from typing import Any, Optional

from . import _sets, _sources
from ._api import Credential, StrPath, _fspath, _reader_key, _shown
from ._random_access import open_encrypted
from ._safe_gather import gather, plan as _gather_plan
from ._safe_slices import Framework, framework as _framework, narrow
from .checkpoint._arguments import _check_dec
from .checkpoint._dtypes import SAFETENSORS_DTYPE_BITS
from .checkpoint._layout import _Entry
from .checkpoint._one_file import _Checkpoint
from .checkpoint._other_formats import _MindSporePlaintext
from .checkpoint._remote_shards import _read_index_url, is_index_url
from .checkpoint._shards import _parse_index, _read_index, check_shard_holds
from .exceptions import FormatError

__all__ = ["safe_open"]  # (SafeOpen and TensorSlice: the types it returns, made by it only)


class _File:
    """One checkpoint file opened for safe_open: its parsed header and its byte ranges."""

    def __init__(self, ckpt: _Checkpoint, owned: Any = None):
        self.ckpt, self._owned = ckpt, owned  # owned: the EncryptedFile of a URL or file object
        try:
            self.entries, self.start = ckpt.header(dtype_bits=SAFETENSORS_DTYPE_BITS, none_without_metadata=True)
        except _MindSporePlaintext:
            raise FormatError(f"{ckpt.where} holds a MindSpore checkpoint, not a safetensors file: load it with "
                              "modelcrypt.load_checkpoint") from None
        self.metadata: Optional[dict[str, str]] = ckpt.header_metadata
        # a plaintext file's ranges are views of its map, read at no cost: slices take one span
        self.chunk: int = ckpt.chunk_size or 1 << 62

    def read(self, e: _Entry, offset: int, length: int) -> Any:
        """``length`` bytes from byte ``offset`` of tensor ``e``'s data (a modelcrypt-owned buffer)."""
        return self.ckpt.read_range(self.start + e.begin + offset, length)

    def expect(self, e: _Entry, spans: list[tuple[int, int]]) -> None:
        """Announces the ranges (offset, length) of tensor ``e``'s data that ``read`` will be asked for next."""
        self.ckpt.expect_ranges([(self.start + e.begin + offset, length) for offset, length in spans])

    def close(self) -> None:
        self.ckpt.close()
        if self._owned is not None:
            self._owned.close()


class SafeOpen:
    """A checkpoint opened by :func:`safe_open` (the shape of ``safetensors.safe_open``)."""

    def __init__(self, files: list[_File], framework: Framework, where: str):
        self._files: Optional[list[_File]] = files
        self._framework = framework
        self._where = where
        self._tensors: dict[str, tuple[_File, _Entry]] = {}
        for f in files:
            for name, e in sorted(f.entries.items(), key=lambda item: item[1].begin):
                if name in self._tensors:  # (not quoted: names come out of encrypted headers)
                    raise FormatError(f"{where}: a tensor appears in more than one shard")
                self._tensors[name] = (f, e)
        self._metadata = files[0].metadata if files else None

    # -- what the file holds
    def keys(self) -> list[str]:
        """The tensors' names, sorted (as safetensors returns them)."""
        self._open()
        return sorted(self._tensors)

    def offset_keys(self) -> list[str]:
        """The tensors' names in the order of their data in the file (shard by shard, as the index lists them)."""
        self._open()
        return list(self._tensors)

    def metadata(self) -> Optional[dict[str, str]]:
        """The safetensors ``__metadata__`` (None when the header has none); of a sharded checkpoint,
        its first shard's (save_checkpoint writes the same to every shard)."""
        self._open()
        return None if self._metadata is None else dict(self._metadata)

    # -- tensors
    def get_tensor(self, name: str) -> Any:
        """The whole tensor ``name``: only its chunks are read and decrypted."""
        f, e = self._entry(name)
        fw = self._framework
        shape = fw.storage_shape(e.st_dtype, e.shape)
        fw.dtype(e.st_dtype)  # refuse a dtype the framework lacks before reading
        if e.end == e.begin:
            return fw.finish(fw.empty(e.st_dtype, shape))
        return fw.finish(fw.view(f.read(e, 0, e.end - e.begin), e.st_dtype, shape))

    def get_slice(self, name: str) -> "TensorSlice":
        """A lazy slice of tensor ``name``: ``get_slice(name)[0:10]`` reads only the chunks holding what it selects."""
        self._entry(name)
        return TensorSlice(self, name)

    def get_tensors(self) -> dict[str, Any]:
        """Every tensor, in file order (``{name: get_tensor(name)}``)."""
        return {name: self.get_tensor(name) for name in self.offset_keys()}

    def _entry(self, name: Any) -> tuple[_File, _Entry]:
        self._open()
        if not isinstance(name, str):
            raise TypeError(f"tensor names are str, not {type(name).__name__}")
        try:
            return self._tensors[name]
        except KeyError:
            raise KeyError(f"{self._where} does not contain tensor {_shown(name, 200)}") from None

    def _slice(self, name: str, key: Any) -> Any:
        f, e = self._entry(name)
        fw = self._framework
        dtype = fw.dtype(e.st_dtype)
        if e.st_dtype == "F4":
            raise TypeError("slicing F4 (packed float4_e2m1fn_x2) tensors is not supported (safetensors cannot "
                            "either): use get_tensor")
        items = key if isinstance(key, tuple) else (key,)
        fw.check_index(items, e.shape)
        template = fw.stand_in(e.shape)[items]  # the framework's own errors for a bad index, nothing read
        shape = tuple(template.shape)
        if math.prod(shape) == 0 or math.prod(e.shape) == 0:
            return fw.finish(fw.empty(e.st_dtype, shape))
        size = dtype.itemsize
        runs = _gather_plan(e.shape, items, size)
        if runs is None:  # lists, masks...: the framework indexes the smallest run holding what they select
            part = narrow(e.shape, items)
            view = fw.view(f.read(e, part.offset * size, part.count * size), e.st_dtype, part.shape)
            return fw.finish(fw.index(view, part.index))
        if runs.n_runs == 1:  # one contiguous range: read alone, viewed
            return fw.finish(fw.view(f.read(e, runs.first, runs.run_bytes), e.st_dtype, runs.box).reshape(shape))
        out = fw.empty(e.st_dtype, runs.box)  # several runs: only the chunks holding them read, copied out
        gather(runs, fw.raw_bytes(out), lambda offset, length: f.read(e, offset, length), f.chunk,
               lambda spans: f.expect(e, spans))
        return fw.finish(out.reshape(shape))

    # -- lifetime
    @property
    def closed(self) -> bool:
        return self._files is None

    def _open(self) -> None:
        if self._files is None:
            raise ValueError(f"{self._where} is closed: safe_open's tensors are read inside its with block")

    def close(self) -> None:
        """Close the files (their derived keys wiped). Tensors already returned stay valid."""
        files, self._files = self._files, None
        for f in files or ():
            f.close()

    def __enter__(self) -> "SafeOpen":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self._tensors)} tensors"
        return f"<modelcrypt.SafeOpen {self._where} {self._framework.name} {state}>"


class TensorSlice:
    """``get_slice(name)``: index it (``[0:10]``, ``[:, 2:5]``, ``[..., 1]``) to read part of the tensor."""

    def __init__(self, owner: SafeOpen, name: str):
        self._owner, self._name = owner, name

    def get_shape(self) -> list[int]:
        """The tensor's shape as the header gives it."""
        return list(self._owner._entry(self._name)[1].shape)

    def get_dtype(self) -> str:
        """The tensor's safetensors dtype name (``"F32"``, ``"BF16"``, ``"F8_E4M3"``...)."""
        return self._owner._entry(self._name)[1].st_dtype

    def __getitem__(self, key: Any) -> Any:
        return self._owner._slice(self._name, key)

    def __repr__(self) -> str:
        return "<modelcrypt.TensorSlice>"


def safe_open(path: StrPath | Any, key: Optional[Credential] = None, framework: str = "pt", device: Any = "cpu", *,
              identity: Any = None, trusted_signers: Optional[Iterable[Any]] = None,
              storage_options: Optional[Mapping[str, Any]] = None) -> SafeOpen:
    """``safetensors.safe_open`` over a modelcrypt-encrypted ``.safetensors`` checkpoint.

    ``with modelcrypt.safe_open(path, key, framework="pt") as f``: ``f.keys()``, ``f.offset_keys()``,
    ``f.metadata()``, ``f.get_tensor(name)``, ``f.get_slice(name)[0:10]`` (``get_shape()``,
    ``get_dtype()``), ``f.get_tensors()``, returning what ``safetensors.safe_open`` returns for the
    decrypted file. Opening authenticates the file's header and reads the safetensors header; each
    call reads and decrypts only the chunks holding the bytes it returns (a slice ``[:, 2:5]`` of
    rows several chunks long: the chunks holding those columns; of rows shorter than a chunk, from
    its first needed byte to its last, in spans of at most 64 MiB). Tensors are views of
    modelcrypt-owned memory, wiped when freed.

    ``path``: an encrypted file (``encrypt_file`` of a ``.safetensors`` file, or ``save_checkpoint``),
    a plaintext ``.safetensors`` file without ``key`` (with one it is refused, as load_checkpoint
    refuses it), a sharded checkpoint's ``*.index.json`` (shards checked as a set first), or a URL
    (``storage_options`` as fsspec takes them; an index URL too) or seekable binary file object
    holding an encrypted file. ``framework``: ``"pt"`` (torch tensors of the file's dtype, bf16 and
    fp8/fp4 included; ``device`` where to put them) or ``"np"`` (numpy arrays; as in safetensors, bf16
    only once ml_dtypes is imported, fp8/fp4 never: TypeError). Slices follow safetensors: torch
    indexing for ``"pt"`` (errors are torch's own), ints, positive-step slices and one ellipsis for
    ``"np"`` (negative indices work here, where safetensors' numpy slices raise OverflowError).
    A slice that is one contiguous range of the tensor (``[0:10]``, ``[3, 1:4]``, ``[2, 5]``) is a view
    of its decrypted bytes; any other basic slice (``[:, 2:5]``, ``[::2]``, ``[..., 1]``) is a copy:
    gathered into one contiguous result the returned tensor or array owns (the same for ``"pt"`` and
    ``"np"``; safetensors' torch slices may instead be non-contiguous). Advanced torch indexing
    (lists, masks) makes torch's own copy. A plaintext file's contiguous tensors view its
    copy-on-write map.
    ``identity=`` (an Identity) in place of ``key``; ``trusted_signers`` as for load_checkpoint.

    Raises KeyMismatchError (wrong key), AuthenticationError (a chunk read was modified),
    FormatError (not a safetensors header), SetMismatchError (shards of different saves), KeyError
    (unknown tensor) and ValueError (used after close).
    """
    fw = _framework(framework, device)
    if trusted_signers is not None and key is None and identity is None:
        raise ValueError("trusted_signers needs key or identity=: a plaintext checkpoint carries no signature")
    credential = _reader_key(key, trusted_signers, "AES-GCM", identity)
    if credential is not None:
        credential, _ = _check_dec(credential, "AES-GCM")  # a key of the wrong type or length: said now
    if _sources.is_url(path) or _sources.is_file_object(path):
        if credential is None:
            raise ValueError("a checkpoint from a URL or file object must be encrypted: pass key (or identity=)")
        if is_index_url(path):
            return _open_index_url(path, credential, storage_options, fw)
        return _opened([lambda: _source_file(path, credential, storage_options)], fw, _place(path))
    if storage_options is not None:
        raise ValueError("storage_options apply to URLs (s3://..., https://...), not to a local path")
    target = os.fsdecode(_fspath(path, "path"))
    if target.endswith(".json"):
        return _open_index(target, credential, fw)
    where = f"checkpoint {target}"

    def one() -> _File:
        ckpt = _Checkpoint(target, credential, "AES-GCM")
        try:
            _sets.check_step(target, ckpt.metadata)
            return _File(ckpt)
        except BaseException:
            ckpt.close()
            raise

    return _opened([one], fw, where)


def _place(source: Any) -> str:
    if _sources.is_url(source):
        return f"checkpoint {_sources.shown_url(source)}"
    name = getattr(source, "name", None)
    return f"checkpoint {name}" if isinstance(name, str) else f"checkpoint <{type(source).__name__}>"


def _source_file(source: Any, credential: Any, storage_options: Optional[Mapping[str, Any]]) -> _File:
    handle = open_encrypted(source, credential, storage_options=storage_options)
    try:
        return _File(_Checkpoint.of_file(handle), handle)
    except BaseException:
        handle.close()
        raise


def _opened(openers: list[Any], fw: Framework, where: str, check: Any = None) -> SafeOpen:
    """SafeOpen of the files the ``openers`` open (``check(files)`` before any tensor is read); on any
    error every file opened so far is closed."""
    files: list[_File] = []
    try:
        for opener in openers:
            files.append(opener())
        if check is not None:
            check(files)
        return SafeOpen(files, fw, where)
    except BaseException:
        for f in files:
            f.close()
        raise


def _check_set(files: list[_File], shards: list[str], weight_map: dict[str, str], index_set: Optional[str],
               where: str, shown: list[str], show_names: bool) -> None:
    """The shards of an index checked as one set (_sets.check_shards), then each holding exactly the
    tensors the index maps to it."""
    _sets.check_shards({s: f.ckpt.metadata for s, f in zip(shards, files)}, expected_names=weight_map.values(),
                       weight_map=weight_map, index_set=index_set, where=where)
    for shard, f, place in zip(shards, files, shown):
        mapped = [n for n, s in weight_map.items() if s == shard]
        check_shard_holds(f.entries, shard, mapped, weight_map, place, where, show_names)


def _open_index(index_path: str, credential: Any, fw: Framework) -> SafeOpen:
    weight_map, index_set = _read_index(index_path)
    directory = os.path.dirname(os.path.abspath(index_path))
    shards = list(dict.fromkeys(weight_map.values()))
    paths = [os.path.join(directory, s) for s in shards]
    where = f"index {index_path}"

    def opener(shard_path: str) -> Any:
        def one() -> _File:
            ckpt = _Checkpoint(shard_path, credential, "AES-GCM")
            try:
                return _File(ckpt)
            except BaseException:
                ckpt.close()
                raise
        return one

    return _opened([opener(p) for p in paths], fw, where,
                   lambda files: _check_set(files, shards, weight_map, index_set, where, paths,
                                            show_names=credential is None))


def _open_index_url(url: str, credential: Any, storage_options: Optional[Mapping[str, Any]],
                    fw: Framework) -> SafeOpen:
    shown = _sources.shown_url(url)
    weight_map, index_set = _parse_index(_read_index_url(url, storage_options), shown)
    base = url.split("?", 1)[0].rsplit("/", 1)[0]
    shards = list(dict.fromkeys(weight_map.values()))
    where = f"index {shown}"
    return _opened([lambda s=s: _source_file(f"{base}/{s}", credential, storage_options) for s in shards], fw,
                   where, lambda files: _check_set(files, shards, weight_map, index_set, where, shards,
                                                   show_names=False))
