"""Publisher signing keys (format v3, issue 15): no secret in any repr or message, key files (0600,
never overwritten, warned about when readable by others), the environment, and argument checks
on trusted_signers and signing_key (wrong types, empty lists, garbage, private keys, custom ciphers).
"""

from __future__ import annotations

import copy
import os
import pickle
import warnings

import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import modelcrypt
import modelcrypt.numpy as mcnp

KEY = bytes(range(32))
PLAINTEXT = b"weights" * 1000


@pytest.fixture()
def signer():
    return modelcrypt.generate_signing_key()


def _secret(sk) -> str:
    secret = sk.secret_text()
    try:
        return bytes(secret).decode()
    finally:
        secret[:] = bytes(len(secret))


@pytest.fixture()
def signed(tmp_path, signer):
    path = tmp_path / "m.mcx"
    path.write_bytes(modelcrypt.encrypt_bytes(PLAINTEXT, KEY, signing_key=signer))
    return path


def _xor(key_stream=0x5A):
    def enc(data: bytes, key: bytes) -> bytes:
        return bytes(b ^ key_stream for b in data)

    def dec(path: str, key: bytes) -> bytes:
        with open(path, "rb") as f:
            return bytes(b ^ key_stream for b in f.read())

    return enc, dec


# ---------------------------------------------------------------- no secrets

def test_signing_key_repr_holds_no_secret(signer):
    secret = _secret(signer)
    assert secret.startswith("MODELCRYPT-SIGNING-KEY-1") and len(secret) == len("MODELCRYPT-SIGNING-KEY-1") + 58
    for shown in (repr(signer), str(signer), f"{signer}", repr([signer]), repr({"k": signer})):
        assert secret not in shown and secret[24:] not in shown.upper()
        assert signer.public_key in shown or "SigningKey" in shown
    assert signer.public_key.startswith("modelcrypt-signer1") and len(signer.public_key) == 18 + 58


def test_signing_key_cannot_be_pickled_or_copied_into_plain_bytes(signer):
    with pytest.raises(TypeError, match="pickle"):
        pickle.dumps(signer)
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError):
            pickle.dumps(signer, protocol=proto)
    with pytest.raises(TypeError):
        copy.copy(signer)


def test_secret_text_round_trips_and_is_a_wipeable_bytearray(signer):
    secret = signer.secret_text()
    assert isinstance(secret, bytearray)
    again = modelcrypt.SigningKey.from_text(secret)
    assert again.public_key == signer.public_key
    secret[:] = bytes(len(secret))


def test_error_messages_never_contain_the_secret(tmp_path, signer, signed):
    secret = _secret(signer)
    corrupted = secret[:-1] + ("Q" if secret[-1] != "Q" else "P")  # a bad checksum
    messages = []
    with pytest.raises(ValueError) as info:
        modelcrypt.SigningKey.from_text(bytearray(corrupted.encode()))
    messages.append(str(info.value))
    bad_file = tmp_path / "bad.sign"
    bad_file.write_text(f"# a signing key\n{corrupted}\n")
    bad_file.chmod(0o600)
    with pytest.raises(ValueError) as info:
        modelcrypt.read_signing_key_file(bad_file)
    messages.append(str(info.value))
    assert "bad.sign" in messages[-1] and "line 2" in messages[-1]
    for trust in ([secret], [corrupted], [secret.lower()]):
        with pytest.raises(ValueError) as info:
            modelcrypt.load(signed, KEY, trusted_signers=trust)
        messages.append(str(info.value))
    with pytest.raises(ValueError) as info:
        modelcrypt.parse_signer(secret)
    messages.append(str(info.value))
    key_file = tmp_path / "k.sign"
    modelcrypt.write_signing_key_file(key_file, signer)
    with pytest.raises(ValueError) as info:
        modelcrypt.read_trusted_signers_file(key_file)  # a signing key file given as the trusted list
    messages.append(str(info.value))
    for m in messages:
        for s in (secret, corrupted, secret.lower(), corrupted.lower(), secret[24:], secret[24:].lower()):
            assert s not in m, m


