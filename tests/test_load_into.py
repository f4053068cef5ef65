"""Decrypting into memory the caller already owns (issue 18): modelcrypt.load_into,
modelcrypt.load_checkpoint_into and modelcrypt.torch.load_into_model."""

import json
import mmap
import os
import random
import warnings

import numpy as np
import pytest

import modelcrypt
from modelcrypt import _core
from modelcrypt.exceptions import AuthenticationError, KeyMismatchError
from subprocess_python import run_python

from conftest import require

torch = require("torch")
import modelcrypt.torch as mctorch  # noqa: E402  (needs torch)

CHUNK = 4096
KEY = bytes(range(32))
OTHER = bytes(range(1, 33))


@pytest.fixture(scope="module")
def plain():
    return random.Random(18).randbytes(75 * CHUNK + 321)


@pytest.fixture()
def enc(tmp_path, plain):
    src = tmp_path / "p.bin"
    src.write_bytes(plain)
    path = tmp_path / "p.bin.mcx"
    modelcrypt.encrypt_file(src, path, KEY, chunk_size=CHUNK)
    return path


def _flip(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x20
    path.write_bytes(bytes(data))


def _header_length(path):
    return modelcrypt.inspect(path).header_length


# ------------------------------------------------------------------ load_into


def test_load_into_every_kind_of_buffer_equals_load(enc, plain):
    n = len(plain)
    with modelcrypt.load(enc, KEY) as buf:
        expected = bytes(buf)
    assert expected == plain
    out = bytearray(n + 5)
    assert modelcrypt.load_into(enc, KEY, out) == n and bytes(out[:n]) == plain and out[n:] == bytes(5)
    arr = np.zeros(n, np.uint8)
    assert modelcrypt.load_into(enc, KEY, arr, threads=3) == n and arr.tobytes() == plain
    floats = np.zeros((n + 3) // 4, np.float32)  # any dtype: the bytes are written
    assert modelcrypt.load_into(enc, KEY, floats) == n and floats.tobytes()[:n] == plain
    anon = mmap.mmap(-1, n)
    assert modelcrypt.load_into(enc, KEY, anon) == n and anon[:] == plain
    anon.close()  # the buffer export was released
    backing = bytearray(n)
    assert modelcrypt.load_into(enc, KEY, memoryview(backing)) == n and bytes(backing) == plain
    t = torch.zeros(n, dtype=torch.uint8)
    ptr = t.data_ptr()
    assert modelcrypt.load_into(enc, KEY, t) == n and bytes(t.numpy()) == plain and t.data_ptr() == ptr
    bf = torch.zeros((n + 1) // 2, dtype=torch.bfloat16)
    assert modelcrypt.load_into(enc, KEY, bf) == n and bytes(bf.view(torch.uint8).numpy())[:n] == plain
    owner = torch.zeros((n + 3) // 4, dtype=torch.float32)
    assert modelcrypt.load_into(enc, KEY, owner.untyped_storage()) == n
    assert bytes(owner.view(torch.uint8).numpy())[:n] == plain
    typed_owner = torch.zeros((n + 3) // 4, dtype=torch.float32)
    with warnings.catch_warnings():  # torch: "TypedStorage is deprecated" (what tensor.storage() returns)
        warnings.simplefilter("ignore", UserWarning)
        typed = typed_owner.storage()
    assert isinstance(typed, torch.TypedStorage)
    assert modelcrypt.load_into(enc, KEY, typed) == n
    assert bytes(typed_owner.view(torch.uint8).numpy())[:n] == plain


def test_load_into_from_a_file_object(enc, plain):
    out = np.zeros(len(plain), np.uint8)
    with open(enc, "rb") as f:
        assert modelcrypt.load_into(f, KEY, out) == len(plain)
    assert out.tobytes() == plain
    part = bytearray(3 * CHUNK)
    with open(enc, "rb") as f:
        assert modelcrypt.load_into(f, KEY, part, offset=CHUNK - 5, length=3 * CHUNK) == 3 * CHUNK
    assert bytes(part) == plain[CHUNK - 5:4 * CHUNK - 5]


def test_load_into_ranges_equal_slices(enc, plain):
    rng = random.Random(4)
    cases = [(0, 1), (CHUNK - 1, 2), (CHUNK, CHUNK), (3 * CHUNK + 7, 20 * CHUNK), (len(plain) - 5, 5),
             (len(plain), 0), (17, len(plain) - 17)]
    cases += [(o, rng.randrange(len(plain) - o)) for o in (rng.randrange(len(plain)) for _ in range(10))]
    for offset, length in cases:
        out = bytearray(b"\xaa") * (length + 3)
        assert modelcrypt.load_into(enc, KEY, out, offset=offset, length=length,
                                    threads=rng.choice([None, 1, 2])) == length
        assert bytes(out[:length]) == plain[offset:offset + length] and out[length:] == b"\xaa" * 3
    out = bytearray(100)
    assert modelcrypt.load_into(enc, KEY, out, offset=len(plain) - 10) == 10  # length None: to the end
    assert bytes(out[:10]) == plain[-10:]


def test_load_into_checks_arguments_before_decrypting(enc, plain):
    _core.reset_debug_counters()
    with pytest.raises(TypeError, match="read-only"):
        modelcrypt.load_into(enc, KEY, bytes(len(plain)))
    ro = np.zeros(len(plain), np.uint8)
    ro.flags.writeable = False
    with pytest.raises(TypeError, match="read-only"):
        modelcrypt.load_into(enc, KEY, ro)
    with pytest.raises(ValueError, match="contiguous"):
        modelcrypt.load_into(enc, KEY, np.zeros((len(plain), 2), np.uint8)[:, 0])
    with pytest.raises(ValueError, match="contiguous"):
        modelcrypt.load_into(enc, KEY, torch.zeros(len(plain), 2, dtype=torch.uint8).t())
    small = bytearray(b"\xaa") * (len(plain) - 1)
    with pytest.raises(ValueError, match=f"{len(plain) - 1} bytes.*{len(plain)} bytes"):
        modelcrypt.load_into(enc, KEY, small)
    with pytest.raises(ValueError, match="holds 10 bytes but 11"):
        modelcrypt.load_into(enc, KEY, bytearray(10), length=11)
    with pytest.raises(ValueError, match="past the end"):
        modelcrypt.load_into(enc, KEY, bytearray(10), offset=len(plain) + 1)
    with pytest.raises(ValueError, match="outside"):
        modelcrypt.load_into(enc, KEY, bytearray(10), offset=len(plain) - 5, length=10)
    with pytest.raises(TypeError, match="writable buffer"):
        modelcrypt.load_into(enc, KEY, "text")
    with pytest.raises(TypeError, match="offset"):
        modelcrypt.load_into(enc, KEY, bytearray(10), offset=1.5)
    assert small == bytearray(b"\xaa") * (len(plain) - 1)
    assert _core.debug_counters()["chunks_decrypted"] == 0


def test_load_into_wrong_key_leaves_the_buffer_alone(enc, plain):
    out = bytearray(b"\xaa") * len(plain)
    with pytest.raises(KeyMismatchError):
        modelcrypt.load_into(enc, OTHER, out)
    assert out == bytearray(b"\xaa") * len(plain)


@pytest.mark.parametrize("chunk", [0, 40, 75])
def test_load_into_tampered_chunk_wipes_the_destination(enc, plain, chunk):
    _flip(enc, _header_length(enc) + chunk * (CHUNK + 16) + 100)
    for threads in (1, None):
        out = bytearray(b"\xaa") * len(plain)
        with pytest.raises(AuthenticationError, match=f"chunk {chunk}"):
            modelcrypt.load_into(enc, KEY, out, threads=threads)
        assert out == bytes(len(plain))  # zeros: neither partial plaintext nor what was there
    good = bytearray(CHUNK)
    if chunk:  # the chunks before are fine, and a range that avoids the bad chunk loads
        assert modelcrypt.load_into(enc, KEY, good, offset=0, length=CHUNK) == CHUNK and bytes(good) == plain[:CHUNK]


def test_load_into_truncated_file(enc, plain):
    data = enc.read_bytes()
    enc.write_bytes(data[:-CHUNK])
    out = bytearray(b"\xaa") * len(plain)
    with pytest.raises(AuthenticationError):
        modelcrypt.load_into(enc, KEY, out)
    assert out in (bytearray(b"\xaa") * len(plain), bytes(len(plain)))  # never partial plaintext
    assert plain[:100] not in out


# ------------------------------------------------------------------ load_checkpoint_into


def _arrays():
    rng = np.random.default_rng(0)
    return {
        "w": rng.standard_normal((64, 33), dtype=np.float32),
        "b": rng.standard_normal(33).astype(np.float64),
        "ids": rng.integers(-5, 5, (7, 3), dtype=np.int64),
        "mask": rng.integers(0, 2, 10).astype(bool),
        "half": rng.standard_normal((5, 5)).astype(np.float16),
        "scalar": np.array(3.5, np.float32),
        "empty": np.zeros((0, 4), np.int32),
    }


@pytest.fixture()
def ckpt(tmp_path):
    path = tmp_path / "c.safetensors.mcx"
    modelcrypt.save_checkpoint(_arrays(), path, KEY)
    return path


def test_load_checkpoint_into_equals_load_checkpoint(ckpt):
    expected = modelcrypt.load_checkpoint(ckpt, KEY)
    dst = {k: np.full_like(v, 1) for k, v in _arrays().items()}
    ptrs = {k: v.ctypes.data for k, v in dst.items()}
    assert modelcrypt.load_checkpoint_into(dst, ckpt, KEY) == ([], [])
    for k, v in expected.items():
        assert np.array_equal(dst[k], v) and dst[k].ctypes.data == ptrs[k], k


def test_load_checkpoint_into_checks_every_destination_first(ckpt):
    sentinel = {k: np.full_like(v, 1) for k, v in _arrays().items()}

    def attempt(**changes):
        dst = {k: v.copy() for k, v in sentinel.items()}
        dst.update(changes)
        return dst

    _core.reset_debug_counters()
    with pytest.raises(ValueError, match=r"'w' is F32 of shape \[64, 33\].*float64 of shape \[64, 33\]"):
        modelcrypt.load_checkpoint_into(attempt(w=np.zeros((64, 33), np.float64)), ckpt, KEY)
    with pytest.raises(ValueError, match=r"'b' is F64 of shape \[33\].*shape \[34\]"):
        modelcrypt.load_checkpoint_into(attempt(b=np.zeros(34, np.float64)), ckpt, KEY)
    dst = attempt()
    del dst["ids"]
    dst["extra"] = np.zeros(3, np.float32)
    with pytest.raises(KeyError, match="'extra'"):
        modelcrypt.load_checkpoint_into(dst, ckpt, KEY)
    del dst["extra"]
    with pytest.raises(ValueError, match="1 tensor"):
        modelcrypt.load_checkpoint_into(dst, ckpt, KEY)
    ro = np.zeros((64, 33), np.float32)
    ro.flags.writeable = False
    with pytest.raises(TypeError, match=r"arrays\['w'\] is a read-only"):
        modelcrypt.load_checkpoint_into(attempt(w=ro), ckpt, KEY)
    with pytest.raises(ValueError, match=r"arrays\['w'\] is not C-contiguous"):
        modelcrypt.load_checkpoint_into(attempt(w=np.zeros((33, 64), np.float32).T), ckpt, KEY)
    shared = np.zeros(64 * 33 + 40, np.float32)  # "b" starts inside "w"
    overlapping = attempt(w=shared[:64 * 33].reshape(64, 33), b=shared[64 * 33 - 10:64 * 33 + 56].view(np.float64))
    with pytest.raises(ValueError, match="partly share memory"):
        modelcrypt.load_checkpoint_into(overlapping, ckpt, KEY)
    with pytest.raises(TypeError, match="mapping"):
        modelcrypt.load_checkpoint_into([np.zeros(3)], ckpt, KEY)
    with pytest.raises(KeyMismatchError):
        modelcrypt.load_checkpoint_into(attempt(), ckpt, OTHER)
    assert _core.debug_counters()["chunks_decrypted"] <= 7  # the header's chunk per attempt, no tensor
    for k, v in sentinel.items():
        assert np.array_equal(v, np.full_like(v, 1))


def test_load_checkpoint_into_not_strict_returns_what_did_not_match(ckpt):
    expected = modelcrypt.load_checkpoint(ckpt, KEY)
    dst = {"w": np.zeros((64, 33), np.float32), "nothere": np.zeros(2, np.uint8)}
    missing, unexpected = modelcrypt.load_checkpoint_into(dst, ckpt, KEY, strict=False)
    assert missing == ["nothere"] and sorted(unexpected) == sorted(set(expected) - {"w"})
    assert np.array_equal(dst["w"], expected["w"]) and not dst["nothere"].any()


def test_load_checkpoint_into_tampered_tensor_wipes_every_destination(tmp_path):
    big = {"a": np.arange(1 << 20, dtype=np.float32), "b": np.arange(1 << 20, dtype=np.float32) + 1}  # 8 chunks
    path = tmp_path / "big.mcx"
    modelcrypt.save_checkpoint(big, path, KEY)
    _flip(path, os.path.getsize(path) - 1000)  # in the last tensor's last chunk
    for threads in (1, None):
        dst = {k: np.full_like(v, 7) for k, v in big.items()}
        with pytest.raises(AuthenticationError, match="chunk 7"):
            modelcrypt.load_checkpoint_into(dst, path, KEY, threads=threads)
        assert not dst["a"].any() and not dst["b"].any()  # "a" was written (its chunks are fine), then zeroed
    # a tampered header chunk: found before any tensor is written, so nothing is touched
    _flip(path, _header_length(path) + 10)
    dst = {k: np.full_like(v, 7) for k, v in big.items()}
    with pytest.raises(AuthenticationError, match="chunk 0"):
        modelcrypt.load_checkpoint_into(dst, path, KEY)
    assert (dst["a"] == 7).all() and (dst["b"] == 7).all()


def test_load_checkpoint_into_sharded(tmp_path):
    arrays = {f"layer{i}.weight": np.full((512, 1024), i, np.float32) for i in range(6)}  # 2 MiB each
    target = tmp_path / "model.safetensors"
    modelcrypt.save_checkpoint(arrays, target, KEY, max_shard_size=5 << 20)  # 3 shards of 4 chunks
    index = tmp_path / "model.safetensors.index.json"
    assert len(set(json.loads(index.read_text())["weight_map"].values())) > 2
    dst = {k: np.zeros_like(v) for k, v in arrays.items()}
    assert modelcrypt.load_checkpoint_into(dst, index, KEY) == ([], [])
    for k, v in arrays.items():
        assert np.array_equal(dst[k], v), k
    # one shard tampered: the whole load fails and what other shards wrote is zeroed too
    shards = sorted(p for p in tmp_path.iterdir() if "-of-" in p.name)
    _flip(shards[-1], os.path.getsize(shards[-1]) - 100)  # its last chunk: its header reads fine
    dst = {k: np.full_like(v, 9) for k, v in arrays.items()}
    with pytest.raises(AuthenticationError):
        modelcrypt.load_checkpoint_into(dst, index, KEY)
    assert all(not v.any() for v in dst.values())


def test_load_checkpoint_into_plaintext_safetensors(tmp_path):
    from safetensors.numpy import save_file

    arrays = _arrays()
    del arrays["empty"]
    path = tmp_path / "plain.safetensors"
    save_file(arrays, str(path))
    dst = {k: np.zeros_like(v) for k, v in arrays.items()}
    assert modelcrypt.load_checkpoint_into(dst, path) == ([], [])
    for k, v in arrays.items():
        assert np.array_equal(dst[k], v), k


# ------------------------------------------------------------------ torch


class _Tied(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(97, 32)
        self.block = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.GELU(), torch.nn.Linear(64, 32))
        self.norm = torch.nn.BatchNorm1d(32)
        self.head = torch.nn.Linear(32, 97, bias=False)
        self.head.weight = self.emb.weight  # tied

    def forward(self, x):
        return self.head(self.norm(self.block(self.emb(x))))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_load_into_model_writes_into_the_existing_parameters(tmp_path, dtype):
    torch.manual_seed(0)
    src = _Tied().to(dtype).eval()
    src.norm.running_mean.uniform_()  # buffers travel too
    path = tmp_path / "m.mcx"
    modelcrypt.save_checkpoint(src.state_dict(), path, KEY)
    torch.manual_seed(1)
    dst = _Tied().to(dtype).eval()
    ptrs = {k: v.data_ptr() for k, v in dst.state_dict().items()}
    result = mctorch.load_into_model(dst, path, KEY)
    assert result.missing_keys == [] and result.unexpected_keys == [] and type(result).__name__ == "_IncompatibleKeys"
    assert {k: v.data_ptr() for k, v in dst.state_dict().items()} == ptrs
    assert dst.head.weight is dst.emb.weight
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v), k
    x = torch.arange(20) % 97
    with torch.no_grad():
        assert torch.equal(dst(x), src(x))
    # the same through load_state_dict (the reference)
    ref = _Tied().to(dtype).eval()
    ref.load_state_dict(mctorch.load_state_dict(path, KEY))
    with torch.no_grad():
        assert torch.equal(ref(x), dst(x))


def test_load_into_model_strict_and_errors(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.Linear(4, 2))
    path = tmp_path / "m.mcx"
    state = model.state_dict()
    state["extra"] = torch.ones(3)
    del state["1.bias"]
    modelcrypt.save_checkpoint(state, path, KEY)
    target = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.Linear(4, 2))
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(KeyError, match="1.bias"):
        mctorch.load_into_model(target, path, KEY)
    result = mctorch.load_into_model(target, path, KEY, strict=False)
    assert result.missing_keys == ["1.bias"] and result.unexpected_keys == ["extra"]
    assert torch.equal(target[0].weight, model[0].weight) and torch.equal(target[1].bias, before["1.bias"])
    wrong = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.Linear(4, 2)).double()
    with pytest.raises(ValueError, match="'0.weight' is F32"):
        mctorch.load_into_model(wrong, path, KEY, strict=False)
    with pytest.raises(KeyMismatchError):
        mctorch.load_into_model(target, path, OTHER, strict=False)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        mctorch.load_into_model(target.state_dict(), path, KEY)
    meta = torch.nn.Linear(8, 4, device="meta")
    with pytest.raises(ValueError, match="meta"):
        mctorch.load_into_model(meta, path, KEY, strict=False)


MEMORY_CHILD = r"""
import json, sys, torch
import modelcrypt, modelcrypt.torch as mctorch

def status(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))

torch.manual_seed(1)
model = torch.nn.Sequential(*[torch.nn.Linear(1024, 1024, bias=False) for _ in range(64)])  # 256 MiB
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets VmHWM (the peak RSS) to the current RSS
before = status("VmRSS")
mctorch.load_into_model(model, sys.argv[1], bytes(range(32)))
peak = status("VmHWM")
torch.manual_seed(0)
ref = torch.nn.Sequential(*[torch.nn.Linear(1024, 1024, bias=False) for _ in range(64)])
equal = all(torch.equal(a, b) for a, b in zip(model.parameters(), ref.parameters()))
print(json.dumps({"before_kib": before, "peak_kib": peak, "equal": equal}))
"""


def test_load_into_model_memory_is_bounded(tmp_path):
    """Loading a 256 MiB checkpoint into an existing model grows the peak RSS by a few MiB (two 8 MiB
    batches of ciphertext plus one chunk per thread), not by the checkpoint."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(*[torch.nn.Linear(1024, 1024, bias=False) for _ in range(64)])
    path = tmp_path / "big.mcx"
    modelcrypt.save_checkpoint(model.state_dict(), path, KEY)
    del model
    report = json.loads(run_python(MEMORY_CHILD, path).strip().splitlines()[-1])
    grown_mib = (report["peak_kib"] - report["before_kib"]) / 1024
    assert report["equal"]
    assert grown_mib <= 64, report
