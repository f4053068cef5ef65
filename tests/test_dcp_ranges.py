"""Reading the part of a stored DCP chunk a load request needs (checkpoint/_dcp_ranges.py): every cut
of a 1-, 2- and 3-dimensional block equals narrowing the whole block, and a column cut of wide rows
reads only the encryption chunks that hold its columns (counted by the core)."""

from __future__ import annotations

import itertools

import pytest

from conftest import require  # noqa: E402

torch = require("torch")

import modelcrypt  # noqa: E402
from modelcrypt import _core  # noqa: E402
from modelcrypt.checkpoint._dcp_ranges import read_sub_block  # noqa: E402

KEY = bytes(range(32))
CHUNK = 4096
PREFIX = 100  # the block starts at an odd place of the plaintext, as items in a rank file do


def _stored(tmp_path, block: torch.Tensor, name="block.mcx"):
    path = tmp_path / name
    plain = b"\x07" * PREFIX + block.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() + b"\x09" * 33
    path.write_bytes(modelcrypt.encrypt_bytes(plain, KEY, chunk_size=CHUNK))
    return path


def _cuts(sizes):
    """Per dimension: whole, a leading part, a middle part, a trailing part, one element, empty."""
    per_dim = []
    for z in sizes:
        options = {(0, z), (0, max(1, z // 2)), (z // 3, max(1, z // 3)), (z - 1, 1), (z // 2, z - z // 2), (1, 0)}
        per_dim.append(sorted(o for o in options if o[0] + o[1] <= z))
    return itertools.product(*per_dim)


@pytest.mark.parametrize("sizes,dtype", [((37,), torch.float32), ((12, 700), torch.float32),
                                         ((5, 6, 300), torch.bfloat16), ((3, 4, 5, 70), torch.int16)])
def test_every_cut_equals_narrowing_the_whole_block(tmp_path, sizes, dtype):
    g = torch.Generator().manual_seed(7)
    block = (torch.randn(sizes, generator=g) * 100).to(dtype)
    with modelcrypt.open_encrypted(_stored(tmp_path, block), KEY) as f:
        for cut in _cuts(sizes):
            offs, lens = [c[0] for c in cut], [c[1] for c in cut]
            want = block
            for d, (o, n) in enumerate(cut):
                want = want.narrow(d, o, n)
            for contiguous in (True, False):
                if contiguous:
                    target = torch.full(lens, 3, dtype=dtype)
                else:  # a destination that is a non-contiguous view (a transposed buffer)
                    target = torch.full(list(reversed(lens)), 3, dtype=dtype).permute(*reversed(range(len(lens))))
                read_sub_block(f, PREFIX, list(sizes), offs, lens, dtype, target, None)
                assert torch.equal(target, want), (cut, contiguous)


def test_a_scalar(tmp_path):
    block = torch.tensor(2.5, dtype=torch.float64)
    with modelcrypt.open_encrypted(_stored(tmp_path, block), KEY) as f:
        target = torch.zeros((), dtype=torch.float64)
        read_sub_block(f, PREFIX, [], [], [], torch.float64, target, None)
    assert target.item() == 2.5


def test_a_column_cut_of_wide_rows_reads_only_its_chunks(tmp_path):
    rows, cols = 16, 8 * CHUNK // 4  # each row 8 encryption chunks of float32
    block = torch.arange(rows * cols, dtype=torch.float32).reshape(rows, cols)
    path = _stored(tmp_path, block)
    with modelcrypt.open_encrypted(path, KEY) as f:
        for part in range(4):  # Shard(1) over 4 ranks: a quarter of each row, 2 chunks of 8
            o, n = part * cols // 4, cols // 4
            target = torch.zeros(rows, n)
            _core.reset_debug_counters()
            read_sub_block(f, PREFIX, [rows, cols], [0, o], [rows, n], torch.float32, target, None)
            read = _core.debug_counters()["ciphertext_bytes_read"]
            assert torch.equal(target, block[:, o:o + n])
            needed = rows * n * 4
            # each run is 2 chunks, or 3 where the 100-byte prefix makes it straddle one more
            assert read <= rows * 3 * (CHUNK + 16), (part, read, needed)
            assert read < 0.4 * path.stat().st_size, (part, read)


def test_short_runs_read_one_span_from_the_first_needed_byte_to_the_last(tmp_path):
    rows, cols = 256, 64  # rows of 256 bytes: every 4 KiB chunk holds a needed byte of any column cut
    block = torch.arange(rows * cols, dtype=torch.float32).reshape(rows, cols)
    path = _stored(tmp_path, block)
    with modelcrypt.open_encrypted(path, KEY) as f:
        target = torch.zeros(50, 8)
        _core.reset_debug_counters()
        read_sub_block(f, PREFIX, [rows, cols], [100, 40], [50, 8], torch.float32, target, None)
        read = _core.debug_counters()["ciphertext_bytes_read"]
    assert torch.equal(target, block[100:150, 40:48])
    span = (49 * cols + 8) * 4  # rows 100..149, from column 40 of the first to 47 of the last
    assert read <= span + 2 * (CHUNK + 16), (read, span)
    assert read < block.numel() * 4 * 0.4


def test_a_narrow_column_cut_of_wide_rows_skips_the_chunks_between_its_runs(tmp_path):
    """Runs shorter than a chunk but rows several chunks long: the chunks between the runs are not read."""
    rows, cols = 16, 8 * CHUNK // 4  # each row 8 encryption chunks of float32
    block = torch.arange(rows * cols, dtype=torch.float32).reshape(rows, cols)
    path = _stored(tmp_path, block)
    with modelcrypt.open_encrypted(path, KEY) as f:
        o, n = 3 * cols // 8 + 10, CHUNK // 16  # a quarter of a chunk of each row
        target = torch.zeros(rows, n)
        _core.reset_debug_counters()
        read_sub_block(f, PREFIX, [rows, cols], [0, o], [rows, n], torch.float32, target, None)
        read = _core.debug_counters()["ciphertext_bytes_read"]
    assert torch.equal(target, block[:, o:o + n])
    assert read <= rows * 2 * (CHUNK + 16), read  # one chunk a row, two where a run straddles a boundary
