"""Legacy formats only when asked for (security review, item 3), through the framework loaders and
the CLI; the core readers are covered in test_interop.py and the C API in test_native_api.py.

A MindSpore-format or PaddleX file put where a modelcrypt file is expected must not load through
any default path (a downgrade to a format whose frames can be dropped and spliced); with the
caller's explicit format choice it loads, with an InsecureFormatWarning.
"""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import modelcrypt
from conftest import require

HERE = os.path.dirname(os.path.abspath(__file__))
MS = os.path.join(HERE, "interop", "mindspore")
PX = os.path.join(HERE, "interop", "paddle", "paddlex")
MS_KEY16 = b"0123456789ABCDEF"
KEY = bytes(range(32))


def _mindspore_file(tmp_path, name: str, plaintext: bytes) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", modelcrypt.InsecureFormatWarning)
        blob = modelcrypt.encrypt_bytes(plaintext, KEY, "AES-GCM", format="mindspore")
    path = tmp_path / name
    path.write_bytes(blob)
    return str(path)


def test_numpy_loader_needs_the_opt_in(tmp_path):
    import modelcrypt.numpy as mcnp

    arr = np.arange(10, dtype=np.float32)
    stream = io.BytesIO()
    np.save(stream, arr)
    path = _mindspore_file(tmp_path, "x.npy.enc", stream.getvalue())
    with pytest.raises(modelcrypt.FormatError, match="format='mindspore'"):
        mcnp.load(path, KEY)
    with pytest.warns(modelcrypt.InsecureFormatWarning, match="dropped, reordered and spliced"):
        back = mcnp.load(path, KEY, format="mindspore")
    assert np.array_equal(back, arr)
    with pytest.raises(modelcrypt.FormatError, match="format='mindspore'"):
        mcnp.load(path, KEY, format="paddlex")  # a different legacy format is no opt-in for this one


def test_torch_loader_needs_the_opt_in(tmp_path):
    torch = require("torch")
    import modelcrypt.torch as mctorch

    state = {"w": torch.arange(6, dtype=torch.float32)}
    stream = io.BytesIO()
    torch.save(state, stream)
    path = _mindspore_file(tmp_path, "m.pt.enc", stream.getvalue())
    with pytest.raises(modelcrypt.FormatError, match="format='mindspore'"):
        mctorch.load(path, KEY)
    with pytest.warns(modelcrypt.InsecureFormatWarning):
        back = mctorch.load(path, KEY, format="mindspore")
    assert torch.equal(back["w"], state["w"])


def test_onnxruntime_loader_needs_the_opt_in(tmp_path):
    onnx = require("onnx")
    require("onnxruntime")
    import modelcrypt.onnxruntime as mcort
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = _mindspore_file(tmp_path, "relu.onnx.enc", model.SerializeToString())
    with pytest.raises(modelcrypt.FormatError, match="format='mindspore'"):
        mcort.InferenceSession(path, KEY, providers=["CPUExecutionProvider"])
    with pytest.warns(modelcrypt.InsecureFormatWarning):
        session = mcort.InferenceSession(path, KEY, format="mindspore", providers=["CPUExecutionProvider"])
    out = session.run(None, {"x": np.array([-1.0, 2.0], np.float32)})[0]
    assert out.tolist() == [0.0, 2.0]
    assert onnx is not None


_PADDLEX_RUN = textwrap.dedent(
    """
    import sys, warnings
    import numpy as np
    import modelcrypt, modelcrypt.paddle as mcpaddle
    key, model, params, x, ref = bytes.fromhex(sys.argv[1]), *sys.argv[2:6]
    try:
        mcpaddle.create_predictor(model, params, key)
    except modelcrypt.FormatError as exc:
        assert "format='paddlex'" in str(exc), exc
    else:
        raise AssertionError("a PaddleX file loaded through the default path")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predictor = mcpaddle.create_predictor(model, params, key, format="paddlex")
    assert any(issubclass(w.category, modelcrypt.InsecureFormatWarning) for w in caught), caught
    inp = predictor.get_input_handle(predictor.get_input_names()[0])
    inp.copy_from_cpu(np.load(x))
    predictor.run()
    out = predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()
    np.testing.assert_allclose(out, np.load(ref), rtol=1e-5, atol=1e-6)
    print("PADDLEX-OK")
    """
)


