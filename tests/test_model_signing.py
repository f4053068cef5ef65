"""OpenSSF model signing of encrypted directories (modelcrypt.sign_directory /
verify_directory_signature, `modelcrypt sign-dir` / `verify-dir`), checked against the real
`model-signing` package: its verify API and its `model_signing verify key` command must accept
what modelcrypt signs, and every change to the encrypted directory must be refused."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import modelcrypt
from conftest import require

PASSWORD = "correct horse battery staple"


def mc(*args, env=None, stdin=subprocess.DEVNULL):
    return subprocess.run([sys.executable, "-m", "modelcrypt", *map(str, args)], capture_output=True, text=True,
                          stdin=stdin, env={**os.environ, "SKBUILD_EDITABLE_VERBOSE": "0", **(env or {})})


def model_signing_cli(*args):
    """The model-signing package's own command line (its console script runs model_signing._cli:main)."""
    return subprocess.run([sys.executable, "-m", "model_signing", *map(str, args)], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)


def ok(r):
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def _write_key_pair(tmp_path, name, curve=ec.SECP256R1(), password=None):  # noqa: B008  (an immutable curve)
    key = ec.generate_private_key(curve)
    encryption = serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / f"{name}.pem").write_bytes(private_pem)
    (tmp_path / f"{name}.pub.pem").write_bytes(public_pem)
    return tmp_path / f"{name}.pem", tmp_path / f"{name}.pub.pem", private_pem


@pytest.fixture()
def ms():
    require("OpenSSL", load=False)
    return require("model_signing")


@pytest.fixture()
def keys(tmp_path):
    """A P-256 signer (private PEM, public PEM) and, to sign where it should not, another one."""
    private, public, private_pem = _write_key_pair(tmp_path, "signer")
    other, other_public, _ = _write_key_pair(tmp_path, "other")
    return {"private": private, "public": public, "pem": private_pem, "other": other, "other_public": other_public}


@pytest.fixture()
def encrypted(tmp_path):
    """A small model directory, encrypted with modelcrypt (mirrored, with its manifest)."""
    src = tmp_path / "model"
    (src / "tokenizer").mkdir(parents=True)
    (src / "model.safetensors").write_bytes(os.urandom(150_000))
    (src / "config.json").write_text('{"hidden": 8}')
    (src / "tokenizer" / "vocab.txt").write_text("a\nb\nc\n")
    modelcrypt.write_key_file(tmp_path / "model.key", modelcrypt.generate_key())
    key = modelcrypt.read_key_file(tmp_path / "model.key")
    modelcrypt.encrypt_directory(src, tmp_path / "model.enc", key, chunk_size=4096)
    return tmp_path / "model.enc"


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_signed_encrypted_directory_verifies_with_modelcrypt_and_model_signing(ms, tmp_path, keys, encrypted):
    sig = modelcrypt.sign_directory(encrypted, keys["private"])
    assert sig == tmp_path / "model.enc.sig" and sig.is_file()  # beside the directory, not inside it
    assert not [p for p in tmp_path.iterdir() if ".mctmp-" in p.name]

    modelcrypt.verify_directory_signature(encrypted, keys["public"])
    modelcrypt.model_signing_interop.verify_directory(encrypted, keys["public"], signature=sig)
    # the ecosystem's own verifier (API, hashing configuration guessed from the signature) ...
    ms.verifying.Config().use_elliptic_key_verifier(public_key=keys["public"]).verify(encrypted, sig)
    # ... and its command line
    r = ok(model_signing_cli("verify", "key", encrypted, "--signature", sig, "--public_key", keys["public"]))
    assert "Verification succeeded" in r.stdout
    # the signature beside the directory leaves modelcrypt's own key-based check intact
    ok(mc("verify", encrypted, "--key-file", tmp_path / "model.key"))

    # a standard bundle: a DSSE envelope around an in-toto statement listing the ENCRYPTED bytes
    bundle = json.loads(sig.read_text())
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert bundle["verificationMaterial"]["tlogEntries"] == []  # offline: no transparency log
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    resources = {r["name"]: r["digest"] for r in statement["predicate"]["resources"]}
    files = sorted(p.relative_to(encrypted).as_posix() for p in encrypted.rglob("*") if p.is_file())
    assert sorted(resources) == files == [".modelcrypt-manifest", "config.json", "model.safetensors",
                                          "tokenizer/vocab.txt"]
    for name, digest in resources.items():
        assert digest == _sha256(encrypted / name)
        assert modelcrypt.is_encrypted(encrypted / name)
    assert _sha256(encrypted / "model.safetensors") != _sha256(tmp_path / "model" / "model.safetensors")


