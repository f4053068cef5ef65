"""DCP's checkpoint Metadata as JSON (no pickle): what the encrypted ``.metadata`` of an encrypted
Distributed Checkpoint holds.

PyTorch's FileSystemWriter pickles its Metadata; reading that back runs arbitrary code from the
file. Here the same dataclasses are written as plain JSON and rebuilt field by field on load, with
every type checked, so a damaged or hostile (but authenticated) file is a FormatError, never code.
"""

from __future__ import annotations

import json
import re
from typing import Any

import torch
from torch.distributed.checkpoint.filesystem import _StorageInfo
from torch.distributed.checkpoint.metadata import (
    BytesStorageMetadata,
    ChunkStorageMetadata,
    Metadata,
    MetadataIndex,
    StorageMeta,
    TensorProperties,
    TensorStorageMetadata,
)

from ..exceptions import FormatError

FORMAT = "modelcrypt-dcp-metadata"
RANK_FILE = re.compile(r"__\d+_[0-9a-f]{32}\.distcp\.mcx")  # the names the writer gives rank files
VERSION = 1
_DTYPES = {str(v): v for v in vars(torch).values() if isinstance(v, torch.dtype)}
_LAYOUTS = {"torch.strided": torch.strided, "torch.sparse_coo": torch.sparse_coo}
_MEMORY_FORMATS = {str(m): m for m in (torch.contiguous_format, torch.channels_last, torch.channels_last_3d,
                                       torch.preserve_format)}


def _size(value: Any) -> list[int]:
    return [int(x) for x in value]


