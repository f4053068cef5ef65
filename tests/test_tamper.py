"""Tampering with an encrypted file: every modification is rejected with the
error FORMAT.md's reader order prescribes, by both load() and decrypt_bytes().

The expected error for a modified file is derived independently by
expected_error() below, a direct transcription of FORMAT.md "Reader order"
(steps 1-9) that only parses the header fields and compares against the
untouched original (the key-dependent checks, 6-9, reduce to "did the bytes
they cover change"). test_expected_error_oracle pins a few hand-computed
offsets so the oracle itself is checked.
"""

import math
import os
import struct

import pytest

import modelcrypt

CS = 4096
KEY = bytes(range(100, 116))                 # 16-byte key
L = 5 * CS + CS // 2                          # ~5.5 chunks
N = math.ceil(L / CS)                         # 6
META = {"model": "tiny", "v": "1"}
MAGIC = b"\x89MCRYPT\n"

FE = modelcrypt.FormatError
UV = modelcrypt.UnsupportedVersionError
KM = modelcrypt.KeyMismatchError
AE = modelcrypt.AuthenticationError


@pytest.fixture(scope="module")
def plaintext():
    return bytes((i * 7 + (i >> 12)) & 0xFF for i in range(L))


@pytest.fixture(scope="module")
def original(tmp_path_factory, plaintext):
    d = tmp_path_factory.mktemp("tamper")
    src, enc = d / "src.bin", d / "orig.enc"
    src.write_bytes(plaintext)
    modelcrypt.encrypt_file(src, enc, KEY, chunk_size=CS, metadata=META)
    blob = enc.read_bytes()
    with modelcrypt.load(enc, KEY) as b:
        assert bytes(b) == plaintext
    return blob


def _header_len(blob):
    return 128 + struct.unpack_from("<I", blob, 24)[0]


