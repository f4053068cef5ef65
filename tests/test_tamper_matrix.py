"""Exhaustive tamper matrix (issue 8): every single-bit flip, every truncation, every chunk/frame
rearrangement and every header-field boundary value of a small file, for format v1 and for the two
authenticated legacy formats (MindSpore AES-GCM frames, PaddleX PADDLE1).

tests/test_tamper.py already sweeps one XOR mask per byte and a set of hand-picked cuts; this file
goes to the full matrix:

* v1: all 8 bits of every byte (no sampling), every truncation 0..len-1, every permutation of the
  chunks, every deletion of a non-empty subset of chunks, duplication at every position, appended
  bytes, and each header field of FORMAT.md set to boundary / out-of-range values, both with the
  stale header MAC and with a header re-authenticated under the right key (so the bound check or
  the length / chunk check, not the MAC, is what rejects it).
* The expected class comes from `expected_bitflip(offset, bit)`, a transcription of FORMAT.md's
  header table, field limits and reader steps 1-9 for one flipped bit; it is pinned by hand-counted
  totals per region and cross-checked against the independent reference reader
  (tests/reference_format.py) for every header bit. Each outcome must be exactly that class
  (`type(exc) is cls`), and silent successes are counted and must be 0.
* The in-memory sweeps use decrypt_bytes (threads=1); a smaller sample also goes through load() on a
  real file, through threads=2 (load and decrypt_bytes), verify() and decrypt_file() (which must leave
  no destination behind).
* MindSpore / PaddleX: every bit of every fixture and of files written by modelcrypt and by the
  reference writer, every truncation, and the frame operations whose outcome docs/LEGACY.md and
  tests/interop/README.md document (undetectable ones are asserted to load exactly the rearranged
  plaintext, rejectable ones to raise the documented class). Legacy formats are read only when asked
  for, so these sweeps read with format="mindspore" / format="paddlex" (by default every such file
  is refused with a FormatError before any decryption: test_interop.test_legacy_formats_need_opt_in).
"""

from __future__ import annotations

import itertools
import os
import struct
import sys
import warnings
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import legacy_reference as LR  # noqa: E402
import reference_format as RF  # noqa: E402
import reference_format_v3 as R3  # noqa: E402  (reads v1, v2 and v3: a flipped version may be 3)

import modelcrypt  # noqa: E402

FE = modelcrypt.FormatError
UV = modelcrypt.UnsupportedVersionError
KM = modelcrypt.KeyMismatchError
AE = modelcrypt.AuthenticationError
OK = None  # "must load" in the legacy oracles

REF_TO_MC = {
    RF.UnsupportedVersionError: UV,
    RF.FormatError: FE,
    RF.KeyMismatchError: KM,
    RF.AuthenticationError: AE,
}

CS = 4096
KEY = bytes(range(0x30, 0x50))                    # 32-byte master key
L0 = 3 * CS + CS // 2                             # 14336: 3.5 chunks
N0 = 4
META = {"model": "tiny", "v": "1"}                # 24 bytes of JSON
M0 = 24
H0 = 128 + M0
FILE_LEN = H0 + L0 + 16 * N0                      # 14552
TWO44, TWO48, TWO32 = 2 ** 44, 2 ** 48, 2 ** 32
MIB64 = 64 * 1024 * 1024

# header fields: name -> (offset, size, struct code)
FIELDS = {
    "version": (8, 2, "<H"),
    "algorithm": (10, 2, "<H"),
    "chunk_size": (12, 4, "<I"),
    "plaintext_length": (16, 8, "<Q"),
    "metadata_length": (24, 4, "<I"),
    "reserved": (28, 4, "<I"),
}


# =========================================================================== shared helpers

def plaintext_v1() -> bytes:
    return bytes((i * 31 + (i >> 9)) & 0xFF for i in range(L0))


@pytest.fixture(scope="module")
def v1():
    pt = plaintext_v1()
    blob = modelcrypt.encrypt_bytes(pt, KEY, chunk_size=CS, metadata=META, threads=1)
    assert len(blob) == FILE_LEN
    assert struct.unpack_from("<HHIQII", blob, 8) == (1, 1, CS, L0, M0, 0)
    assert RF.read(blob, KEY) == (pt, b'{"model":"tiny","v":"1"}')   # independent reader agrees
    with modelcrypt.decrypt_bytes(blob, KEY, threads=1) as b:
        assert bytes(b) == pt
    return blob, pt


def outcome(fn):
    """The exception class fn raises, or OK; the result is closed (and returned via a list)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", modelcrypt.InsecureFormatWarning)
            res = fn()
    except Exception as exc:  # noqa: BLE001 - the class is what is tested
        return type(exc), exc, None
    data = None
    if res is not None:
        data = bytes(res)
        res.close()
    return OK, None, data


class Tally:
    """Collects mismatches; a silent success (expected an error, got plaintext) is counted apart."""

    def __init__(self):
        self.wrong, self.silent, self.checked = [], [], 0

    def check(self, label, want, fn, plain=None):
        """want: an exception class (exact match) or OK (then the plaintext must equal `plain`)."""
        self.checked += 1
        got, exc, data = outcome(fn)
        if want is OK:
            if got is not OK:
                self.wrong.append(f"{label}: expected success, got {got.__name__}: {exc}")
            elif plain is not None and data != plain:
                self.wrong.append(f"{label}: loaded, but not the expected plaintext")
        elif got is OK:
            self.silent.append(f"{label}: SILENT SUCCESS (expected {want.__name__})")
        elif got is not want:
            self.wrong.append(f"{label}: expected {want.__name__}, got {got.__name__}: {exc}")

    def assert_clean(self):
        msg = (f"{len(self.silent)} silent successes, {len(self.wrong)} wrong outcomes of {self.checked}:\n"
               + "\n".join((self.silent + self.wrong)[:40]))
        assert len(self.silent) == 0, msg
        assert self.wrong == [], msg


def ref_expected(data: bytes):
    """The independent reference reader's verdict on `data` (mapped to modelcrypt classes)."""
    try:
        R3.read(data, KEY)
    except tuple(REF_TO_MC) as exc:
        for cls, mc in REF_TO_MC.items():      # UnsupportedVersionError before FormatError
            if isinstance(exc, cls):
                return mc
    return OK


