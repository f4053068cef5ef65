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


# --- the file-to-file pipeline (reading and writing overlap the crypto) and durable=

@pytest.mark.parametrize("chunk_size", [4096, 1 << 20, 16 << 20, 64 << 20])
@pytest.mark.parametrize("threads", [1, 2])
def test_pipeline_round_trip_across_batch_shapes(tmp_path, chunk_size, threads):
    # sizes around batch boundaries (16 MiB batches; a 64 MiB chunk is a batch of one)
    key = modelcrypt.generate_key()
    for size in (0, 1, chunk_size - 1, (16 << 20) + 1, 2 * (16 << 20) + chunk_size + 5):
        data = os.urandom(size)
        src, enc, out = tmp_path / "p", tmp_path / "p.mcx", tmp_path / "p.out"
        src.write_bytes(data)
        modelcrypt.encrypt_file(src, enc, key, chunk_size=chunk_size, threads=threads)
        assert bytes(modelcrypt.decrypt_bytes(enc.read_bytes(), key)) == data
        modelcrypt.decrypt_file(enc, out, key, threads=threads)
        assert out.read_bytes() == data
        modelcrypt.verify(enc, key, threads=threads)


def test_decrypt_file_tamper_in_any_batch_leaves_nothing(encrypted, tmp_path):
    _, enc, key, _ = encrypted
    blob = enc.read_bytes()
    dst = tmp_path / "plain.out"
    dst.write_bytes(b"previous version")
    for where in (200, len(blob) // 2, len(blob) - 20):  # first, middle and last batch
        bad = bytearray(blob)
        bad[where] ^= 0x80
        (tmp_path / "bad.mcx").write_bytes(bytes(bad))
        with pytest.raises((modelcrypt.AuthenticationError, modelcrypt.FormatError)):
            modelcrypt.decrypt_file(tmp_path / "bad.mcx", dst, key)
        assert dst.read_bytes() == b"previous version"
        assert not [n for n in os.listdir(tmp_path) if ".mctmp-" in n]


def _fsync_calls(tmp_path, code):
    import shutil
    import subprocess
    import sys
    if shutil.which("strace") is None:
        pytest.fail("strace is needed (.ci/run installs it)")
    log = tmp_path / "strace.log"
    subprocess.run(["strace", "-f", "-qq", "-e", "trace=fsync,fdatasync,sync_file_range", "-o", str(log),
                    sys.executable, "-c", code], check=True)
    return [line for line in log.read_text().splitlines() if "fsync" in line or "sync_file_range" in line]


@pytest.mark.parametrize("op", ["encrypt_file", "decrypt_file"])
def test_durable_flushes_and_durable_false_does_not(encrypted, tmp_path, op):
    src, enc, key, data = encrypted
    (tmp_path / "key.bin").write_bytes(bytes(key))
    inp = src if op == "encrypt_file" else enc
    for durable in (True, False):
        out = tmp_path / f"out-{durable}"
        code = (f"import modelcrypt; k = open({str(tmp_path / 'key.bin')!r}, 'rb').read(); "
                f"modelcrypt.{op}({str(inp)!r}, {str(out)!r}, k, durable={durable})")
        calls = _fsync_calls(tmp_path, code)
        if durable:
            assert any(c.split("(")[0].endswith("fsync") for c in calls), calls
            assert any("sync_file_range" in c for c in calls), calls  # writeback started while writing
        else:
            assert calls == []
        if op == "encrypt_file":
            assert bytes(modelcrypt.decrypt_bytes(out.read_bytes(), key)) == data
        else:
            assert out.read_bytes() == data


def test_durable_must_be_bool(encrypted, tmp_path):
    src, enc, key, _ = encrypted
    with pytest.raises(TypeError, match="durable"):
        modelcrypt.encrypt_file(src, tmp_path / "x.mcx", key, durable=1)
    with pytest.raises(TypeError, match="durable"):
        modelcrypt.decrypt_file(enc, tmp_path / "x.bin", key, durable="no")
    assert not (tmp_path / "x.mcx").exists() and not (tmp_path / "x.bin").exists()


def test_cli_no_fsync(encrypted, tmp_path):
    import subprocess
    import sys
    src, _, key, data = encrypted
    keyfile = tmp_path / "k.key"
    keyfile.write_text(bytes(key).hex())
    os.chmod(keyfile, 0o600)
    enc = tmp_path / "cli.mcx"
    out = tmp_path / "cli.out"
    for args in (["encrypt", str(src), "-o", str(enc)], ["decrypt", str(enc), "-o", str(out)]):
        r = subprocess.run([sys.executable, "-m", "modelcrypt", *args, "--key-file", str(keyfile), "--no-fsync"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    assert out.read_bytes() == data
