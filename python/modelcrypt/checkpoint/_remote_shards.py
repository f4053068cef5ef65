"""load_checkpoint of a sharded checkpoint's index at a URL (``s3://bucket/ckpt/model.safetensors.index.json``).

The index is read through fsspec; every shard it names is opened by range (its header read and
authenticated, one request) and the shards are checked as a set exactly as for a local index
(_sets.check_shards: a shard from another save, renamed, missing or duplicated, or an index whose
weight map is not the one the shards authenticate: SetMismatchError) before any tensor is read.
Then only the shards holding the requested ``names`` are read, and of those only the tensors' chunks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from typing_extensions import TypeGuard

from .. import _sets, _sources
from .._random_access import open_encrypted
from ..exceptions import FormatError
from ._one_file import _Checkpoint
from ._shards import _parse_index, _with_structure, names_by_shard, read_mapped_shard

#: An index is a small JSON file; a bigger object at that name is not one.
MAX_INDEX_BYTES = 64 << 20


def is_index_url(path: Any) -> TypeGuard[str]:
    return _sources.is_url(path) and path.split("?", 1)[0].endswith(".index.json")


def _read_index_url(url: str, storage_options: Optional[Mapping[str, Any]]) -> bytes:
    with _sources.open_url(url, storage_options) as f:
        data = f.read(MAX_INDEX_BYTES + 1)
    if len(data) > MAX_INDEX_BYTES:
        raise FormatError(f"index {_sources.shown_url(url)} is larger than {MAX_INDEX_BYTES >> 20} MiB: not an index")
    return data


def load_index_url(url: str, credential: Any, wanted: Optional[list[str]],
                   storage_options: Optional[Mapping[str, Any]]) -> tuple[Any, dict[str, str]]:
    """(state, the header metadata of a shard read) for the sharded checkpoint whose index is ``url``."""
    where = f"index {_sources.shown_url(url)}"
    weight_map, index_set = _parse_index(_read_index_url(url, storage_options), _sources.shown_url(url))
    base = url.split("?", 1)[0].rsplit("/", 1)[0]
    by_shard = names_by_shard(weight_map, wanted, where)
    files: dict[str, Any] = {}
    opened: dict[str, _Checkpoint] = {}
    out: dict[str, Any] = {}
    try:
        for shard in dict.fromkeys(weight_map.values()):  # every shard's header, authenticated, before any tensor
            files[shard] = open_encrypted(f"{base}/{shard}", credential, storage_options=storage_options)
            opened[shard] = _Checkpoint.of_file(files[shard])
            if shard not in by_shard:
                files.pop(shard).close()
        _sets.check_shards({name: ck.metadata for name, ck in opened.items()}, expected_names=weight_map.values(),
                           weight_map=weight_map, index_set=index_set, where=where)
        for shard, shard_names in by_shard.items():
            arrays = read_mapped_shard(opened[shard], shard, shard_names, weight_map, wanted is None, shard, where,
                                       show_names=False)
            for name, arr in arrays.items():
                if name in out:
                    raise FormatError(f"a tensor appears in more than one shard (again in {shard})")
                out[name] = arr
        metadata = opened[next(iter(by_shard))].header_metadata if by_shard else {}
        if wanted is not None:
            return {n: out[n] for n in wanted}, metadata
        return _with_structure(out, [opened[s] for s in by_shard], where), metadata
    finally:
        for f in files.values():
            f.close()
