"""Format v2 recipients (issue 14) through the framework loaders and the checkpoint writers, against
the real frameworks: files encrypted to devices' recipients (no symmetric key) load with
``identity=`` (or an Identity passed as the key) in torch, numpy, ONNX Runtime and Paddle
Inference; save_checkpoint, sharded checkpoints and ModelCheckpoint/CheckpointConfig write to
recipients; another device's identity is KeyMismatchError before the framework sees a byte.
"""

from __future__ import annotations

import os
import textwrap

import numpy as np
import pytest

import modelcrypt
import modelcrypt.numpy as mcnp
from conftest import require
from subprocess_python import export_legacy_paddle_model, run_python


@pytest.fixture(scope="module")
def devices():
    return modelcrypt.generate_identity(), modelcrypt.generate_identity()


@pytest.fixture(scope="module")
def stranger():
    return modelcrypt.generate_identity()


def _is_v2_to(path, *identities):
    info = modelcrypt.inspect(path)
    fingerprints = {r["fingerprint"] for r in info.recipients if r["type"] == "x25519"}
    return info.version == 2 and fingerprints == {modelcrypt.recipient_fingerprint(i.recipient) for i in identities}


# ---------------------------------------------------------------- PyTorch

def test_torch_save_to_recipients_and_load_with_identity(tmp_path, devices, stranger):
    torch = require("torch")
    import modelcrypt.torch as mctorch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    path = tmp_path / "net.pt.mcx"
    mctorch.save(net.state_dict(), path, recipients=[d.recipient for d in devices])
    assert _is_v2_to(path, *devices)
    for device in devices:
        for state in (mctorch.load(path, identity=device), mctorch.load(path, device)):
            assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    with pytest.raises(modelcrypt.KeyMismatchError, match="identity"):
        mctorch.load(path, identity=stranger)
    with pytest.raises(TypeError, match="not both"):
        mctorch.load(path, bytes(32), identity=devices[0])
    with pytest.raises(TypeError, match="Identity"):
        mctorch.load(path, identity=devices[0].recipient)  # the public text is not an identity


def test_torch_load_state_dict_with_identity(tmp_path, devices, stranger):
    torch = require("torch")
    import modelcrypt.torch as mctorch

    params = {"a.weight": torch.randn(30, 20), "b.weight": torch.randn(10).to(torch.bfloat16)}
    path = tmp_path / "ckpt.safetensors"
    modelcrypt.save_checkpoint(params, path, recipients=[devices[0].recipient, devices[1]])
    assert _is_v2_to(path, *devices)
    state = mctorch.load_state_dict(path, identity=devices[1])
    assert all(state[k].dtype == v.dtype and torch.equal(state[k], v) for k, v in params.items())
    only = mctorch.load_state_dict(path, names=["b.weight"], identity=devices[0])
    assert list(only) == ["b.weight"] and torch.equal(only["b.weight"], params["b.weight"])
    with pytest.raises(modelcrypt.KeyMismatchError):
        mctorch.load_state_dict(path, identity=stranger)


# ---------------------------------------------------------------- NumPy

def test_numpy_save_and_savez_to_recipients(tmp_path, devices, stranger):
    arr = np.arange(5000, dtype=np.float64).reshape(50, 100)
    device = devices[0]
    mcnp.save(tmp_path / "a.npy.mcx", arr, recipients=[device.recipient])
    mcnp.savez(tmp_path / "a.npz.mcx", recipients=[device.recipient], w=arr, b=arr[0])
    mcnp.savez_compressed(tmp_path / "c.npz.mcx", recipients=[device.recipient], metadata={"m": "1"}, w=arr)
    for name in ("a.npy.mcx", "a.npz.mcx", "c.npz.mcx"):
        assert _is_v2_to(tmp_path / name, device)
    assert np.array_equal(mcnp.load(tmp_path / "a.npy.mcx", identity=device), arr)
    z = mcnp.load(tmp_path / "a.npz.mcx", identity=device)
    assert sorted(z) == ["b", "w"] and np.array_equal(z["w"], arr) and np.array_equal(z["b"], arr[0])
    assert np.array_equal(mcnp.load(tmp_path / "c.npz.mcx", device)["w"], arr)
    assert modelcrypt.inspect(tmp_path / "c.npz.mcx", identity=device).metadata == {"m": "1"}
    with pytest.raises(modelcrypt.KeyMismatchError):
        mcnp.load(tmp_path / "a.npy.mcx", identity=stranger)


# ---------------------------------------------------------------- ONNX Runtime