def test_cli_sign_dir_and_verify_dir(ms, tmp_path, keys, encrypted):
    r = ok(mc("sign-dir", encrypted, "--key", keys["private"]))
    sig = tmp_path / "model.enc.sig"
    assert sig.is_file() and str(sig) in r.stderr
    r = ok(mc("verify-dir", encrypted, "--trust", keys["public"]))
    assert r.stdout.startswith("OK: ")
    assert ok(mc("verify-dir", encrypted, "--trust", keys["public"], "-q")).stdout == ""
    ok(model_signing_cli("verify", "key", encrypted, "--signature", sig, "--public_key", keys["public"]))

    other_sig = tmp_path / "elsewhere" / "bundle.json"
    other_sig.parent.mkdir()
    ok(mc("sign-dir", encrypted, "--key", keys["private"], "--signature", other_sig, "-q"))
    ok(mc("verify-dir", encrypted, "--trust", keys["public"], "--signature", other_sig))
    ms.verifying.Config().use_elliptic_key_verifier(public_key=keys["public"]).verify(encrypted, other_sig)
    r = mc("verify-dir", encrypted, "--trust", keys["other_public"], "--signature", other_sig)
    assert r.returncode == 1 and "FAILED" in r.stdout and "another key" in r.stdout


def test_a_directory_renamed_or_moved_still_verifies(ms, tmp_path, keys, encrypted):
    sig = modelcrypt.sign_directory(encrypted, keys["private"])
    moved = tmp_path / "downloads" / "bert.enc"
    moved.parent.mkdir()
    shutil.move(str(encrypted), str(moved))
    modelcrypt.verify_directory_signature(moved, keys["public"], signature=sig)


def _flip_byte(d):
    path = d / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _add_file(d):
    (d / "extra.bin").write_bytes(modelcrypt.encrypt_bytes(b"not signed", modelcrypt.generate_key()))


def _add_git_file(d):
    (d / ".gitattributes").write_text("*.bin filter=lfs\n")  # model_signing's CLI leaves git files out by default


def _remove_file(d):
    (d / "tokenizer" / "vocab.txt").unlink()


def _rename_file(d):
    (d / "config.json").rename(d / "config2.json")


def _swap_files(d):
    a, b = d / "config.json", d / "tokenizer" / "vocab.txt"
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)


def _replace_manifest(d):
    (d / ".modelcrypt-manifest").write_bytes(modelcrypt.encrypt_bytes(b"{}", modelcrypt.generate_key()))


def _add_symlink(d):
    os.symlink("model.safetensors", d / "link.safetensors")


TAMPERS = {
    "flip a byte": (_flip_byte, "Hash mismatch for 'model.safetensors'"),
    "add a file": (_add_file, "extra.bin"),
    "add a git file": (_add_git_file, ".gitattributes"),
    "remove a file": (_remove_file, "tokenizer/vocab.txt"),
    "rename a file": (_rename_file, "config2.json"),
    "swap two files": (_swap_files, "Hash mismatch"),
    "replace the manifest": (_replace_manifest, ".modelcrypt-manifest"),
    "add a symlink": (_add_symlink, "link.safetensors"),
}


