"""One handle, one authenticated file: modelcrypt.open_encrypted / EncryptedFile.

Every read of a handle goes through the descriptor whose header was authenticated, with the keys
derived then. A file replaced at its path or rewritten in place between two reads is an
AuthenticationError saying so, never data of two files mixed; checkpoints read by name use one
handle for their header and tensors (real files, real OpenSSL)."""

from __future__ import annotations

import os

import numpy as np
import pytest

import modelcrypt
from modelcrypt import _core
from modelcrypt.checkpoint import _Checkpoint
from modelcrypt.exceptions import AuthenticationError, KeyMismatchError

KEY = bytes(range(32))
CHUNK = 4096


@pytest.fixture
def plain(tmp_path):
    data = os.urandom(10 * CHUNK + 123)
    return data


def _encrypt(tmp_path, data, name="m.mcx", key=KEY, metadata=None):
    path = tmp_path / name
    path.write_bytes(modelcrypt.encrypt_bytes(data, key, chunk_size=CHUNK, metadata=metadata))
    return path


def test_read_ranges_through_one_handle(tmp_path, plain):
    path = _encrypt(tmp_path, plain, metadata={"who": "me"})
    with modelcrypt.open_encrypted(path, KEY) as f:
        assert f.plaintext_length == len(plain)
        assert f.chunk_size == CHUNK
        assert f.metadata == {"who": "me"}
        for off, n in [(0, 1), (4095, 2), (5000, 3 * CHUNK), (len(plain) - 7, 7), (len(plain), 0)]:
            with f.read_range(off, n) as b:
                assert bytes(b) == plain[off:off + n]
        with f.read_all() as b:
            assert bytes(b) == plain
        with pytest.raises(ValueError, match="outside"):
            f.read_range(len(plain) - 1, 2)
    assert f.closed
    with pytest.raises(ValueError, match="closed"):
        f.read_range(0, 1)


def test_buffers_outlive_the_handle(tmp_path, plain):
    path = _encrypt(tmp_path, plain)
    f = modelcrypt.open_encrypted(path, KEY)
    b = f.read_range(10, 100)
    f.close()
    assert bytes(b) == plain[10:110]


def test_header_is_authenticated_once_at_open(tmp_path, plain):
    path = _encrypt(tmp_path, plain)
    with pytest.raises(KeyMismatchError):
        modelcrypt.open_encrypted(path, bytes(32))
    _core.reset_debug_counters()
    with modelcrypt.open_encrypted(path, KEY) as f:
        f.read_range(0, 10).close()
        f.read_range(5 * CHUNK, 10).close()
    # two reads, one chunk each: only those chunks were read (the header is not re-read per range)
    assert _core.debug_counters()["chunks_decrypted"] == 2


def test_replaced_file_between_reads_is_an_error(tmp_path, plain):
    path = _encrypt(tmp_path, plain)
    with modelcrypt.open_encrypted(path, KEY) as f:
        assert bytes(f.read_range(0, 100)) == plain[:100]
        # another encryption of the same plaintext with the same key, renamed over the path
        other = _encrypt(tmp_path, plain, name="other.mcx")
        os.replace(other, path)
        with pytest.raises(AuthenticationError, match="replaced or removed while it was open"):
            f.read_range(5 * CHUNK, 100)


def test_removed_file_between_reads_is_an_error(tmp_path, plain):
    path = _encrypt(tmp_path, plain)
    with modelcrypt.open_encrypted(path, KEY) as f:
        f.read_range(0, 1).close()
        os.unlink(path)
        with pytest.raises(AuthenticationError, match="replaced or removed"):
            f.read_range(0, 1)


def test_rewritten_in_place_between_reads_is_an_error(tmp_path, plain):
    path = _encrypt(tmp_path, plain)
    other = modelcrypt.encrypt_bytes(plain, KEY, chunk_size=CHUNK)  # same size, new salt, new keys
    with modelcrypt.open_encrypted(path, KEY) as f:
        f.read_range(0, 100).close()
        with open(path, "r+b") as w:  # same inode, same size
            w.write(other)
        with pytest.raises(AuthenticationError, match="changed while it was open"):
            f.read_range(5 * CHUNK, 100)


