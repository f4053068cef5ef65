"""MindSpore checkpoints (.ckpt): modelcrypt.mindspore parses and builds MindSpore's checkpoint protobuf,
load_checkpoint reads MindSpore checkpoints (plain, MindSpore-encrypted, or inside a modelcrypt file) and
save_checkpoint(format="mindspore") writes them, plain or in MindSpore's frame format.

Ground truth: tests/interop/mindspore (files made by MindSpore 2.10 itself, expected.json holding the
parameters it saved). Frames modelcrypt writes are checked with the independent reader in
tests/legacy_reference.py.
"""

from __future__ import annotations

import binascii
import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import legacy_reference as R  # noqa: E402

import modelcrypt  # noqa: E402
from modelcrypt import load_checkpoint, save_checkpoint  # noqa: E402
from modelcrypt import mindspore as ms  # noqa: E402

MS_DIR = HERE / "interop" / "mindspore"
KEY16 = b"0123456789ABCDEF"
EXPECTED = json.loads((MS_DIR / "expected.json").read_text())
PLAIN = (MS_DIR / "a_plain.ckpt").read_bytes()
# (file, mode, has a MAC?). Every MindSpore-encrypted checkpoint is read only when asked for
# (format="mindspore", implied by the modes AES-CBC / SM4-CBC) and warns (InsecureFormatWarning):
# CBC / SM4 have no MAC, GCM frames can be dropped, reordered and spliced.
ENCRYPTED = [("b_gcm16.ckpt", "AES-GCM", True), ("c_cbc16.ckpt", "AES-CBC", False),
             ("g_sm4cbc16.ckpt", "SM4-CBC", False)]
INSECURE = getattr(modelcrypt, "InsecureFormatWarning", UserWarning)


def expected_params() -> dict[str, np.ndarray]:
    return {name: np.array(p["values"], dtype=p["dtype"]).reshape(p["shape"]) for name, p in EXPECTED["params"].items()}


def assert_exact(got: dict, want: dict) -> None:
    assert list(got) == list(want)
    for name in want:
        g, w = got[name], want[name]
        assert g.dtype == w.dtype and g.shape == w.shape, name
        assert g.tobytes() == w.tobytes(), name  # bit for bit


