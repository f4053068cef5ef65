"""Thread safety: 8 Python threads use the API at once (the core releases the GIL), each result is
compared with the expected plaintext.

* load (whole file, load_range, verify) of ONE file by 8 threads, with threads=1/2/None;
* encrypt_file of different sources to different destinations, then load of each;
* encrypt_bytes / decrypt_bytes of different data;
* load_checkpoint of one shared checkpoint and of per-thread checkpoints;
* all of the above mixed in one burst;
* 8 threads encrypt_file different sources onto the SAME destination, round after round: every call
  succeeds, the destination is then one complete valid file equal to one of the inputs, and no
  temporary file remains; readers loading that destination meanwhile only ever see complete inputs.

Data: a few MiB per file with 4 KiB chunks, so every call has hundreds of chunks.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading

import numpy as np
import pytest

import modelcrypt

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
CS = 4096
N = 8
ROUNDS = 6


def _data(i: int, size: int = 3 * (1 << 20) + 123) -> bytes:
    return np.random.default_rng(i).integers(0, 256, size, dtype=np.uint8).tobytes()


def _digest(buf) -> str:
    return hashlib.sha256(buf).hexdigest()


def _run(workers):
    """Runs every callable in its own thread, started together; re-raises the first failure."""
    barrier = threading.Barrier(len(workers))
    errors: list[BaseException] = []
    results: list = [None] * len(workers)

    def run(i, fn):
        try:
            barrier.wait(timeout=30)
            results[i] = fn()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
        assert not t.is_alive(), "a worker thread hung"
    if errors:
        raise errors[0]
    return results


def _open_outputs(directory):
    """The output files this process has open in `directory`: unnamed O_TMPFILE files (Linux,
    "DIR/#INODE (deleted)" in /proc/self/fd) or named ".model.mcx.mctmp-" temporary files."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        head, name = os.path.split(link)
        if head == str(directory) and (name.startswith(".model.mcx.mctmp-") or re.fullmatch(r"#\d+ \(deleted\)", name)):
            found.append(name)
    return sorted(found)


def _no_temp_files(directory):
    left = [n for n in os.listdir(directory) if ".mctmp-" in n]
    assert not left, left


@pytest.fixture
def shared(tmp_path):
    data = _data(0)
    src = tmp_path / "shared.bin"
    src.write_bytes(data)
    enc = tmp_path / "shared.mcx"
    modelcrypt.encrypt_file(src, enc, KEY, chunk_size=CS, metadata={"who": "shared"})
    return enc, data


def test_one_file_loaded_by_8_threads(shared):
    enc, data = shared
    want = _digest(data)

    def worker(i):
        def fn():
            for r in range(ROUNDS):
                threads = (1, 2, None)[(i + r) % 3]
                with modelcrypt.load(enc, KEY, threads=threads) as buf:
                    assert len(buf) == len(data) and _digest(buf) == want
                    assert buf.metadata == {"who": "shared"}
                off = (i * 977 + r * 4093) % (len(data) - 20000)
                with modelcrypt.load_range(enc, KEY, offset=off, length=20000, threads=threads) as part:
                    assert bytes(part) == data[off:off + 20000]
                modelcrypt.verify(enc, KEY, threads=threads)
                with pytest.raises(modelcrypt.KeyMismatchError):
                    modelcrypt.load(enc, OTHER_KEY)
            return True
        return fn

    assert _run([worker(i) for i in range(N)]) == [True] * N


