"""Where encrypted bytes come from when they are not a local path: seekable binary file objects
(``open(..., "rb")``, ``io.BytesIO``, an fsspec file) and URLs (``s3://``, ``gs://``, ``az://``,
``http(s)://``, ``memory://``, ... through fsspec). The core reads them through a ``read(offset, n)``
callable, once per byte, into memory it owns; nothing is written to disk.
"""

from __future__ import annotations

import bisect
import concurrent.futures
import io
import os
import re
import threading
import time
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from typing_extensions import TypeGuard

from .exceptions import SourceChangedError, SourceReadError

#: "scheme://..." (RFC 3986 scheme), as fsspec names its filesystems.
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")

FSSPEC_HINT = ("loading from URLs needs fsspec: pip install 'modelcrypt[remote]' (plus the filesystem's own "
               "package: s3fs for s3://, gcsfs for gs://, adlfs for az://, aiohttp for http(s)://)")


def is_url(path: object) -> TypeGuard[str]:
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
    """``url`` for messages: without any ``user:password@`` part nor query string (presigned URLs
    carry their signature there)."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.\-]*://)[^/@]*@", r"\1", url).split("?", 1)[0]


def url_filesystem(url: str, storage_options: Mapping[str, Any] | None = None) -> tuple[Any, str]:
    """The fsspec filesystem and path of ``url`` (``storage_options`` as fsspec takes them)."""
    if storage_options is not None and not isinstance(storage_options, Mapping):
        raise TypeError(f"storage_options must be a mapping, not {type(storage_options).__name__}")
    try:
        import fsspec
    except ImportError:
        raise ModuleNotFoundError(FSSPEC_HINT) from None
    try:
        return fsspec.core.url_to_fs(url, **dict(storage_options or {}))
    except ImportError as exc:  # fsspec knows the scheme, its package is missing
        raise ModuleNotFoundError(f"{exc} ({FSSPEC_HINT})") from None
    except ValueError as exc:  # an unknown scheme
        raise ValueError(f"cannot open {shown_url(url)!r}: {exc}") from None


def open_url(url: str, storage_options: Mapping[str, Any] | None = None) -> Any:
    """A binary file object for ``url`` through fsspec (``storage_options`` as fsspec takes them)."""
    fs, path = url_filesystem(url, storage_options)
    return fs.open(path, "rb")


#: The first read of an object: one request for the header (and a checkpoint's tensor index).
HEAD_BYTES = 256 * 1024
#: The rest is fetched in ranged requests of about 1/TARGET_REQUESTS of the object (fewer, larger
#: requests cost less per byte), each MIN_BLOCK_BYTES to BLOCK_BYTES; at most AHEAD_BLOCKS of them
#: are in flight or waiting to be decrypted, so memory beyond the output stays at a few blocks
#: (about 5 % of a 1 GiB object, at most about 150 MiB however large the object).
BLOCK_BYTES = 48 * 1024 * 1024
MIN_BLOCK_BYTES = 8 * 1024 * 1024
TARGET_REQUESTS = 24
AHEAD_BLOCKS = 2
#: Attempts per request before a transient fault (HTTP 5xx/408/429, a timeout, a cut connection, a
#: short body) is a SourceReadError, and the pauses between them (seconds). On top of whatever the
#: filesystem retries itself (s3fs/botocore do; fsspec's HTTP filesystem does not).
ATTEMPTS = 3
RETRY_DELAYS = (0.25, 1.0)
#: Ranges this close (bytes) are fetched as one request.
COALESCE_GAP = 64 * 1024
_TAG = 16  # the AES-GCM tag after each chunk's ciphertext (docs/FORMAT.md)


def block_bytes(size: int) -> int:
    """The size of the ranged requests for an object of ``size`` bytes (a whole MiB, unless capped lower)."""
    block = max(MIN_BLOCK_BYTES, -(-size // TARGET_REQUESTS // 2**20) * 2**20)
    return max(1, min(BLOCK_BYTES, block))


class RangeReader:
    """``read(offset, n) -> bytes`` over an object in storage (fsspec), for the core's read callback.

    The object's size and version (ETag / version id) are pinned by one ``info`` at open; every
    later range must come from that version, else SourceChangedError. The first read fetches
    ``HEAD_BYTES`` (the header, a checkpoint's index) in one request. Callers announce the byte
    ranges they will read (``expect``; ``whole()`` for everything): those are coalesced, split in
    requests of ``block_bytes(size)`` and fetched in parallel, at most ``AHEAD_BLOCKS`` ahead of the
    reads, while the core decrypts the blocks that have arrived (it reads chunk by chunk, from
    several threads). A read outside the announced ranges is fetched on its own. Every block is
    dropped once its bytes have been read. Faults (5xx and timeouts after ``ATTEMPTS`` tries, a
    short body, a server that ignores ``Range``) are SourceReadError; nothing is written to disk.
    """

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None):
        self._fs, self._path = url_filesystem(url, storage_options)
        self.what = f"object {shown_url(url)}"
        self.source_name = shown_url(url)  # what the core's messages call it
        self._url = url
        self._local = threading.local()
        self.closed = False
        info = self._retrying("reading its size", self._info)
        size = info.get("size")
        if not isinstance(size, int) or size < 0:
            raise SourceReadError(f"{self.what}: the storage did not report its size")
        self.size = size
        self._etag = info.get("ETag") or info.get("etag")
        self._version = info.get("VersionId")
        self._http = any(p in ("http", "https") for p in _protocols(self._fs))
        self._lock = threading.Lock()
        self._files: list[Any] = []
        self._block = block_bytes(size)
        self._pool = concurrent.futures.ThreadPoolExecutor(max(1, AHEAD_BLOCKS),
                                                           thread_name_prefix="modelcrypt-fetch")
        self._head: concurrent.futures.Future | None = None
        self._head_end = min(HEAD_BYTES, size)
        self._starts: list[int] = []  # announced blocks: [start, end) sorted, with their fetches
        self._ends: list[int] = []
        self._futures: dict[int, concurrent.futures.Future] = {}
        self._left: dict[int, int] = {}  # block index -> bytes not read yet
        self._submitted = 0  # blocks [0, _submitted) have been requested
        self.bytes_fetched = 0

    # -- announcing reads -------------------------------------------------------------------------
    def whole(self) -> None:
        """Everything will be read (load): in parallel blocks from the start (announced before the
        first read, the header needs no request of its own)."""
        with self._lock:
            if self._head is None:
                self._head_end = 0
        self.expect([(0, self.size)])

    def expect(self, ranges: list[tuple[int, int]]) -> None:
        """The byte ranges [start, end) that will be read next (replacing earlier announcements)."""
        merged: list[list[int]] = []
        for b, e in sorted((max(b, self._head_end), min(e, self.size)) for b, e in ranges):
            if e <= b:
                continue
            if merged and b <= merged[-1][1] + COALESCE_GAP:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([b, e])
        starts, ends = [], []
        for b, e in merged:
            for s in range(b, e, self._block):
                starts.append(s)
                ends.append(min(s + self._block, e))
        with self._lock:
            for f in self._futures.values():
                f.cancel()
            self._starts, self._ends, self._submitted = starts, ends, 0
            self._futures, self._left = {}, {}
            self._submit_up_to(min(len(starts), AHEAD_BLOCKS))

    def expect_chunks(self, handle: Any, spans: list[tuple[int, int]], keep: bool = False) -> None:
        """The ciphertext (chunks and tags) of the plaintext spans (offset, length) of the opened file
        ``handle`` will be read next. ``keep``: unless an earlier announcement covers them already."""
        cs, count = handle.chunk_size, handle.chunk_count
        base = handle.header_info["header_length"]
        ranges = []
        for offset, length in spans:
            if length > 0:
                first, last = offset // cs, (offset + length - 1) // cs
                last_size = handle.plaintext_length - last * cs if last == count - 1 else cs
                ranges.append((base + first * (cs + _TAG), base + last * (cs + _TAG) + last_size + _TAG))
        if ranges and not (keep and all(self._announced(b, e) for b, e in ranges)):
            self.expect(ranges)

    def _announced(self, start: int, end: int) -> bool:
        """Whether [start, end) lies in the header read or in the announced blocks."""
        start = max(start, self._head_end)
        if end <= start:
            return True
        with self._lock:
            starts, ends = self._starts, self._ends
            j = bisect.bisect_right(starts, start) - 1
            if j < 0 or start >= ends[j]:
                return False
            while ends[j] < end and j + 1 < len(starts) and starts[j + 1] == ends[j]:
                j += 1
            return ends[j] >= end

    def _submit_up_to(self, stop: int) -> None:  # holds the lock
        while self._submitted < stop:
            j = self._submitted
            self._futures[j] = self._pool.submit(self._fetch, self._starts[j], self._ends[j])
            self._left[j] = self._ends[j] - self._starts[j]
            self._submitted += 1

    # -- reads ------------------------------------------------------------------------------------
    def __call__(self, offset: int, n: int) -> bytes:
        if self.closed:
            raise ValueError(f"{self.what}: the reader is closed")
        n = max(0, min(n, self.size - offset))
        end = offset + n
        if n == 0:
            return b""
        if offset < self._head_end:
            with self._lock:
                if self._head is None:
                    self._head = self._pool.submit(self._fetch, 0, self._head_end)
                head = self._head
            data = _result(head)[offset:end]
            return data if end <= self._head_end else data + self(self._head_end, end - self._head_end)
        parts = None
        ahead = AHEAD_BLOCKS
        with self._lock:
            starts, ends = self._starts, self._ends
            j = bisect.bisect_right(starts, offset) - 1
            if j >= 0 and offset < ends[j]:
                k = j
                while ends[k] < end and k + 1 < len(starts) and starts[k + 1] == ends[k]:
                    k += 1
                if ends[k] >= end:  # announced: served from the blocks (requested now if not yet)
                    self._submit_up_to(min(len(starts), max(self._submitted, k + ahead)))
                    for old in [i for i in self._futures if i < j - ahead]:  # left behind: never fully read
                        self._futures.pop(old).cancel()
                        self._left.pop(old, None)
                    parts = [(i, f) for i in range(j, k + 1) if (f := self._futures.get(i)) is not None]
                    if len(parts) != k + 1 - j:
                        parts = None  # a block dropped already: fetched on its own
        if parts is None:  # on the pool too: its threads' file objects are the only ones opened
            return _result(self._pool.submit(self._fetch, offset, end))
        out = []
        for i, f in parts:
            data = _result(f)
            out.append(data[max(offset, starts[i]) - starts[i]:min(end, ends[i]) - starts[i]])
        with self._lock:
            if self._starts is starts:
                for i, _ in parts:
                    if i in self._left:
                        self._left[i] -= min(end, ends[i]) - max(offset, starts[i])
                        if self._left[i] <= 0:  # every byte read: dropped
                            del self._left[i]
                            self._futures.pop(i, None)
        return out[0] if len(out) == 1 else b"".join(out)

    def _fetch(self, start: int, end: int) -> bytes:
        """Bytes [start, end) of the pinned version, exactly (else a SourceReadError)."""
        return self._retrying(f"reading bytes {start}-{end}", lambda: self._fetch_once(start, end))

    def _retrying(self, doing: str, call: Any) -> Any:
        """``call()``, tried again after transient faults (HTTP 5xx, 408 and 429, a timeout, a cut
        connection, a short body), ``ATTEMPTS`` times in all, ``RETRY_DELAYS`` apart."""
        for attempt in range(ATTEMPTS):
            if self.closed:
                raise SourceReadError("the read was cancelled (the reader was closed)")
            try:
                return call()
            except _Transient as fault:
                if attempt + 1 == ATTEMPTS:
                    tries = f" after {ATTEMPTS} attempts" if ATTEMPTS > 1 else ""
                    raise SourceReadError(f"{self.what}: {doing} failed{tries} ({fault.detail})") from None
                self._drop_file()
                time.sleep(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)])
        raise AssertionError("unreachable")  # pragma: no cover

    def _info(self) -> dict:
        try:
            return self._fs.info(self._path)
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.what} does not exist") from None
        except Exception as exc:  # noqa: BLE001 (fsspec backends raise many kinds)
            if _is_transient(exc):
                raise _Transient(self._detail(exc)) from None
            raise self._failed("reading its size", exc) from None

    def _fetch_once(self, start: int, end: int) -> bytes:
        try:
            if self._http:
                kw = {"headers": {"If-Match": self._etag}} if self._etag else {}
                data = self._fs.cat_file(self._path, start=start, end=end, **kw)
            else:
                f = self._file()
                f.seek(start)
                data = f.read(end - start)
        except (SourceReadError, FileNotFoundError):
            raise
        except Exception as exc:  # noqa: BLE001
            if type(exc).__name__ == "FileExpired" or getattr(exc, "status", None) == 412:
                raise SourceChangedError(f"{self.what}: the object changed while being read (its version "
                                         "is not the one opened); load it again") from None
            if _is_transient(exc):
                raise _Transient(self._detail(exc)) from None
            raise self._failed(f"reading bytes {start}-{end}", exc) from None
        if not isinstance(data, (bytes, bytearray)):
            data = bytes(data)
        with self._lock:
            self.bytes_fetched += len(data)
        if len(data) != end - start:
            if len(data) == self.size:
                raise SourceReadError(f"{self.what}: reading bytes {start}-{end}: the server ignored the Range "
                                      "request and sent the whole object")
            if len(data) > end - start:
                raise SourceReadError(f"{self.what}: reading bytes {start}-{end}: the server sent {len(data)} "
                                      f"bytes for a range of {end - start}")
            raise _Transient(f"short read: {len(data)} of {end - start} bytes (the object is shorter than when "
                             "it was opened, or the connection was cut)")
        return bytes(data)

    def _drop_file(self) -> None:
        """Before another attempt: this thread's file object is opened again (its connection may be dead)."""
        f = getattr(self._local, "f", None)
        if f is not None:
            self._local.f = None
            try:
                f.close()
            except Exception:  # noqa: BLE001
                pass

    def _file(self) -> Any:
        """This thread's file object on the object (s3fs pins its ETag with If-Match)."""
        f = getattr(self._local, "f", None)
        if f is None:
            kw = {"version_id": self._version} if self._version and _protocols(self._fs) & {"s3", "s3a"} \
                and getattr(self._fs, "version_aware", False) else {}
            f = self._fs.open(self._path, "rb", cache_type="none", **kw)
            with self._lock:
                self._files.append(f)
            details = getattr(f, "details", None) or {}
            etag = details.get("ETag") or details.get("etag")
            if (self._etag and etag and etag != self._etag) or getattr(f, "size", self.size) != self.size:
                raise SourceChangedError(f"{self.what}: the object changed while being read (its version is "
                                         "not the one opened); load it again")
            self._local.f = f
        return f

    def _failed(self, doing: str, exc: BaseException) -> SourceReadError:
        return SourceReadError(f"{self.what}: {doing} failed ({self._detail(exc)})")

    def _detail(self, exc: BaseException) -> str:
        """What went wrong, for a message: an HTTP status, or the exception without credentials."""
        status = getattr(exc, "status", None)
        if isinstance(status, int):
            return f"HTTP status {status}"
        detail = f"{type(exc).__name__}: {exc}".replace(self._url, shown_url(self._url))
        return re.sub(r"https?://\S+", lambda m: shown_url(m.group(0)), detail)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with self._lock:
            for f in self._futures.values():
                f.cancel()
            self._futures, self._left = {}, {}
            files, self._files = self._files, []
        self._pool.shutdown(wait=False, cancel_futures=True)
        for f in files:
            try:
                f.close()
            except Exception:  # noqa: BLE001
                pass

    def __enter__(self) -> "RangeReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Transient(Exception):
    """A fault another attempt may not meet (``detail`` says what it was)."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


#: Exception classes (by name, from aiohttp and botocore, none imported here) of faults worth another attempt.
_TRANSIENT_NAMES = {"ClientConnectionError", "ClientPayloadError", "ServerTimeoutError", "ServerDisconnectedError",
                    "ReadTimeoutError", "ConnectTimeoutError", "EndpointConnectionError", "ConnectionClosedError",
                    "IncompleteReadError", "ResponseStreamingError"}


def _is_transient(exc: BaseException) -> bool:
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return status >= 500 or status in (408, 429)
    if isinstance(exc, (TimeoutError, ConnectionError)):  # asyncio.TimeoutError is TimeoutError
        return True
    return any(c.__name__ in _TRANSIENT_NAMES for c in type(exc).__mro__)


def _protocols(fs: Any) -> set[str]:
    p = getattr(fs, "protocol", ())
    return {p} if isinstance(p, str) else set(p)


def _result(f: concurrent.futures.Future) -> bytes:
    try:
        return f.result()
    except concurrent.futures.CancelledError:
        raise SourceReadError("the read was cancelled (the reader was closed)") from None
