"""Sharded checkpoints: shards plus a Hugging Face style ``*.index.json`` weight map (plaintext).

Writing the shards and their index (for save_checkpoint), reading and validating an index, and
load_distributed_checkpoint (shards checked as a set, ``names=`` decrypting only what it needs).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any, Optional, Union

import numpy as np

from .. import _sets
from .._api import Credential, StrPath, _fspath, _reader_key, is_encrypted
from .._atomic import atomic_write
from .._state_tree import STRUCTURE_KEY, unflatten
from ..exceptions import FormatError
from ._arguments import DecMode, Encryption, _check_dec, _check_names, _missing
from ._layout import _no_duplicates, _Tensor
from ._one_file import _Checkpoint, _write_one

# ------------------------------------------------------------------ writing


def _shard_groups(tensors: list[_Tensor], limit: int) -> list[list[_Tensor]]:
    groups: list[list[_Tensor]] = []
    current: list[_Tensor] = []
    size = 0
    for t in tensors:
        if current and size + t.nbytes > limit:
            groups.append(current)
            current, size = [], 0
        current.append(t)
        size += t.nbytes
    if current or not groups:
        groups.append(current)
    return groups


def _save_shards(target: str, tensors: list[_Tensor], total: int, limit: int, metadata: Optional[Mapping[str, str]],
                 enc: Encryption, stale: Optional[list[str]]) -> str:
    """The shards of ``target`` (``<stem>-0000i-of-0000N<suffix>``) and its index, written last; ``stale``:
    the shards of an earlier save (_earlier_shards), removed unless overwritten. Returns the index path."""
    index_path = target + ".index.json"
    groups = _shard_groups(tensors, limit)
    directory, base = os.path.split(target)
    stem, suffix = os.path.splitext(base)
    count = len(groups)
    names = [f"{stem}-{i:05d}-of-{count:05d}{suffix}" for i in range(1, count + 1)]
    weight_map = {t.name: name for name, group in zip(names, groups) for t in group}
    # Encrypted shards (modelcrypt modes) are bound into one set: each authenticates the save's id,
    # its own name and place, and the digest of the whole weight map (so the plaintext index is
    # authenticated too). Custom ciphers have no authenticated metadata: their shards stay unbound.
    set_id = _sets.new_set_id() if enc.modelcrypt else None
    digest = _sets.weight_map_digest(weight_map)
    for i, (shard_name, group) in enumerate(zip(names, groups), 1):
        binding = _sets.shard_metadata(set_id, shard_name, i, count, digest) if set_id else None
        _write_one(os.path.join(directory, shard_name), group, metadata, enc, binding)
    index_meta: dict[str, Any] = {"total_size": total}
    if set_id:
        index_meta[_sets.SET] = set_id
    index = {"metadata": index_meta, "weight_map": weight_map}
    atomic_write(index_path, [json.dumps(index, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"])
    if stale:  # shards of the earlier save that this one did not overwrite (it had more of them)
        _remove_files([name for name in stale if name not in names], directory=directory)
    return index_path


def _earlier_shards(index_path: str, target: str) -> Optional[list[str]]:
    """The shard file names of an earlier sharded save of ``target`` (listed in its index and named as
    save_checkpoint names shards), or None when there is no such index. Nothing else is ever deleted."""
    if not os.path.isfile(index_path):
        return None
    try:
        weight_map, _ = _read_index(index_path)
    except (FormatError, OSError):
        return None  # not an index save_checkpoint wrote: left alone
    stem, suffix = os.path.splitext(os.path.basename(target))
    pattern = re.compile(re.escape(stem) + r"-\d{5}-of-\d{5}" + re.escape(suffix))
    return sorted({shard for shard in weight_map.values() if pattern.fullmatch(shard)})


def _remove_files(names: Iterable[str], directory: str) -> None:
    for name in names:
        try:
            os.unlink(os.path.join(directory, os.path.basename(name)))
        except FileNotFoundError:
            pass


# ------------------------------------------------------------------ reading


def _read_index(index_path: str) -> tuple[dict[str, str], Optional[str]]:
    with open(index_path, "rb") as f:
        return _parse_index(f.read(), index_path)


def _parse_index(data: bytes, index_path: str) -> tuple[dict[str, str], Optional[str]]:
    """(weight map, set id) of an index's bytes; ``index_path`` names it in messages."""
    try:
        index = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormatError(f"index {index_path} is not UTF-8 JSON: {exc}") from None
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict):
        raise FormatError(f"index {index_path} has no 'weight_map' object")
    for name, shard in weight_map.items():
        if not isinstance(shard, str) or not shard or os.path.isabs(shard) or ".." in re.split(r"[\\/]", shard):
            raise FormatError(f"index {index_path}: tensor {name!r} maps to {shard!r}, which is not a file name "
                              "beside the index")
    meta = index.get("metadata")
    index_set = meta.get(_sets.SET) if isinstance(meta, dict) else None
    if index_set is not None and not isinstance(index_set, str):
        raise FormatError(f"index {index_path}: metadata {_sets.SET} is not a string")
    return weight_map, index_set