def load_quiet(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", INSECURE)
        return load_checkpoint(*args, **kwargs)


# ------------------------------------------------------------------ the fixture's protobuf


def test_parse_fixture_exactly():
    got = ms.parse_checkpoint(PLAIN)
    assert list(got) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert_exact(got, expected_params())
    for a in got.values():
        assert a.flags.writeable and a.flags.c_contiguous


def test_parse_accepts_any_buffer():
    for buf in (bytearray(PLAIN), memoryview(PLAIN), np.frombuffer(PLAIN, np.uint8)):
        assert_exact(ms.parse_checkpoint(buf), expected_params())


def test_build_reproduces_mindspores_bytes():
    # MindSpore 2.10 wrote a_plain.ckpt; modelcrypt writes the same bytes for the same parameters.
    assert ms.build_checkpoint(expected_params()) == PLAIN


def test_checkpoint_is_concatenated_messages():
    # One serialized Checkpoint message per parameter; protobuf's merge of repeated fields makes the
    # concatenation parse as one message holding all of them.
    parts = ms.build_parts(expected_params())
    assert len(parts) == 4 and b"".join(parts) == PLAIN
    merged = {}
    for part in parts:
        one = ms.parse_checkpoint(part)
        assert len(one) == 1
        merged.update(one)
    assert_exact(merged, expected_params())
    assert PLAIN.startswith(parts[0]) and PLAIN.endswith(parts[-1])


def test_looks_like_checkpoint():
    assert ms.looks_like_checkpoint(PLAIN)
    header = b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    assert not ms.looks_like_checkpoint(len(header).to_bytes(8, "little") + header)
    assert not ms.looks_like_checkpoint(b"")
    assert not ms.looks_like_checkpoint((MS_DIR / "b_gcm16.ckpt").read_bytes())


# ------------------------------------------------------------------ building: dtypes and shapes


def test_round_trip_dtypes_and_shapes():
    rng = np.random.default_rng(7)
    params = {
        "f64": rng.standard_normal((2, 3)),
        "f32": rng.standard_normal((4,)).astype(np.float32),
        "f16": rng.standard_normal((2, 2, 2)).astype(np.float16),
        "i64": np.array([-(2**63), 2**63 - 1], dtype=np.int64),
        "i32": np.arange(-5, 5, dtype=np.int32).reshape(2, 5),
        "i16": np.array([-32768, 32767], dtype=np.int16),
        "i8": np.arange(-128, 128, dtype=np.int8),
        "u64": np.array([0, 2**64 - 1], dtype=np.uint64),
        "u32": np.array([2**32 - 1], dtype=np.uint32),
        "u16": np.array([65535], dtype=np.uint16),
        "u8": np.arange(256, dtype=np.uint8),
        "bool": np.array([[True, False], [False, True]]),
        "nan": np.array([np.nan, np.inf, -np.inf, -0.0], dtype=np.float32),
        "scalar": np.float32(2.5),
        "scalar0d": np.array(7, dtype=np.int64),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "big_endian": np.arange(6, dtype=">i4").reshape(2, 3),
        "non_contiguous": np.arange(12, dtype=np.float64).reshape(3, 4).T,
        "名前/ü": np.ones((1,), dtype=np.float32),
    }
    got = ms.parse_checkpoint(ms.build_checkpoint(params))
    assert list(got) == list(params)
    types = {"big_endian": np.dtype("<i4")}
    for name, value in params.items():
        want = np.asarray(value)
        g = got[name]
        assert g.shape == want.shape, name
        assert g.dtype == types.get(name, want.dtype.newbyteorder("<") if want.dtype.itemsize > 1 else want.dtype), name
        assert g.tobytes() == want.astype(g.dtype).tobytes(), name


def test_scalar_written_with_dims_zero():
    # MindSpore writes a 0-d tensor with dims [0] (wire: field 1 varint 0 -> 08 00) and reads it back as 0-d.
    data = ms.build_checkpoint({"s": np.float32(1.0)})
    assert b"\x08\x00\x12\x07Float32" in data
    assert ms.parse_checkpoint(data)["s"].shape == ()


def test_bfloat16():
    ml_dtypes = pytest.importorskip("ml_dtypes", reason="ml_dtypes (a test extra) provides numpy bfloat16")
    a = np.array([1.0, -2.5, 3.0e38], dtype=ml_dtypes.bfloat16)
    data = ms.build_checkpoint({"bf": a})
    assert b"BFloat16" in data
    got = ms.parse_checkpoint(data)["bf"]
    assert got.dtype == np.uint16 and got.tobytes() == a.tobytes()  # raw bits, as for safetensors BF16
    assert np.array_equal(got.view(ml_dtypes.bfloat16), a)


def test_torch_tensors():
    torch = pytest.importorskip("torch")
    params = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.ones(2, dtype=torch.bfloat16)}
    got = ms.parse_checkpoint(ms.build_checkpoint(params))
    assert np.array_equal(got["w"], params["w"].numpy())
    assert got["b"].dtype == np.uint16
    assert torch.equal(torch.from_numpy(got["b"]).view(torch.bfloat16), params["b"])


def test_strings():
    # MindSpore's append_dict strings: tensor_type "str", numpy UTF-32 content, dims [0].
    got = ms.parse_checkpoint(ms.build_checkpoint({"note": "héllo wörld", "empty": ""}))
    assert str(got["note"]) == "héllo wörld" and got["note"].shape == ()
    assert str(got["empty"]) == ""


