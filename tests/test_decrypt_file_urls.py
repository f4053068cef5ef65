"""modelcrypt.decrypt_file(URL or file object, local dst, key): the object streamed into dst, installed
atomically once every chunk is authenticated, against a real S3-compatible server (moto's server
mode, tests/s3_server.py) and the Range-capable HTTP server of tests/test_http_source.py, both on
127.0.0.1. A failed or refused decryption leaves no partial file and never destroys an existing dst."""

from __future__ import annotations

import io
import os

import pytest

import modelcrypt
from s3_server import BUCKET, put as _put, s3  # noqa: F401 (a fixture)
from test_http_source import _options as _http_options, http, server  # noqa: F401 (the fixtures)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
CHUNK = 64 * 1024


@pytest.fixture(scope="module")
def plain():
    return os.urandom(37 * CHUNK + 1234)


def _tampered(blob, at):
    b = bytearray(blob)
    b[at] ^= 1
    return bytes(b)


def _no_key_text(message):
    """Neither key appears in a message, in any of the ways a key could be shown."""
    for key in (KEY, OTHER_KEY):
        for text in (key.hex(), key.hex().upper(), repr(key), str(list(key))):
            assert text not in message


def test_round_trip_from_s3(s3, tmp_path, plain):
    client, options = s3
    url = _put(client, "df/model.mcx", modelcrypt.encrypt_bytes(plain, KEY, chunk_size=CHUNK))
    out = tmp_path / "model.bin"
    seen = []
    assert modelcrypt.decrypt_file(url, out, KEY, storage_options=options, progress=seen.append, threads=2) is None
    assert out.read_bytes() == plain
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert seen[-1] == len(plain)
    assert os.listdir(tmp_path) == ["model.bin"]  # no temporary file left
    # an existing destination is replaced (as for a local source), durable=False too
    out.write_bytes(b"old")
    modelcrypt.decrypt_file(url, str(out), KEY, storage_options=options, durable=False)
    assert out.read_bytes() == plain and os.listdir(tmp_path) == ["model.bin"]


def test_round_trip_with_identity_and_signers(s3, tmp_path, plain):
    client, options = s3
    ident = modelcrypt.generate_identity()
    signer = modelcrypt.generate_signing_key()
    blob = modelcrypt.encrypt_bytes(plain, recipients=[ident.recipient], signing_key=signer, chunk_size=CHUNK)
    url = _put(client, "df/signed.mcx", blob)
    out = tmp_path / "signed.bin"
    modelcrypt.decrypt_file(url, out, identity=ident, trusted_signers=[signer.public_key], storage_options=options)
    assert out.read_bytes() == plain
    other = modelcrypt.generate_signing_key()
    with pytest.raises(modelcrypt.SignatureError):
        modelcrypt.decrypt_file(url, tmp_path / "x.bin", identity=ident, trusted_signers=[other.public_key],
                                storage_options=options)
    assert sorted(os.listdir(tmp_path)) == ["signed.bin"]


def test_wrong_key_leaves_no_file_and_keeps_an_existing_one(s3, tmp_path, plain):
    client, options = s3
    url = _put(client, "df/wrongkey.mcx", modelcrypt.encrypt_bytes(plain, KEY, chunk_size=CHUNK))
    with pytest.raises(modelcrypt.KeyMismatchError) as info:
        modelcrypt.decrypt_file(url, tmp_path / "out.bin", OTHER_KEY, storage_options=options)
    assert "df/wrongkey.mcx" in str(info.value)
    _no_key_text(str(info.value))
    assert os.listdir(tmp_path) == []
    existing = tmp_path / "existing.bin"
    existing.write_bytes(b"old contents")
    with pytest.raises(modelcrypt.KeyMismatchError):
        modelcrypt.decrypt_file(url, existing, OTHER_KEY, storage_options=options)
    assert existing.read_bytes() == b"old contents" and os.listdir(tmp_path) == ["existing.bin"]


def test_tampered_object_leaves_no_file_and_keeps_an_existing_one(s3, tmp_path, plain):
    client, options = s3
    blob = modelcrypt.encrypt_bytes(plain, KEY, chunk_size=CHUNK)
    url = _put(client, "df/tampered.mcx", _tampered(blob, len(blob) - 5 * CHUNK))  # a late chunk
    with pytest.raises(modelcrypt.AuthenticationError, match="df/tampered.mcx") as info:
        modelcrypt.decrypt_file(url, tmp_path / "out.bin", KEY, storage_options=options)
    _no_key_text(str(info.value))
    assert os.listdir(tmp_path) == []  # no destination, no temporary file
    existing = tmp_path / "existing.bin"
    existing.write_bytes(b"old contents")
    with pytest.raises(modelcrypt.AuthenticationError):
        modelcrypt.decrypt_file(url, existing, KEY, storage_options=options)
    assert existing.read_bytes() == b"old contents" and os.listdir(tmp_path) == ["existing.bin"]
    truncated = _put(client, "df/short.mcx", blob[:-100])
    with pytest.raises((modelcrypt.AuthenticationError, modelcrypt.FormatError)):
        modelcrypt.decrypt_file(truncated, existing, KEY, storage_options=options)
    assert existing.read_bytes() == b"old contents" and os.listdir(tmp_path) == ["existing.bin"]