@pytest.mark.parametrize("tamper", sorted(TAMPERS))
def test_any_change_to_the_signed_directory_is_refused(ms, tmp_path, keys, encrypted, tamper):
    change, named = TAMPERS[tamper]
    sig = modelcrypt.sign_directory(encrypted, keys["private"])
    change(encrypted)
    with pytest.raises(modelcrypt.SignatureError, match="changed since signing") as info:
        modelcrypt.verify_directory_signature(encrypted, keys["public"])
    assert named in str(info.value)
    r = mc("verify-dir", encrypted, "--trust", keys["public"])
    assert r.returncode == 1 and "FAILED" in r.stdout and named in r.stdout
    if tamper != "add a git file":  # the ecosystem's default (--ignore-git-paths) skips git files
        with pytest.raises(ValueError):
            ms.verifying.Config().use_elliptic_key_verifier(public_key=keys["public"]).verify(encrypted, sig)


@pytest.mark.parametrize("tamper", ["flip a byte", "remove a file"])
def test_model_signing_cli_refuses_a_changed_directory(ms, keys, encrypted, tamper):
    sig = modelcrypt.sign_directory(encrypted, keys["private"])
    TAMPERS[tamper][0](encrypted)
    r = model_signing_cli("verify", "key", encrypted, "--signature", sig, "--public_key", keys["public"])
    assert r.returncode != 0 and "Verification failed" in r.stderr


def test_a_signature_by_another_key_is_refused(ms, keys, encrypted):
    sig = modelcrypt.sign_directory(encrypted, keys["private"])
    assert modelcrypt.sign_directory(encrypted, keys["other"], signature=sig) == sig  # replaced in place
    with pytest.raises(modelcrypt.SignatureError, match="signed by another key"):
        modelcrypt.verify_directory_signature(encrypted, keys["public"])
    r = mc("verify-dir", encrypted, "--trust", keys["public"])
    assert r.returncode == 1 and "another key" in r.stdout
    r = model_signing_cli("verify", "key", encrypted, "--signature", sig, "--public_key", keys["public"])
    assert r.returncode != 0
    modelcrypt.verify_directory_signature(encrypted, keys["other_public"])  # its own key accepts it


