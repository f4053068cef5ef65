"""One safetensors checkpoint file: writing it (plain, modelcrypt-encrypted or custom cipher) and
``_Checkpoint``, a file opened for reading (whole, or tensor by tensor through random access)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Optional

import numpy as np

from .. import _core, _metadata
from .._api import DEFAULT_CHUNK_SIZE, _fspath, is_encrypted
from .._atomic import atomic_write
from .._custom import custom_decrypt, custom_encrypt
from .._random_access import EncryptedFile, open_encrypted
from ..exceptions import FormatError
from ._arguments import Encryption
from ._layout import _array, _Entry, _header_bytes, _header_size, _parse_header, _Tensor
from ._other_formats import _is_mindspore_plaintext, _mindspore_arrays, _MindSporePlaintext


def _write_one(path: str, tensors: list[_Tensor], metadata: Optional[Mapping[str, str]], enc: Encryption,
               binding: Optional[Mapping[str, str]] = None) -> None:
    """``binding``: set-binding keys for the modelcrypt header's authenticated metadata (see _sets)."""
    header = _header_bytes(tensors, metadata)
    parts: list[Any] = [header, *(t.data for t in tensors)]
    if not enc.encrypted:
        atomic_write(path, parts)
    elif callable(enc.mode):
        plaintext = bytearray().join(parts)
        try:
            result = custom_encrypt(enc.mode, plaintext, enc.key)
        finally:
            _core.wipe_writable_buffer(plaintext)
        atomic_write(path, [result])
    else:
        _core.encrypt_parts_to_file(parts, _fspath(path, "path"), enc.key, enc.mode, DEFAULT_CHUNK_SIZE,
                                    _metadata.encode(binding), 0, recipients=enc.recipients,
                                    signing_key=enc.signing_key)