def test_missing_object_and_bad_arguments(s3, tmp_path, plain):
    client, options = s3
    url = _put(client, "df/args.mcx", modelcrypt.encrypt_bytes(plain, KEY, chunk_size=CHUNK))
    with pytest.raises(FileNotFoundError, match="missing.mcx"):
        modelcrypt.decrypt_file(f"s3://{BUCKET}/df/missing.mcx", tmp_path / "out.bin", KEY, storage_options=options)
    with pytest.raises(ValueError, match="legacy|modelcrypt"):
        modelcrypt.decrypt_file(url, tmp_path / "out.bin", KEY, format="mindspore", storage_options=options)
    with pytest.raises(ValueError, match="custom dec_mode"):
        modelcrypt.decrypt_file(url, tmp_path / "out.bin", KEY, mode=lambda path, key: b"", storage_options=options)
    with pytest.raises(ValueError, match="dst must be a local path, not a URL"):
        modelcrypt.decrypt_file(url, f"s3://{BUCKET}/df/plain.bin", KEY, storage_options=options)
    with pytest.raises(IsADirectoryError, match="is a directory"):
        modelcrypt.decrypt_file(url, tmp_path, KEY, storage_options=options)
    with pytest.raises(TypeError, match="progress"):
        modelcrypt.decrypt_file(url, tmp_path / "out.bin", KEY, progress=3, storage_options=options)
    with pytest.raises(TypeError, match="durable"):
        modelcrypt.decrypt_file(url, tmp_path / "out.bin", KEY, durable="yes", storage_options=options)
    local = tmp_path / "local.mcx"
    local.write_bytes(modelcrypt.encrypt_bytes(plain, KEY, chunk_size=CHUNK))
    with pytest.raises(ValueError, match="storage_options apply to URLs"):
        modelcrypt.decrypt_file(local, tmp_path / "out.bin", KEY, storage_options=options)
    assert os.listdir(tmp_path) == ["local.mcx"]


def test_round_trip_and_failures_over_http(http, tmp_path, plain):
    blob = modelcrypt.encrypt_bytes(plain, KEY, chunk_size=CHUNK)
    url = http.put("df.mcx", blob)
    out = tmp_path / "out.bin"
    modelcrypt.decrypt_file(url, out, KEY, storage_options=_http_options())
    assert out.read_bytes() == plain
    assert http.sent == len(blob)  # each byte fetched once
    bad = http.put("df-bad.mcx", _tampered(blob, len(blob) // 2))
    with pytest.raises(modelcrypt.AuthenticationError, match="df-bad.mcx"):
        modelcrypt.decrypt_file(bad, out, KEY, storage_options=_http_options())
    with pytest.raises(modelcrypt.KeyMismatchError, match="df.mcx") as info:
        modelcrypt.decrypt_file(url, out, OTHER_KEY, storage_options=_http_options())
    _no_key_text(str(info.value))
    assert out.read_bytes() == plain and os.listdir(tmp_path) == ["out.bin"]


def test_object_changed_during_decryption(http, tmp_path, monkeypatch):
    """The object replaced (another encryption of the same plaintext: same size, another ETag) after
    the first block is written: SourceChangedError naming the URL, the old dst kept, nothing else left."""
    monkeypatch.setattr(modelcrypt._sources, "BLOCK_BYTES", 512 * 1024)
    monkeypatch.setattr(modelcrypt._sources, "AHEAD_BLOCKS", 1)
    monkeypatch.setattr(modelcrypt._url_files, "STEP_BYTES", 256 * 1024)
    big = os.urandom(48 * CHUNK * 4)  # 12 MiB: many blocks, most fetched after the first step
    url = http.put("df-swap.mcx", modelcrypt.encrypt_bytes(big, KEY, chunk_size=CHUNK))
    replacement = modelcrypt.encrypt_bytes(big, KEY, chunk_size=CHUNK)
    out = tmp_path / "out.bin"
    out.write_bytes(b"old contents")

    def replace_once(done):
        if done and "/df-swap.mcx" in http.objects and http.objects["/df-swap.mcx"] != replacement:
            http.put("df-swap.mcx", replacement)

    with pytest.raises(modelcrypt.SourceChangedError, match="df-swap.mcx: the object changed while being read"):
        modelcrypt.decrypt_file(url, out, KEY, progress=replace_once, storage_options=_http_options())
    assert out.read_bytes() == b"old contents" and os.listdir(tmp_path) == ["out.bin"]


def test_file_object_source(tmp_path, plain):
    blob = modelcrypt.encrypt_bytes(plain, KEY, chunk_size=CHUNK)
    out = tmp_path / "out.bin"
    modelcrypt.decrypt_file(io.BytesIO(blob), out, KEY)
    assert out.read_bytes() == plain
    out.write_bytes(b"old contents")
    with pytest.raises(modelcrypt.AuthenticationError):
        modelcrypt.decrypt_file(io.BytesIO(_tampered(blob, len(blob) - 100)), out, KEY)
    with pytest.raises(modelcrypt.KeyMismatchError):
        modelcrypt.decrypt_file(io.BytesIO(blob), out, OTHER_KEY)
    with pytest.raises(ValueError, match="storage_options apply to URLs"):
        modelcrypt.decrypt_file(io.BytesIO(blob), out, KEY, storage_options={"anon": True})
    assert out.read_bytes() == b"old contents" and os.listdir(tmp_path) == ["out.bin"]
