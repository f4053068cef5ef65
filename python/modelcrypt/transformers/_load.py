"""from_pretrained: a transformers model built from an encrypted Hugging Face directory in memory."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

import torch
import transformers

from .._sets import shown_place
from ..exceptions import FormatError
from ._directory import EncryptedModelDirectory
from ._weights import shard_tensors

__all__: list[str] = []

CONFIG = "config.json"
GENERATION_CONFIG = "generation_config.json"
SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"

# from_pretrained arguments that would read files of their own, write to disk, run code from the
# directory, or replace what modelcrypt decrypts.
_REFUSED = {
    "state_dict": "the weights come from the encrypted directory",
    "config": "the config comes from the encrypted directory's config.json",
    "offload_folder": "disk offloading would write decrypted weights to disk",
    "offload_state_dict": "disk offloading would write decrypted weights to disk",
    "gguf_file": "GGUF files are read from disk by transformers",
    "subfolder": "give the encrypted directory itself",
    "cache_dir": "nothing is downloaded",
    "trust_remote_code": "code from an encrypted directory is not run",
    "use_safetensors": "the weights are always safetensors shards",
}


def config_from_dict(config_dict: Any, where: str, overrides: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """(config, the ``overrides`` it did not take): the transformers config class named by
    ``model_type``, built from the decrypted config.json; ``overrides`` that are config attributes
    (``num_labels=3``, ``use_cache=False``) set on it, as transformers' from_pretrained does."""
    if not isinstance(config_dict, dict):
        raise FormatError(f"{where}: config.json is not a JSON object")
    if "auto_map" in config_dict:
        raise ValueError(f"{where}: config.json names custom code (auto_map); modelcrypt.transformers loads "
                         "models built into transformers only (trust_remote_code is not supported)")
    model_type = config_dict.get("model_type")
    from transformers import CONFIG_MAPPING

    if not isinstance(model_type, str) or model_type not in CONFIG_MAPPING:
        raise FormatError(f"{where}: config.json has no model_type this transformers "
                          f"({transformers.__version__}) knows")
    config, unused = CONFIG_MAPPING[model_type].from_dict(dict(config_dict), return_unused_kwargs=True, **overrides)
    return config, unused


def model_class_for(config: Any, model_class: Any) -> Any:
    """``model_class`` when given (a PreTrainedModel subclass or an Auto class), else the class
    config.architectures names (as transformers' pipelines pick it), else AutoModel."""
    if model_class is not None:
        if not isinstance(model_class, type):
            raise TypeError(f"model_class must be a transformers model class, not {type(model_class).__name__}")
        return model_class
    for name in getattr(config, "architectures", None) or ():
        cls = getattr(transformers, name, None) if isinstance(name, str) else None
        if isinstance(cls, type) and issubclass(cls, transformers.PreTrainedModel):
            return cls
    return transformers.AutoModel


def _concrete_class(cls: Any, config: Any) -> Any:
    """An Auto class resolved for ``config`` through its model mapping (as AutoModel*.from_config does)."""
    mapping = getattr(cls, "_model_mapping", None)
    if mapping is None:
        if not issubclass(cls, transformers.PreTrainedModel):
            raise TypeError(f"model_class {cls.__name__} is not a transformers model class")
        return cls
    try:
        found = mapping[type(config)]
    except KeyError:
        raise ValueError(f"{cls.__name__} has no model for {type(config).__name__}") from None
    if isinstance(found, (list, tuple)):
        architectures = getattr(config, "architectures", None) or []
        by_name = {c.__name__: c for c in found}
        found = next((by_name[a] for a in architectures if a in by_name), found[0])
    return found


def read_state_dict(directory: EncryptedModelDirectory) -> dict[str, torch.Tensor]:
    """Every tensor of the directory's safetensors weights (one file, or the shards of its index),
    views of the decrypted buffers. Each shard's tensors must be exactly those the index assigns to it."""
    where = shown_place(directory.root)
    if SAFETENSORS_INDEX in directory:
        index = directory.read_json(SAFETENSORS_INDEX)
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(weight_map, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                       for k, v in weight_map.items()):
            raise FormatError(f"{where}: {SAFETENSORS_INDEX} has no weight_map of names to shard files")
        shards: dict[str, set[str]] = {}
        for name, shard in weight_map.items():
            shards.setdefault(shard, set()).add(name)
    elif SAFETENSORS in directory:
        shards = {SAFETENSORS: set()}
        weight_map = None
    else:
        bins = [n for n in directory.names() if n.endswith(".bin")]
        hint = " (it holds PyTorch .bin weights: convert them to safetensors first)" if bins else ""
        raise FormatError(f"{where}: no {SAFETENSORS} or {SAFETENSORS_INDEX}{hint}")
    state: dict[str, torch.Tensor] = {}
    for shard in sorted(shards):
        if shard not in directory:
            raise FormatError(f"{where}: {SAFETENSORS_INDEX} names shard {shard!r}, which the manifest does not list")
        buf = directory.read(shard)
        tensors, _ = shard_tensors(buf, f"{where}/{shard}")
        del buf  # the tensors hold it now
        if weight_map is not None and set(tensors) != shards[shard]:
            raise FormatError(f"{where}: shard {shard!r} does not hold the tensors {SAFETENSORS_INDEX} assigns to it")
        overlap = state.keys() & tensors.keys()
        if overlap:
            raise FormatError(f"{where}: {len(overlap)} tensor(s) of shard {shard!r} appear in another shard too")
        state.update(tensors)
    return state


def from_pretrained(path: Any, key: Any, *, model_class: Any = None, dtype: Any = None,
                    storage_options: Optional[Mapping[str, Any]] = None, **kwargs: Any) -> Any:
    """See modelcrypt.transformers.from_pretrained."""
    for name, why in _REFUSED.items():
        if name in kwargs:
            raise ValueError(f"from_pretrained: {name}= is not supported here ({why})")
    directory = EncryptedModelDirectory(path, key, storage_options)
    where = shown_place(directory.root)
    if CONFIG not in directory:
        raise FormatError(f"{where}: no {CONFIG} in the encrypted directory")
    want_info = kwargs.pop("output_loading_info", False)
    config, kwargs = config_from_dict(directory.read_json(CONFIG), where, kwargs)
    cls = _concrete_class(model_class_for(config, model_class), config)
    state = read_state_dict(directory)
    if dtype is not None:
        kwargs["dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"] = dtype
    model, info = cls.from_pretrained(None, config=config, state_dict=state, output_loading_info=True, **kwargs)
    del state
    missing = sorted(info.get("missing_keys") or ())
    if missing:
        raise FormatError(f"{where}: the checkpoint lacks {len(missing)} weight(s) of {cls.__name__} "
                          f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); "
                          "pass the model_class it was saved from")
    on_meta = [n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if t.is_meta]
    if on_meta:
        raise FormatError(f"{where}: {len(on_meta)} tensor(s) of {cls.__name__} were left uninitialised "
                          f"({', '.join(on_meta[:3])})")
    if GENERATION_CONFIG in directory and getattr(model, "can_generate", lambda: False)():
        model.generation_config = transformers.GenerationConfig.from_dict(directory.read_json(GENERATION_CONFIG))
    return (model, info) if want_info else model
