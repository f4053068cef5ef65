"""Loading from http(s):// through fsspec's HTTP filesystem (aiohttp) against a small Range-capable
server started here on 127.0.0.1 (issue 17): it counts the bytes it sends and injects faults (Range
ignored, short bodies, 5xx, a hang, the object replaced between requests). Nothing leaves loopback."""

from __future__ import annotations

import hashlib
import json
import http.server as http_server
import os
import re
import threading
import time

import numpy as np
import pytest

import modelcrypt
from conftest import require

KEY = bytes(range(32))
CHUNK = 64 * 1024
STRIDE = CHUNK + 16  # a chunk's ciphertext and tag


class _Server:
    """Objects by path; ``fault`` applies to GETs after the first ``fault_after`` of them (to
    ``fault_count`` of them, if given; to all, if not)."""

    def __init__(self):
        self.objects: dict[str, bytes] = {}
        self.fault: str | None = None
        self.fault_after = 0
        self.fault_count: int | None = None
        self.faults = 0  # GETs answered with the fault
        self.sent = 0  # body bytes sent
        self.gets = 0
        self.active = self.max_active = 0  # GETs being answered at once
        self.lock = threading.Lock()
        server = self

        class Handler(http_server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _object(self):
                data = server.objects.get(self.path)
                if data is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                return data

            def _head(self, status, data_len, total, etag, extra=()):
                self.send_response(status)
                self.send_header("Content-Length", str(data_len))
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("ETag", etag)
                for k, v in extra:
                    self.send_header(k, v)
                self.end_headers()

            def do_HEAD(self):
                data = self._object()
                if data is not None:
                    self._head(200, len(data), len(data), _etag(data))

            def do_GET(self):
                data = self._object()
                if data is None:
                    return
                with server.lock:
                    server.gets += 1
                    server.active += 1
                    server.max_active = max(server.max_active, server.active)
                    fault = server.fault if server.gets > server.fault_after else None
                    if fault is not None and server.fault_count is not None and server.faults >= server.fault_count:
                        fault = None
                    server.faults += fault is not None
                try:
                    self._get(data, fault)
                finally:
                    with server.lock:
                        server.active -= 1

            def _get(self, data, fault):
                etag = _etag(data)
                m = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
                if fault == "error":
                    return self._send(503, b"unavailable", etag)
                if fault == "gone":
                    return self._send(404, b"", etag)
                if fault == "hang":
                    time.sleep(30)
                if self.headers.get("If-Match") not in (None, etag):
                    return self._send(412, b"", etag)
                if m is None or fault == "ignore_range":
                    return self._send(200, data, etag)
                start, end = int(m.group(1)), min(int(m.group(2)) + 1, len(data))
                body = data[start:end]
                if fault == "short":
                    body = body[: len(body) // 2]
                self._send(206, body, etag, [("Content-Range", f"bytes {start}-{start + len(body) - 1}/{len(data)}")])

            def _send(self, status, body, etag, extra=()):
                with server.lock:  # counted before it is sent: the client may be done before this thread goes on
                    server.sent += len(body)
                self._head(status, len(body), len(body), etag, extra)
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = http_server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def reset(self, fault=None, fault_after=0, fault_count=None):
        with self.lock:
            self.fault, self.fault_after, self.sent, self.gets = fault, fault_after, 0, 0
            self.fault_count, self.faults = fault_count, 0
            self.active = self.max_active = 0

    def put(self, name, data):
        self.objects["/" + name] = bytes(data)
        return f"{self.url}/{name}"


def _etag(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


@pytest.fixture(scope="module")
def server():
    require("aiohttp")
    s = _Server()
    s.thread.start()
    try:
        yield s
    finally:
        s.httpd.shutdown()
        s.httpd.server_close()


@pytest.fixture
def http(server):
    server.reset()
    return server


def _options(timeout=10.0):
    import aiohttp

    return {"client_kwargs": {"timeout": aiohttp.ClientTimeout(total=timeout)}, "skip_instance_cache": True}


@pytest.fixture(scope="module")
def plain():
    return os.urandom(40 * CHUNK + 123)


def _blob(plain):
    return modelcrypt.encrypt_bytes(plain, KEY, chunk_size=CHUNK)


def test_load_downloads_each_byte_once(http, plain):
    blob = _blob(plain)
    url = http.put("m.mcx", blob)
    with modelcrypt.load(url, KEY, storage_options=_options()) as buf:
        assert bytes(buf) == plain
    assert http.sent == len(blob)


def test_load_in_parallel_blocks(http, plain, monkeypatch):
    """With blocks smaller than the object (chunks straddling their edges), load fetches them in
    parallel, at most AHEAD_BLOCKS at once, each byte once."""
    src = modelcrypt._sources
    monkeypatch.setattr(src, "BLOCK_BYTES", 200 * 1000)
    monkeypatch.setattr(src, "AHEAD_BLOCKS", 4)
    blob = _blob(plain)
    url = http.put("blocks.mcx", blob)
    for threads in (1, 2):
        http.reset()
        with modelcrypt.load(url, KEY, threads=threads, storage_options=_options()) as buf:
            assert bytes(buf) == plain
        assert http.sent == len(blob)
        assert http.gets == -(-len(blob) // src.BLOCK_BYTES)  # the header comes with the first block
        assert 1 <= http.max_active <= 4


def test_block_size_follows_the_object_size():
    """About TARGET_REQUESTS requests per object, within MIN_BLOCK_BYTES..BLOCK_BYTES."""
    src, MiB = modelcrypt._sources, 2**20
    assert src.block_bytes(10 * MiB) == src.MIN_BLOCK_BYTES
    assert src.block_bytes(1024 * MiB) == 43 * MiB  # 1 GiB / 24, rounded up to a MiB: 25 requests
    assert -(-1024 * MiB // src.block_bytes(1024 * MiB)) <= src.TARGET_REQUESTS
    assert src.block_bytes(100 * 1024 * MiB) == src.BLOCK_BYTES


def test_load_range_downloads_the_chunks_it_needs(http, plain):
    blob = _blob(plain)
    url = http.put("r.mcx", blob)
    offset, length = 30 * CHUNK + 5, 3 * CHUNK
    with modelcrypt.load_range(url, KEY, offset=offset, length=length, storage_options=_options()) as buf:
        assert bytes(buf) == plain[offset:offset + length]
    head = modelcrypt._sources.HEAD_BYTES
    assert http.sent <= head + 4 * STRIDE  # the header read, then the 4 chunks the range touches


def test_load_checkpoint_names_downloads_selected_chunks(http, tmp_path):
    """names=: the header read, then the selected tensors' chunks (at most one more chunk per
    contiguous run), counted by the server."""
    rng = np.random.default_rng(1)
    params = {f"t{i:02}": rng.standard_normal(300 * 1024, dtype=np.float32) for i in range(12)}  # 1.2 MB each
    path = tmp_path / "ckpt.safetensors"
    modelcrypt.save_checkpoint(params, path, KEY)
    data = path.read_bytes()
    url = http.put("ckpt.mcx", data)
    with modelcrypt.load(path, KEY) as buf:  # the tensors' plaintext offsets, from the safetensors header
        pt = bytes(buf)
    n = int.from_bytes(pt[:8], "little")
    layout = json.loads(pt[8:8 + n])
    with modelcrypt.open_encrypted(path, KEY) as f:
        cs = f.chunk_size
    names = ["t03", "t04", "t09"]  # two contiguous runs: t03+t04, t09
    chunks = set()
    for name in names:
        b, e = (8 + n + o for o in layout[name]["data_offsets"])
        chunks.update(range(b // cs, (e - 1) // cs + 1))
    http.reset()
    state = modelcrypt.load_checkpoint(url, KEY, names=names, storage_options=_options())
    for name in names:
        np.testing.assert_array_equal(state[name], params[name])
    allowed = modelcrypt._sources.HEAD_BYTES + (len(chunks) + 2) * (cs + 16)
    assert http.sent <= allowed, (http.sent, allowed, len(data))
    assert http.sent < len(data) / 2


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 512 KiB: a load of the 2.6 MB test object makes several requests, the first with the header."""
    monkeypatch.setattr(modelcrypt._sources, "BLOCK_BYTES", 512 * 1024)


def test_server_ignoring_range_is_a_clear_error(http, plain, small_blocks):
    url = http.put("ignore.mcx", _blob(plain))
    http.reset("ignore_range")
    with pytest.raises(modelcrypt.SourceReadError, match="ignored the Range request"):
        modelcrypt.load(url, KEY, storage_options=_options())


def test_short_body_is_a_clear_error(http, plain, small_blocks):
    url = http.put("short.mcx", _blob(plain))
    http.reset("short", fault_after=1)  # the first block is whole, a later one comes short (each time)
    with pytest.raises(modelcrypt.SourceReadError, match="after 3 attempts.*short read"):
        modelcrypt.load(url, KEY, storage_options=_options())


def test_5xx_is_a_clear_error_after_retries(http, plain, small_blocks):
    url = http.put("down.mcx", _blob(plain))
    http.reset("error", fault_after=1)
    start = time.monotonic()
    with pytest.raises(modelcrypt.SourceReadError, match=r"after 3 attempts \(HTTP status 503\)"):
        modelcrypt.load(url, KEY, storage_options=_options())
    assert time.monotonic() - start < 20
    assert http.faults >= modelcrypt._sources.ATTEMPTS  # the failing range was asked for 3 times
    http.reset("error")
    with pytest.raises(modelcrypt.SourceReadError, match="HTTP status 503"):
        modelcrypt.load_checkpoint(url, KEY, names=["x"], storage_options=_options())


@pytest.mark.parametrize("fault", ["error", "short"])
def test_transient_faults_are_retried(http, plain, fault, small_blocks):
    """A 503 or a body cut short, twice, then the right answer: the load succeeds, the range is
    fetched again (each fault one more GET) and the result is the plaintext."""
    blob = _blob(plain)
    url = http.put(f"flaky-{fault}.mcx", blob)
    http.reset()
    with modelcrypt.load(url, KEY, storage_options=_options()) as buf:
        assert bytes(buf) == plain
    clean_gets = http.gets
    http.reset(fault, fault_after=1, fault_count=2)
    with modelcrypt.load(url, KEY, storage_options=_options()) as buf:
        assert bytes(buf) == plain
    assert http.faults == 2
    assert http.gets == clean_gets + 2


def test_4xx_is_not_retried(http, plain):
    url = http.put("gone.mcx", _blob(plain))
    http.reset()
    with modelcrypt.open_encrypted(url, KEY, storage_options=_options()) as f:
        http.reset("gone")  # deleted after the header read: the next range is a 404
        with pytest.raises((modelcrypt.SourceReadError, FileNotFoundError)):
            f.read_range(len(plain) - 10, 10)
    assert http.gets == 1


def test_hanging_server_times_out(http, plain, small_blocks):
    url = http.put("hang.mcx", _blob(plain))
    http.reset("hang", fault_after=1)
    start = time.monotonic()
    with pytest.raises(modelcrypt.SourceReadError, match="after 3 attempts.*Timeout"):
        modelcrypt.load(url, KEY, storage_options=_options(timeout=1.0))
    assert time.monotonic() - start < 15


def test_object_replaced_between_requests(http, plain):
    url = http.put("swap.mcx", _blob(plain))
    with modelcrypt.open_encrypted(url, KEY, storage_options=_options()) as f:
        with f.read_range(0, 10) as b:
            assert bytes(b) == plain[:10]
        http.put("swap.mcx", _blob(plain))  # same size, another encryption: another ETag
        with pytest.raises(modelcrypt.SourceChangedError, match="changed while being read"):
            f.read_range(len(plain) - 10, 10)


def test_missing_object_is_file_not_found(http):
    with pytest.raises(FileNotFoundError):
        modelcrypt.load(f"{http.url}/nothing.mcx", KEY, storage_options=_options())