def _plain(value: Any) -> Any:
    """planner_data (DefaultSavePlanner: fqn -> tuple of str/int keys) as JSON; tuples are kept apart."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, tuple):
        return {"tuple": [_plain(v) for v in value]}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"dict": {k: _plain(v) for k, v in value.items()}}
    raise TypeError(f"planner data of type {type(value).__name__} cannot be stored without pickle; use DCP's "
                    "default planners (or planner data of str, int, float, bool, None, lists, tuples and "
                    "str-keyed dicts)")


def _unplain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_unplain(v) for v in value]
    if isinstance(value, dict) and set(value) == {"tuple"} and isinstance(value["tuple"], list):
        return tuple(_unplain(v) for v in value["tuple"])
    if isinstance(value, dict) and set(value) == {"dict"} and isinstance(value["dict"], dict):
        return {k: _unplain(v) for k, v in value["dict"].items()}
    raise FormatError("encrypted DCP metadata: malformed planner data")


def _properties(p: TensorProperties) -> dict[str, Any]:
    return {"dtype": str(p.dtype), "layout": str(p.layout), "requires_grad": bool(p.requires_grad),
            "memory_format": str(p.memory_format), "pin_memory": bool(p.pin_memory)}


def encode(md: Metadata, *, save_id: str, files: dict[str, list[int]]) -> bytes:
    """The JSON text of ``md`` plus the save id and the rank files of the save (name -> [plaintext length,
    file length])."""
    tensors: dict[str, Any] = {}
    for fqn, item in md.state_dict_metadata.items():
        if isinstance(item, TensorStorageMetadata):
            tensors[fqn] = {"kind": "tensor", "properties": _properties(item.properties), "size": _size(item.size),
                            "chunks": [{"offsets": _size(c.offsets), "sizes": _size(c.sizes)} for c in item.chunks]}
        elif isinstance(item, BytesStorageMetadata):
            tensors[fqn] = {"kind": "bytes"}
        else:
            raise TypeError(f"{fqn}: DCP storage metadata of type {type(item).__name__} is not supported")
    storage = [{"fqn": idx.fqn, "offset": None if idx.offset is None else _size(idx.offset), "index": idx.index,
                "file": info.relative_path, "start": int(info.offset), "length": int(info.length)}
               for idx, info in (md.storage_data or {}).items()]
    doc = {"format": FORMAT, "version": VERSION, "save_id": save_id, "dcp_version": md.version, "files": files,
           "state_dict_metadata": tensors, "planner_data": _plain(md.planner_data), "storage_data": storage,
           "modules": list(md.storage_meta.modules) if md.storage_meta is not None else []}
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _need(cond: bool, what: str) -> None:
    if not cond:
        raise FormatError(f"encrypted DCP metadata: {what}")


def _ints(value: Any, what: str) -> torch.Size:
    _need(isinstance(value, list) and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in value),
          f"{what} is not a list of non-negative integers")
    return torch.Size(value)


def _lookup(table: dict, name: Any, what: str) -> Any:
    _need(isinstance(name, str) and name in table, f"unknown {what} {name!r}")
    return table[name]


def decode(text: bytes) -> tuple[Metadata, str, dict[str, list[int]]]:
    """(Metadata, save id, rank files) from the JSON text written by encode (authenticated by the caller)."""
    try:
        return _decode(text)
    except RecursionError:  # nesting deeper than any metadata the writer produces
        raise FormatError("encrypted DCP metadata: nested too deeply") from None


def _chunk(fqn: str, c: dict, size: torch.Size) -> ChunkStorageMetadata:
    offsets, sizes = _ints(c.get("offsets"), f"{fqn!r} chunk offsets"), _ints(c.get("sizes"), f"{fqn!r} chunk sizes")
    _need(len(offsets) == len(sizes) == len(size) and all(o + n <= s for o, n, s in zip(offsets, sizes, size)),
          f"{fqn!r}: a chunk outside the tensor")
    return ChunkStorageMetadata(offsets=offsets, sizes=sizes)


def _decode(text: bytes) -> tuple[Metadata, str, dict[str, list[int]]]:
    try:
        doc = json.loads(bytes(text).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise FormatError("encrypted DCP metadata is not JSON") from None
    _need(isinstance(doc, dict) and doc.get("format") == FORMAT, "not a modelcrypt DCP metadata file")
    _need(doc.get("version") == VERSION, f"unsupported version {doc.get('version')!r}")
    save_id, files = doc.get("save_id"), doc.get("files")
    _need(isinstance(save_id, str) and isinstance(files, dict) and all(
        isinstance(k, str) and isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) and x >= 0 for x in v)
        for k, v in files.items()), "bad save id or file list")
    for name in files:  # names that could reach outside the checkpoint directory are refused
        _need(RANK_FILE.fullmatch(name) is not None and name.endswith(f"_{save_id}.distcp.mcx"),
              f"{name!r} is not the name of a rank file of this save")
    sdm: dict[str, Any] = {}
    tensors = doc.get("state_dict_metadata")
    _need(isinstance(tensors, dict), "no state_dict_metadata")
    for fqn, item in tensors.items():
        _need(isinstance(item, dict), f"{fqn!r}: bad entry")
        if item.get("kind") == "bytes":
            sdm[fqn] = BytesStorageMetadata()
            continue
        _need(item.get("kind") == "tensor", f"{fqn!r}: unknown kind")
        p = item.get("properties")
        _need(isinstance(p, dict), f"{fqn!r}: no tensor properties")
        props = TensorProperties(dtype=_lookup(_DTYPES, p.get("dtype"), "dtype"),
                                 layout=_lookup(_LAYOUTS, p.get("layout"), "layout"),
                                 requires_grad=bool(p.get("requires_grad")),
                                 memory_format=_lookup(_MEMORY_FORMATS, p.get("memory_format"), "memory format"),
                                 pin_memory=bool(p.get("pin_memory")))
        chunks = item.get("chunks")
        _need(isinstance(chunks, list) and all(isinstance(c, dict) for c in chunks), f"{fqn!r}: bad chunk list")
        size = _ints(item.get("size"), f"{fqn!r} size")
        sdm[fqn] = TensorStorageMetadata(properties=props, size=size, chunks=[_chunk(fqn, c, size) for c in chunks])
    storage: dict[MetadataIndex, _StorageInfo] = {}
    entries = doc.get("storage_data")
    _need(isinstance(entries, list), "no storage_data")
    for e in entries:
        _need(isinstance(e, dict) and isinstance(e.get("fqn"), str) and e.get("file") in files, "bad storage entry")
        start, length = e.get("start"), e.get("length")
        _need(isinstance(start, int) and isinstance(length, int) and 0 <= start and 0 <= length
              and start + length <= files[e["file"]][0], f"{e['fqn']!r}: stored range outside its file")
        index = e.get("index")
        _need(index is None or isinstance(index, int), "bad storage index")
        offset = None if e.get("offset") is None else _ints(e.get("offset"), f"{e['fqn']!r} offset")
        item = sdm.get(e["fqn"])
        _need(item is not None, f"{e['fqn']!r}: stored but not in state_dict_metadata")
        if isinstance(item, TensorStorageMetadata):
            _need(offset is not None and any(list(c.offsets) == list(offset) for c in item.chunks),
                  f"{e['fqn']!r}: stored at an offset that is none of its chunks")
        storage[MetadataIndex(e["fqn"], offset, index)] = _StorageInfo(e["file"], start, length)
    modules = doc.get("modules") or []
    _need(isinstance(modules, list) and all(isinstance(m, str) for m in modules), "bad module list")
    md = Metadata(state_dict_metadata=sdm, planner_data=_unplain(doc.get("planner_data")), storage_data=storage,
                  storage_meta=StorageMeta(save_id=save_id, modules=modules), version=doc.get("dcp_version"))
    return md, save_id, files
