"""Publisher signatures (format v3, issue 15) through the Python API: signing writers, every reader
with ``trusted_signers``, the forms a trusted signer takes, keyless verification, recipients edits,
directories, checkpoints and key rotation. Tampering: test_signatures_tamper.py; secrets and
arguments: test_signatures_keys.py.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import modelcrypt
from signature_layout import flipped, layout, trailer_is_valid

CS = 4096
PLAINTEXT = os.urandom(5 * CS + 123)
KEY = bytes(range(32))


@pytest.fixture(scope="module")
def signer():
    return modelcrypt.generate_signing_key()


@pytest.fixture(scope="module")
def device():
    return modelcrypt.generate_identity()


CREDENTIALS = ["symmetric", "recipients", "both"]


def writer_args(credential, device):
    """(key, recipients) for encrypt_*; and the reader credential kwargs."""
    if credential == "symmetric":
        return KEY, None, {"key": KEY}
    if credential == "recipients":
        return None, [device.recipient], {"identity": device}
    return KEY, [device.recipient], {"key": KEY}


def read_everything(path, cred, trust, tmp_path):
    """The plaintext through each reader (given trust), as {reader: bytes}."""
    out = {}
    out["load"] = bytes(modelcrypt.load(path, **cred, trusted_signers=trust))
    out["decrypt_bytes"] = bytes(modelcrypt.decrypt_bytes(Path(path).read_bytes(), **cred, trusted_signers=trust))
    dst = tmp_path / "plain.out"
    modelcrypt.decrypt_file(path, dst, **cred, trusted_signers=trust)
    out["decrypt_file"] = dst.read_bytes()
    dst.unlink()
    assert modelcrypt.verify(path, **cred, trusted_signers=trust) is None
    out["load_range"] = bytes(modelcrypt.load_range(path, **cred, offset=0, length=len(PLAINTEXT), trusted_signers=trust))
    with modelcrypt.open_encrypted(path, **cred, trusted_signers=trust) as f:
        out["read_range"] = bytes(f.read_range(0, CS + 1)) + bytes(f.read_range(CS + 1, len(PLAINTEXT) - CS - 1))
    return out


@pytest.mark.parametrize("writer", ["encrypt_file", "encrypt_bytes"])
@pytest.mark.parametrize("credential", CREDENTIALS)
def test_round_trip_with_trust(tmp_path, signer, device, credential, writer):
    key, recipients, cred = writer_args(credential, device)
    path = tmp_path / "m.mcx"
    if writer == "encrypt_file":
        (tmp_path / "m.bin").write_bytes(PLAINTEXT)
        modelcrypt.encrypt_file(tmp_path / "m.bin", path, key, chunk_size=CS, recipients=recipients, signing_key=signer)
    else:
        path.write_bytes(modelcrypt.encrypt_bytes(PLAINTEXT, key, chunk_size=CS, recipients=recipients,
                                                  signing_key=signer))
    info = modelcrypt.inspect(path)
    assert info.version == 3 and info.signer == signer.public_key
    assert trailer_is_valid(path.read_bytes())
    for reader, got in read_everything(path, cred, [signer.public_key], tmp_path).items():
        assert got == PLAINTEXT, reader
    # not given trusted_signers: the signed file loads as before
    for reader, got in read_everything(path, cred, None, tmp_path).items():
        assert got == PLAINTEXT, reader
    if credential == "both":  # the device opens it as well as the key holder
        assert bytes(modelcrypt.load(path, identity=device, trusted_signers=[signer])) == PLAINTEXT


def test_signing_key_text_is_the_rfc8032_seed_and_signing_is_deterministic(signer):
    """The signing key text holds the Ed25519 seed: `cryptography` derives the same public key from
    it, and re-signing the file with it per docs/FORMAT.md gives the very same trailer (Ed25519 is
    deterministic)."""
    from signature_layout import raw_public, resigned

    private = Ed25519PrivateKey.from_private_bytes(_seed_of(signer))
    assert raw_public(private) == signer.public_key_bytes
    data = modelcrypt.encrypt_bytes(PLAINTEXT, KEY, chunk_size=CS, signing_key=signer)
    assert resigned(data, private) == data


def _seed_of(signing_key):
    """The 32-byte seed in a signing key's Bech32 text (test only)."""
    import reference_format_v2 as v2

    secret = signing_key.secret_text()
    try:
        hrp, seed = v2.bech32_decode(bytes(secret).decode().lower())
    finally:
        secret[:] = bytes(len(secret))
    assert hrp == "modelcrypt-signing-key-"
    return seed


