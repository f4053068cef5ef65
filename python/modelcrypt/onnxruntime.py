"""Run encrypted ONNX models in ONNX Runtime without writing plaintext to disk.

    import modelcrypt.onnxruntime as mcort

    session = mcort.InferenceSession("model.onnx.mcx", key, providers=["CPUExecutionProvider"])
    outputs = session.run(None, {"x": x})      # a real onnxruntime.InferenceSession

Needs the ``onnx`` extra: ``pip install "modelcrypt[onnx]"``.

External data (models over 2 GiB, or saved with ``save_as_external_data=True``): encrypt every
external data file with the same key under the same relative name (``weights.bin`` encrypted in place
as ``weights.bin``, e.g. ``modelcrypt encrypt model_dir/ -o model_dir.enc/``), or pass
``external_data={"weights.bin": "elsewhere/weights.bin.mcx"}``. The file names are read from the
decrypted model; each file is decrypted into memory and handed to ONNX Runtime with
``SessionOptions.add_external_initializers_from_files_in_memory``.

From object storage (fsspec; external data files are the sibling objects of the model)::

    session = mcort.InferenceSession("s3://bucket/model/model.onnx", key, storage_options={"anon": False})
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Mapping
from typing import Any

try:
    import onnxruntime as _ort  # the real ONNX Runtime (absolute import), not this module
except ImportError as exc:  # pragma: no cover - exercised in environments without onnxruntime
    raise ImportError(
        'modelcrypt.onnxruntime needs ONNX Runtime: pip install "modelcrypt[onnx]" (or pip install onnxruntime)'
    ) from exc

from . import _core
from ._api import _reader_key
from ._frameworks import DecMode
from ._onnx_external import decrypt_external, external_data_locations
from ._sets import BoundFiles

__all__ = ["InferenceSession", "external_data_locations"]

# SessionOptions the caller passed in that now reference decrypted external data in memory: ONNX
# Runtime keeps raw pointers to those buffers in the options object, so they must live as long as it.
_HELD_BY_OPTIONS: "weakref.WeakKeyDictionary[Any, list]" = weakref.WeakKeyDictionary()


def InferenceSession(  # noqa: N802 - mirrors onnxruntime.InferenceSession
    path: Any,
    key: Any = None,
    mode: DecMode = "AES-GCM",
    *,
    external_data: Mapping[str, Any] | None = None,
    format: str = "modelcrypt",
    trusted_signers: Any = None,
    identity: Any = None,
    storage_options: Mapping[str, Any] | None = None,
    **session_kwargs: Any,
) -> "_ort.InferenceSession":
    """Decrypt the ONNX (or ORT-format) model at ``path`` in memory and return an
    ``onnxruntime.InferenceSession`` built from it.

    ``session_kwargs`` go to ``onnxruntime.InferenceSession`` (``sess_options``, ``providers``,
    ``provider_options``, ...). ``mode`` is a modelcrypt mode name or a MindSpore-style callable
    ``(cipher_file: str, key: bytes) -> bytes`` (modelcrypt does not check a custom cipher's
    correctness). Raises KeyMismatchError / AuthenticationError as modelcrypt.load does. ``format``
    as for modelcrypt.load: format v1 only unless a legacy format is named.

    External data files are found next to ``path`` under the names the model records (they must be
    encrypted with the same key and mode), or looked up in ``external_data`` (name -> encrypted file).
    Names that are absolute or leave the model's directory are refused, as ONNX Runtime refuses them.

    Memory: ONNX Runtime's Python API only accepts ``bytes``, so the model is copied once out of the
    DecryptedBuffer; the DecryptedBuffer is wiped right away and the ``bytes`` copy is wiped as soon
    as the session exists (ONNX Runtime has parsed it into its own memory by then). So
    ``session.set_providers()``, which rebuilds the session from those bytes, is not available: build a
    new session instead. The exception is an ORT-format model with the session config entry
    ``session.use_ort_model_bytes_directly=1``, whose bytes ONNX Runtime keeps using: they are kept
    (not wiped) for the session's lifetime. External data buffers are passed without copying and
    wiped once the session exists, unless you passed your own ``sess_options``: ONNX Runtime keeps
    pointers to them in that object, so they live (and are wiped) with it, and it cannot be reused
    for another modelcrypt session with external data.

    ``sess_options.optimized_model_filepath`` is refused: ONNX Runtime would write the decrypted,
    optimized model there in plaintext. So is every other option that makes ONNX Runtime or an
    execution provider write the model, a compiled engine or a cache derived from it to disk, with a
    ValueError naming it: the session config entries ``ep.context_enable`` (EP-context model dump)
    and the other ``ep.context_*`` dump settings, ``session.save_model_format``,
    ``session.optimized_model_external_initializers_file_name``,
    ``session.save_external_prepacked_constant_initializers``, ``session.debug_layout_transformation``;
    and the provider options ``trt_engine_cache_enable``, ``trt_engine_cache_path``,
    ``trt_dump_ep_context_model``, ``trt_ep_context_file_path``, ``trt_dump_subgraphs`` (TensorRT, also
    through their ``ORT_TENSORRT_*`` environment variables), ``cache_dir`` and a ``load_config`` with
    ``CACHE_DIR`` (OpenVINO model caching; ``cache_dir`` of Vitis AI), ``migraphx_save_compiled_model``,
    ``migraphx_save_model_path`` (MIGraphX), ``ModelCacheDirectory`` (CoreML).

    ``trusted_signers`` as for modelcrypt.load: the model and every external data file must carry a
    publisher signature by one of them. ``identity=`` (an Identity) in place of ``key`` opens a model
    (and external data files) encrypted to its recipient (format v2).

    ``path`` may be a URL (``s3://``, ``gs://``, ``az://``, ``http(s)://``, ... through fsspec;
    ``storage_options`` as fsspec takes them, for every file of the model) or a seekable binary file
    object, as for modelcrypt.load: modelcrypt files only, read straight into memory. A model at a
    URL finds its external data files as sibling objects under the same prefix
    (``s3://bucket/m/model.onnx`` -> ``s3://bucket/m/weights.bin``), checked as one set exactly as
    beside a local model; ``external_data`` values may be URLs too. A model given as a file object
    needs every external data file in ``external_data``. ``storage_options`` with a local path:
    ValueError.
    """
    key = _reader_key(key, trusted_signers, mode, identity)
    sess_options = session_kwargs.pop("sess_options", None)
    caller_options = sess_options is not None
    if caller_options and sess_options.optimized_model_filepath:
        raise ValueError(
            "sess_options.optimized_model_filepath is set: ONNX Runtime would write the decrypted model there "
            "in plaintext"
        )
    if caller_options:
        _refuse_session_config_writes(sess_options)
    _refuse_provider_writes(session_kwargs.get("providers"), session_kwargs.get("provider_options"))
    if caller_options and sess_options in _HELD_BY_OPTIONS:
        raise ValueError(
            "these sess_options already carry decrypted external data from an earlier modelcrypt session "
            "(ONNX Runtime looks it up by file name); pass a fresh onnxruntime.SessionOptions()"
        )
    # the model and its external data: one set (docs/FORMAT.md, "Sets of files")
    files = BoundFiles(key, mode, format, storage_options)
    with files.load(path) as buf:
        model_bytes = bytes(buf)  # ONNX Runtime's Python API takes bytes only: the one extra copy
    keep_model_bytes = held = False
    external: list = []
    try:
        names = external_data_locations(model_bytes)
        if names:
            external = decrypt_external(path, files, names, external_data)
            if sess_options is None:
                sess_options = _ort.SessionOptions()
            if not hasattr(sess_options, "add_external_initializers_from_files_in_memory"):
                raise RuntimeError(
                    f"the model has external data ({len(names)} file(s)): loading it from memory needs "
                    "SessionOptions.add_external_initializers_from_files_in_memory, which this onnxruntime "
                    f"({_ort.__version__}) lacks; upgrade onnxruntime"
                )
            if caller_options:  # from here on the caller's options hold pointers into these buffers
                _HELD_BY_OPTIONS[sess_options] = external
                held = True
            sess_options.add_external_initializers_from_files_in_memory(
                names, [memoryview(b) for b in external], [len(b) for b in external]
            )
        keep_model_bytes = _uses_model_bytes_directly(sess_options)
        session = _ort.InferenceSession(model_bytes, sess_options=sess_options, **session_kwargs)
    finally:
        if not keep_model_bytes and len(model_bytes) >= 2:
            _core.wipe_bytes_object(model_bytes)
        if not held:
            for b in external:
                b.close()
    if not keep_model_bytes:
        # ONNX Runtime keeps the model bytes only to rebuild the session in set_providers(); they are zeros now.
        session._model_bytes = None
        session.set_providers = _set_providers_unavailable
    return session


# Session config entries that make ONNX Runtime write the (decrypted) model, or an EP-context model
# holding the compiled weights, to disk. Refused when set (to anything but "0" for the switches).
_REFUSED_CONFIG_SWITCHES = ("ep.context_enable", "session.save_external_prepacked_constant_initializers",
                            "session.debug_layout_transformation")
_REFUSED_CONFIG_ENTRIES = ("ep.context_file_path", "ep.context_embed_mode",
                           "ep.context_model_external_initializers_file_name", "session.save_model_format",
                           "session.optimized_model_external_initializers_file_name")
# Provider options that write an engine, a compiled model or a cache holding the weights to disk:
# switches (refused unless false) and paths (refused unless empty).
_REFUSED_PROVIDER_SWITCHES = ("trt_engine_cache_enable", "trt_dump_ep_context_model", "trt_dump_subgraphs",
                              "migraphx_save_compiled_model")
_REFUSED_PROVIDER_PATHS = ("trt_engine_cache_path", "trt_ep_context_file_path", "cache_dir",
                           "migraphx_save_model_path", "ModelCacheDirectory")
# Environment variables the TensorRT and MIGraphX providers read in place of those options.
_REFUSED_ENVIRONMENT = {
    "TensorrtExecutionProvider": ("ORT_TENSORRT_ENGINE_CACHE_ENABLE", "ORT_TENSORRT_DUMP_SUBGRAPHS",
                                  "ORT_DUMP_EP_CONTEXT_MODEL"),
    "MIGraphXExecutionProvider": ("ORT_MIGRAPHX_SAVE_COMPILED_MODEL",),
}


def _enabled(value: Any) -> bool:
    return str(value).strip().lower() not in ("", "0", "false", "none")


def _config_entry(sess_options: Any, key: str) -> str | None:
    try:
        return sess_options.get_session_config_entry(key)
    except RuntimeError:  # ONNX Runtime raises for an entry that was never set
        return None


def _refuse_session_config_writes(sess_options: Any) -> None:
    for key in _REFUSED_CONFIG_SWITCHES:
        value = _config_entry(sess_options, key)
        if value is not None and _enabled(value):
            raise ValueError(
                f"session config entry {key!r} is set to {value!r}: ONNX Runtime would write the decrypted model "
                "(or a compiled model holding its weights) to disk"
            )
    for key in _REFUSED_CONFIG_ENTRIES:
        if _config_entry(sess_options, key) is not None:
            raise ValueError(
                f"session config entry {key!r} is set: it configures writing the decrypted model (or a compiled "
                "model holding its weights) to disk, which modelcrypt refuses"
            )


def _refuse_provider_writes(providers: Any, provider_options: Any) -> None:
    option_sets: list = []
    names: list[str] = []
    for entry in providers or ():
        if isinstance(entry, (tuple, list)) and len(entry) == 2:
            names.append(str(entry[0]))
            option_sets.append((str(entry[0]), entry[1]))
        else:
            names.append(str(entry))
    for i, options in enumerate(provider_options or ()):
        option_sets.append((names[i] if i < len(names) else f"provider_options[{i}]", options))
    for name, options in option_sets:
        if not isinstance(options, Mapping):
            continue
        for key, value in options.items():
            key = str(key)
            if (key in _REFUSED_PROVIDER_SWITCHES and _enabled(value)) \
                    or (key in _REFUSED_PROVIDER_PATHS and str(value)):
                raise ValueError(
                    f"{name} option {key!r} is set to {value!r}: the provider would write an engine or cache "
                    "holding the decrypted weights to disk"
                )
            if key == "load_config" and "CACHE_DIR" in _text_or_file(value):
                raise ValueError(
                    f"{name} option 'load_config' sets CACHE_DIR: OpenVINO would write compiled models holding the "
                    "decrypted weights to disk"
                )
    for name in names:
        for var in _REFUSED_ENVIRONMENT.get(name, ()):
            if _enabled(os.environ.get(var, "")):
                raise ValueError(
                    f"environment variable {var} is set: {name} would write an engine or compiled model holding the "
                    "decrypted weights to disk"
                )


def _text_or_file(value: Any) -> str:
    """OpenVINO's load_config: JSON text, or the path of a JSON file."""
    text = str(value)
    try:
        if os.path.isfile(text):
            with open(text, encoding="utf-8", errors="replace") as f:
                return f.read()
    except (OSError, ValueError):
        pass
    return text


def _set_providers_unavailable(*_: Any, **__: Any) -> None:
    raise RuntimeError(
        "set_providers() rebuilds the session from the model bytes, which modelcrypt wiped after building it; "
        "create a new modelcrypt.onnxruntime.InferenceSession with the providers you want instead"
    )


def _uses_model_bytes_directly(sess_options: Any) -> bool:
    if sess_options is None:
        return False
    try:
        return sess_options.get_session_config_entry("session.use_ort_model_bytes_directly") == "1"
    except RuntimeError:  # ONNX Runtime raises for an entry that was never set
        return False
