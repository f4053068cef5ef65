"""Round trips, API agreement, DecryptedBuffer behaviour, inspect(), argument
validation and atomic file replacement."""

import json
import math
import os
import pathlib
import struct

import numpy as np
import pytest

import modelcrypt

CS = 4096
MAGIC = b"\x89MCRYPT\n"
SIZES = [0, 1, CS - 1, CS, CS + 1, 37 * CS + 123]


def _data(n, seed=0):
    rng = np.random.default_rng(seed + n)
    return rng.integers(0, 256, n, dtype=np.uint8).tobytes()


def _n_chunks(length, cs):
    return max(1, math.ceil(length / cs))


def _expected_file_len(length, cs, m=0):
    return 128 + m + length + 16 * _n_chunks(length, cs)


def _no_temp_files(directory):
    return [n for n in os.listdir(directory) if ".mctmp" in n]


KEY16 = bytes(range(16))
KEY24 = bytes(range(24))
KEY32 = bytes(range(32))


# ------------------------------------------------------------ round trips


@pytest.mark.parametrize("size", SIZES)
def test_bytes_roundtrip(size):
    data = _data(size)
    blob = modelcrypt.encrypt_bytes(data, KEY32, chunk_size=CS)
    assert isinstance(blob, bytes)
    assert blob[:8] == MAGIC
    assert len(blob) == _expected_file_len(size, CS)
    with modelcrypt.decrypt_bytes(blob, KEY32) as buf:
        assert len(buf) == size
        assert bytes(buf) == data


@pytest.mark.parametrize("size", SIZES)
def test_file_roundtrip(size, tmp_path):
    data = _data(size, seed=1)
    src, enc, dec = tmp_path / "model.bin", tmp_path / "model.enc", tmp_path / "model.out"
    src.write_bytes(data)
    modelcrypt.encrypt_file(str(src), str(enc), KEY32, chunk_size=CS)
    assert enc.stat().st_size == _expected_file_len(size, CS)
    assert src.read_bytes() == data
    with modelcrypt.load(str(enc), KEY32) as buf:
        assert len(buf) == size
        assert bytes(buf) == data
    modelcrypt.decrypt_file(str(enc), str(dec), KEY32)
    assert dec.read_bytes() == data
    assert _no_temp_files(tmp_path) == []


def test_default_chunk_size_multi_chunk(tmp_path):
    size = 3 * 1024 * 1024 + 7
    data = _data(size, seed=2)
    src, enc, dec = tmp_path / "a.bin", tmp_path / "a.enc", tmp_path / "a.out"
    src.write_bytes(data)
    modelcrypt.encrypt_file(src, enc, KEY32)
    info = modelcrypt.inspect(enc)
    assert info.chunk_size == 1048576
    assert info.chunk_count == 4
    assert info.plaintext_length == size
    assert enc.stat().st_size == _expected_file_len(size, 1048576)
    with modelcrypt.load(enc, KEY32) as buf:
        assert bytes(buf) == data
    modelcrypt.decrypt_file(enc, dec, KEY32)
    assert dec.read_bytes() == data
    blob = modelcrypt.encrypt_bytes(data, KEY32)
    assert len(blob) == enc.stat().st_size
    with modelcrypt.decrypt_bytes(blob, KEY32) as buf:
        assert bytes(buf) == data


@pytest.mark.parametrize("size", [0, CS + 1, 37 * CS + 123])
def test_bytes_and_file_apis_agree(size, tmp_path):
    data = _data(size, seed=3)
    # encrypt_bytes -> disk -> load / decrypt_file
    p = tmp_path / "from_bytes.enc"
    p.write_bytes(modelcrypt.encrypt_bytes(data, KEY24, chunk_size=CS, metadata={"x": "y"}))
    with modelcrypt.load(p, KEY24) as buf:
        assert bytes(buf) == data and buf.metadata == {"x": "y"}
    modelcrypt.decrypt_file(p, tmp_path / "o1", KEY24)
    assert (tmp_path / "o1").read_bytes() == data
    # encrypt_file -> read bytes -> decrypt_bytes
    src, enc = tmp_path / "src.bin", tmp_path / "from_file.enc"
    src.write_bytes(data)
    modelcrypt.encrypt_file(src, enc, KEY24, chunk_size=CS, metadata={"x": "y"})
    with modelcrypt.decrypt_bytes(enc.read_bytes(), KEY24) as buf:
        assert bytes(buf) == data and buf.metadata == {"x": "y"}
    # identical layout apart from the random salt (and everything derived from it)
    a, b = p.read_bytes(), enc.read_bytes()
    assert len(a) == len(b)
    assert a[:32] == b[:32]


