"""Sets of files are bound together (docs/FORMAT.md, "Sets of files"): the shards of one
save_checkpoint, a ModelCheckpoint series, an encrypted directory. Each member authenticates the
set's id, its own name and its place; loaders refuse a member from another save, a missing,
duplicated or renamed member, an edited index, and a checkpoint renamed to another step.
Real files, real OpenSSL; no mocks."""

from __future__ import annotations

import json
import os
import pathlib
import shutil

import numpy as np
import pytest

import modelcrypt
from modelcrypt import SetMismatchError

KEY = bytes(range(32))


def _params(value: float = 1.0) -> dict:
    p = {f"w{i}": np.full(1000, value + i, dtype=np.float32) for i in range(4)}  # 4000 bytes each
    p["b"] = np.full(3, value, dtype=np.float32)
    return p


def _save(directory: pathlib.Path, value: float = 1.0) -> tuple[dict, str]:
    directory.mkdir(parents=True, exist_ok=True)
    params = _params(value)
    index = modelcrypt.save_checkpoint(params, directory / "model.safetensors", KEY, max_shard_size=8000)
    return params, index


def _shards(index: str) -> list[str]:
    return sorted(set(json.loads(pathlib.Path(index).read_text())["weight_map"].values()))


def _weight_map(index: str) -> dict:
    return json.loads(pathlib.Path(index).read_text())["weight_map"]


def _same(got: dict, want: dict) -> None:
    assert list(sorted(got)) == list(sorted(want))
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])


# ------------------------------------------------------------------ shards of one save


def test_each_shard_authenticates_its_set_name_and_place(tmp_path):
    params, index = _save(tmp_path)
    shards = _shards(index)
    assert len(shards) >= 2
    ids = set()
    for i, name in enumerate(shards, 1):
        with modelcrypt.open_encrypted(tmp_path / name, KEY) as f:
            md = f.metadata
        assert md["modelcrypt.member"] == name
        assert md["modelcrypt.member_index"] == str(i)
        assert md["modelcrypt.member_count"] == str(len(shards))
        ids.add(md["modelcrypt.set"])
    assert len(ids) == 1
    assert json.loads(pathlib.Path(index).read_text())["metadata"]["modelcrypt.set"] in ids
    _same(modelcrypt.load_distributed_checkpoint(index, KEY), params)
    _same(modelcrypt.load_distributed_checkpoint([str(tmp_path / s) for s in shards], KEY), params)


def test_shard_from_another_save_is_refused(tmp_path):
    _, index = _save(tmp_path / "a", 1.0)
    _save(tmp_path / "b", 2.0)  # same layout, same names, same key
    victim = _shards(index)[1]
    shutil.copyfile(tmp_path / "b" / victim, tmp_path / "a" / victim)
    with pytest.raises(SetMismatchError, match="another save"):
        modelcrypt.load_distributed_checkpoint(index, KEY)
    some = next(n for n, s in _weight_map(index).items() if s == victim)
    with pytest.raises(SetMismatchError, match="another save"):
        modelcrypt.load_distributed_checkpoint(index, KEY, names=[some])
    with pytest.raises(SetMismatchError, match="another save"):
        modelcrypt.load_distributed_checkpoint([str(tmp_path / "a" / s) for s in _shards(index)], KEY)


def test_index_from_another_save_is_refused(tmp_path):
    _, index_a = _save(tmp_path / "a", 1.0)
    _, index_b = _save(tmp_path / "b", 2.0)
    shutil.copyfile(index_b, index_a)  # identical weight map, other set id
    with pytest.raises(SetMismatchError, match="another save"):
        modelcrypt.load_distributed_checkpoint(index_a, KEY, names=["b"])


def test_missing_shard_is_refused_even_when_not_needed(tmp_path):
    _, index = _save(tmp_path)
    wm = _weight_map(index)
    needed = wm["b"]
    other = next(s for s in _shards(index) if s != needed)
    os.unlink(tmp_path / other)
    with pytest.raises(SetMismatchError, match="missing"):
        modelcrypt.load_distributed_checkpoint(index, KEY, names=["b"])
    shards = [str(tmp_path / s) for s in _shards(index) if s != other]
    with pytest.raises(SetMismatchError, match="missing"):
        modelcrypt.load_distributed_checkpoint(shards, KEY)


def test_duplicated_shard_is_refused(tmp_path):
    _, index = _save(tmp_path)
    wm = _weight_map(index)
    first, second = _shards(index)[:2]
    shutil.copyfile(tmp_path / first, tmp_path / second)  # shard 1 twice, under two names
    wanted = [n for n, s in wm.items() if s == first]
    with pytest.raises(SetMismatchError, match="renamed or copied"):
        modelcrypt.load_distributed_checkpoint(index, KEY, names=wanted)
    elsewhere = tmp_path / "copy"
    elsewhere.mkdir()
    shutil.copyfile(tmp_path / first, elsewhere / first)
    shards = [str(tmp_path / s) for s in _shards(index) if s != second] + [str(elsewhere / first)]
    with pytest.raises(SetMismatchError, match="duplicated"):
        modelcrypt.load_distributed_checkpoint(shards, KEY, names=wanted)


def test_renamed_shards_are_refused(tmp_path):
    _, index = _save(tmp_path)
    first, second = _shards(index)[:2]
    os.rename(tmp_path / first, tmp_path / "tmp")
    os.rename(tmp_path / second, tmp_path / first)
    os.rename(tmp_path / "tmp", tmp_path / second)
    with pytest.raises(SetMismatchError, match="renamed"):
        modelcrypt.load_distributed_checkpoint(index, KEY)
    # a list of shard paths is checked against the names the shards were saved under, too
    os.rename(tmp_path / first, tmp_path / "renamed.safetensors")
    shards = [str(tmp_path / "renamed.safetensors")] + [str(tmp_path / s) for s in _shards(index) if s != first]
    with pytest.raises(SetMismatchError, match="renamed"):
        modelcrypt.load_distributed_checkpoint(shards, KEY)


