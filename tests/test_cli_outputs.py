"""Issue 13, the CLI's rough edges around outputs: `-o DIR/` like cp, already-encrypted input,
duplicate --metadata keys, --chunk-size in the units max_shard_size takes, -q help per command, and
migrate streaming a v1 file in bounded memory with progress and --no-fsync. Real subprocesses."""

import os
import subprocess
import sys

import pytest

import modelcrypt

KEY = bytes(range(32))
ENV = {k: v for k, v in os.environ.items() if not k.startswith("MODELCRYPT")}


def mc(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "modelcrypt", *map(str, args)], capture_output=True, text=True,
                          env=ENV, stdin=subprocess.DEVNULL, timeout=300, cwd=cwd)


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r


@pytest.fixture
def setup(tmp_path):
    src = tmp_path / "model.onnx"
    src.write_bytes(os.urandom(40_000))
    keyfile = tmp_path / "k.hex"
    modelcrypt.write_key_file(keyfile, KEY)
    return tmp_path, src, keyfile


def test_output_into_an_existing_directory_like_cp(setup):
    tmp, src, keyfile = setup
    out = tmp / "shipped"
    out.mkdir()
    for dst in (out, f"{out}/"):
        ok(mc("encrypt", src, "-o", dst, "--key-file", keyfile, "--force"))
        assert modelcrypt.is_encrypted(out / "model.onnx.mcx")
    plain = tmp / "plain"
    plain.mkdir()
    ok(mc("decrypt", out / "model.onnx.mcx", "-o", f"{plain}/", "--key-file", keyfile))
    assert (plain / "model.onnx").read_bytes() == src.read_bytes()
    rotated = tmp / "rotated"
    rotated.mkdir()
    ok(mc("migrate", out / "model.onnx.mcx", "-o", rotated, "--from-key-file", keyfile, "--key-file", keyfile))
    modelcrypt.verify(rotated / "model.onnx.mcx", KEY)
    r = mc("encrypt", src, "-o", f"{tmp}/missing/", "--key-file", keyfile)
    assert r.returncode == 2 and "not an existing directory" in r.stderr and not (tmp / "missing").exists()
    (tmp / "noext.bin").write_bytes(modelcrypt.encrypt_bytes(b"x", KEY))
    r = mc("decrypt", tmp / "noext.bin", "-o", plain, "--key-file", keyfile)
    assert r.returncode == 2 and "DIR/NAME" in r.stderr


def test_already_encrypted_input_needs_force(setup):
    tmp, src, keyfile = setup
    enc = tmp / "model.onnx.mcx"
    ok(mc("encrypt", src, "--key-file", keyfile))
    r = mc("encrypt", enc, "--key-file", keyfile)
    assert r.returncode == 2 and "already a modelcrypt file" in r.stderr and "--force" in r.stderr
    assert not (tmp / "model.onnx.mcx.mcx").exists()
    r = ok(mc("encrypt", enc, "--key-file", keyfile, "--force"))
    assert "warning:" in r.stderr and (tmp / "model.onnx.mcx.mcx").exists()
    # a directory holding an encrypted file (a MindSpore one here): refused before anything is written
    d = tmp / "d"
    d.mkdir()
    (d / "plain.bin").write_bytes(b"p" * 100)
    ms = os.path.join(os.path.dirname(__file__), "interop", "mindspore", "b_gcm16.ckpt")
    (d / "net.ckpt").write_bytes(open(ms, "rb").read())
    r = mc("encrypt", d, "-o", tmp / "d.enc", "--key-file", keyfile)
    assert r.returncode == 2 and "net.ckpt" in r.stderr and "mindspore" in r.stderr and "migrate" in r.stderr
    assert not (tmp / "d.enc").exists()


def test_duplicate_metadata_key_is_an_error(setup):
    tmp, src, keyfile = setup
    r = mc("encrypt", src, "--key-file", keyfile, "--metadata", "model=a", "--metadata", "model=b")
    assert r.returncode == 2 and "model" in r.stderr and "twice" in r.stderr
    assert not (tmp / "model.onnx.mcx").exists()


@pytest.mark.parametrize("text, size", [("4096", 4096), ("256KiB", 256 << 10), ("4MiB", 4 << 20), ("64k", 64 << 10),
                                        ("1m", 1 << 20), ("8192B", 8192), ("2 MiB", 2 << 20)])
