"""modelcrypt.inspect, verify and verify_signature take URLs as the command line does: against a real
S3-compatible server (moto's server mode on 127.0.0.1)."""

from __future__ import annotations

import os

import pytest

import modelcrypt
from s3_server import BUCKET, s3  # noqa: F401 (a fixture)

KEY = bytes(range(32))


@pytest.fixture(scope="module")
def plain():
    return os.urandom(3 * (1 << 20) + 1234)


def _put(client, name, data):
    client.put_object(Bucket=BUCKET, Key=name, Body=data)
    return f"s3://{BUCKET}/{name}"


def test_inspect_url_without_and_with_key(s3, plain):
    client, options = s3
    url = _put(client, "m.mcx", modelcrypt.encrypt_bytes(plain, KEY, metadata={"model": "m"}, chunk_size=1 << 20))
    claimed = modelcrypt.inspect(url, storage_options=options)
    assert (claimed.plaintext_length, claimed.chunk_count, claimed.authenticated) == (len(plain), 4, False)
    assert claimed.path == url and claimed.metadata == {"model": "m"}
    checked = modelcrypt.inspect(url, KEY, storage_options=options)
    assert checked.authenticated and checked.opened_by == "key" and checked.metadata == {"model": "m"}
    with pytest.raises(modelcrypt.KeyMismatchError):
        modelcrypt.inspect(url, bytes(32), storage_options=options)


def test_verify_url_passes_and_fails_closed(s3, plain):
    client, options = s3
    blob = modelcrypt.encrypt_bytes(plain, KEY, chunk_size=1 << 20)
    url = _put(client, "v.mcx", blob)
    seen = []
    assert modelcrypt.verify(url, KEY, storage_options=options, progress=seen.append) is None
    assert seen[-1] == len(plain)
    with pytest.raises(modelcrypt.KeyMismatchError):
        modelcrypt.verify(url, bytes(32), storage_options=options)
    tampered = bytearray(blob)
    tampered[-100] ^= 1
    bad = _put(client, "v-tampered.mcx", bytes(tampered))
    with pytest.raises(modelcrypt.AuthenticationError, match="v-tampered.mcx"):
        modelcrypt.verify(bad, KEY, storage_options=options)
    truncated = _put(client, "v-short.mcx", blob[:-5])
    with pytest.raises((modelcrypt.AuthenticationError, modelcrypt.FormatError)):
        modelcrypt.verify(truncated, KEY, storage_options=options)
    with pytest.raises(FileNotFoundError):
        modelcrypt.verify(f"s3://{BUCKET}/missing.mcx", KEY, storage_options=options)


def test_verify_url_with_identity_and_signers(s3, plain, tmp_path):
    client, options = s3
    ident = modelcrypt.generate_identity()
    signer = modelcrypt.generate_signing_key()
    (tmp_path / "m").write_bytes(plain)
    modelcrypt.encrypt_file(tmp_path / "m", tmp_path / "m.mcx", recipients=[ident.recipient], signing_key=signer)
    url = _put(client, "signed.mcx", (tmp_path / "m.mcx").read_bytes())
    modelcrypt.verify(url, identity=ident, trusted_signers=[signer.public_key], storage_options=options)
    assert modelcrypt.verify_signature(url, [signer.public_key], storage_options=options) == signer.public_key
    other = modelcrypt.generate_signing_key()
    with pytest.raises(modelcrypt.SignatureError):
        modelcrypt.verify_signature(url, [other.public_key], storage_options=options)
    with pytest.raises(modelcrypt.SignatureError):
        modelcrypt.verify(url, identity=ident, trusted_signers=[other.public_key], storage_options=options)


def test_url_arguments_are_checked(s3, tmp_path):
    _, options = s3
    url = f"s3://{BUCKET}/x.mcx"
    with pytest.raises(ValueError, match="legacy|modelcrypt"):
        modelcrypt.verify(url, KEY, format="mindspore", storage_options=options)
    local = tmp_path / "a.mcx"
    local.write_bytes(modelcrypt.encrypt_bytes(b"x", KEY))
    for call in (lambda: modelcrypt.verify(local, KEY, storage_options=options),
                 lambda: modelcrypt.inspect(local, storage_options=options),
                 lambda: modelcrypt.verify_signature(local, ["x"], storage_options=options)):
        with pytest.raises(ValueError, match="storage_options apply to URLs"):
            call()
