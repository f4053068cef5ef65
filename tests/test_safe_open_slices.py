"""modelcrypt.safe_open's slices side by side with safetensors.safe_open's on the decrypted file (real
torch, safetensors, OpenSSL, real files): every slice shape of every dtype, both frameworks; slices
of rows several chunks long (gathered from spans that skip chunks), the bytes a column slice reads,
and which results view decrypted buffers and which own their memory."""

from __future__ import annotations

import json
import os
import struct

import numpy as np
import pytest

import modelcrypt

from conftest import require
from test_safe_open import CHUNK, KEY, _Counting, _same, files  # noqa: F401  (files: the every-dtype fixture)

torch = require("torch")
safetensors = require("safetensors")
from safetensors import safe_open as st_safe_open  # noqa: E402
from safetensors.torch import save_file as st_save_file  # noqa: E402


_SLICES = [np.s_[0], np.s_[-1], np.s_[1:3], np.s_[:, 2], np.s_[..., 1], np.s_[::2], np.s_[1::3], np.s_[-3:-1],
           np.s_[:, 1:4], np.s_[:, ::2], np.s_[2, 1:], np.s_[-2, -3:, ::2], np.s_[1:3, 2:4, ::3], np.s_[0, 0, 0],
           np.s_[10:20], np.s_[3:1], np.s_[()], np.s_[...], np.s_[:], np.s_[..., 1:2, 3], np.s_[:, -1],
           np.s_[np.int64(2)], np.s_[4:, :, 4]]
_TORCH_ONLY = [np.s_[None], np.s_[[0, 2]], np.s_[::-1], np.s_[1.5], np.s_[0, 0, 0, 0], np.s_[7], np.s_[::0],
               np.s_[:, None, 1], np.s_[torch.tensor(1)]]
_NUMPY_REFUSED = [np.s_[None], np.s_[[0, 2]], np.s_[::-1], np.s_[1.5], np.s_[0, 0, 0, 0], np.s_[7], np.s_[::0],
                  np.s_[:, ::-2]]


def _outcome(call):
    try:
        return call(), None
    except Exception as exc:  # noqa: BLE001  (compared below)
        return None, exc


@pytest.mark.parametrize("name", ["f32", "bf16", "f8_e5m2", "i64", "bool", "c64", "i8"])
def test_slices_as_safetensors_returns_them_torch(files, name):
    enc, dec = files
    with modelcrypt.safe_open(enc, KEY, framework="pt") as ours, st_safe_open(dec, "pt") as theirs:
        for index in _SLICES + _TORCH_ONLY:
            _same_torch_slice(ours, theirs, name, index)


@pytest.mark.parametrize("name", ["f32", "i64", "bool", "c64", "u16", "i8"])
def test_slices_as_safetensors_returns_them_numpy(files, name):
    enc, dec = files
    with modelcrypt.safe_open(enc, KEY, framework="np") as ours, st_safe_open(dec, "np") as theirs:
        whole = theirs.get_tensor(name)
        for index in _SLICES + _NUMPY_REFUSED:
            _same_numpy_slice(ours, theirs, whole, name, index)


def _same_torch_slice(ours, theirs, name, index):
    expected, error = _outcome(lambda: theirs.get_slice(name)[index])
    got, our_error = _outcome(lambda: ours.get_slice(name)[index])
    if error is not None:
        assert type(our_error) is type(error), (name, index, error, our_error)
        assert str(our_error) == str(error)
    else:
        assert our_error is None, (name, index, our_error)
        _same(got, expected, "pt")


def _same_numpy_slice(ours, theirs, whole, name, index):
    expected, error = _outcome(lambda: theirs.get_slice(name)[index])
    got, our_error = _outcome(lambda: ours.get_slice(name)[index])
    if error is None:
        assert our_error is None, (name, index, our_error)
        _same(got, expected, "np")
    elif not isinstance(error, safetensors.SafetensorError):
        # safetensors' numpy slices fail by accident on negative slice bounds (OverflowError) and on
        # start > stop (SystemError): this reader gives numpy's answer
        expected, error = _outcome(lambda: np.asarray(whole[index]))
        if error is None:
            assert our_error is None, (name, index, our_error)
            _same(got, expected, "np")
        else:
            assert type(our_error) is type(error), (name, index, error, our_error)
    else:
        assert isinstance(our_error, (TypeError, ValueError, IndexError)), (name, index, error, our_error)


