"""The `modelcrypt` command line (docs/KEYS_AND_CLI.md, "Command line"), run for real: every
command in a subprocess (`python -m modelcrypt`, and the installed `modelcrypt` console script),
on real files and directory trees in tmp_path; exit codes, messages, modes, atomicity, Ctrl-C.

Unreadable files when the suite runs as root: root's CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH
ignore mode 000, so for that test the CLI child drops those two capabilities from its bounding set
(prctl(PR_CAPBSET_DROP) in preexec_fn, before exec): it is still uid 0 and can run the interpreter,
but open() of a mode-000 file then fails with a real EACCES, exactly as for an ordinary user. The
test first proves that with a plain open() in a child started the same way. A second test uses a
directory where a file is expected (--key-file DIR: EISDIR).
"""

import base64
import ctypes
import hashlib
import json
import os
import pathlib
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import warnings

import pytest

import modelcrypt

KEY_WARNING = (
    "warning: --key puts the key on the command line, where other users can see it "
    "(use --key-file or --key-env)"
)
ENV = {k: v for k, v in os.environ.items() if not k.startswith("MODELCRYPT")}
ENV["PYTHONDONTWRITEBYTECODE"] = "1"
MAGIC = b"\x89MCRYPT\n"
INSPECT_FIELDS = [
    "version", "algorithm", "chunk_size", "plaintext_length", "chunk_count", "header_length",
    "file_length", "salt", "key_commitment", "metadata",
]


# ------------------------------------------------------------------ helpers


def mc(*args, env=None, timeout=120, cmd=None, preexec_fn=None, cwd=None):
    """Run the CLI in a subprocess; returns CompletedProcess with text stdout/stderr."""
    full_env = dict(ENV)
    full_env.update(env or {})
    return subprocess.run(
        (cmd or [sys.executable, "-m", "modelcrypt"]) + [str(a) for a in args],
        capture_output=True, text=True, env=full_env, stdin=subprocess.DEVNULL, timeout=timeout,
        preexec_fn=preexec_fn, cwd=cwd,
    )


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r


def error_lines(r):
    return [line for line in r.stderr.splitlines() if line.startswith("modelcrypt: error:")]


def assert_runtime_error(r, code, names):
    """Exit `code`, and exactly one `modelcrypt: error: MESSAGE` line that names the file."""
    assert r.returncode == code, f"exit {r.returncode} (want {code})\nstdout: {r.stdout}\nstderr: {r.stderr}"
    lines = error_lines(r)
    assert len(lines) == 1, r.stderr
    assert os.path.basename(str(names)) in lines[0], lines[0]
    assert "Traceback" not in r.stderr, r.stderr


def assert_usage_error(r, *needles):
    assert r.returncode == 2, f"exit {r.returncode} (want 2)\nstdout: {r.stdout}\nstderr: {r.stderr}"
    assert "error:" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    for n in needles:
        assert n in r.stderr, f"{n!r} not in stderr: {r.stderr}"


def data(n, seed=0):
    out = bytearray()
    h = hashlib.sha256(f"{seed}-{n}".encode()).digest()
    while len(out) < n:
        h = hashlib.sha256(h).digest()
        out += h
    return bytes(out[:n])


def write_key(path, key, mode=0o600, fmt="hex"):
    text = {"hex": key.hex().encode() + b"\n", "base64": base64.b64encode(key) + b"\n", "raw": key}[fmt]
    path.write_bytes(text)
    os.chmod(path, mode)
    return path


