"""The streaming writer over memory parts (_core.encrypt_parts_to_file, behind save_checkpoint and
the DCP writer): chunks that lie inside one part are sealed straight from the caller's memory,
chunks that straddle parts (or that hold empty parts) are gathered first. Every layout must give
the same plaintext back, signed or not, and leave the parts unchanged. Real files, real OpenSSL."""

from __future__ import annotations

import os

import numpy as np
import pytest

import modelcrypt
from modelcrypt import _core

KEY = bytes(range(32))
CHUNK = 4096


def _layouts() -> dict[str, list[int]]:
    return {
        "one part, chunk-aligned": [8 * CHUNK],
        "one part, ragged end": [8 * CHUNK + 123],
        "parts on chunk bounds": [CHUNK, 2 * CHUNK, CHUNK],
        "parts across chunk bounds": [CHUNK - 1, CHUNK + 2, 3 * CHUNK - 5, 7],
        "many small parts": [1, 0, 17, 300, 0, 5000, 1, 2, CHUNK, 9],
        "empty parts around": [0, 0, 3 * CHUNK + 1, 0],
        "a part inside a chunk": [100, 200, 300],
        "everything empty": [0, 0],
    }


def _parts(sizes: list[int], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, n, dtype=np.uint8) for n in sizes]


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
@pytest.mark.parametrize("name", list(_layouts()))
def test_parts_round_trip(tmp_path, name, signed):
    parts = _parts(_layouts()[name], seed=len(name))
    before = [p.copy() for p in parts]
    dst = tmp_path / "out.mcx"
    sk = modelcrypt.generate_signing_key() if signed else None
    _core.encrypt_parts_to_file(parts, os.fsencode(dst), KEY, "AES-GCM", CHUNK, b"", 0, None, False, None,
                                signing_key=sk)
    expected = b"".join(p.tobytes() for p in before)
    trusted = [sk.public_key] if signed else None
    with modelcrypt.load(dst, KEY, trusted_signers=trusted) as buf:
        assert bytes(buf) == expected
    assert all(np.array_equal(a, b) for a, b in zip(parts, before))  # sealed from, never into, the parts
    assert modelcrypt.inspect(dst).plaintext_length == len(expected)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_parts_in_place_and_gathered_chunks_in_one_batch(tmp_path, threads):
    """A batch that mixes chunks sealed in place with gathered ones (a 20 MiB part after small ones:
    several pipeline batches of 1 MiB chunks), checked chunk by chunk through load_range."""
    sizes = [5, (20 << 20) + 11, 3, (1 << 20) - 1, 2]
    parts = _parts(sizes, seed=7)
    dst = tmp_path / "big.mcx"
    _core.encrypt_parts_to_file(parts, os.fsencode(dst), KEY, "AES-GCM", 1 << 20, b"", threads, None, False, None,
                                signing_key=None)
    whole = b"".join(p.tobytes() for p in parts)
    with modelcrypt.load(dst, KEY) as buf:
        assert bytes(buf) == whole
    for off in (0, (1 << 20) - 3, 5 << 20, len(whole) - 10):
        with modelcrypt.load_range(dst, KEY, offset=off, length=10) as r:
            assert bytes(r) == whole[off:off + 10]