def test_tensors_view_modelcrypt_owned_memory(files):
    """Tensors and slices that are one contiguous run view modelcrypt-owned (decrypted) buffers; other
    slices are gathered into memory of their own, the same for both frameworks."""
    with modelcrypt.safe_open(files[0], KEY, framework="np") as f:
        for arr in (f.get_tensor("f32"), f.get_slice("f32")[1:3], f.get_slice("f32")[4, 1:3]):
            base = arr
            while isinstance(base, np.ndarray):
                base = base.base
            assert isinstance(base, memoryview) and isinstance(base.obj, modelcrypt.DecryptedBuffer)
        for arr in (f.get_slice("f32")[:, ::2], f.get_slice("f32")[:, 2], f.get_slice("f32")[2:4, 1:3, ::2]):
            owner = arr if arr.base is None else arr.base
            assert owner.base is None and owner.flags.owndata and owner.nbytes == arr.nbytes
            assert arr.flags.c_contiguous
    with modelcrypt.safe_open(files[0], KEY, framework="pt") as f:
        t = f.get_tensor("f32")
        # the storage behind a contiguous slice is the run it needs, decrypted once, not the whole tensor
        assert f.get_slice("f32")[1:3].untyped_storage().nbytes() == 2 * 6 * 5 * 4
        assert f.get_slice("f32")[4, 1:3].untyped_storage().nbytes() == 2 * 5 * 4
        assert f.get_slice("f32")[-1, -1, -1].untyped_storage().nbytes() == 4
        # a gathered slice owns exactly its elements (a contiguous copy)
        for s in (f.get_slice("f32")[:, 2], f.get_slice("f32")[4, 1:3, ::2], f.get_slice("f32")[::3, None, :, -1]):
            assert s.is_contiguous() and s.untyped_storage().nbytes() == s.numel() * 4
        t[0, 0, 0] = 123.0  # writable; every call decrypts afresh
        assert f.get_tensor("f32")[0, 0, 0] != 123.0


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """(encrypted file, its plaintext) of tensors whose rows are several 64 KiB chunks long."""
    d = tmp_path_factory.mktemp("safe_open_wide")
    g = torch.Generator().manual_seed(4)
    tensors = {"w": torch.randn(16, 65536, generator=g),  # rows of 256 KiB: four chunks each
               "t3": torch.randn(5, 4, 20000, generator=g).half(),  # 40 KB a row, 160 KB a matrix
               "i8": torch.randint(-128, 128, (3, 200000), generator=g, dtype=torch.int8)}
    st_save_file(tensors, d / "wide.safetensors")
    modelcrypt.encrypt_file(d / "wide.safetensors", d / "wide.enc", KEY, chunk_size=CHUNK)
    return d / "wide.enc", d / "wide.safetensors"


_WIDE_SLICES = [np.s_[:, 2:5], np.s_[:, 20000:40000], np.s_[:, ::3], np.s_[1::2, 100:17000], np.s_[..., 5],
                np.s_[:, 1], np.s_[::2, ::2], np.s_[1:4, 2:, 1000:30000], np.s_[-1, :, 3:9], np.s_[:, -20000:],
                np.s_[2:3, ..., 1:2], np.s_[::4, 3], np.s_[:, 1:3, ::7000], np.s_[4, 0:3, 19999]]


@pytest.mark.parametrize("framework", ["pt", "np"])
def test_gathered_slices_of_wide_rows_as_safetensors(wide, framework):
    """Slices that are not one contiguous run, over rows of several chunks (read in spans that skip
    chunks), equal safetensors' slices of the plaintext; with None too for torch."""
    extra = [np.s_[:, None, 7000:9000], np.s_[None, ::3, None, -2]] if framework == "pt" else []
    with modelcrypt.safe_open(wide[0], KEY, framework=framework) as ours, st_safe_open(wide[1], framework) as theirs:
        for name in ("w", "t3", "i8"):
            whole = theirs.get_tensor(name)
            for index in _WIDE_SLICES + extra:
                if framework == "pt":
                    _same_torch_slice(ours, theirs, name, index)
                else:
                    _same_numpy_slice(ours, theirs, whole, name, index)


