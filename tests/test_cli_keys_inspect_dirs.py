"""Issue 13, from a new user's trial: key text in the wrong option is never echoed, `0x` key text
everywhere, warnings for keys that are text, MindSpore's ASCII keys and AES-CBC files from the
CLI, `inspect` of MindSpore and PaddleX files, `decrypt --exclude`, `encrypt --copy-excluded`, and
`--help` pointing to the documentation. Real files (tests/interop: made by MindSpore 2.10 and
PaddleX's own code), real subprocesses."""

import hashlib
import json
import os
import pathlib
import subprocess
import sys
import warnings

import pytest

import modelcrypt

HERE = pathlib.Path(__file__).resolve().parent
MINDSPORE = HERE / "interop" / "mindspore"
PADDLEX = HERE / "interop" / "paddle" / "paddlex"
ENV = {k: v for k, v in os.environ.items() if not k.startswith("MODELCRYPT")}


def mc(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "modelcrypt", *map(str, args)], capture_output=True, text=True,
                          env={**ENV, **(env or {})}, stdin=subprocess.DEVNULL, timeout=120, cwd=cwd)


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r


@pytest.fixture
def key_hex(tmp_path):
    key = modelcrypt.generate_key()
    path = tmp_path / "k.hex"
    modelcrypt.write_key_file(path, key)
    return key, path


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(os.urandom(50_000))
    return path


# ----------------------------------------------------------------------------- key text


def test_key_text_given_as_env_name_or_key_file_is_never_echoed(tmp_path, model, key_hex):
    _, path = key_hex
    text = path.read_text().strip()
    for option in ("--key-env", "--key-file"):
        r = mc("encrypt", model, "-o", tmp_path / "x.mcx", option, text)
        assert r.returncode in (2, 3), r
        out = r.stdout + r.stderr
        assert text not in out and text[:16] not in out, out
        assert "not shown" in out
    r = mc("encrypt", model, "-o", tmp_path / "x.mcx", "--key-env", text)
    assert "NAME of a variable" in r.stderr
    r = mc("migrate", model, "-o", tmp_path / "y.mcx", "--from-key-env", text, "--key-file", path)
    assert r.returncode == 2 and text not in r.stdout + r.stderr
    assert not (tmp_path / "x.mcx").exists() and not (tmp_path / "y.mcx").exists()


def test_0x_prefix_is_accepted_in_key_files_env_and_key_option(tmp_path, model, key_hex):
    key, path = key_hex
    text = path.read_text().strip()
    prefixed = tmp_path / "k0x.hex"
    prefixed.write_text("0x" + text + "\n")
    prefixed.chmod(0o600)
    assert modelcrypt.read_key_file(prefixed) == key
    ok(mc("encrypt", model, "-o", tmp_path / "a.mcx", "--key-file", prefixed))
    ok(mc("verify", tmp_path / "a.mcx", "--key-file", path))  # the same key as without the prefix
    ok(mc("verify", tmp_path / "a.mcx", "--key-env", "K", env={"K": "0X" + text.upper()}))
    r = ok(mc("verify", tmp_path / "a.mcx", "--key", "0x" + text))
    assert text not in r.stdout + r.stderr
    with pytest.raises(ValueError):  # 0x alone, or 0x before base64, is no key
        modelcrypt.keys._key_from_text(b"0x", "k", allow_raw=False)


def test_key_that_is_hex_text_warns_and_still_works(tmp_path, model, key_hex):
    _, path = key_hex
    text_key = path.read_bytes()[:32]  # open("k.hex","rb").read() of a 16-byte hex key: 32 ASCII bytes
    with pytest.warns(modelcrypt.KeyTextWarning, match="hex text") as record:
        blob = modelcrypt.encrypt_bytes(b"weights", text_key)
    assert all(text_key.decode() not in str(w.message) for w in record)
    with pytest.warns(modelcrypt.KeyTextWarning):
        with modelcrypt.decrypt_bytes(blob, text_key) as buf:
            assert bytes(buf) == b"weights"
    with pytest.warns(modelcrypt.KeyTextWarning, match="password"):
        modelcrypt.encrypt_bytes(b"w", b"correct horse battery staple!!!!")


def test_mindspore_ascii_key_works_with_a_warning():
    with pytest.warns(modelcrypt.KeyTextWarning):
        with modelcrypt.load(MINDSPORE / "b_gcm16.ckpt", b"0123456789ABCDEF", format="mindspore") as buf:
            assert len(buf) > 0