class _Checkpoint:
    """One checkpoint file opened for reading: its parsed header and a way to read byte ranges."""

    _borrowed: bool = False  # True when the EncryptedFile is the caller's (not closed here)

    def __init__(self, path: str, dec_key: Any, dec_mode: Any):
        self.path = path
        self.where = f"checkpoint {path}"
        self._key, self._mode = dec_key, dec_mode
        self._file: Optional[EncryptedFile] = None  # encrypted: one handle for the header and every range
        self._whole: Any = None  # a buffer holding the whole plaintext (decrypted, custom or mapped)
        #: the authenticated modelcrypt metadata (encrypted files; {} otherwise)
        self.metadata: dict[str, str] = {}
        #: the safetensors __metadata__ (inside the plaintext), once the header has been parsed
        self.header_metadata: dict[str, str] = {}
        if callable(dec_mode):
            self._whole = custom_decrypt(dec_mode, path, dec_key)
            self.kind = "custom"
        elif is_encrypted(path):
            if dec_key is None:
                raise ValueError(f"{path} is an encrypted checkpoint: pass dec_key")
            self.kind = "encrypted"
            self._file = open_encrypted(path, dec_key, dec_mode)
            self.metadata = self._file.metadata
        else:
            if dec_key is not None:
                raise FormatError(f"{path} is not an encrypted modelcrypt file; refusing to load it unauthenticated "
                                  "with dec_key (pass dec_key=None to load a plaintext .safetensors checkpoint)")
            self.kind = "plain"

    @classmethod
    def of_file(cls, f: EncryptedFile) -> "_Checkpoint":
        """An encrypted checkpoint already opened (a URL or file object): ``f`` stays the caller's to close."""
        self = cls.__new__(cls)
        self.path, self.where = f.path, f"checkpoint {f.path}"
        self._key, self._mode = None, "AES-GCM"
        self._file, self._whole, self.kind = f, None, "encrypted"
        self.metadata, self.header_metadata = f.metadata, {}
        self._borrowed = True
        return self

    # -- lifetime of the handle (encrypted random access)
    def close(self) -> None:
        if self._file is not None and not getattr(self, "_borrowed", False):
            self._file.close()
        self._file = None

    def __enter__(self) -> "_Checkpoint":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _range(self, offset: int, length: int) -> Any:
        assert self._file is not None
        return self._file.read_range(offset, length)

    def read_range(self, offset: int, length: int) -> Any:
        """Plaintext bytes [offset, offset + length): of an encrypted file only their chunks decrypted, into
        a modelcrypt-owned buffer; of a plaintext one a view of its copy-on-write map (modelcrypt.safe_open)."""
        if self.kind == "encrypted":
            return self._range(offset, length)
        if self._whole is None:
            self._whole = _map_plain(self.path)
        if offset + length > len(self._whole):
            raise FormatError(f"{self.where}: the file is shorter than its header says")
        return memoryview(self._whole)[offset:offset + length]

    @property
    def chunk_size(self) -> Optional[int]:
        """The encryption chunk size (the unit a range read decrypts) of an encrypted file; None otherwise."""
        return self._file.chunk_size if self._file is not None else None

    def expect_ranges(self, spans: list[tuple[int, int]]) -> None:
        """Announces the plaintext ranges (offset, length) read_range will be asked for next: a URL's
        reader fetches all their chunks in parallel (nothing to do for other files)."""
        if self._file is not None:
            self._file._expect_spans(spans)

    # -- loading
    def load_all(self) -> dict[str, np.ndarray]:
        if self.kind == "encrypted":
            assert self._file is not None
            self._whole = self._file.read_all()
        elif self.kind == "plain":
            self._whole = _map_plain(self.path)
        buf = self._whole
        if self.kind != "plain" and _is_mindspore_plaintext(buf):
            return _mindspore_arrays(buf, self.where)
        with memoryview(buf) as view:
            total = view.nbytes
            n = _header_size(bytes(view[:8]), total, self.where)
            entries, self.header_metadata = _parse_header(bytes(view[8:8 + n]), total - 8 - n, self.where,
                                                          secret=self.kind != "plain")
        base = -(8 + n)
        return {name: _array(buf, e, base) for name, e in entries.items()}

    def header(self, **parse: Any) -> tuple[dict[str, _Entry], int]:
        """The validated header (entries, data start) read with as little decryption as possible;
        ``parse``: options of _parse_header (dtype_bits=, none_without_metadata=)."""
        if self.kind == "custom":
            if _is_mindspore_plaintext(self._whole):
                raise _MindSporePlaintext(f"{self.where} holds a MindSpore checkpoint")
            with memoryview(self._whole) as view:
                total = view.nbytes
                n = _header_size(bytes(view[:8]), total, self.where)
                entries, self.header_metadata = _parse_header(bytes(view[8:8 + n]), total - 8 - n, self.where,
                                                              **parse)
            return entries, 8 + n
        raw: bytes | None
        if self.kind == "plain":
            with open(self.path, "rb") as f:
                total = os.fstat(f.fileno()).st_size
                n = _header_size(f.read(8), total, self.where)
                raw = f.read(n)
            if len(raw) != n:
                raise FormatError(f"{self.where}: truncated header")
            entries, self.header_metadata = _parse_header(raw, total - 8 - n, self.where, secret=False, **parse)
            return entries, 8 + n
        assert self._file is not None
        total, cs = self._file.plaintext_length, self._file.chunk_size  # authenticated when opened
        with self._range(0, min(total, cs)) as first:  # decrypting 8 bytes costs chunk 0 anyway
            if _is_mindspore_plaintext(first):
                raise _MindSporePlaintext(f"{self.where} holds a MindSpore checkpoint")
            n = _header_size(bytes(memoryview(first)[:8]), total, self.where)
            if 8 + n <= len(first):
                raw = bytes(memoryview(first)[8:8 + n])
            else:
                raw = None
        if raw is None:
            with self._range(8, n) as rest:
                raw = bytes(rest)
        self._chunk_size = cs
        entries, self.header_metadata = _parse_header(raw, total - 8 - n, self.where, **parse)
        return entries, 8 + n

    def load_names(self, wanted: list[str], entries: dict[str, _Entry], start: int) -> dict[str, np.ndarray]:
        selected = [entries[n] for n in wanted]
        if self.kind == "custom":
            return {e.name: _array(self._whole, e, -start) for e in selected}
        if self.kind == "plain":
            out = {}
            with open(self.path, "rb") as plain_file:
                for e in selected:
                    plain_file.seek(start + e.begin)
                    count = (e.end - e.begin) // e.dtype.itemsize
                    out[e.name] = np.fromfile(plain_file, dtype=e.dtype, count=count).reshape(e.shape)
            return out
        cs = self._chunk_size
        ranges: list[list[Any]] = []  # [begin, end, entries] in plaintext coordinates
        for e in sorted((e for e in selected if e.end > e.begin), key=lambda e: e.begin):
            b, f = start + e.begin, start + e.end
            if ranges and (b <= ranges[-1][1] or b // cs == (ranges[-1][1] - 1) // cs):
                ranges[-1][1] = max(ranges[-1][1], f)
                ranges[-1][2].append(e)
            else:
                ranges.append([b, f, [e]])
        out = {e.name: np.empty(e.shape, dtype=e.dtype) for e in selected if e.end == e.begin}
        assert self._file is not None
        self._file._expect_spans([(b, f - b) for b, f, _ in ranges])  # a URL: all their chunks in parallel
        for b, f, group in ranges:
            buf = self._range(b, f - b)
            for e in group:
                out[e.name] = _array(buf, e, b - start)
        return {n: out[n] for n in wanted}


def _map_plain(path: str) -> Any:
    """A copy-on-write map of a plaintext checkpoint: zero-copy, writable arrays, the file unchanged."""
    import mmap

    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return b""
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
