"""A DCP StorageReader over modelcrypt checkpoints written by ``save_checkpoint`` (one file, or shards
with a ``*.index.json``): ``dcp.load(state_dict, storage_reader=ModelcryptCheckpointReader(path, key))``
loads them into a sharded (DTensor / FSDP2) model, each rank decrypting only the rows it needs.

Each tensor is one DCP item (a single chunk at offset 0) whose bytes are its range in the
checkpoint's safetensors-layout plaintext; the tensor table comes from each shard's authenticated,
encrypted header. Shards bound into a set (save_checkpoint(max_shard_size=...)) must all carry the
index's set id.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any, Optional

import torch
from torch.distributed.checkpoint.filesystem import _StorageInfo
from torch.distributed.checkpoint.metadata import (
    ChunkStorageMetadata,
    Metadata,
    MetadataIndex,
    StorageMeta,
    TensorProperties,
    TensorStorageMetadata,
)

from .. import _sets
from .._random_access import open_encrypted
from ..exceptions import FormatError, SetMismatchError
from ._dtypes import CHECKPOINT_DTYPES, torch_dtype
from ._layout import _header_size, _parse_header
from ._shards import _read_index
from .dcp import EncryptedFileSystemReader, _index_key

__all__ = ["ModelcryptCheckpointReader"]

# the torch dtype of each dtype a checkpoint holds
_TORCH_DTYPES = {name: torch_dtype(name) for name in CHECKPOINT_DTYPES}


class ModelcryptCheckpointReader(EncryptedFileSystemReader):
    """``path``: a checkpoint file, or the ``*.index.json`` of a sharded checkpoint."""

    def __init__(self, path: Any, key: Any = None, *, identity: Any = None, trusted_signers: Any = None,
                 threads: Optional[int] = None) -> None:
        super().__init__(path, key, identity=identity, trusted_signers=trusted_signers, threads=threads)
        self._places: dict[str, dict[str, tuple[int, int]]] = {}
        self._handles: dict[str, Any] = {}  # the shards opened for the metadata, kept for reading their tensors

    def __repr__(self) -> str:
        return f"ModelcryptCheckpointReader({self.path!r})"

    def _shard_files(self) -> tuple[str, list[str], Any, Any]:
        """(directory, shard file names, the index's set id, its weight map); one file: no index."""
        if self.path.endswith(".json"):
            weight_map, set_id = _read_index(self.path)
            names = sorted(set(weight_map.values()))
            return os.path.dirname(self.path) or ".", names, set_id, weight_map
        return os.path.dirname(self.path) or ".", [os.path.basename(self.path)], None, None

    def _table(self, f: Any, where: str) -> dict[str, tuple[str, list[int], int, int]]:
        """name -> (safetensors dtype, shape, absolute start, length), from the authenticated header."""
        total = f.plaintext_length
        with f.read_range(0, min(total, f.chunk_size)) as b:  # the header, usually within chunk 0: read once
            first = bytes(b)
        n = _header_size(first[:8], total, where)
        raw = first[8:8 + n]
        if len(raw) < n:
            with f.read_range(8, n) as b:
                raw = bytes(b)
        entries, _ = _parse_header(raw, total - 8 - n, where)  # validated strictly (bounds, dtypes, overlaps)
        doc = json.loads(raw.decode("utf-8"))
        return {name: (doc[name]["dtype"], list(e.shape), 8 + n + e.begin, e.end - e.begin)
                for name, e in entries.items()}

    def reset(self, checkpoint_id: Any = None) -> None:
        self._close_handles()
        super().reset(checkpoint_id)

    def _close_handles(self) -> None:
        handles, self._handles = self._handles, {}
        for f in handles.values():
            f.close()

    def read_data(self, plan: Any, planner: Any) -> Any:
        try:
            return super().read_data(plan, planner)
        finally:
            self._close_handles()  # the shards this rank did not need

    def _read_metadata(self) -> Metadata:
        self._close_handles()
        try:
            return self._read_shard_headers()
        except BaseException:
            self._close_handles()
            raise

    def _read_shard_headers(self) -> Metadata:
        root, names, set_id, weight_map = self._shard_files()
        self.path_root = root
        sdm: dict[str, Any] = {}
        storage: dict[MetadataIndex, _StorageInfo] = {}
        self._files = {}
        tables, metas = {}, {}
        for name in names:
            path = os.path.join(root, name)
            if not os.path.isfile(path):
                raise SetMismatchError(f"checkpoint {self.path}: shard {name} is missing")
            f = open_encrypted(path, self._cred)
            self._handles[name] = f
            metas[name] = f.metadata
            tables[name] = self._table(f, f"checkpoint {path}")
            self._files[name] = [f.plaintext_length, f.file_length]
        if weight_map is not None:  # the shard set's rules, as load_distributed_checkpoint applies them
            _sets.check_shards(metas, expected_names=names, weight_map=weight_map, index_set=set_id,
                               where=f"checkpoint {self.path}")
        for name, table in tables.items():
            path = os.path.join(root, name)
            if weight_map is not None and sorted(table) != sorted(t for t, s in weight_map.items() if s == name):
                raise SetMismatchError(f"{path} does not hold the tensors the index {self.path} maps to it")
            places = {}
            for fqn, (st, shape, start, length) in table.items():
                if fqn in sdm:
                    raise FormatError(f"{self.path}: tensor {fqn!r} is in two shards")
                if st not in _TORCH_DTYPES:
                    raise FormatError(f"{path}: tensor {fqn!r} has dtype {st}, which DCP cannot load")
                offsets = torch.Size([0] * len(shape))
                sdm[fqn] = TensorStorageMetadata(properties=TensorProperties(dtype=_TORCH_DTYPES[st]),
                                                 size=torch.Size(shape),
                                                 chunks=[ChunkStorageMetadata(offsets=offsets,
                                                                              sizes=torch.Size(shape))])
                storage[MetadataIndex(fqn, offsets, 0)] = _StorageInfo(name, start, length)
                places[_index_key(fqn, offsets)] = (start, length)
            self._places[name] = places
        self._save_id = set_id or "unbound"
        self._metadata = Metadata(state_dict_metadata=sdm, storage_data=storage,
                                  storage_meta=StorageMeta(checkpoint_id=self.path, load_id=str(uuid.uuid4())))
        return self._metadata

    def _root(self) -> str:
        return self.path_root

    def _open_rank_file(self, name: str) -> Any:
        if name in self._handles:  # opened for the metadata: its header and table were read through this handle
            return self._handles.pop(name), self._places[name]
        path = os.path.join(self.path_root, name)
        if not os.path.isfile(path):
            raise SetMismatchError(f"{path}: a shard of the checkpoint {self.path} is missing")
        f = open_encrypted(path, self._cred)
        try:  # the ranges read through this handle are placed by the header read through this handle
            places = {_index_key(fqn, torch.Size([0] * len(shape))): (start, length)
                      for fqn, (_, shape, start, length) in self._table(f, f"checkpoint {path}").items()}
        except BaseException:
            f.close()
            raise
        if f.plaintext_length != self._files[name][0] or places != self._places[name]:
            f.close()
            raise SetMismatchError(f"{path} changed since its header was read")
        return f, places