def test_random_keys_never_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for n in (16, 24, 32):
            for _ in range(2000):
                modelcrypt.encrypt_bytes(b"", os.urandom(n), chunk_size=4096)


# ------------------------------------------------------- MindSpore files from the CLI


@pytest.fixture
def mindspore_key_file(tmp_path):
    path = tmp_path / "ms.key"
    path.write_bytes(b"0123456789ABCDEF")  # the key MindSpore was given, as its exact bytes
    path.chmod(0o600)
    return path


def test_mindspore_ascii_key_file_is_a_raw_key(mindspore_key_file):
    with pytest.warns(modelcrypt.KeyTextWarning, match="MindSpore-style"):
        assert modelcrypt.read_key_file(mindspore_key_file) == b"0123456789ABCDEF"


def test_decrypt_and_verify_mindspore_cbc_with_the_opt_in(tmp_path, mindspore_key_file):
    src = MINDSPORE / "c_cbc16.ckpt"
    r = mc("decrypt", src, "-o", tmp_path / "plain.ckpt", "--key-file", mindspore_key_file)
    assert r.returncode == 1 and "--mode AES-CBC" in r.stderr and not (tmp_path / "plain.ckpt").exists()
    r = mc("decrypt", src, "-o", tmp_path / "plain.ckpt", "--key-file", mindspore_key_file, "--format", "mindspore")
    assert r.returncode == 2 and "--mode AES-CBC" in r.stderr
    r = ok(mc("decrypt", src, "-o", tmp_path / "plain.ckpt", "--key-file", mindspore_key_file,
              "--format", "mindspore", "--mode", "AES-CBC"))
    assert "not authenticated" in r.stderr and "raw key that is printable text" in r.stderr
    assert r.stderr.count("warning: ") == 2, r.stderr  # the key file's warning once, the CBC warning once
    expected = json.loads((MINDSPORE / "expected.json").read_text())["params"]
    state = modelcrypt.load_checkpoint(tmp_path / "plain.ckpt")
    for name, info in expected.items():
        assert state[name].ravel().tolist() == pytest.approx(info["values"], abs=0)
    r = ok(mc("verify", src, "--key-file", mindspore_key_file, "--mode", "AES-CBC"))
    assert r.stdout.strip() == f"OK: {src}"


# ------------------------------------------------------------------------ inspect


@pytest.mark.parametrize("path, fmt, cipher", [
    (MINDSPORE / "b_gcm16.ckpt", "mindspore", "AES-GCM"),
    (MINDSPORE / "c_cbc16.ckpt", "mindspore", "AES-CBC"),
    (MINDSPORE / "g_sm4cbc16.ckpt", "mindspore", "SM4-CBC"),
    (MINDSPORE / "d_gcm16.mindir", "mindspore", "AES-GCM"),
    (PADDLEX / "encrypted.pdmodel", "paddlex", "AES-256-GCM"),
])
def test_inspect_legacy_files(path, fmt, cipher):
    r = ok(mc("inspect", path))
    assert "Traceback" not in r.stderr
    fields = dict(line.split(": ", 1) for line in r.stdout.splitlines())
    assert fields["format"] == fmt and fields["cipher"] == cipher
    assert int(fields["file_length"]) == path.stat().st_size and int(fields["frames"]) >= 1
    assert "not authenticated" in r.stderr
    obj = json.loads(ok(mc("inspect", path, "--json")).stdout)
    assert obj["format"] == fmt and obj["path"] == str(path) and "salt" not in obj
    info = modelcrypt.inspect(path)
    assert obj.get("plaintext_length") == info.plaintext_length


