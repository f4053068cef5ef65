"""Checkpoints that are not modelcrypt safetensors files: MindSpore ``.ckpt`` (written and read, plain or
encrypted in MindSpore's frame format or by modelcrypt) and a safetensors plaintext inside a legacy
container (PaddleX, Paddle ``paddle:...`` modes). The protobuf itself is ``modelcrypt.mindspore``."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .. import _core
from .._api import encrypt_bytes, load
from .._atomic import atomic_write
from .._custom import custom_encrypt
from ..exceptions import FormatError
from ..mindspore import _parse_checkpoint, build_parts, looks_like_checkpoint
from ._layout import _array, _header_size, _parse_header


def _write_mindspore(path: str, params: Any, enc_key: Any, enc_mode: Any) -> None:
    """A MindSpore checkpoint: plain, custom-encrypted, or in MindSpore's frame format."""
    parts = build_parts(params)
    if enc_key is None:
        atomic_write(path, parts)
        return
    plaintext = bytearray().join(parts)
    for part in parts:  # serialized tensors: ours alone, wipe them now that they are joined
        if len(part) >= 2:
            _core.wipe_bytes_object(part)
    del parts
    try:
        if callable(enc_mode):
            result = custom_encrypt(enc_mode, plaintext, enc_key)
        else:
            result = encrypt_bytes(plaintext, enc_key, enc_mode, format="mindspore")
    finally:
        _core.wipe_writable_buffer(plaintext)
    atomic_write(path, [result])


class _MindSporePlaintext(FormatError):
    """Internal: the plaintext is a MindSpore checkpoint, so it has no safetensors header to read by range."""


def _is_mindspore_plaintext(buf: Any) -> bool:
    with memoryview(buf) as view:
        return looks_like_checkpoint(bytes(view[:16]))


def _mindspore_arrays(buf: Any, where: str, secret: bool = True) -> dict[str, np.ndarray]:
    """Parse MindSpore checkpoint plaintext into arrays (copies), then wipe a modelcrypt buffer."""
    try:
        return _parse_checkpoint(buf, secret)
    except FormatError as exc:
        raise FormatError(f"{where}: {exc}") from None
    finally:
        close = getattr(buf, "close", None)
        if isinstance(buf, _core.DecryptedBuffer) and close is not None:
            close()


def _read_plain_mindspore(path: str) -> Optional[dict[str, np.ndarray]]:
    """The arrays of a plaintext MindSpore checkpoint file, or None when it does not look like one."""
    with open(path, "rb") as f:
        head = f.read(16)
        if not _is_mindspore_plaintext(head):
            return None
        data = head + f.read()
    return _mindspore_arrays(data, f"checkpoint {path}", secret=False)


def _load_other_format(path: str, dec_key: Any, dec_mode: Any, fmt: str,
                       format: str) -> Optional[dict[str, np.ndarray]]:
    """Checkpoints that are not modelcrypt v1 files: MindSpore ``.ckpt`` (plain or MindSpore-encrypted),
    and any plaintext checkpoint inside a legacy container (PaddleX, Paddle ``paddle:...`` modes).
    Returns None for the files the safetensors reader handles (v1 containers, plain safetensors)."""
    where = f"checkpoint {path}"
    legacy = fmt in ("mindspore", "paddlex") or (isinstance(dec_mode, str) and dec_mode.lower().startswith("paddle:"))
    if legacy:
        if dec_key is None:
            kind = "Paddle cipher" if fmt == "unknown" else fmt
            raise ValueError(f"{path} is an encrypted checkpoint ({kind} format): pass dec_key")
        buf = load(path, dec_key, dec_mode, format=format)  # legacy formats only when the caller chose one
        if _is_mindspore_plaintext(buf):
            return _mindspore_arrays(buf, where)
        with memoryview(buf) as view:  # a safetensors plaintext in a legacy container
            total = view.nbytes
            n = _header_size(bytes(view[:8]), total, where)
            entries, _ = _parse_header(bytes(view[8:8 + n]), total - 8 - n, where)
        return {name: _array(buf, e, -(8 + n)) for name, e in entries.items()}
    if fmt == "unknown":
        if dec_key is not None:
            with open(path, "rb") as f:
                head = f.read(16)
            if _is_mindspore_plaintext(head):
                raise FormatError(f"{path} is a plaintext MindSpore checkpoint, not an encrypted file; refusing to "
                                  "load it unauthenticated with dec_key (pass dec_key=None to load it)")
            return None  # the safetensors reader refuses it the same way
        return _read_plain_mindspore(path)
    return None
