"""Every framework loader takes URLs (issue 17): modelcrypt.onnxruntime (with external data as sibling
objects, checked as one set), modelcrypt.torch (load, load_state_dict), modelcrypt.numpy and
modelcrypt.paddle, from a real S3-compatible server on 127.0.0.1 (moto, through s3fs) and from the
Range-capable HTTP test server of test_http_source.py, with the real frameworks; ``storage_options``
as fsspec takes them, refused with a local path; wrong keys, other identities and other signers
refused as for local files; nothing written to disk (strace). Nothing leaves loopback."""

from __future__ import annotations

import io
import json
import os
import shutil
import textwrap

import numpy as np
import pytest

import modelcrypt
import modelcrypt.numpy as mcnp
from conftest import require
from s3_server import BUCKET, s3  # noqa: F401 (the fixture)
from subprocess_python import export_legacy_paddle_model, run_python
from test_http_source import _options as _http_options, http, server  # noqa: F401 (the fixtures)

KEY = bytes(range(32))  # the key test_no_disk's children get
OTHER_KEY = bytes(32)
CPU = ["CPUExecutionProvider"]


def _fs(options):
    import s3fs

    return s3fs.S3FileSystem(**options)


def _upload(options, local, prefix):
    """Uploads the file or directory tree ``local`` (dot files included) under ``prefix``; its URL."""
    fs = _fs(options)
    if os.path.isdir(local):
        for dirpath, _, filenames in os.walk(local):
            for name in filenames:
                rel = os.path.relpath(os.path.join(dirpath, name), local).replace(os.sep, "/")
                fs.put_file(os.path.join(dirpath, name), f"{BUCKET}/{prefix}/{rel}")
    else:
        fs.put_file(str(local), f"{BUCKET}/{prefix}")
    return f"s3://{BUCKET}/{prefix}"


# ------------------------------------------------------------------ ONNX Runtime


