"""Encrypted models in object storage (issue 17), against a real S3-compatible server started here on
127.0.0.1 (moto's server mode) through s3fs/fsspec: load, random access and failures. Nothing
reaches beyond loopback."""

from __future__ import annotations

import importlib.util
import os

import pytest

import modelcrypt
from s3_server import BUCKET, s3  # noqa: F401 (a fixture)

KEY = bytes(range(32))
CHUNK = 4096
@pytest.fixture(scope="module")
def plain():
    return os.urandom(6 * CHUNK + 999)


def _put(client, name, data):
    client.put_object(Bucket=BUCKET, Key=name, Body=data)
    return f"s3://{BUCKET}/{name}"


def test_load_from_s3(s3, plain):
    client, options = s3
    url = _put(client, "m.mcx", modelcrypt.encrypt_bytes(plain, KEY, chunk_size=CHUNK, metadata={"v": "1"}))
    with modelcrypt.load(url, KEY, storage_options=options) as buf:
        assert bytes(buf) == plain and buf.metadata == {"v": "1"}
    with modelcrypt.load_range(url, KEY, offset=CHUNK + 3, length=2 * CHUNK, storage_options=options) as buf:
        assert bytes(buf) == plain[CHUNK + 3:3 * CHUNK + 3]
    ident = modelcrypt.generate_identity()
    url2 = _put(client, "v2.mcx", modelcrypt.encrypt_bytes(plain, recipients=[ident.recipient], chunk_size=CHUNK))
    with modelcrypt.load(url2, identity=ident, storage_options=options) as buf:
        assert bytes(buf) == plain


def test_s3_failures_are_typed(s3, plain):
    client, options = s3
    blob = modelcrypt.encrypt_bytes(plain, KEY, chunk_size=CHUNK)
    url = _put(client, "f.mcx", blob)
    with pytest.raises(modelcrypt.KeyMismatchError):
        modelcrypt.load(url, bytes(32), storage_options=options)
    with pytest.raises(FileNotFoundError):
        modelcrypt.load(f"s3://{BUCKET}/missing.mcx", KEY, storage_options=options)
    bad = bytearray(blob)
    bad[len(bad) // 2] ^= 1
    with pytest.raises(modelcrypt.AuthenticationError):
        modelcrypt.load(_put(client, "bad.mcx", bytes(bad)), KEY, storage_options=options)
    with pytest.raises(modelcrypt.AuthenticationError):
        modelcrypt.load(_put(client, "short.mcx", blob[:-100]), KEY, storage_options=options)


def test_object_replaced_under_an_open_handle(s3):
    """A handle pins the version (ETag) of its first read: after the object is replaced by another
    encryption of the same plaintext (same size), a later range past the first read's bytes is a
    SourceChangedError, never bytes of the new object."""
    client, options = s3
    plain = os.urandom(2 * modelcrypt._sources.HEAD_BYTES)
    url = _put(client, "replaced.mcx", modelcrypt.encrypt_bytes(plain, KEY, chunk_size=CHUNK))
    with modelcrypt.open_encrypted(url, KEY, storage_options=options) as f:
        with f.read_range(0, 10) as b:
            assert bytes(b) == plain[:10]
        _put(client, "replaced.mcx", modelcrypt.encrypt_bytes(plain, KEY, chunk_size=CHUNK))
        with pytest.raises(modelcrypt.SourceChangedError, match="changed while being read"):
            f.read_range(len(plain) - 10, 10)


def test_missing_filesystem_package_says_what_to_install():
    if importlib.util.find_spec("gcsfs") is not None:
        pytest.skip("gcsfs is installed here; the message is for machines without it (no request leaves loopback)")
    with pytest.raises(ModuleNotFoundError, match="gcsfs"):
        modelcrypt.load("gs://bucket/model.mcx", KEY)


def test_load_checkpoint_from_s3_by_name(s3):
    import numpy as np

    client, options = s3
    rng = np.random.default_rng(5)
    params = {f"layer{i}.weight": rng.standard_normal((64, 64)).astype(np.float32) for i in range(8)}
    import tempfile  # save_checkpoint writes files (uploads: issue 17, to come): encrypt locally, then upload

    with tempfile.TemporaryDirectory() as d:
        modelcrypt.save_checkpoint(params, os.path.join(d, "c.safetensors"), KEY, metadata={"run": "3"})
        with open(os.path.join(d, "c.safetensors"), "rb") as f:
            url = _put(client, "ckpt/c.safetensors", f.read())
    state, meta = modelcrypt.load_checkpoint(url, KEY, storage_options=options, with_metadata=True)
    assert meta == {"run": "3"} and all(np.array_equal(state[k], v) for k, v in params.items())
    one = modelcrypt.load_checkpoint(url, KEY, names=["layer5.weight"], storage_options=options)
    assert list(one) == ["layer5.weight"] and np.array_equal(one["layer5.weight"], params["layer5.weight"])
    with pytest.raises(KeyError, match="nope"):
        modelcrypt.load_checkpoint(url, KEY, names=["nope"], storage_options=options)
    with pytest.raises(ValueError, match="encrypted"):
        modelcrypt.load_checkpoint(url, storage_options=options)
