#!/usr/bin/env python3
"""Generate the modelcrypt format v1 golden files (tests/vectors/*.mcx + manifest.json).

Everything is deterministic: fixed keys, fixed salts, plaintexts drawn from SHAKE-256
of a label.  Valid files come from tests/reference_format.write(); reject cases are
built from them by byte surgery (or, for the chunk-flag cases, by re-encrypting one
chunk with the reference primitives).  The script checks every vector against the
reference reader before writing anything, and rewrites the folder from scratch.

    python3 tests/vectors/generate.py          # regenerate in place
    python3 tests/vectors/generate.py --check  # verify the checked-in files are current

Manifest entries:
    file              name of the .mcx file in this folder
    description       what the file holds and what a reader must do
    key               hex of the master key to open it with
    expect            "ok" or the exact exception class name
    step              reader step (docs/FORMAT.md, "Reader algorithm") that rejects it; null if ok
    plaintext_length, plaintext_sha256,
    metadata (hex of raw metadata bytes; null when longer than 1024 bytes),
    metadata_length, metadata_sha256                                          -- ok cases only
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/

import reference_format as rf  # noqa: E402

CS = 4096
METADATA_HEX_LIMIT = 1024
TAG = rf.TAG_LEN

# --------------------------------------------------------------------------- fixed inputs


def _det(label: str, n: int) -> bytes:
    return hashlib.shake_256(b"modelcrypt test vector " + label.encode()).digest(n) if n else b""


KEY32 = bytes(range(0x00, 0x20))                  # 000102...1f
KEY24 = bytes(range(0x40, 0x58))                  # 404142...57
KEY16 = bytes(range(0x80, 0x90))                  # 808182...8f
WRONG_KEY32 = bytes(range(0x01, 0x21))            # 0102...20
KEY32_EXTENDING_KEY16 = KEY16 + bytes(16)          # first 16 bytes equal KEY16


def SALT(label: str) -> bytes:
    return hashlib.sha256(b"modelcrypt test salt " + label.encode()).digest()


def canon_meta(d: dict) -> bytes:
    return json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# --------------------------------------------------------------------------- byte surgery

# offsets in the fixed header
OFF_VERSION, OFF_ALG, OFF_CS, OFF_L, OFF_M, OFF_RES, OFF_SALT, OFF_COMMIT = 8, 10, 12, 16, 24, 28, 32, 64


def put(data: bytes, off: int, fmt: str, value: int) -> bytes:
    b = bytearray(data)
    struct.pack_into(fmt, b, off, value)
    return bytes(b)


def flip(data: bytes, off: int, mask: int = 0x01) -> bytes:
    b = bytearray(data)
    b[off] ^= mask
    return bytes(b)


def layout(data: bytes) -> dict:
    h = rf.parse_header(data)
    H, cs, L, n = h["header_length"], h["chunk_size"], h["plaintext_length"], h["chunk_count"]
    chunks = []
    for i in range(n):
        off = rf.chunk_offset(i, H, cs)
        chunks.append((off, rf.chunk_plain_length(i, L, cs) + TAG))
    return {"H": H, "M": h["metadata_length"], "n": n, "chunks": chunks, "hdr": h}


def chunk_bytes(data: bytes, i: int) -> bytes:
    off, ln = layout(data)["chunks"][i]
    return data[off:off + ln]


def forge_header(key: bytes, salt: bytes, **fields) -> bytes:
    """A header with a *valid* commitment and MAC for arbitrary (possibly huge) fields."""
    keys = rf.derive_keys(key, salt)
    head = rf.build_header(salt=salt, key_commitment=keys["key_commitment"], **fields)
    return head + rf.header_mac(keys["mac_key"], head)


def rebuild(key: bytes, salt: bytes, plaintext: bytes, cs: int, metadata_raw: bytes = b"",
            last_flags=None, declared_length=None, extra_empty_chunk=False) -> bytes:
    """Re-encrypt with the reference primitives but chosen per-chunk last flags."""
    keys = rf.derive_keys(key, salt)
    L = len(plaintext) if declared_length is None else declared_length
    head = rf.build_header(chunk_size=cs, plaintext_length=L, metadata_raw=metadata_raw,
                           salt=salt, key_commitment=keys["key_commitment"])
    mac = rf.header_mac(keys["mac_key"], head)
    n = rf.chunk_count(len(plaintext), cs)
    flags = last_flags if last_flags is not None else [i == n - 1 for i in range(n)]
    out = [head, mac]
    for i in range(n):
        out.append(rf.encrypt_chunk(keys["payload_key"], i, flags[i], mac,
                                    plaintext[i * cs:(i + 1) * cs]))
    if extra_empty_chunk:
        out.append(rf.encrypt_chunk(keys["payload_key"], n, True, mac, b""))
    return b"".join(out)


# --------------------------------------------------------------------------- the vectors

def build_cases():
    cases = []  # (file, description, key, expect, step, data, plaintext_or_None, metadata_raw)

    def ok(name, desc, key, data, pt, meta=b""):
        cases.append((name, desc, key, "ok", None, data, pt, meta))

    def bad(name, desc, key, expect, step, data):
        cases.append((name, desc, key, expect, step, data, None, None))

    # ----------------------------------------------------------------- valid files
    def valid(name, desc, L, *, key=KEY32, cs=CS, meta=b""):
        pt = _det(name, L)
        data = rf.write(pt, key, salt=SALT(name), chunk_size=cs, metadata_raw=meta)
        ok(name, desc, key, data, pt, meta)
        return pt, data

    valid("valid_empty", "L=0, chunk_size 4096: one empty last chunk (16-byte tag only); "
          "file length H+16. MUST decrypt to empty plaintext.", 0)
    valid("valid_1byte", "L=1, chunk_size 4096, single chunk. MUST decrypt.", 1)
    valid("valid_cs_minus_1", "L=4095 = chunk_size-1, single partial chunk. MUST decrypt.", CS - 1)
    valid("valid_cs_exact", "L=4096 = chunk_size: exactly one full chunk (n=1, no empty "
          "trailing chunk). MUST decrypt.", CS)
    valid("valid_cs_plus_1", "L=4097 = chunk_size+1: full chunk 0 + 1-byte last chunk 1. "
          "MUST decrypt.", CS + 1)
    valid("valid_two_full_chunks", "L=8192 = 2*chunk_size: two full chunks, chunk 1 carries the "
          "last flag. MUST decrypt.", 2 * CS)
    valid("valid_multichunk", "L=5*4096+1234: five full chunks + 1234-byte last chunk (n=6). "
          "MUST decrypt.", 5 * CS + 1234)
    valid("valid_chunk_8192", "chunk_size 8192, L=8192+5 (n=2). MUST decrypt.", 8192 + 5, cs=8192)
    valid("valid_key16", "16-byte master key (HKDF IKM is 16 bytes; payload is still "
          "AES-256-GCM), L=1000. MUST decrypt.", 1000, key=KEY16)
    valid("valid_key24", "24-byte master key, L=1000. MUST decrypt.", 1000, key=KEY24)
    valid("valid_key32", "32-byte master key, L=1000. MUST decrypt.", 1000, key=KEY32)
    meta = canon_meta({"framework": "onnx", "name": "résnet-50", "sha": "abc123"})
    valid("valid_metadata", "metadata = compact sorted UTF-8 JSON object with a non-ASCII "
          f"character (M={len(meta)}), L=5000 (n=2). MUST decrypt; metadata is returned "
          "byte-exact.", 5000, meta=meta)
    base = canon_meta({"pad": ""})
    meta_max = canon_meta({"pad": "x" * (rf.MAX_METADATA_LENGTH - len(base))})
    assert len(meta_max) == rf.MAX_METADATA_LENGTH
    valid("valid_metadata_max", "metadata_length M=65536, the maximum (a JSON object "
          "{\"pad\":\"xxx...\"}), L=10. MUST decrypt.", 10, meta=meta_max)
    valid("valid_chunk_size_max", "chunk_size 67108864 (64 MiB, the maximum), L=100, so n=1 "
          "and the file is small. MUST decrypt (a reader must not allocate chunk_size up front "
          "beyond what the file holds).", 100, cs=rf.MAX_CHUNK_SIZE)
    valid("valid_chunk_size_default", "chunk_size 1048576 (the default written), L=300. "
          "MUST decrypt.", 300, cs=rf.DEFAULT_CHUNK_SIZE)

    # ----------------------------------------------------------------- header-level rejects
    small_pt = _det("small", 64)
    small = rf.write(small_pt, KEY32, salt=SALT("small"), chunk_size=CS)
    small_meta_raw = canon_meta({"framework": "torch", "note": "metadata is public"})
    small_meta = rf.write(small_pt, KEY32, salt=SALT("small_meta"), chunk_size=CS,
                          metadata_raw=small_meta_raw)
    K = KEY32

    # step 1
    bad("bad_magic", "first magic byte 0x89 changed to 0x88; otherwise a valid file. "
        "MUST reject: not a modelcrypt file.", K, "FormatError", 1, flip(small, 0))
    bad("bad_magic_last_byte", "magic ends in 0x0D instead of 0x0A. MUST reject: not a "
        "modelcrypt file.", K, "FormatError", 1, put(small, 7, "<B", 0x0D))
    bad("bad_magic_png", "a PNG signature followed by 120 zero bytes. MUST reject: not a "
        "modelcrypt file.", K, "FormatError", 1, b"\x89PNG\r\n\x1a\n" + bytes(120))
    bad("short_empty", "empty file (0 bytes). MUST reject: not a modelcrypt file.",
        K, "FormatError", 1, b"")
    bad("short_5", "first 5 bytes of the magic only (< 8 bytes). MUST reject.",
        K, "FormatError", 1, small[:5])
    # step 2
    bad("short_8", "exactly the 8 magic bytes, nothing else. MUST reject: truncated header.",
        K, "FormatError", 2, small[:8])
    bad("short_50", "first 50 bytes of a valid file (8 <= size < 96). MUST reject: "
        "truncated header.", K, "FormatError", 2, small[:50])
    bad("short_95", "first 95 bytes of a valid file (one short of the fixed header). "
        "MUST reject: truncated header.", K, "FormatError", 2, small[:95])
    bad("short_50_version4", "first 50 bytes of a file whose version is 4: the size check "
        "(step 2) comes before the version check (step 3), so MUST reject with plain "
        "FormatError, not UnsupportedVersionError.", K, "FormatError", 2,
        put(small, OFF_VERSION, "<H", 4)[:50])
    # step 3
    bad("version_4", "version field = 4 (unassigned; versions 2 and 3 are the recipients and signed "
        "formats, tests/vectors/v2 and v3). MUST reject: UnsupportedVersionError.", K,
        "UnsupportedVersionError", 3, put(small, OFF_VERSION, "<H", 4))
    bad("version_0", "version field = 0. MUST reject: UnsupportedVersionError.",
        K, "UnsupportedVersionError", 3, put(small, OFF_VERSION, "<H", 0))
    bad("version_256", "version field = 0x0100 (a big-endian 1). MUST reject: "
        "UnsupportedVersionError.", K, "UnsupportedVersionError", 3,
        put(small, OFF_VERSION, "<H", 0x0100))
    bad("algorithm_2", "algorithm field = 2. MUST reject: UnsupportedVersionError.",
        K, "UnsupportedVersionError", 3, put(small, OFF_ALG, "<H", 2))
    bad("algorithm_0", "algorithm field = 0. MUST reject: UnsupportedVersionError.",
        K, "UnsupportedVersionError", 3, put(small, OFF_ALG, "<H", 0))
    bad("version_4_reserved_nonzero", "version 4 AND reserved = 1: the version check "
        "(step 3) comes before field bounds (step 4). MUST reject: UnsupportedVersionError.",
        K, "UnsupportedVersionError", 3,
        put(put(small, OFF_VERSION, "<H", 4), OFF_RES, "<I", 1))
    # step 4
    bad("reserved_1", "reserved field = 1. MUST reject: FormatError.",
        K, "FormatError", 4, put(small, OFF_RES, "<I", 1))
    bad("reserved_high_bit", "reserved field = 0x80000000. MUST reject: FormatError.",
        K, "FormatError", 4, put(small, OFF_RES, "<I", 0x80000000))
    for cs_bad, nm in [(0, "0"), (4095, "4095"), (4097, "4097"), (2048, "2048"),
                       (rf.MAX_CHUNK_SIZE + 4096, "64MiB_plus_4096"),
                       (0xFFFFF000, "0xFFFFF000")]:
        bad(f"chunk_size_{nm}", f"chunk_size = {cs_bad} (must be 4096..67108864 and a "
            "multiple of 4096). MUST reject: FormatError.", K, "FormatError", 4,
            put(small, OFF_CS, "<I", cs_bad))
    bad("metadata_length_65537", "metadata_length = 65537 (> 65536) in an otherwise small "
        "file. MUST reject at the bounds check: FormatError.", K, "FormatError", 4,
        put(small, OFF_M, "<I", 65537))
    bad("metadata_length_max_u32", "metadata_length = 0xFFFFFFFF. MUST reject: FormatError "
        "(and must not try to allocate it).", K, "FormatError", 4,
        put(small, OFF_M, "<I", 0xFFFFFFFF))
    bad("plaintext_length_2p48_plus_1", "plaintext_length = 2^48+1 (> 2^48). MUST reject: "
        "FormatError.", K, "FormatError", 4, put(small, OFF_L, "<Q", 2**48 + 1))
    bad("plaintext_length_max_u64", "plaintext_length = 2^64-1. MUST reject: FormatError "
        "(no overflow in n or in H+L+16n).", K, "FormatError", 4,
        put(small, OFF_L, "<Q", 2**64 - 1))
    bad("chunk_count_2p36", "plaintext_length = 2^48 (allowed) with chunk_size 4096, so "
        "n = 2^36 > 2^32. Header commitment and MAC are valid. MUST reject at the bounds "
        "check: FormatError.", K, "FormatError", 4,
        forge_header(K, SALT("n2p36"), chunk_size=4096, plaintext_length=2**48,
                     metadata_raw=b""))
    bad("chunk_count_2p32_plus_1", "plaintext_length = 2^44+1 with chunk_size 4096, so "
        "n = 2^32+1. Valid commitment and MAC, no payload. MUST reject: FormatError.",
        K, "FormatError", 4,
        forge_header(K, SALT("n2p32p1"), chunk_size=4096, plaintext_length=2**44 + 1,
                     metadata_raw=b""))
    # bounds that are accepted: step 8 catches the missing payload
    bad("chunk_count_2p32_header_only", "plaintext_length = 2^44 with chunk_size 4096, so "
        "n = 2^32 exactly (allowed). Valid commitment and MAC, but no payload. Passes steps "
        "1-7; MUST reject at the file-length check: AuthenticationError (and must not "
        "allocate L bytes first).", K, "AuthenticationError", 8,
        forge_header(K, SALT("n2p32"), chunk_size=4096, plaintext_length=2**44,
                     metadata_raw=b""))
    bad("plaintext_length_2p48_header_only", "plaintext_length = 2^48 exactly (allowed) with "
        "chunk_size 64 MiB (n = 2^22). Valid commitment and MAC, no payload. MUST reject at "
        "the file-length check: AuthenticationError (and must not allocate L bytes first).",
        K, "AuthenticationError", 8,
        forge_header(K, SALT("l2p48"), chunk_size=rf.MAX_CHUNK_SIZE, plaintext_length=2**48,
                     metadata_raw=b""))
    # step 5
    lm = layout(small_meta)
    Hm = lm["H"]
    bad("header_truncated_in_mac", f"file with metadata (H={Hm}) cut to H-1 bytes (inside "
        "header_mac). MUST reject: FormatError (truncated header).", K, "FormatError", 5,
        small_meta[:Hm - 1])
    bad("header_truncated_in_metadata", "file with metadata cut to 100 bytes (inside the "
        "metadata). MUST reject: FormatError (truncated header).", K, "FormatError", 5,
        small_meta[:100])
    bad("header_truncated_fixed_only", "file with metadata cut to exactly the 96-byte fixed "
        "header. MUST reject: FormatError (truncated header).", K, "FormatError", 5,
        small_meta[:96])
    bad("header_truncated_no_metadata", "file without metadata (H=128) cut to 127 bytes. "
        "MUST reject: FormatError (truncated header).", K, "FormatError", 5, small[:127])
    bad("header_truncated_wrong_key", "header cut to H-1 AND opened with the wrong key: the "
        "length check (step 5) comes before the key check (step 6). MUST reject: "
        "FormatError.", WRONG_KEY32, "FormatError", 5, small_meta[:Hm - 1])
    bad("metadata_length_65536_truncated", "metadata_length = 65536 (allowed) in a small file "
        "that cannot hold it. MUST reject at step 5: FormatError (truncated header).",
        K, "FormatError", 5, put(small, OFF_M, "<I", 65536))
    # step 6
    bad("wrong_key", "valid file opened with a different 32-byte key. MUST reject: "
        "KeyMismatchError.", WRONG_KEY32, "KeyMismatchError", 6, small)
    bad("wrong_key_length", "file written with the 16-byte key 808182..8f, opened with the "
        "32-byte key 808182..8f||00*16 (same prefix). MUST reject: KeyMismatchError.",
        KEY32_EXTENDING_KEY16, "KeyMismatchError", 6,
        rf.write(small_pt, KEY16, salt=SALT("k16"), chunk_size=CS))
    bad("flipped_salt", "one salt byte (offset 40) flipped: the derived commitment changes, "
        "indistinguishable from a wrong key. MUST reject: KeyMismatchError.",
        K, "KeyMismatchError", 6, flip(small, OFF_SALT + 8))
    bad("flipped_commitment", "one key_commitment byte (offset 95) flipped. MUST reject: "
        "KeyMismatchError.", K, "KeyMismatchError", 6, flip(small, OFF_COMMIT + 31))
    bad("wrong_key_truncated_payload", "wrong key AND the payload truncated: the key check "
        "(step 6) comes before the file-length check (step 8). MUST reject: "
        "KeyMismatchError.", WRONG_KEY32, "KeyMismatchError", 6, small[:-5])
    # step 7
    bad("flipped_metadata", "one metadata byte flipped (still valid-length, now different "
        "JSON text). MUST reject: AuthenticationError (header MAC).",
        K, "AuthenticationError", 7, flip(small_meta, 96 + 5))
    bad("plaintext_length_changed", "plaintext_length 64 -> 63 (in bounds; would also break "
        "the length rule, but the header MAC, step 7, fails first). MUST reject: "
        "AuthenticationError.", K, "AuthenticationError", 7, put(small, OFF_L, "<Q", 63))
    bad("chunk_size_changed", "chunk_size 4096 -> 8192 (in bounds, same chunk count). MUST "
        "reject: AuthenticationError (header MAC).", K, "AuthenticationError", 7,
        put(small, OFF_CS, "<I", 8192))
    bad("metadata_length_changed", "metadata_length decreased by 1 (in bounds; H moves by one "
        "byte so the stored MAC is read from the wrong place). MUST reject: "
        "AuthenticationError.", K, "AuthenticationError", 7,
        put(small_meta, OFF_M, "<I", lm["M"] - 1))
    bad("flipped_header_mac", "one header_mac byte flipped. MUST reject: AuthenticationError.",
        K, "AuthenticationError", 7, flip(small, 96 + 7))
    bad("flipped_header_mac_last_byte", "the last header_mac byte flipped. MUST reject: "
        "AuthenticationError.", K, "AuthenticationError", 7, flip(small, 127, 0x80))

    # ----------------------------------------------------------------- payload rejects
    # three chunks: 4096 + 4096 + 100
    ch_pt = _det("chunked", 2 * CS + 100)
    ch = rf.write(ch_pt, KEY32, salt=SALT("chunked"), chunk_size=CS)
    lc = layout(ch)
    H, chunks = lc["H"], lc["chunks"]
    assert lc["n"] == 3
    c0, c1, c2 = (chunk_bytes(ch, i) for i in range(3))
    ok("chunked_base", "the base file of the payload-reject cases: chunk_size 4096, "
       "L=8292 (chunks of 4096, 4096, 100). MUST decrypt.", K, ch, ch_pt)

    bad("flipped_ct_chunk0", "one ciphertext byte of chunk 0 flipped. MUST reject: "
        "AuthenticationError (chunk 0); no plaintext released.", K, "AuthenticationError",
        9, flip(ch, chunks[0][0] + 10))
    bad("flipped_ct_chunk1_middle", "one ciphertext byte of the middle chunk 1 flipped. "
        "MUST reject: AuthenticationError (chunk 1); no plaintext released (chunk 0 was "
        "fine).", K, "AuthenticationError", 9, flip(ch, chunks[1][0] + 2000))
    bad("flipped_ct_last_chunk", "one ciphertext byte of the last chunk 2 flipped. MUST "
        "reject: AuthenticationError (chunk 2); no plaintext released.", K,
        "AuthenticationError", 9, flip(ch, chunks[2][0]))
    # two chunks: 4096 + 50 (for cases that do not need a middle chunk)
    tw_pt = _det("two", CS + 50)
    tw = rf.write(tw_pt, KEY32, salt=SALT("two"), chunk_size=CS)
    ltw = layout(tw)
    t0, t1 = chunk_bytes(tw, 0), chunk_bytes(tw, 1)
    ok("two_chunk_base", "base file of some payload-reject cases: chunk_size 4096, L=4146 "
       "(chunks of 4096 and 50). MUST decrypt.", K, tw, tw_pt)
    bad("flipped_tag_chunk0", "two_chunk_base with one byte of chunk 0's GCM tag flipped. "
        "MUST reject: AuthenticationError (chunk 0).", K, "AuthenticationError", 9,
        flip(tw, ltw["chunks"][0][0] + ltw["chunks"][0][1] - 1))
    bad("flipped_tag_last_chunk", "two_chunk_base with the first byte of the last chunk's "
        "GCM tag flipped. MUST reject: AuthenticationError (chunk 1).", K,
        "AuthenticationError", 9, flip(tw, len(tw) - 16))
    tw_other = rf.write(tw_pt, KEY32, salt=SALT("two-other"), chunk_size=CS)
    bad("chunk_from_other_file", "two_chunk_base with chunk 0 replaced by chunk 0 of another "
        "file with the same key, same plaintext and same chunk size but a different salt (so "
        "a different payload key and header MAC). MUST reject: AuthenticationError (chunk 0).",
        K, "AuthenticationError", 9, tw[:ltw["H"]] + chunk_bytes(tw_other, 0) + t1)
    bad("last_chunk_without_last_flag", "same plaintext as two_chunk_base, well-formed "
        "header; chunk 0 sealed correctly but the last chunk (1) sealed with last_i = 0x00. "
        "MUST reject: AuthenticationError (chunk 1).", K, "AuthenticationError", 9,
        rebuild(K, SALT("noflag"), tw_pt, CS, last_flags=[False, False]))
    bad("empty_plaintext_flipped_tag", "L=0 file whose single (empty) chunk tag has a flipped "
        "byte. MUST reject: AuthenticationError.", K, "AuthenticationError", 9,
        flip(rf.write(b"", K, salt=SALT("empty_tag"), chunk_size=CS), 128 + 3))
    # step 8: length
    bad("truncated_at_boundary_0", "cut right after the header (offset H, all chunks "
        "missing). MUST reject: AuthenticationError (file length).", K,
        "AuthenticationError", 8, ch[:H])
    bad("truncated_at_boundary_1", "cut after chunk 0 (chunks 1 and 2 missing). MUST reject: "
        "AuthenticationError (file length).", K, "AuthenticationError", 8, ch[:chunks[1][0]])
    bad("truncated_at_boundary_2", "cut after chunk 1, i.e. the last chunk dropped. MUST "
        "reject: AuthenticationError (file length).", K, "AuthenticationError", 8,
        ch[:chunks[2][0]])
    bad("truncated_mid_chunk", "cut in the middle of chunk 1. MUST reject: "
        "AuthenticationError (file length).", K, "AuthenticationError", 8,
        ch[:chunks[1][0] + 1000])
    bad("truncated_last_byte", "single-chunk file (L=64) with its last byte removed. MUST "
        "reject: AuthenticationError (file length).", K, "AuthenticationError", 8, small[:-1])
    bad("empty_plaintext_no_chunk", "L=0 file with its mandatory empty last chunk removed "
        "(file length H; n is 1, not 0). MUST reject: AuthenticationError (file length).",
        K, "AuthenticationError", 8,
        rf.write(b"", K, salt=SALT("empty_nochunk"), chunk_size=CS)[:128])
    bad("appended_1_byte", "single-chunk file (L=64) with one 0x00 byte appended. MUST "
        "reject: AuthenticationError (trailing data).", K, "AuthenticationError", 8,
        small + b"\x00")
    bad("appended_full_chunk", "two_chunk_base with a copy of its full chunk 0 (4112 bytes) "
        "appended after the last chunk. MUST reject: AuthenticationError (trailing data).",
        K, "AuthenticationError", 8, tw + t0)
    bad("chunk_duplicated_inserted", "two_chunk_base with chunk 0 inserted again after "
        "itself (chunks 0,0,1). MUST reject: AuthenticationError (file length).", K,
        "AuthenticationError", 8, tw[:ltw["H"]] + t0 + t0 + t1)
    bad("extra_empty_last_chunk", "L=4096 (one full chunk, n=1) but the writer emitted chunk "
        "0 unflagged plus a second, empty chunk with the last flag; header is correct. MUST "
        "reject: AuthenticationError (file length).", K, "AuthenticationError", 8,
        rebuild(K, SALT("extra_empty"), _det("extra_empty", CS), CS,
                last_flags=[False], extra_empty_chunk=True))
    # step 9: same length, wrong content/order
    bad("chunks_0_1_swapped", "chunks 0 and 1 (both full) swapped. MUST reject: "
        "AuthenticationError (chunk 0).", K, "AuthenticationError", 9,
        ch[:H] + c1 + c0 + c2)
    bad("chunk_duplicated_in_place", "chunk 0 copied over chunk 1 (chunks 0,0,2; length "
        "unchanged). MUST reject: AuthenticationError (chunk 1).", K,
        "AuthenticationError", 9, ch[:H] + c0 + c0 + c2)
    # last-flag cases, built with the reference primitives
    bad("middle_chunk_with_last_flag", "well-formed header; the middle chunk 1 was sealed "
        "with last_i = 0x01 (as a truncating writer would). MUST reject: "
        "AuthenticationError (chunk 1).", K, "AuthenticationError", 9,
        rebuild(K, SALT("midflag"), ch_pt, CS, last_flags=[False, True, True]))
    bad("empty_plaintext_without_last_flag", "L=0; the single empty chunk was sealed with "
        "last_i = 0x00. MUST reject: AuthenticationError (chunk 0).", K,
        "AuthenticationError", 9, rebuild(K, SALT("empty_noflag"), b"", CS, last_flags=[False]))
    bad("truncated_then_length_fixed", "truncation with a re-authenticated header: a valid "
        "header for L=4096 (n=1) under the same key AND the same salt as chunked_base (so the "
        "same payload key), followed by chunk 0 of chunked_base, which was sealed with "
        "last_i = 0x00 and the other header MAC as AAD. MUST reject: AuthenticationError "
        "(chunk 0).",
        K, "AuthenticationError", 9,
        rf.write(ch_pt[:CS], K, salt=SALT("chunked"), chunk_size=CS)[:H] + c0)
    return cases


def generate() -> dict:
    """Return {filename: bytes} including manifest.json; asserts every expectation."""
    files = {}
    manifest = []
    seen = set()
    for name, desc, key, expect, step, data, pt, meta in build_cases():
        assert name not in seen, name
        seen.add(name)
        fname = name + ".mcx"
        # self-check against the reference reader
        try:
            got_pt, got_meta = rf.read(data, key)
            outcome = "ok"
        except (rf.FormatError, rf.KeyMismatchError, rf.AuthenticationError) as e:
            outcome = type(e).__name__
        assert outcome == expect, (name, outcome, expect)
        entry = {"file": fname, "description": desc, "key": key.hex(), "expect": expect,
                 "step": step}
        if expect == "ok":
            assert got_pt == pt and got_meta == meta, name
            entry["plaintext_length"] = len(pt)
            entry["plaintext_sha256"] = hashlib.sha256(pt).hexdigest()
            entry["metadata_length"] = len(meta)
            entry["metadata_sha256"] = hashlib.sha256(meta).hexdigest()
            # the hex is left out (null) only for huge metadata, to keep the manifest small
            entry["metadata"] = meta.hex() if len(meta) <= METADATA_HEX_LIMIT else None
        files[fname] = data
        manifest.append(entry)
    files["manifest.json"] = (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode()
    return files


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="verify instead of writing")
    args = ap.parse_args()
    files = generate()
    if args.check:
        present = {f for f in os.listdir(HERE) if f.endswith(".mcx") or f == "manifest.json"}
        bad = sorted(present ^ set(files))
        for f, b in files.items():
            p = os.path.join(HERE, f)
            if os.path.exists(p) and open(p, "rb").read() != b:
                bad.append(f)
        if bad:
            print("out of date:", ", ".join(bad))
            return 1
        print(f"{len(files)} files up to date")
        return 0
    for f in os.listdir(HERE):
        if f.endswith(".mcx"):
            os.remove(os.path.join(HERE, f))
    total = 0
    for f, b in files.items():
        with open(os.path.join(HERE, f), "wb") as fh:
            fh.write(b)
        total += len(b)
    print(f"wrote {len(files)} files, {total} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