def test_a_signing_key_is_refused_as_a_trusted_signer(signed, signer):
    with pytest.raises(ValueError, match="private"):
        modelcrypt.load(signed, KEY, trusted_signers=[_secret(signer)])
    pem_private = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    with pytest.raises(ValueError, match="private"):
        modelcrypt.load(signed, KEY, trusted_signers=[pem_private])
    with pytest.raises(ValueError, match="private"):
        modelcrypt.verify_signature(signed, [pem_private])


# ---------------------------------------------------------------- key files and the environment

def test_write_signing_key_file_is_0600_and_never_overwrites(tmp_path, signer):
    path = tmp_path / "publisher.sign"
    modelcrypt.write_signing_key_file(path, signer)
    assert os.stat(path).st_mode & 0o777 == 0o600
    text = path.read_text()
    assert signer.public_key in text and _secret(signer) in text
    before = path.read_bytes()
    other = modelcrypt.generate_signing_key()
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        modelcrypt.write_signing_key_file(path, other)
    assert path.read_bytes() == before
    assert modelcrypt.read_signing_key_file(path).public_key == signer.public_key
    modelcrypt.write_signing_key_file(path, other, force=True)
    assert modelcrypt.read_signing_key_file(path).public_key == other.public_key
    assert os.stat(path).st_mode & 0o777 == 0o600
    with pytest.raises(TypeError):
        modelcrypt.write_signing_key_file(tmp_path / "x.sign", signer.public_key)
    assert not (tmp_path / "x.sign").exists()


def test_read_signing_key_file_warns_when_others_can_read_it(tmp_path, signer):
    path = tmp_path / "publisher.sign"
    modelcrypt.write_signing_key_file(path, signer)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert modelcrypt.read_signing_key_file(path).public_key == signer.public_key  # 0600: no warning
    path.chmod(0o644)
    with pytest.warns(modelcrypt.InsecureKeyFileWarning, match="chmod 600"):
        sk = modelcrypt.read_signing_key_file(path)
    assert sk.public_key == signer.public_key


def test_signing_key_from_env(monkeypatch, signer, tmp_path):
    monkeypatch.setenv("MODELCRYPT_SIGNING_KEY", _secret(signer))
    assert modelcrypt.signing_key_from_env().public_key == signer.public_key
    monkeypatch.setenv("CI_SIGNER", _secret(signer))
    sk = modelcrypt.signing_key_from_env("CI_SIGNER")
    blob = modelcrypt.encrypt_bytes(PLAINTEXT, KEY, signing_key=sk)
    assert bytes(modelcrypt.decrypt_bytes(blob, KEY, trusted_signers=[signer.public_key])) == PLAINTEXT
    monkeypatch.delenv("CI_SIGNER")
    with pytest.raises(ValueError, match="not set"):
        modelcrypt.signing_key_from_env("CI_SIGNER")
    monkeypatch.setenv("CI_SIGNER", "")
    with pytest.raises(ValueError, match="empty"):
        modelcrypt.signing_key_from_env("CI_SIGNER")


# ---------------------------------------------------------------- argument checks

def test_trusted_signers_must_be_a_list(signed, signer):
    for single in (signer.public_key, signer.public_key_bytes, signer):
        with pytest.raises(TypeError, match="list"):
            modelcrypt.load(signed, KEY, trusted_signers=single)
        with pytest.raises(TypeError, match="list"):
            modelcrypt.verify_signature(signed, single)
    with pytest.raises(TypeError):
        modelcrypt.load(signed, KEY, trusted_signers=42)
    with pytest.raises(TypeError, match="32 bytes"):
        modelcrypt.load(signed, KEY, trusted_signers=[b"\x01" * 31])
    with pytest.raises(TypeError):
        modelcrypt.load(signed, KEY, trusted_signers=[None])
    with pytest.raises(TypeError, match="trusted_signers"):
        modelcrypt.verify_signature(signed, None)


def test_trusted_signers_empty_is_a_value_error(signed):
    for empty in ([], ()):
        with pytest.raises(ValueError, match="empty"):
            modelcrypt.load(signed, KEY, trusted_signers=empty)
        with pytest.raises(ValueError, match="empty"):
            modelcrypt.verify_signature(signed, empty)
    with pytest.raises(ValueError, match="empty"):
        modelcrypt.open_encrypted(signed, KEY, trusted_signers=[])


