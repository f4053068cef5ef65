"""Where encrypted bytes come from when they are not a local path: seekable binary file objects
(``open(..., "rb")``, ``io.BytesIO``, an fsspec file) and URLs (``s3://``, ``gs://``, ``az://``,
``http(s)://``, ``memory://``, ... through fsspec). The core reads them through a ``read(offset, n)``
callable, once per byte, into memory it owns; nothing is written to disk.
"""

from __future__ import annotations

import io
import os
import re
import threading
from typing import Any, Mapping

#: "scheme://..." (RFC 3986 scheme), as fsspec names its filesystems.
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")

FSSPEC_HINT = ("loading from URLs needs fsspec: pip install 'modelcrypt[remote]' (plus the filesystem's own "
               "package: s3fs for s3://, gcsfs for gs://, adlfs for az://, aiohttp for http(s)://)")


def is_url(path: object) -> bool:
    """Whether ``path`` is a URL string (a scheme followed by ``://``)."""
    return isinstance(path, str) and _URL.match(path) is not None


def is_file_object(obj: object) -> bool:
    """Whether ``obj`` is a file object the readers take in place of a path (``read`` and ``seek``)."""
    if isinstance(obj, (str, bytes, bytearray, memoryview, os.PathLike)):
        return False
    return callable(getattr(obj, "read", None)) and callable(getattr(obj, "seek", None))


class FileObjectReader:
    """``read(offset, n) -> bytes`` over a seekable binary file object, from its position when this is
    made (so a modelcrypt file embedded in a larger stream reads from where it starts). Calls are
    serialized by a lock; the file object is left positioned where the last read ended."""

    def __init__(self, f: Any, what: str = "file object"):
        self._f = f
        self._lock = threading.Lock()
        self.what = what
        try:
            if hasattr(f, "readable") and not f.readable():
                raise ValueError(f"the {what} is not open for reading")
            self._start = f.tell()
            end = f.seek(0, io.SEEK_END)
        except (AttributeError, OSError, io.UnsupportedOperation) as exc:
            raise ValueError(f"the {what} must be a seekable binary file ({type(exc).__name__}: {exc})") from None
        if not isinstance(self._start, int) or not isinstance(end, int) or end < self._start:
            raise ValueError(f"the {what} must be a seekable binary file (tell/seek returned no positions)")
        self.size = end - self._start

    def __call__(self, offset: int, n: int) -> bytes:
        with self._lock:
            self._f.seek(self._start + offset)
            data = self._f.read(n)
        if isinstance(data, str):
            raise TypeError(f"the {self.what} is open in text mode: open it with 'rb'")
        return data if isinstance(data, bytes) else bytes(data)


def shown_url(url: str) -> str:
    """``url`` for messages: without any ``user:password@`` part."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.\-]*://)[^/@]*@", r"\1", url)


def open_url(url: str, storage_options: Mapping[str, Any] | None = None) -> Any:
    """A binary file object for ``url`` through fsspec (``storage_options`` as fsspec takes them)."""
    if storage_options is not None and not isinstance(storage_options, Mapping):
        raise TypeError(f"storage_options must be a mapping, not {type(storage_options).__name__}")
    try:
        import fsspec
    except ImportError:
        raise ModuleNotFoundError(FSSPEC_HINT) from None
    try:
        fs, path = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
    except ImportError as exc:  # fsspec knows the scheme, its package is missing
        raise ModuleNotFoundError(f"{exc} ({FSSPEC_HINT})") from None
    except ValueError as exc:  # an unknown scheme
        raise ValueError(f"cannot open {shown_url(url)!r}: {exc}") from None
    return fs.open(path, "rb")