def _onnx_model(seed):
    require("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = rng.standard_normal((4, 3)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "B"], ["y"])], "affine",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model


def _external_dir(tmp_path, name, seed, **encrypt_kwargs):
    """An encrypted directory (one set, with its manifest) of an ONNX model with external data."""
    import onnx

    plain = tmp_path / f"{name}-plain"
    plain.mkdir()
    onnx.save_model(_onnx_model(seed), plain / "model.onnx", save_as_external_data=True,
                    all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    modelcrypt.encrypt_directory(plain, tmp_path / name, KEY, **encrypt_kwargs)
    return plain, tmp_path / name


def _reference(plain_model_path, x):
    ort = require("onnxruntime")
    return ort.InferenceSession(str(plain_model_path), providers=CPU).run(None, {"x": x})[0]


X = np.random.default_rng(7).standard_normal((5, 4)).astype(np.float32)


def test_onnx_model_from_s3(s3, tmp_path):
    import onnx
    import modelcrypt.onnxruntime as mcort

    _, options = s3
    onnx.save_model(_onnx_model(1), tmp_path / "m.onnx")
    modelcrypt.encrypt_file(tmp_path / "m.onnx", tmp_path / "m.onnx.mcx", KEY)
    url = _upload(options, tmp_path / "m.onnx.mcx", "onnx/m.onnx.mcx")
    reference = _reference(tmp_path / "m.onnx", X)
    assert np.abs(reference).sum() > 0
    session = mcort.InferenceSession(url, KEY, storage_options=options, providers=CPU)
    np.testing.assert_array_equal(session.run(None, {"x": X})[0], reference)
    with open(tmp_path / "m.onnx.mcx", "rb") as f:  # a file object, as modelcrypt.load takes one
        np.testing.assert_array_equal(mcort.InferenceSession(f, KEY, providers=CPU).run(None, {"x": X})[0], reference)
    with pytest.raises(modelcrypt.KeyMismatchError):
        mcort.InferenceSession(url, OTHER_KEY, storage_options=options, providers=CPU)
    with pytest.raises(ValueError, match="storage_options"):
        mcort.InferenceSession(tmp_path / "m.onnx.mcx", KEY, storage_options=options, providers=CPU)
    with pytest.raises(FileNotFoundError):
        mcort.InferenceSession(url + ".nope", KEY, storage_options=options, providers=CPU)


def test_onnx_external_data_from_s3_is_one_set(s3, tmp_path):
    import modelcrypt.onnxruntime as mcort

    _, options = s3
    plain, enc = _external_dir(tmp_path, "a", 1)
    _, other = _external_dir(tmp_path, "b", 2)  # the same layout and key, other weights: another save
    reference = _reference(plain / "model.onnx", X)
    base = _upload(options, enc, "ext/a")
    _upload(options, other, "ext/b")
    session = mcort.InferenceSession(f"{base}/model.onnx", KEY, storage_options=options, providers=CPU)
    np.testing.assert_array_equal(session.run(None, {"x": X})[0], reference)
    # external_data= may name objects too (the same storage_options)
    session = mcort.InferenceSession(f"{base}/model.onnx", KEY, storage_options=options, providers=CPU,
                                     external_data={"weights.bin": f"{base}/weights.bin"})
    np.testing.assert_array_equal(session.run(None, {"x": X})[0], reference)
    with pytest.raises(modelcrypt.KeyMismatchError):
        mcort.InferenceSession(f"{base}/model.onnx", OTHER_KEY, storage_options=options, providers=CPU)

    fs = _fs(options)
    # an external data file from another save, swapped in: refused, as beside a local model
    fs.copy(f"{BUCKET}/ext/b/weights.bin", f"{BUCKET}/ext/a/weights.bin")
    with pytest.raises(modelcrypt.SetMismatchError, match="another"):
        mcort.InferenceSession(f"{base}/model.onnx", KEY, storage_options=options, providers=CPU)
    with pytest.raises(modelcrypt.SetMismatchError, match="another"):
        mcort.InferenceSession(f"{base}/model.onnx", KEY, storage_options=options, providers=CPU,
                               external_data={"weights.bin": f"s3://{BUCKET}/ext/b/weights.bin"})
    # the external data file missing: a clear FileNotFoundError naming the object
    fs.rm(f"{BUCKET}/ext/a/weights.bin")
    with pytest.raises(FileNotFoundError, match="weights.bin"):
        mcort.InferenceSession(f"{base}/model.onnx", KEY, storage_options=options, providers=CPU)
    # the set's manifest missing: the member cannot be checked, refused
    _upload(options, enc / "weights.bin", "ext/a/weights.bin")
    fs.rm(f"{BUCKET}/ext/a/.modelcrypt-manifest")
    with pytest.raises(modelcrypt.SetMismatchError, match="manifest"):
        mcort.InferenceSession(f"{base}/model.onnx", KEY, storage_options=options, providers=CPU)
    # a model renamed in the bucket no longer finds its set
    _upload(options, enc, "ext/c")
    fs.mv(f"{BUCKET}/ext/c/model.onnx", f"{BUCKET}/ext/c/renamed.onnx")
    with pytest.raises(modelcrypt.SetMismatchError, match="renamed"):
        mcort.InferenceSession(f"s3://{BUCKET}/ext/c/renamed.onnx", KEY, storage_options=options, providers=CPU)
    # a model from a file object cannot find its external data: a clear error, not a local lookup
    with open(enc / "model.onnx", "rb") as f, pytest.raises(ValueError, match="file object"):
        mcort.InferenceSession(f, KEY, providers=CPU)


def test_onnx_external_data_with_identity_and_signers_from_s3(s3, tmp_path):
    import onnx
    import modelcrypt.onnxruntime as mcort

    _, options = s3
    device, stranger = modelcrypt.generate_identity(), modelcrypt.generate_identity()
    signer = modelcrypt.generate_signing_key()
    plain = tmp_path / "plain"
    plain.mkdir()
    onnx.save_model(_onnx_model(3), plain / "model.onnx", save_as_external_data=True,
                    all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    enc = tmp_path / "enc"
    enc.mkdir()
    for name in ("model.onnx", "weights.bin"):
        modelcrypt.encrypt_file(plain / name, enc / name, recipients=[device.recipient], signing_key=signer)
    reference = _reference(plain / "model.onnx", X)
    base = _upload(options, enc, "ident")
    session = mcort.InferenceSession(f"{base}/model.onnx", identity=device, trusted_signers=[signer.public_key],
                                     storage_options=options, providers=CPU)
    np.testing.assert_array_equal(session.run(None, {"x": X})[0], reference)
    with pytest.raises(modelcrypt.KeyMismatchError):
        mcort.InferenceSession(f"{base}/model.onnx", identity=stranger, storage_options=options, providers=CPU)
    with pytest.raises(modelcrypt.SignatureError):
        mcort.InferenceSession(f"{base}/model.onnx", identity=device, storage_options=options, providers=CPU,
                               trusted_signers=[modelcrypt.generate_signing_key().public_key])
    # the external data file re-encrypted unsigned: refused with trusted_signers
    modelcrypt.encrypt_file(plain / "weights.bin", tmp_path / "unsigned.bin", recipients=[device.recipient])
    _upload(options, tmp_path / "unsigned.bin", "ident/weights.bin")
    with pytest.raises(modelcrypt.SignatureError):
        mcort.InferenceSession(f"{base}/model.onnx", identity=device, trusted_signers=[signer.public_key],
                               storage_options=options, providers=CPU)


def test_onnx_external_data_over_http(http, tmp_path):
    import modelcrypt.onnxruntime as mcort

    plain, enc = _external_dir(tmp_path, "h", 4)
    reference = _reference(plain / "model.onnx", X)
    for name in ("model.onnx", "weights.bin", ".modelcrypt-manifest"):
        url = http.put(f"h/{name}", (enc / name).read_bytes())
    model_url = url.rsplit("/", 1)[0] + "/model.onnx"
    session = mcort.InferenceSession(model_url, KEY, storage_options=_http_options(), providers=CPU)
    np.testing.assert_array_equal(session.run(None, {"x": X})[0], reference)
    assert http.sent >= sum((enc / n).stat().st_size for n in ("model.onnx", "weights.bin"))
    _, other = _external_dir(tmp_path, "h2", 5)
    http.put("h/weights.bin", (other / "weights.bin").read_bytes())
    with pytest.raises(modelcrypt.SetMismatchError, match="another"):
        mcort.InferenceSession(model_url, KEY, storage_options=_http_options(), providers=CPU)


# ------------------------------------------------------------------ PyTorch


def test_torch_load_and_load_state_dict_from_s3(s3, tmp_path):
    torch = require("torch")
    import modelcrypt.torch as mctorch

    _, options = s3
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    mctorch.save(net.state_dict(), tmp_path / "net.pt.mcx", KEY)
    url = _upload(options, tmp_path / "net.pt.mcx", "torch/net.pt.mcx")
    state = mctorch.load(url, KEY, storage_options=options)
    assert sorted(state) == sorted(net.state_dict())
    for name, tensor in net.state_dict().items():
        assert torch.equal(state[name], tensor)
    with open(tmp_path / "net.pt.mcx", "rb") as f:
        assert torch.equal(mctorch.load(f, KEY)["0.weight"], net.state_dict()["0.weight"])
    with pytest.raises(modelcrypt.KeyMismatchError):
        mctorch.load(url, OTHER_KEY, storage_options=options)
    with pytest.raises(ValueError, match="storage_options"):
        mctorch.load(tmp_path / "net.pt.mcx", KEY, storage_options=options)

    # load_state_dict of a save_checkpoint file (bfloat16 keeps its dtype), whole and by name
    params = {"w": torch.randn(16, 8), "h": torch.randn(5, 3).to(torch.bfloat16)}
    modelcrypt.save_checkpoint({k: v for k, v in params.items()}, tmp_path / "ckpt.safetensors", KEY)
    curl = _upload(options, tmp_path / "ckpt.safetensors", "torch/ckpt.safetensors")
    loaded = mctorch.load_state_dict(curl, KEY, storage_options=options)
    assert sorted(loaded) == ["h", "w"] and loaded["h"].dtype == torch.bfloat16
    for name, tensor in params.items():
        assert torch.equal(loaded[name], tensor)
    one = mctorch.load_state_dict(curl, KEY, names=["h"], storage_options=options)
    assert list(one) == ["h"] and torch.equal(one["h"], params["h"])
    with pytest.raises(modelcrypt.KeyMismatchError):
        mctorch.load_state_dict(curl, OTHER_KEY, storage_options=options)
    with pytest.raises(ValueError, match="storage_options"):
        mctorch.load_state_dict(tmp_path / "ckpt.safetensors", KEY, storage_options=options)
    # a training state comes back with its structure, from a URL too
    modelcrypt.save_checkpoint({"model": {"w": params["w"]}, "step": 3}, tmp_path / "state.safetensors", KEY)
    surl = _upload(options, tmp_path / "state.safetensors", "torch/state.safetensors")
    state = mctorch.load_state_dict(surl, KEY, storage_options=options)
    assert state["step"] == 3 and torch.equal(state["model"]["w"], params["w"])


def test_torch_with_identity_and_signers_from_s3(s3, tmp_path):
    torch = require("torch")
    import modelcrypt.torch as mctorch

    _, options = s3
    device, signer = modelcrypt.generate_identity(), modelcrypt.generate_signing_key()
    state = {"w": torch.randn(6, 2)}
    mctorch.save(state, tmp_path / "r.pt.mcx", recipients=[device.recipient], signing_key=signer)
    url = _upload(options, tmp_path / "r.pt.mcx", "torch/r.pt.mcx")
    loaded = mctorch.load(url, identity=device, trusted_signers=[signer.public_key], storage_options=options)
    assert torch.equal(loaded["w"], state["w"])
    with pytest.raises(modelcrypt.KeyMismatchError):
        mctorch.load(url, identity=modelcrypt.generate_identity(), storage_options=options)
    with pytest.raises(modelcrypt.SignatureError):
        mctorch.load(url, identity=device, trusted_signers=[modelcrypt.generate_signing_key().public_key],
                     storage_options=options)


# ------------------------------------------------------------------ NumPy


def test_numpy_npy_and_npz_from_s3(s3, tmp_path):
    _, options = s3
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((7, 3)), rng.integers(0, 100, 9)
    mcnp.save(tmp_path / "a.npy.mcx", a, KEY)
    mcnp.savez(tmp_path / "ab.npz.mcx", KEY, a=a, b=b)
    mcnp.savez_compressed(tmp_path / "c.npz.mcx", KEY, a=a)
    npy = _upload(options, tmp_path / "a.npy.mcx", "np/a.npy.mcx")
    npz = _upload(options, tmp_path / "ab.npz.mcx", "np/ab.npz.mcx")
    npzc = _upload(options, tmp_path / "c.npz.mcx", "np/c.npz.mcx")
    np.testing.assert_array_equal(mcnp.load(npy, KEY, storage_options=options), a)
    arrays = mcnp.load(npz, KEY, storage_options=options)
    assert sorted(arrays) == ["a", "b"]
    np.testing.assert_array_equal(arrays["a"], a)
    np.testing.assert_array_equal(arrays["b"], b)
    np.testing.assert_array_equal(mcnp.load(npzc, KEY, storage_options=options)["a"], a)
    np.testing.assert_array_equal(mcnp.load(io.BytesIO((tmp_path / "a.npy.mcx").read_bytes()), KEY), a)
    with pytest.raises(modelcrypt.KeyMismatchError):
        mcnp.load(npy, OTHER_KEY, storage_options=options)
    with pytest.raises(ValueError, match="storage_options"):
        mcnp.load(tmp_path / "a.npy.mcx", KEY, storage_options=options)
    with pytest.raises(ValueError, match="custom"):  # URLs hold modelcrypt files: no custom cipher
        mcnp.load(npy, KEY, lambda path, key: b"", storage_options=options)


def test_numpy_identity_and_signers_from_s3_and_http(s3, http, tmp_path):
    _, options = s3
    device, signer = modelcrypt.generate_identity(), modelcrypt.generate_signing_key()
    a = np.arange(12.0).reshape(3, 4)
    mcnp.save(tmp_path / "s.npy.mcx", a, recipients=[device.recipient], signing_key=signer)
    url = _upload(options, tmp_path / "s.npy.mcx", "np/s.npy.mcx")
    np.testing.assert_array_equal(
        mcnp.load(url, identity=device, trusted_signers=[signer.public_key], storage_options=options), a)
    with pytest.raises(modelcrypt.SignatureError):
        mcnp.load(url, identity=device, trusted_signers=[modelcrypt.generate_signing_key().public_key],
                  storage_options=options)
    with pytest.raises(modelcrypt.KeyMismatchError):
        mcnp.load(url, identity=modelcrypt.generate_identity(), storage_options=options)
    hurl = http.put("np/s.npy.mcx", (tmp_path / "s.npy.mcx").read_bytes())
    np.testing.assert_array_equal(
        mcnp.load(hurl, identity=device, trusted_signers=[signer.public_key], storage_options=_http_options()), a)


# ------------------------------------------------------------------ Paddle Inference (in a subprocess)

_PADDLE_RUN = textwrap.dedent("""
    import json, sys
    import numpy as np
    import paddle.inference as pi
    import modelcrypt
    import modelcrypt.paddle as mcpaddle

    plain_model, plain_params, model_url, params_url, other_params_url, x_path = sys.argv[1:7]
    options = json.loads(sys.argv[7])
    key = bytes(range(32))

    def run(predictor, x):
        predictor.get_input_handle(predictor.get_input_names()[0]).copy_from_cpu(x)
        predictor.run()
        return predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()

    x = np.load(x_path)
    config = pi.Config(plain_model, plain_params)
    config.disable_gpu()
    reference = run(pi.create_predictor(config), x)
    out = run(mcpaddle.create_predictor(model_url, params_url, key, storage_options=options, disable_gpu=True), x)
    assert np.array_equal(out, reference) and np.abs(out).sum() > 0, (out, reference)
    config = mcpaddle.create_config(model_url, params_url, key, storage_options=options, disable_gpu=True)
    assert np.array_equal(run(pi.create_predictor(config), x), reference)
    def refused(exc_type, *args, **kwargs):
        try:
            mcpaddle.create_predictor(*args, disable_gpu=True, **kwargs)
        except exc_type as exc:
            return str(exc)
        raise AssertionError(f"not refused: {args}")
    assert "another" in refused(modelcrypt.SetMismatchError, model_url, other_params_url, key, storage_options=options)
    refused(modelcrypt.KeyMismatchError, model_url, params_url, bytes(32), storage_options=options)
    assert "storage_options" in refused(ValueError, plain_model, plain_params, key, storage_options=options)
    print("PADDLE-URL-OK")
""")


def test_paddle_predictor_from_s3(s3, tmp_path):
    require("paddle", load=False)
    _, options = s3
    export_legacy_paddle_model(tmp_path / "tiny", cwd=tmp_path)
    plain = tmp_path / "plain"
    plain.mkdir()
    for ext in ("pdmodel", "pdiparams"):
        shutil.copyfile(tmp_path / f"tiny.{ext}", plain / f"model.{ext}")
    modelcrypt.encrypt_directory(plain, tmp_path / "a", KEY)
    modelcrypt.encrypt_directory(plain, tmp_path / "b", KEY)  # the same files: another save
    base = _upload(options, tmp_path / "a", "paddle/a")
    other = _upload(options, tmp_path / "b", "paddle/b")
    np.save(tmp_path / "x.npy", np.random.default_rng(3).standard_normal((5, 4)).astype(np.float32))
    out = run_python(_PADDLE_RUN, plain / "model.pdmodel", plain / "model.pdiparams", f"{base}/model.pdmodel",
                     f"{base}/model.pdiparams", f"{other}/model.pdiparams", tmp_path / "x.npy",
                     json.dumps(options), cwd=tmp_path)
    assert "PADDLE-URL-OK" in out


# ------------------------------------------------------------------ nothing on disk (strace)


def test_url_loads_write_nothing_to_disk(s3, tmp_path, monkeypatch):
    require("onnx", load=False)
    require("onnxruntime", load=False)
    require("torch", load=False)
    require_tool_strace()
    from test_no_disk import _run_case

    _, options = s3
    plain, enc = _external_dir(tmp_path, "nd", 6)
    base = _upload(options, enc, "nodisk/onnx")
    torch = require("torch")
    import modelcrypt.torch as mctorch

    mctorch.save({"w": torch.arange(6.0)}, tmp_path / "t.pt.mcx", KEY)
    mcnp.savez(tmp_path / "n.npz.mcx", KEY, a=np.arange(5))
    turl = _upload(options, tmp_path / "t.pt.mcx", "nodisk/t.pt.mcx")
    nurl = _upload(options, tmp_path / "n.npz.mcx", "nodisk/n.npz.mcx")
    expected = _reference(plain / "model.onnx", X)
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "expected.npy", expected)
    monkeypatch.setenv("MC_TEST_URLS", json.dumps({"options": options, "onnx": f"{base}/model.onnx", "torch": turl,
                                                   "numpy": nurl, "x": str(tmp_path / "x.npy"),
                                                   "expected": str(tmp_path / "expected.npy")}))
    setup = """
    import json
    import numpy as np
    import onnxruntime as ort
    import torch
    import s3fs
    import modelcrypt, modelcrypt.numpy as mcnp, modelcrypt.onnxruntime as mcort, modelcrypt.torch as mctorch
    cfg = json.loads(os.environ["MC_TEST_URLS"])
    options = cfg["options"]
    x, expected = np.load(cfg["x"]), np.load(cfg["expected"])
    # warm-up: the frameworks and s3fs (its client, its event loop) on something else than the models
    s3fs.S3FileSystem(**options).info(cfg["numpy"])
    """
    measured = """
    session = mcort.InferenceSession(cfg["onnx"], key, storage_options=options, providers=["CPUExecutionProvider"])
    out = session.run(None, {"x": x})[0]
    state = mctorch.load(cfg["torch"], key, storage_options=options)
    arrays = mcnp.load(cfg["numpy"], key, storage_options=options)
    """
    check = """
    assert np.array_equal(out, expected) and np.abs(out).sum() > 0
    assert torch.equal(state["w"], torch.arange(6.0))
    assert np.array_equal(arrays["a"], np.arange(5))
    """
    _run_case(tmp_path, "urls", setup, measured, check, [])


def require_tool_strace():
    from conftest import require_tool

    require_tool("strace", "strace")
