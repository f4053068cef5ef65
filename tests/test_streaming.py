"""Streaming operations: verify(), progress callbacks, and cancellation leaving nothing behind."""

import os

import pytest

import modelcrypt

CHUNK = 4096


@pytest.fixture()
def encrypted(tmp_path):
    key = modelcrypt.generate_key()
    data = os.urandom(40 * (1 << 20) + 123)  # several 16 MiB batches
    src = tmp_path / "model.bin"
    src.write_bytes(data)
    enc = tmp_path / "model.bin.mcx"
    modelcrypt.encrypt_file(src, enc, key)
    return src, enc, key, data


def test_verify_accepts_good_and_rejects_bad(encrypted, tmp_path):
    _, enc, key, _ = encrypted
    before = sorted(os.listdir(tmp_path))
    assert modelcrypt.verify(enc, key) is None
    assert modelcrypt.verify(enc, key, threads=1) is None
    with pytest.raises(modelcrypt.KeyMismatchError):
        modelcrypt.verify(enc, modelcrypt.generate_key())
    blob = bytearray(enc.read_bytes())
    blob[-(20 << 20)] ^= 1  # a byte in the middle of the payload: a later batch
    bad = tmp_path / "bad.mcx"
    bad.write_bytes(bytes(blob))
    with pytest.raises(modelcrypt.AuthenticationError, match="chunk"):
        modelcrypt.verify(bad, key)
    bad.write_bytes(bytes(blob[:-1]))
    with pytest.raises(modelcrypt.AuthenticationError, match="truncated"):
        modelcrypt.verify(bad, key)
    with pytest.raises(modelcrypt.FormatError):
        modelcrypt.verify(tmp_path / "model.bin", key)
    with pytest.raises(FileNotFoundError):
        modelcrypt.verify(tmp_path / "missing.mcx", key)
    bad.unlink()
    assert sorted(os.listdir(tmp_path)) == before


@pytest.mark.parametrize("op", ["encrypt_file", "decrypt_file", "verify"])
def test_progress_reports_bytes_done(encrypted, tmp_path, op):
    src, enc, key, data = encrypted
    seen = []
    if op == "encrypt_file":
        modelcrypt.encrypt_file(src, tmp_path / "again.mcx", key, progress=seen.append)
    elif op == "decrypt_file":
        modelcrypt.decrypt_file(enc, tmp_path / "plain.out", key, progress=seen.append)
    else:
        modelcrypt.verify(enc, key, progress=seen.append)
    assert len(seen) >= 3
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    assert seen[-1] == len(data)


class Stop(Exception):
    pass


@pytest.mark.parametrize("op", ["encrypt_file", "decrypt_file"])
def test_exception_in_progress_cancels_and_cleans_up(encrypted, tmp_path, op):
    src, enc, key, _ = encrypted
    dst = tmp_path / "out"
    dst.write_bytes(b"previous version")  # an existing destination must survive a cancelled run
    calls = []

    def progress(done):
        calls.append(done)
        if len(calls) == 2:
            raise Stop("cancelled by the caller")

    fn = modelcrypt.encrypt_file if op == "encrypt_file" else modelcrypt.decrypt_file
    with pytest.raises(Stop):
        fn(src if op == "encrypt_file" else enc, dst, key, progress=progress)
    assert len(calls) == 2
    assert dst.read_bytes() == b"previous version"
    assert not [n for n in os.listdir(tmp_path) if ".mctmp-" in n]


def test_progress_must_be_callable(encrypted, tmp_path):
    src, _, key, _ = encrypted
    with pytest.raises(TypeError):
        modelcrypt.encrypt_file(src, tmp_path / "x.mcx", key, progress=42)