@pytest.mark.parametrize("key", [KEY16, KEY24, KEY32], ids=["k16", "k24", "k32"])
def test_key_sizes(key, tmp_path):
    data = _data(CS * 3 + 5, seed=4)
    blob = modelcrypt.encrypt_bytes(data, key, chunk_size=CS)
    with modelcrypt.decrypt_bytes(blob, key) as buf:
        assert bytes(buf) == data
    # every key length is accepted as bytearray / memoryview too
    for k in (bytearray(key), memoryview(key)):
        with modelcrypt.decrypt_bytes(blob, k) as buf:
            assert bytes(buf) == data
    blob2 = modelcrypt.encrypt_bytes(data, bytearray(key), chunk_size=CS)
    with modelcrypt.decrypt_bytes(blob2, key) as buf:
        assert bytes(buf) == data
    # a different key of the same length does not open it
    other = bytes([key[0] ^ 1]) + key[1:]
    with pytest.raises(modelcrypt.KeyMismatchError):
        modelcrypt.decrypt_bytes(blob, other)


def test_data_accepts_buffer_types():
    data = _data(CS + 9, seed=5)
    for d in (bytearray(data), memoryview(data), np.frombuffer(data, dtype=np.uint8)):
        blob = modelcrypt.encrypt_bytes(d, KEY16, chunk_size=CS)
        with modelcrypt.decrypt_bytes(bytearray(blob), KEY16) as buf:
            assert bytes(buf) == data


# ------------------------------------------------------------ metadata, inspect


META = {"name": "résumé-模型", "arch": "llama", "b": "", "a": "1"}


def test_metadata_roundtrip(tmp_path):
    data = _data(5000, seed=6)
    raw = json.dumps(META, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    src, enc = tmp_path / "s", tmp_path / "e"
    src.write_bytes(data)
    modelcrypt.encrypt_file(src, enc, KEY32, chunk_size=CS, metadata=META)
    with modelcrypt.load(enc, KEY32) as buf:
        assert buf.metadata == META
    blob = enc.read_bytes()
    with modelcrypt.decrypt_bytes(blob, KEY32) as buf:
        assert buf.metadata == META
    info = modelcrypt.inspect(enc)
    assert info.metadata == META
    assert info.metadata_raw == raw
    assert info.header_length == 128 + len(raw)
    assert blob[96:96 + len(raw)] == raw
    assert struct.unpack_from("<I", blob, 24)[0] == len(raw)
    assert len(blob) == _expected_file_len(5000, CS, len(raw))
    blob2 = modelcrypt.encrypt_bytes(data, KEY32, chunk_size=CS, metadata=META)
    assert blob2[96:96 + len(raw)] == raw


def test_no_metadata(tmp_path):
    blob = modelcrypt.encrypt_bytes(b"abc", KEY32, metadata=None)
    p = tmp_path / "e"
    p.write_bytes(blob)
    info = modelcrypt.inspect(p)
    assert info.metadata == {}
    assert info.metadata_raw == b""
    assert info.header_length == 128
    with modelcrypt.decrypt_bytes(blob, KEY32) as buf:
        assert buf.metadata == {}


@pytest.mark.parametrize("size", [0, CS, 37 * CS + 123])
def test_inspect_fields(size, tmp_path):
    data = _data(size, seed=7)
    src, enc = tmp_path / "s", tmp_path / "e"
    src.write_bytes(data)
    modelcrypt.encrypt_file(src, enc, KEY16, chunk_size=CS, metadata={"k": "v"})
    raw = enc.read_bytes()
    info = modelcrypt.inspect(enc)
    assert info.version == 1
    assert info.algorithm == "AES-256-GCM"
    assert info.chunk_size == CS
    assert info.plaintext_length == size
    assert info.chunk_count == _n_chunks(size, CS)
    assert info.header_length == 128 + len(b'{"k":"v"}')
    assert info.file_length == len(raw) == _expected_file_len(size, CS, len(b'{"k":"v"}'))
    assert isinstance(info.salt, bytes) and info.salt == raw[32:64]
    assert isinstance(info.key_commitment, bytes) and info.key_commitment == raw[64:96]
    assert info.metadata == {"k": "v"}
    assert modelcrypt.inspect(str(enc)).salt == info.salt


def test_is_encrypted(tmp_path):
    enc = tmp_path / "e"
    enc.write_bytes(modelcrypt.encrypt_bytes(b"hello", KEY32))
    assert modelcrypt.is_encrypted(enc) is True
    assert modelcrypt.is_encrypted(str(enc)) is True
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"PK\x03\x04" + _data(1000))
    assert modelcrypt.is_encrypted(plain) is False
    short = tmp_path / "short"
    short.write_bytes(MAGIC[:5])
    assert modelcrypt.is_encrypted(short) is False
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert modelcrypt.is_encrypted(empty) is False
    only_magic = tmp_path / "magic"
    only_magic.write_bytes(MAGIC)
    assert modelcrypt.is_encrypted(only_magic) is True


