"""Sizes as people write them: 4096, "256KiB", "4MiB", "500MB", "2GB", "1.5GiB", "64k". One parser for
every option that takes a size (``save_checkpoint(max_shard_size=)``, CLI ``--chunk-size``)."""

from __future__ import annotations

import re
from typing import Any

from ._api import _shown  # a caller's text in a message, never key-like text

#: Decimal units (KB, MB, GB, TB: powers of 1000, as Hugging Face's max_shard_size) and binary units
#: (KiB, MiB, GiB, TiB, and the single letters K, M, G, T: powers of 1024). Case-insensitive.
SIZE_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
              "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40,
              "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_SIZE_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*")
EXAMPLES = "'500MB', '2GB', '1GiB', '256KiB'"


def parse_size(size: Any, what: str) -> int:
    """Bytes from an int or a size text; TypeError / ValueError naming ``what``."""
    if isinstance(size, bool) or not isinstance(size, (int, str)):
        raise TypeError(f"{what} must be an int (bytes) or a str like '2GB', not {type(size).__name__}")
    if isinstance(size, str):
        m = _SIZE_RE.fullmatch(size) if len(size) <= 64 else None
        unit = m.group(2).upper() if m else None
        if m is None or unit not in SIZE_UNITS:
            raise ValueError(f"{what} {_shown(size)} is not a size like {EXAMPLES}")
        size = int(float(m.group(1)) * SIZE_UNITS[unit])
    if size < 1:
        raise ValueError(f"{what} must be at least 1 byte, got {size}")
    return size
