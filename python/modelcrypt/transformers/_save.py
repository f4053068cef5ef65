"""save_pretrained: a transformers model written as an encrypted Hugging Face directory, straight
from memory (no plaintext file at any point)."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from typing import Any, Optional

import torch
import transformers

from .. import _sets
from .._api import _check_key, _check_signing_key, _fspath
from .._directory import _build
from ._load import CONFIG, GENERATION_CONFIG, SAFETENSORS_INDEX
from ._weights import write_encrypted_bytes, write_encrypted_shard

__all__: list[str] = []


def _state_to_save(model: Any) -> dict[str, torch.Tensor]:
    """model.state_dict() as transformers' own save_pretrained prepares it: keys to ignore on save
    dropped, tied weights saved once, weight conversions applied at load time reverted."""
    state = model.state_dict()
    for name in getattr(model, "_keys_to_ignore_on_save", None) or ():
        state.pop(name, None)
    from transformers import modeling_utils

    remove_tied = getattr(modeling_utils, "remove_tied_weights_from_state_dict", None)
    if remove_tied is not None:
        state = remove_tied(state, model)
    else:  # older transformers: keep the first name of tensors sharing memory
        seen: dict[tuple, str] = {}
        for name in list(state):
            t = state[name]
            ident = (t.device, t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.dtype)
            if ident in seen:
                del state[name]
            else:
                seen[ident] = name
    revert = getattr(modeling_utils, "revert_weight_conversion", None)
    if revert is not None:
        state = revert(model, state)
    return state


def _prepare_target(path: Any, overwrite: bool) -> str:
    target = os.fsdecode(_fspath(path, "path"))
    if os.path.lexists(target):
        if not overwrite:
            raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
        if not os.path.isdir(target):
            raise FileExistsError(f"{target} exists and is a file; remove it first")
    return target


def _config_json(model: Any) -> bytes:
    config = copy.deepcopy(model.config)
    config.architectures = [type(model).__name__]
    dtype = getattr(model, "dtype", None)
    if isinstance(dtype, torch.dtype):
        setattr(config, "dtype" if hasattr(config, "dtype") else "torch_dtype", str(dtype).split(".")[1])
    return config.to_json_string(use_diff=True).encode("utf-8")


def save_pretrained(model: Any, path: Any, key: Any, *, max_shard_size: Any = "5GB",
                    tokenizer: Any = None, overwrite: bool = False, signing_key: Any = None,
                    metadata: Optional[Mapping[str, str]] = None) -> list[str]:
    """See modelcrypt.transformers.save_pretrained."""
    if not isinstance(model, transformers.PreTrainedModel):
        raise TypeError(f"model must be a transformers PreTrainedModel, not {type(model).__name__}")
    if not isinstance(overwrite, bool):
        raise TypeError(f"overwrite must be a bool, not {type(overwrite).__name__}")
    key = _check_key(key)
    signing_key = _check_signing_key(signing_key)
    _sets.check_user_metadata(metadata)
    target = _prepare_target(path, overwrite)
    from huggingface_hub import split_torch_state_dict_into_shards

    state = _state_to_save(model)
    on_meta = [n for n, t in state.items() if t.is_meta]
    if on_meta:
        raise ValueError(f"model has {len(on_meta)} weight(s) on the meta device ({on_meta[0]}, ...): nothing to save")
    split = split_torch_state_dict_into_shards(state, filename_pattern="model{suffix}.safetensors",
                                               max_shard_size=max_shard_size)
    files: dict[str, bytes] = {CONFIG: _config_json(model)}
    if getattr(model, "can_generate", lambda: False)() and getattr(model, "generation_config", None) is not None:
        files[GENERATION_CONFIG] = model.generation_config.to_json_string(use_diff=True).encode("utf-8")
    if split.is_sharded:
        index = {"metadata": {"total_parameters": model.num_parameters(), **split.metadata},
                 "weight_map": split.tensor_to_filename}
        files[SAFETENSORS_INDEX] = (json.dumps(index, indent=2, sort_keys=True) + "\n").encode("utf-8")
    if tokenizer is not None:
        from ._tokenizer import tokenizer_files

        files.update(tokenizer_files(tokenizer))
    set_id = _sets.new_set_id()
    base = dict(metadata or {})
    members: dict[str, int] = {}

    def fill(tmp: str) -> None:
        for rel, tensor_names in split.filename_to_tensors.items():
            shard = {name: state[name].contiguous() for name in tensor_names}
            members[rel] = write_encrypted_shard(os.path.join(tmp, rel), shard, key,
                                                 _sets.member_metadata(set_id, rel, base), signing_key,
                                                 header_metadata={"format": "pt"})
            del shard
        for rel, data in files.items():
            members[rel] = write_encrypted_bytes(os.path.join(tmp, rel), data, key,
                                                 _sets.member_metadata(set_id, rel, base), signing_key)
        _sets.write_manifest(tmp, key, set_id, members, None, signing_key)

    _build(target, [], 0o777, fill)
    return sorted(members)