# ------------------------------------------------------------ threads


def test_threads_identical(tmp_path):
    size = 37 * CS + 123
    data = _data(size, seed=8)
    src = tmp_path / "s"
    src.write_bytes(data)
    results = {}
    for t_enc in (1, 2):
        enc = tmp_path / ("e%d" % t_enc)
        modelcrypt.encrypt_file(src, enc, KEY32, chunk_size=CS, threads=t_enc)
        blob = enc.read_bytes()
        assert len(blob) == _expected_file_len(size, CS)
        for t_dec in (1, 2):
            with modelcrypt.load(enc, KEY32, threads=t_dec) as buf:
                results[("load", t_enc, t_dec)] = bytes(buf)
            with modelcrypt.decrypt_bytes(blob, KEY32, threads=t_dec) as buf:
                results[("bytes", t_enc, t_dec)] = bytes(buf)
            out = tmp_path / ("o%d%d" % (t_enc, t_dec))
            modelcrypt.decrypt_file(enc, out, KEY32, threads=t_dec)
            results[("file", t_enc, t_dec)] = out.read_bytes()
        b = modelcrypt.encrypt_bytes(data, KEY32, chunk_size=CS, threads=t_enc)
        with modelcrypt.decrypt_bytes(b, KEY32, threads=1) as buf:
            results[("encbytes", t_enc)] = bytes(buf)
    assert len(results) == 14
    assert all(v == data for v in results.values())


def test_threads_same_error_on_tamper():
    """A bad tag in the last chunk is reported the same way with 1 and 2 threads."""
    data = _data(20 * CS, seed=9)
    blob = bytearray(modelcrypt.encrypt_bytes(data, KEY32, chunk_size=CS))
    blob[-1] ^= 1   # last chunk's tag
    for t in (1, 2):
        with pytest.raises(modelcrypt.AuthenticationError):
            modelcrypt.decrypt_bytes(bytes(blob), KEY32, threads=t)


# ------------------------------------------------------------ DecryptedBuffer


def test_decrypted_buffer_protocol():
    data = _data(3 * CS + 17, seed=10)
    buf = modelcrypt.decrypt_bytes(modelcrypt.encrypt_bytes(data, KEY32, chunk_size=CS), KEY32)
    assert buf.closed is False
    assert len(buf) == len(data)
    mv = memoryview(buf)
    assert mv.nbytes == len(data)
    assert mv.tobytes() == data
    mv.release()
    arr = np.frombuffer(buf, dtype=np.uint8)
    assert arr.shape == (len(data),)
    assert arr.tobytes() == data
    del arr
    assert bytes(buf) == data
    buf.close()
    assert buf.closed is True
    with pytest.raises(ValueError):
        bytes(buf)
    with pytest.raises(ValueError):
        memoryview(buf)
    with pytest.raises(ValueError):
        np.frombuffer(buf, dtype=np.uint8)


