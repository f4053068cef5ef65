"""Tokenizers of an encrypted Hugging Face directory: built from the decrypted tokenizer.json and
tokenizer_config.json in memory, and serialised to those two files in memory for save_pretrained."""

from __future__ import annotations

import copy
import json
from typing import Any

import transformers

from .._sets import shown_place
from ..exceptions import FormatError
from ._directory import EncryptedModelDirectory

__all__: list[str] = []

TOKENIZER = "tokenizer.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
SPECIAL_TOKENS_MAP = "special_tokens_map.json"
CHAT_TEMPLATE = "chat_template.jinja"
_SLOW_VOCABULARIES = ("tokenizer.model", "spiece.model", "sentencepiece.bpe.model", "vocab.txt", "vocab.json")


def _fast_base() -> Any:
    return transformers.PreTrainedTokenizerFast


def _tokenizer_class(name: Any) -> Any:
    """The fast tokenizer class tokenizer_config.json names (``XTokenizer`` -> ``XTokenizerFast`` when
    transformers has one), else PreTrainedTokenizerFast."""
    base = _fast_base()
    if isinstance(name, str):
        for candidate in (name if name.endswith("Fast") else name + "Fast", name):
            cls = getattr(transformers, candidate, None)
            if isinstance(cls, type) and issubclass(cls, base):
                return cls
    return base


def _init_kwargs(cls: Any, config: dict, special_tokens_map: Any, chat_template: Any) -> dict:
    """tokenizer_config.json as constructor arguments, as transformers' own from_pretrained reads it."""
    from transformers.tokenization_utils_base import AddedToken

    kwargs = dict(config)
    for name in ("tokenizer_class", "auto_map", "init_inputs", "add_bos_token", "add_eos_token", "name_or_path",
                 "tokenizer_file", "vocab_file", "merges_file", "special_tokens_map_file"):
        kwargs.pop(name, None)
    if chat_template is not None:
        kwargs["chat_template"] = chat_template
    if isinstance(special_tokens_map, dict) and "added_tokens_decoder" not in kwargs:
        for name, value in special_tokens_map.items():
            if isinstance(value, dict):
                value = dict(value)
                value.pop("special", None)
                value = AddedToken(**value, special=True)
            kwargs.setdefault(name, value)
    if "additional_special_tokens" in kwargs and not kwargs.get("extra_special_tokens"):
        kwargs["extra_special_tokens"] = kwargs.pop("additional_special_tokens")
    decoder = kwargs.pop("added_tokens_decoder", None)
    if isinstance(decoder, dict):
        kwargs["added_tokens_decoder"] = {int(i): AddedToken(**t) if isinstance(t, dict) else t
                                          for i, t in decoder.items()}
    return cls.convert_added_tokens(kwargs, save=False)


def tokenizer_from_directory(directory: EncryptedModelDirectory, **kwargs: Any) -> Any:
    """See modelcrypt.transformers.tokenizer_from_pretrained."""
    from tokenizers import Tokenizer

    where = shown_place(directory.root)
    if TOKENIZER not in directory:
        slow = [n for n in _SLOW_VOCABULARIES if n in directory]
        raise FormatError(f"{where}: no {TOKENIZER}" + (
            f" (it has {slow[0]}: slow tokenizers read their vocabulary from a file, which modelcrypt does not "
            "write; convert it with transformers' AutoTokenizer.from_pretrained(plain_dir).save_pretrained() "
            "to get a tokenizer.json, then encrypt)" if slow else ""))
    config = directory.read_json(TOKENIZER_CONFIG) if TOKENIZER_CONFIG in directory else {}
    if not isinstance(config, dict):
        raise FormatError(f"{where}: {TOKENIZER_CONFIG} is not a JSON object")
    special = directory.read_json(SPECIAL_TOKENS_MAP) if SPECIAL_TOKENS_MAP in directory else None
    template = directory.read_text(CHAT_TEMPLATE) if CHAT_TEMPLATE in directory else None
    cls = _tokenizer_class(config.get("tokenizer_class"))
    try:
        backend = Tokenizer.from_str(directory.read_text(TOKENIZER))
    except Exception as exc:  # tokenizers raises a bare Exception on malformed JSON
        raise FormatError(f"{where}: {TOKENIZER} is not a tokenizers file ({type(exc).__name__})") from None
    init = _init_kwargs(cls, config, special, template)
    init.update(kwargs)
    return cls(tokenizer_object=backend, **init)


def tokenizer_files(tokenizer: Any) -> dict[str, bytes]:
    """{file name: contents} of a fast tokenizer, as its save_pretrained writes them (tokenizer.json
    and tokenizer_config.json, chat templates inside the config), built in memory."""
    if not isinstance(tokenizer, _fast_base()):
        raise TypeError(f"tokenizer must be a fast (tokenizers-backed) transformers tokenizer, not "
                        f"{type(tokenizer).__name__}")
    config = copy.deepcopy(tokenizer.init_kwargs)
    config.pop("add_bos_token", None)
    config.pop("add_eos_token", None)
    for name in set(config) | {"model_max_length"}:
        if name not in ("add_bos_token", "add_eos_token") and hasattr(tokenizer, name):
            config[name] = getattr(tokenizer, name)
    config.update(tokenizer.special_tokens_map)
    extra = getattr(tokenizer, "_extra_special_tokens", None)
    if extra:
        config["extra_special_tokens"] = tokenizer.extra_special_tokens
    if getattr(tokenizer, "chat_template", None) is not None:
        config["chat_template"] = tokenizer.chat_template
    if len(tokenizer.init_inputs) > 0:
        config["init_inputs"] = copy.deepcopy(tokenizer.init_inputs)
    for file_id in tokenizer.vocab_files_names:
        config.pop(file_id, None)
    config = tokenizer.convert_added_tokens(config, add_type_field=True, save=True)
    config["added_tokens_decoder"] = {i: t.__getstate__() for i, t in tokenizer.added_tokens_decoder.items()}
    if any(base.__name__ == "TokenizersBackend" for base in type(tokenizer).__mro__):
        config.pop("added_tokens_decoder", None)  # tokenizer.json holds them (transformers 5 saves them there only)
        config.pop("additional_special_tokens", None)
    config["tokenizer_class"] = type(tokenizer).__name__
    for name in ("name_or_path", "special_tokens_map_file", "tokenizer_file", "device_map", "slow_tokenizer_class",
                 "files_loaded", "auto_map"):
        config.pop(name, None)
    text = json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return {TOKENIZER_CONFIG: text.encode("utf-8"), TOKENIZER: tokenizer.backend_tokenizer.to_str().encode("utf-8")}
