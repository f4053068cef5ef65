"""Hugging Face transformers models from encrypted directories, with no plaintext on disk.

    import modelcrypt.transformers as mchf

    # modelcrypt encrypt my-llama/ -o my-llama.enc/ --key-file k   (or mchf.save_pretrained)
    model = mchf.from_pretrained("my-llama.enc", key, dtype=torch.bfloat16)
    tok = mchf.tokenizer_from_pretrained("my-llama.enc", key)
    mchf.save_pretrained(model, "out.enc", key, max_shard_size="2GB", tokenizer=tok)

An encrypted Hugging Face directory is what ``modelcrypt encrypt DIR -o DIR.enc/`` writes: every
file (config.json, generation_config.json, tokenizer files, ``model-0000N-of-0000M.safetensors``,
``model.safetensors.index.json``) encrypted under its own name, bound to one random set id and its
relative path, plus the encrypted manifest ``.modelcrypt-manifest`` listing every member. Loading
checks the directory against the manifest (a shard missing, added, swapped with another member or
taken from another save: SetMismatchError; a modified file: AuthenticationError; a wrong key:
KeyMismatchError) and decrypts everything into memory only. ``save_pretrained`` writes exactly
such a directory, which ``modelcrypt decrypt DIR.enc -o DIR/`` turns back into a directory
``transformers.AutoModel*.from_pretrained`` loads.

Importing this module works without transformers; its functions raise ImportError with the
install command: ``pip install "modelcrypt[transformers]"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

from .._api import _reader_key

__all__ = ["from_pretrained", "tokenizer_from_pretrained", "save_pretrained"]

_INSTALL = 'modelcrypt.transformers needs Hugging Face transformers and PyTorch: pip install "modelcrypt[transformers]"'


def _require() -> None:
    try:
        import safetensors  # noqa: F401
        import tokenizers  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"{_INSTALL} ({exc})") from exc


def from_pretrained(path: Any, key: Any = None, *, model_class: Any = None, dtype: Any = None,
                    torch_dtype: Any = None, identity: Any = None, trusted_signers: Any = None,
                    storage_options: Optional[Mapping[str, Any]] = None, **kwargs: Any) -> Any:
    """A transformers model from the encrypted Hugging Face directory ``path``.

    config.json, generation_config.json and the safetensors weights (``model.safetensors`` or the
    shards ``model.safetensors.index.json`` lists) are decrypted into memory, each checked against
    the directory's manifest. ``model_class``: a model class (``LlamaForCausalLM``) or an Auto class
    (``AutoModelForCausalLM``); by default the class config.json's ``architectures`` names
    (AutoModel when transformers has none of them). The model is built by transformers'
    own ``model_class.from_pretrained(None, config=..., state_dict=...)``: on the meta device, then
    the decrypted tensors assigned, tied weights re-tied and non-persistent buffers (rotary
    ``inv_freq``, ``position_ids``) initialised as transformers does.

    Memory: without a dtype conversion the parameters are views of modelcrypt's decrypted
    buffers (no second copy of the weights); the buffers live as long as the parameters.
    ``dtype`` (or its older name ``torch_dtype``) other than the checkpoint's converts, i.e.
    copies, the weights. Weights the model needs but the checkpoint lacks are a FormatError
    (transformers would initialise them randomly). ``kwargs`` go to transformers' from_pretrained
    (``attn_implementation``, ``device_map`` to a device, ...); options that read or write files
    (``offload_folder``, ``gguf_file``, ``trust_remote_code``, ...) are refused.

    ``identity=`` (a modelcrypt.Identity) in place of ``key`` opens a directory encrypted to its
    recipient; ``trusted_signers`` requires every file and the manifest to be signed by one of them.
    ``path`` may be a URL prefix (``s3://bucket/my-llama.enc``, fsspec; ``storage_options`` as
    fsspec takes them): the members are the objects under it, checked as in a local directory
    (except that objects added beside them cannot be listed, so they are ignored).
    """
    _require()
    if dtype is not None and torch_dtype is not None:
        raise TypeError("give dtype or torch_dtype, not both")
    key = _reader_key(key, trusted_signers, "AES-GCM", identity)
    from ._load import from_pretrained as load

    return load(path, key, model_class=model_class, dtype=dtype if dtype is not None else torch_dtype,
                storage_options=storage_options, **kwargs)


def tokenizer_from_pretrained(path: Any, key: Any = None, *, identity: Any = None, trusted_signers: Any = None,
                              storage_options: Optional[Mapping[str, Any]] = None, **kwargs: Any) -> Any:
    """The (fast) tokenizer of the encrypted Hugging Face directory ``path``, built in memory from
    its decrypted tokenizer.json, tokenizer_config.json, special_tokens_map.json and
    chat_template.jinja (whichever exist), as the tokenizer_class the config names (its ``Fast``
    variant; PreTrainedTokenizerFast when transformers has none). Slow-only tokenizers (a
    sentencepiece ``tokenizer.model`` or ``vocab.txt`` without tokenizer.json) are a FormatError
    saying how to convert them. ``kwargs`` override tokenizer_config.json's settings. ``key``,
    ``identity``, ``trusted_signers`` and ``storage_options`` as for from_pretrained."""
    _require()
    key = _reader_key(key, trusted_signers, "AES-GCM", identity)
    from ._directory import EncryptedModelDirectory
    from ._tokenizer import tokenizer_from_directory

    return tokenizer_from_directory(EncryptedModelDirectory(path, key, storage_options), **kwargs)


def save_pretrained(model: Any, path: Any, key: Any, *, max_shard_size: Any = "5GB", tokenizer: Any = None,
                    overwrite: bool = False, signing_key: Any = None,
                    metadata: Optional[Mapping[str, str]] = None) -> list[str]:
    """Write ``model`` as the encrypted Hugging Face directory ``path``, encrypted straight from
    memory: config.json, generation_config.json (models that generate), the weights as encrypted
    safetensors (``model.safetensors``, or shards of at most ``max_shard_size`` named
    ``model-0000N-of-0000M.safetensors`` plus ``model.safetensors.index.json``, split by
    huggingface_hub as transformers does; tied weights saved once) and, with ``tokenizer=`` (a
    fast tokenizer), tokenizer.json and tokenizer_config.json; all bound into one set with an
    encrypted manifest, exactly as ``modelcrypt encrypt DIR -o path`` would write the directory
    transformers' own save_pretrained writes. No plaintext file is written at any point.

    The directory is built beside ``path`` and renamed into place when complete; an existing
    ``path`` needs ``overwrite=True``. ``signing_key`` signs every file and the manifest (format
    v3); ``metadata`` goes into every file's authenticated metadata. Returns the files' names."""
    _require()
    from ._save import save_pretrained as save

    return save(model, path, key, max_shard_size=max_shard_size, tokenizer=tokenizer, overwrite=overwrite,
                signing_key=signing_key, metadata=metadata)
