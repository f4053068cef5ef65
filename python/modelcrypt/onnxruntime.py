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
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Mapping
from typing import Any, Iterator

try:
    import onnxruntime as _ort  # the real ONNX Runtime (absolute import), not this module
except ImportError as exc:  # pragma: no cover - exercised in environments without onnxruntime
    raise ImportError(
        'modelcrypt.onnxruntime needs ONNX Runtime: pip install "modelcrypt[onnx]" (or pip install onnxruntime)'
    ) from exc

from . import _core
from ._frameworks import DecMode, decrypt_to_memory

__all__ = ["InferenceSession", "external_data_locations"]

# SessionOptions the caller passed in that now reference decrypted external data in memory: ONNX
# Runtime keeps raw pointers to those buffers in the options object, so they must live as long as it.
_HELD_BY_OPTIONS: "weakref.WeakKeyDictionary[Any, list]" = weakref.WeakKeyDictionary()


def InferenceSession(  # noqa: N802 - mirrors onnxruntime.InferenceSession
    path: Any,
    key: Any,
    mode: DecMode = "AES-GCM",
    *,
    external_data: Mapping[str, Any] | None = None,
    **session_kwargs: Any,
) -> "_ort.InferenceSession":
    """Decrypt the ONNX (or ORT-format) model at ``path`` in memory and return an
    ``onnxruntime.InferenceSession`` built from it.

    ``session_kwargs`` go to ``onnxruntime.InferenceSession`` (``sess_options``, ``providers``,
    ``provider_options``, ...). ``mode`` is a modelcrypt mode name or a MindSpore-style callable
    ``(cipher_file: str, key: bytes) -> bytes`` (modelcrypt does not check a custom cipher's
    correctness). Raises KeyMismatchError / AuthenticationError as modelcrypt.load does.

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
    optimized model there in plaintext.
    """
    sess_options = session_kwargs.pop("sess_options", None)
    caller_options = sess_options is not None
    if caller_options and sess_options.optimized_model_filepath:
        raise ValueError(
            "sess_options.optimized_model_filepath is set: ONNX Runtime would write the decrypted model there in plaintext"
        )
    if caller_options and sess_options in _HELD_BY_OPTIONS:
        raise ValueError(
            "these sess_options already carry decrypted external data from an earlier modelcrypt session "
            "(ONNX Runtime looks it up by file name); pass a fresh onnxruntime.SessionOptions()"
        )
    with decrypt_to_memory(path, key, mode) as buf:
        model_bytes = bytes(buf)  # ONNX Runtime's Python API takes bytes only: the one extra copy
    keep_model_bytes = held = False
    external: list = []
    try:
        names = external_data_locations(model_bytes)
        if names:
            external = _decrypt_external(path, key, mode, names, external_data)
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


def external_data_locations(model: Any) -> list[str]:
    """The external data file names an ONNX model (serialized ModelProto) refers to, in order of
    first appearance: the ``location`` of every tensor stored outside the model, in the main graph,
    subgraphs, node attributes, sparse tensors and functions. ``[]`` for a model without external
    data, an ORT-format model, or bytes that are not a well-formed ModelProto (ONNX Runtime then
    reports the error itself).

    The protobuf wire format is walked in place (no copy, no ``onnx`` package needed): length-
    delimited fields such as raw tensor data are skipped, not read.
    """
    view = memoryview(model).cast("B")
    if view.nbytes >= 8 and bytes(view[4:8]) == b"ORTM":  # ORT flatbuffer format: no external data
        return []
    found: dict[str, None] = {}
    try:
        _walk(view, 0, view.nbytes, _MODEL, found)
    except _Malformed:
        return []
    return list(found)


class _Malformed(Exception):
    pass


# Message kinds and, per kind, the length-delimited fields to descend into (onnx.proto field numbers).
_MODEL, _GRAPH, _FUNCTION, _NODE, _ATTRIBUTE, _TENSOR, _SPARSE, _ENTRY = range(8)
_CHILDREN = {
    _MODEL: {7: _GRAPH, 25: _FUNCTION},  # ModelProto.graph, .functions
    _GRAPH: {1: _NODE, 5: _TENSOR, 15: _SPARSE},  # GraphProto.node, .initializer, .sparse_initializer
    _FUNCTION: {7: _NODE},  # FunctionProto.node
    _NODE: {5: _ATTRIBUTE},  # NodeProto.attribute
    _ATTRIBUTE: {5: _TENSOR, 10: _TENSOR, 6: _GRAPH, 11: _GRAPH, 22: _SPARSE, 23: _SPARSE},  # t, tensors, g, graphs, ...
    _SPARSE: {1: _TENSOR, 2: _TENSOR},  # SparseTensorProto.values, .indices
    _TENSOR: {13: _ENTRY},  # TensorProto.external_data (StringStringEntryProto)
}


def _varint(view: memoryview, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _Malformed
        byte = view[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _length_delimited(view: memoryview, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(field number, start, end) of each length-delimited field of the message in view[start:end]."""
    pos = start
    while pos < end:
        tag, pos = _varint(view, pos, end)
        field, wire_type = tag >> 3, tag & 7
        if wire_type == 0:
            _, pos = _varint(view, pos, end)
        elif wire_type == 1:
            pos += 8
        elif wire_type == 5:
            pos += 4
        elif wire_type == 2:
            length, pos = _varint(view, pos, end)
            if pos + length > end:
                raise _Malformed
            yield field, pos, pos + length
            pos += length
        else:  # groups (3, 4) do not occur in onnx.proto
            raise _Malformed
    if pos != end:
        raise _Malformed


def _walk(view: memoryview, start: int, end: int, kind: int, found: dict[str, None], depth: int = 0) -> None:
    if depth > 100:
        raise _Malformed
    if kind == _ENTRY:
        fields = {field: bytes(view[s:e]) for field, s, e in _length_delimited(view, start, end)}
        if fields.get(1) == b"location" and 2 in fields:
            found.setdefault(fields[2].decode("utf-8", "surrogateescape"), None)
        return
    children = _CHILDREN[kind]
    for field, s, e in _length_delimited(view, start, end):
        child = children.get(field)
        if child is not None:
            _walk(view, s, e, child, found, depth + 1)


def _decrypt_external(path: Any, key: Any, mode: DecMode, names: list[str], mapping: Mapping[str, Any] | None) -> list:
    base = os.path.dirname(os.path.abspath(os.fsdecode(os.fspath(path))))
    buffers: list = []
    try:
        for position, name in enumerate(names):
            if mapping is not None and name in mapping:
                source = mapping[name]
            else:
                normalized = os.path.normpath(name)
                if os.path.isabs(name) or normalized == ".." or normalized.startswith(".." + os.sep):
                    # (the location is not quoted: it is plaintext of the decrypted model)
                    raise ValueError(
                        f"the model's external data location #{position} is outside the model's directory; "
                        "pass its encrypted file in external_data={name: path} (the names: "
                        "modelcrypt.onnxruntime.external_data_locations(decrypted model bytes))"
                    )
                source = os.path.join(base, normalized)
            buffers.append(decrypt_to_memory(source, key, mode))
    except BaseException:
        for b in buffers:
            b.close()
        raise
    return buffers