def test_empty_and_exact_multiple_plaintexts(tmp_path, signer):
    for plaintext in (b"", bytes(2 * CS)):
        data = modelcrypt.encrypt_bytes(plaintext, KEY, chunk_size=CS, signing_key=signer)
        assert trailer_is_valid(data) and layout(data).chunk_count == max(1, len(plaintext) // CS)
        path = tmp_path / "m.mcx"
        path.write_bytes(data)
        assert bytes(modelcrypt.load(path, KEY, trusted_signers=[signer])) == plaintext
        assert modelcrypt.verify_signature(path, [signer]) == signer.public_key


# ---------------------------------------------------------------- what a trusted signer can be

def _cryptography_key():
    private = Ed25519PrivateKey.generate()
    pem_public = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    pem_private = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return private, pem_public, pem_private, raw


def test_trusted_signer_forms(tmp_path, signer):
    path = tmp_path / "m.mcx"
    path.write_bytes(modelcrypt.encrypt_bytes(PLAINTEXT, KEY, chunk_size=CS, signing_key=signer))
    forms = {
        "text": signer.public_key,
        "bytes": signer.public_key_bytes,
        "bytearray": bytearray(signer.public_key_bytes),
        "SigningKey": signer,
        "tuple": None,
    }
    for name, form in forms.items():
        trust = (signer.public_key,) if name == "tuple" else [form]
        assert bytes(modelcrypt.load(path, KEY, trusted_signers=trust)) == PLAINTEXT, name
        assert modelcrypt.verify_signature(path, trust) == signer.public_key, name
    assert modelcrypt.parse_signer(signer.public_key) == signer.public_key_bytes
    assert len(signer.public_key_bytes) == 32 and signer.public_key.startswith("modelcrypt-signer1")


def test_pem_keys_made_with_cryptography(tmp_path):
    private, pem_public, pem_private, raw = _cryptography_key()
    key_file = tmp_path / "publisher.pem"
    key_file.write_bytes(pem_private)
    key_file.chmod(0o600)
    sk = modelcrypt.read_signing_key_file(key_file)  # PKCS#8 PEM works as a signing key
    assert sk.public_key_bytes == raw
    assert modelcrypt.parse_signer(pem_public) == raw
    path = tmp_path / "m.mcx"
    path.write_bytes(modelcrypt.encrypt_bytes(PLAINTEXT, KEY, chunk_size=CS, signing_key=sk))
    assert bytes(modelcrypt.load(path, KEY, trusted_signers=[pem_public])) == PLAINTEXT
    # the signature verifies with `cryptography` against the PEM key's own public key
    assert trailer_is_valid(path.read_bytes()) and path.read_bytes()[layout(path.read_bytes()).signer_key] == raw
    pub_file = tmp_path / "publisher.pub.pem"
    pub_file.write_text(pem_public)
    assert modelcrypt.read_trusted_signers_file(pub_file) == [sk.public_key]
    assert modelcrypt.verify_signature(path, modelcrypt.read_trusted_signers_file(pub_file)) == sk.public_key
    # a PEM key of another publisher is not trusted
    other = _cryptography_key()[1]
    with pytest.raises(modelcrypt.SignatureError, match="untrusted"):
        modelcrypt.load(path, KEY, trusted_signers=[other])


def test_trusted_signers_file_of_lines(tmp_path, signer):
    other = modelcrypt.generate_signing_key()
    listing = tmp_path / "trusted.txt"
    listing.write_text(f"# our publishers\n\n{other.public_key}\n{signer.public_key}\n")
    assert modelcrypt.read_trusted_signers_file(listing) == [other.public_key, signer.public_key]
    path = tmp_path / "m.mcx"
    path.write_bytes(modelcrypt.encrypt_bytes(PLAINTEXT, KEY, chunk_size=CS, signing_key=signer))
    assert bytes(modelcrypt.load(path, KEY, trusted_signers=modelcrypt.read_trusted_signers_file(listing))) == PLAINTEXT


# ---------------------------------------------------------------- keyless verification and inspect

def test_keyless_verify_and_inspect(tmp_path, signer, device):
    path = tmp_path / "m.mcx"
    path.write_bytes(modelcrypt.encrypt_bytes(PLAINTEXT, None, chunk_size=CS, recipients=[device.recipient],
                                              signing_key=signer))
    assert modelcrypt.verify_signature(path, [signer.public_key]) == signer.public_key
    assert modelcrypt.verify_signature(str(path), [signer], threads=1) == signer.public_key
    info = modelcrypt.inspect(path)
    assert (info.version, info.signer, info.chunk_count) == (3, signer.public_key, 6)
    assert info.expected_file_length == info.file_length == path.stat().st_size
    assert [r["type"] for r in info.recipients] == ["x25519"]
    unsigned = tmp_path / "u.mcx"
    unsigned.write_bytes(modelcrypt.encrypt_bytes(PLAINTEXT, KEY))
    assert modelcrypt.inspect(unsigned).signer is None and modelcrypt.inspect(unsigned).version == 1
    calls = []
    modelcrypt.verify_signature(path, [signer], progress=calls.append)
    assert calls and calls == sorted(calls) and calls[-1] > 0


# ---------------------------------------------------------------- recipients edits keep the signature

def _payload_and_trailer(data):
    return data[layout(data).header_length:]


def test_recipients_add_and_remove_keep_the_signature(tmp_path, signer, device):
    path = tmp_path / "m.mcx"
    path.write_bytes(modelcrypt.encrypt_bytes(PLAINTEXT, KEY, chunk_size=CS, recipients=[device.recipient],
                                              signing_key=signer))
    before = path.read_bytes()
    second = modelcrypt.generate_identity()
    assert modelcrypt.add_recipients(path, KEY, [second.recipient])["in_place"] is True
    after = path.read_bytes()
    assert len(after) == len(before) and _payload_and_trailer(after) == _payload_and_trailer(before)
    assert modelcrypt.verify_signature(path, [signer]) == signer.public_key and trailer_is_valid(after)
    assert bytes(modelcrypt.load(path, identity=second, trusted_signers=[signer])) == PLAINTEXT
    assert modelcrypt.remove_recipients(path, identity=second, recipients=[device.recipient])["removed"] == 1
    assert modelcrypt.verify_signature(path, [signer]) == signer.public_key
    assert bytes(modelcrypt.load(path, KEY, trusted_signers=[signer])) == PLAINTEXT
    with pytest.raises(modelcrypt.KeyMismatchError):
        modelcrypt.load(path, identity=device, trusted_signers=[signer])
    assert modelcrypt.inspect(path).version == 3


def test_recipients_block_that_grows_keeps_the_signature(tmp_path, signer):
    path = tmp_path / "m.mcx"
    path.write_bytes(modelcrypt.encrypt_bytes(PLAINTEXT, KEY, chunk_size=CS, signing_key=signer))
    before = path.read_bytes()
    devices = [modelcrypt.generate_identity() for _ in range(40)]
    result = modelcrypt.add_recipients(path, KEY, [d.recipient for d in devices])
    assert result["in_place"] is False and result["added"] == 40  # the block was rewritten into a new file
    after = path.read_bytes()
    assert layout(after).header_length > layout(before).header_length
    assert _payload_and_trailer(after) == _payload_and_trailer(before)
    assert trailer_is_valid(after)
    assert modelcrypt.verify_signature(path, [signer]) == signer.public_key
    assert bytes(modelcrypt.load(path, identity=devices[-1], trusted_signers=[signer])) == PLAINTEXT
    modelcrypt.remove_recipients(path, KEY, [d.recipient for d in devices[:39]])
    assert bytes(modelcrypt.load(path, identity=devices[39], trusted_signers=[signer])) == PLAINTEXT
    assert modelcrypt.verify_signature(path, [signer]) == signer.public_key


# ---------------------------------------------------------------- directories

def _tree(root):
    (root / "sub").mkdir(parents=True)
    (root / "model.onnx").write_bytes(os.urandom(3 * 4096 + 9))
    (root / "sub" / "weights.bin").write_bytes(os.urandom(1000))
    (root / "config.json").write_text('{"a": 1}')


def test_signed_directory(tmp_path, signer):
    _tree(tmp_path / "src")
    members = modelcrypt.encrypt_directory(tmp_path / "src", tmp_path / "enc", KEY, signing_key=signer)
    assert sorted(members) == ["config.json", "model.onnx", "sub/weights.bin"]
    for rel in [*members, ".modelcrypt-manifest"]:
        assert modelcrypt.verify_signature(tmp_path / "enc" / rel, [signer]) == signer.public_key, rel
    assert sorted(modelcrypt.verify_directory(tmp_path / "enc", KEY, trusted_signers=[signer])) == sorted(members)
    modelcrypt.decrypt_directory(tmp_path / "enc", tmp_path / "dec", KEY, trusted_signers=[signer])
    for rel in members:
        assert (tmp_path / "dec" / rel).read_bytes() == (tmp_path / "src" / rel).read_bytes()
    other = modelcrypt.generate_signing_key()
    with pytest.raises(modelcrypt.SignatureError, match="untrusted"):
        modelcrypt.verify_directory(tmp_path / "enc", KEY, trusted_signers=[other])
    with pytest.raises(modelcrypt.SignatureError, match="untrusted"):
        modelcrypt.decrypt_directory(tmp_path / "enc", tmp_path / "dec2", KEY, trusted_signers=[other])
    assert not (tmp_path / "dec2").exists()


@pytest.mark.parametrize("member", ["model.onnx", ".modelcrypt-manifest"])
def test_signed_directory_with_a_tampered_member(tmp_path, signer, member):
    _tree(tmp_path / "src")
    modelcrypt.encrypt_directory(tmp_path / "src", tmp_path / "enc", KEY, signing_key=signer)
    target = tmp_path / "enc" / member
    data = target.read_bytes()
    target.write_bytes(flipped(data, layout(data).chunk(0).start + 3))
    with pytest.raises(modelcrypt.SignatureError, match="chunk 0"):
        modelcrypt.verify_directory(tmp_path / "enc", KEY, trusted_signers=[signer])
    with pytest.raises(modelcrypt.SignatureError):
        modelcrypt.decrypt_directory(tmp_path / "enc", tmp_path / "dec", KEY, trusted_signers=[signer])
    assert not (tmp_path / "dec").exists()
    with pytest.raises(modelcrypt.AuthenticationError):
        modelcrypt.verify_directory(tmp_path / "enc", KEY)


def test_unsigned_directory_is_refused_with_trust(tmp_path, signer):
    _tree(tmp_path / "src")
    modelcrypt.encrypt_directory(tmp_path / "src", tmp_path / "enc", KEY)
    assert len(modelcrypt.verify_directory(tmp_path / "enc", KEY)) == 3
    with pytest.raises(modelcrypt.SignatureError, match="not signed"):
        modelcrypt.verify_directory(tmp_path / "enc", KEY, trusted_signers=[signer])
    with pytest.raises(modelcrypt.SignatureError, match="not signed"):
        modelcrypt.decrypt_directory(tmp_path / "enc", tmp_path / "dec", KEY, trusted_signers=[signer])
    assert not (tmp_path / "dec").exists()


def test_signed_directory_with_one_member_replaced_by_an_unsigned_one(tmp_path, signer):
    """A key holder re-encrypts one member (same set binding) without the signing key."""
    _tree(tmp_path / "src")
    modelcrypt.encrypt_directory(tmp_path / "src", tmp_path / "enc", KEY, signing_key=signer)
    member = tmp_path / "enc" / "config.json"
    metadata = modelcrypt.inspect(member).metadata
    evil = tmp_path / "evil.json"
    evil.write_text('{"a": 2}')
    member.unlink()
    modelcrypt.encrypt_file(evil, member, KEY, metadata=metadata)
    assert modelcrypt.decrypt_directory(tmp_path / "enc", tmp_path / "dec0", KEY)  # the key alone accepts it
    assert (tmp_path / "dec0" / "config.json").read_text() == '{"a": 2}'
    with pytest.raises(modelcrypt.SignatureError, match="not signed"):
        modelcrypt.decrypt_directory(tmp_path / "enc", tmp_path / "dec", KEY, trusted_signers=[signer])
    assert not (tmp_path / "dec").exists()


# ---------------------------------------------------------------- checkpoints

def _params():
    rng = np.random.default_rng(5)
    return {f"layer{i}.weight": rng.standard_normal((40, 50)).astype(np.float32) for i in range(4)}


def test_sharded_checkpoint_is_signed(tmp_path, signer):
    params = _params()
    index = modelcrypt.save_checkpoint(params, tmp_path / "model.safetensors", KEY, max_shard_size=10_000,
                                       signing_key=signer)
    shards = sorted(p for p in tmp_path.iterdir() if p.name.endswith(".safetensors"))
    assert len(shards) == 4
    for shard in shards:
        assert modelcrypt.inspect(shard).signer == signer.public_key
        assert modelcrypt.verify_signature(shard, [signer]) == signer.public_key
    got = modelcrypt.load_distributed_checkpoint(index, KEY, trusted_signers=[signer])
    assert got.keys() == params.keys() and all(np.array_equal(got[k], params[k]) for k in params)
    some = modelcrypt.load_distributed_checkpoint(index, KEY, names=["layer2.weight"], trusted_signers=[signer])
    assert list(some) == ["layer2.weight"] and np.array_equal(some["layer2.weight"], params["layer2.weight"])
    got = modelcrypt.load_checkpoint(shards[0], KEY, trusted_signers=[signer])  # one shard on its own
    assert got and all(np.array_equal(got[k], params[k]) for k in got)
    data = shards[1].read_bytes()
    shards[1].write_bytes(flipped(data, layout(data).chunk(0).stop - 20))
    with pytest.raises(modelcrypt.SignatureError):
        modelcrypt.load_distributed_checkpoint(index, KEY, trusted_signers=[signer])
    with pytest.raises(modelcrypt.AuthenticationError):
        modelcrypt.load_distributed_checkpoint(index, KEY)


def test_unsigned_checkpoint_is_refused_with_trust(tmp_path, signer):
    path = modelcrypt.save_checkpoint(_params(), tmp_path / "m.safetensors", KEY)
    assert len(modelcrypt.load_checkpoint(path, KEY)) == 4
    for names in (None, ["layer0.weight"]):
        with pytest.raises(modelcrypt.SignatureError, match="not signed"):
            modelcrypt.load_checkpoint(path, KEY, names=names, trusted_signers=[signer])
    with pytest.raises(modelcrypt.SignatureError, match="not signed"):
        modelcrypt.load_distributed_checkpoint([path], KEY, trusted_signers=[signer])


def test_single_checkpoint_names_with_trust(tmp_path, signer):
    params = _params()
    path = modelcrypt.save_checkpoint(params, tmp_path / "m.safetensors", KEY, signing_key=signer)
    got = modelcrypt.load_checkpoint(path, KEY, names=["layer3.weight"], trusted_signers=[signer])
    assert list(got) == ["layer3.weight"] and np.array_equal(got["layer3.weight"], params["layer3.weight"])


def test_model_checkpoint_series_is_signed(tmp_path, signer):
    config = modelcrypt.CheckpointConfig(save_checkpoint_steps=2, keep_checkpoint_max=2, enc_key=KEY,
                                         signing_key=signer)
    assert "MODELCRYPT-SIGNING-KEY" not in repr(config) and signer.public_key in repr(config)
    saver = modelcrypt.ModelCheckpoint("net", tmp_path, config)
    params = _params()
    paths = [saver.step(params, s) for s in range(1, 7)]
    saved = [p for p in paths if p is not None]
    assert len(saved) == 3 and len(saver.checkpoints()) == 2
    for p in saver.checkpoints():
        assert modelcrypt.verify_signature(p, [signer]) == signer.public_key
        got = modelcrypt.load_checkpoint(p, KEY, trusted_signers=[signer])
        assert np.array_equal(got["layer1.weight"], params["layer1.weight"])
    with pytest.raises(modelcrypt.SignatureError):
        modelcrypt.load_checkpoint(saver.latest, KEY, trusted_signers=[modelcrypt.generate_signing_key()])


# ---------------------------------------------------------------- key rotation

def test_reencrypt_to_signs_the_new_file_only_when_asked(tmp_path, signer):
    src = tmp_path / "old.mcx"
    src.write_bytes(modelcrypt.encrypt_bytes(PLAINTEXT, KEY, chunk_size=CS, signing_key=signer))
    new_key, new_signer = os.urandom(32), modelcrypt.generate_signing_key()
    with modelcrypt.open_encrypted(src, KEY, trusted_signers=[signer]) as f:
        f.reencrypt_to(tmp_path / "signed.mcx", new_key, signing_key=new_signer)
        f.reencrypt_to(tmp_path / "plain.mcx", new_key)
    assert modelcrypt.verify_signature(tmp_path / "signed.mcx", [new_signer]) == new_signer.public_key
    assert bytes(modelcrypt.load(tmp_path / "signed.mcx", new_key, trusted_signers=[new_signer])) == PLAINTEXT
    with pytest.raises(modelcrypt.SignatureError, match="untrusted"):
        modelcrypt.load(tmp_path / "signed.mcx", new_key, trusted_signers=[signer])
    # a new payload is not covered by the old signature: unsigned unless signed again
    assert modelcrypt.inspect(tmp_path / "plain.mcx").version in (1, 2)
    assert bytes(modelcrypt.load(tmp_path / "plain.mcx", new_key)) == PLAINTEXT
    with pytest.raises(modelcrypt.SignatureError, match="not signed"):
        modelcrypt.load(tmp_path / "plain.mcx", new_key, trusted_signers=[signer])


def test_reencrypt_to_recipients_and_signed(tmp_path, signer, device):
    src = tmp_path / "old.mcx"
    src.write_bytes(modelcrypt.encrypt_bytes(PLAINTEXT, KEY, chunk_size=CS))
    with modelcrypt.open_encrypted(src, KEY) as f:
        f.reencrypt_to(tmp_path / "new.mcx", recipients=[device.recipient], signing_key=signer)
    assert bytes(modelcrypt.load(tmp_path / "new.mcx", identity=device, trusted_signers=[signer])) == PLAINTEXT
    shutil.copy(tmp_path / "new.mcx", tmp_path / "copy.mcx")
    assert modelcrypt.verify_signature(tmp_path / "copy.mcx", [signer]) == signer.public_key
