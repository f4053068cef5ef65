"""Framework loaders against the real frameworks (no mocks): ONNX Runtime, PyTorch, Paddle Inference
and NumPy load encrypted models from memory and give the same results as from the plaintext files.

Missing frameworks skip (pip install 'modelcrypt[onnx]' / '[torch]' / '[paddle]'), or fail when
MODELCRYPT_REQUIRE_FRAMEWORKS=1 (as in CI). Paddle runs in subprocesses, so its import (and its
bundled native libraries) stay out of this process, and its legacy export needs FLAGS_enable_pir_api=0.
"""

from __future__ import annotations

import copy
import os
import re
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

import modelcrypt
import modelcrypt.numpy as mcnp
from conftest import require
from subprocess_python import export_legacy_paddle_model, run_python

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
DATA = Path(__file__).parent / "data"


def _listing(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_size, st.st_mtime_ns)
    return out


def _xor_cipher():
    """A toy custom cipher with MindSpore's callable signatures (modelcrypt does not judge it)."""
    def stream(n, key):
        return (np.frombuffer(key, np.uint8)[np.arange(n) % len(key)] ^ 0x5A).tobytes()

    def enc(model_stream: bytes, key: bytes) -> bytes:
        return bytes(a ^ b for a, b in zip(model_stream, stream(len(model_stream), key)))

    def dec(cipher_file: str, key: bytes) -> bytes:
        with open(cipher_file, "rb") as f:
            data = f.read()
        return bytes(a ^ b for a, b in zip(data, stream(len(data), key)))

    return enc, dec


# ------------------------------------------------------------------ ONNX Runtime

def _onnx_model():
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
    return onnx, model, w, b


@pytest.fixture
def ort():
    return require("onnxruntime")