def test_sliced_parameters_are_joined():
    a = np.arange(1000, dtype=np.float32).reshape(10, 100)
    parts = ms.build_parts({"a": a, "b": np.ones(3, np.int8)}, slice_bytes=1000)
    assert len(parts) == 5  # 4000 bytes in 4 records, then b
    got = ms.parse_checkpoint(b"".join(parts))
    assert np.array_equal(got["a"], a) and list(got) == ["a", "b"]


def test_crc_trailer():
    trailer = b"crc_num" + binascii.crc32(PLAIN).to_bytes(10, "big")
    assert_exact(ms.parse_checkpoint(PLAIN + trailer), expected_params())
    bad = b"crc_num" + (binascii.crc32(PLAIN) ^ 1).to_bytes(10, "big")
    with pytest.raises(modelcrypt.FormatError, match="crc"):
        ms.parse_checkpoint(PLAIN + bad)


def record(tag: str, tensor_type: str, dims: list[int], content: bytes) -> bytes:
    Checkpoint, _ = ms._message_classes()
    msg = Checkpoint()
    v = msg.value.add()
    v.tag = tag
    v.tensor.dims.extend(dims)
    v.tensor.tensor_type = tensor_type
    v.tensor.tensor_content = content
    return msg.SerializeToString()


@pytest.mark.parametrize("data, needle", [
    (b"\xff\xff\xff\xff not protobuf", "not a MindSpore checkpoint"),
    (PLAIN[:-3], "not a MindSpore checkpoint"),
    (record("x", "Complex64", [1], b"\0" * 8), "Complex64"),
    (record("x", "Float32", [2, 2], b"\0" * 12), "needs 16 bytes"),
    (record("x", "Float32", [3], b"\0" * 10), "multiple"),
    (record("x", "Float32", [1], b"\0" * 4) + record("y", "Float32", [1], b"\0" * 4)
     + record("x", "Float32", [1], b"\0" * 4), "twice"),
    (record("x", "Float32", [2], b"\0" * 4) + record("x", "Int32", [2], b"\0" * 4), "disagree"),
])
def test_malformed(data, needle):
    with pytest.raises(modelcrypt.FormatError, match=needle):
        ms.parse_checkpoint(data)


def test_map_parameter_refused():
    Checkpoint, _ = ms._message_classes()
    msg = Checkpoint()
    v = msg.value.add()
    v.tag = "table"
    t = v.maptensor.tensor.add()
    t.tensor_type, t.tensor_content = "Int64", b"\0" * 8
    with pytest.raises(modelcrypt.FormatError, match="MapParameter"):
        ms.parse_checkpoint(msg.SerializeToString())


def test_unsupported_values():
    with pytest.raises(TypeError, match="complex"):
        ms.build_checkpoint({"c": np.zeros(2, np.complex64)})
    with pytest.raises(TypeError):
        ms.build_checkpoint({"o": [1, 2]})
    with pytest.raises(TypeError):
        ms.build_checkpoint({1: np.zeros(1)})
    with pytest.raises(TypeError):
        ms.build_checkpoint([np.zeros(1)])


# ------------------------------------------------------------------ load_checkpoint


def test_load_plain_fixture():
    assert_exact(load_checkpoint(MS_DIR / "a_plain.ckpt"), expected_params())
    assert_exact(load_checkpoint(MS_DIR / "a_plain.ckpt", names=["fc2.bias", "fc1.bias"]),
                 {k: expected_params()[k] for k in ("fc2.bias", "fc1.bias")})
    with pytest.raises(KeyError, match="nope"):
        load_checkpoint(MS_DIR / "a_plain.ckpt", names=["nope"])


def test_plain_fixture_with_key_refused():
    with pytest.raises(modelcrypt.FormatError, match="plaintext MindSpore checkpoint"):
        load_checkpoint(MS_DIR / "a_plain.ckpt", KEY16)


