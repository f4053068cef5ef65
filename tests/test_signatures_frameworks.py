"""Publisher signatures (format v3, issue 15) through the framework loaders, against the real
frameworks: torch.load / load_state_dict, numpy.load, onnxruntime.InferenceSession (with external
data) and Paddle Inference's create_predictor give the plaintext's results with
``trusted_signers``, and a changed, unsigned or foreign file gives SignatureError before the
framework sees a byte.
"""

from __future__ import annotations

import copy
import textwrap
from pathlib import Path

import numpy as np
import pytest

import modelcrypt
import modelcrypt.numpy as mcnp
from conftest import require
from subprocess_python import export_legacy_paddle_model, run_python
from signature_layout import flipped, layout

KEY = bytes(range(32))
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def signer():
    return modelcrypt.generate_signing_key()


def _tamper(path, chunk=0):
    data = Path(path).read_bytes()
    Path(path).write_bytes(flipped(data, layout(data).chunk(chunk).start + 1))


# ---------------------------------------------------------------- PyTorch

def test_torch_save_load_signed(tmp_path, signer):
    torch = require("torch")
    import modelcrypt.torch as mctorch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    path = tmp_path / "net.pt.mcx"
    mctorch.save(net.state_dict(), path, KEY, signing_key=signer)
    assert modelcrypt.verify_signature(path, [signer]) == signer.public_key
    state = mctorch.load(path, KEY, trusted_signers=[signer.public_key])
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    fresh = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    fresh.load_state_dict(state)
    x = torch.randn(5, 4)
    assert torch.equal(fresh(x), net(x))
    assert mctorch.load(path, KEY).keys() == state.keys()  # without trust, as before
    with pytest.raises(modelcrypt.SignatureError, match="untrusted"):
        mctorch.load(path, KEY, trusted_signers=[modelcrypt.generate_signing_key()])
    unsigned = tmp_path / "unsigned.pt.mcx"
    mctorch.save(net.state_dict(), unsigned, KEY)
    with pytest.raises(modelcrypt.SignatureError, match="not signed"):
        mctorch.load(unsigned, KEY, trusted_signers=[signer])
    _tamper(path)
    with pytest.raises(modelcrypt.SignatureError, match="chunk 0"):
        mctorch.load(path, KEY, trusted_signers=[signer])


def test_torch_load_state_dict_signed(tmp_path, signer):
    torch = require("torch")
    import modelcrypt.torch as mctorch

    params = {"a.weight": torch.randn(30, 20), "b.weight": torch.randn(10, dtype=torch.float64).to(torch.bfloat16)}
    path = tmp_path / "ckpt.safetensors"
    modelcrypt.save_checkpoint(params, path, KEY, signing_key=signer)
    state = mctorch.load_state_dict(path, KEY, trusted_signers=[signer])
    assert all(state[k].dtype == v.dtype and torch.equal(state[k], v) for k, v in params.items())
    only = mctorch.load_state_dict(path, KEY, names=["b.weight"], trusted_signers=[signer])
    assert list(only) == ["b.weight"] and torch.equal(only["b.weight"], params["b.weight"])
    with pytest.raises(modelcrypt.SignatureError):
        mctorch.load_state_dict(path, KEY, names=["b.weight"], trusted_signers=[modelcrypt.generate_signing_key()])
    _tamper(path)
    with pytest.raises(modelcrypt.SignatureError):
        mctorch.load_state_dict(path, KEY, trusted_signers=[signer])
    with pytest.raises(modelcrypt.AuthenticationError):
        mctorch.load_state_dict(path, KEY)


# ---------------------------------------------------------------- NumPy

def test_numpy_npy_and_npz_signed(tmp_path, signer):
    arr = np.arange(5000, dtype=np.float64).reshape(50, 100)
    mcnp.save(tmp_path / "a.npy.mcx", arr, KEY, signing_key=signer)
    assert np.array_equal(mcnp.load(tmp_path / "a.npy.mcx", KEY, trusted_signers=[signer]), arr)
    assert np.array_equal(mcnp.load(tmp_path / "a.npy.mcx", KEY), arr)
    mcnp.savez(tmp_path / "a.npz.mcx", KEY, signing_key=signer, w=arr, b=arr[0])
    mcnp.savez_compressed(tmp_path / "c.npz.mcx", KEY, metadata={"m": "1"}, signing_key=signer, w=arr, b=arr[0])
    for name in ("a.npz.mcx", "c.npz.mcx"):
        assert modelcrypt.verify_signature(tmp_path / name, [signer]) == signer.public_key
        z = mcnp.load(tmp_path / name, KEY, trusted_signers=[signer.public_key_bytes])
        assert sorted(z) == ["b", "w"] and np.array_equal(z["w"], arr) and np.array_equal(z["b"], arr[0])
    assert modelcrypt.inspect(tmp_path / "c.npz.mcx").metadata == {"m": "1"}
    mcnp.save(tmp_path / "u.npy.mcx", arr, KEY)
    with pytest.raises(modelcrypt.SignatureError, match="not signed"):
        mcnp.load(tmp_path / "u.npy.mcx", KEY, trusted_signers=[signer])
    _tamper(tmp_path / "a.npy.mcx")
    with pytest.raises(modelcrypt.SignatureError):
        mcnp.load(tmp_path / "a.npy.mcx", KEY, trusted_signers=[signer])


# ---------------------------------------------------------------- ONNX Runtime