def test_a_column_slice_reads_only_the_chunks_holding_its_columns(wide):
    """[:, a:b] of a tensor with rows of four chunks reads, through a file object that counts bytes,
    the chunks holding columns a..b of each row and no others (the whole tensor before)."""
    enc, plain = wide
    with open(plain, "rb") as p:
        n = struct.unpack("<Q", p.read(8))[0]
        header = json.loads(p.read(n))
    frame = CHUNK + 16
    rows, row_bytes = 16, 65536 * 4
    w_start = 8 + n + header["w"]["data_offsets"][0]
    for a, b in [(20000, 20100), (0, 3), (16380, 16390), (40000, 60000)]:
        firsts = [w_start + r * row_bytes + a * 4 for r in range(rows)]  # plaintext offsets of each row's run
        needed = {c for f in firsts for c in range(f // CHUNK, (f + (b - a) * 4 - 1) // CHUNK + 1)}
        with _Counting(enc) as raw, modelcrypt.safe_open(raw, KEY, framework="np") as f:
            want = f.get_tensor("w")[:, a:b].copy()
            raw.count = 0
            got = f.get_slice("w")[:, a:b]
            np.testing.assert_array_equal(got, want)
            assert len(needed) * CHUNK <= raw.count <= len(needed) * frame, (a, b, raw.count, len(needed))
            assert raw.count < rows * row_bytes  # (the old read: every chunk of the tensor)


def test_short_runs_of_a_large_tensor_are_read_in_bounded_pieces(tmp_path):
    """A column slice of a tensor larger than a span (64 MiB) whose rows are shorter than a chunk: read
    from the first needed byte to the last in several pieces, equal to numpy's slice."""
    w = np.arange(4200 * 4096, dtype=np.float32).reshape(4200, 4096)  # 68.8 MB
    modelcrypt.save_checkpoint({"w": w}, tmp_path / "big.enc", KEY)
    with modelcrypt.safe_open(tmp_path / "big.enc", KEY, framework="np") as f:
        np.testing.assert_array_equal(f.get_slice("w")[:, 2:5], w[:, 2:5])
        np.testing.assert_array_equal(f.get_slice("w")[1::7, -3], w[1::7, -3])
    with modelcrypt.safe_open(tmp_path / "big.enc", KEY, framework="pt") as f:
        assert torch.equal(f.get_slice("w")[::2, 4090:], torch.from_numpy(w[::2, 4090:]))


def test_a_modified_chunk_fails_only_the_slices_reading_it(wide, tmp_path):
    """A column slice authenticates every chunk it reads (AuthenticationError on the modified one); a
    column slice of other columns never reads that chunk, and succeeds."""
    enc, plain = wide
    text = _header_text(plain)
    w_begin = 8 + len(text) + json.loads(text)["w"]["data_offsets"][0]
    total = os.path.getsize(plain)
    with st_safe_open(plain, "np") as theirs:
        want = theirs.get_tensor("w")
    row = 65536 * 4
    target = (w_begin + 5 * row + 30000 * 4) // CHUNK  # the chunk holding column 30000 of row 5
    blob = bytearray(enc.read_bytes())
    header = len(blob) - (total + -(-total // CHUNK) * 16)
    blob[header + target * (CHUNK + 16) + 7] ^= 1
    (tmp_path / "modified.enc").write_bytes(blob)
    with modelcrypt.safe_open(tmp_path / "modified.enc", KEY, framework="np") as f:
        with pytest.raises(modelcrypt.AuthenticationError):
            f.get_slice("w")[:, 29990:30010]
        np.testing.assert_array_equal(f.get_slice("w")[:, 100:200], want[:, 100:200])  # other chunks only


def test_plaintext_file_slices_gathered_too(tmp_path):
    """A plaintext .safetensors file (no key): the same slices, views and copies as an encrypted one."""
    w = np.arange(24 * 70, dtype=np.int32).reshape(4, 6, 70)
    modelcrypt.save_checkpoint({"w": w}, tmp_path / "p.safetensors")
    with modelcrypt.safe_open(tmp_path / "p.safetensors", framework="pt") as f:
        for index in _SLICES:
            assert torch.equal(f.get_slice("w")[index], torch.from_numpy(w)[index]), index
        gathered = f.get_slice("w")[:, 2:4, ::3]
        assert gathered.is_contiguous() and gathered.untyped_storage().nbytes() == gathered.numel() * 4
    with modelcrypt.safe_open(tmp_path / "p.safetensors", framework="np") as f:
        np.testing.assert_array_equal(f.get_slice("w")[1:, ..., -5:], w[1:, ..., -5:])


def _header_text(path) -> bytes:
    with open(path, "rb") as p:
        n = struct.unpack("<Q", p.read(8))[0]
        return p.read(n)
