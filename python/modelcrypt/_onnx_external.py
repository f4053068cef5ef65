"""ONNX external data: the file names a model refers to (read from the serialized ModelProto
without the ``onnx`` package), and those files decrypted into memory as members of the model's set,
found beside the model: in its directory, or, for a model at a URL, as sibling objects under the
same prefix (read with the same storage_options).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from typing import Any, Iterator

from ._sets import BoundFiles
from ._sources import is_file_object, is_url

__all__ = ["decrypt_external", "external_data_locations"]


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
    # t, tensors, g, graphs, sparse_tensor, sparse_tensors
    _ATTRIBUTE: {5: _TENSOR, 10: _TENSOR, 6: _GRAPH, 11: _GRAPH, 22: _SPARSE, 23: _SPARSE},
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


def decrypt_external(path: Any, files: BoundFiles, names: list[str], mapping: Mapping[str, Any] | None) -> list:
    """Each external data file, loaded as a member of the model's set: when the model is bound, the
    file must carry the same set id and the member name of its place beside the model. For a model
    at a URL, "beside" is the same URL prefix (``s3://bucket/dir/model.onnx`` -> ``s3://bucket/dir/
    weights.bin``; a query string, such as a presigned URL's, is not carried over: pass such files
    in ``mapping``). A model given as a file object has no place: every file must be in ``mapping``."""
    if is_file_object(path):
        base = None
        paths: Any = os.path
    elif is_url(path):
        paths = posixpath  # URL paths are "/"-separated whatever the local OS
        base = posixpath.dirname(path.split("?", 1)[0])
    else:
        paths = os.path
        base = os.path.dirname(os.path.abspath(os.fsdecode(os.fspath(path))))
    buffers: list = []
    try:
        for position, name in enumerate(names):
            normalized = paths.normpath(name)
            inside = not (paths.isabs(name) or normalized == ".." or normalized.startswith(".." + paths.sep))
            beside = paths.join(base, normalized) if base is not None and inside else None
            if mapping is not None and name in mapping:
                source = mapping[name]
            elif base is None:
                raise ValueError(
                    f"the model was given as a file object, so its external data file #{position} cannot be found "
                    "beside it: pass a path or URL, or every external data file in external_data={name: source}"
                )
            elif not inside:
                # (the location is not quoted: it is plaintext of the decrypted model)
                raise ValueError(
                    f"the model's external data location #{position} is outside the model's directory; "
                    "pass its encrypted file in external_data={name: path} (the names: "
                    "modelcrypt.onnxruntime.external_data_locations(decrypted model bytes))"
                )
            else:
                source = beside
            # its member name: its place beside the model, in the set
            rel = files.rel_of(beside) if beside is not None else None
            buffers.append(files.load(source, rel))
    except BaseException:
        for b in buffers:
            b.close()
        raise
    return buffers