def test_a_forged_or_damaged_bundle_is_refused(ms, keys, encrypted):
    sig = modelcrypt.sign_directory(encrypted, keys["private"])
    bundle = json.loads(sig.read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    _flip_byte(encrypted)  # change the model, then make the statement claim the new digest
    for r in statement["predicate"]["resources"]:
        if r["name"] == "model.safetensors":
            r["digest"] = _sha256(encrypted / "model.safetensors")
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    sig.write_text(json.dumps(bundle))
    with pytest.raises(modelcrypt.SignatureError, match="does not verify"):
        modelcrypt.verify_directory_signature(encrypted, keys["public"])
    sig.write_text("{ not json")
    with pytest.raises(modelcrypt.SignatureError, match="not a readable model-signing signature bundle"):
        modelcrypt.verify_directory_signature(encrypted, keys["public"])
    r = mc("verify-dir", encrypted, "--trust", keys["public"])
    assert r.returncode == 1


def test_an_unsigned_directory_is_refused(ms, tmp_path, keys, encrypted):
    with pytest.raises(modelcrypt.SignatureError, match="not signed: no signature file"):
        modelcrypt.verify_directory_signature(encrypted, keys["public"])
    r = mc("verify-dir", encrypted, "--trust", keys["public"], "--signature", tmp_path / "missing.sig")
    assert r.returncode == 1 and "not signed" in r.stdout and "missing.sig" in r.stdout


def test_signing_plaintext_is_refused_unless_asked(ms, tmp_path, keys, encrypted):
    plain = tmp_path / "model"
    with pytest.raises(ValueError, match="not an encrypted modelcrypt directory .*allow_plaintext=True"):
        modelcrypt.sign_directory(plain, keys["private"])
    assert not (tmp_path / "model.sig").exists()
    r = mc("sign-dir", plain, "--key", keys["private"])
    assert r.returncode == 2 and "not an encrypted modelcrypt directory" in r.stderr and "--allow-plaintext" in r.stderr
    assert not (tmp_path / "model.sig").exists()
    # a single encrypted file is not an encrypted directory either
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(encrypted / "model.safetensors", lone / "model.safetensors")
    with pytest.raises(ValueError, match="not an encrypted modelcrypt directory"):
        modelcrypt.sign_directory(lone, keys["private"])
    # on request it signs what is there (model_signing's plain use)
    sig = modelcrypt.sign_directory(plain, keys["private"], allow_plaintext=True)
    assert sig == tmp_path / "model.sig"
    modelcrypt.verify_directory_signature(plain, keys["public"])
    ok(mc("sign-dir", plain, "--key", keys["private"], "--allow-plaintext", "--signature", tmp_path / "p.sig"))
    ok(model_signing_cli("verify", "key", plain, "--signature", tmp_path / "p.sig", "--public_key", keys["public"]))


def test_a_signature_inside_the_directory_is_refused(ms, keys, encrypted):
    with pytest.raises(ValueError, match="lies inside"):
        modelcrypt.sign_directory(encrypted, keys["private"], signature=encrypted / "model.sig")
    r = mc("sign-dir", encrypted, "--key", keys["private"], "--signature", encrypted / "tokenizer" / "model.sig")
    assert r.returncode == 2 and "lies inside" in r.stderr
    assert sorted(p.name for p in encrypted.rglob("*")) == sorted(
        [".modelcrypt-manifest", "config.json", "model.safetensors", "tokenizer", "vocab.txt"])


def test_a_signature_placed_inside_by_model_signing_users_still_verifies(ms, keys, encrypted):
    """A registry that keeps the bundle in the directory (HF-style model.sig): model_signing leaves the
    signature file out of the hash, and so does verify_directory_signature."""
    outside = modelcrypt.sign_directory(encrypted, keys["private"])
    shutil.move(str(outside), str(encrypted / "model.sig"))
    modelcrypt.verify_directory_signature(encrypted, keys["public"], signature=encrypted / "model.sig")
    ok(model_signing_cli("verify", "key", encrypted, "--signature", encrypted / "model.sig",
                         "--public_key", keys["public"]))


def test_encrypted_pem_key_with_password(ms, tmp_path, encrypted):
    private, public, _ = _write_key_pair(tmp_path, "locked", curve=ec.SECP384R1(), password=PASSWORD)
    with pytest.raises(ValueError, match="locked.pem: the private key is encrypted"):
        modelcrypt.sign_directory(encrypted, private)
    with pytest.raises(ValueError, match="locked.pem: wrong password") as info:
        modelcrypt.sign_directory(encrypted, private, password="not it")
    assert "not it" not in str(info.value)
    modelcrypt.sign_directory(encrypted, private, password=PASSWORD.encode())
    modelcrypt.verify_directory_signature(encrypted, public)

    r = mc("sign-dir", encrypted, "--key", private)  # no terminal to prompt on, no --password-env
    assert r.returncode == 2 and "--password-env" in r.stderr
    r = mc("sign-dir", encrypted, "--key", private, "--password-env", "SIGNING_PW", env={"SIGNING_PW": PASSWORD})
    ok(r)
    assert PASSWORD not in r.stdout + r.stderr
    r = mc("sign-dir", encrypted, "--key", private, "--password-env", "SIGNING_PW", env={"SIGNING_PW": "hunter2-nope"})
    assert r.returncode == 2 and "wrong password" in r.stderr and "hunter2" not in r.stdout + r.stderr
    r = mc("sign-dir", encrypted, "--key", private, "--password-env", "UNSET_SIGNING_PW_VAR")
    assert r.returncode == 2 and "UNSET_SIGNING_PW_VAR" in r.stderr
    ok(mc("verify-dir", encrypted, "--trust", public))


def test_bad_and_missing_key_files_are_named(ms, tmp_path, keys, encrypted):
    sig = modelcrypt.sign_directory(encrypted, keys["private"])
    before = sig.read_bytes()
    missing = tmp_path / "no-such-key.pem"
    with pytest.raises(FileNotFoundError) as info:
        modelcrypt.sign_directory(encrypted, missing)
    assert "no-such-key.pem" in str(info.value)
    r = mc("sign-dir", encrypted, "--key", missing)
    assert r.returncode == 3 and "no-such-key.pem" in r.stderr
    r = mc("verify-dir", encrypted, "--trust", missing)
    assert r.returncode == 3 and "no-such-key.pem" in r.stderr

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "rsa.pem").write_bytes(rsa_key.private_bytes(serialization.Encoding.PEM,
                                                             serialization.PrivateFormat.PKCS8,
                                                             serialization.NoEncryption()))
    k1 = ec.generate_private_key(ec.SECP256K1())
    (tmp_path / "k1.pem").write_bytes(k1.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    cases = {
        tmp_path / "model.key": "not a PEM file",              # a modelcrypt key file is not a signing key
        keys["public"]: "a public key",
        tmp_path / "rsa.pem": "not an elliptic-curve private key",
        tmp_path / "k1.pem": "secp256k1",
    }
    for n, (path, message) in enumerate(cases.items()):
        with pytest.raises(ValueError, match=message) as info:
            modelcrypt.sign_directory(encrypted, path)
        assert path.name in str(info.value)
        if n < 2:  # the command line reports the same errors (exit 2)
            r = mc("sign-dir", encrypted, "--key", path)
            assert r.returncode == 2 and path.name in r.stderr and message in r.stderr
    assert sig.read_bytes() == before  # a failed signing leaves the existing signature as it was

    for path, message in ((keys["private"], "a private key"), (tmp_path / "model.key", "not a PEM public key")):
        with pytest.raises(ValueError, match=message):
            modelcrypt.verify_directory_signature(encrypted, path)
        r = mc("verify-dir", encrypted, "--trust", path)
        assert r.returncode == 2 and path.name in r.stderr


def test_the_private_key_is_never_printed_nor_taken_on_the_command_line(ms, tmp_path, keys, encrypted):
    pem = keys["pem"].decode()
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    secret = keys["other"].read_bytes()
    outputs = []
    r = mc("sign-dir", encrypted, "--key", pem)  # the key's text in place of its path: refused, not echoed
    assert r.returncode == 2 and "path of a PEM file" in r.stderr
    outputs.append(r.stdout + r.stderr)
    outputs += [ok(mc("sign-dir", encrypted, "--key", keys["private"])).stderr,
                ok(mc("verify-dir", encrypted, "--trust", keys["public"])).stdout]
    r = mc("verify-dir", encrypted, "--trust", keys["private"])
    outputs.append(r.stdout + r.stderr)
    sig_text = (tmp_path / "model.enc.sig").read_text()
    for text in outputs + [sig_text]:
        assert body[:40] not in text and "PRIVATE KEY" not in text
        for line in secret.decode().splitlines()[1:-1]:
            assert line not in text
    # the bundle carries only the public key's SHA-256 as a hint, never a key
    pub_pem = keys["public"].read_bytes()
    assert json.loads(sig_text)["verificationMaterial"]["publicKey"] == {"hint": hashlib.sha256(pub_pem).hexdigest()}


MISSING = textwrap.dedent("""
    import sys
    sys.modules[{module!r}] = None   # the package is not importable, as when it is not installed
    import modelcrypt
    try:
        modelcrypt.sign_directory({directory!r}, {key!r})
    except ImportError as exc:
        print("ImportError:", exc)
    from modelcrypt.cli import main
    sys.exit(main(["verify-dir", {directory!r}, "--trust", {key!r}]))
""")


@pytest.mark.parametrize("module", ["model_signing", "OpenSSL"])
def test_a_missing_signing_package_says_how_to_install_it(ms, keys, encrypted, module):
    code = MISSING.format(module=module, directory=str(encrypted), key=str(keys["private"]))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "SKBUILD_EDITABLE_VERBOSE": "0"})
    assert r.stdout.startswith("ImportError:") and 'pip install "modelcrypt[signing]"' in r.stdout
    assert r.returncode == 2 and 'pip install "modelcrypt[signing]"' in r.stderr