def test_inspect_of_a_file_without_a_header_says_what_inspect_reads(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(os.urandom(300))
    r = mc("inspect", junk)
    assert r.returncode == 1 and "Paddle cipher files have no header" in r.stderr and "Traceback" not in r.stderr


# ------------------------------------------------------------------ directories


@pytest.fixture
def tree(tmp_path):
    src = tmp_path / "model"
    (src / "sub").mkdir(parents=True)
    (src / "weights.bin").write_bytes(os.urandom(70_000))
    (src / "README.md").write_text("how to use this model\n")
    (src / "sub" / "config.json").write_text('{"layers": 2}\n')
    return src


def test_copy_excluded_round_trip_and_checks(tmp_path, tree, key_hex):
    _, key = key_hex
    enc = tmp_path / "model.enc"
    r = ok(mc("encrypt", tree, "-o", enc, "--key-file", key, "--exclude", "*.md", "--copy-excluded"))
    assert "copied as plaintext: README.md" in r.stderr
    assert (enc / "README.md").read_bytes() == (tree / "README.md").read_bytes()
    assert modelcrypt.is_encrypted(enc / "weights.bin") and not modelcrypt.is_encrypted(enc / "README.md")
    ok(mc("verify", enc, "--key-file", key))
    out = tmp_path / "out"
    ok(mc("decrypt", enc, "-o", out, "--key-file", key))
    for rel in ("weights.bin", "README.md", "sub/config.json"):
        assert (out / rel).read_bytes() == (tree / rel).read_bytes()
    # Python API: the same directory checks
    assert sorted(modelcrypt.verify_directory(enc, modelcrypt.read_key_file(key))) == \
        ["README.md", "sub/config.json", "weights.bin"]
    # a modified copy, a removed copy: the directory no longer verifies, decrypt writes nothing
    (enc / "README.md").write_text("how to use this model, edited\n")
    r = mc("verify", enc, "--key-file", key)
    assert r.returncode == 1 and "README.md" in r.stdout and "modified" in r.stdout
    r = mc("decrypt", enc, "-o", tmp_path / "out2", "--key-file", key)
    assert r.returncode == 1 and not (tmp_path / "out2").exists()
    (enc / "README.md").unlink()
    r = mc("verify", enc, "--key-file", key)
    assert r.returncode == 1 and "missing" in r.stdout


def test_exclude_without_copy_drops_and_manifest_has_no_copies(tmp_path, tree, key_hex):
    _, key = key_hex
    enc = tmp_path / "model.enc"
    ok(mc("encrypt", tree, "-o", enc, "--key-file", key, "--exclude", "*.md"))
    assert not (enc / "README.md").exists()
    (enc / "README.md").write_text("added later\n")  # a plaintext file slipped in is not a copy
    r = mc("verify", enc, "--key-file", key)
    assert r.returncode == 1 and "README.md" in r.stdout


def test_decrypt_exclude(tmp_path, tree, key_hex):
    _, key = key_hex
    enc, out = tmp_path / "model.enc", tmp_path / "out"
    ok(mc("encrypt", tree, "-o", enc, "--key-file", key))
    r = ok(mc("decrypt", enc, "-o", out, "--key-file", key, "--exclude", "sub/*", "--exclude", "*.md"))
    assert "excluded: sub/config.json" in r.stderr
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["weights.bin"]
    assert (out / "weights.bin").read_bytes() == (tree / "weights.bin").read_bytes()
    # the whole directory is still checked: a foreign file in an excluded place is refused
    (enc / "sub" / "extra.bin").write_bytes(b"x" * 100)
    r = mc("decrypt", enc, "-o", tmp_path / "out2", "--key-file", key, "--exclude", "sub/*")
    assert r.returncode == 1 and "extra.bin" in r.stderr and not (tmp_path / "out2").exists()
    r = mc("decrypt", enc / "weights.bin", "-o", tmp_path / "w", "--key-file", key, "--exclude", "x")
    assert r.returncode == 2 and "directory" in r.stderr


def test_decrypt_directory_python_exclude(tmp_path, tree, key_hex):
    key, _ = key_hex
    enc = tmp_path / "model.enc"
    modelcrypt.encrypt_directory(tree, enc, key, exclude=["*.md"], copy_excluded=True)
    written = modelcrypt.decrypt_directory(enc, tmp_path / "out", key, exclude=["*.json"])
    assert sorted(written) == ["README.md", "weights.bin"]
    assert hashlib.sha256((tmp_path / "out" / "README.md").read_bytes()).digest() == \
        hashlib.sha256((tree / "README.md").read_bytes()).digest()
    with pytest.raises(TypeError):
        modelcrypt.encrypt_directory(tree, tmp_path / "e2", key, copy_excluded="yes")


# ------------------------------------------------------------------------- help


def test_help_points_to_documentation_that_exists():
    r = ok(mc("--help"))
    line = next(l for l in r.stdout.splitlines() if l.startswith("documentation: "))
    path = line.split()[1]
    assert os.path.isfile(path) and path.endswith("KEYS_AND_CLI.md"), line