def names_by_shard(weight_map: dict[str, str], wanted: Optional[list[str]], where: str) -> dict[str, list[str]]:
    """The requested tensor names (all with ``wanted`` None) grouped by the shard the index maps them to."""
    if wanted is not None:
        unknown = [n for n in wanted if n not in weight_map]
        if unknown:
            raise _missing(unknown, where)
    by_shard: dict[str, list[str]] = {}
    for name in (wanted if wanted is not None else weight_map):
        by_shard.setdefault(weight_map[name], []).append(name)
    return by_shard


def read_mapped_shard(ckpt: "_Checkpoint", shard: str, shard_names: list[str], weight_map: dict[str, str],
                      everything: bool, shown: str, where: str, show_names: bool) -> dict[str, np.ndarray]:
    """The tensors ``shard_names`` of one shard of an index (``everything``: all it holds, which must
    be exactly those the index maps to it). Names from the (plaintext) index appear in messages;
    names found only in the shard only with ``show_names`` (never for an encrypted shard)."""
    if everything:
        arrays = ckpt.load_all()
        check_shard_holds(arrays, shard, shard_names, weight_map, shown, where, show_names)
        return arrays
    entries, start = ckpt.header()
    check_shard_holds(entries, shard, shard_names, weight_map, shown, where, show_names, exactly=False)
    return ckpt.load_names(shard_names, entries, start)


def check_shard_holds(held: Iterable[str], shard: str, shard_names: list[str], weight_map: Mapping[str, str],
                      shown: str, where: str, show_names: bool, exactly: bool = True) -> None:
    """FormatError unless shard ``shard`` (``shown`` in messages), holding the tensors ``held``, holds all
    of ``shard_names`` and (``exactly``) no tensor the index does not map to it."""
    def listed(names: list[str], show: bool = True) -> str:
        return ": " + ", ".join(repr(n) for n in names[:20]) if show else ""

    held = list(held)
    if exactly:
        stray = [n for n in held if weight_map.get(n) != shard]
        if stray:
            raise FormatError(f"shard {shown} holds {len(stray)} tensor(s) the index does not map to it"
                              f"{listed(stray, show_names)}")
    present = set(held)
    absent = [n for n in shard_names if n not in present]
    if absent:
        raise FormatError(f"{where} maps {len(absent)} tensor(s) to {shard} but it does not hold them{listed(absent)}")


