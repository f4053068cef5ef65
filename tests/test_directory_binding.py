"""Encrypted directories are one authenticated whole (docs/FORMAT.md, "Encrypted directories"):
`modelcrypt encrypt DIR -o OUT` / encrypt_directory bind every file into a set and write an
encrypted manifest; decrypt/verify of a directory, the ONNX external-data loader and the Paddle
model+params loader refuse a missing, added, renamed or foreign member. Real files, real OpenSSL,
real CLI processes and real frameworks."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

import modelcrypt
from modelcrypt import SetMismatchError
from conftest import require

KEY = bytes(range(32))
DATA = pathlib.Path(__file__).parent / "data"


def mc(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "modelcrypt", *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


@pytest.fixture
def tree(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"alpha\n")
    (src / "sub" / "b.bin").write_bytes(os.urandom(10000))
    (src / "sub" / "c.bin").write_bytes(os.urandom(100))
    key_file = tmp_path / "k.key"
    key_file.write_text(KEY.hex())
    os.chmod(key_file, 0o600)
    return src, key_file


def _encrypt_cli(src, dst, key_file):
    r = mc("encrypt", src, "-o", dst, "--key-file", key_file, "--metadata", "owner=me")
    assert r.returncode == 0, r.stderr
    return dst


def _encrypt_dir(src, dst):
    """`modelcrypt encrypt SRC -o DST` with KEY (the CLI, so the same steps run on older versions)."""
    key_file = dst.parent / f".{dst.name}.key"
    key_file.write_text(KEY.hex())
    os.chmod(key_file, 0o600)
    return _encrypt_cli(src, dst, key_file)


def test_cli_encrypt_writes_an_authenticated_manifest(tree, tmp_path):
    src, key_file = tree
    enc = _encrypt_cli(src, tmp_path / "enc", key_file)
    assert (enc / ".modelcrypt-manifest").is_file()
    with modelcrypt.open_encrypted(enc / ".modelcrypt-manifest", KEY) as f:
        doc = json.loads(bytes(f.read_all()))
        set_id = f.metadata["modelcrypt.set"]
    assert doc["set"] == set_id and sorted(doc["members"]) == ["a.txt", "sub/b.bin", "sub/c.bin"]
    assert doc["members"]["sub/b.bin"] == {"plaintext_length": 10000}
    with modelcrypt.open_encrypted(enc / "sub" / "b.bin", KEY) as f:
        assert f.metadata == {"owner": "me", "modelcrypt.set": set_id, "modelcrypt.member": "sub/b.bin"}
    assert modelcrypt.verify_directory(enc, KEY) == ["a.txt", "sub/b.bin", "sub/c.bin"]
    r = mc("decrypt", enc, "-o", tmp_path / "dec", "--key-file", key_file)
    assert r.returncode == 0, r.stderr
    assert sorted(str(p.relative_to(tmp_path / "dec")) for p in (tmp_path / "dec").rglob("*") if p.is_file()) == \
        ["a.txt", "sub/b.bin", "sub/c.bin"]  # the manifest is not part of the plaintext tree
    assert (tmp_path / "dec" / "sub" / "b.bin").read_bytes() == (src / "sub" / "b.bin").read_bytes()
    r = mc("verify", enc, "--key-file", key_file)
    assert r.returncode == 0 and "OK" in r.stdout


def test_python_encrypt_directory_matches_the_cli(tree, tmp_path):
    src, _ = tree
    members = modelcrypt.encrypt_directory(src, tmp_path / "enc", KEY)
    assert members == ["a.txt", "sub/b.bin", "sub/c.bin"]
    assert modelcrypt.decrypt_directory(tmp_path / "enc", tmp_path / "dec", KEY) == members
    assert (tmp_path / "dec" / "a.txt").read_bytes() == b"alpha\n"
    with pytest.raises(ValueError, match="reserved"):
        modelcrypt.encrypt_directory(src, tmp_path / "enc2", KEY, metadata={"modelcrypt.set": "0" * 32})
    with pytest.raises(ValueError, match="already an encrypted directory"):
        modelcrypt.encrypt_directory(tmp_path / "enc", tmp_path / "enc3", KEY)


def _tampered(tree, tmp_path, how):
    src, key_file = tree
    enc = _encrypt_cli(src, tmp_path / "enc", key_file)
    _encrypt_dir(src, tmp_path / "other")  # same files, same key, another set
    how(enc, tmp_path / "other")
    return enc, key_file


CASES = {
    "missing member": (lambda enc, other: os.unlink(enc / "sub" / "c.bin"), "listed in the manifest is missing"),
    "added file": (lambda enc, other: shutil.copyfile(enc / "a.txt", enc / "sub" / "new.bin"),
                   "not listed in the directory's manifest"),
    "renamed member": (lambda enc, other: (os.rename(enc / "sub" / "b.bin", enc / "sub" / "x"),
                                           os.rename(enc / "sub" / "c.bin", enc / "sub" / "b.bin"),
                                           os.rename(enc / "sub" / "x", enc / "sub" / "c.bin")), "was encrypted as"),
    "foreign member": (lambda enc, other: shutil.copyfile(other / "sub" / "b.bin", enc / "sub" / "b.bin"),
                       "another encrypted directory"),
    "foreign manifest": (lambda enc, other: shutil.copyfile(other / ".modelcrypt-manifest", enc / ".modelcrypt-manifest"),
                         "another encrypted directory"),
    "manifest removed": (lambda enc, other: os.unlink(enc / ".modelcrypt-manifest"), "manifest"),
    "member over the manifest": (lambda enc, other: shutil.copyfile(enc / "a.txt", enc / ".modelcrypt-manifest"),
                                 "not a manifest"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_tampered_directory_is_refused(tree, tmp_path, case):
    how, message = CASES[case]
    enc, key_file = _tampered(tree, tmp_path, how)
    with pytest.raises(SetMismatchError, match=message):
        modelcrypt.verify_directory(enc, KEY)
    with pytest.raises(SetMismatchError, match=message):
        modelcrypt.decrypt_directory(enc, tmp_path / "dec", KEY)
    assert not (tmp_path / "dec").exists()
    r = mc("decrypt", enc, "-o", tmp_path / "dec", "--key-file", key_file)
    assert r.returncode == 1 and message.split()[0] in r.stderr, r.stderr
    assert not (tmp_path / "dec").exists()  # nothing decrypted
    r = mc("verify", enc, "--key-file", key_file)
    assert r.returncode == 1 and "FAILED" in r.stdout


def test_plain_old_directories_still_decrypt(tree, tmp_path):
    """Files encrypted one by one (no set metadata, no manifest) decrypt as a directory as before."""
    src, key_file = tree
    enc = tmp_path / "enc"
    (enc / "sub").mkdir(parents=True)
    for rel in ("a.txt", "sub/b.bin"):
        modelcrypt.encrypt_file(src / rel, enc / rel, KEY)
    assert modelcrypt.decrypt_directory(enc, tmp_path / "dec", KEY) == ["a.txt", "sub/b.bin"]
    r = mc("decrypt", enc, "-o", tmp_path / "dec2", "--key-file", key_file)
    assert r.returncode == 0, r.stderr


# ------------------------------------------------------------------ ONNX external data


def _onnx_dir(tmp_path, name, seed):
    onnx = require("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = rng.standard_normal((4, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])], "mm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
        [numpy_helper.from_array(w, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    plain = tmp_path / f"{name}-plain"
    plain.mkdir()
    onnx.save_model(model, plain / "model.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    _encrypt_dir(plain, tmp_path / name)
    return tmp_path / name, w


def test_onnx_external_data_from_another_directory_is_refused(tmp_path):
    require("onnxruntime")
    import modelcrypt.onnxruntime as mcort

    enc, w = _onnx_dir(tmp_path, "a", 1)
    other, _ = _onnx_dir(tmp_path, "b", 2)  # same layout, other weights, same key
    x = np.ones((2, 4), np.float32)
    session = mcort.InferenceSession(enc / "model.onnx", KEY, providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"x": x})[0], x @ w, rtol=1e-5)
    shutil.copyfile(other / "weights.bin", enc / "weights.bin")
    with pytest.raises(SetMismatchError, match="another"):
        mcort.InferenceSession(enc / "model.onnx", KEY, providers=["CPUExecutionProvider"])


def test_onnx_external_data_without_manifest_is_refused(tmp_path):
    require("onnxruntime")
    import modelcrypt.onnxruntime as mcort

    enc, _ = _onnx_dir(tmp_path, "a", 1)
    os.unlink(enc / ".modelcrypt-manifest")
    with pytest.raises(SetMismatchError, match="manifest"):
        mcort.InferenceSession(enc / "model.onnx", KEY, providers=["CPUExecutionProvider"])


# ------------------------------------------------------------------ Paddle model + params

_PADDLE_CONFIG = """
import sys, modelcrypt, modelcrypt.paddle as mcpaddle
key = bytes.fromhex(sys.argv[1])
try:
    mcpaddle.create_config(sys.argv[2], sys.argv[3], key, disable_gpu=True)
