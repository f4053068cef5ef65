"""Publisher signatures (format v3, issue 15) on the command line, through real subprocesses:
keygen --signing, encrypt --sign / --sign-env (files and directories), verify --trust (keyless and
with a key), decrypt --trust, inspect's signer line; exit code 1 with FAILED for tampered,
untrusted and unsigned files; the private key never in any output but keygen's own stdout.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signature_layout import flipped, layout, resigned

SECRET_PREFIX = "MODELCRYPT-SIGNING-KEY-1"


def mc(*args, env=None):
    return subprocess.run([sys.executable, "-m", "modelcrypt", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "SKBUILD_EDITABLE_VERBOSE": "0", **(env or {})}, timeout=300)


def ok(r):
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def secret_of(key_file) -> str:
    lines = [line for line in open(key_file).read().splitlines() if line and not line.startswith("#")]
    assert len(lines) == 1 and lines[0].startswith(SECRET_PREFIX)
    return lines[0]


def no_secret(r, secret):
    text = r.stdout + r.stderr
    assert secret not in text and secret.lower() not in text and secret[24:] not in text.upper()


@pytest.fixture()
def publisher(tmp_path):
    """(signing key file, its public key text, its secret text)"""
    path = tmp_path / "publisher.sign"
    r = ok(mc("keygen", "--signing", "-o", path))
    public = r.stdout.strip()
    assert public.startswith("modelcrypt-signer1") and len(public.splitlines()) == 1
    secret = secret_of(path)
    no_secret(r, secret)
    return path, public, secret


@pytest.fixture()
def model(tmp_path):
    src = tmp_path / "model.onnx"
    src.write_bytes(os.urandom(5 * 4096 + 77))
    ok(mc("keygen", "-o", tmp_path / "k.key"))
    return src, tmp_path / "k.key"


def test_keygen_signing(tmp_path, publisher):
    path, public, secret = publisher
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert public in path.read_text()
    before = path.read_bytes()
    r = mc("keygen", "--signing", "-o", path)
    assert r.returncode == 2 and "exists" in r.stderr and path.read_bytes() == before
    no_secret(r, secret)
    r = ok(mc("keygen", "--signing", "-o", path, "--overwrite-key"))
    assert r.stdout.strip() != public and secret_of(path) != secret
    assert os.stat(path).st_mode & 0o777 == 0o600
    r = mc("keygen", "--signing", "--x25519", "-o", tmp_path / "both")
    assert r.returncode == 2 and not (tmp_path / "both").exists()


def test_keygen_signing_to_stdout(tmp_path):
    r = ok(mc("keygen", "--signing"))
    lines = r.stdout.splitlines()
    assert lines[-1].startswith(SECRET_PREFIX) and "public key: modelcrypt-signer1" in lines[0]
    assert SECRET_PREFIX not in r.stderr and "modelcrypt-signer1" in r.stderr  # the secret only on stdout
    (tmp_path / "k.sign").write_text(r.stdout)
    (tmp_path / "k.sign").chmod(0o600)
    import modelcrypt

    assert modelcrypt.read_signing_key_file(tmp_path / "k.sign").public_key in lines[0]


def test_sign_verify_decrypt(tmp_path, publisher, model):
    key_file, public, secret = publisher
    src, k = model
    enc = tmp_path / "m.mcx"
    no_secret(ok(mc("encrypt", src, "-o", enc, "--key-file", k, "--sign", key_file, "--chunk-size", "4096")), secret)
    r = ok(mc("verify", enc, "--trust", public))  # keyless: the ciphertext against the signature
    assert f"OK: {enc}" in r.stdout and public in r.stdout and "not decrypted" in r.stdout
    r = ok(mc("verify", enc, "--key-file", k, "--trust", public))
    assert "OK" in r.stdout and "trusted publisher" in r.stdout
    ok(mc("verify", enc, "--key-file", k))  # without --trust, as before
    ok(mc("decrypt", enc, "-o", tmp_path / "out.onnx", "--key-file", k, "--trust", public))
    assert (tmp_path / "out.onnx").read_bytes() == src.read_bytes()
    r = ok(mc("inspect", enc))
    assert f"signer: {public}" in r.stdout and "version: 3" in r.stdout
    assert "what the file claims" in r.stderr
    import json

    assert json.loads(ok(mc("inspect", enc, "--json")).stdout)["signer"] == public
    unsigned = tmp_path / "u.mcx"
    ok(mc("encrypt", src, "-o", unsigned, "--key-file", k))
    assert "signer" not in ok(mc("inspect", unsigned)).stdout


def test_trust_files(tmp_path, publisher, model):
    key_file, public, _ = publisher
    src, k = model
    enc = tmp_path / "m.mcx"
    ok(mc("encrypt", src, "-o", enc, "--key-file", k, "--sign", key_file))
    other = ok(mc("keygen", "--signing", "-o", tmp_path / "other.sign")).stdout.strip()
    listing = tmp_path / "trusted.txt"
    listing.write_text(f"# publishers we accept\n{other}\n\n{public}\n")
    ok(mc("verify", enc, "--trust", listing))
    ok(mc("decrypt", enc, "-o", tmp_path / "out", "--key-file", k, "--trust", listing))
    assert (tmp_path / "out").read_bytes() == src.read_bytes()
    only_other = tmp_path / "other.txt"
    only_other.write_text(other + "\n")
    r = mc("verify", enc, "--trust", only_other)
    assert r.returncode == 1 and "FAILED" in r.stdout and "untrusted" in r.stdout
    ok(mc("verify", enc, "--trust", only_other, "--trust", public))  # --trust repeats


def test_pem_keys_from_cryptography(tmp_path, model):
    src, k = model
    private = Ed25519PrivateKey.generate()
    (tmp_path / "pub.pem").write_bytes(private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    (tmp_path / "priv.pem").write_bytes(private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (tmp_path / "priv.pem").chmod(0o600)
    enc = tmp_path / "m.mcx"
    ok(mc("encrypt", src, "-o", enc, "--key-file", k, "--sign", tmp_path / "priv.pem"))
    ok(mc("verify", enc, "--trust", tmp_path / "pub.pem"))
    ok(mc("verify", enc, "--key-file", k, "--trust", tmp_path / "pub.pem"))
    other = Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "other.pem").write_bytes(other)
    r = mc("verify", enc, "--trust", tmp_path / "other.pem")
    assert r.returncode == 1 and "untrusted" in r.stdout


def test_sign_env(tmp_path, publisher, model):
    _, public, secret = publisher
    src, k = model
    enc = tmp_path / "m.mcx"
    r = ok(mc("encrypt", src, "-o", enc, "--key-file", k, "--sign-env", "PUBLISHER_KEY", env={"PUBLISHER_KEY": secret}))
    no_secret(r, secret)
    ok(mc("verify", enc, "--trust", public))
    r = mc("encrypt", src, "-o", tmp_path / "n.mcx", "--key-file", k, "--sign-env", "UNSET_SIGNING_KEY_VAR")
    assert r.returncode == 2 and "not set" in r.stderr and not (tmp_path / "n.mcx").exists()
    r = mc("encrypt", src, "-o", tmp_path / "n.mcx", "--key-file", k, "--sign-env", "PUBLISHER_KEY",
           "--sign", tmp_path / "publisher.sign", env={"PUBLISHER_KEY": secret})
    assert r.returncode == 2 and not (tmp_path / "n.mcx").exists()
    broken = secret[:-1] + ("Q" if secret[-1] != "Q" else "P")
    r = mc("encrypt", src, "-o", tmp_path / "n.mcx", "--key-file", k, "--sign-env", "PUBLISHER_KEY",
           env={"PUBLISHER_KEY": broken})
    assert r.returncode == 2 and "checksum" in r.stderr and not (tmp_path / "n.mcx").exists()
    no_secret(r, broken)


def test_refused_files_fail_with_exit_1(tmp_path, publisher, model):
    key_file, public, secret = publisher
    src, k = model
    enc = tmp_path / "m.mcx"
    ok(mc("encrypt", src, "-o", enc, "--key-file", k, "--sign", key_file, "--chunk-size", "4096"))
    data = enc.read_bytes()
    lay = layout(data)
    cases = {
        "tampered.mcx": (flipped(data, lay.chunk(lay.chunk_count - 1).start + 2), "does not match its signed hash"),
        "sig.mcx": (flipped(data, lay.signature.start), "does not verify"),
        "resigned.mcx": (resigned(data, Ed25519PrivateKey.generate()), "untrusted"),
    }
    for name, (content, _) in cases.items():
        (tmp_path / name).write_bytes(content)
    ok(mc("encrypt", src, "-o", tmp_path / "unsigned.mcx", "--key-file", k))
    cases["unsigned.mcx"] = (None, "not signed")
    for name, (_, why) in cases.items():
        path = tmp_path / name
        for source in ((), ("--key-file", k)):
            r = mc("verify", path, *source, "--trust", public)
            assert r.returncode == 1, (name, source, r.stdout, r.stderr)
            assert "FAILED" in r.stdout and why in r.stdout, (name, r.stdout)
            no_secret(r, secret)
        out = tmp_path / (name + ".out")
        r = mc("decrypt", path, "-o", out, "--key-file", k, "--trust", public)
        assert r.returncode == 1 and why in r.stderr and not out.exists(), (name, r.stderr)
    # several files: each one reported, the exit code says one failed
    r = mc("verify", enc, tmp_path / "tampered.mcx", "--trust", public)
    assert r.returncode == 1 and f"OK: {enc}" in r.stdout and "FAILED" in r.stdout


def test_trust_argument_errors(tmp_path, publisher, model):
    key_file, public, secret = publisher
    src, k = model
    enc = tmp_path / "m.mcx"
    ok(mc("encrypt", src, "-o", enc, "--key-file", k, "--sign", key_file))
    for bad, why in (("garbage", "Bech32"), (public[:-1] + ("q" if public[-1] != "q" else "p"), "checksum"),
                     (secret, "private"), (key_file, "private")):
        for command in (("verify", enc), ("verify", enc, "--key-file", k),
                        ("decrypt", enc, "-o", tmp_path / "out", "--key-file", k)):
            r = mc(*command, "--trust", bad)
            assert r.returncode == 2 and why in r.stderr, (bad, command, r.stderr)
            no_secret(r, secret)
    assert not (tmp_path / "out").exists()
    r = mc("verify", tmp_path / "missing.mcx", "--trust", public)
    assert r.returncode == 3 and "FAILED" in r.stdout
    r = mc("encrypt", src, "-o", tmp_path / "x.mcx", "--key-file", k, "--sign", tmp_path / "nope.sign")
    assert r.returncode != 0 and not (tmp_path / "x.mcx").exists()


def test_sign_key_file_permissions_warned(tmp_path, publisher, model):
    key_file, public, secret = publisher
    src, k = model
    key_file.chmod(0o644)
    r = ok(mc("encrypt", src, "-o", tmp_path / "m.mcx", "--key-file", k, "--sign", key_file))
    assert "chmod 600" in r.stderr
    no_secret(r, secret)
    ok(mc("verify", tmp_path / "m.mcx", "--trust", public))


def test_signed_directory(tmp_path, publisher):
    key_file, public, secret = publisher
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "model.pdmodel").write_bytes(os.urandom(9000))
    (src / "sub" / "model.pdiparams").write_bytes(os.urandom(20000))
    ok(mc("keygen", "-o", tmp_path / "k.key"))
    enc = tmp_path / "enc"
    no_secret(ok(mc("encrypt", src, "-o", enc, "--key-file", tmp_path / "k.key", "--sign", key_file)), secret)
    for rel in ("model.pdmodel", "sub/model.pdiparams", ".modelcrypt-manifest"):
        r = ok(mc("verify", enc / rel, "--trust", public))  # every member and the manifest are signed
        assert "OK" in r.stdout
    r = ok(mc("verify", enc, "--key-file", tmp_path / "k.key", "--trust", public))
    assert "OK" in r.stdout
    ok(mc("decrypt", enc, "-o", tmp_path / "dec", "--key-file", tmp_path / "k.key", "--trust", public))
    assert (tmp_path / "dec" / "sub" / "model.pdiparams").read_bytes() == (src / "sub" / "model.pdiparams").read_bytes()
    member = enc / "sub" / "model.pdiparams"
    data = member.read_bytes()
    member.write_bytes(flipped(data, layout(data).chunk(0).start))
    r = mc("verify", enc, "--key-file", tmp_path / "k.key", "--trust", public)
    assert r.returncode == 1 and "FAILED" in r.stdout + r.stderr
    r = mc("decrypt", enc, "-o", tmp_path / "dec2", "--key-file", tmp_path / "k.key", "--trust", public)
    assert r.returncode == 1 and not (tmp_path / "dec2").exists()
    r = mc("verify", enc, "--trust", public)  # keyless takes files, not directories
    assert r.returncode == 2 and "directory" in r.stderr
    other = ok(mc("keygen", "--signing", "-o", tmp_path / "other.sign")).stdout.strip()
    member.write_bytes(data)
    r = mc("verify", enc, "--key-file", tmp_path / "k.key", "--trust", other)
    assert r.returncode == 1 and "untrusted" in r.stdout + r.stderr


def test_recipients_edits_keep_the_cli_signature(tmp_path, publisher, model):
    key_file, public, _ = publisher
    src, k = model
    r = ok(mc("keygen", "--x25519", "-o", tmp_path / "dev.identity"))
    device = r.stdout.strip()
    enc = tmp_path / "m.mcx"
    ok(mc("encrypt", src, "-o", enc, "--key-file", k, "--sign", key_file))
    ok(mc("recipients", "add", enc, "-r", device, "--key-file", k))
    ok(mc("verify", enc, "--trust", public))
    ok(mc("decrypt", enc, "-o", tmp_path / "out", "-i", tmp_path / "dev.identity", "--trust", public))
    assert (tmp_path / "out").read_bytes() == src.read_bytes()
    ok(mc("recipients", "remove", enc, "-r", device, "--key-file", k))
    ok(mc("verify", enc, "--key-file", k, "--trust", public))


def test_decrypt_to_stdout_with_trust(tmp_path, publisher, model):
    key_file, public, _ = publisher
    src, k = model
    enc = tmp_path / "m.mcx"
    ok(mc("encrypt", src, "-o", enc, "--key-file", k, "--sign", key_file, "--chunk-size", "4096"))

    def to_stdout(path, *trust):
        return subprocess.run([sys.executable, "-m", "modelcrypt", "decrypt", str(path), "-o", "-", "--key-file", str(k),
                               *trust], capture_output=True, env={**os.environ, "SKBUILD_EDITABLE_VERBOSE": "0"},
                              timeout=300)

    r = to_stdout(enc, "--trust", public)
    assert r.returncode == 0 and r.stdout == src.read_bytes()
    data = enc.read_bytes()
    (tmp_path / "t.mcx").write_bytes(flipped(data, layout(data).chunk(0).start))
    (tmp_path / "r.mcx").write_bytes(resigned(data, Ed25519PrivateKey.generate()))
    ok(mc("encrypt", src, "-o", tmp_path / "u.mcx", "--key-file", k))
    for name, why in (("t.mcx", b"chunk 0"), ("r.mcx", b"untrusted"), ("u.mcx", b"not signed")):
        r = to_stdout(tmp_path / name, "--trust", public)
        assert r.returncode == 1 and r.stdout == b"" and why in r.stderr, (name, r.stderr)
    assert to_stdout(tmp_path / "r.mcx").stdout == src.read_bytes()  # without --trust the re-signed file decrypts


def test_decrypt_to_stdout_with_trust_writes_nothing_for_a_late_changed_chunk(tmp_path, publisher):
    """A change in a chunk after the first 8 MiB stream block: --trust checks the whole file first."""
    key_file, public, _ = publisher
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(20 * 1024 * 1024 + 5))
    ok(mc("keygen", "-o", tmp_path / "k.key"))
    enc = tmp_path / "big.mcx"
    ok(mc("encrypt", src, "-o", enc, "--key-file", tmp_path / "k.key", "--sign", key_file))
    data = enc.read_bytes()
    late = layout(data).chunk(15).start + 7  # chunk 15 of 21 (1 MiB chunks): beyond the first stream block
    (tmp_path / "late.mcx").write_bytes(flipped(data, late))
    r = subprocess.run([sys.executable, "-m", "modelcrypt", "decrypt", str(tmp_path / "late.mcx"), "-o", "-",
                        "--key-file", str(tmp_path / "k.key"), "--trust", public], capture_output=True,
                       env={**os.environ, "SKBUILD_EDITABLE_VERBOSE": "0"}, timeout=300)
    assert r.returncode == 1 and r.stdout == b"" and b"chunk 15" in r.stderr, r.stderr


def test_key_text_in_place_of_a_path_is_not_repeated(tmp_path, publisher, model):
    key_file, public, secret = publisher
    src, k = model
    ident = tmp_path / "device.identity"
    ok(mc("keygen", "--x25519", "-o", ident))
    identity_secret = [line for line in ident.read_text().splitlines() if line.startswith("MODELCRYPT-SECRET-KEY-1")][0]
    r = mc("encrypt", src, "-o", tmp_path / "x.mcx", "--key-file", k, "--sign", secret)
    assert r.returncode != 0 and "not shown" in r.stderr, r.stderr
    no_secret(r, secret)
    assert not (tmp_path / "x.mcx").exists()
    ok(mc("encrypt", src, "-o", tmp_path / "y.mcx", "-r", ok(mc("keygen", "--x25519", "-o",
                                                                  tmp_path / "d2.identity")).stdout.strip()))
    r = mc("decrypt", tmp_path / "y.mcx", "-o", tmp_path / "y", "-i", identity_secret)
    assert r.returncode != 0 and identity_secret not in r.stdout + r.stderr and "not shown" in r.stderr, r.stderr
    r = mc("verify", tmp_path / "y.mcx", "--trust", tmp_path / "no-such-list.txt")
    assert r.returncode == 2 and "neither a signer public key" in r.stderr, r.stderr


def test_trust_file_with_several_pem_keys_and_text_lines(tmp_path, model):
    src, k = model
    pems = []
    for i in range(3):
        sk = Ed25519PrivateKey.generate()
        (tmp_path / f"p{i}.pem").write_bytes(sk.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                             serialization.NoEncryption()))
        os.chmod(tmp_path / f"p{i}.pem", 0o600)
        pems.append(sk.public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo).decode())
        ok(mc("encrypt", src, "-o", tmp_path / f"m{i}.mcx", "--key-file", k, "--sign", tmp_path / f"p{i}.pem"))
    text_signer = ok(mc("keygen", "--signing", "-o", tmp_path / "t.sign")).stdout.strip()
    ok(mc("encrypt", src, "-o", tmp_path / "mt.mcx", "--key-file", k, "--sign", tmp_path / "t.sign"))
    listing = tmp_path / "trusted.txt"
    listing.write_text(f"# two PEM keys, a text line, a third PEM key\n{pems[0]}{pems[1]}\n{text_signer}\n{pems[2]}")
    for name in ("m0", "m1", "m2", "mt"):  # every entry counts
        ok(mc("verify", tmp_path / f"{name}.mcx", "--trust", listing))
        ok(mc("verify", tmp_path / f"{name}.mcx", "--key-file", k, "--trust", listing))
    broken = tmp_path / "broken.txt"
    broken.write_text(pems[0] + pems[1].rsplit("-----END", 1)[0])
    r = mc("verify", tmp_path / "m0.mcx", "--trust", broken)
    assert r.returncode == 2 and "END" in r.stderr, r.stderr


def test_keyless_verify_refuses_a_directory_before_checking_any_file(tmp_path, publisher, model):
    key_file, public, _ = publisher
    src, k = model
    ok(mc("encrypt", src, "-o", tmp_path / "a.mcx", "--key-file", k, "--sign", key_file))
    (tmp_path / "d").mkdir()
    r = mc("verify", tmp_path / "a.mcx", tmp_path / "d", "--trust", public)
    assert r.returncode == 2 and "directory" in r.stderr and "OK" not in r.stdout, (r.stdout, r.stderr)


@pytest.mark.parametrize("kind", ["--signing", "--x25519"])
def test_overwrite_key_keeps_the_old_key_when_the_write_fails(tmp_path, kind, monkeypatch, capsys):
    """keygen --overwrite-key replaces the file atomically: a failure (here the final rename, as on a full
    disk) leaves the old key in place."""
    from modelcrypt import _atomic
    from modelcrypt.cli import main
    path = tmp_path / "old.key"
    assert main(["keygen", kind, "-o", str(path)]) == 0
    before = path.read_bytes()

    def full_disk(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_atomic.os, "replace", full_disk)
    monkeypatch.setattr(_atomic.os, "rename", full_disk)
    try:
        code = main(["keygen", kind, "-o", str(path), "--overwrite-key"])
    except SystemExit as exc:
        code = exc.code
    assert code != 0
    assert path.read_bytes() == before
    monkeypatch.undo()
    assert main(["keygen", kind, "-o", str(path), "--overwrite-key"]) == 0
    assert path.read_bytes() != before and os.stat(path).st_mode & 0o777 == 0o600
    capsys.readouterr()