def test_garbage_signer_text_names_what_is_wrong(signed, signer):
    cases = {
        "garbage": "Bech32",
        signer.public_key[:-1] + ("q" if signer.public_key[-1] != "q" else "p"): "checksum",
        modelcrypt.generate_identity().recipient: "expected modelcrypt-signer1",  # a recipient is not a signer
        "": "Bech32",
    }
    for text, what in cases.items():
        with pytest.raises(ValueError, match=what) as info:
            modelcrypt.load(signed, KEY, trusted_signers=[text])
        assert "signer" in str(info.value) or "public key" in str(info.value), str(info.value)
        with pytest.raises(ValueError):
            modelcrypt.parse_signer(text)
    with pytest.raises(TypeError):
        modelcrypt.parse_signer(signer.public_key_bytes)


def test_custom_ciphers_cannot_be_checked(tmp_path, signer):
    enc, dec = _xor()
    path = tmp_path / "m.bin.enc"
    path.write_bytes(modelcrypt.encrypt_bytes(PLAINTEXT, KEY, enc))
    assert bytes(modelcrypt.load(path, KEY, dec)) == PLAINTEXT
    calls = [
        lambda: modelcrypt.load(path, KEY, dec, trusted_signers=[signer]),
        lambda: modelcrypt.verify(path, KEY, dec, trusted_signers=[signer]),
        lambda: modelcrypt.decrypt_file(path, tmp_path / "out", KEY, dec, trusted_signers=[signer]),
        lambda: mcnp.load(path, KEY, dec, trusted_signers=[signer]),
        lambda: modelcrypt.load_checkpoint(path, KEY, dec, trusted_signers=[signer]),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="custom cipher"):
            call()
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="signing_key"):
        modelcrypt.encrypt_bytes(PLAINTEXT, KEY, enc, signing_key=signer)
    with pytest.raises(ValueError, match="signing_key"):
        modelcrypt.CheckpointConfig(enc_key=KEY, enc_mode=enc, signing_key=signer)


def test_signing_key_arguments(tmp_path, signer):
    src = tmp_path / "m.bin"
    src.write_bytes(PLAINTEXT)
    for wrong in (signer.public_key, signer.public_key_bytes, _secret(signer)):
        with pytest.raises(TypeError, match="SigningKey"):
            modelcrypt.encrypt_file(src, tmp_path / "m.mcx", KEY, signing_key=wrong)
        with pytest.raises(TypeError, match="SigningKey"):
            modelcrypt.encrypt_bytes(PLAINTEXT, KEY, signing_key=wrong)
    assert not (tmp_path / "m.mcx").exists()
    with pytest.raises(ValueError, match="format"):
        modelcrypt.encrypt_bytes(PLAINTEXT, KEY, format="mindspore", signing_key=signer)
    with pytest.raises(ValueError):
        modelcrypt.save_checkpoint({"w": np.zeros(3, np.float32)}, tmp_path / "c.safetensors", None,
                                   signing_key=signer)  # a plaintext checkpoint cannot be signed
    with pytest.raises(ValueError, match="mindspore"):
        modelcrypt.save_checkpoint({"w": np.zeros(3, np.float32)}, tmp_path / "c.ckpt", KEY, format="mindspore",
                                   signing_key=signer)
    assert not (tmp_path / "c.safetensors").exists() and not (tmp_path / "c.ckpt").exists()
    with pytest.raises(TypeError, match="SigningKey"):
        modelcrypt.CheckpointConfig(enc_key=KEY, signing_key="nope")


def test_trusted_signers_need_a_key_for_checkpoints(tmp_path, signer):
    path = modelcrypt.save_checkpoint({"w": np.zeros(3, np.float32)}, tmp_path / "c.safetensors", None)
    with pytest.raises(ValueError, match="dec_key"):
        modelcrypt.load_checkpoint(path, None, trusted_signers=[signer])
    with pytest.raises(ValueError, match="dec_key"):
        modelcrypt.load_distributed_checkpoint([path], None, trusted_signers=[signer])