def test_import_modelcrypt_does_not_import_model_signing():
    code = "import sys, modelcrypt; print('model_signing' in sys.modules, 'OpenSSL' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "SKBUILD_EDITABLE_VERBOSE": "0"})
    assert r.stdout.split() == ["False", "False"], r.stderr


def _readme_sh_block(section_title: str) -> str:
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = text[text.index(section_title):]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, f"no ```sh block in the README's {section_title!r} section"
    return match.group(1)


def test_readme_signing_block_runs_as_written(ms, tmp_path):
    """The README's signing commands, after its key and command-line block, in a fresh directory,
    with `modelcrypt` and `model_signing` as their installed entry points would be."""
    blocks = _readme_sh_block("## Keys and the command line") + _readme_sh_block("## Signed encrypted directories")
    assert "modelcrypt sign-dir" in blocks and "model_signing verify key" in blocks
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, module in (("modelcrypt", "modelcrypt"), ("model_signing", "model_signing")):
        (bindir / name).write_text(f'#!/bin/sh\nexec "{sys.executable}" -m {module} "$@"\n')
        (bindir / name).chmod(0o755)
    work = tmp_path / "fresh"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELCRYPT_")}
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    env["SKBUILD_EDITABLE_VERBOSE"] = "0"
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", blocks], cwd=work, env=env, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    assert "Verification succeeded" in r.stdout and (work / "paddle_model.enc.sig").is_file()
    assert "PRIVATE KEY" not in r.stdout + r.stderr
    modelcrypt.verify_directory_signature(work / "paddle_model.enc", work / "ec_public.pem")