def test_paddle_loader_reads_paddlex_models_only_with_the_opt_in():
    require("paddle", load=False)
    key = base64.b64decode(open(os.path.join(PX, "key.b64")).read().strip())
    data = os.path.join(HERE, "data", "paddle")
    proc = subprocess.run([sys.executable, "-c", _PADDLEX_RUN, key.hex(), os.path.join(PX, "encrypted.pdmodel"),
                           os.path.join(PX, "encrypted.pdparams"), os.path.join(data, "ref_input.npy"),
                           os.path.join(data, "ref_output.npy")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "PADDLEX-OK" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-4000:]


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "modelcrypt", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd)


def test_cli_decrypt_and_verify_need_the_opt_in(tmp_path):
    key_file = tmp_path / "ms.key"
    key_file.write_text(MS_KEY16.hex() + "\n")
    key_file.chmod(0o600)
    gcm, cbc = os.path.join(MS, "b_gcm16.ckpt"), os.path.join(MS, "c_cbc16.ckpt")
    plain = open(os.path.join(MS, "a_plain.ckpt"), "rb").read()

    refused = _cli("verify", gcm, "--key-file", str(key_file))
    assert refused.returncode == 1, refused
    assert "--format mindspore" in refused.stdout + refused.stderr
    out = tmp_path / "out.ckpt"
    refused = _cli("decrypt", gcm, "-o", str(out), "--key-file", str(key_file))
    assert refused.returncode == 1 and not out.exists(), refused

    ok = _cli("verify", gcm, "--key-file", str(key_file), "--format", "mindspore")
    assert ok.returncode == 0, ok
    assert "dropped, reordered and spliced" in ok.stderr  # the weakness is shown, not hidden
    ok = _cli("decrypt", gcm, "-o", str(out), "--key-file", str(key_file), "--format", "mindspore")
    assert ok.returncode == 0, ok
    assert out.read_bytes() == plain

    # CBC files: the mode that only MindSpore has is itself the choice; AES-GCM + mindspore is not enough
    wrong_mode = _cli("verify", cbc, "--key-file", str(key_file), "--format", "mindspore")
    assert wrong_mode.returncode != 0 and "AES-CBC" in wrong_mode.stdout + wrong_mode.stderr
    out2 = tmp_path / "out2.ckpt"
    ok = _cli("decrypt", cbc, "-o", str(out2), "--key-file", str(key_file), "--mode", "AES-CBC")
    assert ok.returncode == 0, ok
    assert "not authenticated" in ok.stderr
    assert out2.read_bytes() == plain

    # a v1 file verifies with the default and with any legacy choice (never a downgrade)
    v1 = tmp_path / "v1.mcx"
    modelcrypt.encrypt_file(os.path.join(MS, "a_plain.ckpt"), v1, MS_KEY16)
    for extra in ((), ("--format", "mindspore"), ("--format", "auto")):
        ok = _cli("verify", str(v1), "--key-file", str(key_file), *extra)
        assert ok.returncode == 0 and "warning:" not in ok.stderr, (extra, ok)


def test_decrypted_buffer_reports_its_format(tmp_path):
    path = _mindspore_file(tmp_path, "blob.enc", b"weights" * 100)
    with pytest.warns(modelcrypt.InsecureFormatWarning):
        with modelcrypt.load(path, KEY, format="auto") as buf:
            assert buf.format == "mindspore" and "spliced" in buf.insecure_reason
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # v1 files never warn
        with modelcrypt.decrypt_bytes(modelcrypt.encrypt_bytes(b"w" * 100, KEY), KEY, format="auto") as buf:
            assert buf.format == "modelcrypt" and buf.insecure_reason == ""
    with pytest.raises(ValueError, match="format must be one of"):
        modelcrypt.load(path, KEY, format="AUTO")
    with pytest.raises(TypeError):
        modelcrypt.load(path, KEY, format=None)


def test_opt_in_errors_say_what_to_pass(tmp_path):
    """A CBC file needs its mode (the only opt-in that can read it); a v1 file is never read as a
    Paddle cipher file (whose first bytes are a random IV, never the v1 magic)."""
    cbc = os.path.join(MS, "c_cbc16.ckpt")
    with pytest.raises(modelcrypt.FormatError, match="mode 'AES-CBC'"):
        modelcrypt.load(cbc, MS_KEY16)
    v1 = tmp_path / "v1.mcx"
    v1.write_bytes(modelcrypt.encrypt_bytes(b"w" * 100, KEY))
    for fmt in ("modelcrypt", "paddle-cipher", "auto"):
        with pytest.raises(ValueError, match="it is a modelcrypt file"):
            modelcrypt.load(v1, KEY, "paddle:AES_CTR_NoPadding", format=fmt)
    with pytest.raises(ValueError, match="not mode 'AES-CBC'"):
        modelcrypt.load(v1, KEY, "AES-CBC", format="paddlex")