@pytest.fixture
def onnx_files(tmp_path):
    onnx, model, w, b = _onnx_model()
    plain = tmp_path / "plain"
    plain.mkdir()
    onnx.save_model(model, plain / "mlp.onnx")
    # the same model with its tensors in an external data file, both files encrypted in place
    onnx.save_model(copy.deepcopy(model), plain / "ext.onnx", save_as_external_data=True,
                    all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    enc = tmp_path / "enc"
    enc.mkdir()
    for name in ("mlp.onnx", "ext.onnx", "weights.bin"):
        modelcrypt.encrypt_file(plain / name, enc / name, KEY)
    x = np.random.default_rng(2).standard_normal((5, 4)).astype(np.float32)
    return plain, enc, x, np.maximum(x @ w + b, 0)


def test_onnxruntime_session_from_encrypted_file(ort, onnx_files):
    import modelcrypt.onnxruntime as mcort

    plain, enc, x, expected = onnx_files
    reference = ort.InferenceSession(str(plain / "mlp.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    session = mcort.InferenceSession(enc / "mlp.onnx", KEY, providers=["CPUExecutionProvider"])
    assert isinstance(session, ort.InferenceSession)
    out = session.run(None, {"x": x})[0]
    np.testing.assert_array_equal(out, reference)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert expected.any()  # not a vacuous all-zero comparison
    with pytest.raises(RuntimeError, match="set_providers"):
        session.set_providers(["CPUExecutionProvider"])


def test_onnxruntime_external_data_stays_encrypted(ort, onnx_files):
    import modelcrypt.onnxruntime as mcort

    plain, enc, x, _ = onnx_files
    assert mcort.external_data_locations((plain / "ext.onnx").read_bytes()) == ["weights.bin"]
    assert mcort.external_data_locations((plain / "mlp.onnx").read_bytes()) == []
    assert modelcrypt.is_encrypted(enc / "weights.bin")
    reference = ort.InferenceSession(str(plain / "ext.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    session = mcort.InferenceSession(enc / "ext.onnx", KEY, providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(session.run(None, {"x": x})[0], reference)

    # the external file under another name, through the mapping; a caller's SessionOptions
    moved = enc / "elsewhere"
    moved.mkdir()
    (moved / "ext.onnx").write_bytes((enc / "ext.onnx").read_bytes())
    (enc / "weights.bin").rename(moved / "w.mcx")
    options = ort.SessionOptions()
    session = mcort.InferenceSession(moved / "ext.onnx", KEY, external_data={"weights.bin": moved / "w.mcx"},
                                     sess_options=options, providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(session.run(None, {"x": x})[0], reference)
    with pytest.raises(ValueError, match="fresh"):  # ORT would silently reuse the first model's data
        mcort.InferenceSession(moved / "ext.onnx", KEY, external_data={"weights.bin": moved / "w.mcx"},
                               sess_options=options)
    with pytest.raises(FileNotFoundError):  # no silent fallback to anything unencrypted
        mcort.InferenceSession(moved / "ext.onnx", KEY)


def test_onnxruntime_writes_no_file(ort, onnx_files, tmp_path, monkeypatch):
    import modelcrypt.onnxruntime as mcort

    _, enc, x, _ = onnx_files
    private_tmp = tmp_path / "tmpdir"
    private_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(private_tmp))
    monkeypatch.setattr(tempfile, "tempdir", None)
    assert tempfile.gettempdir() == str(private_tmp)
    before = (_listing(tmp_path), _listing(private_tmp))
    for name in ("mlp.onnx", "ext.onnx"):
        mcort.InferenceSession(enc / name, KEY, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    assert (_listing(tmp_path), _listing(private_tmp)) == before


def test_onnxruntime_errors(ort, onnx_files, tmp_path):
    import modelcrypt.onnxruntime as mcort

    _, enc, _, _ = onnx_files
    with pytest.raises(modelcrypt.KeyMismatchError):
        mcort.InferenceSession(enc / "mlp.onnx", OTHER_KEY)
    modelcrypt.decrypt_file(enc / "weights.bin", tmp_path / "w.plain", KEY)
    modelcrypt.encrypt_file(tmp_path / "w.plain", enc / "weights.bin", OTHER_KEY)  # external data under another key
    with pytest.raises(modelcrypt.KeyMismatchError):
        mcort.InferenceSession(enc / "ext.onnx", KEY)
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    with pytest.raises(ValueError, match="optimized_model_filepath"):
        mcort.InferenceSession(enc / "mlp.onnx", KEY, sess_options=options)
    assert not (tmp_path / "optimized.onnx").exists()


@pytest.mark.parametrize("entry, value", [
    ("ep.context_enable", "1"),                       # EP-context model dump (compiled weights)
    ("ep.context_file_path", "ctx.onnx"),
    ("ep.context_embed_mode", "1"),
    ("ep.context_model_external_initializers_file_name", "ctx.bin"),
    ("session.save_model_format", "ORT"),
    ("session.optimized_model_external_initializers_file_name", "opt.bin"),
    ("session.save_external_prepacked_constant_initializers", "1"),
    ("session.debug_layout_transformation", "1"),     # dumps post_layout_transform_step_N.onnx
])
def test_onnxruntime_refuses_session_entries_that_write_the_model(ort, onnx_files, tmp_path, monkeypatch, entry, value):
    import modelcrypt.onnxruntime as mcort

    _, enc, x, expected = onnx_files
    monkeypatch.chdir(tmp_path)
    before = _listing(tmp_path)
    options = ort.SessionOptions()
    options.add_session_config_entry(entry, value if "path" not in entry else str(tmp_path / value))
    with pytest.raises(ValueError, match=re.escape(repr(entry))):
        mcort.InferenceSession(enc / "mlp.onnx", KEY, sess_options=options, providers=["CPUExecutionProvider"])
    assert _listing(tmp_path) == before
    if entry in ("ep.context_enable", "session.save_external_prepacked_constant_initializers",
                 "session.debug_layout_transformation"):  # switched off: accepted
        options = ort.SessionOptions()
        options.add_session_config_entry(entry, "0")
        out = mcort.InferenceSession(enc / "mlp.onnx", KEY, sess_options=options,
                                     providers=["CPUExecutionProvider"]).run(None, {"x": x})
        np.testing.assert_allclose(out[0], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("provider, option, value", [
    ("TensorrtExecutionProvider", "trt_engine_cache_enable", True),
    ("TensorrtExecutionProvider", "trt_engine_cache_enable", "1"),
    ("TensorrtExecutionProvider", "trt_engine_cache_path", "cache"),
    ("TensorrtExecutionProvider", "trt_dump_ep_context_model", "True"),
    ("TensorrtExecutionProvider", "trt_ep_context_file_path", "ctx.onnx"),
    ("TensorrtExecutionProvider", "trt_dump_subgraphs", "true"),
    ("OpenVINOExecutionProvider", "cache_dir", "ov_cache"),
    ("OpenVINOExecutionProvider", "load_config", '{"CPU": {"CACHE_DIR": "ov_cache"}}'),
    ("MIGraphXExecutionProvider", "migraphx_save_compiled_model", "1"),
    ("MIGraphXExecutionProvider", "migraphx_save_model_path", "m.mxr"),
    ("CoreMLExecutionProvider", "ModelCacheDirectory", "coreml"),
])
@pytest.mark.parametrize("how", ["providers", "provider_options"])
def test_onnxruntime_refuses_provider_caches(ort, onnx_files, tmp_path, provider, option, value, how):
    """Engine / model caches of execution providers hold the compiled, decrypted weights on disk.
    (This ONNX Runtime has only the CPU provider: unrefused, it would warn and fall back to CPU.)"""
    import modelcrypt.onnxruntime as mcort

    _, enc, _, _ = onnx_files
    if how == "providers":
        kwargs = {"providers": [(provider, {option: value}), "CPUExecutionProvider"]}
    else:
        kwargs = {"providers": [provider, "CPUExecutionProvider"], "provider_options": [{option: value}, {}]}
    with pytest.raises(ValueError, match=f"{provider} option {option!r}" if option != "load_config" else "CACHE_DIR"):
        mcort.InferenceSession(enc / "mlp.onnx", KEY, **kwargs)


def test_onnxruntime_refuses_tensorrt_cache_environment(ort, onnx_files, monkeypatch):
    import modelcrypt.onnxruntime as mcort

    _, enc, x, expected = onnx_files
    monkeypatch.setenv("ORT_TENSORRT_ENGINE_CACHE_ENABLE", "1")
    with pytest.raises(ValueError, match="ORT_TENSORRT_ENGINE_CACHE_ENABLE"):
        mcort.InferenceSession(enc / "mlp.onnx", KEY, providers=["TensorrtExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.delenv("ORT_TENSORRT_ENGINE_CACHE_ENABLE")
    # options that write nothing are accepted (the missing TensorRT provider: a warning, CPU runs it)
    with pytest.warns(UserWarning, match="TensorrtExecutionProvider"):
        session = mcort.InferenceSession(enc / "mlp.onnx", KEY, providers=[
            ("TensorrtExecutionProvider", {"trt_engine_cache_enable": False, "trt_fp16_enable": True}),
            ("CPUExecutionProvider", {})])
    np.testing.assert_allclose(session.run(None, {"x": x})[0], expected, rtol=1e-5, atol=1e-6)


def test_onnxruntime_custom_cipher(ort, onnx_files, tmp_path):
    import modelcrypt.onnxruntime as mcort

    plain, _, x, expected = onnx_files
    enc, dec = _xor_cipher()
    (tmp_path / "custom.onnx").write_bytes(enc((plain / "mlp.onnx").read_bytes(), KEY))
    out = mcort.InferenceSession(tmp_path / "custom.onnx", KEY, dec, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_allclose(out[0], expected, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ PyTorch

@pytest.fixture
def torch():
    return require("torch")


def _mlp(torch, dtype):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).to(dtype)


def test_torch_save_load_round_trip(torch, tmp_path):
    import modelcrypt.torch as mctorch

    net = _mlp(torch, torch.float32)
    obj = {"step": 7, "ints": torch.arange(10), "bf16": torch.randn(3, 5).to(torch.bfloat16),
           "flags": torch.tensor([True, False]), "state": net.state_dict()}
    path = tmp_path / "obj.pt.mcx"
    mctorch.save(obj, path, KEY)
    assert modelcrypt.is_encrypted(path)
    assert sorted(os.listdir(tmp_path)) == ["obj.pt.mcx"]  # atomic write left no temporary file
    back = mctorch.load(path, KEY)
    assert back["step"] == 7
    for name in ("ints", "bf16", "flags"):
        assert back[name].dtype == obj[name].dtype and torch.equal(back[name], obj[name])
    fresh = _mlp(torch, torch.float32)
    fresh.load_state_dict(back["state"])
    x = torch.randn(6, 4)
    assert torch.equal(fresh(x), net(x))
    # plain torch.load of the decrypted bytes agrees: the payload is a normal torch.save file
    with modelcrypt.load(path, KEY) as buf:
        import io
        assert torch.equal(torch.load(io.BytesIO(bytes(buf)))["ints"], obj["ints"])
    with pytest.raises(modelcrypt.KeyMismatchError):
        mctorch.load(path, OTHER_KEY)
    with pytest.raises(ValueError, match="mmap"):
        mctorch.load(path, KEY, mmap=True)


def test_torch_load_keeps_weights_only_default(torch, tmp_path):
    import modelcrypt.torch as mctorch

    path = tmp_path / "pickle.pt.mcx"
    mctorch.save({"obj": _Custom()}, path, KEY)
    with pytest.raises(Exception, match="[Ww]eights.only"):
        mctorch.load(path, KEY)
    assert isinstance(mctorch.load(path, KEY, weights_only=False)["obj"], _Custom)


class _Custom:
    pass


def test_torch_load_state_dict_from_checkpoint(torch, tmp_path):
    import modelcrypt.torch as mctorch

    nets = {dtype: _mlp(torch, dtype) for dtype in (torch.float32, torch.float16, torch.bfloat16)}
    params = {f"{str(dtype).split('.')[-1]}.{name}": tensor
              for dtype, net in nets.items() for name, tensor in net.state_dict().items()}
    path = tmp_path / "ckpt.safetensors.mcx"
    modelcrypt.save_checkpoint(params, path, KEY)
    state = mctorch.load_state_dict(path, KEY)
    assert list(state) == list(params)
    for name, tensor in params.items():
        assert state[name].dtype == tensor.dtype and torch.equal(state[name], tensor), name
    x = torch.randn(6, 4)
    for dtype, net in nets.items():
        prefix = str(dtype).split(".")[-1] + "."
        fresh = _mlp(torch, dtype)
        torch.nn.init.zeros_(fresh[0].weight)
        fresh.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
        assert torch.equal(fresh(x.to(dtype)), net(x.to(dtype))), dtype

    # random access keeps the dtype too; the decrypted checkpoint is a valid .safetensors file
    only = mctorch.load_state_dict(path, KEY, names=["bfloat16.2.bias"])
    assert only["bfloat16.2.bias"].dtype == torch.bfloat16
    assert torch.equal(only["bfloat16.2.bias"], params["bfloat16.2.bias"])
    safetensors_torch = require("safetensors.torch")
    with modelcrypt.load(path, KEY) as buf:
        loaded = safetensors_torch.load(bytes(buf))
    assert all(torch.equal(loaded[k], v) for k, v in params.items())
    with pytest.raises(modelcrypt.KeyMismatchError):
        mctorch.load_state_dict(path, OTHER_KEY)


def test_torch_custom_cipher(torch, tmp_path):
    import modelcrypt.torch as mctorch

    enc, dec = _xor_cipher()
    mctorch.save({"w": torch.arange(4.0)}, tmp_path / "c.pt", KEY, enc)
    assert not modelcrypt.is_encrypted(tmp_path / "c.pt")
    assert torch.equal(mctorch.load(tmp_path / "c.pt", KEY, dec)["w"], torch.arange(4.0))
    # a checkpoint encrypted by a custom cipher, loaded with BF16 restored
    params = {"b": torch.randn(3).to(torch.bfloat16)}
    modelcrypt.save_checkpoint(params, tmp_path / "c.safetensors")
    (tmp_path / "c.enc").write_bytes(enc((tmp_path / "c.safetensors").read_bytes(), KEY))
    state = mctorch.load_state_dict(tmp_path / "c.enc", KEY, dec)
    assert state["b"].dtype == torch.bfloat16 and torch.equal(state["b"], params["b"])


# ------------------------------------------------------------------ Paddle Inference (subprocesses)

_PADDLE_RUN = textwrap.dedent("""
    import sys
    import numpy as np
    import paddle.inference as pi
    import modelcrypt
    import modelcrypt.paddle as mcpaddle

    key = bytes.fromhex(sys.argv[1])

    def run(predictor, x):
        predictor.get_input_handle(predictor.get_input_names()[0]).copy_from_cpu(x)
        predictor.run()
        return predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()

    for plain_model, plain_params, enc_model, enc_params, x_path in zip(*[iter(sys.argv[2:])] * 5):
        x = np.load(x_path)
        config = pi.Config(plain_model, plain_params)
        config.disable_gpu()
        reference = run(pi.create_predictor(config), x)
        predictor = mcpaddle.create_predictor(enc_model, enc_params, key, disable_gpu=True,
                                              set_cpu_math_library_num_threads=1)
        out = run(predictor, x)
        assert np.array_equal(out, reference), (out, reference)
        assert np.abs(out).sum() > 0
        np.save(x_path + ".out.npy", out)
    try:
        mcpaddle.create_predictor(enc_model, enc_params, bytes(32))
    except modelcrypt.KeyMismatchError:
        pass
    else:
        raise AssertionError("wrong key accepted")
    try:
        mcpaddle.create_predictor(enc_model, enc_params, key, set_optim_cache_dir="/tmp")
    except ValueError as exc:
        assert "decrypted" in str(exc)
    else:
        raise AssertionError("set_optim_cache_dir accepted")
    print("PADDLE-OK")
""")


def test_paddle_predictor_from_encrypted_legacy_models(tmp_path):
    require("paddle", load=False)
    # 1. a tiny model exported in the legacy format (.pdmodel + .pdiparams), as users must export it
    export_legacy_paddle_model(tmp_path / "tiny", cwd=tmp_path)
    assert (tmp_path / "tiny.pdmodel").is_file() and (tmp_path / "tiny.pdiparams").is_file()
    np.save(tmp_path / "tiny_x.npy", np.random.default_rng(3).standard_normal((5, 4)).astype(np.float32))
    # 2. a PaddleX-exported legacy model with its reference input and output (tests/data/paddle)
    paddlex = DATA / "paddle"
    cases = []
    for model, params, x in ((tmp_path / "tiny.pdmodel", tmp_path / "tiny.pdiparams", tmp_path / "tiny_x.npy"),
                             (paddlex / "model.pdmodel", paddlex / "model.pdiparams", tmp_path / "paddlex_x.npy")):
        enc_model, enc_params = tmp_path / (model.stem + ".pdmodel.mcx"), tmp_path / (model.stem + ".pdiparams.mcx")
        modelcrypt.encrypt_file(model, enc_model, KEY)
        modelcrypt.encrypt_file(params, enc_params, KEY)
        cases += [model, params, enc_model, enc_params, x]
    np.save(tmp_path / "paddlex_x.npy", np.load(paddlex / "ref_input.npy"))
    assert "PADDLE-OK" in run_python(_PADDLE_RUN, KEY.hex(), *cases, cwd=tmp_path)
    np.testing.assert_allclose(np.load(tmp_path / "paddlex_x.npy.out.npy"), np.load(paddlex / "ref_output.npy"),
                               rtol=1e-5, atol=1e-6)


_PADDLE_REFUSALS = textwrap.dedent("""
    import sys
    import modelcrypt.paddle as mcpaddle
    import paddle.inference as inference
    key, model, params = bytes.fromhex(sys.argv[1]), sys.argv[2], sys.argv[3]
    refused = [
        ("enable_tensorrt_engine", {"use_static": True}, "use_static"),
        ("enable_tensorrt_engine", (1 << 28, 1, 3, inference.PrecisionType.Float32, True), "use_static"),
        ("switch_ir_debug", True, "switch_ir_debug"),
        ("switch_ir_debug", (True, ["fc_fuse_pass"]), "switch_ir_debug"),
        ("switch_ir_debug", {"x": 1}, "switch_ir_debug"),
        ("enable_tensorrt_inspector", {"inspector_serialize": True}, "inspector_serialize"),
        ("enable_tensorrt_inspector", (True,), "inspector_serialize"),
        ("use_optimized_model", True, "use_optimized_model"),
        ("set_optim_cache_dir", sys.argv[4], "set_optim_cache_dir"),
    ]
    for name, value, word in refused:
        try:
            mcpaddle.create_config(model, params, key, disable_gpu=True, **{name: value})
        except ValueError as exc:
            assert word in str(exc) and name in str(exc), (name, value, str(exc))
        else:
            raise AssertionError(f"{name}={value!r} accepted")
    # the same methods with arguments that write nothing are accepted (enable_tensorrt_engine itself
    # is refused by this CPU-only Paddle: "please compile with TENSORRT")
    for name, value in (("switch_ir_debug", False), ("switch_ir_debug", {"x": False}),
                        ("enable_tensorrt_inspector", True), ("enable_tensorrt_inspector", (False,))):
        config = mcpaddle.create_config(model, params, key, disable_gpu=True, **{name: value})
        assert config.model_from_memory()
    print("REFUSALS-OK")
""")


def test_paddle_refuses_options_that_write_engines_or_the_model(tmp_path):
    require("paddle", load=False)
    paddlex = DATA / "paddle"
    enc_model, enc_params = tmp_path / "model.pdmodel.mcx", tmp_path / "model.pdiparams.mcx"
    modelcrypt.encrypt_file(paddlex / "model.pdmodel", enc_model, KEY)
    modelcrypt.encrypt_file(paddlex / "model.pdiparams", enc_params, KEY)
    (tmp_path / "cache").mkdir()
    before = _listing(tmp_path)
    assert "REFUSALS-OK" in run_python(_PADDLE_REFUSALS, KEY.hex(), enc_model, enc_params, tmp_path / "cache", cwd=tmp_path)
    assert _listing(tmp_path) == before


# ------------------------------------------------------------------ NumPy

def test_numpy_npy_npz_round_trips(tmp_path):
    arrays = {"f32": np.arange(12, dtype=np.float32).reshape(3, 4), "i8": np.array([-1, 2], np.int8),
              "flags": np.array([True, False]), "scalar": np.array(3.5), "empty": np.zeros((0, 3))}
    for name, arr in arrays.items():
        mcnp.save(tmp_path / f"{name}.npy.mcx", arr, KEY)
        back = mcnp.load(tmp_path / f"{name}.npy.mcx", KEY)
        assert back.dtype == arr.dtype and back.shape == arr.shape and np.array_equal(back, arr)
    mcnp.savez(tmp_path / "all.npz.mcx", KEY, **arrays)
    mcnp.savez_compressed(tmp_path / "all_c.npz.mcx", KEY, metadata={"kind": "arrays"}, **arrays)
    assert modelcrypt.inspect(tmp_path / "all_c.npz.mcx").metadata == {"kind": "arrays"}
    for name in ("all.npz.mcx", "all_c.npz.mcx"):
        back = mcnp.load(tmp_path / name, KEY)
        assert isinstance(back, dict) and list(back) == list(arrays)
        assert all(np.array_equal(back[k], v) and back[k].dtype == v.dtype for k, v in arrays.items())
    assert not [n for n in os.listdir(tmp_path) if not n.endswith(".mcx")]  # no plaintext, no temporary file
    with pytest.raises(modelcrypt.KeyMismatchError):
        mcnp.load(tmp_path / "all.npz.mcx", OTHER_KEY)


def test_numpy_refuses_pickles_by_default(tmp_path):
    objects = np.array([{"a": 1}, None], dtype=object)
    mcnp.save(tmp_path / "obj.npy.mcx", objects, KEY, allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle"):
        mcnp.load(tmp_path / "obj.npy.mcx", KEY)
    assert mcnp.load(tmp_path / "obj.npy.mcx", KEY, allow_pickle=True)[0] == {"a": 1}
    with pytest.raises(ValueError, match="mmap"):
        mcnp.load(tmp_path / "obj.npy.mcx", KEY, mmap_mode="r")


def test_numpy_custom_cipher(tmp_path):
    enc, dec = _xor_cipher()
    arr = np.linspace(0, 1, 7)
    mcnp.save(tmp_path / "x.npy.enc", arr, KEY, enc)
    assert not modelcrypt.is_encrypted(tmp_path / "x.npy.enc")
    assert np.array_equal(mcnp.load(tmp_path / "x.npy.enc", KEY, dec), arr)


# ------------------------------------------------------------------ packaging

def test_submodules_do_not_shadow_the_frameworks():
    """modelcrypt.numpy / .torch / ... import the real top-level packages, and importing them leaves
    the package namespace and the rest of modelcrypt untouched."""
    out = run_python(textwrap.dedent("""
        import numpy, modelcrypt, modelcrypt.numpy, modelcrypt.checkpoint
        assert numpy.__name__ == "numpy" and numpy is not modelcrypt.numpy
        assert modelcrypt.numpy.np is numpy and modelcrypt.checkpoint.np is numpy
        assert modelcrypt.load is modelcrypt._api.load
        print("SHADOW-OK")
    """))
    assert "SHADOW-OK" in out


@pytest.mark.parametrize("module, extra", [("onnxruntime", "onnx"), ("torch", "torch"), ("paddle", "paddle")])
def test_missing_framework_names_the_extra(module, extra):
    code = textwrap.dedent(f"""
        import sys
        sys.modules[{module!r}] = None  # as if it were not installed
        sys.modules[{module!r} + ".inference"] = None
        try:
            import modelcrypt.{module}
        except ImportError as exc:
            print(exc)
        else:
            raise SystemExit("no ImportError")
    """)
    assert f'pip install "modelcrypt[{extra}]"' in run_python(code)