def test_a_bundle_made_by_the_model_signing_cli_verifies_with_verify_dir(ms, tmp_path, keys, encrypted):
    sig = tmp_path / "by-model-signing.sig"
    ok(model_signing_cli("sign", "key", encrypted, "--private_key", keys["private"], "--signature", sig,
                         "--no-ignore-git-paths"))
    ok(mc("verify-dir", encrypted, "--trust", keys["public"], "--signature", sig))
    # with its defaults it leaves git files out of the hash: verify-dir accepts that only while the
    # directory has none of them, since a file the signature does not cover could be anything
    ok(model_signing_cli("sign", "key", encrypted, "--private_key", keys["private"], "--signature", sig))
    modelcrypt.verify_directory_signature(encrypted, keys["public"], signature=sig)
    _add_git_file(encrypted)
    ok(model_signing_cli("verify", "key", encrypted, "--signature", sig, "--public_key", keys["public"]))
    with pytest.raises(modelcrypt.SignatureError, match="'.gitattributes' is not covered by the signature"):
        modelcrypt.verify_directory_signature(encrypted, keys["public"], signature=sig)


def test_a_signature_in_a_missing_directory_is_an_io_error(ms, tmp_path, keys, encrypted):
    with pytest.raises(FileNotFoundError, match="no-such-dir"):
        modelcrypt.sign_directory(encrypted, keys["private"], signature=tmp_path / "no-such-dir" / "x.sig")
    r = mc("sign-dir", encrypted, "--key", keys["private"], "--signature", tmp_path / "no-such-dir" / "x.sig")
    assert r.returncode == 3 and "no-such-dir" in r.stderr
    r = mc("verify-dir", tmp_path / "no-such-model", "--trust", keys["public"])
    assert r.returncode == 3 and "no-such-model" in r.stderr