def test_truncated_in_place_between_reads_is_an_error(tmp_path, plain):
    path = _encrypt(tmp_path, plain)
    with modelcrypt.open_encrypted(path, KEY) as f:
        f.read_range(0, 100).close()
        os.truncate(path, os.path.getsize(path) - 1000)
        with pytest.raises(AuthenticationError, match="its size went from"):
            f.read_range(0, 100)


def test_chunk_from_another_file_fails_under_the_pinned_keys(tmp_path, plain):
    """Even when a rewrite keeps the file's times (so the handle cannot see the change), a chunk
    of another encryption never authenticates under the keys of the header read at open."""
    path = _encrypt(tmp_path, plain)
    st = os.stat(path)
    other = modelcrypt.encrypt_bytes(plain, KEY, chunk_size=CHUNK)
    with modelcrypt.open_encrypted(path, KEY) as f:
        f.read_range(0, 100).close()
        with open(path, "r+b") as w:
            w.write(other)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime back: only the tags can tell
        with pytest.raises(AuthenticationError):
            f.read_range(5 * CHUNK, 100)


def test_argument_errors_never_show_the_key(tmp_path, plain):
    path = _encrypt(tmp_path, plain)
    secret = bytes([0xA5]) * 32
    for args in [(os.fsencode(path), secret, 5), (str(path), secret, "AES-GCM"), (os.fsencode(path), 12345, "AES-GCM")]:
        with pytest.raises(TypeError) as info:
            _core.open_encrypted(*args)
        text = str(info.value)
        assert "Invoked with" not in text and secret.hex() not in text and repr(secret) not in text
    with modelcrypt.open_encrypted(path, KEY) as f:
        with pytest.raises(TypeError, match="offset"):
            f._handle.read_range("0", 1, 0)


def test_load_range_uses_a_handle(tmp_path, plain):
    path = _encrypt(tmp_path, plain)
    with modelcrypt.load_range(path, KEY, offset=4000, length=5000) as b:
        assert bytes(b) == plain[4000:9000]


def _save(path, value):
    params = {"a": np.full((4096,), value, dtype=np.float32), "b": np.full((4096,), value, dtype=np.float32)}
    modelcrypt.save_checkpoint(params, path, KEY)


def test_checkpoint_by_name_reads_one_file_only(tmp_path):
    """load_checkpoint(names=) reads the header and tensors through one handle: a checkpoint
    rewritten in place between the header and a tensor is an error, never the old header with the
    new file's tensor (today's code re-opened and re-authenticated the file for every range)."""
    path = str(tmp_path / "c.safetensors")
    _save(path, 1.0)
    with _Checkpoint(path, KEY, "AES-GCM") as ckpt:
        entries, start = ckpt.header()
        newer = str(tmp_path / "newer.safetensors")
        _save(newer, 2.0)
        with open(newer, "rb") as src, open(path, "r+b") as dst:  # same size: rewrite in place
            dst.write(src.read())
        with pytest.raises(AuthenticationError):
            ckpt.load_names(["b"], entries, start)


def test_checkpoint_replaced_between_header_and_tensors(tmp_path):
    path = str(tmp_path / "c.safetensors")
    _save(path, 1.0)
    with _Checkpoint(path, KEY, "AES-GCM") as ckpt:
        entries, start = ckpt.header()
        newer = str(tmp_path / "newer.safetensors")
        _save(newer, 2.0)
        os.replace(newer, path)
        with pytest.raises(AuthenticationError, match="replaced"):
            ckpt.load_names(["b"], entries, start)