def load_distributed_checkpoint(
    index_or_paths: Union[StrPath, Iterable[StrPath]],
    dec_key: Optional[Credential] = None,
    dec_mode: DecMode = "AES-GCM",
    *,
    names: Optional[Iterable[str]] = None,
    trusted_signers: Optional[Iterable[Any]] = None,
    identity: Any = None,
) -> dict[str, np.ndarray]:
    """Load a sharded checkpoint: an index JSON (``{"weight_map": {name: shard file}}``) or a list of shards.

    With an index path, only the shards holding the requested ``names`` are decrypted (every
    shard when ``names`` is None); shard file names are resolved beside the index and must not
    leave its directory. Shards saved as a set (encrypted by save_checkpoint) are checked as a
    whole before any tensor is returned: every shard of the index is opened and its header
    authenticated, and a shard from another save, a missing, duplicated or renamed shard, or an
    index whose weight map is not the one the shards authenticate raise SetMismatchError. For
    unbound shards (plaintext, custom ciphers, older files) each tensor's presence in the shard
    the index names is checked against that shard's header: a mismatch raises FormatError.

    With a list of shard paths every shard is loaded, or, with ``names``, each shard's header is
    read by random access and only the requested tensors are decrypted; bound shards are checked
    as a set the same way (each under the file name it was saved as).
    A name found in two shards raises FormatError; unknown names raise KeyError. Keys, modes and
    arrays behave as in load_checkpoint (one key for all shards); ``trusted_signers`` as for
    load_checkpoint: every shard must be signed by one of them.
    """
    if trusted_signers is not None and dec_key is None and identity is None:
        raise ValueError("trusted_signers needs dec_key or identity=: plaintext shards carry no signature")
    dec_key = _reader_key(dec_key, trusted_signers, dec_mode, identity)
    dec_key, dec_mode = _check_dec(dec_key, dec_mode)
    wanted = _check_names(names)
    out: dict[str, np.ndarray] = {}

    def tensor(name: str) -> str:  # names read from an encrypted shard are plaintext: not quoted
        return f"tensor {name!r}" if dec_key is None else "a tensor"

    def merge(arrays: dict[str, np.ndarray], shard: str) -> None:
        for name, arr in arrays.items():
            if name in out:
                raise FormatError(f"{tensor(name)} appears in more than one shard (again in {shard})")
            out[name] = arr

    if isinstance(index_or_paths, (str, bytes, os.PathLike)):
        index_path = os.fsdecode(_fspath(index_or_paths, "index_or_paths"))
        weight_map, index_set = _read_index(index_path)
        directory = os.path.dirname(os.path.abspath(index_path))
        by_shard = names_by_shard(weight_map, wanted, f"index {index_path}")
        opened: dict[str, _Checkpoint] = {}
        try:
            # Every shard the index names is opened (its header authenticated) before any is read,
            # so the set is checked as a whole: the needed ones stay open and are read through the
            # same handles; the others only have their headers checked (modelcrypt files only: a
            # custom cipher would decrypt the whole file just to open it).
            for shard in dict.fromkeys(weight_map.values()):
                shard_path = os.path.join(directory, shard)
                if shard in by_shard:
                    opened[shard] = _Checkpoint(shard_path, dec_key, dec_mode)
                elif not callable(dec_mode) and os.path.isfile(shard_path) and is_encrypted(shard_path) \
                        and dec_key is not None:
                    opened[shard] = _Checkpoint(shard_path, dec_key, dec_mode)
                    opened[shard].close()
            _sets.check_shards({name: ck.metadata for name, ck in opened.items()},
                               expected_names=weight_map.values(), weight_map=weight_map, index_set=index_set,
                               where=f"index {index_path}")
            for shard, shard_names in by_shard.items():
                shard_path = os.path.join(directory, shard)
                arrays = read_mapped_shard(opened[shard], shard, shard_names, weight_map, wanted is None,
                                           shard_path, f"index {index_path}", show_names=dec_key is None)
                merge(arrays, shard_path)
        finally:
            for ckpt in opened.values():
                ckpt.close()
        if wanted is not None:
            return {n: out[n] for n in wanted}
        return _with_structure(out, [opened[s] for s in by_shard], f"index {index_path}")

    if isinstance(index_or_paths, Mapping) or not isinstance(index_or_paths, Iterable):
        raise TypeError("index_or_paths must be an index path or a list of shard paths, "
                        f"not {type(index_or_paths).__name__}")
    paths = [os.fsdecode(_fspath(p, "shard path")) for p in index_or_paths]
    if not paths:
        raise ValueError("no shard paths given")
    found: dict[str, str] = {}
    ckpts: list[_Checkpoint] = []
    try:
        metas: dict[str, dict[str, str]] = {}
        seen: set[str] = set()
        for shard_path in paths:  # all opened (headers authenticated) and checked as a set first
            ckpt = _Checkpoint(shard_path, dec_key, dec_mode)
            ckpts.append(ckpt)
            real = os.path.realpath(shard_path)
            if real in seen:  # the same file twice: the tensors then appear twice (FormatError below)
                continue
            seen.add(real)
            name = os.path.basename(shard_path)
            if name in metas and (metas[name] or ckpt.metadata):
                raise _sets.SetMismatchError(f"two shards are named {name} ({shard_path}): duplicated")
            metas[name] = ckpt.metadata
        _sets.check_shards(metas, where="the shards " + ", ".join(paths))
        rebuilt: dict[str, str] = {}  # the weight map the shards hold, checked against the one they authenticate
        for shard_path, ckpt in zip(paths, ckpts):
            if wanted is None:
                arrays = ckpt.load_all()
                rebuilt.update((n, os.path.basename(shard_path)) for n in arrays)
                merge(arrays, shard_path)
                continue
            entries, start = ckpt.header()
            rebuilt.update((n, os.path.basename(shard_path)) for n in entries)
            for name in entries:
                if name in found:
                    raise FormatError(f"{tensor(name)} appears in more than one shard ({found[name]} and {shard_path})")
                found[name] = shard_path
            here = [n for n in wanted if n in entries]
            if here:
                merge(ckpt.load_names(here, entries, start), shard_path)
        bound = [md for md in metas.values() if _sets.SET in md]
        if bound and bound[0].get(_sets.WEIGHT_MAP) != _sets.weight_map_digest(rebuilt):
            raise _sets.SetMismatchError("the shards " + ", ".join(paths) + " do not hold the tensors their save "
                                         "authenticated (a shard's contents were swapped)")
    finally:
        for ckpt in ckpts:
            ckpt.close()
    if wanted is not None:
        unknown = [n for n in wanted if n not in out]
        if unknown:
            raise _missing(unknown, "the shards " + ", ".join(paths))
        return {n: out[n] for n in wanted}
    return _with_structure(out, ckpts, "the shards " + ", ".join(paths))


def _with_structure(arrays: dict[str, np.ndarray], shards: list["_Checkpoint"], where: str) -> Any:
    """A sharded training state rebuilt from the structure every shard carries (the same in each)."""
    structures = {ck.header_metadata.get(STRUCTURE_KEY) for ck in shards}
    if structures == {None} or not structures:
        return arrays
    if len(structures) != 1:
        raise FormatError(f"{where}: the shards carry different training-state structures (from different saves?)")
    structure = structures.pop()
    assert structure is not None  # (a single structure, not {None})
    return unflatten(structure, arrays, where)