def test_encrypt_file_different_sources_and_destinations(tmp_path):
    datas = [_data(10 + i, (1 << 20) + 4096 * i + i) for i in range(N)]
    srcs = []
    for i, d in enumerate(datas):
        srcs.append(tmp_path / f"src{i}.bin")
        srcs[-1].write_bytes(d)

    def worker(i):
        def fn():
            for r in range(ROUNDS):
                dst = tmp_path / f"dst{i}.mcx"  # overwritten every round
                modelcrypt.encrypt_file(srcs[i], dst, KEY, chunk_size=CS, metadata={"i": str(i), "r": str(r)},
                                        threads=(1, 2, None)[r % 3])
                with modelcrypt.load(dst, KEY) as buf:
                    assert bytes(buf) == datas[i]
                    assert buf.metadata == {"i": str(i), "r": str(r)}
            return True
        return fn

    assert _run([worker(i) for i in range(N)]) == [True] * N
    for i in range(N):
        with modelcrypt.load(tmp_path / f"dst{i}.mcx", KEY) as buf:
            assert bytes(buf) == datas[i]
    _no_temp_files(tmp_path)


def test_encrypt_bytes_decrypt_bytes_8_threads():
    datas = [_data(20 + i, (1 << 20) + 17 * i) for i in range(N)]

    def worker(i):
        def fn():
            for r in range(ROUNDS):
                blob = modelcrypt.encrypt_bytes(datas[i], KEY, chunk_size=CS, metadata={"i": str(i)},
                                                threads=(None, 1, 2)[r % 3])
                with modelcrypt.decrypt_bytes(blob, KEY, threads=(1, 2, None)[r % 3]) as buf:
                    assert bytes(buf) == datas[i] and buf.metadata == {"i": str(i)}
                tampered = bytearray(blob)
                tampered[len(blob) // 2] ^= 1
                with pytest.raises(modelcrypt.AuthenticationError):
                    modelcrypt.decrypt_bytes(bytes(tampered), KEY)
            return True
        return fn

    assert _run([worker(i) for i in range(N)]) == [True] * N


def _params(i):
    rng = np.random.default_rng(100 + i)
    return {"w": rng.standard_normal((256, 257)).astype(np.float32), "b": rng.standard_normal(999),
            "ids": np.arange(1000 + i, dtype=np.int64), "h": rng.standard_normal(77).astype(np.float16)}


def _same(got, want):
    assert list(got) == list(want) or sorted(got) == sorted(want)
    for k, v in want.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape and np.array_equal(got[k], v), k


def test_load_checkpoint_8_threads(tmp_path):
    shared_params = _params(0)
    modelcrypt.save_checkpoint(shared_params, tmp_path / "shared.safetensors.mcx", KEY)
    own = [_params(1 + i) for i in range(N)]

    def worker(i):
        def fn():
            path = tmp_path / f"own{i}.safetensors.mcx"
            for r in range(ROUNDS):
                _same(modelcrypt.load_checkpoint(tmp_path / "shared.safetensors.mcx", KEY), shared_params)
                got = modelcrypt.load_checkpoint(tmp_path / "shared.safetensors.mcx", KEY, names=["ids", "h"])
                assert list(got) == ["ids", "h"]
                _same(got, {k: shared_params[k] for k in ("ids", "h")})
                modelcrypt.save_checkpoint(own[i], path, KEY)
                _same(modelcrypt.load_checkpoint(path, KEY), own[i])
            return True
        return fn

    assert _run([worker(i) for i in range(N)]) == [True] * N
    _no_temp_files(tmp_path)


def test_mixed_operations_at_once(shared, tmp_path):
    enc, data = shared
    params = _params(50)
    modelcrypt.save_checkpoint(params, tmp_path / "ck.mcx", KEY)
    extra = [_data(60 + i, 1 << 20) for i in range(N)]
    for i, d in enumerate(extra):
        (tmp_path / f"x{i}.bin").write_bytes(d)

    def worker(i):
        def fn():
            for r in range(ROUNDS):
                kind = (i + r) % 4
                if kind == 0:
                    with modelcrypt.load(enc, KEY) as buf:
                        assert bytes(buf) == data
                elif kind == 1:
                    dst = tmp_path / f"x{i}.mcx"
                    modelcrypt.encrypt_file(tmp_path / f"x{i}.bin", dst, KEY, chunk_size=CS)
                    with modelcrypt.load(dst, KEY) as buf:
                        assert bytes(buf) == extra[i]
                elif kind == 2:
                    with modelcrypt.decrypt_bytes(modelcrypt.encrypt_bytes(extra[i], KEY, chunk_size=CS), KEY) as buf:
                        assert bytes(buf) == extra[i]
                else:
                    _same(modelcrypt.load_checkpoint(tmp_path / "ck.mcx", KEY), params)
            return True
        return fn

    assert _run([worker(i) for i in range(N)]) == [True] * N
    _no_temp_files(tmp_path)


def _distinct_sources(tmp_path, seed, count):
    """`count` distinct source files, their digests, and an empty out/ directory with dst = out/model.mcx."""
    datas = [_data(seed + i, (1 << 20) + 4096 * i) for i in range(count)]
    by_digest = {_digest(d): i for i, d in enumerate(datas)}
    assert len(by_digest) == count
    srcs = []
    for i, d in enumerate(datas):
        srcs.append(tmp_path / f"src{i}.bin")
        srcs[-1].write_bytes(d)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    return datas, by_digest, srcs, out_dir, out_dir / "model.mcx"


def test_8_writers_same_destination(tmp_path):
    datas, by_digest, srcs, out_dir, dst = _distinct_sources(tmp_path, 200, N)
    for r in range(2 * ROUNDS):
        # odd rounds: every writer waits in its progress callback (after its last batch, before its
        # rename) until all 8 temporary files exist at once, so the renames really race
        together = threading.Barrier(N) if r % 2 else None
        temps_at_once: list[list[str]] = []

        def progress(done, together=together):
            if together is not None:
                if together.wait(timeout=30) == 0:
                    temps_at_once.append(_open_outputs(out_dir))
                together.wait(timeout=30)  # nobody renames before the listing is taken

        def writer(i, r=r, progress=progress):
            return lambda: modelcrypt.encrypt_file(srcs[i], dst, KEY, chunk_size=CS, progress=progress,
                                                   metadata={"writer": str(i), "round": str(r)})

        _run([writer(i) for i in range(N)])  # every writer succeeds
        if together is not None:
            assert len(temps_at_once) == 1 and len(set(temps_at_once[0])) == N, temps_at_once
        assert os.listdir(out_dir) == ["model.mcx"], os.listdir(out_dir)  # no temporary file remains
        modelcrypt.verify(dst, KEY)
        with modelcrypt.load(dst, KEY) as buf:
            i = by_digest.get(_digest(buf))
            assert i is not None, "the destination is none of the inputs"
            assert buf.metadata == {"writer": str(i), "round": str(r)}
            assert len(buf) == len(datas[i])
    assert modelcrypt.inspect(dst).file_length == os.path.getsize(dst)


def test_readers_see_only_complete_files_while_writers_replace(tmp_path):
    datas, by_digest, srcs, out_dir, dst = _distinct_sources(tmp_path, 300, 4)
    modelcrypt.encrypt_file(srcs[0], dst, KEY, chunk_size=CS)
    stop = threading.Event()
    seen: list[int] = []

    def writer(i):
        def fn():
            try:
                for _ in range(2 * ROUNDS):
                    modelcrypt.encrypt_file(srcs[i], dst, KEY, chunk_size=CS)
            finally:
                stop.set()
        return fn

    def reader():
        n = 0
        while not stop.is_set() or n == 0:
            with modelcrypt.load(dst, KEY) as buf:
                i = by_digest.get(_digest(buf))
                assert i is not None, "a reader saw a file that is none of the inputs"
                seen.append(i)
            n += 1
        return n

    counts = _run([writer(i) for i in range(4)] + [reader for _ in range(4)])
    assert all(c >= 1 for c in counts[4:])
    assert os.listdir(out_dir) == ["model.mcx"]
    modelcrypt.verify(dst, KEY)
