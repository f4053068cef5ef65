"""Encoding of the authenticated metadata: a JSON object of str -> str (UTF-8, sorted keys)."""

from __future__ import annotations

import json
from collections.abc import Mapping

from . import _core


def encode(metadata: Mapping[str, str] | None) -> bytes:
    if metadata is None:
        return b""
    if not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a mapping of str to str or None, not {type(metadata).__name__}")
    for k, v in metadata.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError("metadata keys and values must be str")
    try:
        raw = json.dumps(dict(metadata), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (e.g. from non-UTF-8 command-line bytes)
        raw = None
    if raw is None:
        raise ValueError("metadata keys and values must be valid text (no lone surrogates)")
    if len(raw) > _core.MAX_METADATA_SIZE:
        raise ValueError(f"metadata encodes to {len(raw)} bytes; the limit is {_core.MAX_METADATA_SIZE}")
    return raw if metadata else b""


def decode(raw: bytes) -> dict[str, str]:
    """Decodes stored metadata. Empty means {}. Anything but a JSON object of strings is a FormatError."""
    from .exceptions import FormatError

    if not raw:
        return {}
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"metadata is not UTF-8 JSON: {exc}") from None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise FormatError("metadata is not a JSON object of strings")
    return value
