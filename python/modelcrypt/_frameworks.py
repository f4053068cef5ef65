"""Helpers shared by the framework loaders (modelcrypt.numpy, .onnxruntime, .torch, .paddle).

Decryption goes through modelcrypt.load, which also accepts a MindSpore-style custom cipher
callable as the mode (see _custom.py).
"""

from __future__ import annotations

import io
import sys
from typing import Any, Callable, Union

from . import _core
from ._api import encrypt_bytes, load as decrypt_to_memory
from ._atomic import atomic_write
from ._custom import custom_encrypt

__all__ = ["DecMode", "EncMode", "decrypt_to_memory", "encrypt_stream_to_file", "MemoryReader"]

#: A modelcrypt mode name ("AES-GCM") or a MindSpore-style decryption callable
#: ``(cipher_file: str, key: bytes) -> bytes``.
DecMode = Union[str, Callable[[str, bytes], bytes]]
#: A modelcrypt mode name or a MindSpore-style encryption callable ``(model_stream: bytes, key: bytes) -> bytes``.
EncMode = Union[str, Callable[[bytes, bytes], bytes]]


def _wipe_writable(view: memoryview) -> None:
    """Zero a writable buffer in place (used on in-memory plaintext before it is released)."""
    if not view.readonly and view.nbytes:
        _core.wipe_writable_buffer(view)


def encrypt_stream_to_file(stream: io.BytesIO, path: Any, key: Any, mode: EncMode, **encrypt_kwargs: Any) -> None:
    """Encrypt the contents of an in-memory stream to ``path`` (atomic), then wipe the stream.

    A callable ``mode`` is a custom cipher with MindSpore's encryption signature
    ``(model_stream: bytes, key: bytes) -> bytes``; modelcrypt does not check its correctness.
    """
    view = stream.getbuffer()  # no copy of the plaintext
    try:
        if callable(mode):
            if encrypt_kwargs:
                raise TypeError(f"{', '.join(encrypt_kwargs)} only apply to modelcrypt's own modes, "
                                "not a custom cipher")
            blob = custom_encrypt(mode, view, key)
        else:
            blob = encrypt_bytes(view, key, mode, **encrypt_kwargs)
    finally:
        _wipe_writable(view)
        view.release()
        stream.close()
    atomic_write(path, blob)


class MemoryReader(io.RawIOBase):
    """A read-only, seekable file object over a buffer, without copying it up front.

    ``read()`` must return ``bytes`` (np.load, torch.load and zipfile call it), so each call makes a
    copy of plaintext. The reader keeps track of the copies it handed out and wipes each one once
    nothing else refers to it (checked at every later read and at close): readers that copy the
    data out and drop the chunk (np.load, zipfile) leave no plaintext behind in freed memory, and a
    chunk a caller still holds (an array over it) is never touched.
    """

    def __init__(self, buffer: Any) -> None:
        super().__init__()
        self._view = memoryview(buffer).cast("B")
        self._pos = 0
        self._handed_out: list[bytes] = []

    def _wipe_dropped(self) -> None:
        """Wipe the chunks handed out that only self._handed_out still references."""
        kept = []
        for chunk in self._handed_out:
            # references: the list, this loop variable and getrefcount's argument
            if sys.getrefcount(chunk) <= _DROPPED_REFS:
                _core.wipe_bytes_object(chunk)
            else:
                kept.append(chunk)
        self._handed_out = kept

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        self._checkClosed()
        out = memoryview(b).cast("B")
        n = max(0, min(out.nbytes, self._view.nbytes - self._pos))
        out[:n] = self._view[self._pos:self._pos + n]
        self._pos += n
        return n

    def read(self, size: int = -1) -> bytes:
        self._checkClosed()
        end = self._view.nbytes if size is None or size < 0 else min(self._view.nbytes, self._pos + size)
        start, self._pos = self._pos, max(self._pos, end)
        self._wipe_dropped()
        chunk = bytes(self._view[start:self._pos])
        if len(chunk) >= 2:  # 0 and 1-byte bytes are interpreter-wide singletons
            self._handed_out.append(chunk)
        return chunk

    readall = read

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._checkClosed()
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._view.nbytes}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        self._checkClosed()
        return self._pos

    def close(self) -> None:
        if not self.closed:
            self._view.release()
            self._wipe_dropped()
            self._handed_out = []  # chunks still referenced elsewhere belong to their holders now
        super().close()


def _dropped_refs() -> int:
    """sys.getrefcount of a chunk that only MemoryReader._handed_out refers to, measured on this
    interpreter the way _wipe_dropped measures it."""
    held = [bytes(bytearray(2))]
    for chunk in held:
        return sys.getrefcount(chunk)
    raise AssertionError


_DROPPED_REFS = _dropped_refs()
