"""Checkpoints that hold a training state (issue 13): what torch.save users pass — nested dicts
(optimizer state dicts with int keys), lists, tuples, Python scalars and strings alongside tensors
— saved without pickle and restored with the same structure and types; the authenticated metadata
back from load_checkpoint; re-saving with fewer shards leaves no stale shards; clear errors for an
index or a non-checkpoint passed to load_checkpoint."""

import json
import math
import os
import struct

import numpy as np
import pytest

import modelcrypt

import torch  # the training-state tests use real PyTorch optimizers (CI installs torch)

import modelcrypt.torch

KEY = bytes(range(32))


def training_state():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    opt = torch.optim.Adam(model.parameters(), lr=0.01, betas=(0.9, 0.99))
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(5, 4)).square().sum().backward()
        opt.step()
    return model, opt


def test_nested_state_round_trip_with_types(tmp_path):
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    state = {
        "weights": {"fc.weight": arr, "fc.bias": np.zeros(3, np.float64)},
        "groups": [{"lr": 0.1, "params": [0, 1]}, {"lr": 1e-300, "params": [2]}],
        "by_id": {0: {"m": np.ones(2, np.int64)}, 7: None},
        "pair": ("adam", (0.9, 0.999)),
        "flags": [True, False], "count": 2**70, "neg": -3, "name": "run-ü",
        "special": [float("nan"), float("inf"), -0.0, 0.1 + 0.2],
        "empty": {}, "nothing": [],
    }
    path = tmp_path / "s.ckpt"
    modelcrypt.save_checkpoint(state, path, KEY)
    back = modelcrypt.load_checkpoint(path, KEY)
    assert set(back) == set(state)
    np.testing.assert_array_equal(back["weights"]["fc.weight"], arr)
    assert back["weights"]["fc.bias"].dtype == np.float64
    assert back["groups"] == [{"lr": 0.1, "params": [0, 1]}, {"lr": 1e-300, "params": [2]}]
    assert list(back["by_id"]) == [0, 7] and all(type(k) is int for k in back["by_id"])
    assert back["by_id"][7] is None and back["by_id"][0]["m"].tolist() == [1, 1]
    assert back["pair"] == ("adam", (0.9, 0.999)) and type(back["pair"][1]) is tuple
    assert back["flags"] == [True, False] and all(type(b) is bool for b in back["flags"])
    assert back["count"] == 2**70 and type(back["count"]) is int and back["neg"] == -3 and back["name"] == "run-ü"
    bits = [struct.pack("<d", v) for v in back["special"]]
    assert bits == [struct.pack("<d", v) for v in state["special"]]  # bit-exact: nan, inf, -0.0, 0.30000000000000004
    assert back["empty"] == {} and back["nothing"] == []


def test_optimizer_state_restores_into_torch(tmp_path):
    model, opt = training_state()
    state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 4}
    path = tmp_path / "train.ckpt"
    modelcrypt.save_checkpoint(state, path, KEY)
    back = modelcrypt.torch.load_state_dict(path, KEY)
    model2, _ = training_state()
    with torch.no_grad():
        for p in model2.parameters():
            p.zero_()
    model2.load_state_dict(back["model"])
    opt2 = torch.optim.Adam(model2.parameters(), lr=0.5)
    opt2.load_state_dict(back["optimizer"])
    ref, got = opt.state_dict(), opt2.state_dict()
    assert got["param_groups"] == ref["param_groups"]
    assert set(got["state"]) == set(ref["state"])
    for i in ref["state"]:
        for name, value in ref["state"][i].items():
            assert torch.equal(got["state"][i][name], value), (i, name)
    assert back["epoch"] == 4
    for a, b in zip(model.parameters(), model2.parameters()):
        assert torch.equal(a, b)


def test_partial_load_by_dotted_name(tmp_path):
    model, opt = training_state()
    path = tmp_path / "train.ckpt"
    modelcrypt.save_checkpoint({"model": model.state_dict(), "optimizer": opt.state_dict()}, path, KEY)
    one = modelcrypt.load_checkpoint(path, KEY, names=["optimizer.state.0.exp_avg", "model.0.weight"])
    assert list(one) == ["optimizer.state.0.exp_avg", "model.0.weight"]
    assert np.array_equal(one["optimizer.state.0.exp_avg"], opt.state_dict()["state"][0]["exp_avg"].numpy())
    with pytest.raises(KeyError):
        modelcrypt.load_checkpoint(path, KEY, names=["optimizer.state.9.exp_avg"])


def test_names_that_would_collide_are_refused(tmp_path):
    t = np.zeros(2, np.float32)
    with pytest.raises(ValueError, match="'a.b'"):
        modelcrypt.save_checkpoint({"a.b": t, "a": {"b": t}}, tmp_path / "x.ckpt", KEY)
    assert not (tmp_path / "x.ckpt").exists()


@pytest.mark.parametrize("value", [{1, 2}, object(), b"bytes", 1j])
def test_values_that_would_need_pickle_are_refused(tmp_path, value):
    with pytest.raises(TypeError, match="no pickle"):
        modelcrypt.save_checkpoint({"w": np.zeros(1), "x": value}, tmp_path / "x.ckpt", KEY)


