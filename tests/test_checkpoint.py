"""Checkpoints: save_checkpoint / load_checkpoint (safetensors layout, random access by name),
sharding with an index, load_distributed_checkpoint, CheckpointConfig / ModelCheckpoint rotation
and crash safety, custom cipher callables, strict header validation, and the PyTorch example.

Everything runs on real files. Decrypted checkpoints are read back with the real `safetensors`
package and torch tensors come from real torch; without them those tests skip with a reason,
unless MODELCRYPT_REQUIRE_FRAMEWORKS=1 (CI), where a missing package fails the test.
"""

import json
import os
import pathlib
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import modelcrypt
from conftest import require  # skip with a reason, or fail under MODELCRYPT_REQUIRE_FRAMEWORKS=1
from modelcrypt import _core, checkpoint

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
MIB = 1 << 20
CS = modelcrypt.DEFAULT_CHUNK_SIZE
ROOT = pathlib.Path(__file__).resolve().parent.parent


def _safetensors_numpy():
    return require("safetensors.numpy")


def _temp_files(directory):
    return [n for n in os.listdir(directory) if ".mctmp" in n]


def _all_dtypes():
    rng = np.random.default_rng(7)
    return {
        "f64": rng.standard_normal((3, 4)),
        "f32": rng.standard_normal((5,)).astype(np.float32),
        "f16": rng.standard_normal((2, 3)).astype(np.float16),
        "i64": rng.integers(-(2**62), 2**62, (4,), dtype=np.int64),
        "i32": rng.integers(-(2**31), 2**31 - 1, (2, 2), dtype=np.int32),
        "i16": rng.integers(-(2**15), 2**15 - 1, (3,), dtype=np.int16),
        "i8": rng.integers(-128, 127, (7,), dtype=np.int8),
        "u64": rng.integers(0, 2**63, (2,), dtype=np.uint64),
        "u32": rng.integers(0, 2**32 - 1, (3,), dtype=np.uint32),
        "u16": rng.integers(0, 2**16 - 1, (2, 1, 2), dtype=np.uint16),
        "u8": rng.integers(0, 255, (9,), dtype=np.uint8),
        "bool": np.array([True, False, True]),
        "scalar f32 (0-d)": np.array(1.5, dtype=np.float32),
        "scalar i64 (0-d)": np.array(-3, dtype=np.int64),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "empty bool": np.zeros((2, 0), dtype=bool),
        "名前 ünïcödé 🔑": np.arange(6, dtype=np.int32).reshape(2, 3),
        "": np.array([42], dtype=np.uint8),
        "big-endian": np.arange(4, dtype=">i4"),
        "transposed": np.arange(12, dtype=np.float64).reshape(3, 4).T,
    }


def _assert_same(loaded, expected):
    assert set(loaded) == set(expected)
    for name, arr in expected.items():
        got = loaded[name]
        assert got.shape == arr.shape, name
        assert got.dtype == arr.dtype.newbyteorder("<") or got.dtype == arr.dtype, name
        np.testing.assert_array_equal(got, arr, err_msg=name)


# ------------------------------------------------------------------ round trips


@pytest.mark.parametrize("encrypted", [True, False], ids=["encrypted", "plain"])
def test_round_trip_all_dtypes(tmp_path, encrypted):
    params = _all_dtypes()
    path = tmp_path / "model.safetensors"
    written = modelcrypt.save_checkpoint(params, path, KEY if encrypted else None, metadata={"epoch": "3", "ключ": "値"})
    assert written == str(path)
    assert modelcrypt.is_encrypted(path) == encrypted
    loaded = modelcrypt.load_checkpoint(path, KEY if encrypted else None)
    _assert_same(loaded, params)
    for arr in loaded.values():
        assert arr.flags.writeable  # training may continue in place
        assert arr.dtype.byteorder in "=<|"
    some = modelcrypt.load_checkpoint(path, KEY if encrypted else None, names=["scalar i64 (0-d)", "名前 ünïcödé 🔑", "empty"])
    assert list(some) == ["scalar i64 (0-d)", "名前 ünïcödé 🔑", "empty"]
    _assert_same(some, {n: params[n] for n in some})
    assert not _temp_files(tmp_path)


def test_decrypted_checkpoint_is_a_safetensors_file(tmp_path):
    stn = _safetensors_numpy()
    from safetensors import safe_open

    params = _all_dtypes()
    enc = tmp_path / "model.safetensors.mcx"
    modelcrypt.save_checkpoint(params, enc, KEY, metadata={"format": "np", "note": "ünï"})
    plain = tmp_path / "model.safetensors"
    modelcrypt.decrypt_file(enc, plain, KEY)
    _assert_same(stn.load_file(str(plain)), params)
    with safe_open(str(plain), framework="numpy") as f:
        assert f.metadata() == {"format": "np", "note": "ünï"}
    # The plaintext inside is byte for byte what save_checkpoint writes without a key.
    nokey = tmp_path / "nokey.safetensors"
    modelcrypt.save_checkpoint(params, nokey, metadata={"format": "np", "note": "ünï"})
    assert nokey.read_bytes() == plain.read_bytes()
    with modelcrypt.load(enc, KEY) as buf:
        assert bytes(buf) == plain.read_bytes()