def flip(blob: bytes, off: int, bit: int) -> bytes:
    b = bytearray(blob)
    b[off] ^= 1 << bit
    return bytes(b)


# =========================================================================== v1: the bit-flip oracle

def _step4_and_5(cs: int, length: int, m: int, reserved: int, file_len: int):
    """FORMAT.md steps 4 and 5 for field values (version/algorithm already 1)."""
    if reserved != 0 or not (4096 <= cs <= MIB64 and cs % 4096 == 0) or m > 65536 or length > TWO48:
        return FE
    if max(1, -(-length // cs)) > TWO32:
        return FE
    if file_len < 128 + m:
        return FE
    return None


def expected_bitflip(off: int, bit: int, *, cs=CS, length=L0, m=M0, file_len=FILE_LEN):
    """Expected exception class when bit `bit` of byte `off` of the v1 file (cs, L, M as given) flips.

    Transcribes FORMAT.md: the header byte table (which field the byte belongs to) and reader steps
    1-9 (the first failing step decides). Never returns None: every flip must be rejected.
    """
    h = 128 + m
    assert 0 <= off < file_len and 0 <= bit < 8
    if off < 8:
        return FE                                            # step 1: magic
    if off == 8 and bit == 1:
        # version 1 -> 3, a known version: the v1 file is parsed with the v2/v3 layout, whose R field
        # is then the first 4 payload bytes, out of 4..262144 or past the file: step 5 of version 2/3
        return FE
    if off < 12:
        return UV                                            # step 3: version (8..9), algorithm (10..11)
    if off < 32:                                             # chunk_size, plaintext_length, metadata_length, reserved
        values = {"chunk_size": cs, "plaintext_length": length, "metadata_length": m, "reserved": 0}
        for name in values:
            a, size, _ = FIELDS[name]
            if a <= off < a + size:
                values[name] ^= 1 << (8 * (off - a) + bit)
        bad = _step4_and_5(values["chunk_size"], values["plaintext_length"], values["metadata_length"],
                           values["reserved"], file_len)
        # in bounds: the commitment (at a fixed offset) still matches, the header MAC does not (step 7)
        return bad or AE
    if off < 96:
        return KM                                            # step 6: salt (32..63) or commitment (64..95)
    if off < h:
        return AE                                            # step 7: metadata or header MAC
    return AE                                                # step 9: chunk ciphertext or tag


def test_oracle_region_counts():
    """Hand-counted outcomes per header field (the oracle checked against arithmetic done by hand).

    cs = 0x1000: bits 0-11 (not a multiple of 4096) and bit 12 (cs = 0) and bits 26-31 (> 64 MiB) are
    FormatError; bits 13-25 give 4096 + 2^k <= 32 MiB + 4096, in bounds: AuthenticationError (MAC).
    L = 14336: bits 0-43 stay <= 2^44 (n <= 2^32 with cs 4096): AuthenticationError; bits 44-63:
    FormatError (n > 2^32, or L > 2^48). M = 24: bits 0-13 keep 128 + M <= file length:
    AuthenticationError; bits 14-15 make H longer than the file (step 5), bits 16-31 make M > 65536.
    """
    def count(a, size):
        out = {}
        for off in range(a, a + size):
            for bit in range(8):
                c = expected_bitflip(off, bit)
                out[c] = out.get(c, 0) + 1
        return out
    assert count(0, 8) == {FE: 64}
    assert count(8, 4) == {UV: 31, FE: 1}                   # version 1 -> 3 (bit 1 of byte 8): v3 layout
    assert count(12, 4) == {FE: 19, AE: 13}
    assert count(16, 8) == {AE: 44, FE: 20}
    assert count(24, 4) == {AE: 14, FE: 18}
    assert count(28, 4) == {FE: 32}
    assert count(32, 64) == {KM: 512}
    assert count(96, M0 + 32) == {AE: 8 * (M0 + 32)}
    assert count(H0, FILE_LEN - H0) == {AE: 8 * (FILE_LEN - H0)}
    # some individual bits
    assert expected_bitflip(14, 1) is AE          # cs 4096 -> 135168 (33 * 4096)
    assert expected_bitflip(15, 1) is AE          # cs -> 32 MiB + 4096
    assert expected_bitflip(15, 2) is FE          # cs -> 64 MiB + 4096
    assert expected_bitflip(21, 3) is AE          # L -> 2^43 + L0
    assert expected_bitflip(21, 4) is FE          # L -> 2^44 + L0: n = 2^32 + 4
    assert expected_bitflip(25, 5) is AE          # M -> 8216: H 8344 <= 14552
    assert expected_bitflip(25, 6) is FE          # M -> 16408: H 16536 > 14552 (step 5)
    assert expected_bitflip(26, 0) is FE          # M -> 65560 > 65536 (step 4)


def test_oracle_matches_reference_for_every_header_bit(v1):
    """The bit-flip oracle agrees with the independent reference reader on all header bits and on
    every bit of the first and last 16 bytes of every chunk (ciphertext start and tag)."""
    blob, _ = v1
    offsets = set(range(H0))
    for i in range(N0):
        start = H0 + i * (CS + 16)
        end = min(start + CS + 16, FILE_LEN)
        offsets |= set(range(start, start + 16)) | set(range(end - 16, end))
    bad = []
    for off in sorted(offsets):
        for bit in range(8):
            want, ref = expected_bitflip(off, bit), ref_expected(flip(blob, off, bit))
            if want is not ref:
                bad.append((off, bit, want, ref))
    assert bad == []


# =========================================================================== v1: full sweeps

def test_every_bit_flip_decrypt_bytes(v1):
    """All 8 * 14552 = 116416 single-bit flips through decrypt_bytes: exact class, zero successes."""
    blob, _ = v1
    t = Tally()
    data = bytearray(blob)
    seen = {}
    for off in range(len(blob)):
        for bit in range(8):
            want = expected_bitflip(off, bit)
            seen[want] = seen.get(want, 0) + 1
            data[off] ^= 1 << bit
            try:
                t.check(f"flip {off}.{bit}", want, lambda: modelcrypt.decrypt_bytes(data, KEY, threads=1))
            finally:
                data[off] ^= 1 << bit
    assert bytes(data) == blob
    assert t.checked == 8 * FILE_LEN
    assert set(seen) == {FE, UV, KM, AE}
    t.assert_clean()


def test_every_truncation_decrypt_bytes(v1):
    """file[:n] for every n in 0..len-1: FormatError below H (steps 1, 2, 5), else AuthenticationError
    (step 8), whatever the cut (at a chunk boundary, inside a ciphertext, inside a tag)."""
    blob, _ = v1
    t = Tally()
    mv = memoryview(blob)
    for n in range(len(blob)):
        want = FE if n < H0 else AE
        t.check(f"truncate {n}", want, lambda: modelcrypt.decrypt_bytes(mv[:n], KEY, threads=1))
    for n in list(range(0, H0 + 2)) + [H0 + CS + 16, FILE_LEN - 17, FILE_LEN - 16, FILE_LEN - 1]:
        assert ref_expected(blob[:n]) is (FE if n < H0 else AE), n
    t.assert_clean()


def _split(blob):
    header = blob[:H0]
    chunks = [blob[H0 + i * (CS + 16):H0 + (i + 1) * (CS + 16)] for i in range(N0)]
    assert b"".join(chunks) == blob[H0:] and len(chunks[-1]) == CS // 2 + 16
    return header, chunks


def _chunk_variants(blob):
    """(label, payload chunk list) for every rearrangement of the 4 chunks."""
    header, chunks = _split(blob)
    out = []
    for perm in itertools.permutations(range(N0)):               # swaps, rotations, reversals
        if perm != tuple(range(N0)):
            out.append((f"permute {perm}", [chunks[i] for i in perm]))
    for keep_mask in range(2 ** N0 - 1):                         # every deletion of a non-empty subset
        keep = [i for i in range(N0) if keep_mask >> i & 1]
        out.append((f"keep only {keep}", [chunks[i] for i in keep]))
    for i in range(N0):
        for pos in range(N0 + 1):                                # insert a copy of chunk i at every position
            c = list(chunks)
            c.insert(pos, chunks[i])
            out.append((f"dup {i} at {pos}", c))
        for j in range(N0):                                      # overwrite chunk j with a copy of chunk i
            if i != j:
                c = list(chunks)
                c[j] = chunks[i]
                out.append((f"chunk {i} over {j}", c))
    return header, out


def test_chunk_rearrangements(v1, tmp_path):
    """All 23 permutations, all 15 deletions of a non-empty subset (including dropping every chunk),
    duplication of each chunk at each of the 5 positions, each chunk copied over each other one:
    AuthenticationError by decrypt_bytes and load (step 8 when the length changed, else step 9)."""
    blob, _ = v1
    header, variants = _chunk_variants(blob)
    assert len(variants) == 23 + 15 + 20 + 12
    t = Tally()
    p = tmp_path / "r.mcx"
    for label, chunks in variants:
        data = header + b"".join(chunks)
        assert ref_expected(data) is AE, label
        p.write_bytes(data)
        t.check(label, AE, lambda: modelcrypt.decrypt_bytes(data, KEY, threads=1))
        t.check(label + " (load)", AE, lambda: modelcrypt.load(p, KEY, threads=1))
    t.assert_clean()


def _reauth(header_wo_mac: bytes) -> bytes:
    """Header (file[0:96+M]) plus the header MAC the right key gives it."""
    keys = RF.derive_keys(KEY, header_wo_mac[32:64])
    return header_wo_mac + RF.header_mac(keys["mac_key"], header_wo_mac)


def test_chunk_rearrangements_under_reauthenticated_header(v1):
    """The same rearrangements under a header rewritten with a valid MAC whose L matches what is left
    (a full 'shorter file' forgery with the key's own MAC): the length check passes, and every chunk
    still fails because its AAD (the old MAC), index or last flag is wrong: AuthenticationError."""
    blob, _ = v1
    _, variants = _chunk_variants(blob)
    t = Tally()
    fixed = bytearray(blob[:96 + M0])
    n_len_ok = 0
    for label, chunks in variants:
        if not chunks:
            continue
        length = sum(len(c) - 16 for c in chunks)
        struct.pack_into("<Q", fixed, 16, length)
        data = _reauth(bytes(fixed)) + b"".join(chunks)
        if len(data) == H0 + length + 16 * max(1, -(-length // CS)):
            n_len_ok += 1
        want = ref_expected(data)
        assert want is AE, label
        t.check(label + " re-MAC", AE, lambda: modelcrypt.decrypt_bytes(data, KEY, threads=1))
    assert n_len_ok > 10                  # most of these reach step 9
    # a prefix of whole chunks re-MACed with the right L: length fine, last flag and AAD wrong
    header, chunks = _split(blob)
    struct.pack_into("<Q", fixed, 16, 3 * CS)
    data = _reauth(bytes(fixed)) + b"".join(chunks[:3])
    t.check("3 full chunks as a complete file", AE, lambda: modelcrypt.decrypt_bytes(data, KEY, threads=1))
    t.assert_clean()


@pytest.mark.parametrize("extra", ["1", "16", "chunk", "last-chunk-copy", "tag"])
def test_appended_bytes(v1, tmp_path, extra):
    blob, _ = v1
    _, chunks = _split(blob)
    tail = {"1": b"\x00", "16": bytes(range(16)), "chunk": chunks[1], "last-chunk-copy": chunks[-1],
            "tag": blob[-16:]}[extra]
    data = blob + tail
    assert ref_expected(data) is AE
    p = tmp_path / "a.mcx"
    p.write_bytes(data)
    t = Tally()
    for threads in (1, 2):
        t.check(f"append {extra} t{threads}", AE, lambda: modelcrypt.decrypt_bytes(data, KEY, threads=threads))
        t.check(f"append {extra} load t{threads}", AE, lambda: modelcrypt.load(p, KEY, threads=threads))
    t.assert_clean()


# =========================================================================== v1: header field mutations

# (field, value, expected class with the stale MAC, expected with a re-authenticated header)
# "same": as stale. In-bounds changes fail the MAC (step 7) when stale, and the length (step 8) or a
# chunk tag (step 9) when re-MACed; out-of-bounds values fail step 3/4/5 either way.
FIELD_CASES = [
    ("version", 0, UV, "same"), ("version", 4, UV, "same"), ("version", 0x0101, UV, "same"),
    ("version", 0xFFFF, UV, "same"),
    ("algorithm", 0, UV, "same"), ("algorithm", 2, UV, "same"), ("algorithm", 0xFFFF, UV, "same"),
    ("chunk_size", 0, FE, "same"), ("chunk_size", 1, FE, "same"), ("chunk_size", 2048, FE, "same"),
    ("chunk_size", 4095, FE, "same"), ("chunk_size", 4097, FE, "same"), ("chunk_size", 6144, FE, "same"),
    ("chunk_size", 8191, FE, "same"), ("chunk_size", MIB64 - 1, FE, "same"),
    ("chunk_size", MIB64 + 4096, FE, "same"), ("chunk_size", 2 ** 31, FE, "same"),
    ("chunk_size", 0xFFFFF000, FE, "same"), ("chunk_size", 0xFFFFFFFF, FE, "same"),
    ("chunk_size", 8192, AE, AE), ("chunk_size", 3 * 4096, AE, AE), ("chunk_size", MIB64, AE, AE),
    ("plaintext_length", L0 - 1, AE, AE), ("plaintext_length", L0 + 1, AE, AE),
    ("plaintext_length", 0, AE, AE), ("plaintext_length", 3 * CS, AE, AE),
    ("plaintext_length", TWO44, AE, AE),                    # n = 2^32: accepted by step 4
    ("plaintext_length", TWO44 + 1, FE, "same"),             # n = 2^32 + 1
    ("plaintext_length", TWO48, FE, "same"),                 # n = 2^36 with cs 4096
    ("plaintext_length", TWO48 + 1, FE, "same"), ("plaintext_length", 2 ** 63, FE, "same"),
    ("plaintext_length", 2 ** 64 - 1, FE, "same"),
    ("metadata_length", M0 - 1, AE, AE), ("metadata_length", M0 + 1, AE, AE), ("metadata_length", 0, AE, AE),
    ("metadata_length", FILE_LEN - 128, AE, AE),             # H == file length exactly: step 5 passes
    # H one past the end of the file / near the maximum M: step 5 when only the field changes; when
    # the metadata region is really resized and re-MACed, the layout is consistent and the chunks
    # (whose AAD was the old MAC) fail in step 9
    ("metadata_length", FILE_LEN - 127, FE, AE),
    ("metadata_length", 65535, FE, AE), ("metadata_length", 65536, FE, AE),
    ("metadata_length", 65537, FE, "same"), ("metadata_length", 0xFFFFFFFF, FE, "same"),
    ("reserved", 1, FE, "same"), ("reserved", 0x80000000, FE, "same"), ("reserved", 0xFFFFFFFF, FE, "same"),
]


def _set_field(blob: bytes, name: str, value: int) -> bytearray:
    a, _, code = FIELDS[name]
    b = bytearray(blob)
    struct.pack_into(code, b, a, value)
    return b


def _reauthenticated(blob: bytes, name: str, value: int) -> bytes:
    """The header with `name` = `value` and a valid header MAC; for metadata_length the metadata
    region itself is resized (zero-padded or cut) so that the MAC covers file[0 : 96 + M']."""
    b = _set_field(blob[:96], name, value)
    meta = blob[96:96 + M0]
    if name == "metadata_length":
        m = min(value, 70000)
        meta = (meta + bytes(max(0, m - M0)))[:m]
    return _reauth(bytes(b) + meta) + blob[H0:]


@pytest.mark.parametrize("name,value,stale,reauth", FIELD_CASES,
                         ids=[f"{c[0]}={c[1]:#x}" for c in FIELD_CASES])
def test_header_field_values(v1, tmp_path, name, value, stale, reauth):
    blob, _ = v1
    reauth = stale if reauth == "same" else reauth
    stale_data = bytes(_set_field(blob, name, value))
    good_mac = _reauthenticated(blob, name, value)
    p = tmp_path / "h.mcx"
    t = Tally()
    for label, data, want in (("stale MAC", stale_data, stale), ("re-MACed", good_mac, reauth)):
        assert ref_expected(data) is want, label            # the spec's verdict, independently
        p.write_bytes(data)
        t.check(f"{name}={value} {label}", want, lambda: modelcrypt.decrypt_bytes(data, KEY, threads=1))
        t.check(f"{name}={value} {label} load", want, lambda: modelcrypt.load(p, KEY, threads=2))
        t.check(f"{name}={value} {label} verify", want, lambda: modelcrypt.verify(p, KEY, threads=1))
    t.assert_clean()


@pytest.mark.parametrize("magic", [bytes(8), b"\x89MCRYPT\r", b"\x89MCRYPT\x00", b"\x09MCRYPT\n",
                                   b"\x89mcrypt\n", b"\x89PNG\r\n\x1a\n", b"MCRYPT\n\x89", b"\x89MCRYPU\n"],
                         ids=lambda m: m.hex())
def test_header_magic_values(v1, magic):
    blob, _ = v1
    for data in (magic + blob[8:], _reauth(magic + blob[8:96 + M0]) + blob[H0:]):
        assert ref_expected(data) is FE
        t = Tally()
        t.check(f"magic {magic!r}", FE, lambda: modelcrypt.decrypt_bytes(data, KEY, threads=1))
        t.assert_clean()


def test_header_field_combinations_follow_step_order(v1):
    """Where two rules fail, the first step in FORMAT.md's order decides."""
    blob, _ = v1
    wrong_key = bytes(32)

    def fields(**kw):
        b = bytearray(blob)
        for k, v in kw.items():
            a, _, code = FIELDS[k]
            struct.pack_into(code, b, a, v)
        return bytes(b)
    cases = [
        ("version 4 shorter than 96", fields(version=4)[:95], KEY, FE),              # step 2 before 3
        ("version 4 + reserved", fields(version=4, reserved=1), KEY, UV),           # step 3 before 4
        ("algorithm 2 + cs 0", fields(algorithm=2, chunk_size=0), KEY, UV),
        ("version 0 + L huge", fields(version=0, plaintext_length=2 ** 64 - 1), KEY, UV),
        ("reserved + salt flipped", flip(fields(reserved=1), 40, 0), KEY, FE),      # step 4 before 6
        ("cs 4097 + wrong key", fields(chunk_size=4097), wrong_key, FE),
        ("M past end + wrong key", fields(metadata_length=20000), wrong_key, FE),   # step 5 before 6
        ("truncated header + wrong key", blob[:H0 - 1], wrong_key, FE),
        ("truncated payload + wrong key", blob[:-1], wrong_key, KM),                # step 6 before 8
        ("appended + wrong key", blob + b"\0", wrong_key, KM),
        ("commitment + MAC flipped", flip(flip(blob, 70, 3), H0 - 1, 0), KEY, KM),   # step 6 before 7
        ("salt flipped + truncated", flip(blob, 33, 7)[:-100], KEY, KM),
        ("MAC flipped + truncated", flip(blob, H0 - 5, 1)[:-100], KEY, AE),
        ("L in bounds + chunk flipped", flip(fields(plaintext_length=L0 + 1), H0 + 5, 0), KEY, AE),
    ]
    t = Tally()
    for label, data, key, want in cases:
        try:
            RF.read(data, key)
            ref = OK
        except tuple(REF_TO_MC) as exc:
            ref = next(mc for cls, mc in REF_TO_MC.items() if isinstance(exc, cls))
        assert ref is want, label
        t.check(label, want, lambda: modelcrypt.decrypt_bytes(data, key, threads=1))
    t.assert_clean()


# =========================================================================== v1: file-based and 2-thread paths

def _sample_offsets():
    """Every header byte, every byte of every tag, chunk starts/ends, and every 53rd payload byte."""
    offs = set(range(H0))
    for i in range(N0):
        start = H0 + i * (CS + 16)
        end = min(start + CS + 16, FILE_LEN)
        offs |= set(range(end - 16, end)) | {start, start + 1, end - 17}
    offs |= set(range(H0, FILE_LEN, 53))
    return sorted(offs)


def test_bit_flips_through_files_and_two_threads(v1, tmp_path):
    """A sample of bit flips (all 8 bits of every header and tag byte, a stride of the payload) through
    load(path) with 1 and 2 threads and decrypt_bytes with 2 threads; the file is patched in place."""
    blob, _ = v1
    p = tmp_path / "f.mcx"
    p.write_bytes(blob)
    t = Tally()
    data = bytearray(blob)
    fd = os.open(p, os.O_RDWR)
    try:
        for off in _sample_offsets():
            for bit in range(8):
                want = expected_bitflip(off, bit)
                data[off] ^= 1 << bit
                os.pwrite(fd, bytes(data[off:off + 1]), off)
                try:
                    t.check(f"load t1 {off}.{bit}", want, lambda: modelcrypt.load(p, KEY, threads=1))
                    t.check(f"load t2 {off}.{bit}", want, lambda: modelcrypt.load(p, KEY, threads=2))
                    t.check(f"bytes t2 {off}.{bit}", want, lambda: modelcrypt.decrypt_bytes(data, KEY, threads=2))
                finally:
                    data[off] ^= 1 << bit
                    os.pwrite(fd, blob[off:off + 1], off)
    finally:
        os.close(fd)
    assert p.read_bytes() == blob
    assert t.checked > 3 * 8 * 400
    t.assert_clean()


def test_truncation_through_files(v1, tmp_path):
    """Every cut in the header and around every chunk boundary, plus a stride of the payload, through
    load (1 and 2 threads), verify and decrypt_file (which must leave no destination behind)."""
    blob, _ = v1
    cuts = set(range(0, H0 + 3))
    for i in range(1, N0 + 1):
        b = H0 + i * (CS + 16)
        cuts |= {b - 17, b - 16, b - 15, b - 1, b, b + 1}
    cuts |= set(range(H0, FILE_LEN, 211))
    cuts = sorted(c for c in cuts if c < FILE_LEN)
    p, dst = tmp_path / "t.mcx", tmp_path / "t.out"
    t = Tally()
    for n in cuts:
        want = FE if n < H0 else AE
        p.write_bytes(blob[:n])
        t.check(f"cut {n} load t1", want, lambda: modelcrypt.load(p, KEY, threads=1))
        t.check(f"cut {n} load t2", want, lambda: modelcrypt.load(p, KEY, threads=2))
        t.check(f"cut {n} verify", want, lambda: modelcrypt.verify(p, KEY, threads=2))
        t.check(f"cut {n} decrypt_file", want, lambda: modelcrypt.decrypt_file(p, dst, KEY, threads=2))
        assert not dst.exists(), n
    t.assert_clean()


def test_decrypt_file_and_verify_reject_flips(v1, tmp_path):
    """verify() and decrypt_file() on every bit of a few bytes per region: exact class, no output."""
    blob, pt = v1
    p, dst = tmp_path / "v.mcx", tmp_path / "v.out"
    offsets = [0, 7, 8, 10, 12, 15, 16, 21, 24, 25, 28, 32, 63, 64, 95, 96, 96 + M0, H0 - 1, H0,
               H0 + CS, H0 + CS + 15, H0 + CS + 16, FILE_LEN - 17, FILE_LEN - 1]
    t = Tally()
    for off in offsets:
        for bit in range(8):
            want = expected_bitflip(off, bit)
            p.write_bytes(flip(blob, off, bit))
            t.check(f"verify {off}.{bit}", want, lambda: modelcrypt.verify(p, KEY, threads=1))
            t.check(f"decrypt_file {off}.{bit}", want, lambda: modelcrypt.decrypt_file(p, dst, KEY, threads=2))
            assert not dst.exists(), (off, bit)
    t.assert_clean()
    p.write_bytes(blob)                      # and the untouched file still works through both
    modelcrypt.verify(p, KEY)
    modelcrypt.decrypt_file(p, dst, KEY)
    assert dst.read_bytes() == pt


# =========================================================================== MindSpore AES-GCM frames

MS_KEY16 = b"0123456789ABCDEF"               # the fixtures' key
MS_KEY32 = bytes(range(0xA0, 0xC0))
MS_DIR = HERE / "interop" / "mindspore"
OTHER_MODE_MAGICS = {LR.MS_MAGIC["AES-CBC"], LR.MS_MAGIC["SM4-CBC"]}


def _ms_files():
    """name -> (blob, key, plaintext). All AES-GCM."""
    out = {}
    for name, plain in (("b_gcm16.ckpt", "a_plain.ckpt"), ("d_gcm16.mindir", "a_plain.mindir")):
        out[name] = ((MS_DIR / name).read_bytes(), MS_KEY16, (MS_DIR / plain).read_bytes())
    pt = bytes((i * 13 + 5) & 0xFF for i in range(1000))
    out["modelcrypt-written"] = (modelcrypt.encrypt_bytes(pt, MS_KEY32, format="mindspore"), MS_KEY32, pt)
    pt3 = b"A" * 100 + b"B" * 100 + b"C" * 37
    out["reference-3-frames"] = (LR.write_mindspore(pt3, MS_KEY32, "AES-GCM", frame_size=100), MS_KEY32, pt3)
    for blob, key, plain in out.values():
        assert LR.read_mindspore(blob, key, "AES-GCM") == plain
    assert len(LR.parse_mindspore(out["reference-3-frames"][0])) == 3
    return out


MS_FILES = _ms_files()


def ms_expected_bitflip(blob: bytes, off: int, bit: int):
    """Expected outcome of flipping one bit of a MindSpore AES-GCM file (OK = loads unchanged).

    From docs/LEGACY.md and tests/interop/README.md: the first frame's magic selects the format, and
    the mode given ("AES-GCM") must agree (ValueError names both) - D8 ^ 01 = D9 is AES-CBC's magic,
    D8 ^ 02 = DA is SM4-CBC's; any other first magic is not a recognised legacy file, so it is read as
    format v1 and fails its magic (FormatError). A later frame's magic differing from the first's,
    block_len != cipher_len + 24, iv_len != 16, a negative or too long cipher_len: FormatError. The tag,
    the nonce iv[0:12] and the ciphertext: AuthenticationError. iv[12:16] is authenticated by nothing
    (README: an inherent limit), so flipping it must load the same plaintext.
    """
    for k, f in enumerate(LR.parse_mindspore(blob)):
        if not f.offset <= off < f.end:
            continue
        for region, (a, b) in f.regions().items():
            if a <= off < b:
                break
        if region == "magic":
            if k > 0:
                return FE
            new = struct.unpack_from("<I", flip(blob, off, bit), f.offset)[0]
            return ValueError if new in OTHER_MODE_MAGICS else FE
        if region in ("block_len", "iv_len", "cipher_len"):
            return FE
        if region == "iv":
            return AE if off - a < 12 else OK
        return AE                           # tag, ciphertext
    raise AssertionError(off)


def test_ms_oracle_regions():
    blob = MS_FILES["b_gcm16.ckpt"][0]
    got = {}
    for off in range(len(blob)):
        for bit in range(8):
            c = ms_expected_bitflip(blob, off, bit)
            got[c] = got.get(c, 0) + 1
    # magic: 2 bits -> another mode's magic, 30 -> unknown; 3 lengths = 96 bits; 4 unused IV bytes
    assert got == {ValueError: 2, FE: 30 + 96, OK: 32, AE: 8 * (16 + 12 + 208)}


@pytest.mark.parametrize("name", list(MS_FILES))
def test_ms_every_bit_flip(name):
    """Every bit of every frame: the oracle's class (exact), unused iv[12:16] loads unchanged; the
    reference reader agrees on every flip that is not a mode disagreement."""
    blob, key, plain = MS_FILES[name]
    t = Tally()
    data = bytearray(blob)
    for off in range(len(blob)):
        for bit in range(8):
            want = ms_expected_bitflip(blob, off, bit)
            data[off] ^= 1 << bit
            try:
                if want is OK:
                    assert LR.read_mindspore(bytes(data), key) == plain
                elif want in (FE, AE) and (off < 48 or off % 97 == 0):
                    with pytest.raises({FE: LR.FormatError, AE: LR.AuthenticationError}[want]):
                        LR.read_mindspore(bytes(data), key, "AES-GCM")
                t.check(f"{name} flip {off}.{bit}", want,
                        lambda: modelcrypt.decrypt_bytes(data, key, "AES-GCM", format="mindspore", threads=1), plain)
            finally:
                data[off] ^= 1 << bit
    t.assert_clean()


@pytest.mark.parametrize("name", list(MS_FILES))
def test_ms_every_truncation(name):
    """Every prefix file[:n], n in 0..len-1: FormatError, except a cut exactly at a frame boundary,
    which LEGACY.md documents as undetectable (dropping whole trailing frames): that loads the
    plaintext of the frames kept."""
    blob, key, plain = MS_FILES[name]
    frames = LR.parse_mindspore(blob)
    boundary_plain = {}
    acc = b""
    for f in frames[:-1]:
        acc += LR.decrypt_mindspore_frame(f, key)
        boundary_plain[f.end] = acc
    t = Tally()
    mv = memoryview(blob)
    for n in range(len(blob)):
        want = OK if n in boundary_plain else FE
        t.check(f"{name} cut {n}", want,
                lambda: modelcrypt.decrypt_bytes(mv[:n], key, "AES-GCM", format="mindspore", threads=1),
                boundary_plain.get(n))
    t.assert_clean()


def test_ms_frame_operations(tmp_path):
    """Frames carry no index and no count (LEGACY.md "Inherent limits"): every reordering, every
    dropping of whole frames and every duplication of a frame yields a well-formed file that loads
    exactly as the frames' plaintexts concatenated in the new order (the reference reader agrees) when
    read with format="mindspore", and is refused (FormatError) by the default format.
    What the format can detect is rejected: a frame under another key (AuthenticationError), a frame
    of another mode (FormatError: magic differs from the first frame's), a partial frame (FormatError)."""
    blob, key, _ = MS_FILES["reference-3-frames"]
    frames = LR.parse_mindspore(blob)
    raw = [blob[f.offset:f.end] for f in frames]
    pts = [LR.decrypt_mindspore_frame(f, key) for f in frames]
    t = Tally()
    p = tmp_path / "ms.ckpt"

    def both(label, data, want, plain=None):
        p.write_bytes(data)
        t.check(label, want, lambda: modelcrypt.decrypt_bytes(data, key, "AES-GCM", format="mindspore", threads=1),
                plain)
        t.check(label + " load", want, lambda: modelcrypt.load(p, key, "AES-GCM", format="mindspore"), plain)
        t.check(label + " verify", want, lambda: modelcrypt.verify(p, key, "AES-GCM", format="mindspore"))
        # without the opt-in no variant loads, not even the undetectable ones: refused (FormatError)
        t.check(label + " default", FE, lambda: modelcrypt.decrypt_bytes(data, key, "AES-GCM", threads=1))
        t.check(label + " default load", FE, lambda: modelcrypt.load(p, key))

    seqs = set()
    for r in range(1, 4):
        seqs |= set(itertools.permutations(range(3), r))          # reorder / drop (any) frames
    seqs |= {(0, 0, 1, 2), (0, 1, 1, 2), (0, 1, 2, 2), (2, 0, 1, 2), (0, 1, 2, 0), (1, 1, 1)}  # duplicate
    for seq in sorted(seqs):
        data = b"".join(raw[i] for i in seq)
        want_plain = b"".join(pts[i] for i in seq)
        assert LR.read_mindspore(data, key) == want_plain
        both(f"frames {seq}", data, OK, want_plain)
    other_key = LR.write_mindspore(b"x" * 50, bytes(32), "AES-GCM")
    cbc = LR.write_mindspore(b"x" * 50, key, "AES-CBC")
    rejects = [
        ("frame under another key spliced in", raw[0] + other_key + raw[2], AE),
        ("frame under another key appended", blob + other_key, AE),
        ("CBC frame appended", blob + cbc, FE),
        ("CBC frame in the middle", raw[0] + cbc + raw[1], FE),
        ("1 byte appended", blob + b"\x00", FE),
        ("16 bytes appended", blob + bytes(16), FE),
        ("magic appended", blob + raw[0][:4], FE),
        ("partial frame appended", blob + raw[1][:60], FE),
        ("whole frame minus its last byte in the middle", raw[0] + raw[1][:-1] + raw[2], FE),
        ("frame swapped with one byte lost", raw[1] + raw[0][:-1], FE),
    ]
    for label, data, want in rejects:
        with pytest.raises({FE: LR.FormatError, AE: LR.AuthenticationError}[want]):
            LR.read_mindspore(data, key, "AES-GCM")
        both(label, data, want)
    t.assert_clean()


def test_ms_frame_appended_same_key_is_undetectable():
    """A whole valid frame under the same key appended to a file: a splice, which the format cannot
    detect (README: "a frame spliced in from another file under the same key ... decrypt")."""
    blob, key, plain = MS_FILES["modelcrypt-written"]
    extra = LR.write_mindspore(b"tail", key, "AES-GCM")
    t = Tally()
    t.check("append frame", OK, lambda: modelcrypt.decrypt_bytes(blob + extra, key, "AES-GCM", format="mindspore"),
            plain + b"tail")
    t.check("append frame, default format", FE, lambda: modelcrypt.decrypt_bytes(blob + extra, key))
    t.assert_clean()


# =========================================================================== PaddleX PADDLE1

PX_DIR = HERE / "interop" / "paddle" / "paddlex"
PX_KEY = bytes(range(1, 33))


def _px_files():
    out = {}
    for name, plain in (("encrypted.pdmodel", PX_DIR / "model.pdmodel"),
                        ("encrypted.pdparams", PX_DIR / "model.pdiparams"),
                        ("encrypted.yml", PX_DIR / "model.yml"),
                        ("plain.bin.encrypted", HERE / "interop" / "paddle" / "cipher" / "plain.bin")):
        out[name] = ((PX_DIR / name).read_bytes(), plain.read_bytes())
        assert LR.read_paddlex(out[name][0], PX_KEY) == out[name][1]
    return out


PX_FILES = _px_files()


def px_expected_bitflip(off: int):
    """LEGACY.md: "PADDLE1" detects the format (a damaged magic is no known legacy file, read as v1:
    FormatError; a damaged version digit: FormatError); the stored SHA-256 hex of the key:
    KeyMismatchError; the 64 filler bytes are authenticated by nothing (README; loads unchanged);
    ciphertext and tag: AuthenticationError."""
    if off < 7:
        return FE
    if off < 71:
        return KM
    if off < 135:
        return OK
    return AE


@pytest.mark.parametrize("name", list(PX_FILES))
def test_px_every_bit_flip(name):
    blob, plain = PX_FILES[name]
    t = Tally()
    data = bytearray(blob)
    for off in range(len(blob)):
        want = px_expected_bitflip(off)
        for bit in range(8):
            data[off] ^= 1 << bit
            try:
                if off < 160:
                    ref_want = {FE: LR.FormatError, KM: LR.KeyMismatchError, AE: LR.AuthenticationError}.get(want)
                    if ref_want is None:
                        assert LR.read_paddlex(bytes(data), PX_KEY) == plain
                    else:
                        with pytest.raises(ref_want):
                            LR.read_paddlex(bytes(data), PX_KEY)
                t.check(f"{name} flip {off}.{bit}", want,
                        lambda: modelcrypt.decrypt_bytes(data, PX_KEY, "AES-GCM", format="paddlex", threads=1), plain)
            finally:
                data[off] ^= 1 << bit
    t.assert_clean()


@pytest.mark.parametrize("name", list(PX_FILES))
def test_px_every_truncation_and_append(name, tmp_path):
    """file[:n] for every n: shorter than header + tag (151 bytes) is a FormatError (LEGACY.md), from
    there on the tag no longer matches: AuthenticationError. Appended bytes: AuthenticationError."""
    blob, _ = PX_FILES[name]
    t = Tally()
    mv = memoryview(blob)
    for n in range(len(blob)):
        want = FE if n < 135 + 16 else AE
        t.check(f"{name} cut {n}", want,
                lambda: modelcrypt.decrypt_bytes(mv[:n], PX_KEY, "AES-GCM", format="paddlex", threads=1))
    p = tmp_path / "px.enc"
    for tail in (b"\x00", bytes(16), blob[135:]):
        data = blob + tail
        p.write_bytes(data)
        t.check(f"{name} append {len(tail)}", AE,
                lambda: modelcrypt.decrypt_bytes(data, PX_KEY, "AES-GCM", format="paddlex"))
        t.check(f"{name} append {len(tail)} load", AE, lambda: modelcrypt.load(p, PX_KEY, "AES-GCM", format="paddlex"))
    for n in (0, 6, 7, 70, 71, 134, 135, 150, 151, len(blob) - 1):   # the file-based path too
        p.write_bytes(blob[:n])
        want = FE if n < 151 else AE
        t.check(f"{name} cut {n} load", want, lambda: modelcrypt.load(p, PX_KEY, "AES-GCM", format="paddlex"))
        t.check(f"{name} cut {n} verify", want, lambda: modelcrypt.verify(p, PX_KEY, "AES-GCM", format="paddlex"))
    t.assert_clean()