def test_flat_checkpoints_are_unchanged_safetensors(tmp_path):
    import safetensors.numpy
    from safetensors import safe_open

    path = tmp_path / "flat.safetensors"
    modelcrypt.save_checkpoint({"a": np.arange(3, dtype=np.float32)}, path, metadata={"epoch": "1"})
    with safe_open(str(path), framework="np") as f:
        assert f.metadata() == {"epoch": "1"}
    nested = tmp_path / "nested.safetensors"
    modelcrypt.save_checkpoint({"a": np.arange(3, dtype=np.float32), "step": 5}, nested)
    loaded = safetensors.numpy.load_file(str(nested))  # still a valid safetensors file for other tools
    assert list(loaded) == ["a"]
    with safe_open(str(nested), framework="np") as f:
        assert json.loads(f.metadata()["modelcrypt.structure"])["t"] == "dict"


def test_with_metadata_returns_the_authenticated_metadata(tmp_path):
    path = tmp_path / "m.ckpt"
    modelcrypt.save_checkpoint({"w": np.ones(2), "step": 3}, path, KEY, metadata={"epoch": "3", "run": "x"})
    state, metadata = modelcrypt.load_checkpoint(path, KEY, with_metadata=True)
    assert metadata == {"epoch": "3", "run": "x"} and state["step"] == 3
    flat, md = modelcrypt.load_checkpoint(path, KEY, names=["w"], with_metadata=True)
    assert list(flat) == ["w"] and md == {"epoch": "3", "run": "x"}
    with pytest.raises(ValueError, match="reserved"):
        modelcrypt.save_checkpoint({"w": np.ones(1)}, path, KEY, metadata={"modelcrypt.structure": "{}"})
    with pytest.raises(TypeError):
        modelcrypt.load_checkpoint(path, KEY, with_metadata="yes")


def test_malformed_structure_in_a_plain_file_is_a_format_error(tmp_path):
    path = tmp_path / "bad.safetensors"
    header = json.dumps({"__metadata__": {"modelcrypt.structure": '{"t":"dict","items":[["w",{"t":"tensor","name":"zz"}]]}'},
                         "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    header += b" " * (-len(header) % 8)
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 4)
    with pytest.raises(modelcrypt.FormatError, match="structure"):
        modelcrypt.load_checkpoint(path)


def test_sharded_training_state(tmp_path):
    model, opt = training_state()
    state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": 9}
    index = modelcrypt.save_checkpoint(state, tmp_path / "big.ckpt", KEY, max_shard_size=64)
    back = modelcrypt.load_distributed_checkpoint(index, KEY)
    assert back["step"] == 9 and set(back["optimizer"]["state"]) == set(opt.state_dict()["state"])


def _shards(directory):
    return sorted(n for n in os.listdir(directory) if "-of-" in n)


def test_resave_with_fewer_shards_leaves_no_stale_shards(tmp_path):
    tensors = {f"t{i}": np.full(256, i, np.float32) for i in range(8)}  # 1 KiB each
    index = modelcrypt.save_checkpoint(tensors, tmp_path / "model.safetensors", KEY, max_shard_size=1024)
    assert len(_shards(tmp_path)) == 8
    (tmp_path / "model-00009-of-00009.safetensors.bak").write_bytes(b"not ours")  # user files stay
    (tmp_path / "notes.txt").write_text("keep")
    modelcrypt.save_checkpoint(tensors, tmp_path / "model.safetensors", KEY, max_shard_size=4096)
    assert _shards(tmp_path) == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                                 "model-00009-of-00009.safetensors.bak"]
    back = modelcrypt.load_distributed_checkpoint(index, KEY)
    assert all(np.array_equal(back[k], v) for k, v in tensors.items())
    # into one file: the earlier index and its shards go too (they would shadow the new file)
    modelcrypt.save_checkpoint(tensors, tmp_path / "model.safetensors", KEY)
    assert sorted(os.listdir(tmp_path)) == ["model-00009-of-00009.safetensors.bak", "model.safetensors", "notes.txt"]


def test_load_checkpoint_of_an_index_points_to_load_distributed_checkpoint(tmp_path):
    index = modelcrypt.save_checkpoint({f"t{i}": np.zeros(256, np.float32) for i in range(3)},
                                       tmp_path / "m.safetensors", KEY, max_shard_size=1024)
    with pytest.raises(modelcrypt.FormatError, match="load_distributed_checkpoint"):
        modelcrypt.load_checkpoint(index, KEY)


@pytest.mark.parametrize("encrypted", [True, False])
def test_load_checkpoint_of_a_non_checkpoint_says_so(tmp_path, encrypted):
    path = tmp_path / "model.onnx.mcx"
    data = b"\x08\x07\x12\x04onnx" + os.urandom(5000)  # not a safetensors image
    if encrypted:
        path.write_bytes(modelcrypt.encrypt_bytes(data, KEY))
    else:
        path.write_bytes(data)
    with pytest.raises(modelcrypt.FormatError, match="not a checkpoint") as info:
        modelcrypt.load_checkpoint(path, KEY if encrypted else None)
    assert "modelcrypt.load" in str(info.value)
    size = int.from_bytes(data[:8], "little")  # the header size the content's first 8 bytes give
    assert str(size) not in str(info.value)  # content of the file, and an absurd number: never quoted


def test_model_checkpoint_saves_the_optimizer(tmp_path):
    model, opt = training_state()
    config = modelcrypt.CheckpointConfig(save_checkpoint_steps=1, keep_checkpoint_max=2, enc_key=KEY)
    saver = modelcrypt.ModelCheckpoint("net", directory=tmp_path, config=config)
    saver.step({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": 1}, 1)
    back = modelcrypt.torch.load_state_dict(saver.latest, KEY)
    assert back["step"] == 1 and math.isclose(back["optimizer"]["param_groups"][0]["lr"], 0.01)
