"""`-` on the command line (issue 13): `decrypt -o -` streams authenticated plaintext to a pipe (never
to a terminal, never a file named `-`); `-` as an input, and `-o -` for encrypt and migrate, are
clear refusals. Real subprocesses, real pipes and a real pseudo-terminal."""

import os
import pty
import subprocess
import sys

import pytest

import modelcrypt

KEY = bytes(range(32))
ENV = {k: v for k, v in os.environ.items() if not k.startswith("MODELCRYPT")}
CLI = [sys.executable, "-m", "modelcrypt"]


@pytest.fixture
def files(tmp_path):
    plain = tmp_path / "model.bin"
    plain.write_bytes(os.urandom((20 << 20) + 12345))  # three 8 MiB blocks, the last one partial
    enc = tmp_path / "model.bin.mcx"
    modelcrypt.encrypt_file(plain, enc, KEY, chunk_size=1 << 20)
    keyfile = tmp_path / "k.hex"
    modelcrypt.write_key_file(keyfile, KEY)
    return tmp_path, plain, enc, keyfile


def run(*args, cwd, input=None):
    return subprocess.run(CLI + [str(a) for a in args], cwd=cwd, env=ENV, capture_output=True, input=input,
                          timeout=120)


def test_decrypt_to_stdout_pipe(files):
    tmp, plain, enc, keyfile = files
    r = run("decrypt", enc, "-o", "-", "--key-file", keyfile, cwd=tmp)
    assert r.returncode == 0, r.stderr
    assert r.stdout == plain.read_bytes()
    assert not (tmp / "-").exists()


def test_decrypt_to_stdout_stops_at_the_first_bad_chunk(files):
    tmp, plain, enc, keyfile = files
    data = bytearray(enc.read_bytes())
    data[len(data) - 5000] ^= 1  # a byte in the last chunk
    enc.write_bytes(bytes(data))
    r = run("decrypt", enc, "-o", "-", "--key-file", keyfile, cwd=tmp)
    assert r.returncode == 1 and b"authentication failed" in r.stderr
    # only whole authenticated blocks before the bad one were written, and they are authentic
    assert len(r.stdout) % (8 << 20) == 0 and len(r.stdout) < plain.stat().st_size
    assert r.stdout == plain.read_bytes()[:len(r.stdout)]


def test_decrypt_to_stdout_wrong_key_writes_nothing(files):
    tmp, plain, enc, _ = files
    other = tmp / "other.hex"
    modelcrypt.write_key_file(other, bytes(32))
    r = run("decrypt", enc, "-o", "-", "--key-file", other, cwd=tmp)
    assert r.returncode == 1 and r.stdout == b""


def test_decrypt_refuses_plaintext_to_a_terminal(files):
    tmp, plain, enc, keyfile = files
    leader, follower = pty.openpty()
    try:
        p = subprocess.run(CLI + ["decrypt", str(enc), "-o", "-", "--key-file", str(keyfile)], cwd=tmp, env=ENV,
                           stdout=follower, stderr=subprocess.PIPE, timeout=120)
        os.close(follower)
        follower = None
        seen = b""
        try:
            while True:
                chunk = os.read(leader, 1 << 16)
                if not chunk:
                    break
                seen += chunk
        except OSError:  # EIO once the terminal's other end is closed
            pass
    finally:
        if follower is not None:
            os.close(follower)
        os.close(leader)
    assert p.returncode == 2 and b"terminal" in p.stderr
    assert plain.read_bytes()[:64] not in seen and seen == b""


@pytest.mark.parametrize("args, words", [
    (("encrypt", "-", "-o", "x.mcx"), "stdin"),
    (("encrypt", "model.bin", "-o", "-"), "stdout"),
    (("decrypt", "-", "-o", "x"), "stdin"),
    (("migrate", "model.bin.mcx", "-o", "-", "--from-key-file", "k.hex"), "stdout"),
])
def test_dash_is_never_a_file_named_dash(files, args, words):
    tmp, plain, _, keyfile = files
    r = run(*args, "--key-file", keyfile, cwd=tmp, input=plain.read_bytes()[:1000])
    assert r.returncode == 2 and words.encode() in r.stderr and b"./-" in r.stderr
    assert not (tmp / "-").exists() and not (tmp / "x.mcx").exists() and not (tmp / "x").exists()


def test_a_file_named_dash_is_reachable_as_dot_slash(files):
    tmp, plain, _, keyfile = files
    (tmp / "-").write_bytes(b"a file named dash")
    r = run("encrypt", "./-", "-o", "dash.mcx", "--key-file", keyfile, cwd=tmp)
    assert r.returncode == 0, r.stderr
    with modelcrypt.load(tmp / "dash.mcx", KEY) as buf:
        assert bytes(buf) == b"a file named dash"
