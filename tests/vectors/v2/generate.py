#!/usr/bin/env python3
"""Generate the modelcrypt format version 2 golden files (tests/vectors/v2/*.mcx + manifest.json).

Deterministic: fixed X25519 identities, file keys FK, salts, ephemeral private keys and stanza
salts, all drawn from SHAKE-256 / SHA-256 of labels as in tests/vectors/generate.py.  Valid files
come from tests/reference_format_v2.write_v2() / rewrite_recipients(); reject cases are built from
them by byte surgery.  Every expectation is checked against the reference reader first.

    python3 tests/vectors/v2/generate.py          # regenerate in place
    python3 tests/vectors/v2/generate.py --check  # verify the checked-in files are current

Manifest: a JSON list, one entry per (file, credential); a file may have several entries (one per
recipient that opens it).  Same fields as tests/vectors/manifest.json, except the credential is
either
    key        hex symmetric master key, or
    identity   the MODELCRYPT-SECRET-KEY-1... text of an X25519 identity
and "ok" entries also carry
    recipients          [{"type": "x25519"|"symmetric"|"unknown", "fingerprint": hex|null}]
    recipients_length   R
"step" is the step of "Reader algorithm (version 2)" in docs/FORMAT.md.

Readers that only know version 1 must reject EVERY file here whose core header says version 2
with UnsupportedVersionError (v1 step 3); tests/test_vectors_v2.py checks this with the v1
reference reader.  (v1_file_with_identity.mcx is a version 1 file.)

Readings of FORMAT.md chosen where it leaves room (see the cases named here):
  * type byte 0 is "another value", so an unknown stanza: a stanza_count that overstates the
    stanzas makes the zero padding parse as 4-byte unknown stanzas (N_2_but_1: step 10, not 6);
  * a corrupted symmetric stanza opened with its own key is a KeyMismatchError (step 7 has no
    fingerprint for symmetric keys, so "none unwraps" is the only outcome);
  * a stanza copied from another file fails in step 7 (AAD = this file's salt), while a stanza
    wrapping another file's FK under this salt fails in step 8 (key commitment);
  * a version 1 file opened with an identity is a KeyMismatchError, reported as step 7.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))  # tests/

import reference_format as rf  # noqa: E402
import reference_format_v2 as r2  # noqa: E402

CS = 4096


def _det(label: str, n: int) -> bytes:
    return hashlib.shake_256(b"modelcrypt test vector " + label.encode()).digest(n) if n else b""


def SALT(label: str) -> bytes:
    return hashlib.sha256(b"modelcrypt test salt " + label.encode()).digest()


def ident(name: str) -> bytes:
    return _det("v2 identity " + name, 32)


def pub(name: str) -> bytes:
    return r2.public_from_private(ident(name))


def FK(label: str) -> bytes:
    return _det("v2 file key " + label, 32)


def EPH(label: str, i: int = 0) -> bytes:
    return _det(f"v2 ephemeral {label} {i}", 32)


def SSALT(label: str, i: int = 0) -> bytes:
    return _det(f"v2 stanza salt {label} {i}", 32)


TEAM_KEY = bytes(range(0x00, 0x20))        # same as v1 KEY32
TEAM_KEY16 = bytes(range(0x80, 0x90))
WRONG_KEY = bytes(range(0x01, 0x21))


def put(data: bytes, off: int, fmt: str, value: int) -> bytes:
    b = bytearray(data)
    struct.pack_into(fmt, b, off, value)
    return bytes(b)


def flip(data: bytes, off: int, mask: int = 0x01) -> bytes:
    b = bytearray(data)
    b[off] ^= mask
    return bytes(b)


def block_off(data: bytes) -> int:
    """Offset of the recipients block (132 + M)."""
    return 132 + struct.unpack_from("<I", data, 24)[0]


def write(label, pt, *, x=(), sym=(), meta=b"", room=None, extra=(), salt=None, fk=None):
    return r2.write_v2(pt, x25519_recipients=[pub(n) for n in x], symmetric_keys=list(sym),
                       salt=salt or SALT("v2 " + label), file_key=fk or FK(label),
                       ephemeral_privates=[EPH(label, i) for i in range(len(x))],
                       stanza_salts=[SSALT(label, i) for i in range(len(sym))],
                       chunk_size=CS, metadata_raw=meta, room=room, extra_stanzas=extra)


def replace_block(data: bytes, stanzas: list[bytes]) -> bytes:
    """New stanzas in the same R, old recipients_mac kept (so step 10 fails)."""
    hdr = r2.parse_header(data)
    R, bo = hdr["recipients_length"], block_off(data)
    block = r2.build_block(stanzas, R)
    return data[:bo] + block + data[bo + R:]


def build_cases():
    cases = []  # (file, desc, cred, expect, step, data, pt, meta)

    def add(name, desc, cred, expect, step, data, pt=b"", meta=b""):
        cases.append((name + ".mcx", desc, cred, expect, step, data, pt, meta))

    A, B, C = ("id", "alice"), ("id", "bob"), ("id", "carol")
    T = ("key", TEAM_KEY)

    pt = _det("v2 one", 100)
    one = write("one", pt, x=["alice"])
    add("valid_one_x25519", "one X25519 recipient (alice), 100 bytes", A, "ok", None, one, pt)

    pt2 = _det("v2 two", 300)
    two = write("two", pt2, x=["alice", "bob"])
    add("valid_two_x25519", "two X25519 recipients; opened by alice", A, "ok", None, two, pt2)
    add("valid_two_x25519", "two X25519 recipients; opened by bob", B, "ok", None, two, pt2)

    pt50 = _det("v2 fifty", 777)
    names50 = [f"r{i:02d}" for i in range(50)]
    fifty = write("fifty", pt50, x=names50)
    for n in ("r00", "r37", "r49"):
        add("valid_50_x25519", f"50 X25519 recipients; opened by {n}", ("id", n), "ok", None,
            fifty, pt50)

    ptm = _det("v2 mixed", 1000)
    mixed = write("mixed", ptm, x=["alice"], sym=[TEAM_KEY])
    add("valid_mixed", "X25519 (alice) + symmetric team key; opened by alice", A, "ok", None,
        mixed, ptm)
    add("valid_mixed", "X25519 (alice) + symmetric team key; opened by the team key", T, "ok",
        None, mixed, ptm)

    pts = _det("v2 symonly", 50)
    symonly = write("symonly", pts, sym=[TEAM_KEY16, TEAM_KEY])
    add("valid_symmetric_only", "v2 with two symmetric stanzas (16- and 32-byte keys); "
        "opened by the 16-byte key", ("key", TEAM_KEY16), "ok", None, symonly, pts)
    add("valid_symmetric_only", "v2 with two symmetric stanzas; opened by the 32-byte key "
        "(second stanza)", T, "ok", None, symonly, pts)

    unknown = struct.pack("<BBH", 0x7F, 0, 10) + _det("v2 unknown body", 10)
    ptu = _det("v2 unknown", 64)
    unk = write("unknown", ptu, x=["alice"], extra=[unknown])
    # put the unknown stanza first: rebuild block with the same stanzas in another order
    st = [s["raw"] for s in r2.parse_header(unk)["stanzas"]]
    unk = r2.write_v2(ptu, x25519_recipients=[], symmetric_keys=[], salt=SALT("v2 unknown"),
                      file_key=FK("unknown"), chunk_size=CS,
                      extra_stanzas=[st[1], st[0]])
    add("valid_unknown_stanza", "unknown stanza type 0x7f (10-byte body) before alice's stanza: "
        "skipped", A, "ok", None, unk, ptu)

    meta = b'{"framework":"torch","name":"v2 test"}'
    ptmeta = _det("v2 meta", 200)
    mfile = write("meta", ptmeta, x=["alice"], meta=meta)
    add("valid_metadata", "metadata (38 bytes) + one X25519 recipient", A, "ok", None, mfile,
        ptmeta, meta)

    ptc = _det("v2 chunks", 2 * CS + 100)
    chunks = write("chunks", ptc, x=["alice"], sym=[TEAM_KEY])
    add("valid_multichunk", "3 chunks, alice + team key", A, "ok", None, chunks, ptc)

    empty = write("empty", b"", x=["alice"])
    add("valid_empty", "zero-length plaintext, one X25519 recipient", A, "ok", None, empty)

    tight = write("tight", pt, x=["alice"], room=4 + 100)
    add("valid_tight_room", "R = 104 exactly (no padding)", A, "ok", None, tight, pt)

    added = r2.rewrite_recipients(one, identity=ident("alice"), add_x25519=[pub("carol")],
                                  ephemeral_privates=[EPH("add carol")])
    assert added[r2.parse_header(one)["header_length"]:] == one[r2.parse_header(one)["header_length"]:]
    assert added[:128] == one[:128] and len(added) == len(one)
    add("rewritten_added", "valid_one_x25519 after adding carol (same R, payload identical); "
        "opened by carol", C, "ok", None, added, pt)
    add("rewritten_added", "valid_one_x25519 after adding carol; opened by alice", A, "ok", None,
        added, pt)

    removed = r2.rewrite_recipients(two, identity=ident("bob"),
                                    remove_fingerprints=[r2.fingerprint(pub("alice"))])
    h2 = r2.parse_header(two)["header_length"]
    assert removed[h2:] == two[h2:] and removed[:128] == two[:128]
    add("rewritten_removed", "valid_two_x25519 after removing alice; opened by bob", B, "ok",
        None, removed, pt2)
    add("rewritten_removed", "valid_two_x25519 after removing alice; alice no longer matches",
        A, "KeyMismatchError", 7, removed)

    # ---------------------------------------------------------------- step 5
    bo = block_off(one)
    add("R_3", "recipients_length = 3 (< 4)", A, "FormatError", 5, put(one, bo - 4, "<I", 3))
    add("R_262145", "recipients_length = 262145 (> 262144)", A, "FormatError", 5,
        put(one, bo - 4, "<I", 262145))
    add("truncated_before_R", "file ends 2 bytes into the R field", A, "FormatError", 5,
        one[:bo - 2])
    add("truncated_after_core", "file ends right after header_mac", A, "FormatError", 5,
        one[:bo - 4])
    add("truncated_in_block", "file ends inside the recipients block", A, "FormatError", 5,
        one[:bo + 50])
    add("truncated_in_recipients_mac", "file ends inside recipients_mac", A, "FormatError", 5,
        one[:r2.parse_header(one)["header_length"] - 1])

    # ---------------------------------------------------------------- step 6
    add("N_0", "stanza_count 0", A, "FormatError", 6, put(one, bo, "<H", 0))
    big = write("big R", pt, x=["alice"], room=262144)
    add("N_1025", "stanza_count 1025 (R = 262144 so 1025 stanzas could fit)", A, "FormatError", 6,
        put(big, block_off(big), "<H", 1025))
    add("N_2_but_1", "stanza_count 2 with one stanza: second stanza header is padding "
        "(type 0, B 0) - this is an unknown stanza of length 4; valid parse, but MAC fails",
        A, "AuthenticationError", 10, put(one, bo, "<H", 2))
    add("block_reserved", "recipients block reserved = 1", A, "FormatError", 6,
        put(one, bo + 2, "<H", 1))
    add("stanza_reserved", "stanza reserved byte = 1", A, "FormatError", 6, put(one, bo + 5, "<B", 1))
    past = put(put(one, bo + 4, "<B", 0x7F), bo + 6, "<H", 0xFFFF)
    add("stanza_past_block", "unknown-type stanza with body_length 65535 (> R)", A, "FormatError",
        6, past)
    tightb = block_off(tight)
    add("stanza_past_block_tight", "R = 104 and X25519 stanza claims body 96+1; runs past block",
        A, "FormatError", 6, put(tight, tightb + 6, "<H", 97))
    add("x25519_body_95", "X25519 stanza body_length 95", A, "FormatError", 6,
        put(one, bo + 6, "<H", 95))
    add("x25519_body_97", "X25519 stanza body_length 97", A, "FormatError", 6,
        put(one, bo + 6, "<H", 97))
    sb = block_off(symonly)
    add("symmetric_body_79", "symmetric stanza body_length 79", T, "FormatError", 6,
        put(symonly, sb + 6, "<H", 79))
    add("symmetric_body_81", "symmetric stanza body_length 81", T, "FormatError", 6,
        put(symonly, sb + 6, "<H", 81))
    R1 = r2.parse_header(one)["recipients_length"]
    add("padding_last_byte", "last padding byte = 1", A, "FormatError", 6, flip(one, bo + R1 - 1))
    add("padding_first_byte", "first padding byte (right after the stanza) flipped", A,
        "FormatError", 6, flip(one, bo + 4 + 100, 0x80))
    add("padding_wrong_key", "non-zero padding opened with a wrong key: step 6 comes first",
        ("key", WRONG_KEY), "FormatError", 6, flip(mixed, block_off(mixed) + 300))

    # ---------------------------------------------------------------- step 7
    add("wrong_identity", "one X25519 recipient (alice) opened by bob", B, "KeyMismatchError", 7,
        one)
    add("wrong_symmetric_key", "mixed file opened with a wrong symmetric key", ("key", WRONG_KEY),
        "KeyMismatchError", 7, mixed)
    add("x25519_only_symmetric_key", "X25519-only file opened with a symmetric key", T,
        "KeyMismatchError", 7, one)
    add("symmetric_only_identity", "symmetric-only v2 file opened by an identity", A,
        "KeyMismatchError", 7, symonly)
    add("wrapped_corrupt", "alice's stanza: wrapped FK byte flipped", A, "AuthenticationError", 7,
        flip(one, bo + 4 + 60))
    add("wrapped_tag_corrupt", "alice's stanza: GCM tag byte flipped", A, "AuthenticationError",
        7, flip(one, bo + 4 + 95))
    zero_e = bytearray(one)
    zero_e[bo + 8 + 16:bo + 8 + 48] = bytes(32)
    add("ephemeral_zero", "alice's ephemeral key replaced by 0 (low order: S all zero)", A,
        "AuthenticationError", 7, bytes(zero_e))
    one_e = bytearray(one)
    one_e[bo + 8 + 16:bo + 8 + 48] = (1).to_bytes(32, "little")
    add("ephemeral_one", "alice's ephemeral key replaced by u = 1 (low order)", A,
        "AuthenticationError", 7, bytes(one_e))
    other = write("other", pt, x=["alice"])
    st_other = r2.parse_header(other)["stanzas"][0]["raw"]
    add("stanza_from_other_file", "alice's stanza copied from another file (AAD = other salt)",
        A, "AuthenticationError", 7, replace_block(one, [st_other]))
    sym_corrupt = flip(symonly, sb + 4 + 40)
    add("symmetric_wrapped_corrupt", "first symmetric stanza corrupted, opened by its key: "
        "a symmetric key has no fingerprint, so it is a KeyMismatchError", ("key", TEAM_KEY16),
        "KeyMismatchError", 7, sym_corrupt)
    add("symmetric_wrapped_corrupt", "first symmetric stanza corrupted; the second unwraps FK, "
        "then the recipients MAC fails", T, "AuthenticationError", 10, sym_corrupt)
    dup = replace_block(one, [st_other, r2.parse_header(one)["stanzas"][0]["raw"]])
    add("two_matching_first_bad", "two stanzas with alice's fingerprint, first does not unwrap: "
        "the second gives FK, then the recipients MAC fails", A, "AuthenticationError", 10, dup)

    # ---------------------------------------------------------------- step 8
    foreign_fk = r2.make_x25519_stanza(pub("alice"), EPH("foreign"), FK("other"),
                                       SALT("v2 one"))
    add("stanza_other_file_key", "alice's stanza wraps another file's FK with this salt: "
        "key commitment fails", A, "AuthenticationError", 8, replace_block(one, [foreign_fk]))
    same_salt = write("same salt", pt, x=["alice"], salt=SALT("v2 one"), fk=FK("other"))
    core_swap = same_salt[:bo] + one[bo:]
    add("core_header_other_file_same_salt", "core header of another file with the same salt "
        "(other FK): stanza unwraps, key commitment fails", A, "AuthenticationError", 8, core_swap)
    core_swap2 = other[:bo] + one[bo:]
    add("core_header_other_file", "core header (other salt, other FK) of another file: the "
        "stanza's AAD no longer matches", A, "AuthenticationError", 7, core_swap2)

    # ---------------------------------------------------------------- step 9
    add("header_mac_flipped", "header_mac byte flipped", A, "AuthenticationError", 9,
        flip(one, bo - 5))
    add("metadata_flipped", "metadata byte flipped", A, "AuthenticationError", 9, flip(mfile, 100))
    add("plaintext_length_changed", "plaintext_length + 1", A, "AuthenticationError", 9,
        put(one, 16, "<Q", len(pt) + 1))

    # ---------------------------------------------------------------- step 10
    H1 = r2.parse_header(one)["header_length"]
    add("recipients_mac_flipped", "recipients_mac byte flipped", A, "AuthenticationError", 10,
        flip(one, H1 - 1))
    add("R_changed", "R grown by 1 (file cut to keep layout): extra padding byte, MAC fails",
        A, "AuthenticationError", 10,
        one[:bo - 4] + struct.pack("<I", R1 + 1) + one[bo:bo + R1] + b"\x00" + one[bo + R1:])
    st2 = [s["raw"] for s in r2.parse_header(two)["stanzas"]]
    add("stanzas_reordered", "two stanzas swapped, recipients_mac unchanged", A,
        "AuthenticationError", 10, replace_block(two, [st2[1], st2[0]]))
    add("stanza_removed_no_mac", "bob's stanza removed, recipients_mac unchanged", A,
        "AuthenticationError", 10, replace_block(two, [st2[0]]))
    add("symmetric_stanza_added_no_mac", "mixed file: symmetric stanza replaced by one for the "
        "wrong key, MAC unchanged; opened by alice", A, "AuthenticationError", 10,
        replace_block(mixed, [r2.parse_header(mixed)["stanzas"][0]["raw"],
                              r2.make_symmetric_stanza(WRONG_KEY, SSALT("x"), FK("mixed"),
                                                       SALT("v2 mixed"))]))
    add("block_from_other_file_with_mac", "recipients block + MAC of another file (same "
        "recipient): stanza AAD mismatch", A, "AuthenticationError", 7,
        one[:bo - 4] + other[bo - 4:r2.parse_header(other)["header_length"]] + one[H1:])

    # ---------------------------------------------------------------- steps 11, 12
    add("truncated_payload", "last byte of the payload cut", A, "AuthenticationError", 11, one[:-1])
    add("appended_byte", "one byte appended", A, "AuthenticationError", 11, one + b"\x00")
    add("truncated_at_header", "payload removed (file = header only)", A, "AuthenticationError",
        11, one[:H1])
    add("chunk_flipped", "chunk ciphertext byte flipped", A, "AuthenticationError", 12,
        flip(one, H1 + 5))
    Hc = r2.parse_header(chunks)["header_length"]
    add("chunk_tag_flipped_multichunk", "tag of chunk 1 of 3 flipped", T, "AuthenticationError",
        12, flip(chunks, Hc + 2 * (CS + 16) - 1))
    swapped = chunks[:Hc] + chunks[Hc + CS + 16:Hc + 2 * (CS + 16)] + \
        chunks[Hc:Hc + CS + 16] + chunks[Hc + 2 * (CS + 16):]
    add("chunks_swapped", "chunks 0 and 1 swapped", A, "AuthenticationError", 12, swapped)

    # ---------------------------------------------------------------- steps 1-4 with version 2
    add("v2_algorithm_2", "version 2, algorithm 2", A, "UnsupportedVersionError", 3,
        put(one, 10, "<H", 2))
    add("v2_reserved", "version 2, core reserved = 1", A, "FormatError", 4, put(one, 28, "<I", 1))
    add("v2_short", "version 2 file of 95 bytes", A, "FormatError", 2, one[:95])
    add("version_4", "version 4 (unassigned; version 3 is the signed format, tests/vectors/v3)",
        A, "UnsupportedVersionError", 3, put(one, 8, "<H", 4))
    v1file = rf.write(pt, TEAM_KEY, salt=SALT("v2 v1 file"), chunk_size=CS)
    add("v1_file_with_identity", "a version 1 file opened with an identity", A,
        "KeyMismatchError", 7, v1file)
    add("v1_file_with_identity", "the same version 1 file opened with its master key", T, "ok",
        None, v1file, pt)
    return cases


def cred_of(c):
    kind, v = c
    if kind == "key":
        return {"key": v.hex()}, v, None
    x = ident(v)
    return {"identity": r2.encode_identity(x)}, None, x


def generate() -> dict:
    files, manifest = {}, []
    for fname, desc, cred, expect, step, data, pt, meta in build_cases():
        assert files.get(fname, data) == data, fname
        centry, key, x = cred_of(cred)
        try:
            got_pt, got_meta = r2.read(data, key, identity=x)
            outcome = "ok"
        except (rf.FormatError, rf.KeyMismatchError, rf.AuthenticationError) as e:
            outcome = type(e).__name__
            msg = str(e)
            if step is not None and step >= 5 and data[8:10] == b"\x02\x00":
                assert msg.startswith(f"step {step}:"), (fname, msg, step)
        assert outcome == expect, (fname, desc, outcome, expect)
        entry = {"file": fname, "description": desc, **centry, "expect": expect, "step": step}
        if expect == "ok":
            assert got_pt == pt and got_meta == meta, fname
            entry["plaintext_length"] = len(pt)
            entry["plaintext_sha256"] = hashlib.sha256(pt).hexdigest()
            entry["metadata_length"] = len(meta)
            entry["metadata_sha256"] = hashlib.sha256(meta).hexdigest()
            entry["metadata"] = meta.hex()
            hdr = r2.parse_header(data)
            if hdr["version"] == 2:
                entry["recipients"] = r2.list_recipients(data)
                entry["recipients_length"] = hdr["recipients_length"]
            else:
                entry["recipients"] = None
                entry["recipients_length"] = None
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
