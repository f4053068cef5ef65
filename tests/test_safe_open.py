"""modelcrypt.safe_open side by side with safetensors.safe_open on the decrypted file (real torch,
safetensors, OpenSSL, real files): the same keys, metadata and tensors for every dtype and both
frameworks; shards through their index; only the chunks a call needs read; errors. (Slices of every
shape: test_safe_open_slices.py.)"""

from __future__ import annotations

import io
import json
import os
import struct

import numpy as np
import pytest

import modelcrypt
from modelcrypt.exceptions import AuthenticationError, FormatError, KeyMismatchError, SetMismatchError

from conftest import require
from test_http_source import _options, http, server  # noqa: F401  (the 127.0.0.1 HTTP server fixtures)

torch = require("torch")
safetensors = require("safetensors")
from safetensors import safe_open as st_safe_open  # noqa: E402
from safetensors.torch import save_file as st_save_file  # noqa: E402

KEY = bytes(range(32))
CHUNK = 64 << 10


def _every_dtype() -> dict:
    """One tensor of every dtype torch and safetensors share, with distinct raw bytes."""
    g = torch.Generator().manual_seed(0)
    raw = lambda shape: torch.randint(0, 256, shape, dtype=torch.uint8, generator=g)  # noqa: E731
    tensors = {
        "f64": torch.randn(3, 5, dtype=torch.float64, generator=g),
        "f32": torch.randn(7, 6, 5, generator=g),
        "f16": torch.randn(4, 9, generator=g).half(),
        "bf16": torch.randn(6, 4, generator=g).bfloat16(),
        "i64": torch.randint(-2**40, 2**40, (5, 3), generator=g),
        "i32": torch.randint(-2**30, 2**30, (8,), generator=g, dtype=torch.int32),
        "i16": torch.randint(-2**15, 2**15, (3, 4), generator=g, dtype=torch.int16),
        "i8": torch.randint(-128, 128, (2, 3, 4), generator=g, dtype=torch.int8),
        "u64": raw((6, 8)).view(torch.uint64),
        "u32": raw((5, 4)).view(torch.uint32),
        "u16": raw((3, 6)).view(torch.uint16),
        "u8": raw((4, 7)),
        "bool": raw((5, 5)) > 127,
        "c64": torch.randn(4, 3, dtype=torch.complex64, generator=g),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 4),
        "fp4": raw((3, 4)).view(torch.float4_e2m1fn_x2),
    }
    for name, dtype in [("f8_e4m3", "float8_e4m3fn"), ("f8_e4m3fnuz", "float8_e4m3fnuz"), ("f8_e5m2", "float8_e5m2"),
                        ("f8_e5m2fnuz", "float8_e5m2fnuz"), ("f8_e8m0", "float8_e8m0fnu")]:
        tensors[name] = raw((6, 5)).view(getattr(torch, dtype))
    return tensors


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """(encrypted file, its decryption) of a safetensors file holding every dtype."""
    d = tmp_path_factory.mktemp("safe_open")
    st_save_file(_every_dtype(), d / "plain.safetensors", metadata={"format": "pt", "note": "every dtype"})
    modelcrypt.encrypt_file(d / "plain.safetensors", d / "model.enc", KEY, chunk_size=4096)
    os.unlink(d / "plain.safetensors")
    modelcrypt.decrypt_file(d / "model.enc", d / "decrypted.safetensors", KEY)
    return d / "model.enc", d / "decrypted.safetensors"


def _same(ours, theirs, framework):
    if framework == "pt":
        assert isinstance(ours, torch.Tensor)
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        as_bytes = lambda t: torch.empty(t.shape, dtype=t.dtype).copy_(t).reshape(-1).view(torch.uint8)  # noqa: E731
        assert torch.equal(as_bytes(ours), as_bytes(theirs))
    else:
        assert isinstance(ours, np.ndarray)
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        assert ours.tobytes() == theirs.tobytes()


@pytest.mark.parametrize("framework", ["pt", "np"])
def test_every_dtype_as_safetensors_returns_it(files, framework):
    enc, dec = files
    with modelcrypt.safe_open(enc, KEY, framework=framework) as ours, st_safe_open(dec, framework) as theirs:
        assert ours.keys() == theirs.keys()
        assert ours.offset_keys() == theirs.offset_keys()
        assert ours.metadata() == theirs.metadata() == {"format": "pt", "note": "every dtype"}
        refused = 0
        for name in theirs.keys():
            assert ours.get_slice(name).get_shape() == theirs.get_slice(name).get_shape()
            assert ours.get_slice(name).get_dtype() == theirs.get_slice(name).get_dtype()
            try:
                expected = theirs.get_tensor(name)
            except (TypeError, AttributeError):  # numpy has no bf16, fp8, fp4: safetensors refuses too
                assert framework == "np"
                refused += 1
                with pytest.raises(TypeError, match=f"{ours.get_slice(name).get_dtype()} has no numpy dtype"):
                    ours.get_tensor(name)
                continue
            _same(ours.get_tensor(name), expected, framework)
        # numpy: five fp8 and fp4, and bf16 unless ml_dtypes (imported by some test) has registered it
        assert refused == ((6 + (not _numpy_has_bfloat16())) if framework == "np" else 0)