def _onnx_files(tmp_path, signer):
    onnx = require("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    w = rng.standard_normal((4, 3)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "B"], ["a"]),
         helper.make_node("Relu", ["a"], ["y"])],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    plain, enc = tmp_path / "plain", tmp_path / "enc"
    plain.mkdir()
    enc.mkdir()
    onnx.save_model(model, plain / "mlp.onnx")
    onnx.save_model(copy.deepcopy(model), plain / "ext.onnx", save_as_external_data=True,
                    all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    for name in ("mlp.onnx", "ext.onnx", "weights.bin"):
        modelcrypt.encrypt_file(plain / name, enc / name, KEY, signing_key=signer)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    return plain, enc, x, np.maximum(x @ w + b, 0)


def test_onnxruntime_signed_model(tmp_path, signer):
    ort = require("onnxruntime")
    import modelcrypt.onnxruntime as mcort

    plain, enc, x, expected = _onnx_files(tmp_path, signer)
    reference = ort.InferenceSession(str(plain / "mlp.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(reference, expected, rtol=1e-5, atol=1e-6)
    for trust in ([signer], [signer.public_key], None):
        session = mcort.InferenceSession(enc / "mlp.onnx", KEY, trusted_signers=trust, providers=["CPUExecutionProvider"])
        np.testing.assert_array_equal(session.run(None, {"x": x})[0], reference)
    with pytest.raises(modelcrypt.SignatureError, match="untrusted"):
        mcort.InferenceSession(enc / "mlp.onnx", KEY, trusted_signers=[modelcrypt.generate_signing_key()])
    _tamper(enc / "mlp.onnx")
    with pytest.raises(modelcrypt.SignatureError):
        mcort.InferenceSession(enc / "mlp.onnx", KEY, trusted_signers=[signer])


def test_onnxruntime_signed_external_data(tmp_path, signer):
    ort = require("onnxruntime")
    import modelcrypt.onnxruntime as mcort

    plain, enc, x, _ = _onnx_files(tmp_path, signer)
    reference = ort.InferenceSession(str(plain / "ext.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    session = mcort.InferenceSession(enc / "ext.onnx", KEY, trusted_signers=[signer], providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(session.run(None, {"x": x})[0], reference)
    # the external data file must be signed too: an unsigned one under the same key is refused
    (enc / "weights.bin").unlink()
    modelcrypt.encrypt_file(plain / "weights.bin", enc / "weights.bin", KEY)
    session = mcort.InferenceSession(enc / "ext.onnx", KEY, providers=["CPUExecutionProvider"])  # no trust: loads
    np.testing.assert_array_equal(session.run(None, {"x": x})[0], reference)
    with pytest.raises(modelcrypt.SignatureError, match="not signed"):
        mcort.InferenceSession(enc / "ext.onnx", KEY, trusted_signers=[signer])
    # signed by someone else
    (enc / "weights.bin").unlink()
    modelcrypt.encrypt_file(plain / "weights.bin", enc / "weights.bin", KEY, signing_key=modelcrypt.generate_signing_key())
    with pytest.raises(modelcrypt.SignatureError, match="untrusted"):
        mcort.InferenceSession(enc / "ext.onnx", KEY, trusted_signers=[signer])


# ---------------------------------------------------------------- Paddle Inference (subprocesses)

_PADDLE_RUN = textwrap.dedent("""
    import sys
    import numpy as np
    import paddle.inference as pi
    import modelcrypt
    import modelcrypt.paddle as mcpaddle

    key = bytes.fromhex(sys.argv[1])
    signer, other = sys.argv[2], sys.argv[3]
    plain_model, plain_params, enc_model, enc_params, unsigned_params, x_path = sys.argv[4:10]

    def run(predictor, x):
        predictor.get_input_handle(predictor.get_input_names()[0]).copy_from_cpu(x)
        predictor.run()
        return predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()

    x = np.load(x_path)
    config = pi.Config(plain_model, plain_params)
    config.disable_gpu()
    reference = run(pi.create_predictor(config), x)
    predictor = mcpaddle.create_predictor(enc_model, enc_params, key, trusted_signers=[signer], disable_gpu=True)
    out = run(predictor, x)
    assert np.array_equal(out, reference) and np.abs(out).sum() > 0, (out, reference)
    for params, trust, expected in ((enc_params, other, "untrusted"), (unsigned_params, signer, "not signed")):
        try:
            mcpaddle.create_predictor(enc_model, params, key, trusted_signers=[trust], disable_gpu=True)
        except modelcrypt.SignatureError as exc:
            assert expected in str(exc), exc
        else:
            raise AssertionError("accepted with " + expected)
    print("PADDLE-SIGNED-OK")
""")


def test_paddle_predictor_from_signed_models(tmp_path, signer):
    require("paddle", load=False)
    export_legacy_paddle_model(tmp_path / "tiny", cwd=tmp_path)
    model, params = tmp_path / "tiny.pdmodel", tmp_path / "tiny.pdiparams"
    enc_model, enc_params, unsigned = tmp_path / "m.pdmodel.mcx", tmp_path / "m.pdiparams.mcx", tmp_path / "u.mcx"
    modelcrypt.encrypt_file(model, enc_model, KEY, signing_key=signer)
    modelcrypt.encrypt_file(params, enc_params, KEY, signing_key=signer)
    modelcrypt.encrypt_file(params, unsigned, KEY)
    np.save(tmp_path / "x.npy", np.random.default_rng(3).standard_normal((5, 4)).astype(np.float32))
    other = modelcrypt.generate_signing_key().public_key
    out = run_python(_PADDLE_RUN, KEY.hex(), signer.public_key, other, model, params, enc_model, enc_params, unsigned,
                  tmp_path / "x.npy", cwd=tmp_path)
    assert "PADDLE-SIGNED-OK" in out