def test_plain_checkpoint_readable_by_safetensors_and_back(tmp_path):
    stn = _safetensors_numpy()
    params = _all_dtypes()
    path = tmp_path / "plain.safetensors"
    modelcrypt.save_checkpoint(params, path)
    assert not modelcrypt.is_encrypted(path)
    _assert_same(stn.load_file(str(path)), params)
    # A file written by the safetensors package loads too, plain or after encrypt_file.
    theirs = tmp_path / "theirs.safetensors"
    reference = {k: np.ascontiguousarray(v).astype(v.dtype.newbyteorder("<")) for k, v in params.items() if k}
    stn.save_file(reference, str(theirs), metadata={"a": "b"})
    _assert_same(modelcrypt.load_checkpoint(theirs), reference)
    modelcrypt.encrypt_file(theirs, tmp_path / "theirs.mcx", KEY)
    _assert_same(modelcrypt.load_checkpoint(tmp_path / "theirs.mcx", KEY), reference)
    _assert_same(modelcrypt.load_checkpoint(tmp_path / "theirs.mcx", KEY, names=["f16", "bool"]),
                 {"f16": reference["f16"], "bool": reference["bool"]})


def test_loaded_arrays_are_views_that_keep_the_buffer_alive(tmp_path):
    path = tmp_path / "m.ckpt"
    modelcrypt.save_checkpoint({"a": np.arange(1000, dtype=np.float32), "b": np.ones(10, np.int64)}, path, KEY)
    loaded = modelcrypt.load_checkpoint(path, KEY)
    a, b = loaded["a"], loaded["b"]

    def owner(arr):
        while isinstance(arr, np.ndarray) and arr.base is not None:
            arr = arr.base
        return arr.obj if isinstance(arr, memoryview) else arr

    assert isinstance(owner(a), modelcrypt.DecryptedBuffer)
    assert owner(a) is owner(b)  # one decrypted buffer, zero-copy views into it
    del loaded, b
    import gc

    gc.collect()
    np.testing.assert_array_equal(a, np.arange(1000, dtype=np.float32))
    a[0] = 99  # writable in place
    assert a[0] == 99


def test_save_accepts_only_arrays_and_validates(tmp_path):
    path = tmp_path / "x.ckpt"
    with pytest.raises(TypeError, match="no pickle"):  # lists, scalars, str are a training state's; a set is not
        modelcrypt.save_checkpoint({"a": {1, 2, 3}}, path, KEY)
    with pytest.raises(TypeError, match="complex128"):
        modelcrypt.save_checkpoint({"a": np.zeros(2, np.complex128)}, path, KEY)
    with pytest.raises(ValueError, match="__metadata__"):
        modelcrypt.save_checkpoint({"__metadata__": np.zeros(2)}, path, KEY)
    with pytest.raises(TypeError, match="keys must be str or int"):
        modelcrypt.save_checkpoint({1.5: np.zeros(2)}, path, KEY)
    with pytest.raises(TypeError, match="mapping"):
        modelcrypt.save_checkpoint([np.zeros(2)], path, KEY)
    with pytest.raises(ValueError, match="16, 24 or 32"):
        modelcrypt.save_checkpoint({"a": np.zeros(2)}, path, b"short")
    with pytest.raises(ValueError, match="unsupported mode"):
        modelcrypt.save_checkpoint({"a": np.zeros(2)}, path, KEY, "ROT13")
    with pytest.raises(TypeError, match="metadata"):
        modelcrypt.save_checkpoint({"a": np.zeros(2)}, path, KEY, metadata={"a": 1})
    with pytest.raises(ValueError, match="max_shard_size"):
        modelcrypt.save_checkpoint({"a": np.zeros(2)}, path, KEY, max_shard_size="lots")
    with pytest.raises(ValueError, match="max_shard_size"):
        modelcrypt.save_checkpoint({"a": np.zeros(2)}, path, KEY, max_shard_size=0)
    assert not path.exists() and not _temp_files(tmp_path)
    modelcrypt.save_checkpoint({"a": np.zeros(2)}, path, KEY)
    with pytest.raises(TypeError, match="single str"):
        modelcrypt.load_checkpoint(path, KEY, names="a")
    with pytest.raises(KeyError, match=r"'nope'.*'also missing'"):
        modelcrypt.load_checkpoint(path, KEY, names=["a", "nope", "also missing"])
    with pytest.raises(ValueError, match="dec_key"):
        modelcrypt.load_checkpoint(path)  # encrypted, no key


