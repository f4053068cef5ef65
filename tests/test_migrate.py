"""modelcrypt.migrate / `modelcrypt migrate`: legacy files (MindSpore, PaddleX, Paddle cipher) and modelcrypt
files under an old key re-encrypted into format v1, without plaintext ever reaching the disk; and
modelcrypt.paddle_cipher_mode for Paddle cipher config files.

Sources are the real fixtures in tests/interop (made by MindSpore, PaddleX and Paddle themselves) and
files made in memory by the independent writers of tests/legacy_reference.py. Outputs are checked with
modelcrypt.load and with the independent v1 reader of tests/reference_format.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import legacy_reference as R  # noqa: E402
import reference_format as rf  # noqa: E402

import modelcrypt  # noqa: E402
from modelcrypt import migrate, paddle_cipher_mode  # noqa: E402

INTEROP = HERE / "interop"
MS = INTEROP / "mindspore"
PX = INTEROP / "paddle" / "paddlex"
PC = INTEROP / "paddle" / "cipher"
KEY16 = b"0123456789ABCDEF"
PX_KEY = bytes(range(1, 33))
INSECURE = getattr(modelcrypt, "InsecureFormatWarning", UserWarning)
ENV = {k: v for k, v in os.environ.items() if not k.startswith("MODELCRYPT")}
ENV["PYTHONDONTWRITEBYTECODE"] = "1"

# (source, old key, old mode or None for auto-detection, expected plaintext file)
LEGACY = [
    (MS / "b_gcm16.ckpt", KEY16, None, MS / "a_plain.ckpt"),
    (MS / "c_cbc16.ckpt", KEY16, None, MS / "a_plain.ckpt"),
    (MS / "g_sm4cbc16.ckpt", KEY16, None, MS / "a_plain.ckpt"),
    (MS / "d_gcm16.mindir", KEY16, "AES-GCM", MS / "a_plain.mindir"),
    (MS / "c_cbc16.ckpt", KEY16, "AES-CBC", MS / "a_plain.ckpt"),
    (PX / "encrypted.pdmodel", PX_KEY, None, PX / "model.pdmodel"),
    (PX / "encrypted.pdparams", PX_KEY, None, PX / "model.pdiparams"),
    (PX / "encrypted.yml", PX_KEY, "AES-GCM", PX / "model.yml"),
    (PX / "plain.bin.encrypted", PX_KEY, None, PC / "plain.bin"),
    (PC / "default_k256.enc", bytes(range(32)), "paddle:AES_CTR_NoPadding", PC / "plain.bin"),
    (PC / "ctr_k128.enc", bytes(range(0x40, 0x50)), PC / "ctr.conf", PC / "plain.bin"),
    (PC / "cbc_k192.enc", bytes(range(0x80, 0x98)), PC / "cbc.conf", PC / "plain.bin"),
    (PC / "gcm_k256.enc", bytes(range(32)), PC / "gcm.conf", PC / "plain.bin"),
    (PC / "gcm_k256.enc", bytes(range(32)), "paddle:AES_GCM_NoPadding", PC / "plain.bin"),
]


def ids(case):
    return f"{case[0].name}-{case[2].name if isinstance(case[2], Path) else case[2]}"


def mode_of(old_mode):
    return paddle_cipher_mode(old_mode) if isinstance(old_mode, Path) else old_mode


def v1_plaintext(path: Path, key: bytes) -> bytes:
    """The plaintext of a v1 file by two independent readers, which must agree."""
    with modelcrypt.load(path, key) as buf:
        mine = bytes(buf)
    ref, _ = rf.read(path.read_bytes(), key)
    assert ref == mine
    return mine


def no_temp_left(root: Path) -> None:
    leftovers = [p for p in root.rglob("*") if ".mctmp-" in p.name or ".mcold-" in p.name]
    assert not leftovers, leftovers


def quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", INSECURE)
        return func(*args, **kwargs)


# ------------------------------------------------------------------ paddle_cipher_mode


@pytest.mark.parametrize("conf, mode", [
    ("cbc.conf", "paddle:AES_CBC_PKCSPadding"),
    ("ctr.conf", "paddle:AES_CTR_NoPadding"),
    ("gcm.conf", "paddle:AES_GCM_NoPadding"),
])
def test_paddle_cipher_mode_fixture_configs(conf, mode):
    assert paddle_cipher_mode(PC / conf) == mode
    assert paddle_cipher_mode(str(PC / conf)) == mode


def test_paddle_cipher_mode_default():
    assert paddle_cipher_mode() == paddle_cipher_mode(None) == "paddle:AES_CTR_NoPadding"


@pytest.mark.parametrize("text, mode", [
    ("# c\n\ncipher_name : AES_GCM_NoPadding\n\n  iv_size : 96\ntag_size : 120\n",
     "paddle:AES_GCM_NoPadding:iv=96:tag=120"),
    ("cipher_name : AES_GCM_NoPadding\r\niv_size : 128\r\ntag_size : 128\r\n", "paddle:AES_GCM_NoPadding"),
    ("cipher_name :AES_GCM_NoPadding\ntag_size : 96\n", "paddle:AES_GCM_NoPadding:tag=96"),
    ("cipher_name : AES_ECB_PKCSPadding\niv_size : 64\n", "paddle:AES_ECB_PKCSPadding"),  # ECB has no IV
    ("cipher_name : AES_CBC_PKCSPadding\ntag_size : 64\n", "paddle:AES_CBC_PKCSPadding"),  # tag: GCM only
    ("cipher_name : AES_CTR_NoPadding  # trailing comment\nother_key : x\n", "paddle:AES_CTR_NoPadding"),
    ("cipher_name : AES_CTR_NoPadding\ncipher_name : AES_CTR_NoPadding\n", "paddle:AES_CTR_NoPadding"),
])
def test_paddle_cipher_mode_parsing(tmp_path, text, mode):
    conf = tmp_path / "c.conf"
    conf.write_text(text)
    assert paddle_cipher_mode(conf) == mode


@pytest.mark.parametrize("text, needle", [
    ("cipher_name: AES_GCM_NoPadding\n", "line 1"),           # Paddle needs spaces around ':'
    ("cipher_name=AES_GCM_NoPadding\n", "line 1"),
    ("cipher_name :\n", "line 1"),
    ("cipher_name\n", "line 1"),
    ("# x\ncipher_name : AES_GCM\n", "line 2"),
    ("cipher_name : AES_GCM_NoPadding extra\n", "line 1"),
    ("cipher_name : AES_GCM_NoPadding\ncipher_name : AES_CBC_PKCSPadding\n", "line 2"),
    ("cipher_name : AES_GCM_NoPadding\niv_size : 100\n", "line 2"),
    ("cipher_name : AES_GCM_NoPadding\niv_size : 12x\n", "line 2"),
    ("cipher_name : AES_GCM_NoPadding\ntag_size : 136\n", "line 2"),
    ("cipher_name : AES_CBC_PKCSPadding\niv_size : 96\n", "line 2"),
    ("iv_size : 128\n", "cipher_name"),
    ("", "cipher_name"),
])
def test_paddle_cipher_mode_errors(tmp_path, text, needle):
    conf = tmp_path / "c.conf"
    conf.write_text(text)
    with pytest.raises(ValueError, match=needle) as info:
        paddle_cipher_mode(conf)
    assert str(conf) in str(info.value)


def test_paddle_cipher_mode_io_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        paddle_cipher_mode(tmp_path / "missing.conf")
    (tmp_path / "bin.conf").write_bytes(b"\xff\xfe\x00cipher")
    with pytest.raises(ValueError, match="text"):
        paddle_cipher_mode(tmp_path / "bin.conf")


def test_paddle_cipher_mode_is_exported():
    assert modelcrypt.paddle_cipher_mode is paddle_cipher_mode
    assert "paddle_cipher_mode" in modelcrypt.__all__ and "migrate" in modelcrypt.__all__


# ------------------------------------------------------------------ single files


@pytest.mark.parametrize("case", LEGACY, ids=ids)
def test_migrate_legacy_fixture(tmp_path, case):
    src, old_key, old_mode, plain = case
    new_key = modelcrypt.generate_key()
    dst = tmp_path / "out.mcx"
    assert quiet(migrate, src, dst, old_key, new_key, mode_of(old_mode)) == [str(dst)]
    assert modelcrypt.detect_format(dst) == "modelcrypt"
    assert v1_plaintext(dst, new_key) == plain.read_bytes()
    assert os.listdir(tmp_path) == ["out.mcx"]


def test_migrate_warns_for_insecure_sources(tmp_path):
    """migrate detects every format without an opt-in, and warns for each weak one: MindSpore CBC (no
    MAC) and GCM (frames can be dropped / reordered / spliced), PaddleX (one nonce per key), Paddle
    GCM with a tag shorter than 128 bits; not for full-tag Paddle GCM, nor for a v1 source."""
    new_key = modelcrypt.generate_key()
    v1 = tmp_path / "v1.mcx"
    v1.write_bytes(modelcrypt.encrypt_bytes(b"weights" * 100, KEY16))
    short_tag = tmp_path / "gcm96.enc"
    short_tag.write_bytes(R.write_paddle_cipher(b"weights" * 100, bytes(32), "AES_GCM_NoPadding", 128, 96))
    cases = [
        (MS / "c_cbc16.ckpt", KEY16, None, True),
        (MS / "b_gcm16.ckpt", KEY16, None, True),
        (PX / "encrypted.yml", PX_KEY, None, True),
        (short_tag, bytes(32), "paddle:AES_GCM_NoPadding:tag=96", True),
        (PC / "gcm_k256.enc", bytes(range(32)), "paddle:AES_GCM_NoPadding", False),
        (v1, KEY16, None, False),
    ]
    for src, old_key, mode, insecure in cases:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            migrate(src, tmp_path / (src.name + ".out"), old_key, new_key, mode)
        assert any(issubclass(w.category, INSECURE) for w in caught) == insecure, src.name
        assert modelcrypt.detect_format(tmp_path / (src.name + ".out")) == "modelcrypt"


def test_migrated_mindspore_checkpoint_loads_as_arrays(tmp_path):
    import json

    import numpy as np

    new_key = modelcrypt.generate_key()
    quiet(migrate, MS / "g_sm4cbc16.ckpt", tmp_path / "net.ckpt", KEY16, new_key)
    expected = json.loads((MS / "expected.json").read_text())["params"]
    got = modelcrypt.load_checkpoint(tmp_path / "net.ckpt", new_key)
    assert list(got) == list(expected)
    for name, p in expected.items():
        assert got[name].tobytes() == np.array(p["values"], dtype=p["dtype"]).reshape(p["shape"]).tobytes()


def test_key_rotation_keeps_metadata(tmp_path):
    old, new = modelcrypt.generate_key(), modelcrypt.generate_key(16)
    src = tmp_path / "a.mcx"
    src.write_bytes(modelcrypt.encrypt_bytes(b"weights" * 1000, old, metadata={"model": "m1"}))
    migrate(src, tmp_path / "b.mcx", old, new)
    with modelcrypt.load(tmp_path / "b.mcx", new) as buf:
        assert bytes(buf) == b"weights" * 1000 and buf.metadata == {"model": "m1"}
    migrate(src, tmp_path / "c.mcx", old, new, metadata={"migrated": "yes"})
    with modelcrypt.load(tmp_path / "c.mcx", new) as buf:
        assert buf.metadata == {"migrated": "yes"}


def test_custom_cipher_source(tmp_path):
    src = tmp_path / "custom.bin"
    src.write_bytes(bytes(b ^ 0x5A for b in b"custom plaintext"))

    def dec(cipher_file: str, key: bytes) -> bytes:
        with open(cipher_file, "rb") as f:
            return bytes(b ^ 0x5A for b in f.read())

    new_key = modelcrypt.generate_key()
    migrate(src, tmp_path / "out", KEY16, new_key, dec)
    assert v1_plaintext(tmp_path / "out", new_key) == b"custom plaintext"


@pytest.mark.parametrize("src, old_key, mode, error", [
    (MS / "b_gcm16.ckpt", b"X" * 16, None, modelcrypt.AuthenticationError),
    (PX / "encrypted.yml", bytes(32), None, modelcrypt.KeyMismatchError),
    (PC / "gcm_k256.enc", bytes(32), "paddle:AES_GCM_NoPadding", modelcrypt.AuthenticationError),
    (PC / "gcm_k256.enc", bytes(range(32)), None, modelcrypt.FormatError),        # no magic: needs a mode
    (MS / "a_plain.ckpt", KEY16, None, modelcrypt.FormatError),                    # not encrypted
])
def test_migrate_errors_leave_nothing(tmp_path, src, old_key, mode, error):
    with pytest.raises(error) as info:
        quiet(migrate, src, tmp_path / "out", old_key, modelcrypt.generate_key(), mode)
    assert str(src) in str(info.value)
    assert os.listdir(tmp_path) == []


def test_migrate_mode_must_agree(tmp_path):
    with pytest.raises(ValueError, match="AES-CBC"):
        migrate(MS / "c_cbc16.ckpt", tmp_path / "out", KEY16, modelcrypt.generate_key(), "AES-GCM")
    assert os.listdir(tmp_path) == []


def test_migrate_argument_errors(tmp_path):
    key = modelcrypt.generate_key()
    src = MS / "b_gcm16.ckpt"
    with pytest.raises(ValueError):
        migrate(src, tmp_path / "o", KEY16, b"short")
    with pytest.raises(TypeError):
        migrate(src, tmp_path / "o", "0123456789ABCDEF", key)
    with pytest.raises(ValueError):
        migrate(src, tmp_path / "o", KEY16, key, "ROT13")
    with pytest.raises(FileNotFoundError):
        migrate(tmp_path / "missing", tmp_path / "o", KEY16, key)
    (tmp_path / "exists").write_bytes(b"keep")
    with pytest.raises(FileExistsError):
        migrate(src, tmp_path / "exists", KEY16, key)
    assert (tmp_path / "exists").read_bytes() == b"keep"
    migrate(src, tmp_path / "exists", KEY16, key, overwrite=True)
    assert v1_plaintext(tmp_path / "exists", key) == (MS / "a_plain.ckpt").read_bytes()
    with pytest.raises(ValueError, match="source"):
        migrate(tmp_path / "exists", tmp_path / "exists", key, key, overwrite=True)


# ------------------------------------------------------------------ directories


def make_legacy_tree(root: Path, plaintexts: dict[str, bytes]) -> None:
    """A directory of legacy files made by the independent writers, plus a symlink and an empty dir."""
    (root / "ms" / "deep").mkdir(parents=True)
    (root / "px").mkdir()
    (root / "empty").mkdir()
    (root / "ms" / "net.ckpt").write_bytes(R.write_mindspore(plaintexts["ckpt"], KEY16, "AES-GCM"))
    (root / "ms" / "deep" / "net.mindir").write_bytes(R.write_mindspore(plaintexts["mindir"], KEY16, "AES-CBC"))
    (root / "px" / "encrypted.pdmodel").write_bytes(R.write_paddlex(plaintexts["pdmodel"], PX_KEY))
    (root / "px" / "encrypted.pdparams").write_bytes(R.write_paddlex(plaintexts["pdiparams"], PX_KEY))
    (root / "px" / "encrypted.yml").write_bytes(R.write_paddlex(plaintexts["yml"], PX_KEY))
    os.symlink("net.ckpt", root / "ms" / "link.ckpt")


def plaintexts_with(marker: bytes) -> dict[str, bytes]:
    return {name: marker + name.encode() * 50 + marker for name in ("ckpt", "mindir", "pdmodel", "pdiparams", "yml")}


def test_migrate_directory_mixed_keys_per_format(tmp_path):
    # One old key per call: MindSpore files and PaddleX files need separate runs (different keys).
    plain = plaintexts_with(os.urandom(32))
    src = tmp_path / "src"
    src.mkdir()
    make_legacy_tree(src, plain)
    new_key = modelcrypt.generate_key()
    reported = []
    written = quiet(migrate, src / "ms", tmp_path / "ms.v1", KEY16, new_key, report=reported.append)
    assert written == [str(tmp_path / "ms.v1" / "deep" / "net.mindir"), str(tmp_path / "ms.v1" / "net.ckpt")]
    assert reported == ["skipped symlink: link.ckpt"]
    assert v1_plaintext(tmp_path / "ms.v1" / "net.ckpt", new_key) == plain["ckpt"]
    assert v1_plaintext(tmp_path / "ms.v1" / "deep" / "net.mindir", new_key) == plain["mindir"]

    written = quiet(migrate, src / "px", tmp_path / "px.v1", PX_KEY, new_key)
    assert sorted(os.listdir(tmp_path / "px.v1")) == [".modelcrypt-manifest", "model.pdiparams", "model.pdmodel", "model.yml"]
    assert len(written) == 3
    for name, key in (("model.pdmodel", "pdmodel"), ("model.pdiparams", "pdiparams"), ("model.yml", "yml")):
        assert v1_plaintext(tmp_path / "px.v1" / name, new_key) == plain[key]

    quiet(migrate, src / "px", tmp_path / "px.keep", PX_KEY, new_key, keep_names=True)
    assert sorted(os.listdir(tmp_path / "px.keep")) == [".modelcrypt-manifest", "encrypted.pdmodel", "encrypted.pdparams", "encrypted.yml"]
    no_temp_left(tmp_path)


def test_migrate_directory_mirrors_empty_dirs_and_excludes(tmp_path):
    src = tmp_path / "src"
    (src / "empty").mkdir(parents=True)
    (src / "a.ckpt").write_bytes(R.write_mindspore(b"A" * 100, KEY16))
    (src / "README.txt").write_text("plain notes")
    new_key = modelcrypt.generate_key()
    with pytest.raises(modelcrypt.FormatError, match="README.txt"):
        migrate(src, tmp_path / "dst", KEY16, new_key)
    assert sorted(os.listdir(tmp_path)) == ["src"]
    reported = []
    migrate(src, tmp_path / "dst", KEY16, new_key, exclude=["*.txt"], report=reported.append)
    assert sorted(os.listdir(tmp_path / "dst")) == [".modelcrypt-manifest", "a.ckpt", "empty"]
    assert reported == ["excluded: README.txt"]


def test_migrate_directory_paddlex_name_collision(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "encrypted.yml").write_bytes(R.write_paddlex(b"a: 1\n", PX_KEY))
    (src / "model.yml").write_bytes(R.write_paddlex(b"b: 2\n", PX_KEY))
    with pytest.raises(ValueError, match="model.yml"):
        migrate(src, tmp_path / "dst", PX_KEY, modelcrypt.generate_key())
    assert sorted(os.listdir(tmp_path)) == ["src"]
    quiet(migrate, src, tmp_path / "dst", PX_KEY, modelcrypt.generate_key(), keep_names=True)


def test_migrate_directory_failure_leaves_nothing(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.ckpt").write_bytes(R.write_mindspore(b"A" * 100, KEY16))
    (src / "b.ckpt").write_bytes(R.write_mindspore(b"B" * 100, b"another key 16by"))
    with pytest.raises(modelcrypt.AuthenticationError, match="b.ckpt"):
        migrate(src, tmp_path / "dst", KEY16, modelcrypt.generate_key())
    assert sorted(os.listdir(tmp_path)) == ["src"]
    # an existing destination survives a failed overwrite
    (tmp_path / "dst").mkdir()
    (tmp_path / "dst" / "old").write_bytes(b"old")
    with pytest.raises(modelcrypt.AuthenticationError):
        migrate(src, tmp_path / "dst", KEY16, modelcrypt.generate_key(), overwrite=True)
    assert os.listdir(tmp_path / "dst") == ["old"]
    no_temp_left(tmp_path)
    with pytest.raises(ValueError, match="inside"):
        migrate(src, src / "sub", KEY16, modelcrypt.generate_key())


def test_no_plaintext_ever_on_disk(tmp_path, monkeypatch):
    """Every file under tmp_path is checked for the plaintext's marker before and after each output is
    written (while the directory migration is in progress, its temporary tree included) and at the end."""
    marker = os.urandom(32)
    plain = plaintexts_with(marker)
    src = tmp_path / "src"
    src.mkdir()
    make_legacy_tree(src, plain)
    seen_temp = []

    def scan() -> None:
        for p in tmp_path.rglob("*"):
            if ".mctmp-" in str(p):
                seen_temp.append(p.name)
            if p.is_file() and not p.is_symlink():
                assert marker not in p.read_bytes(), f"plaintext on disk: {p}"

    real = modelcrypt._core.encrypt_parts_to_file

    def spy(parts, dst, *args, **kwargs):
        scan()
        real(parts, dst, *args, **kwargs)
        scan()

    monkeypatch.setattr(modelcrypt._core, "encrypt_parts_to_file", spy)
    new_key = modelcrypt.generate_key()
    quiet(migrate, src / "ms", tmp_path / "ms.v1", KEY16, new_key)
    quiet(migrate, src / "px", tmp_path / "px.v1", PX_KEY, new_key)
    (tmp_path / "paddle.enc").write_bytes(R.write_paddle_cipher(plain["yml"], bytes(32), "AES_CBC_PKCSPadding"))
    quiet(migrate, tmp_path / "paddle.enc", tmp_path / "paddle.v1", bytes(32), new_key, "paddle:AES_CBC_PKCSPadding")
    scan()
    assert seen_temp  # the scans did run inside the temporary trees
    no_temp_left(tmp_path)
    monkeypatch.undo()
    assert v1_plaintext(tmp_path / "paddle.v1", new_key) == plain["yml"]


# ------------------------------------------------------------------ the command line


def mc(*args, env=None):
    full = dict(ENV)
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "modelcrypt", *map(str, args)], capture_output=True, text=True,
                          env=full, stdin=subprocess.DEVNULL, timeout=120)


def check(r, code):
    assert r.returncode == code, f"exit {r.returncode} (want {code})\nstdout: {r.stdout}\nstderr: {r.stderr}"
    assert "Traceback" not in r.stderr, r.stderr
    return r


@pytest.fixture
def keys(tmp_path):
    new = tmp_path / "new.key"
    check(mc("keygen", "-o", new, "-q"), 0)
    old = tmp_path / "old.key"
    old.write_text(KEY16.hex() + "\n")
    old.chmod(0o600)
    px = tmp_path / "px.key"
    px.write_bytes((PX / "key.b64").read_bytes())
    px.chmod(0o600)
    return {"new": new, "old": old, "px": px, "new_key": bytes(modelcrypt.read_key_file(new))}


def test_cli_migrate_file(tmp_path, keys):
    r = check(mc("migrate", MS / "c_cbc16.ckpt", "-o", tmp_path / "out.ckpt",
                 "--from-key-file", keys["old"], "--key-file", keys["new"]), 0)
    assert "migrated" in r.stderr and "warning:" in r.stderr  # CBC is insecure: InsecureFormatWarning shown
    assert v1_plaintext(tmp_path / "out.ckpt", keys["new_key"]) == (MS / "a_plain.ckpt").read_bytes()
    check(mc("verify", tmp_path / "out.ckpt", "--key-file", keys["new"]), 0)


def test_cli_migrate_paddlex_directory(tmp_path, keys):
    src = tmp_path / "pxsrc"
    src.mkdir()
    for name in ("encrypted.pdmodel", "encrypted.pdparams", "encrypted.yml"):
        (src / name).write_bytes((PX / name).read_bytes())
    b64 = (PX / "key.b64").read_text().strip()
    r = check(mc("migrate", src, "-o", tmp_path / "pxdst", "--from-key", b64, "--key-file", keys["new"]), 0)
    assert "--from-key puts the key on the command line" in r.stderr
    assert sorted(os.listdir(tmp_path / "pxdst")) == [".modelcrypt-manifest", "model.pdiparams", "model.pdmodel", "model.yml"]
    got = v1_plaintext(tmp_path / "pxdst" / "model.pdiparams", keys["new_key"])
    assert got == (PX / "model.pdiparams").read_bytes()
    check(mc("migrate", src, "-o", tmp_path / "pxkeep", "--from-key-file", keys["px"], "--key-file", keys["new"],
             "--keep-names", "-q"), 0)
    assert sorted(os.listdir(tmp_path / "pxkeep")) == [".modelcrypt-manifest", "encrypted.pdmodel", "encrypted.pdparams", "encrypted.yml"]


def test_cli_migrate_paddle_config(tmp_path, keys):
    raw = tmp_path / "paddle.key"
    raw.write_bytes((PC / "key256.bin").read_bytes())
    raw.chmod(0o600)
    check(mc("migrate", PC / "gcm_k256.enc", "-o", tmp_path / "gcm.v1", "--from-key-file", raw,
             "--from-paddle-config", PC / "gcm.conf", "--key-file", keys["new"]), 0)
    assert v1_plaintext(tmp_path / "gcm.v1", keys["new_key"]) == (PC / "plain.bin").read_bytes()
    check(mc("migrate", PC / "default_k256.enc", "-o", tmp_path / "ctr.v1", "--from-key-file", raw,
             "--from-mode", "paddle:AES_CTR_NoPadding", "--key-file", keys["new"]), 0)
    assert v1_plaintext(tmp_path / "ctr.v1", keys["new_key"]) == (PC / "plain.bin").read_bytes()
    r = check(mc("migrate", PC / "gcm_k256.enc", "-o", tmp_path / "x", "--from-key-file", raw,
                 "--key-file", keys["new"]), 1)  # no magic and no mode
    assert "gcm_k256.enc" in r.stderr


def test_cli_migrate_generates_new_key(tmp_path, keys):
    gen = tmp_path / "gen.key"
    r = check(mc("migrate", MS / "b_gcm16.ckpt", "-o", tmp_path / "out", "--from-key-file", keys["old"],
                 "--new-key-file", gen), 0)
    assert "generated a new key" in r.stderr and (gen.stat().st_mode & 0o777) == 0o600
    assert v1_plaintext(tmp_path / "out", bytes(modelcrypt.read_key_file(gen))) == (MS / "a_plain.ckpt").read_bytes()
    # a failed run removes the key it generated
    gen2 = tmp_path / "gen2.key"
    check(mc("migrate", MS / "b_gcm16.ckpt", "-o", tmp_path / "out2", "--from-key", "00" * 16,
             "--new-key-file", gen2), 1)
    assert not gen2.exists() and not (tmp_path / "out2").exists()


def test_cli_migrate_exit_codes(tmp_path, keys):
    src = MS / "b_gcm16.ckpt"
    out = tmp_path / "out"
    wrong = tmp_path / "wrong.key"
    wrong.write_text("ff" * 16)
    wrong.chmod(0o600)
    r = check(mc("migrate", src, "-o", out, "--from-key-file", wrong, "--key-file", keys["new"]), 1)
    assert [line for line in r.stderr.splitlines() if line.startswith("modelcrypt: error:") and "b_gcm16.ckpt" in line]
    wrong32 = tmp_path / "wrong32.key"
    wrong32.write_text("ff" * 32)
    wrong32.chmod(0o600)
    r = check(mc("migrate", PX / "encrypted.yml", "-o", out, "--from-key-file", wrong32, "--key-file", keys["new"]), 1)
    assert "encrypted.yml" in r.stderr
    r = check(mc("migrate", PX / "encrypted.yml", "-o", out, "--from-key-file", wrong, "--key-file", keys["new"]), 2)
    assert "encrypted.yml" in r.stderr
    r = check(mc("migrate", src, "-o", out, "--key-file", keys["new"]), 2)  # no old key
    assert "--from-key-file" in r.stderr
    check(mc("migrate", src, "-o", out, "--from-key-file", keys["old"]), 2)  # no new key
    check(mc("migrate", src, "-o", out, "--from-key-file", keys["old"], "--from-key", KEY16.hex(),
             "--key-file", keys["new"]), 2)
    check(mc("migrate", src, "-o", out, "--from-key-file", keys["old"], "--key-file", keys["new"],
             "--from-mode", "AES-GCM", "--from-paddle-config", PC / "gcm.conf"), 2)
    check(mc("migrate", src, "-o", out, "--from-key-file", keys["old"], "--key-file", keys["new"],
             "--from-mode", "ROT13"), 2)
    check(mc("migrate", src, "-o", out, "--from-key-file", keys["old"], "--key-file", keys["new"],
             "--from-mode", "AES-CBC"), 2)  # disagrees with the file
    check(mc("migrate", src, "--from-key-file", keys["old"], "--key-file", keys["new"]), 2)  # -o required
    check(mc("migrate", tmp_path / "missing", "-o", out, "--from-key-file", keys["old"], "--key-file", keys["new"]), 3)
    assert not out.exists()
    check(mc("migrate", src, "-o", out, "--from-key-file", keys["old"], "--key-file", keys["new"], "-q"), 0)
    r = check(mc("migrate", src, "-o", out, "--from-key-file", keys["old"], "--key-file", keys["new"]), 2)
    assert "--force" in r.stderr
    check(mc("migrate", src, "-o", out, "--from-key-file", keys["old"], "--key-file", keys["new"], "--force"), 0)
    no_temp_left(tmp_path)