def test_decrypted_buffer_empty():
    buf = modelcrypt.decrypt_bytes(modelcrypt.encrypt_bytes(b"", KEY32), KEY32)
    assert len(buf) == 0
    assert bytes(buf) == b""
    assert memoryview(buf).nbytes == 0
    buf.close()
    assert buf.closed


def test_decrypted_buffer_context_manager(tmp_path):
    data = _data(CS * 2, seed=11)
    p = tmp_path / "e"
    p.write_bytes(modelcrypt.encrypt_bytes(data, KEY32, chunk_size=CS))
    with modelcrypt.load(p, KEY32) as buf:
        assert not buf.closed
        assert bytes(buf) == data
    assert buf.closed
    with pytest.raises(ValueError):
        bytes(buf)
    # closes on exception too
    with pytest.raises(RuntimeError):
        with modelcrypt.load(p, KEY32) as buf2:
            raise RuntimeError("boom")
    assert buf2.closed


def test_close_with_live_export_does_not_crash(tmp_path):
    """close() while a memoryview is still exported must not leave a dangling
    view: either close() refuses (BufferError) or the view stays readable.
    Run in a subprocess so a use-after-free shows up as a crash, not a hang."""
    import subprocess
    import sys
    code = (
        "import modelcrypt\n"
        "k = bytes(32)\n"
        "data = bytes(range(256)) * 64\n"
        "b = modelcrypt.decrypt_bytes(modelcrypt.encrypt_bytes(data, k), k)\n"
        "mv = memoryview(b)\n"
        "try:\n"
        "    b.close()\n"
        "    outcome = 'closed'\n"
        "except BufferError:\n"
        "    outcome = 'refused'\n"
        "x = bytes(mv)\n"
        "assert len(x) == len(data)\n"
        "if outcome == 'refused':\n"
        "    assert x == data and not b.closed\n"
        "mv.release()\n"
        "b.close()\n"
        "assert b.closed\n"
        "print('OUTCOME', outcome)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "OUTCOME" in proc.stdout


# ------------------------------------------------------------ argument validation


def _all_calls(tmp_path, key, mode="AES-GCM"):
    src = tmp_path / "val_src"
    src.write_bytes(b"x" * 100)
    enc = tmp_path / "val_enc"
    enc.write_bytes(modelcrypt.encrypt_bytes(b"x" * 100, KEY32))
    blob = enc.read_bytes()
    return {
        "encrypt_bytes": lambda: modelcrypt.encrypt_bytes(b"x", key, mode),
        "encrypt_file": lambda: modelcrypt.encrypt_file(src, tmp_path / "val_out1", key, mode),
        "load": lambda: modelcrypt.load(enc, key, mode),
        "decrypt_bytes": lambda: modelcrypt.decrypt_bytes(blob, key, mode),
        "decrypt_file": lambda: modelcrypt.decrypt_file(enc, tmp_path / "val_out2", key, mode),
    }


@pytest.mark.parametrize("key", [12345, "0" * 32, None, [0] * 32, 3.5],
                         ids=["int", "str", "None", "list", "float"])
def test_key_wrong_type(key, tmp_path):
    for name, call in _all_calls(tmp_path, key).items():
        with pytest.raises(TypeError):
            call()
    assert not (tmp_path / "val_out1").exists() and not (tmp_path / "val_out2").exists()


@pytest.mark.parametrize("n", [0, 1, 15, 17, 20, 31, 33, 64])
def test_key_wrong_length(n, tmp_path):
    for name, call in _all_calls(tmp_path, b"k" * n).items():
        with pytest.raises(ValueError):
            call()
    assert not (tmp_path / "val_out1").exists() and not (tmp_path / "val_out2").exists()
    assert _no_temp_files(tmp_path) == []


@pytest.mark.parametrize("mode", ["AES-CBC", "aes-gcm-siv", "ChaCha20-Poly1305", ""])
def test_unknown_mode(mode, tmp_path):
    for name, call in _all_calls(tmp_path, KEY32, mode).items():
        with pytest.raises(ValueError) as ei:
            call()
        assert "AES-GCM" in str(ei.value), (name, str(ei.value))


def test_missing_file(tmp_path):
    missing = tmp_path / "does-not-exist"
    with pytest.raises(FileNotFoundError):
        modelcrypt.load(missing, KEY32)
    with pytest.raises(FileNotFoundError):
        modelcrypt.load(str(missing), KEY32)
    with pytest.raises(FileNotFoundError):
        modelcrypt.encrypt_file(missing, tmp_path / "o", KEY32)
    with pytest.raises(FileNotFoundError):
        modelcrypt.decrypt_file(missing, tmp_path / "o", KEY32)
    with pytest.raises(FileNotFoundError):
        modelcrypt.inspect(missing)
    assert not (tmp_path / "o").exists()
    assert _no_temp_files(tmp_path) == []


def test_pathlike_accepted(tmp_path):
    class MyPath:
        def __init__(self, p):
            self.p = p

        def __fspath__(self):
            return str(self.p)

    data = _data(CS + 3, seed=12)
    src = tmp_path / "s"
    src.write_bytes(data)
    for P in (pathlib.Path, MyPath, str):
        enc, out = tmp_path / ("e_%s" % P.__name__), tmp_path / ("o_%s" % P.__name__)
        modelcrypt.encrypt_file(P(src), P(enc), KEY32, chunk_size=CS)
        assert modelcrypt.is_encrypted(P(enc))
        assert modelcrypt.inspect(P(enc)).plaintext_length == len(data)
        with modelcrypt.load(P(enc), KEY32) as buf:
            assert bytes(buf) == data
        modelcrypt.decrypt_file(P(enc), P(out), KEY32)
        assert out.read_bytes() == data


def test_dst_equals_src(tmp_path):
    data = b"important model" * 100
    src = tmp_path / "m.bin"
    src.write_bytes(data)
    for a, b in ((src, src), (str(src), str(src)), (src, str(src))):
        with pytest.raises(ValueError):
            modelcrypt.encrypt_file(a, b, KEY32)
        assert src.read_bytes() == data
    enc = tmp_path / "m.enc"
    modelcrypt.encrypt_file(src, enc, KEY32)
    enc_bytes = enc.read_bytes()
    for a, b in ((enc, enc), (str(enc), enc)):
        with pytest.raises(ValueError):
            modelcrypt.decrypt_file(a, b, KEY32)
        assert enc.read_bytes() == enc_bytes
    assert _no_temp_files(tmp_path) == []


@pytest.mark.parametrize("cs", [0, 1, 100, 2048, 4095, 4097, 6144, 64 * 1024 * 1024 + 4096,
                                2 ** 32, -4096])
def test_bad_chunk_size(cs, tmp_path):
    with pytest.raises(ValueError):
        modelcrypt.encrypt_bytes(b"data", KEY32, chunk_size=cs)
    src = tmp_path / "s"
    src.write_bytes(b"data")
    with pytest.raises(ValueError):
        modelcrypt.encrypt_file(src, tmp_path / "o", KEY32, chunk_size=cs)
    assert not (tmp_path / "o").exists()
    assert _no_temp_files(tmp_path) == []


@pytest.mark.parametrize("cs", [4096, 8192, 1048576])
def test_good_chunk_sizes(cs):
    data = _data(10000, seed=13)
    blob = modelcrypt.encrypt_bytes(data, KEY32, chunk_size=cs)
    assert struct.unpack_from("<I", blob, 12)[0] == cs
    with modelcrypt.decrypt_bytes(blob, KEY32) as buf:
        assert bytes(buf) == data


# ------------------------------------------------------------ atomicity


def test_decrypt_file_wrong_key_leaves_dst(tmp_path):
    src = tmp_path / "s"
    src.write_bytes(_data(5 * CS, seed=14))
    enc = tmp_path / "e"
    modelcrypt.encrypt_file(src, enc, KEY32, chunk_size=CS)
    dst = tmp_path / "dst"
    old = b"previous content that must survive" * 50
    dst.write_bytes(old)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(modelcrypt.KeyMismatchError):
        modelcrypt.decrypt_file(enc, dst, KEY16)
    assert dst.read_bytes() == old
    assert _no_temp_files(tmp_path) == []
    assert sorted(os.listdir(tmp_path)) == before


def test_decrypt_file_tampered_last_chunk_leaves_dst(tmp_path):
    """Failure discovered only at the last chunk (after earlier chunks were
    decrypted and possibly written to the temp file)."""
    src = tmp_path / "s"
    src.write_bytes(_data(9 * CS + 100, seed=15))
    enc = tmp_path / "e"
    modelcrypt.encrypt_file(src, enc, KEY32, chunk_size=CS)
    raw = bytearray(enc.read_bytes())
    raw[-20] ^= 0x40
    enc.write_bytes(bytes(raw))
    dst = tmp_path / "dst"
    old = b"old" * 1000
    dst.write_bytes(old)
    before = sorted(os.listdir(tmp_path))
    for t in (1, 2):
        with pytest.raises(modelcrypt.AuthenticationError):
            modelcrypt.decrypt_file(enc, dst, KEY32, threads=t)
        assert dst.read_bytes() == old
        assert sorted(os.listdir(tmp_path)) == before
    # and when dst did not exist, it still does not
    new_dst = tmp_path / "never"
    with pytest.raises(modelcrypt.AuthenticationError):
        modelcrypt.decrypt_file(enc, new_dst, KEY32)
    assert not new_dst.exists()
    assert sorted(os.listdir(tmp_path)) == before


def test_encrypt_file_replaces_existing_dst(tmp_path):
    data = _data(3 * CS, seed=16)
    src = tmp_path / "s"
    src.write_bytes(data)
    dst = tmp_path / "d"
    dst.write_bytes(b"junk" * 100000)   # longer than the result: must not leave a tail
    modelcrypt.encrypt_file(src, dst, KEY32, chunk_size=CS)
    assert dst.stat().st_size == _expected_file_len(len(data), CS)
    with modelcrypt.load(dst, KEY32) as buf:
        assert bytes(buf) == data
    # and decrypt_file replaces an existing dst too
    out = tmp_path / "o"
    out.write_bytes(b"z" * 1000000)
    modelcrypt.decrypt_file(dst, out, KEY32)
    assert out.read_bytes() == data
    assert _no_temp_files(tmp_path) == []


def test_encryptions_are_randomized():
    data = _data(2 * CS, seed=17)
    a = modelcrypt.encrypt_bytes(data, KEY32, chunk_size=CS)
    b = modelcrypt.encrypt_bytes(data, KEY32, chunk_size=CS)
    assert a[:32] == b[:32]            # same fixed fields
    assert a[32:64] != b[32:64]        # fresh salt
    assert a[64:96] != b[64:96]        # commitment depends on the salt
    assert a[128:] != b[128:]          # payload keys differ
    # no chunk ciphertext repeats between the two
    for i in range(2):
        off = 128 + i * (CS + 16)
        assert a[off:off + CS] != b[off:off + CS]


# ------------------------------------------------------------ generate_key


def test_generate_key_lengths():
    assert len(modelcrypt.generate_key()) == 32
    for n in (16, 24, 32):
        k = modelcrypt.generate_key(n)
        assert isinstance(k, bytes) and len(k) == n
        k2 = modelcrypt.generate_key(length=n)
        assert len(k2) == n
    for bad in (0, 8, 15, 31, 33, 64):
        with pytest.raises(ValueError):
            modelcrypt.generate_key(bad)


def test_generate_key_randomness():
    keys = [modelcrypt.generate_key(32) for _ in range(1000)]
    assert len(set(keys)) == 1000
    bits = np.unpackbits(np.frombuffer(b"".join(keys), dtype=np.uint8))
    ones = bits.mean()
    # 256000 bits: the standard deviation of the mean is ~0.001
    assert 0.49 < ones < 0.51
    # every byte value shows up in 32000 random bytes
    assert len(set(b"".join(keys))) == 256
    # keys are usable
    blob = modelcrypt.encrypt_bytes(b"abc", keys[0])
    with modelcrypt.decrypt_bytes(blob, keys[0]) as buf:
        assert bytes(buf) == b"abc"