def test_exports():
    assert set(checkpoint.__all__) <= set(modelcrypt.__all__)
    for name in checkpoint.__all__:
        assert getattr(modelcrypt, name) is getattr(checkpoint, name)


# ------------------------------------------------------------------ keys, tampering, plaintext substitution


def test_wrong_key_and_tampering(tmp_path):
    path = tmp_path / "m.ckpt"
    params = {"a": np.arange(300_000, dtype=np.float32), "b": np.arange(10, dtype=np.int64)}
    modelcrypt.save_checkpoint(params, path, KEY)
    with pytest.raises(modelcrypt.KeyMismatchError):
        modelcrypt.load_checkpoint(path, OTHER_KEY)
    with pytest.raises(modelcrypt.KeyMismatchError):
        modelcrypt.load_checkpoint(path, OTHER_KEY, names=["b"])
    data = bytearray(path.read_bytes())
    data[-100] ^= 1  # inside the last chunk's ciphertext
    path.write_bytes(bytes(data))
    with pytest.raises(modelcrypt.AuthenticationError):
        modelcrypt.load_checkpoint(path, KEY)
    with pytest.raises(modelcrypt.AuthenticationError):
        modelcrypt.load_checkpoint(path, KEY, names=["a"])  # "a" (stored after the wider "b") ends in that chunk


def test_plaintext_file_refused_when_a_key_is_given(tmp_path):
    path = tmp_path / "plain.safetensors"
    modelcrypt.save_checkpoint({"a": np.zeros(3)}, path)
    with pytest.raises(modelcrypt.FormatError, match="not an encrypted"):
        modelcrypt.load_checkpoint(path, KEY)
    with pytest.raises(modelcrypt.FormatError, match="not an encrypted"):
        modelcrypt.load_checkpoint(path, KEY, names=["a"])


# ------------------------------------------------------------------ random access


def test_names_reads_only_the_chunks_of_the_requested_tensor(tmp_path):
    """One 4 MiB tensor out of a ~1 GiB checkpoint: about 4 MiB is read and decrypted."""
    path = tmp_path / "big.ckpt"
    target = np.arange(MIB, dtype=np.float32)  # 4 MiB
    pad = 255 * MIB // 4  # 255 MiB of float32 zeros per padding tensor
    params = {
        "pad0": np.zeros(pad, np.float32),
        "pad1": np.zeros(pad, np.float32),
        "target": target,
        "pad2": np.zeros(pad, np.float32),
        "pad3": np.zeros(pad, np.float32),
        "tail": np.arange(7, dtype=np.float32),
    }
    modelcrypt.save_checkpoint(params, path, KEY)
    del params
    assert os.path.getsize(path) > 1 << 30
    _core.reset_debug_counters()
    loaded = modelcrypt.load_checkpoint(path, KEY, names=["target"])
    counters = _core.debug_counters()
    np.testing.assert_array_equal(loaded["target"], target)
    assert counters["chunks_decrypted"] <= 4 * MIB // CS + 3, counters
    assert counters["ciphertext_bytes_read"] <= 4 * MIB + 3 * (CS + 16), counters
    _core.reset_debug_counters()
    tail = modelcrypt.load_checkpoint(path, KEY, names=["tail"])
    np.testing.assert_array_equal(tail["tail"], np.arange(7, dtype=np.float32))
    assert _core.debug_counters()["chunks_decrypted"] <= 2


def test_names_coalesces_tensors_sharing_a_chunk(tmp_path):
    path = tmp_path / "small.ckpt"
    params = {f"t{i}": np.full(100, i, dtype=np.int32) for i in range(5)}
    modelcrypt.save_checkpoint(params, path, KEY)
    _core.reset_debug_counters()
    loaded = modelcrypt.load_checkpoint(path, KEY, names=["t4", "t0", "t2"])
    assert list(loaded) == ["t4", "t0", "t2"]
    for name, arr in loaded.items():
        np.testing.assert_array_equal(arr, params[name])
        assert arr.flags.writeable
    # chunk 0 once for the header, once for one coalesced range holding all three tensors
    assert _core.debug_counters()["chunks_decrypted"] == 2


# ------------------------------------------------------------------ sharding