def test_one_handle_serves_many_threads(tmp_path, plain):
    """read_range releases the GIL and shares the descriptor and keys: concurrent reads of one handle
    all return the right bytes; closing it while others read is safe."""
    import threading

    path = _encrypt(tmp_path, plain)
    errors: list = []
    f = modelcrypt.open_encrypted(path, KEY)

    def worker(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            for _ in range(50):
                off = int(rng.integers(0, len(plain)))
                n = int(rng.integers(0, len(plain) - off + 1))
                with f.read_range(off, n, threads=2) as b:
                    assert bytes(b) == plain[off:off + n]
        except ValueError as exc:  # closed by the main thread: the only acceptable failure
            if "closed" not in str(exc):
                errors.append(exc)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    threads[0].join()
    f.close()
    for t in threads:
        t.join()
    assert errors == []


# ------------------------------------------------------------- read_range_into (caller's memory)

def test_read_range_into_any_range_equals_read_range(tmp_path, plain):
    import random

    path = _encrypt(tmp_path, plain)
    rng = random.Random(7)
    cases = [(0, len(plain)), (0, CHUNK), (CHUNK, CHUNK), (CHUNK - 1, 2), (3, 5), (CHUNK, 3 * CHUNK + 1),
             (len(plain) - 123, 123), (len(plain), 0)]
    cases += [(o, rng.randrange(0, len(plain) - o + 1)) for o in (rng.randrange(0, len(plain) + 1) for _ in range(60))]
    with modelcrypt.open_encrypted(path, KEY) as f:
        for off, n in cases:
            for out in (bytearray(b"\xaa" * n), np.full(n, 0xAA, np.uint8), memoryview(bytearray(n))):
                f.read_range_into(off, out, threads=rng.choice([None, 1, 3]))
                assert bytes(out) == plain[off:off + n], (off, n)
        floats = np.zeros(1000, np.float32)  # any dtype: the bytes are what is written
        f.read_range_into(8, floats)
        assert floats.tobytes() == plain[8:4008]
        with pytest.raises(ValueError, match="outside"):
            f.read_range_into(len(plain) - 1, bytearray(2))
        with pytest.raises(TypeError, match="writable"):
            f.read_range_into(0, b"read-only")
        with pytest.raises(TypeError, match="writable"):
            f.read_range_into(0, np.zeros((8, 8), np.uint8)[:, :2])  # not contiguous
    with pytest.raises(ValueError, match="closed"):
        f.read_range_into(0, bytearray(1))


@pytest.mark.parametrize("where", ["inside", "cut"])
def test_read_range_into_wipes_the_destination_on_a_bad_chunk(tmp_path, plain, where):
    """A chunk that fails authentication anywhere in the range: every byte of the caller's memory
    is zeroed before the error, including the chunks that did authenticate."""
    path = _encrypt(tmp_path, plain)
    blob = bytearray(path.read_bytes())
    header = len(blob) - (len(plain) + 11 * 16)
    bad = 6 if where == "inside" else 8  # range [CHUNK + 10, 8 * CHUNK + 5): chunk 8 is the cut one
    blob[header + bad * (CHUNK + 16) + 100] ^= 1
    path.write_bytes(blob)
    with modelcrypt.open_encrypted(path, KEY) as f:
        out = np.full(7 * CHUNK - 5, 0xAA, np.uint8)
        with pytest.raises(AuthenticationError, match=f"chunk {bad}"):
            f.read_range_into(CHUNK + 10, out, threads=2)
        assert not out.any()
        good = bytearray(CHUNK)
        f.read_range_into(0, good)  # the chunks before are fine
        assert bytes(good) == plain[:CHUNK]


def test_read_range_into_wipes_the_destination_when_the_file_changed(tmp_path, plain):
    path = _encrypt(tmp_path, plain)
    other = modelcrypt.encrypt_bytes(plain, KEY, chunk_size=CHUNK)
    with modelcrypt.open_encrypted(path, KEY) as f:
        with open(path, "r+b") as w:
            w.write(other)
        out = bytearray(b"\xaa" * 3 * CHUNK)
        with pytest.raises(AuthenticationError, match="changed while it was open"):
            f.read_range_into(CHUNK, out)
        assert out == bytearray(len(out))


def test_read_range_into_with_an_identity_and_a_signature(tmp_path, plain):
    ident, signer = modelcrypt.generate_identity(), modelcrypt.generate_signing_key()
    path = tmp_path / "s.mcx"
    path.write_bytes(modelcrypt.encrypt_bytes(plain, recipients=[ident.recipient], chunk_size=CHUNK, signing_key=signer))
    with modelcrypt.open_encrypted(path, identity=ident, trusted_signers=[signer]) as f:
        out = bytearray(5 * CHUNK)
        f.read_range_into(2 * CHUNK - 1, out)
        assert bytes(out) == plain[2 * CHUNK - 1:7 * CHUNK - 1]