@pytest.mark.parametrize("name, mode, mac", ENCRYPTED)
def test_load_mindspore_encrypted_fixtures(name, mode, mac):
    path = MS_DIR / name
    # AES-GCM exists in format v1 too, so a MindSpore GCM file needs the opt-in; the CBC modes imply it
    formats = ["mindspore", "auto"] + (["modelcrypt"] if mode != "AES-GCM" else [])
    for fmt in formats:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = load_checkpoint(path, KEY16, mode, format=fmt)
        assert_exact(got, expected_params())
        assert any(issubclass(w.category, INSECURE) for w in caught), fmt  # every MindSpore format warns
        assert_exact(load_quiet(path, KEY16, mode, names=["fc1.weight"], format=fmt),
                     {"fc1.weight": expected_params()["fc1.weight"]})
    if mode == "AES-GCM":
        with pytest.raises(modelcrypt.FormatError, match="format='mindspore'"):
            load_checkpoint(path, KEY16, mode)
        with pytest.raises(modelcrypt.FormatError, match="format='mindspore'"):
            load_checkpoint(path, KEY16, mode, format="paddlex")


@pytest.mark.parametrize("name, mode, mac", ENCRYPTED)
def test_load_mindspore_encrypted_errors(name, mode, mac):
    path = MS_DIR / name
    with pytest.raises(ValueError, match="dec_key"):
        load_checkpoint(path)
    with pytest.raises(ValueError, match="dec_key"):
        load_checkpoint(path, format="mindspore")
    other = "AES-CBC" if mode == "AES-GCM" else "AES-GCM"
    with pytest.raises(ValueError) as info:  # the mode must agree with the file (format accepted)
        load_quiet(path, KEY16, other, format="mindspore")
    assert not isinstance(info.value, modelcrypt.ModelCryptError)
    assert other in str(info.value) and mode in str(info.value)
    with pytest.raises(ValueError, match="format"):
        load_checkpoint(path, KEY16, mode, format="onnx")
    if mac:
        with pytest.raises(modelcrypt.AuthenticationError):
            load_quiet(path, b"F" * 16, mode, format="mindspore")


def test_modelcrypt_file_holding_a_mindspore_checkpoint(tmp_path):
    # What `modelcrypt migrate` makes of a MindSpore checkpoint: a v1 file whose plaintext is the protobuf.
    key = modelcrypt.generate_key()
    path = tmp_path / "net.ckpt"
    path.write_bytes(modelcrypt.encrypt_bytes(PLAIN, key, chunk_size=64 * 1024))
    assert_exact(load_checkpoint(path, key), expected_params())
    assert_exact(load_checkpoint(path, key, names=["fc2.weight"]), {"fc2.weight": expected_params()["fc2.weight"]})
    with pytest.raises(KeyError):
        load_checkpoint(path, key, names=["missing"])
    with pytest.raises(modelcrypt.KeyMismatchError):
        load_checkpoint(path, modelcrypt.generate_key())


# ------------------------------------------------------------------ save_checkpoint(format="mindspore")


def test_save_plain(tmp_path):
    path = tmp_path / "plain.ckpt"
    assert save_checkpoint(expected_params(), path, format="mindspore") == str(path)
    assert path.read_bytes() == PLAIN
    assert_exact(load_checkpoint(path), expected_params())
    assert os.listdir(tmp_path) == ["plain.ckpt"]


@pytest.mark.parametrize("mode", ["AES-GCM", "AES-CBC", "SM4-CBC"])
def test_save_encrypted_mindspore_frames(tmp_path, mode):
    path = tmp_path / "enc.ckpt"
    params = expected_params()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        save_checkpoint(params, path, KEY16, mode, format="mindspore")
    assert any(issubclass(w.category, INSECURE) for w in caught)  # every MindSpore format warns, GCM included
    data = path.read_bytes()
    assert R.mindspore_mode(data) == mode
    assert R.read_mindspore(data, KEY16, mode) == PLAIN  # the independent frame reader
    assert_exact(load_quiet(path, KEY16, mode, format="mindspore"), params)
    assert os.listdir(tmp_path) == ["enc.ckpt"]