def test_torch_dtypes_are_the_real_ones(files):
    with modelcrypt.safe_open(files[0], KEY, framework="pt") as f:
        assert f.get_tensor("bf16").dtype == torch.bfloat16
        assert f.get_tensor("f8_e4m3").dtype == torch.float8_e4m3fn
        assert f.get_tensor("f8_e5m2").dtype == torch.float8_e5m2
        assert f.get_tensor("f8_e8m0").dtype == torch.float8_e8m0fnu
        assert f.get_tensor("fp4").dtype == torch.float4_e2m1fn_x2
        assert f.get_slice("fp4").get_shape() == [3, 8]  # the header's shape: two values a byte
        assert f.get_tensor("c64").dtype == torch.complex64
        with pytest.raises(TypeError, match="F4"):
            f.get_slice("fp4")[0:1]


def test_get_tensors_as_safetensors(files):
    with modelcrypt.safe_open(files[0], KEY, framework="pt", device=torch.device("cpu")) as ours, \
            st_safe_open(files[1], "pt") as theirs:
        got, expected = ours.get_tensors(), theirs.get_tensors()
        assert list(got) == list(expected)
        for name in expected:
            _same(got[name], expected[name], "pt")


def _numpy_has_bfloat16() -> bool:
    try:
        np.dtype("bfloat16")
        return True
    except TypeError:
        return False


def test_numpy_refuses_torch_only_dtypes_like_safetensors(files):
    enc, dec = files
    with modelcrypt.safe_open(enc, KEY, framework="np") as ours, st_safe_open(dec, "np") as theirs:
        for name in ["f8_e4m3", "f8_e5m2", "f8_e8m0", "fp4"] + ([] if _numpy_has_bfloat16() else ["bf16"]):
            with pytest.raises((TypeError, AttributeError)):
                theirs.get_tensor(name)
            with pytest.raises(TypeError, match="framework=\"pt\""):
                ours.get_tensor(name)
            with pytest.raises(TypeError, match="no numpy dtype"):
                ours.get_slice(name)[0:1]


def test_numpy_bfloat16_with_ml_dtypes_as_safetensors(files):
    """With ml_dtypes imported (it registers numpy's "bfloat16"), safetensors' numpy framework returns
    ml_dtypes.bfloat16 arrays: so does this reader, tensors and slices."""
    ml_dtypes = require("ml_dtypes")
    enc, dec = files
    with modelcrypt.safe_open(enc, KEY, framework="np") as ours, st_safe_open(dec, "np") as theirs:
        got, expected = ours.get_tensor("bf16"), theirs.get_tensor("bf16")
        assert got.dtype == expected.dtype == np.dtype(ml_dtypes.bfloat16)
        _same(got, expected, "np")
        _same(ours.get_slice("bf16")[1:4, 2:], theirs.get_slice("bf16")[1:4, 2:], "np")


def _raw_safetensors(header: dict, data: bytes) -> bytes:
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def test_dtypes_without_a_framework_type(tmp_path):
    """F6 (and F4 with an odd last dimension) are valid headers; neither framework has a type for them."""
    plain = _raw_safetensors({"f6": {"dtype": "F6_E2M3", "shape": [4, 4], "data_offsets": [0, 12]},
                              "f4": {"dtype": "F4", "shape": [2, 3], "data_offsets": [12, 15]}}, bytes(range(15)))
    (tmp_path / "m.enc").write_bytes(modelcrypt.encrypt_bytes(plain, KEY))
    (tmp_path / "m.safetensors").write_bytes(plain)
    for framework in ("pt", "np"):
        with modelcrypt.safe_open(tmp_path / "m.enc", KEY, framework=framework) as ours, \
                st_safe_open(tmp_path / "m.safetensors", framework) as theirs:
            assert ours.keys() == theirs.keys()
            for name in ("f6", "f4"):
                assert ours.get_slice(name).get_dtype() == theirs.get_slice(name).get_dtype()
                assert ours.get_slice(name).get_shape() == theirs.get_slice(name).get_shape()
                with pytest.raises(Exception):  # noqa: B017  (safetensors' error type here is not part of its API)
                    theirs.get_tensor(name)
                with pytest.raises((TypeError, ValueError), match="F6_E2M3 has no|F4|no numpy dtype"):
                    ours.get_tensor(name)