def expected_error(data, orig):
    """FORMAT.md reader order applied to `data`, given the untampered `orig`.
    Returns the exception class or None if `data` must decrypt."""
    if len(data) < 8 or data[:8] != MAGIC:                               # step 1
        return FE
    if len(data) < 96:                                                   # step 2
        return FE
    version, alg, cs, length, m, reserved = struct.unpack_from("<HHIQII", data, 8)
    if version != 1 or alg != 1:                                         # step 3
        return UV
    n = max(1, -(-length // cs)) if cs else 0
    if (reserved != 0 or not (4096 <= cs <= 64 * 1024 * 1024 and cs % 4096 == 0)
            or m > 65536 or length > 2 ** 48 or n > 2 ** 32):            # step 4
        return FE
    h = 128 + m
    if len(data) < h:                                                    # step 5
        return FE
    if data[32:96] != orig[32:96]:                                       # step 6
        return KM          # salt or commitment changed: derived commitment differs
    if data[:h] != orig[:_header_len(orig)]:                             # step 7
        return AE          # header bytes (incl. MAC) differ: MAC check fails
    if len(data) != h + length + 16 * n:                                 # step 8
        return AE
    if data[h:] != orig[h:]:                                             # step 9
        return AE
    return None


def _run_both(data, want, path, label, threads=1):
    """load(path) (path must already hold `data`) and decrypt_bytes(data) must
    raise exactly `want` (or succeed if want is None); return problems."""
    problems = []
    for api in ("load", "decrypt_bytes"):
        try:
            if api == "load":
                buf = modelcrypt.load(path, KEY, threads=threads)
            else:
                buf = modelcrypt.decrypt_bytes(data, KEY, threads=threads)
        except Exception as e:  # noqa: BLE001 - we classify below
            if want is None or type(e) is not want:
                problems.append("%s %s: expected %s, got %s: %s" % (
                    label, api, want and want.__name__, type(e).__name__, e))
        else:
            buf.close()
            if want is not None:
                problems.append("%s %s: SILENT SUCCESS (expected %s)" % (label, api, want.__name__))
    return problems


def _check(data, orig, path, label, threads=1):
    """Write `data` to `path`, run load() and decrypt_bytes(); return problems."""
    path.write_bytes(data)
    return _run_both(data, expected_error(data, orig), path, label, threads)


def _xor_sweep(orig, path, offsets, mask, threads=1):
    """Single-byte XOR at each offset; the file on disk is patched in place
    (pwrite + restore) to keep the sweep fast."""
    problems, seen = [], {}
    path.write_bytes(orig)
    fd = os.open(str(path), os.O_RDWR)
    try:
        for off in offsets:
            data = bytearray(orig)
            data[off] ^= mask
            data = bytes(data)
            want = expected_error(data, orig)
            seen[want] = seen.get(want, 0) + 1
            os.pwrite(fd, data[off:off + 1], off)
            try:
                problems += _run_both(data, want, path, "xor%02x@%d" % (mask, off), threads)
            finally:
                os.pwrite(fd, orig[off:off + 1], off)
    finally:
        os.close(fd)
    assert path.read_bytes() == orig
    return problems, seen


def test_expected_error_oracle(original):
    """Hand-derived expectations for representative offsets (checks the oracle)."""
    def flip(off, x=0x01):
        b = bytearray(original)
        b[off] ^= x
        return bytes(b)
    h = _header_len(original)
    assert expected_error(original, original) is None
    assert expected_error(flip(0), original) is FE           # magic
    assert expected_error(flip(7), original) is FE
    assert expected_error(flip(8), original) is UV           # version 1 -> 0
    assert expected_error(flip(9), original) is UV           # version 257
    assert expected_error(flip(10), original) is UV          # algorithm
    assert expected_error(flip(12), original) is FE          # chunk_size 4097
    assert expected_error(flip(14), original) is AE          # chunk_size 69632: in bounds
    assert expected_error(flip(15, 0x80), original) is FE    # chunk_size > 64 MiB
    assert expected_error(flip(16), original) is AE          # L changed, in bounds
    assert expected_error(flip(22), original) is FE          # L > 2^48
    assert expected_error(flip(23), original) is FE
    assert expected_error(flip(24), original) is AE          # M +-1: still fits in file
    assert expected_error(flip(26), original) is FE          # M > 65536
    assert expected_error(flip(28), original) is FE          # reserved
    assert expected_error(flip(31), original) is FE
    assert expected_error(flip(32), original) is KM          # salt
    assert expected_error(flip(95), original) is KM          # commitment
    assert expected_error(flip(96), original) is AE          # metadata
    assert expected_error(flip(h - 1), original) is AE       # header MAC
    assert expected_error(flip(h), original) is AE           # payload
    assert expected_error(flip(len(original) - 1), original) is AE
    assert expected_error(original[:7], original) is FE
    assert expected_error(original[:95], original) is FE
    assert expected_error(original[:h - 1], original) is FE
    assert expected_error(original[:h], original) is AE
    assert expected_error(original + b"\0", original) is AE
    m = struct.unpack_from("<I", original, 24)[0]
    # an M that would reach past the end of this small file: truncated header
    big_m = bytearray(original)
    struct.pack_into("<I", big_m, 24, len(original))
    assert expected_error(bytes(big_m), original) is FE
    assert m == h - 128


def test_wrong_key(original, tmp_path):
    p = tmp_path / "e"
    p.write_bytes(original)
    for wrong in (bytes(16), KEY[:-1] + bytes([KEY[-1] ^ 1]), KEY + bytes(8), KEY * 2):
        with pytest.raises(KM):
            modelcrypt.load(p, wrong)
        with pytest.raises(KM):
            modelcrypt.decrypt_bytes(original, wrong)


def test_every_byte_xor_01(original, tmp_path):
    problems, seen = _xor_sweep(original, tmp_path / "t.enc", range(len(original)), 0x01)
    assert problems == [], "%d problems, first 30:\n%s" % (len(problems), "\n".join(problems[:30]))
    # the sweep exercised every class, and nothing was expected to succeed
    assert set(seen) == {FE, UV, KM, AE}, seen


def test_sampled_bytes_xor_ff(original, tmp_path):
    h = _header_len(original)
    offsets = set(range(0, 128)) | set(range(h - 40, h + 40))
    offsets |= set(range(h, len(original), 257))
    for i in range(N):
        base = h + i * (CS + 16)
        offsets |= {base, base + 1, base + CS - 1, base + CS, base + CS + 15}
    offsets |= {len(original) - 1, len(original) - 16, len(original) - 17}
    offsets = sorted(o for o in offsets if 0 <= o < len(original))
    problems, seen = _xor_sweep(original, tmp_path / "t.enc", offsets, 0xFF)
    assert problems == [], "\n".join(problems[:30])
    assert set(seen) == {FE, UV, KM, AE}, seen


def test_tamper_with_two_threads(original, tmp_path):
    h = _header_len(original)
    offsets = (0, 8, 12, 28, 40, 70, 100, h - 1) + tuple(range(h, len(original), 997))
    problems, _ = _xor_sweep(original, tmp_path / "t.enc", offsets, 0x01, threads=2)
    assert problems == [], "\n".join(problems[:30])


def _chunks(blob):
    h = _header_len(blob)
    chunks = []
    off = h
    while off < len(blob):
        chunks.append(blob[off:off + CS + 16])
        off += CS + 16
    assert len(chunks) == N
    assert len(chunks[-1]) == L - (N - 1) * CS + 16
    return blob[:h], chunks


def test_truncation(original, tmp_path):
    p = tmp_path / "t.enc"
    h = _header_len(original)
    cuts = {0, 1, 7, 8, 95, 96, 97, h - 32, h - 1, h, h + 1, len(original) - 1,
            len(original) - 16, len(original) - 17}
    for i in range(1, N + 1):
        boundary = h + i * (CS + 16)
        cuts |= {boundary - 16, boundary - 1, boundary, boundary + 1, boundary - CS // 2}
    cuts = sorted(c for c in cuts if 0 <= c < len(original))
    problems = []
    for c in cuts:
        data = original[:c]
        assert expected_error(data, original) is not None
        problems += _check(data, original, p, "truncate@%d" % c)
    assert problems == [], "\n".join(problems)


def test_chunk_boundary_truncation_is_authentication_error(original):
    """Dropping whole trailing chunks (a clean 'shorter file') must not pass as
    a valid shorter model."""
    header, chunks = _chunks(original)
    for keep in range(0, N):
        data = header + b"".join(chunks[:keep])
        with pytest.raises(AE):
            modelcrypt.decrypt_bytes(data, KEY)


def test_chunk_swap(original, tmp_path):
    header, chunks = _chunks(original)
    p = tmp_path / "t.enc"
    problems = []
    for i in range(N - 1):
        for j in range(i + 1, N - 1):   # equal-length full chunks
            c = list(chunks)
            c[i], c[j] = c[j], c[i]
            problems += _check(header + b"".join(c), original, p, "swap %d<->%d" % (i, j))
    # swap the short last chunk with a full one (lengths then disagree)
    c = list(chunks)
    c[0], c[-1] = c[-1], c[0]
    problems += _check(header + b"".join(c), original, p, "swap 0<->last")
    assert problems == [], "\n".join(problems)


def test_chunk_duplication(original, tmp_path):
    header, chunks = _chunks(original)
    p = tmp_path / "t.enc"
    problems = []
    for i in range(N):
        c = chunks[:i + 1] + [chunks[i]] + chunks[i + 1:]          # insert a copy
        problems += _check(header + b"".join(c), original, p, "dup-insert %d" % i)
        if i + 1 < N - 1:
            c = list(chunks)
            c[i + 1] = chunks[i]                                     # overwrite next with copy
            problems += _check(header + b"".join(c), original, p, "dup-overwrite %d" % i)
    assert problems == [], "\n".join(problems)


def test_chunk_deletion(original, tmp_path):
    header, chunks = _chunks(original)
    p = tmp_path / "t.enc"
    problems = []
    for i in range(N):
        c = chunks[:i] + chunks[i + 1:]
        problems += _check(header + b"".join(c), original, p, "delete %d" % i)
    assert problems == [], "\n".join(problems)


def test_last_chunk_flag(original):
    """Making a non-final chunk the last one by dropping everything after it and
    padding the length cannot work either: header L is MAC-protected."""
    header, chunks = _chunks(original)
    data = bytearray(header + b"".join(chunks[:3]))
    struct.pack_into("<Q", data, 16, 3 * CS)
    with pytest.raises(AE):
        modelcrypt.decrypt_bytes(bytes(data), KEY)


def test_appended_bytes(original, tmp_path):
    p = tmp_path / "t.enc"
    problems = []
    for extra in (b"\0", b"\x01" * 15, b"\0" * 16, b"X" * (CS + 16), original[-(CS // 2 + 16):]):
        data = original + extra
        assert expected_error(data, original) is AE
        problems += _check(data, original, p, "append %d" % len(extra))
    assert problems == [], "\n".join(problems)


def test_header_from_other_file(original, plaintext):
    """Splicing: header of one encryption + payload of another (same key)."""
    other = modelcrypt.encrypt_bytes(plaintext, KEY, chunk_size=CS, metadata=META)
    h = _header_len(original)
    assert len(other) == len(original)
    with pytest.raises(AE):
        modelcrypt.decrypt_bytes(original[:h] + other[h:], KEY)
    with pytest.raises(AE):
        modelcrypt.decrypt_bytes(other[:h] + original[h:], KEY)
    # other file's salt+commitment with this file's remaining header: MAC fails
    spliced = original[:32] + other[32:96] + original[96:]
    with pytest.raises(AE):
        modelcrypt.decrypt_bytes(spliced, KEY)