def read_key_quietly(path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return modelcrypt.read_key_file(path)


def mode_of(p):
    return stat.S_IMODE(os.stat(p).st_mode)


def snapshot(root):
    """Everything observable about a file or tree: types, bytes, modes, mtimes, link targets."""
    root = pathlib.Path(root)

    def entry(p):
        st = os.lstat(p)
        if stat.S_ISLNK(st.st_mode):
            return ("link", os.readlink(p))
        if stat.S_ISDIR(st.st_mode):
            return ("dir", stat.S_IMODE(st.st_mode), st.st_mtime_ns)
        return ("file", hashlib.sha256(p.read_bytes()).hexdigest(), stat.S_IMODE(st.st_mode), st.st_mtime_ns)

    if not root.is_dir() or root.is_symlink():
        return {".": entry(root)}
    out = {".": entry(root)}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = pathlib.Path(dirpath) / name
            out[str(p.relative_to(root))] = entry(p)
    return out


def content_tree(root):
    """rel path -> bytes for regular files, None for directories; symlinks are left out."""
    root = pathlib.Path(root)
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = pathlib.Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                out[rel] = "SYMLINK"
            elif p.is_dir():
                out[rel] = None
            else:
                out[rel] = p.read_bytes()
    return out


def temp_leftovers(directory):
    return [n for n in os.listdir(directory) if ".mctmp" in n]


def flip(path, offset):
    b = bytearray(path.read_bytes())
    b[offset] ^= 0x01
    path.write_bytes(bytes(b))


@pytest.fixture
def key():
    return bytes(range(200, 232))


@pytest.fixture
def keyfile(tmp_path, key):
    d = tmp_path / "keys"
    d.mkdir()
    return write_key(d / "model.key", key)


@pytest.fixture
def src(tmp_path):
    p = tmp_path / "model.onnx"
    p.write_bytes(data(50_000))
    return p


def encrypted(tmp_path, keyfile, name="m.bin", size=20_000, seed=1, extra=()):
    p = tmp_path / name
    p.write_bytes(data(size, seed))
    ok(mc("encrypt", p, "--key-file", keyfile, "--chunk-size", 4096, *extra))
    return p, pathlib.Path(str(p) + ".mcx")


# ------------------------------------------------------------------ keygen


def test_keygen_default_is_64_hex_digits():
    r1, r2 = ok(mc("keygen")), ok(mc("keygen"))
    for r in (r1, r2):
        assert re.fullmatch(r"[0-9a-fA-F]{64}\n", r.stdout), repr(r.stdout)
        assert len(modelcrypt.key_from_hex(r.stdout)) == 32
    assert r1.stdout != r2.stdout


@pytest.mark.parametrize(
    "args,length,pattern",
    [
        (["--length", "16"], 16, r"[0-9a-fA-F]{32}\n"),
        (["--length", "24"], 24, r"[0-9a-fA-F]{48}\n"),
        (["--length", "32", "--format", "hex"], 32, r"[0-9a-fA-F]{64}\n"),
        (["--format", "base64"], 32, r"[A-Za-z0-9+/]{43}=\n"),
        (["--format", "base64", "--length", "16"], 16, r"[A-Za-z0-9+/]{22}==\n"),
        (["--format", "base64", "--length", "24"], 24, r"[A-Za-z0-9+/]{32}\n"),
    ],
)
def test_keygen_formats_and_lengths(args, length, pattern):
    r = ok(mc("keygen", *args))
    assert re.fullmatch(pattern, r.stdout), repr(r.stdout)
    if "base64" in args:
        k = modelcrypt.key_from_base64(r.stdout)
        assert base64.b64decode(r.stdout.strip(), validate=True) == k
    else:
        k = modelcrypt.key_from_hex(r.stdout)
    assert len(k) == length


@pytest.mark.parametrize("args", [["--length", "20"], ["--length", "64"], ["--format", "pem"], ["--bogus"]])
def test_keygen_bad_options(args):
    r = mc("keygen", *args)
    assert_usage_error(r)
    assert r.stdout == ""


def test_keygen_raw_to_stdout_is_refused():
    r = subprocess.run([sys.executable, "-m", "modelcrypt", "keygen", "--format", "raw"],
                       capture_output=True, env=ENV, stdin=subprocess.DEVNULL, timeout=60)
    assert r.returncode == 2, r
    assert r.stdout == b""                       # not a single key byte on the terminal
    assert b"error:" in r.stderr


@pytest.mark.parametrize("fmt", ["raw", "hex", "base64"])
@pytest.mark.parametrize("length", [16, 24, 32])
def test_keygen_to_file(tmp_path, fmt, length):
    out = tmp_path / f"k.{fmt}"
    # umask 0 in the child: a 0600 file proves keygen sets the mode itself
    r = ok(mc("keygen", "-o", out, "--format", fmt, "--length", length, preexec_fn=lambda: os.umask(0)))
    assert r.stdout == ""
    assert mode_of(out) == 0o600
    k = read_key_quietly(out)
    assert len(k) == length
    content = out.read_bytes()
    if fmt == "raw":
        assert content == k
    else:
        assert content.endswith(b"\n")
    assert temp_leftovers(tmp_path) == []


def test_keygen_default_format_to_file_is_hex(tmp_path):
    out = tmp_path / "k"
    ok(mc("keygen", "-o", out))
    assert re.fullmatch(rb"[0-9a-fA-F]{64}\n", out.read_bytes())


def test_keygen_refuses_overwrite_without_force(tmp_path):
    out = tmp_path / "existing.key"
    out.write_bytes(b"do not lose me\n")
    os.chmod(out, 0o644)
    before = snapshot(out)
    r = mc("keygen", "-o", out)
    assert_usage_error(r, "exists", "--overwrite-key")
    assert str(out.name) in r.stderr
    assert snapshot(out) == before
    r = mc("keygen", "-o", out, "--force")  # --force is about outputs, never about key files
    assert_usage_error(r, "--overwrite-key")
    assert snapshot(out) == before
    r = ok(mc("keygen", "-o", out, "--overwrite-key", "--format", "base64"))
    assert r.stdout == ""
    assert out.read_bytes() != b"do not lose me\n"
    assert mode_of(out) == 0o600
    assert len(read_key_quietly(out)) == 32
    assert temp_leftovers(tmp_path) == []


# ------------------------------------------------------------------ encrypt / decrypt, key sources


def test_encrypt_decrypt_with_key_file(tmp_path, src, keyfile, key):
    before = snapshot(src)
    r = ok(mc("encrypt", src, "--key-file", keyfile))
    assert "warning" not in r.stderr
    dst = pathlib.Path(str(src) + ".mcx")                        # default DST
    assert dst.is_file() and dst.read_bytes()[:8] == MAGIC
    assert modelcrypt.is_encrypted(dst)
    with modelcrypt.load(dst, key) as buf:                       # the library reads what the CLI wrote
        assert bytes(buf) == src.read_bytes()
    out = tmp_path / "restored.onnx"
    ok(mc("decrypt", dst, "-o", out, "--key-file", keyfile))
    assert out.read_bytes() == src.read_bytes()
    assert snapshot(src) == before
    assert temp_leftovers(tmp_path) == []


def test_encrypt_decrypt_with_key_env(tmp_path, src, key):
    env = {"MY_MODEL_KEY": base64.b64encode(key).decode()}
    ok(mc("encrypt", src, "-o", tmp_path / "e.mcx", "--key-env", "MY_MODEL_KEY", env=env))
    with modelcrypt.load(tmp_path / "e.mcx", key) as buf:
        assert bytes(buf) == src.read_bytes()
    r = ok(mc("decrypt", tmp_path / "e.mcx", "-o", tmp_path / "d", "--key-env", "MODELCRYPT_KEY",
              env={"MODELCRYPT_KEY": key.hex()}))
    assert "warning" not in r.stderr
    assert (tmp_path / "d").read_bytes() == src.read_bytes()


def test_key_on_command_line_works_but_warns(tmp_path, src, key):
    r = ok(mc("encrypt", src, "-o", tmp_path / "e.mcx", "--key", key.hex()))
    assert KEY_WARNING in r.stderr.splitlines(), r.stderr
    r = ok(mc("decrypt", tmp_path / "e.mcx", "-o", tmp_path / "d", "--key", base64.b64encode(key).decode(), "--quiet"))
    assert KEY_WARNING in r.stderr.splitlines(), r.stderr            # warnings survive --quiet
    assert (tmp_path / "d").read_bytes() == src.read_bytes()


@pytest.mark.parametrize("fmt", ["hex", "base64", "raw"])
def test_key_file_formats(tmp_path, src, key, fmt):
    kf = write_key(tmp_path / "k", key, fmt=fmt)
    ok(mc("encrypt", src, "-o", tmp_path / "e", "--key-file", kf))
    with modelcrypt.load(tmp_path / "e", key) as buf:
        assert bytes(buf) == src.read_bytes()


def test_insecure_key_file_warns_on_stderr(tmp_path, src, key):
    kf = write_key(tmp_path / "k", key, mode=0o644)
    r = ok(mc("encrypt", src, "--key-file", kf, "--quiet"))
    assert any(line.startswith("warning: ") for line in r.stderr.splitlines()), r.stderr


def test_quiet_success_prints_nothing(tmp_path, src, keyfile):
    r = ok(mc("encrypt", src, "--key-file", keyfile, "--quiet", "--threads", "2"))
    assert r.stdout == "" and r.stderr == ""
    r = ok(mc("decrypt", str(src) + ".mcx", "-o", tmp_path / "d", "--key-file", keyfile, "--quiet", "--threads", "1"))
    assert r.stdout == "" and r.stderr == ""
    assert (tmp_path / "d").read_bytes() == src.read_bytes()


def test_new_key_file(tmp_path, src):
    kdir = tmp_path / "secrets"
    kdir.mkdir()
    nk = kdir / "new.key"
    before = snapshot(src)
    r = ok(mc("encrypt", src, "--new-key-file", nk, preexec_fn=lambda: os.umask(0)))
    assert f"generated a new key: {nk}" in r.stderr, r.stderr
    assert mode_of(nk) == 0o600
    assert re.fullmatch(rb"[0-9a-fA-F]{64}\n", nk.read_bytes())
    k = read_key_quietly(nk)
    assert len(k) == 32
    dst = pathlib.Path(str(src) + ".mcx")
    with modelcrypt.load(dst, k) as buf:
        assert bytes(buf) == src.read_bytes()
    ok(mc("decrypt", dst, "-o", tmp_path / "d", "--key-file", nk))
    assert (tmp_path / "d").read_bytes() == src.read_bytes()
    assert snapshot(src) == before
    assert temp_leftovers(kdir) == [] and temp_leftovers(tmp_path) == []


def test_new_key_file_quiet(tmp_path, src):
    r = ok(mc("encrypt", src, "--new-key-file", tmp_path / "nk", "--quiet"))
    assert "generated a new key" not in r.stderr
    assert len(read_key_quietly(tmp_path / "nk")) == 32


def test_new_key_file_never_replaces_a_key_file(tmp_path, src, keyfile, key):
    nk = tmp_path / "already.key"
    write_key(nk, key)
    before = snapshot(nk)
    dst = pathlib.Path(str(src) + ".mcx")
    r = mc("encrypt", src, "--new-key-file", nk)
    assert_usage_error(r, "exists", "--key-file")
    assert snapshot(nk) == before
    assert not dst.exists()                 # nothing encrypted under a key that was never saved
    # --force is about DST: it never replaces a key file (issue 13: every model under the old key was lost)
    dst.write_bytes(b"an older output")
    for command in (("encrypt", src, "--new-key-file", nk, "--force"),
                    ("migrate", src, "-o", dst, "--from-key-file", keyfile, "--new-key-file", nk, "--force")):
        r = mc(*command)
        assert_usage_error(r, "exists", "never replaces a key file")
        assert snapshot(nk) == before
        assert dst.read_bytes() == b"an older output"
    assert read_key_quietly(nk) == key


def test_encrypt_without_key_source(tmp_path, src):
    listing = sorted(os.listdir(tmp_path))
    r = mc("encrypt", src)
    assert_usage_error(r, "--new-key-file")
    assert sorted(os.listdir(tmp_path)) == listing


@pytest.mark.parametrize(
    "sources",
    [
        ["--key-file", "{kf}", "--key-env", "MODELCRYPT_KEY"],
        ["--key-file", "{kf}", "--key", "{hex}"],
        ["--key-env", "MODELCRYPT_KEY", "--key", "{hex}"],
        ["--key-file", "{kf}", "--new-key-file", "{nk}"],
        ["--key-env", "MODELCRYPT_KEY", "--new-key-file", "{nk}"],
        ["--key", "{hex}", "--new-key-file", "{nk}"],
    ],
)
def test_encrypt_two_key_sources(tmp_path, src, keyfile, key, sources):
    nk = tmp_path / "nk.key"
    args = [s.format(kf=keyfile, hex=key.hex(), nk=nk) for s in sources]
    listing = sorted(os.listdir(tmp_path))
    r = mc("encrypt", src, *args, env={"MODELCRYPT_KEY": key.hex()})
    assert_usage_error(r)
    assert sorted(os.listdir(tmp_path)) == listing     # no DST, no new key file
    # control: either source alone is accepted, so the refusal above was about having two
    for one in (args[:2], args[2:]):
        ok(mc("encrypt", src, "-o", tmp_path / "control.mcx", *one, "--force", env={"MODELCRYPT_KEY": key.hex()}))


def test_decrypt_usage_errors(tmp_path, keyfile, key):
    _, enc = encrypted(tmp_path, keyfile)
    out = tmp_path / "out.bin"
    assert_usage_error(mc("decrypt", enc, "--key-file", keyfile))                 # -o is required
    assert_usage_error(mc("decrypt", enc, "-o", out))                             # key source required
    r = mc("decrypt", enc, "-o", out, "--key-file", keyfile, "--key-env", "MODELCRYPT_KEY",
           env={"MODELCRYPT_KEY": key.hex()})
    assert_usage_error(r)
    r = mc("decrypt", enc, "-o", out, "--key-file", keyfile, "--key", key.hex())
    assert_usage_error(r)
    r = mc("decrypt", enc, "-o", out, "--new-key-file", tmp_path / "nk")           # not a decrypt option
    assert_usage_error(r)
    assert not out.exists() and not (tmp_path / "nk").exists()


@pytest.mark.parametrize(
    "args,env",
    [
        (["--key", "not-a-key"], {}),
        (["--key", "ab" * 20], {}),                                                # 40 hex digits
        (["--key", base64.b64encode(bytes(20)).decode()], {}),                     # 20 bytes
        (["--key-env", "UNSET_MODELCRYPT_TEST_VAR"], {}),
        (["--key-env", "EMPTY_VAR"], {"EMPTY_VAR": ""}),
        (["--key-env", "BAD_VAR"], {"BAD_VAR": "hello"}),
    ],
)
def test_bad_key_text_is_usage_error(tmp_path, src, args, env):
    listing = sorted(os.listdir(tmp_path))
    r = mc("encrypt", src, *args, env=env)
    assert_usage_error(r)
    if "--key-env" in args:
        assert args[1] in r.stderr                      # names the variable
    assert sorted(os.listdir(tmp_path)) == listing


def test_bad_key_file_content_is_usage_error(tmp_path, src):
    kf = tmp_path / "bad.key"
    kf.write_bytes(b"hello world, not a key\n")
    os.chmod(kf, 0o600)
    r = mc("encrypt", src, "--key-file", kf)
    assert_usage_error(r, "bad.key")
    assert not pathlib.Path(str(src) + ".mcx").exists()


@pytest.mark.parametrize(
    "args",
    [["--metadata", "novalue"], ["--chunk-size", "1000"], ["--chunk-size", "lots"], ["--threads", "0"]],
)
def test_bad_encrypt_options(tmp_path, src, keyfile, args):
    r = mc("encrypt", src, "--key-file", keyfile, *args)
    assert_usage_error(r)
    assert not pathlib.Path(str(src) + ".mcx").exists()


def test_metadata_shows_in_inspect_json(tmp_path, src, keyfile, key):
    dst = tmp_path / "with-meta.mcx"
    ok(mc("encrypt", src, "-o", dst, "--key-file", keyfile,
          "--metadata", "model=resnet50", "--metadata", "framework=onnx", "--metadata", "note=a=b"))
    expected = {"model": "resnet50", "framework": "onnx", "note": "a=b"}
    info = json.loads(ok(mc("inspect", dst, "--json")).stdout)
    assert info["metadata"] == expected
    assert modelcrypt.inspect(dst).metadata == expected
    with modelcrypt.load(dst, key) as buf:
        assert buf.metadata == expected


@pytest.mark.parametrize("cs", [4096, 65536, 1048576])
def test_chunk_size_is_honored(tmp_path, src, keyfile, cs):
    dst = tmp_path / "c.mcx"
    ok(mc("encrypt", src, "-o", dst, "--key-file", keyfile, "--chunk-size", cs))
    info = json.loads(ok(mc("inspect", dst, "--json")).stdout)
    assert info["chunk_size"] == cs
    assert info["chunk_count"] == max(1, -(-50_000 // cs))
    assert modelcrypt.inspect(dst).chunk_size == cs


# ------------------------------------------------------------------ failures: exit 1 and 3


def test_wrong_key(tmp_path, keyfile):
    _, enc = encrypted(tmp_path, keyfile)
    other = write_key(tmp_path / "other.key", bytes(32))
    out = tmp_path / "out.bin"
    r = mc("decrypt", enc, "-o", out, "--key-file", other)
    assert_runtime_error(r, 1, enc)
    assert not out.exists()
    assert temp_leftovers(tmp_path) == []


def test_failed_decrypt_keeps_previous_dst(tmp_path, keyfile):
    _, enc = encrypted(tmp_path, keyfile)
    out = tmp_path / "out.bin"
    out.write_bytes(b"previous output")
    r = mc("decrypt", enc, "-o", out, "--key-file", write_key(tmp_path / "o.key", bytes(32)), "--force")
    assert r.returncode == 1
    assert out.read_bytes() == b"previous output"
    assert temp_leftovers(tmp_path) == []


@pytest.mark.parametrize("where", ["body", "last-byte", "header-salt", "truncate", "append"])
def test_tampered_file(tmp_path, keyfile, where):
    _, enc = encrypted(tmp_path, keyfile, size=30_000, extra=("--metadata", "a=b"))
    if where == "body":
        flip(enc, 128 + 3 + 5000)
    elif where == "last-byte":
        flip(enc, enc.stat().st_size - 1)
    elif where == "header-salt":
        flip(enc, 40)
    elif where == "truncate":
        enc.write_bytes(enc.read_bytes()[:-100])
    else:
        enc.write_bytes(enc.read_bytes() + b"\x00" * 16)
    out = tmp_path / "out.bin"
    r = mc("decrypt", enc, "-o", out, "--key-file", keyfile)
    assert_runtime_error(r, 1, enc)
    assert not out.exists()
    assert temp_leftovers(tmp_path) == []


def test_decrypt_not_a_modelcrypt_file(tmp_path, src, keyfile):
    out = tmp_path / "out"
    r = mc("decrypt", src, "-o", out, "--key-file", keyfile)
    assert_runtime_error(r, 1, src)
    assert not out.exists()


@pytest.mark.parametrize("command", ["encrypt", "decrypt", "verify", "inspect"])
def test_missing_src(tmp_path, keyfile, command):
    missing = tmp_path / "no-such-model.bin"
    args = {"encrypt": ["--key-file", keyfile], "decrypt": ["-o", tmp_path / "out", "--key-file", keyfile],
            "verify": ["--key-file", keyfile], "inspect": []}[command]
    listing = sorted(os.listdir(tmp_path))
    r = mc(command, missing, *args)
    if command == "verify":                     # per-file report on stdout, exit code of that file
        assert r.returncode == 3, r.stdout + r.stderr
        assert any(line.startswith(f"FAILED: {missing}: ") for line in r.stdout.splitlines()), r.stdout
    else:
        assert_runtime_error(r, 3, missing)
    assert sorted(os.listdir(tmp_path)) == listing


def test_missing_key_file(tmp_path, src):
    r = mc("encrypt", src, "--key-file", tmp_path / "no-such.key")
    assert_runtime_error(r, 3, "no-such.key")
    assert not pathlib.Path(str(src) + ".mcx").exists()


def test_key_file_that_is_a_directory(tmp_path, src):
    # A directory where a file is expected: reading it fails with EISDIR, an I/O error.
    kdir = tmp_path / "keydir"
    kdir.mkdir()
    r = mc("encrypt", src, "--key-file", kdir)
    assert_runtime_error(r, 3, "keydir")
    assert not pathlib.Path(str(src) + ".mcx").exists()


_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl
PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 24, 1, 2


def _without_dac_override():
    """preexec_fn: as root, lose the capabilities that let root ignore file modes."""
    if os.geteuid() == 0:
        for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
            if _prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_unreadable_src(tmp_path, keyfile):
    plain, enc = encrypted(tmp_path, keyfile)
    os.chmod(plain, 0)
    os.chmod(enc, 0)
    try:
        # the setup really produces EACCES for a process started this way
        probe = subprocess.run([sys.executable, "-c", f"open({str(plain)!r}, 'rb')"], capture_output=True,
                               text=True, preexec_fn=_without_dac_override, env=ENV, timeout=60)
        assert probe.returncode == 1 and "PermissionError" in probe.stderr, probe.stderr
        outdir = tmp_path / "out"
        outdir.mkdir()
        r = mc("encrypt", plain, "-o", outdir / "x.mcx", "--key-file", keyfile, preexec_fn=_without_dac_override)
        assert_runtime_error(r, 3, plain)
        r = mc("decrypt", enc, "-o", outdir / "x", "--key-file", keyfile, preexec_fn=_without_dac_override)
        assert_runtime_error(r, 3, enc)
        r = mc("verify", enc, "--key-file", keyfile, preexec_fn=_without_dac_override)
        assert r.returncode == 3, r.stderr
        r = mc("inspect", enc, preexec_fn=_without_dac_override)
        assert_runtime_error(r, 3, enc)
        assert os.listdir(outdir) == []
    finally:
        os.chmod(plain, 0o600)
        os.chmod(enc, 0o600)


def test_dst_equal_to_src(tmp_path, src, keyfile):
    before = snapshot(src)
    r = mc("encrypt", src, "-o", src, "--key-file", keyfile)
    assert_usage_error(r)
    r = mc("encrypt", src, "-o", src, "--key-file", keyfile, "--force")
    assert_usage_error(r)
    assert snapshot(src) == before


def test_existing_dst_file_needs_force(tmp_path, src, keyfile, key):
    dst = pathlib.Path(str(src) + ".mcx")
    dst.write_bytes(b"old output")
    r = mc("encrypt", src, "--key-file", keyfile)
    assert_usage_error(r, "exists", "--force")
    assert dst.read_bytes() == b"old output"
    ok(mc("encrypt", src, "--key-file", keyfile, "--force"))
    with modelcrypt.load(dst, key) as buf:
        assert bytes(buf) == src.read_bytes()
    out = tmp_path / "plain.out"
    out.write_bytes(b"old plaintext")
    r = mc("decrypt", dst, "-o", out, "--key-file", keyfile)
    assert_usage_error(r, "exists", "--force")
    assert out.read_bytes() == b"old plaintext"
    ok(mc("decrypt", dst, "-o", out, "--key-file", keyfile, "--force"))
    assert out.read_bytes() == src.read_bytes()
    assert temp_leftovers(tmp_path) == []


# ------------------------------------------------------------------ directories


def make_tree(root):
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "sub" / "emptydir").mkdir()
    (root / "emptytop").mkdir()
    (root / "logs").mkdir()
    (root / "model.onnx").write_bytes(data(70_000, 1))
    (root / "empty.bin").write_bytes(b"")
    (root / "config.json").write_bytes(b'{"layers": 3}\n')
    (root / "sub" / "weights.safetensors").write_bytes(data(9_000, 2))
    (root / "sub" / "deeper" / "part-0001.bin").write_bytes(data(5_000, 3))
    (root / "sub" / "deeper" / "part-0002.bin").write_bytes(data(4_096, 4))
    (root / "sub" / "deeper" / "notes.txt").write_bytes(b"keep me\n")
    (root / "sub" / "deeper" / "scratch.tmp").write_bytes(b"excluded by name glob")
    (root / "cache.tmp").write_bytes(b"excluded by name glob too")
    (root / "logs" / "train.log").write_bytes(b"excluded by relative-path glob")
    (root / "logs" / "keep.txt").write_bytes(b"not excluded")
    (root / "sub" / "secret.bin").write_bytes(b"excluded by exact relative path")
    os.symlink("model.onnx", root / "link-to-model")
    os.symlink("deeper", root / "sub" / "dirlink")
    os.symlink("/nonexistent/target", root / "dangling")


EXCLUDES = ["--exclude", "*.tmp", "--exclude", "logs/*.log", "--exclude", "sub/secret.bin"]
EXCLUDED = {"sub/deeper/scratch.tmp", "cache.tmp", "logs/train.log", "sub/secret.bin"}
SYMLINKS = {"link-to-model", "sub/dirlink", "dangling"}


def expected_mirror(root):
    tree = content_tree(root)
    return {k: v for k, v in tree.items() if k not in EXCLUDED and k not in SYMLINKS}


def test_directory_roundtrip(tmp_path, keyfile, key):
    root = tmp_path / "model_dir"
    root.mkdir()
    make_tree(root)
    before = snapshot(root)
    r = ok(mc("encrypt", root, "--key-file", keyfile, *EXCLUDES, "--chunk-size", 4096))
    for rel in SYMLINKS:
        assert f"skipped symlink: {rel}" in r.stderr.splitlines(), r.stderr
    enc = tmp_path / "model_dir.mcx"                               # default DST for a directory
    assert enc.is_dir()
    enc_tree = content_tree(enc)
    want = expected_mirror(root)
    assert ".modelcrypt-manifest" in enc_tree                       # the set's authenticated manifest
    assert set(enc_tree) - {".modelcrypt-manifest"} == set(want)   # same names, same layout
    for rel, content in want.items():
        if content is None:
            assert (enc / rel).is_dir() and not (enc / rel).is_symlink()
        else:
            assert modelcrypt.is_encrypted(enc / rel), rel
            with modelcrypt.load(enc / rel, key) as buf:
                assert bytes(buf) == content, rel
    assert (enc / "emptytop").is_dir() and os.listdir(enc / "emptytop") == []
    assert os.listdir(enc / "sub" / "emptydir") == []
    assert not any(os.path.islink(os.path.join(d, n)) for d, ds, fs in os.walk(enc) for n in ds + fs)
    assert temp_leftovers(tmp_path) == []

    out = tmp_path / "restored"
    ok(mc("decrypt", enc, "-o", out, "--key-file", keyfile))
    assert content_tree(out) == want                               # bytes and relative layout
    assert snapshot(root) == before                                # SRC untouched
    assert temp_leftovers(tmp_path) == []


def test_directory_explicit_dst_and_quiet(tmp_path, keyfile):
    root = tmp_path / "m"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.bin").write_bytes(data(1000))
    os.symlink("a", root / "ln")
    r = ok(mc("encrypt", root, "-o", tmp_path / "elsewhere", "--key-file", keyfile, "--quiet"))
    assert r.stdout == ""
    assert set(content_tree(tmp_path / "elsewhere")) == {"a", "a/x.bin", ".modelcrypt-manifest"}
    assert not (tmp_path / "m.mcx").exists()


@pytest.mark.parametrize("dst", ["model_dir/inner.mcx", "model_dir/sub/x", "model_dir", "model_dir/."])
def test_directory_dst_inside_src(tmp_path, keyfile, dst):
    root = tmp_path / "model_dir"
    root.mkdir()
    make_tree(root)
    before = snapshot(root)
    r = mc("encrypt", root, "-o", tmp_path / dst, "--key-file", keyfile, "--force")
    assert_usage_error(r)
    assert snapshot(root) == before
    assert temp_leftovers(tmp_path) == [] and temp_leftovers(root) == []


def test_directory_existing_dst_needs_force(tmp_path, keyfile, key):
    root = tmp_path / "m"
    root.mkdir()
    (root / "w.bin").write_bytes(data(3000))
    dst = tmp_path / "m.mcx"
    dst.mkdir()
    (dst / "stale.bin").write_bytes(b"from an older run")
    r = mc("encrypt", root, "--key-file", keyfile)
    assert_usage_error(r, "exists", "--force")
    assert content_tree(dst) == {"stale.bin": b"from an older run"}
    ok(mc("encrypt", root, "--key-file", keyfile, "--force"))
    assert set(content_tree(dst)) == {"w.bin", ".modelcrypt-manifest"}  # replaced, not merged
    with modelcrypt.load(dst / "w.bin", key) as buf:
        assert bytes(buf) == data(3000)
    # decrypt side: existing directory DST
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_bytes(b"old")
    r = mc("decrypt", dst, "-o", out, "--key-file", keyfile)
    assert_usage_error(r, "exists", "--force")
    assert content_tree(out) == {"old.txt": b"old"}
    ok(mc("decrypt", dst, "-o", out, "--key-file", keyfile, "--force"))
    assert content_tree(out) == {"w.bin": data(3000)}
    assert temp_leftovers(tmp_path) == []


def test_decrypt_directory_with_a_plain_file(tmp_path, keyfile):
    root = tmp_path / "m"
    (root / "d").mkdir(parents=True)
    (root / "a.bin").write_bytes(data(2000))
    ok(mc("encrypt", root, "-o", tmp_path / "enc", "--key-file", keyfile))
    (tmp_path / "enc" / "d" / "README.txt").write_bytes(b"plain text, not encrypted\n")
    out = tmp_path / "out"
    r = mc("decrypt", tmp_path / "enc", "-o", out, "--key-file", keyfile)
    assert_runtime_error(r, 1, "README.txt")
    assert not out.exists()
    assert temp_leftovers(tmp_path) == []


def test_decrypt_directory_wrong_key_leaves_nothing(tmp_path, keyfile):
    root = tmp_path / "m"
    root.mkdir()
    for i in range(3):
        (root / f"f{i}.bin").write_bytes(data(1000 + i))
    ok(mc("encrypt", root, "-o", tmp_path / "enc", "--key-file", keyfile))
    out = tmp_path / "out"
    r = mc("decrypt", tmp_path / "enc", "-o", out, "--key-file", write_key(tmp_path / "o.key", bytes(16)))
    assert r.returncode == 1, r.stderr
    assert not out.exists()
    assert temp_leftovers(tmp_path) == []


# ------------------------------------------------------------------ verify


def _three_encrypted(tmp_path, keyfile):
    encs = []
    for i in range(3):
        _, enc = encrypted(tmp_path, keyfile, name=f"m{i}.bin", size=10_000 + 999 * i, seed=i)
        encs.append(enc)
    return encs


def test_verify_all_good(tmp_path, keyfile):
    encs = _three_encrypted(tmp_path, keyfile)
    before = snapshot(tmp_path)
    r = ok(mc("verify", *encs, "--key-file", keyfile))
    for e in encs:
        assert f"OK: {e}" in r.stdout.splitlines(), r.stdout
    assert "FAILED" not in r.stdout
    r = ok(mc("verify", *encs, "--key-file", keyfile, "--quiet", "--threads", "1"))
    assert r.stdout == ""
    assert snapshot(tmp_path) == before                            # writes nothing


def test_verify_one_tampered(tmp_path, keyfile):
    encs = _three_encrypted(tmp_path, keyfile)
    flip(encs[1], encs[1].stat().st_size // 2)
    before = snapshot(tmp_path)
    r = mc("verify", *encs, "--key-file", keyfile)
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert f"OK: {encs[0]}" in lines and f"OK: {encs[2]}" in lines, r.stdout
    assert any(line.startswith(f"FAILED: {encs[1]}: ") and len(line) > len(f"FAILED: {encs[1]}: ")
               for line in lines), r.stdout
    assert not any(line.startswith(f"OK: {encs[1]}") for line in lines)
    r = mc("verify", *encs, "--key-file", keyfile, "--quiet")
    assert r.returncode == 1
    assert [line for line in r.stdout.splitlines() if line.strip()] == \
        [line for line in lines if line.startswith("FAILED:")]
    assert snapshot(tmp_path) == before


def test_verify_wrong_key(tmp_path, keyfile):
    encs = _three_encrypted(tmp_path, keyfile)
    r = mc("verify", *encs, "--key-file", write_key(tmp_path / "o.key", bytes(24)))
    assert r.returncode == 1
    assert sum(line.startswith("FAILED: ") for line in r.stdout.splitlines()) == 3, r.stdout


def test_verify_exit_code_is_that_of_first_failure(tmp_path, keyfile, src):
    encs = _three_encrypted(tmp_path, keyfile)
    flip(encs[0], encs[0].stat().st_size - 5)
    missing = tmp_path / "gone.mcx"
    r = mc("verify", missing, encs[0], encs[1], "--key-file", keyfile)
    assert r.returncode == 3, r.stdout + r.stderr
    r = mc("verify", encs[0], missing, encs[1], "--key-file", keyfile)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"OK: {encs[1]}" in r.stdout.splitlines()               # goes on past failures
    r = mc("verify", encs[1], src, "--key-file", keyfile)          # not a modelcrypt file
    assert r.returncode == 1
    assert any(line.startswith(f"FAILED: {src}: ") for line in r.stdout.splitlines()), r.stdout


def test_verify_needs_key_source(tmp_path, keyfile):
    encs = _three_encrypted(tmp_path, keyfile)
    assert_usage_error(mc("verify", *encs))


# ------------------------------------------------------------------ inspect


def _field_value(info, field):
    v = getattr(info, field)
    return v.hex() if isinstance(v, bytes) else v


def test_inspect_text(tmp_path, keyfile):
    _, enc = encrypted(tmp_path, keyfile, size=12_345, extra=("--metadata", "model=tiny", "--metadata", "v=1"))
    r = ok(mc("inspect", enc))                                     # no key source at all
    fields = {}
    for line in r.stdout.splitlines():
        name, sep, value = line.partition(": ")
        if sep:
            fields[name] = value
    info = modelcrypt.inspect(enc)
    assert set(INSPECT_FIELDS) <= set(fields), r.stdout
    for f in INSPECT_FIELDS:
        if f == "metadata":
            assert json.loads(fields[f]) == {"model": "tiny", "v": "1"}
        elif f == "algorithm":
            assert fields[f] == info.algorithm
        elif f in ("salt", "key_commitment"):
            assert fields[f].lower() == getattr(info, f).hex()
        else:
            assert int(fields[f]) == getattr(info, f), f
    assert int(fields["chunk_size"]) == 4096
    assert int(fields["plaintext_length"]) == 12_345
    assert int(fields["file_length"]) == enc.stat().st_size


def test_inspect_json(tmp_path, keyfile):
    _, enc = encrypted(tmp_path, keyfile, size=9_000, extra=("--metadata", "model=tiny"))
    r = ok(mc("inspect", enc, "--json"))
    obj = json.loads(r.stdout)
    assert set(obj) == set(INSPECT_FIELDS) | {"path", "format", "cipher"}
    assert obj["format"] == "modelcrypt"
    info = modelcrypt.inspect(enc)
    for f in INSPECT_FIELDS:
        if f == "metadata":
            assert obj[f] == {"model": "tiny"}
        else:
            assert obj[f] == _field_value(info, f), f
    assert isinstance(obj["salt"], str) and len(obj["salt"]) == 64
    assert obj["path"] == str(enc)
    assert obj["plaintext_length"] == 9_000 and obj["file_length"] == enc.stat().st_size


def test_inspect_empty_metadata_json(tmp_path, keyfile):
    _, enc = encrypted(tmp_path, keyfile, size=0)
    obj = json.loads(ok(mc("inspect", enc, "--json")).stdout)
    assert obj["metadata"] == {} and obj["plaintext_length"] == 0


def test_inspect_not_modelcrypt(tmp_path, src):
    assert_runtime_error(mc("inspect", src), 1, src)
    assert_runtime_error(mc("inspect", src, "--json"), 1, src)
    short = tmp_path / "short"
    short.write_bytes(MAGIC + b"\x01")                            # right magic, truncated header
    assert_runtime_error(mc("inspect", short), 1, short)


# ------------------------------------------------------------------ help, console script


def test_help_lists_exit_codes():
    r = ok(mc("--help"))
    text = r.stdout
    m = re.search(r"exit (codes?|status)", text, re.IGNORECASE)
    assert m, text
    tail = text[m.start():]
    for code in ("0", "1", "2", "3", "130"):
        assert re.search(rf"(?<![\w-]){code}(?![\w-])", tail), f"exit code {code} not in: {tail}"


@pytest.mark.parametrize("command", ["keygen", "encrypt", "decrypt", "verify", "inspect", "config"])
def test_subcommand_help(command):
    r = ok(mc(command, "--help"))
    assert command in r.stdout


def test_no_command_is_usage_error():
    assert mc().returncode == 2


def test_console_script(tmp_path, src):
    exe = shutil.which("modelcrypt")
    assert exe, "the modelcrypt console script is not on PATH"
    kf = tmp_path / "k"
    r = ok(mc("keygen", "-o", kf, "--format", "base64", cmd=[exe]))
    assert mode_of(kf) == 0o600
    ok(mc("encrypt", src, "-o", tmp_path / "e", "--key-file", kf, cmd=[exe]))
    ok(mc("verify", tmp_path / "e", "--key-file", kf, cmd=[exe]))
    ok(mc("decrypt", tmp_path / "e", "-o", tmp_path / "d", "--key-file", kf, cmd=[exe]))
    assert (tmp_path / "d").read_bytes() == src.read_bytes()
    r = mc("decrypt", tmp_path / "e", "-o", tmp_path / "d2", "--key-file", tmp_path / "nope", cmd=[exe])
    assert r.returncode == 3
    assert_runtime_error(r, 3, "nope")


# ------------------------------------------------------------------ Ctrl-C


def _popen(*args):
    return subprocess.Popen([sys.executable, "-m", "modelcrypt", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=ENV, text=True)


def _writing_into(pid, directory):
    """Whether process `pid` has an output file open in `directory`: the unnamed (O_TMPFILE) file the
    writers use on Linux ("DIR/#INODE (deleted)" in /proc) or a named ".NAME.mctmp-" temporary file."""
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith(f"{directory}/") and (".mctmp-" in link or re.match(r".*/#\d+ \(deleted\)$", link)):
            return True
    return False


def _wait_for(pred, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while not pred():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"finished (exit {proc.returncode}) before the condition held: {err}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.communicate()
            pytest.fail("condition never held")
        time.sleep(0.002)


def test_ctrl_c_during_file_encrypt(tmp_path, keyfile):
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(8 * 1024 ** 3)  # sparse: cheap to make, slow to encrypt (seconds even on a fast idle machine)
    outdir = tmp_path / "out"
    outdir.mkdir()
    dst = outdir / "big.bin.mcx"
    p = _popen("encrypt", big, "-o", dst, "--key-file", keyfile, "--threads", "1")
    try:
        _wait_for(lambda: _writing_into(p.pid, outdir), p)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 130, err
    assert "Traceback" not in err, err
    assert os.listdir(outdir) == []                               # no DST, no temporary file
    assert big.stat().st_size == 8 * 1024 ** 3


def test_ctrl_c_during_directory_encrypt(tmp_path, keyfile):
    root = tmp_path / "model_dir"
    root.mkdir()
    for i in range(8):
        with open(root / f"shard-{i:02d}.bin", "wb") as f:
            f.truncate(1024 ** 3)  # sparse; enough that the interrupt lands mid-way under any load
    (root / "config.json").write_bytes(b"{}")
    outdir = tmp_path / "out"
    outdir.mkdir()
    dst = outdir / "model_dir.mcx"

    def some_output_written():
        tmps = [n for n in os.listdir(outdir) if ".mctmp-" in n]
        if not tmps:
            return False
        found = []
        for d, ds, fs in os.walk(outdir / tmps[0]):
            found += fs
        return len(found) >= 1                                   # mid-way: the mirror is being filled

    p = _popen("encrypt", root, "-o", dst, "--key-file", keyfile, "--threads", "1")
    try:
        _wait_for(some_output_written, p)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 130, err
    assert "Traceback" not in err, err
    assert os.listdir(outdir) == []                               # no DST, no temporary directory