@pytest.mark.parametrize("key", [bytes(range(16)), bytes(range(24)), bytes(range(32))])
def test_save_gcm_key_sizes(tmp_path, key):
    path = tmp_path / "k.ckpt"
    save_checkpoint(expected_params(), path, key, format="mindspore")
    assert R.read_mindspore(path.read_bytes(), key) == PLAIN
    with pytest.raises(modelcrypt.FormatError, match="format='mindspore'"):
        load_checkpoint(path, key)
    assert_exact(load_quiet(path, key, format="mindspore"), expected_params())


def test_save_fresh_nonces(tmp_path):
    a, b = tmp_path / "a.ckpt", tmp_path / "b.ckpt"
    save_checkpoint(expected_params(), a, KEY16, format="mindspore")
    save_checkpoint(expected_params(), b, KEY16, format="mindspore")
    fa, fb = R.parse_mindspore(a.read_bytes()), R.parse_mindspore(b.read_bytes())
    assert fa[0].iv != fb[0].iv and fa[0].ciphertext != fb[0].ciphertext


def test_save_large_is_framed_at_64_mib(tmp_path):
    params = {"big": np.arange((65 << 20) // 4 + 1000, dtype=np.float32), "tail": np.ones(3, np.float32)}
    path = tmp_path / "big.ckpt"
    save_checkpoint(params, path, KEY16, format="mindspore")
    data = path.read_bytes()
    frames = R.parse_mindspore(data)
    assert len(frames) == 2
    assert frames[0].cipher_len == R.MS_MAX_FRAME_PLAIN  # GCM: ciphertext length == plaintext length
    assert R.read_mindspore(data, KEY16) == ms.build_checkpoint(params)
    got = load_quiet(path, KEY16, format="mindspore")
    assert np.array_equal(got["big"], params["big"]) and np.array_equal(got["tail"], params["tail"])


def test_save_custom_cipher(tmp_path):
    def enc(model_stream: bytes, key: bytes) -> bytes:
        return bytes(b ^ key[0] for b in model_stream)

    def dec(cipher_file: str, key: bytes) -> bytes:
        with open(cipher_file, "rb") as f:
            return bytes(b ^ key[0] for b in f.read())

    path = tmp_path / "custom.ckpt"
    save_checkpoint(expected_params(), path, KEY16, enc, format="mindspore")
    assert path.read_bytes() == bytes(b ^ KEY16[0] for b in PLAIN)
    assert_exact(load_checkpoint(path, KEY16, dec), expected_params())
    assert_exact(load_checkpoint(path, KEY16, dec, names=["fc1.bias"]), {"fc1.bias": expected_params()["fc1.bias"]})


def test_save_options_refused(tmp_path):
    with pytest.raises(ValueError, match="max_shard_size"):
        save_checkpoint(expected_params(), tmp_path / "x", format="mindspore", max_shard_size="1KB")
    with pytest.raises(ValueError, match="metadata"):
        save_checkpoint(expected_params(), tmp_path / "x", format="mindspore", metadata={"a": "b"})
    with pytest.raises(ValueError, match="format"):
        save_checkpoint(expected_params(), tmp_path / "x", format="onnx")
    with pytest.raises(TypeError):
        save_checkpoint(expected_params(), tmp_path / "x", format=1)
    assert os.listdir(tmp_path) == []


def test_safetensors_default_unchanged(tmp_path):
    path = tmp_path / "st.ckpt"
    save_checkpoint(expected_params(), path)
    assert not ms.looks_like_checkpoint(path.read_bytes())
    assert_exact(load_checkpoint(path), expected_params())
    key = modelcrypt.generate_key()
    save_checkpoint(expected_params(), path, key)
    assert modelcrypt.is_encrypted(path)
    assert_exact(load_checkpoint(path, key), expected_params())
