"""MindSpore checkpoints (``.ckpt``): parse and build their protobuf, with the ``protobuf`` package.

A MindSpore checkpoint's plaintext is a concatenation of serialized ``Checkpoint`` messages, one
per parameter (MindSpore's ``checkpoint.proto``, proto2)::

    message Checkpoint {
      message Value {
        required string tag = 1;                  // the parameter's name
        oneof value { TensorProto tensor = 2; MapTensorProto maptensor = 3; }
      }
      repeated Value value = 1;
    }
    message TensorProto {
      repeated int64 dims = 1;                    // the shape; [0] for a 0-d scalar
      required string tensor_type = 2;            // "Float32", "Int64", "BFloat16", "str", ...
      required bytes tensor_content = 3;          // C-order little-endian element bytes
    }
    message MapTensorProto { repeated TensorProto tensor = 1; }

Protobuf merges concatenated messages, so the whole file parses as one ``Checkpoint`` whose
``value`` list holds every parameter in file order. MindSpore writes a parameter larger than
512 MiB as several consecutive ``Value`` records with the same tag (the content split in pieces);
they are joined here, and ``build_checkpoint`` splits the same way. MindSpore may append a CRC
trailer (``b"crc_num"`` + 10 bytes, big-endian CRC-32 of what precedes it); it is checked and
removed.

The message classes are built at import from a ``FileDescriptorProto`` in a private descriptor
pool, so they never clash with MindSpore's own ``checkpoint_pb2`` in the same process.

Note on memory: protobuf copies the plaintext into its own message objects while parsing, and the
arrays returned own copies of their data; modelcrypt cannot wipe protobuf's internal copies (they
are freed, not zeroed). modelcrypt's own safetensors checkpoints have no such copies.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._torch_arrays import torch_to_numpy
from .exceptions import FormatError

__all__ = ["parse_checkpoint", "build_checkpoint", "looks_like_checkpoint", "MINDSPORE_TYPES"]

#: MindSpore's tensor_type names -> little-endian numpy dtypes. BFloat16 has no numpy dtype: its
#: raw bits come back as uint16 (as modelcrypt's safetensors loader does).
MINDSPORE_TYPES: dict[str, np.dtype] = {
    "Float64": np.dtype("<f8"),
    "Float32": np.dtype("<f4"),
    "Float16": np.dtype("<f2"),
    "BFloat16": np.dtype("<u2"),
    "Int64": np.dtype("<i8"),
    "Int32": np.dtype("<i4"),
    "Int16": np.dtype("<i2"),
    "Int8": np.dtype("i1"),
    "UInt64": np.dtype("<u8"),
    "UInt32": np.dtype("<u4"),
    "UInt16": np.dtype("<u2"),
    "UInt8": np.dtype("u1"),
    "Bool": np.dtype("?"),
}
_NUMPY_TO_MS = {
    ("f", 8): "Float64", ("f", 4): "Float32", ("f", 2): "Float16",
    ("i", 8): "Int64", ("i", 4): "Int32", ("i", 2): "Int16", ("i", 1): "Int8",
    ("u", 8): "UInt64", ("u", 4): "UInt32", ("u", 2): "UInt16", ("u", 1): "UInt8",
    ("b", 1): "Bool",
}

#: MindSpore splits a parameter's content into records of at most this many bytes (512 MiB).
SLICE_BYTES = 512 << 20
_CRC_MARK = b"crc_num"
_CRC_TRAILER = len(_CRC_MARK) + 10


# ------------------------------------------------------------------ the message classes


def _build_classes() -> tuple[Any, Any]:
    from google.protobuf import descriptor_pb2, descriptor_pool

    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(
        name="modelcrypt/mindspore_checkpoint.proto", package="modelcrypt.mindspore", syntax="proto2")

    def field(msg: Any, name: str, number: int, label: int, type_: int, type_name: str = "",
              oneof: int | None = None) -> None:
        f = msg.field.add(name=name, number=number, label=label, type=type_)
        if type_name:
            f.type_name = type_name
        if oneof is not None:
            f.oneof_index = oneof

    tensor = fdp.message_type.add(name="TensorProto")
    field(tensor, "dims", 1, F.LABEL_REPEATED, F.TYPE_INT64)
    field(tensor, "tensor_type", 2, F.LABEL_REQUIRED, F.TYPE_STRING)
    field(tensor, "tensor_content", 3, F.LABEL_REQUIRED, F.TYPE_BYTES)

    map_tensor = fdp.message_type.add(name="MapTensorProto")
    field(map_tensor, "tensor", 1, F.LABEL_REPEATED, F.TYPE_MESSAGE, ".modelcrypt.mindspore.TensorProto")

    ckpt = fdp.message_type.add(name="Checkpoint")
    value = ckpt.nested_type.add(name="Value")
    value.oneof_decl.add(name="value")
    field(value, "tag", 1, F.LABEL_REQUIRED, F.TYPE_STRING)
    field(value, "tensor", 2, F.LABEL_OPTIONAL, F.TYPE_MESSAGE, ".modelcrypt.mindspore.TensorProto", oneof=0)
    field(value, "maptensor", 3, F.LABEL_OPTIONAL, F.TYPE_MESSAGE, ".modelcrypt.mindspore.MapTensorProto", oneof=0)
    field(ckpt, "value", 1, F.LABEL_REPEATED, F.TYPE_MESSAGE, ".modelcrypt.mindspore.Checkpoint.Value")

    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(fdp.SerializeToString())
    ckpt_desc = pool.FindMessageTypeByName("modelcrypt.mindspore.Checkpoint")
    tensor_desc = pool.FindMessageTypeByName("modelcrypt.mindspore.TensorProto")
    try:
        from google.protobuf.message_factory import GetMessageClass  # protobuf >= 4.22
    except ImportError:  # older protobuf
        from google.protobuf import message_factory

        factory = message_factory.MessageFactory(pool)
        return factory.GetPrototype(ckpt_desc), factory.GetPrototype(tensor_desc)
    return GetMessageClass(ckpt_desc), GetMessageClass(tensor_desc)


_classes: tuple[Any, Any] | None = None


def _message_classes() -> tuple[Any, Any]:
    """(Checkpoint, TensorProto) message classes; protobuf is imported on first use."""
    global _classes
    if _classes is None:
        try:
            _classes = _build_classes()
        except ImportError as exc:
            raise ImportError("MindSpore checkpoints need the protobuf package: pip install protobuf "
                              f"({exc})") from None
    return _classes


# ------------------------------------------------------------------ parsing


def looks_like_checkpoint(prefix: bytes) -> bool:
    """Whether bytes look like the start of a plaintext MindSpore checkpoint (no key, no parsing).

    A checkpoint starts with field 1 of ``Checkpoint`` (byte 0x0A), a varint length, then field 1
    of ``Value`` (0x0A, the tag) or, rarely, another Value field. A safetensors file has a JSON
    ``{`` at byte 8 instead, which this rejects.
    """
    p = bytes(prefix[:16])
    if len(p) < 3 or p[0] != 0x0A:
        return False
    if len(p) > 8 and p[8:9] == b"{" and int.from_bytes(p[:8], "little") < (1 << 32):
        return False  # safetensors: 8-byte header length, then '{'
    i = 1
    while i < len(p) and p[i] & 0x80:  # skip the varint length of the first Value
        i += 1
    return i + 1 < len(p) and p[i + 1] in (0x0A, 0x12, 0x1A) and i <= 10


def _strip_crc(view: memoryview) -> memoryview:
    n = view.nbytes
    if n >= _CRC_TRAILER and bytes(view[n - _CRC_TRAILER:n - 10]) == _CRC_MARK:
        body = view[:n - _CRC_TRAILER]
        stored = int.from_bytes(bytes(view[n - 10:]), "big")
        if binascii.crc32(body) != stored:
            raise FormatError("MindSpore checkpoint: the crc_num trailer does not match the data (corrupted)")
        return body
    return view


_TYPE_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,15}")


def _type_shown(tensor_type: str) -> str:
    """An unknown tensor_type for a message: a short type-like word is quoted, anything else (it is
    plaintext of the checkpoint) is not."""
    return repr(tensor_type) if _TYPE_WORD.fullmatch(tensor_type) else "(not shown)"


def _array(tag: str, tensor_type: str, dims: list[int], content: bytes) -> np.ndarray:
    """``tag`` is how messages name the parameter (its position, or its quoted name for plain files)."""
    if tensor_type == "str":  # MindSpore stores a str as numpy UTF-32 ('U') bytes, dims [0]
        if len(content) % 4:
            raise FormatError(f"MindSpore checkpoint: str value {tag} has {len(content)} bytes, "
                              "not a multiple of 4 (UTF-32)")
        if not content:
            return np.array("")
        arr = np.frombuffer(content, dtype=f"<U{len(content) // 4}")
        return arr.reshape(()).copy()
    if tensor_type == "random_op":  # MindSpore's random-generator state: opaque bytes
        return np.frombuffer(content, dtype=np.uint8).copy()
    dtype = MINDSPORE_TYPES.get(tensor_type)
    if dtype is None:
        raise FormatError(f"MindSpore checkpoint: {tag} has tensor_type {_type_shown(tensor_type)}, which is "
                          f"not supported (supported: {', '.join(MINDSPORE_TYPES)}, str)")
    if any(d < 0 for d in dims):
        raise FormatError(f"MindSpore checkpoint: {tag} has negative dims {dims}")
    count, rem = divmod(len(content), dtype.itemsize)
    if rem:
        raise FormatError(f"MindSpore checkpoint: {tag} has {len(content)} bytes of content, "
                          f"not a multiple of the {tensor_type} size {dtype.itemsize}")
    if dims in ([0], []) and count == 1:
        shape: tuple[int, ...] = ()  # MindSpore writes a 0-d scalar with dims [0]
    else:
        shape = tuple(dims)
    expected = 1
    for d in shape:
        expected *= d
    if expected != count:
        raise FormatError(f"MindSpore checkpoint: {tag} of dims {dims} and type {tensor_type} needs "
                          f"{expected * dtype.itemsize} bytes but has {len(content)}")
    arr = np.frombuffer(content, dtype=dtype, count=count).reshape(shape)
    return arr.copy()  # writable, owns its memory (protobuf's bytes are immutable)


def parse_checkpoint(buffer: Any) -> dict[str, np.ndarray]:
    """Parse MindSpore checkpoint plaintext (any bytes-like object) into ``{name: ndarray}``.

    Values are exact: each array has the stored dtype (little-endian; BFloat16 as uint16 bits)
    and shape (a 0-d array for MindSpore's ``dims == [0]`` scalars), in file order. Consecutive
    records with the same name are joined (MindSpore's split of parameters over 512 MiB). ``str``
    values come back as 0-d numpy unicode arrays (``str(a)`` gives the text); MindSpore's opaque
    ``random_op`` record as a 1-d uint8 array. A MapParameter record, an unknown tensor_type,
    content that does not match dims, a name appearing twice non-consecutively, or bytes that are
    not a checkpoint raise FormatError; its message names a parameter by its position
    (``parameter #3``), not by its name, which is plaintext of the checkpoint.
    """
    return _parse_checkpoint(buffer, secret=True)


def _parse_checkpoint(buffer: Any, secret: bool) -> dict[str, np.ndarray]:
    """parse_checkpoint; ``secret=False`` (a plaintext file read without a key) quotes names in errors."""
    from google.protobuf.message import DecodeError

    Checkpoint, _ = _message_classes()
    with memoryview(buffer) as raw:
        view = _strip_crc(raw.cast("B") if raw.format != "B" or raw.ndim != 1 else raw)
        msg = Checkpoint()
        try:
            msg.ParseFromString(view)
        except DecodeError as exc:
            raise FormatError(f"not a MindSpore checkpoint (protobuf: {exc})") from None
        except TypeError:  # an old protobuf that wants bytes
            try:
                msg.ParseFromString(bytes(view))
            except DecodeError as exc:
                raise FormatError(f"not a MindSpore checkpoint (protobuf: {exc})") from None
    out: dict[str, np.ndarray] = {}
    values = msg.value
    n = len(values)
    i = 0
    while i < n:
        v = values[i]
        tag = v.tag
        label = f"parameter #{len(out)}" if secret else f"parameter {tag!r}"  # a name is plaintext too
        kind = v.WhichOneof("value")
        if kind == "maptensor":
            raise FormatError(f"MindSpore checkpoint: {label} is a MapParameter, which is not supported")
        if kind is None:
            raise FormatError(f"MindSpore checkpoint: {label} holds no tensor")
        if tag in out:
            raise FormatError(f"MindSpore checkpoint: {label} appears twice (its name was used by an earlier "
                              "parameter)")
        t = v.tensor
        tensor_type, dims = t.tensor_type, list(t.dims)
        pieces = [t.tensor_content]
        i += 1
        while i < n and values[i].tag == tag:
            nxt = values[i]
            if nxt.WhichOneof("value") != "tensor" or nxt.tensor.tensor_type != tensor_type \
                    or list(nxt.tensor.dims) != dims:
                raise FormatError(f"MindSpore checkpoint: the pieces of {label} disagree on type or dims")
            pieces.append(nxt.tensor.tensor_content)
            i += 1
        content = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        out[tag] = _array(label, tensor_type, dims, content)
    return out


# ------------------------------------------------------------------ building


def _as_numpy(name: str, value: Any) -> tuple[np.ndarray, str]:
    """The array (little-endian, C order) and MindSpore tensor_type for one parameter."""
    if type(value).__module__.startswith("torch"):
        arr, st = torch_to_numpy(name, value)
        if st == "BF16":
            return np.asarray(arr, order="C"), "BFloat16"
    elif isinstance(value, str):
        return np.array(value), "str"
    elif isinstance(value, (np.ndarray, np.generic)):
        arr = np.asarray(value)
    else:
        raise TypeError(f"checkpoint value {name!r} must be a numpy array, a torch tensor or a str, "
                        f"not {type(value).__name__}")
    if arr.dtype.name == "bfloat16":  # ml_dtypes / jax bfloat16
        return np.asarray(arr, order="C").view(np.uint16), "BFloat16"
    if arr.dtype.kind == "U":
        if arr.ndim != 0:
            raise TypeError(f"checkpoint value {name!r}: only single strings (0-d) can be stored, "
                            f"not a string array of shape {arr.shape}")
        return arr, "str"
    ms = _NUMPY_TO_MS.get((arr.dtype.kind, arr.dtype.itemsize))
    if ms is None:
        raise TypeError(f"checkpoint value {name!r} has dtype {arr.dtype}, which MindSpore checkpoints do not "
                        f"support here ({', '.join(MINDSPORE_TYPES)}, str)")
    return arr.astype(MINDSPORE_TYPES[ms], order="C", copy=False), ms


def _items(params: Any) -> list[tuple[str, Any]]:
    if not isinstance(params, Mapping):
        state_dict = getattr(params, "state_dict", None)
        if not callable(state_dict):
            raise TypeError(f"params must be a mapping of names to arrays, not {type(params).__name__}")
        params = state_dict()
    items = list(params.items())
    for name, _ in items:
        if not isinstance(name, str):
            raise TypeError(f"checkpoint names must be str, not {type(name).__name__}")
    return items


def build_parts(params: Any, *, slice_bytes: int = SLICE_BYTES) -> list[bytes]:
    """The serialized ``Checkpoint`` messages of a checkpoint, one or more per parameter, in order."""
    Checkpoint, _ = _message_classes()
    parts: list[bytes] = []
    for name, value in _items(params):
        arr, tensor_type = _as_numpy(name, value)
        if tensor_type == "str":
            dims = [0]
            text = arr.astype(f"<U{max(1, arr.dtype.itemsize // 4)}", order="C").reshape(1)
            # (numpy's type hints give ndarray the buffer protocol only for Python >= 3.12)
            data = memoryview(text).cast("B")  # type: ignore[arg-type]
        else:
            dims = [0] if arr.ndim == 0 else [int(d) for d in arr.shape]
            data = memoryview(arr.reshape(-1)).cast("B")  # type: ignore[arg-type]  # (as above)
        for start in range(0, max(data.nbytes, 1), slice_bytes):
            msg = Checkpoint()
            v = msg.value.add()
            v.tag = name
            v.tensor.dims.extend(dims)
            v.tensor.tensor_type = tensor_type
            v.tensor.tensor_content = bytes(data[start:start + slice_bytes])
            parts.append(msg.SerializeToString())
    return parts


def build_checkpoint(params: Any) -> bytes:
    """Serialize ``{name: array}`` as a MindSpore checkpoint (the plaintext ``.ckpt`` bytes).

    Accepts numpy arrays and scalars, torch tensors (``.detach().cpu()``), ml_dtypes/torch
    bfloat16 (stored as ``BFloat16``), and ``str`` values (MindSpore's ``append_dict`` strings);
    a ``torch.nn.Module``-like object with ``state_dict()`` too. Order is kept. 0-d arrays are
    written with ``dims [0]`` as MindSpore does (so MindSpore itself reads an empty 1-d array,
    also ``dims [0]``, as a scalar; :func:`parse_checkpoint` tells them apart by the content
    length). uint16 arrays are written as ``UInt16``: to write
    bfloat16 bits you got from :func:`parse_checkpoint`, pass ``a.view(ml_dtypes.bfloat16)``.
    The result is what MindSpore's ``save_checkpoint`` writes for the same parameters and loads
    with ``mindspore.load_checkpoint``.
    """
    return b"".join(build_parts(params))