def _sharded(tmp_path, key=KEY, mode="AES-GCM"):
    params = {f"layer{i}.weight": np.full(MIB // 4, i, dtype=np.float32) for i in range(5)}  # 1 MiB each
    params["huge"] = np.arange(MIB, dtype=np.float32)  # 4 MiB: larger than a shard
    params["bias"] = np.arange(3, dtype=np.float32)
    index = modelcrypt.save_checkpoint(params, tmp_path / "model.safetensors", key, mode, max_shard_size="3MB",
                                       metadata={"run": "7"})
    return params, index


def test_sharded_save_writes_shards_and_index(tmp_path):
    params, index = _sharded(tmp_path)
    assert index == str(tmp_path / "model.safetensors.index.json")
    assert not (tmp_path / "model.safetensors").exists()
    meta = json.loads(pathlib.Path(index).read_text())
    assert meta["metadata"]["total_size"] == sum(a.nbytes for a in params.values())
    weight_map = meta["weight_map"]
    assert set(weight_map) == set(params)
    shards = sorted(set(weight_map.values()))
    n = len(shards)
    assert shards == [f"model-{i:05d}-of-{n:05d}.safetensors" for i in range(1, n + 1)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(shards + ["model.safetensors.index.json"])
    for shard in shards:
        held = [k for k, v in weight_map.items() if v == shard]
        size = sum(params[k].nbytes for k in held)
        assert size <= 3_000_000 or held == ["huge"], (shard, held)
        assert modelcrypt.is_encrypted(tmp_path / shard)
        _assert_same(modelcrypt.load_checkpoint(tmp_path / shard, KEY), {k: params[k] for k in held})
    assert [k for k, v in weight_map.items() if v == weight_map["huge"]] == ["huge"]
    # a mapping under the limit is one file, no index
    single = modelcrypt.save_checkpoint({"a": np.zeros(4)}, tmp_path / "one.ckpt", KEY, max_shard_size="1GiB")
    assert single == str(tmp_path / "one.ckpt") and not (tmp_path / "one.ckpt.index.json").exists()


def test_sharded_plain_shards_are_safetensors_files(tmp_path):
    stn = _safetensors_numpy()
    params, index = _sharded(tmp_path, key=None)
    weight_map = json.loads(pathlib.Path(index).read_text())["weight_map"]
    merged = {}
    for shard in set(weight_map.values()):
        merged.update(stn.load_file(str(tmp_path / shard)))
    _assert_same(merged, params)
    _assert_same(modelcrypt.load_distributed_checkpoint(index), params)


def test_load_distributed_from_index(tmp_path):
    params, index = _sharded(tmp_path)
    _assert_same(modelcrypt.load_distributed_checkpoint(index, KEY), params)
    weight_map = json.loads(pathlib.Path(index).read_text())["weight_map"]
    # Only the shards holding the requested names are read (the others' headers are authenticated,
    # to check that the set is complete, but none of their chunks is decrypted).
    wanted = ["layer3.weight", "bias"]
    needed = {weight_map[n] for n in wanted}
    _core.reset_debug_counters()
    got = modelcrypt.load_distributed_checkpoint(index, KEY, names=wanted)
    assert list(got) == wanted
    _assert_same(got, {n: params[n] for n in wanted})
    assert _core.debug_counters()["ciphertext_bytes_read"] < 3 * MIB
    # A shard of the set that is missing is an error even when none of its tensors is asked for.
    for shard in set(weight_map.values()) - needed:
        os.unlink(tmp_path / shard)
    with pytest.raises(modelcrypt.SetMismatchError, match="missing"):
        modelcrypt.load_distributed_checkpoint(index, KEY, names=wanted)
    with pytest.raises(KeyError, match="nope"):
        modelcrypt.load_distributed_checkpoint(index, KEY, names=["bias", "nope"])
    with pytest.raises(FileNotFoundError):
        modelcrypt.load_distributed_checkpoint(index, KEY)  # all shards needed, some are gone


def test_load_distributed_from_shard_list(tmp_path):
    params, index = _sharded(tmp_path)
    shards = sorted(str(p) for p in tmp_path.glob("model-*-of-*.safetensors"))
    _assert_same(modelcrypt.load_distributed_checkpoint(shards, KEY), params)
    _core.reset_debug_counters()
    got = modelcrypt.load_distributed_checkpoint(shards, KEY, names=["layer1.weight", "huge"])
    _assert_same(got, {"layer1.weight": params["layer1.weight"], "huge": params["huge"]})
    # headers of every shard (one chunk each) plus the two tensors, not the whole 9 MiB
    assert _core.debug_counters()["ciphertext_bytes_read"] <= 5 * MIB + (len(shards) + 2) * (CS + 16)
    with pytest.raises(KeyError, match="missing"):
        modelcrypt.load_distributed_checkpoint(shards, KEY, names=["missing"])
    with pytest.raises(modelcrypt.FormatError, match="more than one shard"):
        modelcrypt.load_distributed_checkpoint(shards + shards[:1], KEY)
    with pytest.raises(modelcrypt.FormatError, match="more than one shard"):
        modelcrypt.load_distributed_checkpoint(shards + shards[:1], KEY, names=["bias"])


def test_index_that_lies_is_caught(tmp_path):
    params, index = _sharded(tmp_path)
    meta = json.loads(pathlib.Path(index).read_text())
    wm = meta["weight_map"]
    other = next(s for s in sorted(set(wm.values())) if s != wm["bias"])
    bad = dict(meta, weight_map=dict(wm, bias=other))
    pathlib.Path(index).write_text(json.dumps(bad))
    # The shards authenticate the digest of the weight map they were saved with: an edited index is
    # refused before any tensor is read, whichever names are asked for.
    with pytest.raises(modelcrypt.SetMismatchError, match="weight map does not match"):
        modelcrypt.load_distributed_checkpoint(index, KEY, names=["bias"])
    with pytest.raises(modelcrypt.SetMismatchError, match="weight map does not match"):
        modelcrypt.load_distributed_checkpoint(index, KEY)
    for escape in ("../elsewhere.safetensors", "/etc/passwd"):
        pathlib.Path(index).write_text(json.dumps(dict(meta, weight_map=dict(wm, bias=escape))))
        with pytest.raises(modelcrypt.FormatError, match="beside the index"):
            modelcrypt.load_distributed_checkpoint(index, KEY, names=["bias"])
    pathlib.Path(index).write_text("{not json")
    with pytest.raises(modelcrypt.FormatError):
        modelcrypt.load_distributed_checkpoint(index, KEY)


# ------------------------------------------------------------------ custom ciphers


def _xor(data, key):
    pad = np.resize(np.frombuffer(bytes(key), np.uint8), len(data))
    return (np.frombuffer(data, np.uint8) ^ pad ^ 0x5A).tobytes()


def xor_enc(model_stream, key):
    assert type(model_stream) is bytes and type(key) is bytes
    return _xor(model_stream, key)


def xor_dec(cipher_file, key):
    assert type(cipher_file) is str and type(key) is bytes
    with open(cipher_file, "rb") as f:
        return _xor(f.read(), key)


def test_custom_cipher_callables(tmp_path):
    key = b"0123456789ABCDEF"  # MindSpore's usual example key
    params = _all_dtypes()
    path = tmp_path / "custom.ckpt"
    modelcrypt.save_checkpoint(params, path, key, xor_enc, metadata={"m": "1"})
    plain = tmp_path / "plain.safetensors"
    modelcrypt.save_checkpoint(params, plain, metadata={"m": "1"})
    assert path.read_bytes() == _xor(plain.read_bytes(), key)  # exactly the callable's output
    assert not modelcrypt.is_encrypted(path)
    _assert_same(modelcrypt.load_checkpoint(path, key, xor_dec), params)
    _assert_same(modelcrypt.load_checkpoint(path, key, xor_dec, names=["f16", "empty"]),
                 {"f16": params["f16"], "empty": params["empty"]})
    index = modelcrypt.save_checkpoint(params, tmp_path / "sharded.ckpt", key, xor_enc, max_shard_size=64)
    _assert_same(modelcrypt.load_distributed_checkpoint(index, key, xor_dec), params)
    with pytest.raises(ValueError, match="enc_key"):
        modelcrypt.save_checkpoint(params, path, None, xor_enc)
    with pytest.raises(TypeError, match="bytes"):
        modelcrypt.save_checkpoint(params, tmp_path / "bad.ckpt", key, lambda data, k: 42)
    with pytest.raises(TypeError, match="bytes"):
        modelcrypt.load_checkpoint(path, key, lambda f, k: None)
    # a custom cipher's output is parsed strictly like any other plaintext
    with pytest.raises(modelcrypt.FormatError):
        modelcrypt.load_checkpoint(path, key, lambda f, k: b"\x08\x00\x00\x00\x00\x00\x00\x00[]      ")


# ------------------------------------------------------------------ hostile headers


def _st(header, data=b"", pad=True, size=None):
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    if pad:
        raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw) if size is None else size) + raw + data


F32_2 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
HOSTILE = {
    "shorter than 8 bytes": b"\x01\x02",
    "header size over 100 MB": _st({}, size=100_000_001),
    "header size 2**64-1": _st({}, size=2**64 - 1),
    "header size past the end": _st({"a": F32_2}, b"\0" * 8, size=200),
    "not UTF-8": _st(b"{\"\xff\": 1}"),
    "not JSON": _st(b"{this is not json}"),
    "JSON list": _st(b"[1, 2]"),
    "duplicate names": _st(b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, '
                           b'"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}', b"\0" * 8),
    "unknown dtype": _st({"a": dict(F32_2, dtype="C64")}, b"\0" * 8),
    "dtype not a str": _st({"a": dict(F32_2, dtype=4)}, b"\0" * 8),
    "shape not a list": _st({"a": dict(F32_2, shape=2)}, b"\0" * 8),
    "negative dimension": _st({"a": dict(F32_2, shape=[-2])}, b"\0" * 8),
    "float dimension": _st({"a": dict(F32_2, shape=[2.0])}, b"\0" * 8),
    "bool dimension": _st({"a": {"dtype": "U8", "shape": [True], "data_offsets": [0, 1]}}, b"\0" * 8),
    "shape larger than its bytes": _st({"a": dict(F32_2, shape=[3])}, b"\0" * 8),
    "enormous shape": _st({"a": dict(F32_2, shape=[2**40, 2**40])}, b"\0" * 8),
    "offsets past the data": _st({"a": dict(F32_2, data_offsets=[8, 16])}, b"\0" * 8),
    "offsets reversed": _st({"a": dict(F32_2, data_offsets=[8, 0])}, b"\0" * 8),
    "three offsets": _st({"a": dict(F32_2, data_offsets=[0, 4, 8])}, b"\0" * 8),
    "negative offset": _st({"a": dict(F32_2, data_offsets=[-8, 0])}, b"\0" * 8),
    "overlapping tensors": _st({"a": F32_2, "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8),
    "gap between tensors": _st({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8),
    "unindexed trailing bytes": _st({"a": F32_2}, b"\0" * 12),
    "extra field": _st({"a": dict(F32_2, extra=1)}, b"\0" * 8),
    "missing field": _st({"a": {"dtype": "F32", "shape": [2]}}, b"\0" * 8),
    "tensor info not an object": _st({"a": [0, 8]}, b"\0" * 8),
    "metadata not str to str": _st({"__metadata__": {"a": 1}, "b": F32_2}, b"\0" * 8),
    "empty file": b"",
}


@pytest.mark.parametrize("names", [None, ["a"]], ids=["whole", "names"])
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_headers_raise_format_error(tmp_path, case, names):
    enc = tmp_path / "hostile.mcx"
    enc.write_bytes(modelcrypt.encrypt_bytes(HOSTILE[case], KEY, chunk_size=4096))
    with pytest.raises(modelcrypt.FormatError):
        modelcrypt.load_checkpoint(enc, KEY, names=names)
    plain = tmp_path / "hostile.safetensors"
    plain.write_bytes(HOSTILE[case])
    with pytest.raises(modelcrypt.FormatError):
        modelcrypt.load_checkpoint(plain, names=names)


def test_hostile_header_is_rejected_before_reading_tensors(tmp_path):
    """An absurd header size fails after decrypting only the first chunk, not the whole file."""
    crafted = _st({}, size=100_000_001) + b"\0" * (8 * MIB)
    enc = tmp_path / "hostile.mcx"
    enc.write_bytes(modelcrypt.encrypt_bytes(crafted, KEY))
    _core.reset_debug_counters()
    with pytest.raises(modelcrypt.FormatError, match="100000000"):
        modelcrypt.load_checkpoint(enc, KEY, names=["a"])
    assert _core.debug_counters()["chunks_decrypted"] == 1


# ------------------------------------------------------------------ CheckpointConfig / ModelCheckpoint


def test_checkpoint_config_validation():
    cfg = modelcrypt.CheckpointConfig()
    assert (cfg.save_checkpoint_steps, cfg.keep_checkpoint_max, cfg.enc_key, cfg.enc_mode) == (1, 5, None, "AES-GCM")
    for bad in (0, -1):
        with pytest.raises(ValueError, match="save_checkpoint_steps"):
            modelcrypt.CheckpointConfig(save_checkpoint_steps=bad)
        with pytest.raises(ValueError, match="keep_checkpoint_max"):
            modelcrypt.CheckpointConfig(keep_checkpoint_max=bad)
    for bad in ("2", 2.0, True):
        with pytest.raises(TypeError):
            modelcrypt.CheckpointConfig(save_checkpoint_steps=bad)
    with pytest.raises(ValueError, match="16, 24 or 32"):
        modelcrypt.CheckpointConfig(enc_key=b"x" * 10)
    with pytest.raises(TypeError):
        modelcrypt.CheckpointConfig(enc_key="a string key!!!!")
    with pytest.raises(ValueError, match="unsupported mode"):
        modelcrypt.CheckpointConfig(enc_key=KEY, enc_mode="AES-ECB")
    assert "<set>" in repr(modelcrypt.CheckpointConfig(enc_key=KEY)) and KEY.hex() not in repr(modelcrypt.CheckpointConfig(enc_key=KEY))
    with pytest.raises(ValueError, match="prefix"):
        modelcrypt.ModelCheckpoint("a/b")
    with pytest.raises(TypeError, match="config"):
        modelcrypt.ModelCheckpoint("net", config={"keep_checkpoint_max": 2})


def _steps(directory, prefix="net"):
    return sorted(int(p.name[len(prefix) + 1:-5]) for p in pathlib.Path(directory).glob(f"{prefix}-*.ckpt"))


def test_model_checkpoint_saves_every_n_and_rotates(tmp_path):
    cfg = modelcrypt.CheckpointConfig(save_checkpoint_steps=2, keep_checkpoint_max=3, enc_key=KEY)
    (tmp_path / "other-4.ckpt").write_bytes(b"another prefix: untouched")
    (tmp_path / "net-notes.txt").write_bytes(b"unrelated")
    mc = modelcrypt.ModelCheckpoint("net", directory=tmp_path / "ckpts", config=cfg)
    assert mc.latest is None
    saved = []
    for step in range(11):
        path = mc.step({"w": np.full(3, step, np.float32)}, step)
        if step % 2:
            assert path is None
        else:
            assert path == str(tmp_path / "ckpts" / f"net-{step}.ckpt")
            saved.append(path)
            assert mc.latest == path
    assert _steps(tmp_path / "ckpts") == [6, 8, 10]
    np.testing.assert_array_equal(modelcrypt.load_checkpoint(mc.latest, KEY)["w"], [10, 10, 10])
    assert modelcrypt.is_encrypted(mc.latest)
    assert mc.checkpoints() == [str(tmp_path / "ckpts" / f"net-{s}.ckpt") for s in (6, 8, 10)]

    # A later run in the same directory counts the files already there, by step number.
    mc2 = modelcrypt.ModelCheckpoint("net", directory=tmp_path / "ckpts", config=cfg)
    assert mc2.latest == str(tmp_path / "ckpts" / "net-10.ckpt")
    mc2.step({"w": np.zeros(3, np.float32)}, 12)
    assert _steps(tmp_path / "ckpts") == [8, 10, 12]
    # A run restarted from a lower step keeps what it just wrote (and the newest others).
    mc2.step({"w": np.zeros(3, np.float32)}, 2)
    assert _steps(tmp_path / "ckpts") == [2, 10, 12]
    assert mc2.latest == str(tmp_path / "ckpts" / "net-2.ckpt")
    assert (tmp_path / "other-4.ckpt").exists() and (tmp_path / "net-notes.txt").exists()
    assert not _temp_files(tmp_path / "ckpts")


def test_model_checkpoint_default_directory_and_plain(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mc = modelcrypt.ModelCheckpoint("plain", config=modelcrypt.CheckpointConfig(keep_checkpoint_max=1))
    mc.step({"w": np.ones(2)}, 1)
    mc.step({"w": np.ones(2) * 2}, 2)
    assert sorted(os.listdir(tmp_path)) == ["plain-2.ckpt"]
    assert not modelcrypt.is_encrypted(tmp_path / "plain-2.ckpt")
    np.testing.assert_array_equal(modelcrypt.load_checkpoint(mc.latest)["w"], [2, 2])


def _intact(directory, steps, key=KEY):
    assert _steps(directory) == steps
    for s in steps:
        np.testing.assert_array_equal(modelcrypt.load_checkpoint(pathlib.Path(directory) / f"net-{s}.ckpt", key)["w"],
                                      np.full(4, s, np.float32))
    assert not _temp_files(directory)


def test_failed_save_never_destroys_previous_checkpoints(tmp_path):
    cfg = modelcrypt.CheckpointConfig(keep_checkpoint_max=2, enc_key=KEY)
    mc = modelcrypt.ModelCheckpoint("net", directory=tmp_path, config=cfg)
    for s in (1, 2):
        mc.step({"w": np.full(4, s, np.float32)}, s)
    _intact(tmp_path, [1, 2])
    # a value that is not an array
    with pytest.raises(TypeError):
        mc.step({"w": np.full(4, 3, np.float32), "bad": object()}, 3)
    _intact(tmp_path, [1, 2])
    # re-saving an existing step that fails leaves the old file at that path
    with pytest.raises(TypeError):
        mc.step({"w": {"a set", "is not storable"}}, 2)
    _intact(tmp_path, [1, 2])
    assert mc.latest == str(tmp_path / "net-2.ckpt")

    def exploding_cipher(data, key):
        raise RuntimeError("cipher failed")

    bad = modelcrypt.ModelCheckpoint("net", directory=tmp_path,
                                     config=modelcrypt.CheckpointConfig(keep_checkpoint_max=1, enc_key=KEY,
                                                                        enc_mode=exploding_cipher))
    with pytest.raises(RuntimeError, match="cipher failed"):
        bad.step({"w": np.full(4, 3, np.float32)}, 3)
    _intact(tmp_path, [1, 2])


def test_save_failing_mid_write_leaves_previous_checkpoints(tmp_path):
    """A real I/O failure half way through writing (file size limit) in a child process."""
    script = textwrap.dedent(
        """
        import resource, signal, sys
        import numpy as np
        import modelcrypt
        directory, key = sys.argv[1], bytes(range(32))
        mc = modelcrypt.ModelCheckpoint("net", directory=directory,
                                        config=modelcrypt.CheckpointConfig(keep_checkpoint_max=1, enc_key=key))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # get EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (3 << 20, 3 << 20))
        for mode, key_ in (("encrypted", key), ("plain", None)):
            mc.config.enc_key = key_
            try:
                mc.step({"w": np.full(4, 3, np.float32), "big": np.ones(2 << 20, np.float32)}, 3)
            except OSError as exc:
                print(mode, "failed:", type(exc).__name__, exc)
            else:
                print(mode, "unexpectedly succeeded")
                sys.exit(1)
        """
    )
    mc = modelcrypt.ModelCheckpoint("net", directory=tmp_path,
                                    config=modelcrypt.CheckpointConfig(keep_checkpoint_max=1, enc_key=KEY))
    mc.step({"w": np.full(4, 2, np.float32)}, 2)
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "encrypted failed" in result.stdout and "plain failed" in result.stdout
    _intact(tmp_path, [2])


# ------------------------------------------------------------------ torch


def test_torch_tensors_and_bfloat16(tmp_path):
    torch = require("torch")
    lin = torch.nn.Linear(3, 2)
    params = {
        "weight": lin.weight,  # a Parameter that requires grad
        "bf16": torch.tensor([1.5, -2.25, 3e38, float("inf")], dtype=torch.bfloat16),
        "half": torch.arange(6, dtype=torch.float16).reshape(2, 3),
        "i8": torch.tensor([-128, 127], dtype=torch.int8),
        "bool": torch.tensor([True, False]),
        "scalar": torch.tensor(7, dtype=torch.int64),
        "noncontig": torch.arange(12.0).reshape(3, 4).t(),
        "np": np.arange(3, dtype=np.uint16),
    }
    path = tmp_path / "torch.ckpt"
    modelcrypt.save_checkpoint(params, path, KEY)
    loaded = modelcrypt.load_checkpoint(path, KEY)
    assert loaded["bf16"].dtype == np.uint16  # raw bits
    assert torch.equal(torch.from_numpy(loaded["bf16"].view(np.int16)).view(torch.bfloat16), params["bf16"])
    for name in ("weight", "half", "i8", "bool", "scalar", "noncontig"):
        assert torch.equal(torch.from_numpy(loaded[name]), params[name].detach()), name
    np.testing.assert_array_equal(loaded["np"], params["np"])
    # the nn.Module itself (MindSpore passes the network) is accepted via state_dict()
    modelcrypt.save_checkpoint(lin, tmp_path / "module.ckpt", KEY)
    state = {k: torch.from_numpy(v) for k, v in modelcrypt.load_checkpoint(tmp_path / "module.ckpt", KEY).items()}
    fresh = torch.nn.Linear(3, 2)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.weight, lin.weight) and torch.equal(fresh.bias, lin.bias)
    # the decrypted file is a safetensors file torch reads, bfloat16 included
    require("safetensors")
    from safetensors.torch import load_file

    modelcrypt.decrypt_file(path, tmp_path / "torch.safetensors", KEY)
    theirs = load_file(str(tmp_path / "torch.safetensors"))
    assert theirs["bf16"].dtype == torch.bfloat16 and torch.equal(theirs["bf16"], params["bf16"])
    assert torch.equal(theirs["noncontig"], params["noncontig"])


def test_numpy_only_use_does_not_import_torch(tmp_path):
    script = textwrap.dedent(
        """
        import sys, numpy as np, modelcrypt
        p = sys.argv[1]
        modelcrypt.save_checkpoint({"a": np.zeros(3)}, p, bytes(32))
        modelcrypt.load_checkpoint(p, bytes(32))
        assert "torch" not in sys.modules, "torch was imported"
        """
    )
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "a.ckpt")], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr


def test_torch_training_loop_example(tmp_path):
    require("torch", load=False)  # the example imports it in its own process
    example = ROOT / "examples" / "torch_training_loop.py"
    env = dict(os.environ)
    env.pop("MODELCRYPT_KEY", None)

    def run(directory, steps):
        result = subprocess.run([sys.executable, str(example), "--dir", str(directory), "--steps", str(steps),
                                 "--save-every", "4", "--keep", "2"], capture_output=True, text=True, env=env,
                                timeout=180)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    first = run(tmp_path / "run", 12)
    assert "starting from scratch" in first and "saved linear-12.ckpt" in first
    assert sorted(os.listdir(tmp_path / "run")) == ["linear-12.ckpt", "linear-8.ckpt", "train.key"]
    assert modelcrypt.is_encrypted(tmp_path / "run" / "linear-12.ckpt")
    resumed = run(tmp_path / "run", 20)
    assert "at step 12" in resumed and "saved linear-20.ckpt" in resumed
    assert sorted(os.listdir(tmp_path / "run")) == ["linear-16.ckpt", "linear-20.ckpt", "train.key"]
    straight = run(tmp_path / "straight", 20)
    # resumed in a new process from an encrypted checkpoint holding model + Adam state + RNG state:
    # bit-identical to the run that never stopped (issue 13)
    for prefix in ("final loss", "final state sha256"):
        final = [line for line in resumed.splitlines() if line.startswith(prefix)]
        assert final and final == [line for line in straight.splitlines() if line.startswith(prefix)], prefix
    state = modelcrypt.load_checkpoint(tmp_path / "run" / "linear-20.ckpt",
                                       modelcrypt.read_key_file(tmp_path / "run" / "train.key"))
    assert state["step"] == 20 and set(state) == {"model", "optimizer", "rng", "step"}
    assert set(state["optimizer"]["state"]) == {0, 1} and state["optimizer"]["param_groups"][0]["lr"] == 0.05