def test_save_checkpoint_file_and_plaintext(tmp_path):
    params = {"w": np.arange(60, dtype=np.float32).reshape(6, 10), "b": np.arange(5, dtype=np.int16)}
    modelcrypt.save_checkpoint(params, tmp_path / "c.enc", KEY, metadata={"epoch": "3"})
    modelcrypt.save_checkpoint(params, tmp_path / "c.safetensors", metadata={"epoch": "3"})
    with modelcrypt.safe_open(tmp_path / "c.enc", KEY, framework="np") as ours, \
            st_safe_open(tmp_path / "c.safetensors", "np") as theirs:
        assert ours.keys() == theirs.keys() == ["b", "w"]
        assert ours.metadata() == theirs.metadata()
        np.testing.assert_array_equal(ours.get_slice("w")[2:4, 3:7], params["w"][2:4, 3:7])
    with modelcrypt.safe_open(tmp_path / "c.safetensors", framework="pt") as plain:  # plaintext: no key
        assert torch.equal(plain.get_slice("w")[1], torch.from_numpy(params["w"][1]))
        assert plain.metadata() == {"epoch": "3"}
    with pytest.raises(FormatError, match="not an encrypted modelcrypt file"):  # as load_checkpoint refuses it
        modelcrypt.safe_open(tmp_path / "c.safetensors", KEY)
    with pytest.raises(ValueError, match="encrypted"):
        modelcrypt.safe_open(tmp_path / "c.enc")


def test_metadata_none_without_one(tmp_path):
    st_save_file({"a": torch.ones(2)}, tmp_path / "p.safetensors")
    modelcrypt.encrypt_file(tmp_path / "p.safetensors", tmp_path / "p.enc", KEY)
    with modelcrypt.safe_open(tmp_path / "p.enc", KEY) as ours, st_safe_open(tmp_path / "p.safetensors", "pt") as th:
        assert ours.metadata() is None and th.metadata() is None


@pytest.fixture
def sharded(tmp_path):
    g = np.random.default_rng(1)
    params = {f"layer{i}.weight": g.standard_normal((16, 32)).astype(np.float32) for i in range(5)}
    params["embed"] = g.integers(0, 100, (64, 8)).astype(np.int64)
    modelcrypt.save_checkpoint(params, tmp_path / "model.safetensors", KEY, max_shard_size="4KB",
                               metadata={"who": "test"})
    index = tmp_path / "model.safetensors.index.json"
    assert len(set(json.loads(index.read_text())["weight_map"].values())) > 2
    return index, params


def test_sharded_checkpoint_through_its_index(sharded, tmp_path):
    index, params = sharded
    with modelcrypt.safe_open(index, KEY, framework="np") as f:
        assert f.keys() == sorted(params)
        assert sorted(f.offset_keys()) == sorted(params)
        assert f.metadata() == {"who": "test"}
        for name, value in params.items():
            np.testing.assert_array_equal(f.get_tensor(name), value)
            np.testing.assert_array_equal(f.get_slice(name)[3:5, 1::3], value[3:5, 1::3])
    for shard in set(json.loads(index.read_text())["weight_map"].values()):  # each shard, decrypted, is safetensors
        modelcrypt.decrypt_file(tmp_path / shard, tmp_path / ("plain-" + shard), KEY)
        with st_safe_open(tmp_path / ("plain-" + shard), "pt") as theirs, \
                modelcrypt.safe_open(index, KEY, framework="pt") as ours:
            for name in theirs.keys():
                _same(ours.get_slice(name)[1:], theirs.get_slice(name)[1:], "pt")


def test_sharded_set_is_checked(sharded, tmp_path):
    index, params = sharded
    doc = json.loads(index.read_text())
    names = sorted(doc["weight_map"])
    a, b = doc["weight_map"][names[0]], doc["weight_map"][names[-1]]
    assert a != b
    doc["weight_map"][names[0]] = b  # the index says a tensor lives in another shard
    (tmp_path / "edited.index.json").write_text(json.dumps(doc))
    with pytest.raises(SetMismatchError):
        modelcrypt.safe_open(tmp_path / "edited.index.json", KEY)
    os.unlink(tmp_path / a)
    with pytest.raises((SetMismatchError, FileNotFoundError)):
        modelcrypt.safe_open(index, KEY)


