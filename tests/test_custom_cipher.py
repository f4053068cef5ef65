"""MindSpore-style custom ciphers: enc(model_stream: bytes, key: bytes) -> bytes and
dec(cipher_file: str, key: bytes) -> bytes are accepted wherever a mode is, and used as given."""

import os

import pytest

import modelcrypt

KEY = b"0123456789ABCDEF"
calls = []


def xor_enc(model_stream, key):
    calls.append(("enc", type(model_stream), type(key)))
    return bytes(b ^ key[i % len(key)] ^ 0x5A for i, b in enumerate(model_stream))


def xor_dec(cipher_file, key):
    calls.append(("dec", type(cipher_file), type(key)))
    with open(cipher_file, "rb") as f:
        data = f.read()
    return bytes(b ^ key[i % len(key)] ^ 0x5A for i, b in enumerate(data))


@pytest.fixture()
def plain(tmp_path):
    calls.clear()
    data = os.urandom(5000)
    p = tmp_path / "model.bin"
    p.write_bytes(data)
    return p, data


def test_file_round_trip_with_callables(plain, tmp_path):
    src, data = plain
    enc = tmp_path / "model.enc"
    modelcrypt.encrypt_file(src, enc, KEY, mode=xor_enc)
    assert enc.read_bytes() == xor_enc(data, KEY)  # exactly the callable's output, nothing added
    assert not modelcrypt.is_encrypted(enc)
    with modelcrypt.load(enc, KEY, mode=xor_dec) as buf:
        assert bytes(buf) == data
    out = tmp_path / "model.out"
    modelcrypt.decrypt_file(enc, out, KEY, mode=xor_dec)
    assert out.read_bytes() == data and (os.stat(out).st_mode & 0o777) == 0o600
    assert modelcrypt.verify(enc, KEY, mode=xor_dec) is None
    assert ("enc", bytes, bytes) in calls and ("dec", str, bytes) in calls
    assert not [n for n in os.listdir(tmp_path) if ".mctmp-" in n]


def test_bytes_api_with_callables(plain):
    _, data = plain
    assert modelcrypt.encrypt_bytes(data, bytearray(KEY), mode=xor_enc) == xor_enc(data, KEY)
    with pytest.raises(TypeError, match="reads a file"):
        modelcrypt.decrypt_bytes(b"x" * 10, KEY, mode=xor_dec)


def test_callable_errors_propagate_and_leave_nothing(plain, tmp_path):
    src, _ = plain
    dst = tmp_path / "out.enc"
    dst.write_bytes(b"previous")

    def broken(model_stream, key):
        raise RuntimeError("cipher exploded")

    with pytest.raises(RuntimeError, match="exploded"):
        modelcrypt.encrypt_file(src, dst, KEY, mode=broken)
    assert dst.read_bytes() == b"previous"
    with pytest.raises(TypeError, match="must return bytes"):
        modelcrypt.encrypt_file(src, dst, KEY, mode=lambda s, k: "not bytes")
    assert dst.read_bytes() == b"previous"
    assert not [n for n in os.listdir(tmp_path) if ".mctmp-" in n]


def test_keys_are_still_validated_and_range_needs_a_real_mode(plain, tmp_path):
    src, _ = plain
    with pytest.raises(ValueError, match="16, 24 or 32"):
        modelcrypt.encrypt_file(src, tmp_path / "x", b"short", mode=xor_enc)
    with pytest.raises(TypeError, match="load_range"):
        modelcrypt.load_range(src, KEY, mode=xor_dec, offset=0, length=1)
    with pytest.raises(TypeError, match="str or a callable"):
        modelcrypt.load(src, KEY, mode=42)