def test_chunk_size_units(setup, text, size):
    tmp, src, keyfile = setup
    ok(mc("encrypt", src, "-o", tmp / "c.mcx", "--key-file", keyfile, "--chunk-size", text))
    assert modelcrypt.inspect(tmp / "c.mcx").chunk_size == size


def test_chunk_size_decimal_units_say_what_is_wrong(setup):
    tmp, src, keyfile = setup
    r = mc("encrypt", src, "--key-file", keyfile, "--chunk-size", "1MB")
    assert r.returncode == 2 and "1000000 bytes" in r.stderr and "MiB" in r.stderr
    r = mc("encrypt", src, "--key-file", keyfile, "--chunk-size", "lots")
    assert r.returncode == 2 and "'500MB'" in r.stderr


def test_max_shard_size_and_chunk_size_share_one_parser():
    from modelcrypt._sizes import parse_size

    assert parse_size("2GB", "x") == 2 * 10**9 and parse_size("1GiB", "x") == 1 << 30 and parse_size("64k", "x") == 65536
    with pytest.raises(ValueError, match="max_shard_size"):
        modelcrypt.save_checkpoint({"a": __import__("numpy").zeros(3)}, "/nonexistent/x", KEY, max_shard_size="2 parsecs")


def test_quiet_help_is_right_for_each_command():
    def help_of(command):
        return " ".join(ok(mc(command, "--help")).stdout.split())  # argparse wraps lines

    assert "print only failures" in help_of("verify")
    assert "printed to stdout is still printed" in help_of("keygen")
    for command in ("encrypt", "decrypt", "migrate"):
        assert "no progress bar" in help_of(command)
    assert "--no-fsync" in help_of("migrate")


def test_migrate_of_a_v1_file_streams_in_bounded_memory(tmp_path):
    size = 256 << 20
    src, enc, out = tmp_path / "big.bin", tmp_path / "big.mcx", tmp_path / "big.v2.mcx"
    with open(src, "wb") as f:
        for _ in range(size >> 24):
            f.write(os.urandom(1 << 24))
    modelcrypt.encrypt_file(src, enc, KEY, metadata={"model": "big"})
    old_key, new_key = tmp_path / "old.hex", tmp_path / "new.hex"
    modelcrypt.write_key_file(old_key, KEY)
    new = modelcrypt.generate_key()
    modelcrypt.write_key_file(new_key, new)
    # VmHWM: the peak RSS of this process's own address space (ru_maxrss would also count the
    # parent's, inherited across fork + exec)
    code = ("import re, sys, modelcrypt.cli as c; rc = c.main(sys.argv[1:]); "
            "print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)); sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code, "migrate", str(enc), "-o", str(out), "--from-key-file",
                        str(old_key), "--key-file", str(new_key), "--no-fsync", "-q"],
                       capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 0, r.stderr
    peak = int(r.stdout.split()[-1]) * 1024
    assert peak < size // 2, f"peak RSS {peak >> 20} MiB for a {size >> 20} MiB file"
    assert modelcrypt.inspect(out).metadata == {"model": "big"}
    with modelcrypt.open_encrypted(out, new) as f:
        for offset in (0, size // 2, size - 4096):
            with f.read_range(offset, 4096) as got:
                with open(src, "rb") as g:
                    g.seek(offset)
                    assert bytes(got) == g.read(4096)


def test_migrate_progress_and_tampered_source(tmp_path):
    src = tmp_path / "m.mcx"
    data = os.urandom(5 << 20)
    src.write_bytes(modelcrypt.encrypt_bytes(data, KEY, chunk_size=1 << 20))
    seen = []
    new = modelcrypt.generate_key()
    modelcrypt.migrate(src, tmp_path / "out.mcx", KEY, new, progress=seen.append, durable=False)
    assert seen and seen[-1] == len(data) and seen == sorted(seen)
    with modelcrypt.load(tmp_path / "out.mcx", new) as buf:
        assert bytes(buf) == data
    blob = bytearray(src.read_bytes())
    blob[-100] ^= 1
    src.write_bytes(bytes(blob))
    with pytest.raises(modelcrypt.AuthenticationError, match="m.mcx"):
        modelcrypt.migrate(src, tmp_path / "out2.mcx", KEY, new)
    assert not (tmp_path / "out2.mcx").exists()
    assert sorted(os.listdir(tmp_path)) == ["m.mcx", "out.mcx"]
