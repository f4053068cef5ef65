"""Run encrypted Paddle Inference models without writing plaintext to disk.

    import modelcrypt.paddle as mcpaddle

    predictor = mcpaddle.create_predictor("model.pdmodel.mcx", "model.pdiparams.mcx", key,
                                          disable_gpu=True, switch_ir_optim=False)
    predictor = mcpaddle.create_predictor("s3://bucket/m/model.pdmodel", "s3://bucket/m/model.pdiparams", key,
                                          storage_options={...}, disable_gpu=True)   # fsspec URLs

Needs the ``paddle`` extra: ``pip install "modelcrypt[paddle]"``.

Only the legacy program format (``.pdmodel`` + ``.pdiparams``) can be loaded from memory: Paddle's
``Config.set_model_buffer`` takes a ProgramDesc. Paddle 3 saves PIR programs (``.json``) by default,
and Paddle itself cannot load those from a buffer (given one, it crashes): modelcrypt refuses them
with a ValueError. Export with ``FLAGS_enable_pir_api=0`` in the environment of the exporting
process (``paddle.jit.save`` / ``paddle.static.save_inference_model``) to get the legacy format.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

try:
    import paddle.inference as _inference  # the real Paddle (absolute import), not this module
except ImportError as exc:  # pragma: no cover - exercised in environments without paddle
    raise ImportError(
        'modelcrypt.paddle needs PaddlePaddle: pip install "modelcrypt[paddle]" (or pip install paddlepaddle)'
    ) from exc

from . import _core
from ._api import _reader_key
from ._frameworks import DecMode
from ._sets import BoundFiles, shown_place

__all__ = ["create_predictor", "create_config"]

# Config methods that would load the model from files instead, or write the (optimized, decrypted)
# model to disk: refused in config_options.
_REFUSED_OPTIONS = {
    "set_model": "the model comes from the decrypted buffers",
    "set_prog_file": "the model comes from the decrypted buffers",
    "set_params_file": "the model comes from the decrypted buffers",
    "set_model_buffer": "modelcrypt sets the model buffers itself",
    "set_optim_cache_dir": "Paddle would write the optimized, decrypted model there",
    "enable_save_optim_model": "Paddle would write the optimized, decrypted model to disk",
    "use_optimized_model": "Paddle would load an optimized model from its cache directory instead",
}

# Config methods refused only with certain arguments: name -> (argument name, its position, default,
# why). enable_tensorrt_engine(use_static=True) serializes the TensorRT engines (the compiled weights)
# to the optimization cache directory; switch_ir_debug(True) writes the program after every pass;
# enable_tensorrt_inspector(inspector_serialize=True) writes the engines' layer information.
_REFUSED_ARGUMENTS = {
    "enable_tensorrt_engine": ("use_static", 4, False, "Paddle would serialize the TensorRT engines, which hold the "
                               "decrypted weights, to disk"),
    "switch_ir_debug": ("x", 0, True, "Paddle would write the decrypted program to disk after every pass"),
    "enable_tensorrt_inspector": ("inspector_serialize", 0, False, "Paddle would write the TensorRT engines' layer "
                                  "information to disk"),
}


def _refuse_writing_arguments(name: str, value: Any) -> None:
    if name not in _REFUSED_ARGUMENTS:
        return
    arg, position, default, why = _REFUSED_ARGUMENTS[name]
    if value is True:
        given = default
    elif isinstance(value, tuple):
        given = value[position] if len(value) > position else default
    elif isinstance(value, dict):
        given = value.get(arg, default)
    else:
        given = value if position == 0 else default
    if given:
        raise ValueError(f"config option {name!r} with {arg}={given!r} is not allowed: {why}")


# What paddle.jit.save writes by default in Paddle 3 (FLAGS_enable_pir_api=1): a JSON PIR program,
# ``{"base_code":{"magic":"pir",...},"program":...}``. A ProgramDesc (protobuf) never starts with
# "{" (0x7B would be field 15 as a group, which ProgramDesc does not have).
_JSON_WHITESPACE = b" \t\r\n"
_PIR_MAGIC = b'"magic":"pir"'

_PIR_EXPORT_ADVICE = (
    "export the legacy program format instead: run the export with the environment variable "
    "FLAGS_enable_pir_api=0 set before paddle is imported (for example `FLAGS_enable_pir_api=0 python export.py`; "
    "paddle.jit.save / paddle.static.save_inference_model then write <prefix>.pdmodel + <prefix>.pdiparams), "
    "encrypt those two files and pass them"
)


def _check_program_desc(program: Any, model_path: Any) -> None:
    """Refuses a program that is JSON (a Paddle 3 PIR program) before Paddle sees it: given one,
    ``Config.set_model_buffer`` + ``create_predictor`` crash the process (segmentation fault)."""
    with memoryview(program) as view:
        start = 0
        while start < min(len(view), 4096) and view[start] in _JSON_WHITESPACE:
            start += 1
        if start >= len(view) or view[start] != ord("{"):
            return
        head = bytes(view[start:start + 64])  # plaintext: wiped below
    try:
        pir = _PIR_MAGIC in head
    finally:
        if len(head) >= 2:
            _core.wipe_bytes_object(head)
    where = shown_place(model_path)
    what = ("a Paddle 3 PIR program (JSON), which paddle.jit.save writes by default in Paddle 3" if pir
            else "JSON, not a ProgramDesc (a Paddle 3 PIR program?)")
    raise ValueError(
        f"{where}: the decrypted program is {what}; Paddle Inference can load only a ProgramDesc "
        "(.pdmodel) from memory, and crashes on a PIR program: " + _PIR_EXPORT_ADVICE
    )


def create_config(
    model_path: Any, params_path: Any, key: Any = None, mode: DecMode = "AES-GCM", *, format: str = "modelcrypt",
    trusted_signers: Any = None, identity: Any = None, storage_options: Mapping[str, Any] | None = None,
    **config_options: Any
) -> "_inference.Config":
    """A ``paddle.inference.Config`` holding the decrypted program and parameters (see
    :func:`create_predictor`). The Config holds its own copy of the plaintext until it is freed.
    ``model_path`` and ``params_path`` may be URLs or file objects (see :func:`create_predictor`)."""
    key = _reader_key(key, trusted_signers, mode, identity)
    for name in config_options:
        if name in _REFUSED_OPTIONS:
            raise ValueError(f"config option {name!r} is not allowed: {_REFUSED_OPTIONS[name]}")
        _refuse_writing_arguments(name, config_options[name])
    config = _inference.Config()
    for name, value in config_options.items():
        method = getattr(config, name, None)
        if name.startswith("_") or not callable(method):
            raise ValueError(f"paddle.inference.Config has no method {name!r}")
        if value is True:
            method()
        elif isinstance(value, tuple):
            method(*value)
        elif isinstance(value, dict):
            method(**value)
        else:
            method(value)
    program = params = None
    try:
        # program and parameters: one set (docs/FORMAT.md, "Sets of files")
        files = BoundFiles(key, mode, format, storage_options)
        with files.load(model_path) as buf:
            _check_program_desc(buf, model_path)
            program = bytes(buf)  # set_model_buffer takes bytes only: one extra, wiped copy
        with files.load(params_path) as buf:
            params = bytes(buf)
        # Paddle copies both. (Its type hints say str; the binding takes the bytes of a model.)
        config.set_model_buffer(program, len(program), params, len(params))  # type: ignore[arg-type]
    finally:
        for plaintext in (program, params):
            if plaintext is not None and len(plaintext) >= 2:
                _core.wipe_bytes_object(plaintext)
    return config


def create_predictor(
    model_path: Any, params_path: Any, key: Any = None, mode: DecMode = "AES-GCM", *, format: str = "modelcrypt",
    trusted_signers: Any = None, identity: Any = None, storage_options: Mapping[str, Any] | None = None,
    **config_options: Any
) -> Any:
    """Decrypt a legacy Paddle inference model (``.pdmodel`` program + ``.pdiparams`` parameters,
    both encrypted with ``key``) into memory and return ``paddle.inference.create_predictor(config)``.

    ``config_options`` are ``paddle.inference.Config`` method calls, applied in order before the
    model is set: ``name=True`` calls ``config.name()``, a tuple calls ``config.name(*value)``, a
    dict ``config.name(**value)``, any other value ``config.name(value)``. For example
    ``create_predictor(m, p, key, disable_gpu=True, switch_ir_optim=False,
    set_cpu_math_library_num_threads=2, enable_use_gpu=(256, 0))``. Options that load the model
    from files or write the optimized model to disk (``set_model``, ``set_optim_cache_dir``,
    ``enable_save_optim_model``, ``use_optimized_model``, ...) are refused, and so are
    ``enable_tensorrt_engine`` with ``use_static=True`` (serialized TensorRT engines hold the
    weights), ``switch_ir_debug`` switched on (writes the program after each pass) and
    ``enable_tensorrt_inspector`` with ``inspector_serialize=True``.

    ``mode``: a modelcrypt mode name or a MindSpore-style callable ``(cipher_file: str, key: bytes)
    -> bytes`` (modelcrypt does not check a custom cipher's correctness). ``format`` as for
    modelcrypt.load: PaddleX-encrypted models need ``format="paddlex"``, Paddle cipher files a
    ``"paddle:<cipher>"`` mode. Memory: each file is copied
    once out of its DecryptedBuffer into ``bytes`` (which ``set_model_buffer`` requires) and Paddle
    copies it again into the Config; modelcrypt wipes its copies, Paddle's live in the predictor.

    Paddle 3's PIR programs (``.json``) cannot be loaded from memory by Paddle itself (it crashes
    on one): they are refused with a ValueError before Paddle sees them. Export the legacy format
    by running the export with ``FLAGS_enable_pir_api=0`` in the environment.

    ``trusted_signers`` as for modelcrypt.load: both files must be signed by one of them.
    ``identity=`` (an Identity) in place of ``key`` opens files encrypted to its recipient (format v2).

    Both files may be URLs (``s3://``, ``gs://``, ``az://``, ``http(s)://``, ... through fsspec,
    ``storage_options`` as fsspec takes them, for both) or seekable binary file objects, as for
    modelcrypt.load: modelcrypt files only, read straight into memory, and checked as one set as
    local files are (an encrypted directory's members: the same save, its manifest beside them).
    ``storage_options`` with a local path: ValueError.
    """
    config = create_config(model_path, params_path, key, mode, format=format, trusted_signers=trusted_signers,
                           identity=identity, storage_options=storage_options, **config_options)
    return _inference.create_predictor(config)
