"""load_checkpoint of a sharded checkpoint (index + shards, save_checkpoint with max_shard_size) from
S3 (issue 17), against a real S3-compatible server on 127.0.0.1 (moto) through s3fs: the index and
the shards are read through fsspec, by range, and checked as a set like a local load."""

from __future__ import annotations

import numpy as np
import pytest

import modelcrypt
from s3_server import BUCKET, s3  # noqa: F401 (the fixture)

KEY = bytes(range(32))


def _state(seed):
    rng = np.random.default_rng(seed)
    return {f"layer{i}.weight": rng.standard_normal((64, 64), dtype=np.float32) for i in range(6)} | {
        "lm_head.weight": rng.standard_normal((128, 64), dtype=np.float32)}


def _upload_dir(options, local_dir, prefix):
    import s3fs

    fs = s3fs.S3FileSystem(**options)
    fs.put(str(local_dir) + "/", f"{BUCKET}/{prefix}/", recursive=True)
    return fs


def _saved(tmp_path, name, seed):
    d = tmp_path / name
    d.mkdir()
    state = _state(seed)
    modelcrypt.save_checkpoint(state, d / "model.safetensors", KEY, max_shard_size=40_000)
    return d, state


def test_sharded_checkpoint_from_s3(s3, tmp_path):
    client, options = s3
    d, state = _saved(tmp_path, "ckpt", 1)
    assert len(list(d.glob("model-*-of-*.safetensors"))) >= 3
    _upload_dir(options, d, "ckpt")
    url = f"s3://{BUCKET}/ckpt/model.safetensors.index.json"
    one = modelcrypt.load_checkpoint(url, KEY, names=["lm_head.weight", "layer0.weight"], storage_options=options)
    assert sorted(one) == ["layer0.weight", "lm_head.weight"]
    np.testing.assert_array_equal(one["lm_head.weight"], state["lm_head.weight"])
    np.testing.assert_array_equal(one["layer0.weight"], state["layer0.weight"])
    everything = modelcrypt.load_checkpoint(url, KEY, storage_options=options)
    assert sorted(everything) == sorted(state)
    for name, arr in state.items():
        np.testing.assert_array_equal(everything[name], arr)
    with pytest.raises(KeyError):
        modelcrypt.load_checkpoint(url, KEY, names=["nope"], storage_options=options)
    with pytest.raises(modelcrypt.KeyMismatchError):
        modelcrypt.load_checkpoint(url, bytes(32), names=["layer0.weight"], storage_options=options)


def test_shard_from_another_checkpoint_is_a_set_mismatch(s3, tmp_path):
    client, options = s3
    d, _ = _saved(tmp_path, "a", 2)
    other, _ = _saved(tmp_path, "b", 3)
    shard = sorted(d.glob("model-*-of-*.safetensors"))[-1].name  # not the one lm_head... any shard of the set
    (d / shard).write_bytes((other / shard).read_bytes())  # same name, same key, another save
    _upload_dir(options, d, "mixed")
    url = f"s3://{BUCKET}/mixed/model.safetensors.index.json"
    with pytest.raises(modelcrypt.SetMismatchError):
        modelcrypt.load_checkpoint(url, KEY, names=["layer0.weight"], storage_options=options)
    with pytest.raises(modelcrypt.SetMismatchError):
        modelcrypt.load_checkpoint(url, KEY, storage_options=options)


def test_missing_shard_and_bad_index(s3, tmp_path):
    client, options = s3
    d, _ = _saved(tmp_path, "c", 4)
    fs = _upload_dir(options, d, "holes")
    shard = sorted(d.glob("model-*-of-*.safetensors"))[0].name
    fs.rm(f"{BUCKET}/holes/{shard}")
    with pytest.raises(FileNotFoundError):
        modelcrypt.load_checkpoint(f"s3://{BUCKET}/holes/model.safetensors.index.json", KEY, names=["lm_head.weight"],
                                   storage_options=options)
    client.put_object(Bucket=BUCKET, Key="bad/model.safetensors.index.json", Body=b"{not json")
    with pytest.raises(modelcrypt.FormatError):
        modelcrypt.load_checkpoint(f"s3://{BUCKET}/bad/model.safetensors.index.json", KEY, storage_options=options)
