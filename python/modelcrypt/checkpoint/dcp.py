"""Encrypted PyTorch Distributed Checkpoint (DCP) storage: every rank writes its own modelcrypt file.

``dcp.save(state_dict, storage_writer=EncryptedFileSystemWriter(path, key))`` and
``dcp.load(state_dict, storage_reader=EncryptedFileSystemReader(path, key))``, also
``dcp.async_save`` and resharding loads (saved by N ranks, loaded by M). On disk, in ``path``:

* ``__{rank}_{save}.distcp.mcx``: one modelcrypt file per rank and save. Its plaintext is an
  item table (JSON: each stored item's tensor name, chunk offset and byte range) followed by the
  items' raw bytes (tensors) or DCP's serialized objects; its authenticated header metadata binds
  it to the save (``modelcrypt.set`` = the save id) and to its own name (``modelcrypt.member``).
* ``.metadata``: DCP's Metadata as JSON (never pickle), encrypted and authenticated, written last
  and atomically by the coordinator; it names the save id and every rank file with its plaintext
  length. Tensor names and shapes appear nowhere in plaintext.

A reader opens each rank file it needs, checks that it belongs to this save, has its recorded
length and lists each requested item at the place ``.metadata`` gives, and then decrypts only the
byte ranges it needs (random access; a row range of a row-sharded tensor costs its rows, a column cut
the encryption chunks holding its columns: see _dcp_ranges). Items
cannot be swapped between tensors, ranks or saves, and a file from elsewhere is a
``SetMismatchError``. Rank files of a save have unique names, so a save that dies part-way leaves
the previous checkpoint in the same directory loadable; the coordinator deletes the previous
save's rank files only after the new ``.metadata`` is in place.

Importable without a process group: the converters and ``no_dist=True`` loads work offline.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import struct
import uuid
from typing import Any, Optional

import torch
from torch.distributed.checkpoint.filesystem import _StorageInfo
from torch.distributed.checkpoint.metadata import Metadata, MetadataIndex, StorageMeta, TensorStorageMetadata
from torch.distributed.checkpoint.planner import (
    LoadItemType,
    LoadPlan,
    LoadPlanner,
    SavePlan,
    SavePlanner,
    WriteItemType,
)
from torch.distributed.checkpoint.staging import BlockingAsyncStager
from torch.distributed.checkpoint.storage import StorageReader, StorageWriter, WriteResult
from torch.futures import Future

from .. import _core, _metadata, _sets
from .._api import DEFAULT_CHUNK_SIZE, _check_signing_key, _check_threads, _credential, _fspath, _writer_key
from .._random_access import open_encrypted
from ..exceptions import AuthenticationError, FormatError, ModelCryptError, SetMismatchError
from . import _dcp_metadata
from ._dcp_ranges import read_sub_block

__all__ = ["EncryptedFileSystemWriter", "EncryptedFileSystemReader", "METADATA_NAME"]

METADATA_NAME = ".metadata"
KIND_METADATA = "dcp-metadata"
KIND_RANK_FILE = "dcp-rank-file"
TABLE_FORMAT = "modelcrypt-dcp-items"
_RANK_FILE = _dcp_metadata.RANK_FILE
_MAX_TABLE = 256 << 20


@dataclasses.dataclass(frozen=True)
class _Stored:
    """Where a write item went (a WriteResult's storage_data): its rank file, range, and that file's length."""
    relative_path: str
    offset: int
    length: int
    plaintext_length: int  # of the whole rank file
    file_length: int  # its size on disk


def _rank_threads(threads: Optional[int]) -> int:
    """Threads for one rank's encryption or decryption: ``threads`` when given; by default this
    machine's cores shared among the ranks running on it (``LOCAL_WORLD_SIZE``, as torchrun sets it),
    else every core (0)."""
    n = _check_threads(threads)
    if n:
        return n
    try:
        local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    except ValueError:
        local = 1
    if local <= 1:
        return 0
    # (macOS and Windows have no sched_getaffinity)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // local)


def _index_key(fqn: str, offset: Any) -> str:
    return json.dumps([fqn, None if offset is None else [int(x) for x in offset]])


def _tensor_bytes(t: torch.Tensor) -> Any:
    """A tensor's bytes (row-major) without a copy when it is a contiguous CPU tensor."""
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    t = t.contiguous()
    if t.numel() == 0:
        return b""
    return t.reshape(-1).view(torch.uint8).numpy()


class _LocalDirectory:
    """checkpoint_id and its validation for storage in a local directory (``self.path``)."""
    path: str

    @property
    def checkpoint_id(self) -> str:
        return self.path

    @classmethod
    def validate_checkpoint_id(cls, checkpoint_id: Any) -> bool:
        return isinstance(checkpoint_id, (str, os.PathLike)) and "://" not in os.fspath(checkpoint_id)


class EncryptedFileSystemWriter(_LocalDirectory, StorageWriter, BlockingAsyncStager):
    """A DCP StorageWriter that writes modelcrypt files (one per rank) and an encrypted ``.metadata``.

    ``key`` (a symmetric key) and/or ``recipients`` (X25519 recipients, as for encrypt_file), and an
    optional publisher ``signing_key``. ``sync_files`` (default True) makes each file durable before
    it counts as written. ``threads``: encryption threads of each rank (default: the machine's cores
    shared among its ``LOCAL_WORLD_SIZE`` ranks). Tensors on an accelerator are copied to host memory,
    a rank's whole shard before it is encrypted. A writer pickles with its key (torch's process-based
    async_save sends it to its worker process so): never store such a pickle."""

    def __init__(self, path: Any, key: Any = None, *, recipients: Any = None, signing_key: Any = None,
                 sync_files: bool = True, chunk_size: int = DEFAULT_CHUNK_SIZE, threads: Optional[int] = None,
                 cache_staged_state_dict: bool = False) -> None:
        StorageWriter.__init__(self)
        BlockingAsyncStager.__init__(self, cache_staged_state_dict=cache_staged_state_dict)
        self.path = os.fsdecode(_fspath(path, "path"))
        self._key, self._recipients = _writer_key(key, recipients)
        self._signing_key = _check_signing_key(signing_key)
        if not isinstance(sync_files, bool):
            raise TypeError("sync_files must be True or False")
        self._sync, self._chunk_size, self._threads = sync_files, chunk_size, _rank_threads(threads)
        self._save_id: Optional[str] = None

    def __repr__(self) -> str:
        return f"EncryptedFileSystemWriter({self.path!r})"

    # -- StorageWriter
    def reset(self, checkpoint_id: Any = None) -> None:
        if checkpoint_id:
            self.path = os.fsdecode(_fspath(checkpoint_id, "checkpoint_id"))
        self._save_id = None

    def set_up_storage_writer(self, is_coordinator: bool, *args: Any, **kwargs: Any) -> None:
        pass  # the coordinator is the rank DCP calls prepare_global_plan and finish on

    def storage_meta(self) -> Optional[StorageMeta]:
        return StorageMeta(checkpoint_id=self.path)

    def prepare_local_plan(self, plan: SavePlan) -> SavePlan:
        os.makedirs(self.path, exist_ok=True)
        return plan

    def prepare_global_plan(self, plans: list[SavePlan]) -> list[SavePlan]:
        self._save_id = _sets.new_set_id()  # the coordinator's: one id for every rank of this save
        return [dataclasses.replace(p, storage_data=(self._save_id, f"__{i}_{self._save_id}.distcp.mcx"))
                for i, p in enumerate(plans)]

    def write_data(self, plan: SavePlan, planner: SavePlanner) -> Future:
        save_id, name = plan.storage_data
        results: list[WriteResult] = []
        if plan.items:
            results = self._write_rank_file(save_id, name, plan, planner)
        fut: Future = Future()
        fut.set_result(results)
        return fut

    def _write_rank_file(self, save_id: str, name: str, plan: SavePlan, planner: SavePlanner) -> list[WriteResult]:
        datas: list[Any] = []
        entries: list[dict[str, Any]] = []
        offset = 0
        for item in plan.items:
            data = planner.resolve_data(item)
            if item.type == WriteItemType.BYTE_IO:
                blob = data.getbuffer() if isinstance(data, io.BytesIO) else bytes(data)
            else:
                assert isinstance(data, torch.Tensor)  # (resolve_data gives tensor items as tensors)
                blob = _tensor_bytes(data)
            length = memoryview(blob).nbytes
            datas.append(blob)
            entries.append({"key": _index_key(item.index.fqn, item.index.offset), "start": offset, "length": length})
            offset += length
        table = json.dumps({"format": TABLE_FORMAT, "save_id": save_id, "file": name, "items": entries},
                           separators=(",", ":")).encode("utf-8")
        head = struct.pack("<Q", len(table)) + table
        base = len(head)
        meta = _metadata.encode({_sets.SET: save_id, _sets.MEMBER: name, _sets.KIND: KIND_RANK_FILE})
        path = os.path.join(self.path, name)
        _core.encrypt_parts_to_file([head, *datas], os.fsencode(path), self._key, "AES-GCM", self._chunk_size, meta,
                                    self._threads,
                                    None, self._sync, self._recipients, signing_key=self._signing_key)
        sizes = (base + offset, os.stat(path).st_size)
        return [WriteResult(index=item.index, size_in_bytes=e["length"],
                            storage_data=_Stored(name, base + e["start"], e["length"], *sizes))
                for item, e in zip(plan.items, entries)]

    def finish(self, metadata: Metadata, results: list[list[WriteResult]]) -> None:
        if self._save_id is None:
            raise RuntimeError("finish() before prepare_global_plan(): not a DCP save")
        files: dict[str, list[int]] = {}
        storage: dict[MetadataIndex, _StorageInfo] = {}
        for wr in (r for rank in results for r in rank):
            s = wr.storage_data
            files[s.relative_path] = [s.plaintext_length, s.file_length]
            storage[wr.index] = _StorageInfo(s.relative_path, s.offset, s.length)
        metadata.storage_data = storage
        metadata.version = metadata.version or "1.0.0"
        metadata.storage_meta = StorageMeta(checkpoint_id=self.path, save_id=self._save_id,
                                            modules=list(metadata.storage_meta.modules)
                                            if metadata.storage_meta else [])
        text = _dcp_metadata.encode(metadata, save_id=self._save_id, files=files)
        meta = _metadata.encode({_sets.SET: self._save_id, _sets.MEMBER: METADATA_NAME, _sets.KIND: KIND_METADATA})
        # atomic (temporary file + rename): the previous checkpoint stays whole until this one is
        _core.encrypt_parts_to_file([text], os.fsencode(os.path.join(self.path, METADATA_NAME)), self._key, "AES-GCM",
                                    DEFAULT_CHUNK_SIZE, meta, 0, None, self._sync, self._recipients,
                                    signing_key=self._signing_key)
        for old in os.listdir(self.path):  # the rank files of earlier saves, now unreferenced
            if _RANK_FILE.fullmatch(old) and old not in files:
                try:
                    os.unlink(os.path.join(self.path, old))
                except FileNotFoundError:
                    pass


class EncryptedFileSystemReader(_LocalDirectory, StorageReader):
    """A DCP StorageReader for checkpoints written by EncryptedFileSystemWriter: ``key`` or
    ``identity=``, and ``trusted_signers=`` to require the publisher's signature on every file.
    ``threads``: decryption threads of each rank (default as for the writer)."""

    def __init__(self, path: Any, key: Any = None, *, identity: Any = None, trusted_signers: Any = None,
                 threads: Optional[int] = None) -> None:
        super().__init__()
        self.path = os.fsdecode(_fspath(path, "path"))
        self._cred = _credential(key, identity, trusted_signers)
        self._threads = _rank_threads(threads)
        self._save_id: Optional[str] = None
        self._files: dict[str, list[int]] = {}
        self._metadata: Optional[Metadata] = None
        self.storage_data: dict[MetadataIndex, _StorageInfo] = {}
        self.error: Optional[BaseException] = None  # this rank's last ModelCryptError / OSError, as raised

    def __repr__(self) -> str:
        return f"EncryptedFileSystemReader({self.path!r})"

    def reset(self, checkpoint_id: Any = None) -> None:
        if checkpoint_id:
            self.path = os.fsdecode(_fspath(checkpoint_id, "checkpoint_id"))
        self._save_id, self._files, self._metadata, self.storage_data, self.error = None, {}, None, {}, None

    def _kept(self, step: Any, *args: Any) -> Any:
        """Runs a read step, keeping its ModelCryptError (or OSError) in ``self.error``: DCP wraps it in a
        CheckpointException, for ``.metadata`` only as the text of an AssertionError."""
        try:
            return step(*args)
        except (ModelCryptError, OSError) as exc:
            self.error = exc
            raise

    def read_metadata(self) -> Metadata:
        return self._kept(self._read_metadata)

    def read_data(self, plan: LoadPlan, planner: LoadPlanner) -> Future:
        return self._kept(self._read_data, plan, planner)

    def _read_metadata(self) -> Metadata:
        path = os.path.join(self.path, METADATA_NAME)
        if not os.path.isfile(path):
            raise FormatError(f"{self.path}: no {METADATA_NAME}: not an encrypted DCP checkpoint (or its save "
                              "did not finish)")
        with open_encrypted(path, self._cred) as f:
            head = f.metadata
            if head.get(_sets.KIND) != KIND_METADATA or head.get(_sets.MEMBER) != METADATA_NAME:
                raise SetMismatchError(f"{path} is not the metadata file of an encrypted DCP checkpoint")
            with f.read_all() as buf:
                md, save_id, files = _dcp_metadata.decode(bytes(buf))
        if head.get(_sets.SET) != save_id:
            raise SetMismatchError(f"{path}: its authenticated save id differs from the one it holds")
        self._save_id, self._files, self._metadata = save_id, files, md
        assert md.storage_meta is not None  # (decode always sets it)
        md.storage_meta.load_id = str(uuid.uuid4())
        return md

    def set_up_storage_reader(self, metadata: Metadata, is_coordinator: bool, *args: Any, **kwargs: Any) -> None:
        if self._save_id is None:
            self.read_metadata()  # metadata handed over from elsewhere: ours is authenticated
        assert self._metadata is not None  # (set by read_metadata)
        self.storage_data = self._metadata.storage_data

    def prepare_local_plan(self, plan: LoadPlan) -> LoadPlan:
        return plan

    def prepare_global_plan(self, plans: list[LoadPlan]) -> list[LoadPlan]:
        return plans

    # -- reading
    def _root(self) -> str:
        """The directory of the files that storage_data names."""
        return self.path

    def _open_rank_file(self, name: str) -> Any:
        path = os.path.join(self._root(), name)
        if not os.path.isfile(path):
            raise SetMismatchError(f"{path}: a rank file of this checkpoint (save {self._save_id}) is missing")
        f = open_encrypted(path, self._cred)
        try:
            md = f.metadata
            if md.get(_sets.SET) != self._save_id:
                raise SetMismatchError(f"{path} belongs to another save ({md.get(_sets.SET)}), not to {self._save_id}")
            if md.get(_sets.MEMBER) != name or md.get(_sets.KIND) != KIND_RANK_FILE:
                raise SetMismatchError(f"{path} is the file {md.get(_sets.MEMBER)!r} of this save, renamed")
            total = f.plaintext_length
            if total != self._files[name][0]:
                raise SetMismatchError(f"{path}: plaintext length {total}, the checkpoint recorded "
                                       f"{self._files[name][0]}")
            with f.read_range(0, min(total, f.chunk_size)) as first:  # the table, usually within chunk 0: read once
                view = memoryview(first)
                n = struct.unpack("<Q", bytes(view[:8]))[0] if len(view) >= 8 else -1
                if not 0 < n <= min(_MAX_TABLE, total - 8):
                    raise FormatError(f"{path}: bad item table size")
                raw = bytes(view[8:8 + n]) if 8 + n <= len(view) else None
                view.release()
            if raw is None:
                with f.read_range(8, n) as rest:
                    raw = bytes(rest)
            try:
                table = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                raise FormatError(f"{path}: its item table is not JSON") from None
            if not isinstance(table, dict) or table.get("format") != TABLE_FORMAT or table.get("save_id") != \
                    self._save_id or table.get("file") != name or not isinstance(table.get("items"), list):
                raise SetMismatchError(f"{path}: its item table is not this file's")
            places = {e["key"]: (8 + n + e["start"], e["length"]) for e in table["items"]}
            return f, places
        except BaseException:
            f.close()
            raise

    def _read_data(self, plan: LoadPlan, planner: LoadPlanner) -> Future:
        per_file: dict[str, list[Any]] = {}
        for req in plan.items:
            per_file.setdefault(self.storage_data[req.storage_index].relative_path, []).append(req)
        for name, (_, size) in sorted(self._files.items()):  # every rank file of the save, cheaply, on every rank
            path = os.path.join(self._root(), name)
            try:
                actual = os.stat(path).st_size
            except FileNotFoundError:
                raise SetMismatchError(f"{path}: a rank file of this checkpoint (save {self._save_id}) "
                                       "is missing") from None
            if actual != size:
                raise AuthenticationError(f"{path}: {'truncated' if actual < size else 'extended'} file: {actual} "
                                          f"bytes, the checkpoint recorded {size}")
        opened = {}
        try:
            # each file read here authenticated (this save's, its table) before a tensor is touched
            for name in per_file:
                opened[name] = self._open_rank_file(name)
            for name, reqs in per_file.items():
                f, places = opened[name]
                for req in sorted(reqs, key=lambda r: self.storage_data[r.storage_index].offset):
                    info = self.storage_data[req.storage_index]
                    key = _index_key(req.storage_index.fqn, req.storage_index.offset)
                    if places.get(key) != (info.offset, info.length):
                        raise SetMismatchError(f"{os.path.join(self._root(), name)}: item {req.storage_index.fqn!r} is "
                                               "not stored where the checkpoint metadata says")
                    self._read_item(f, info, req, planner)
        finally:
            for f, _ in opened.values():
                f.close()
        fut: Future = Future()
        fut.set_result(None)
        return fut

    def _read_item(self, f: Any, info: _StorageInfo, req: Any, planner: LoadPlanner) -> None:
        if req.type == LoadItemType.BYTE_IO:
            with f.read_range(info.offset, info.length) as buf:
                blob = bytes(buf)
            try:  # only what torch's restricted (weights_only) unpickler accepts
                obj = torch.load(io.BytesIO(blob), weights_only=True)
            except Exception as exc:
                raise FormatError(f"{req.storage_index.fqn!r}: a stored object that is not plain data (refused "
                                  f"unpickling: {type(exc).__name__})") from None
            # DCP's planners unpickle again, unrestricted: they get the object the restricted unpickler
            # built, serialized afresh, never the stored bytes (which another unpickler might read otherwise)
            fresh = io.BytesIO()
            torch.save(obj, fresh)
            fresh.seek(0)
            planner.load_bytes(req, fresh)
            return
        assert self._metadata is not None  # (read_data runs after read_metadata)
        tmd = self._metadata.state_dict_metadata[req.storage_index.fqn]
        assert isinstance(tmd, TensorStorageMetadata)  # (bytes items were read above)
        dtype = tmd.properties.dtype
        sizes = next((c.sizes for c in tmd.chunks if list(c.offsets) == list(req.storage_index.offset)), None)
        if sizes is None:
            raise FormatError(f"{req.storage_index.fqn!r}: no stored chunk at offset {list(req.storage_index.offset)}")
        itemsize = dtype.itemsize
        numel = 1
        for s in sizes:
            numel *= s
        if numel * itemsize != info.length:
            raise FormatError(f"{req.storage_index.fqn!r}: stored length {info.length} != {numel * itemsize} bytes")
        offs, lens = list(req.storage_offsets), list(req.lengths)
        if len(offs) != len(sizes) or len(lens) != len(sizes) or \
                any(o < 0 or n < 0 or o + n > z for o, n, z in zip(offs, lens, sizes)):
            raise FormatError(f"{req.storage_index.fqn!r}: the requested part is outside its stored chunk")
        target = planner.resolve_tensor(req).detach()
        if list(target.size()) != lens:
            raise FormatError(f"{req.storage_index.fqn!r}: stored sub-block {tuple(lens)}, "
                              f"wanted {tuple(target.size())}")
        read_sub_block(f, info.offset, list(sizes), offs, lens, dtype, target, self._threads or None)
        planner.commit_tensor(req, target)


def raise_modelcrypt_error(exc: BaseException, reader: Any = None) -> None:
    """DCP wraps each rank's error in a CheckpointException: re-raise the first ModelCryptError in it
    (else the first OSError), as itself. With ``reader`` (an EncryptedFileSystemReader given to
    dcp.load) this rank's own error is raised first: DCP keeps only the text of a ``.metadata``
    failure. Returns when there is none (the caller re-raises ``exc``)."""
    if isinstance(getattr(reader, "error", None), ModelCryptError):
        raise reader.error from exc
    inner = [f[0] if isinstance(f, tuple) and f else f for f in (getattr(exc, "failures", None) or {}).values()]
    for wanted in (ModelCryptError, OSError):
        for e in inner:
            if isinstance(e, wanted):
                raise e from exc