def _onnx_model(tmp_path):
    onnx = require("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    w = rng.standard_normal((4, 3)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "B"], ["y"])],
        "affine",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    plain = tmp_path / "plain"
    plain.mkdir()
    onnx.save_model(model, plain / "ext.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    return plain, x, x @ w + b


def test_onnxruntime_session_with_identity_and_external_data(tmp_path, devices, stranger):
    ort = require("onnxruntime")
    import modelcrypt.onnxruntime as mcort

    plain, x, expected = _onnx_model(tmp_path)
    enc = tmp_path / "enc"
    enc.mkdir()
    for name in ("ext.onnx", "weights.bin"):
        modelcrypt.encrypt_file(plain / name, enc / name, recipients=[d.recipient for d in devices])
    reference = ort.InferenceSession(str(plain / "ext.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(reference, expected, rtol=1e-5, atol=1e-6)
    for device in devices:
        session = mcort.InferenceSession(enc / "ext.onnx", identity=device, providers=["CPUExecutionProvider"])
        np.testing.assert_array_equal(session.run(None, {"x": x})[0], reference)
    # the external data file opens with the same identity: one encrypted to another device is refused
    (enc / "weights.bin").unlink()
    modelcrypt.encrypt_file(plain / "weights.bin", enc / "weights.bin", recipients=[stranger.recipient])
    with pytest.raises(modelcrypt.KeyMismatchError):
        mcort.InferenceSession(enc / "ext.onnx", identity=devices[0], providers=["CPUExecutionProvider"])
    with pytest.raises(modelcrypt.KeyMismatchError):
        mcort.InferenceSession(enc / "ext.onnx", identity=stranger, providers=["CPUExecutionProvider"])


# ---------------------------------------------------------------- checkpoints

def test_sharded_checkpoint_to_recipients_is_a_bound_set(tmp_path, devices, stranger):
    rng = np.random.default_rng(2)
    params = {f"layer{i}.weight": rng.standard_normal((64, 64)).astype(np.float32) for i in range(6)}
    index = modelcrypt.save_checkpoint(params, tmp_path / "model.safetensors", recipients=[devices[0]],
                                       max_shard_size=40_000, metadata={"run": "7"})
    assert index.endswith(".index.json")
    shards = sorted(p for p in os.listdir(tmp_path) if p.startswith("model-"))
    assert len(shards) >= 3 and all(_is_v2_to(tmp_path / s, devices[0]) for s in shards)
    state = modelcrypt.load_distributed_checkpoint(index, identity=devices[0])
    assert sorted(state) == sorted(params) and all(np.array_equal(state[k], v) for k, v in params.items())
    one = modelcrypt.load_distributed_checkpoint(index, devices[0], names=["layer3.weight"])
    assert np.array_equal(one["layer3.weight"], params["layer3.weight"])
    with pytest.raises(modelcrypt.KeyMismatchError):
        modelcrypt.load_distributed_checkpoint(index, identity=stranger)
    # still a set: a shard of another save to the same recipient is refused
    other = tmp_path / "other"
    other.mkdir()
    modelcrypt.save_checkpoint(params, other / "model.safetensors", recipients=[devices[0]], max_shard_size=40_000)
    os.replace(other / shards[1], tmp_path / shards[1])
    with pytest.raises(modelcrypt.SetMismatchError):
        modelcrypt.load_distributed_checkpoint(index, identity=devices[0])


def test_checkpoint_with_key_and_recipients_signed(tmp_path, devices):
    key, signer = modelcrypt.generate_key(), modelcrypt.generate_signing_key()
    state = {"model": {"w": np.arange(12, dtype=np.float32).reshape(3, 4)}, "step": 5}
    path = tmp_path / "state.safetensors"
    modelcrypt.save_checkpoint(state, path, key, recipients=[devices[1].recipient], signing_key=signer)
    info = modelcrypt.inspect(path)
    assert info.version == 3 and [r["type"] for r in info.recipients] == ["symmetric", "x25519"]
    for opener in ({"dec_key": key}, {"identity": devices[1]}):
        loaded = modelcrypt.load_checkpoint(path, **opener, trusted_signers=[signer.public_key])
        assert loaded["step"] == 5 and np.array_equal(loaded["model"]["w"], state["model"]["w"])
    # recipients-only checkpoints can be signed too
    modelcrypt.save_checkpoint(state, tmp_path / "r.safetensors", recipients=[devices[0]], signing_key=signer)
    assert modelcrypt.load_checkpoint(tmp_path / "r.safetensors", identity=devices[0], trusted_signers=[signer])["step"] == 5


def test_checkpoint_writer_argument_errors(tmp_path, devices):
    params = {"w": np.ones(3, np.float32)}
    with pytest.raises(ValueError, match="empty"):
        modelcrypt.save_checkpoint(params, tmp_path / "a.safetensors", recipients=[])
    with pytest.raises(ValueError, match="custom"):
        modelcrypt.save_checkpoint(params, tmp_path / "a.safetensors", bytes(32), lambda data, key: data,
                                   recipients=[devices[0]])
    with pytest.raises(ValueError, match="mindspore"):
        modelcrypt.save_checkpoint(params, tmp_path / "a.ckpt", recipients=[devices[0]], format="mindspore")
    with pytest.raises(ValueError, match="checksum"):
        r = devices[0].recipient
        modelcrypt.save_checkpoint(params, tmp_path / "a.safetensors", recipients=[r[:-1] + ("q" if r[-1] != "q" else "p")])
    with pytest.raises(TypeError, match="list of recipients"):
        modelcrypt.save_checkpoint(params, tmp_path / "a.safetensors", recipients=devices[0].recipient)
    assert not os.listdir(tmp_path)
    plain = modelcrypt.save_checkpoint(params, tmp_path / "p.safetensors")
    with pytest.raises(TypeError, match="not both"):
        modelcrypt.load_checkpoint(plain, bytes(32), identity=devices[0])


def test_model_checkpoint_to_recipients(tmp_path, devices, stranger):
    config = modelcrypt.CheckpointConfig(keep_checkpoint_max=2, recipients=[d.recipient for d in devices])
    assert "recipients=<2>" in repr(config) and "modelcrypt1" not in repr(config)
    assert config.recipients == [d.public_key for d in devices] and config.enc_key is None
    saver = modelcrypt.ModelCheckpoint("net", directory=tmp_path, config=config)
    for step in (1, 2, 3):
        saver.step({"w": np.full(4, step, np.float32)}, step)
    assert sorted(os.listdir(tmp_path)) == ["net-2.ckpt", "net-3.ckpt"]
    for device in devices:
        assert _is_v2_to(tmp_path / "net-3.ckpt", *devices)
        assert np.array_equal(modelcrypt.load_checkpoint(saver.latest, identity=device)["w"], np.full(4, 3, np.float32))
    with pytest.raises(modelcrypt.KeyMismatchError):
        modelcrypt.load_checkpoint(tmp_path / "net-3.ckpt", identity=stranger)
    # the series binding holds for recipient checkpoints too: one renamed to another step is refused
    os.replace(tmp_path / "net-2.ckpt", tmp_path / "net-4.ckpt")
    with pytest.raises(modelcrypt.SetMismatchError):
        modelcrypt.load_checkpoint(tmp_path / "net-4.ckpt", identity=devices[0])
    # settings can change after construction, checked as in the constructor
    config.recipients = [stranger]
    saver.step({"w": np.zeros(4, np.float32)}, 5)
    assert _is_v2_to(tmp_path / "net-5.ckpt", stranger)
    with pytest.raises(ValueError, match="empty"):
        config.recipients = []
    assert config.recipients == [stranger.public_key]


# ---------------------------------------------------------------- Paddle Inference (subprocesses)

_PADDLE_RUN = textwrap.dedent("""
    import sys
    import numpy as np
    import paddle.inference as pi
    import modelcrypt
    import modelcrypt.paddle as mcpaddle

    plain_model, plain_params, enc_model, enc_params, x_path = sys.argv[1:6]
    identity = modelcrypt.identity_from_env()          # MODELCRYPT_IDENTITY: never on the command line

    def run(predictor, x):
        predictor.get_input_handle(predictor.get_input_names()[0]).copy_from_cpu(x)
        predictor.run()
        return predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()

    x = np.load(x_path)
    config = pi.Config(plain_model, plain_params)
    config.disable_gpu()
    reference = run(pi.create_predictor(config), x)
    out = run(mcpaddle.create_predictor(enc_model, enc_params, identity=identity, disable_gpu=True), x)
    assert np.array_equal(out, reference) and np.abs(out).sum() > 0, (out, reference)
    try:
        mcpaddle.create_predictor(enc_model, enc_params, identity=modelcrypt.generate_identity(), disable_gpu=True)
    except modelcrypt.KeyMismatchError:
        pass
    else:
        raise AssertionError("another identity was accepted")
    print("PADDLE-IDENTITY-OK")
""")


def test_paddle_predictor_with_identity(tmp_path, devices):
    require("paddle", load=False)
    export_legacy_paddle_model(tmp_path / "tiny", cwd=tmp_path)
    model, params = tmp_path / "tiny.pdmodel", tmp_path / "tiny.pdiparams"
    enc_model, enc_params = tmp_path / "m.pdmodel.mcx", tmp_path / "m.pdiparams.mcx"
    for src, dst in ((model, enc_model), (params, enc_params)):
        modelcrypt.encrypt_file(src, dst, recipients=[d.recipient for d in devices])
    np.save(tmp_path / "x.npy", np.random.default_rng(3).standard_normal((5, 4)).astype(np.float32))
    secret = devices[1].secret_text()
    try:
        env = dict(os.environ, MODELCRYPT_IDENTITY=bytes(secret).decode())
    finally:
        modelcrypt.wipe(secret)
    out = run_python(_PADDLE_RUN, model, params, enc_model, enc_params, tmp_path / "x.npy", env=env, cwd=tmp_path)
    assert "PADDLE-IDENTITY-OK" in out