except modelcrypt.SetMismatchError as exc:
    print("REFUSED", exc)
else:
    print("LOADED")
"""


def test_paddle_params_from_another_save_are_refused(tmp_path):
    require("paddle", load=False)
    plain = tmp_path / "plain"
    plain.mkdir()
    for name in ("model.pdmodel", "model.pdiparams"):
        shutil.copyfile(DATA / "paddle" / name, plain / name)
    a = tmp_path / "a"
    b = tmp_path / "b"
    _encrypt_dir(plain, a)
    _encrypt_dir(plain, b)

    def run(model, params):
        proc = subprocess.run([sys.executable, "-c", _PADDLE_CONFIG, KEY.hex(), str(model), str(params)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-4000:]
        return proc.stdout

    assert "LOADED" in run(a / "model.pdmodel", a / "model.pdiparams")
    out = run(a / "model.pdmodel", b / "model.pdiparams")
    assert "REFUSED" in out and "another" in out
    shutil.copyfile(b / "model.pdiparams", a / "model.pdiparams")
    assert "REFUSED" in run(a / "model.pdmodel", a / "model.pdiparams")


# ------------------------------------------------------------------ migrate (key rotation of a directory)


def test_migrated_directory_is_a_new_set(tree, tmp_path):
    src, _ = tree
    modelcrypt.encrypt_directory(src, tmp_path / "enc", KEY)
    new_key = modelcrypt.generate_key()
    written = modelcrypt.migrate(tmp_path / "enc", tmp_path / "rotated", KEY, new_key)
    assert sorted(os.path.relpath(p, tmp_path / "rotated") for p in written) == ["a.txt", "sub/b.bin", "sub/c.bin"]
    assert modelcrypt.verify_directory(tmp_path / "rotated", new_key) == ["a.txt", "sub/b.bin", "sub/c.bin"]
    with modelcrypt.open_encrypted(tmp_path / "enc" / "a.txt", KEY) as old, \
            modelcrypt.open_encrypted(tmp_path / "rotated" / "a.txt", new_key) as new:
        assert old.metadata["modelcrypt.set"] != new.metadata["modelcrypt.set"]
        assert new.metadata["modelcrypt.member"] == "a.txt"
    modelcrypt.decrypt_directory(tmp_path / "rotated", tmp_path / "dec", new_key)
    assert (tmp_path / "dec" / "sub" / "b.bin").read_bytes() == (src / "sub" / "b.bin").read_bytes()


def test_migrate_checks_the_source_directory(tree, tmp_path):
    src, _ = tree
    modelcrypt.encrypt_directory(src, tmp_path / "enc", KEY)
    modelcrypt.encrypt_directory(src, tmp_path / "other", KEY)
    shutil.copyfile(tmp_path / "other" / "a.txt", tmp_path / "enc" / "a.txt")
    with pytest.raises(SetMismatchError, match="another encrypted directory"):
        modelcrypt.migrate(tmp_path / "enc", tmp_path / "rotated", KEY, modelcrypt.generate_key())
    assert not (tmp_path / "rotated").exists()
    os.unlink(tmp_path / "enc" / "sub" / "c.bin")
    with pytest.raises(SetMismatchError, match="missing"):
        modelcrypt.migrate(tmp_path / "enc", tmp_path / "rotated", KEY, modelcrypt.generate_key())