def test_unbound_shard_in_a_bound_set_is_refused(tmp_path):
    """Removing a binding does not help: a shard re-encrypted without set metadata (same key, same
    plaintext) is refused in a set whose other shards are bound."""
    _, index = _save(tmp_path)
    victim = _shards(index)[1]
    plain = tmp_path / "plain.safetensors"
    modelcrypt.decrypt_file(tmp_path / victim, plain, KEY)
    modelcrypt.encrypt_file(plain, tmp_path / victim, KEY)
    with pytest.raises(SetMismatchError, match="no set binding"):
        modelcrypt.load_distributed_checkpoint(index, KEY)


def test_edited_index_is_refused(tmp_path):
    """The index is plaintext, but every shard authenticates the digest of the weight map it was
    saved with: swapping two tensors' shards in the index is refused, even for a name it kept."""
    _, index = _save(tmp_path)
    wm = _weight_map(index)
    a = next(n for n in sorted(wm) if wm[n] == _shards(index)[0])
    z = next(n for n in sorted(wm) if wm[n] == _shards(index)[-1])
    doc = json.loads(pathlib.Path(index).read_text())
    doc["weight_map"] = dict(wm, **{a: wm[z], z: wm[a]})
    pathlib.Path(index).write_text(json.dumps(doc))
    untouched = next(n for n in sorted(wm) if n not in (a, z))
    with pytest.raises(SetMismatchError, match="weight map does not match"):
        modelcrypt.load_distributed_checkpoint(index, KEY, names=[untouched])


def test_unbound_checkpoints_still_load(tmp_path):
    """Plaintext shards and custom-cipher shards carry no authenticated metadata and load as before."""
    params = _params()
    index = modelcrypt.save_checkpoint(params, tmp_path / "plain.safetensors", max_shard_size=8000)
    assert "modelcrypt.set" not in json.loads(pathlib.Path(index).read_text())["metadata"]
    _same(modelcrypt.load_distributed_checkpoint(index), params)


# ------------------------------------------------------------------ ModelCheckpoint series


def test_model_checkpoint_binds_name_and_step(tmp_path):
    cb = modelcrypt.ModelCheckpoint("net", tmp_path, modelcrypt.CheckpointConfig(enc_key=KEY, keep_checkpoint_max=10))
    for step in (1, 2, 3):
        cb.step(_params(step), step)
    with modelcrypt.open_encrypted(tmp_path / "net-2.ckpt", KEY) as f:
        md = f.metadata
    assert md["modelcrypt.step"] == "2" and md["modelcrypt.member"] == "net-2.ckpt"
    assert md["modelcrypt.set"] == cb.series_id
    _same(modelcrypt.load_checkpoint(tmp_path / "net-2.ckpt", KEY), _params(2))


def test_checkpoint_renamed_to_another_step_is_refused(tmp_path):
    cb = modelcrypt.ModelCheckpoint("net", tmp_path, modelcrypt.CheckpointConfig(enc_key=KEY, keep_checkpoint_max=10))
    cb.step(_params(1), 1)
    cb.step(_params(2), 2)
    os.replace(tmp_path / "net-1.ckpt", tmp_path / "net-2.ckpt")  # roll back, pretending to be step 2
    assert cb.latest == str(tmp_path / "net-2.ckpt")
    with pytest.raises(SetMismatchError, match="authenticated step 1"):
        modelcrypt.load_checkpoint(cb.latest, KEY)
    with pytest.raises(SetMismatchError, match="authenticated step 1"):
        modelcrypt.load_checkpoint(cb.latest, KEY, names=["b"])
    os.replace(tmp_path / "net-2.ckpt", tmp_path / "best.ckpt")
    with pytest.raises(SetMismatchError, match="renamed"):
        modelcrypt.load_checkpoint(tmp_path / "best.ckpt", KEY)


def _xor_enc(model_stream, key):
    pad = np.resize(np.frombuffer(bytes(key), np.uint8), len(model_stream))
    return (np.frombuffer(model_stream, np.uint8) ^ pad).tobytes()


def _xor_dec(cipher_file, key):
    with open(cipher_file, "rb") as f:
        return _xor_enc(f.read(), key)


def test_unbound_custom_cipher_shards_keep_the_per_tensor_index_checks(tmp_path):
    """Custom-cipher shards have no authenticated metadata, so they are not a bound set; they load
    as before, and an index that lies about a requested tensor is still caught by its shard's header."""
    params = _params()
    index = modelcrypt.save_checkpoint(params, tmp_path / "x.safetensors", KEY, _xor_enc, max_shard_size=8000)
    assert "modelcrypt.set" not in json.loads(pathlib.Path(index).read_text())["metadata"]
    _same(modelcrypt.load_distributed_checkpoint(index, KEY, _xor_dec), params)
    doc = json.loads(pathlib.Path(index).read_text())
    wm = doc["weight_map"]
    other = next(s for s in sorted(set(wm.values())) if s != wm["b"])
    doc["weight_map"] = dict(wm, b=other)
    pathlib.Path(index).write_text(json.dumps(doc))
    with pytest.raises(modelcrypt.FormatError, match="'b'"):
        modelcrypt.load_distributed_checkpoint(index, KEY, _xor_dec, names=["b"])