class _Counting(io.FileIO):
    """A file whose reads are counted (the bytes of the encrypted file a call reads)."""
    count = 0

    def read(self, n=-1):
        data = super().read(n)
        self.count += len(data)
        return data


def test_reads_only_the_chunks_a_call_needs(tmp_path):
    """A 32 MiB file read through a file object that counts bytes: get_tensor of one 4 MiB tensor and
    slices of it read only their chunks (plus the header's)."""
    rows, cols = 1024, 1024
    g = np.random.default_rng(2)
    params = {f"w{i}": g.standard_normal((rows, cols), dtype=np.float32) for i in range(8)}
    modelcrypt.save_checkpoint(params, tmp_path / "big.safetensors")
    modelcrypt.encrypt_file(tmp_path / "big.safetensors", tmp_path / "big.enc", KEY, chunk_size=CHUNK)
    assert os.path.getsize(tmp_path / "big.enc") > 32 << 20

    frame = CHUNK + 16
    with _Counting(tmp_path / "big.enc") as raw, modelcrypt.safe_open(raw, KEY, framework="np") as f:
        opened = raw.count
        assert opened < 3 * frame  # the modelcrypt header and the chunk holding the safetensors header
        raw.count = 0
        np.testing.assert_array_equal(f.get_tensor("w5"), params["w5"])
        assert rows * cols * 4 <= raw.count <= (rows * cols * 4 // CHUNK + 2) * frame
        raw.count = 0
        np.testing.assert_array_equal(f.get_slice("w3")[10:20], params["w3"][10:20])  # 40 KiB
        assert raw.count <= 2 * frame
        raw.count = 0
        np.testing.assert_array_equal(f.get_slice("w6")[700, 5:9], params["w6"][700, 5:9])
        assert raw.count <= frame
        raw.count = 0
        np.testing.assert_array_equal(f.get_slice("w1")[:, 2:5], params["w1"][:, 2:5])  # the tensor's rows, no more
        assert raw.count <= (rows * cols * 4 // CHUNK + 2) * frame


def _tamper(path, plaintext_len, chunk, index):
    blob = bytearray(path.read_bytes())
    chunks = -(-plaintext_len // chunk)
    header = len(blob) - (plaintext_len + chunks * 16)
    blob[header + index * (chunk + 16) + 5] ^= 1
    path.write_bytes(blob)


def test_wrong_key_tampering_and_bad_input(tmp_path):
    params = {"a": np.arange(4096, dtype=np.float32), "b": np.arange(4096, dtype=np.float32)}
    modelcrypt.save_checkpoint(params, tmp_path / "p.safetensors")
    modelcrypt.encrypt_file(tmp_path / "p.safetensors", tmp_path / "p.enc", KEY, chunk_size=4096)
    with pytest.raises(KeyMismatchError):
        modelcrypt.safe_open(tmp_path / "p.enc", bytes(32))
    total = os.path.getsize(tmp_path / "p.safetensors")
    with modelcrypt.safe_open(tmp_path / "p.enc", KEY, framework="np") as f:
        first_b = f.offset_keys()[1]
    _tamper(tmp_path / "p.enc", total, 4096, (total - 8192) // 4096)  # the chunk of the last tensor's middle
    with modelcrypt.safe_open(tmp_path / "p.enc", KEY, framework="np") as f:
        assert f.offset_keys()[1] == first_b
        np.testing.assert_array_equal(f.get_slice(f.offset_keys()[0])[:100], params[f.offset_keys()[0]][:100])
        with pytest.raises(AuthenticationError):
            f.get_tensor(first_b)
        with pytest.raises(AuthenticationError):
            f.get_slice(first_b)[2048:2049]
        with pytest.raises(KeyError, match="does not contain tensor 'nope'"):
            f.get_tensor("nope")
        with pytest.raises(KeyError):
            f.get_slice("nope")
        with pytest.raises(TypeError):
            f.get_tensor(3)
    _tamper(tmp_path / "p.enc", total, 4096, 0)  # the chunk holding the safetensors header: refused at open
    with pytest.raises(AuthenticationError):
        modelcrypt.safe_open(tmp_path / "p.enc", KEY)
    with pytest.raises(ValueError, match="framework"):
        modelcrypt.safe_open(tmp_path / "p.enc", KEY, framework="jax")
    with pytest.raises(TypeError, match="bytes-like"):
        modelcrypt.safe_open(tmp_path / "p.safetensors", "not a key")
    with pytest.raises(ValueError, match="16, 24 or 32"):
        modelcrypt.safe_open(tmp_path / "p.enc", b"short")
    with pytest.raises(ValueError, match="device"):
        modelcrypt.safe_open(tmp_path / "p.enc", KEY, framework="np", device="cuda")
    with pytest.raises(ValueError, match="not a torch device"):
        modelcrypt.safe_open(tmp_path / "p.enc", KEY, framework="pt", device="nowhere")


def test_malformed_header_is_a_format_error(tmp_path):
    for plain in [b"\xff" * 64, struct.pack("<Q", 8) + b"{nope:1}" + b"\0" * 8,
                  _raw_safetensors({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}, b"\0" * 8),
                  _raw_safetensors({"a": {"dtype": "Q8", "shape": [1], "data_offsets": [0, 1]}}, b"\0")]:
        (tmp_path / "m.enc").write_bytes(modelcrypt.encrypt_bytes(plain, KEY))
        with pytest.raises(FormatError):
            modelcrypt.safe_open(tmp_path / "m.enc", KEY)


def test_use_after_close(files):
    f = modelcrypt.safe_open(files[0], KEY, framework="pt")
    s = f.get_slice("f32")
    t = f.get_tensor("f32")
    f.close()
    assert f.closed and "closed" in repr(f)
    for call in (f.keys, f.metadata, lambda: f.get_tensor("f32"), lambda: s[0:1], lambda: f.get_slice("f32")):
        with pytest.raises(ValueError, match="closed"):
            call()
    assert t.shape == (7, 6, 5)  # tensors returned stay valid


def test_identity_and_trusted_signers(tmp_path):
    ident = modelcrypt.generate_identity()
    signer = modelcrypt.generate_signing_key()
    params = {"w": np.arange(12, dtype=np.float32).reshape(3, 4)}
    modelcrypt.save_checkpoint(params, tmp_path / "r.enc", recipients=[ident.recipient], signing_key=signer)
    with modelcrypt.safe_open(tmp_path / "r.enc", identity=ident, trusted_signers=[signer.public_key],
                              framework="np") as f:
        np.testing.assert_array_equal(f.get_slice("w")[1:], params["w"][1:])
    with pytest.raises(modelcrypt.SignatureError):
        modelcrypt.safe_open(tmp_path / "r.enc", identity=ident, trusted_signers=[modelcrypt.generate_signing_key()])
    with pytest.raises(ValueError, match="trusted_signers"):
        modelcrypt.safe_open(tmp_path / "r.enc", trusted_signers=[signer.public_key])


def test_urls_single_file_and_index(http, tmp_path):
    """Over HTTP (127.0.0.1): a slice downloads only its chunks (counted by the server); an index URL
    opens its shards by range, checked as a set."""
    g = np.random.default_rng(3)
    params = {f"t{i}": g.standard_normal((256, 256), dtype=np.float32) for i in range(6)}  # 256 KiB each
    modelcrypt.save_checkpoint(params, tmp_path / "one.safetensors")
    modelcrypt.encrypt_file(tmp_path / "one.safetensors", tmp_path / "one.enc", KEY, chunk_size=CHUNK)
    url = http.put("one.enc", (tmp_path / "one.enc").read_bytes())
    with modelcrypt.safe_open(url, KEY, framework="np", storage_options=_options()) as f:
        http.reset()
        np.testing.assert_array_equal(f.get_slice("t4")[100:110, ::5], params["t4"][100:110, ::5])
        assert 0 < http.sent <= 3 * (CHUNK + 16)
    (tmp_path / "sh").mkdir()
    modelcrypt.save_checkpoint(params, tmp_path / "sh" / "m.safetensors", KEY, max_shard_size="600KB")
    index = json.loads((tmp_path / "sh" / "m.safetensors.index.json").read_text())
    for shard in set(index["weight_map"].values()):
        http.put(f"sh/{shard}", (tmp_path / "sh" / shard).read_bytes())
    index_url = http.put("sh/m.safetensors.index.json", (tmp_path / "sh" / "m.safetensors.index.json").read_bytes())
    with modelcrypt.safe_open(index_url, KEY, framework="pt", storage_options=_options()) as f:
        assert f.keys() == sorted(params)
        assert torch.equal(f.get_slice("t5")[-3:], torch.from_numpy(params["t5"][-3:]))
    index["weight_map"]["t0"], index["weight_map"]["t5"] = index["weight_map"]["t5"], index["weight_map"]["t0"]
    bad_url = http.put("sh/bad.index.json", json.dumps(index).encode())
    with pytest.raises(SetMismatchError):
        modelcrypt.safe_open(bad_url, KEY, storage_options=_options())
