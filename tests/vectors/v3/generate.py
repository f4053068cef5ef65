#!/usr/bin/env python3
"""Generate the modelcrypt format version 3 golden files (tests/vectors/v3/*.mcx, manifest.json,
key_text.json).

Deterministic: fixed Ed25519 signing seeds (Ed25519 signatures are deterministic), X25519
identities, file keys, salts, ephemeral keys and stanza salts, all SHAKE-256 / SHA-256 of labels
as in tests/vectors/v2/generate.py.  Valid files come from tests/reference_format_v3.write_v3()
and rewrite_recipients(); reject cases are built from them by byte surgery (or by signing a
damaged body).  Every expectation is checked against the reference reader before writing.

    python3 tests/vectors/v3/generate.py          # regenerate in place
    python3 tests/vectors/v3/generate.py --check  # verify the checked-in files are current

manifest.json: a JSON list, one entry per (file, credential, trusted signers):
    file, description
    key                  hex symmetric master key, or null
    identity             hex X25519 private key, or null (exactly one of key / identity is set)
    trusted_signers      [hex Ed25519 public keys], or null (signatures not checked)
    expect, step         reading with the credential and trusted_signers
    expect_without_trust, step_without_trust
                         reading with the same credential and no trusted signers
    keyless_expect, keyless_step
                         "Keyless verification" with trusted_signers (null when it is null)
    plaintext_length, plaintext_sha256, metadata (hex), metadata_length, metadata_sha256
                         when expect or expect_without_trust is "ok"
    signer, signer_text  the trailer's signer_public_key (hex, modelcrypt-signer1...) as read
                         without a key (NOT verified) from a version 3 file whose length is
                         exact; else null.  Keyless verification, when "ok", returns it.
    recipients, recipients_length   (as tests/vectors/v2) for a v2/v3 file with an "ok"
expect is "ok" or the exact error class name.  step is the step of "Reader algorithm (version
3)" in docs/FORMAT.md: "S1" not signed, "S2" length, "S3" trailer fields and trust, "S4" the
signature (these four before the key is used), 6-10 as in version 2, "S5" chunk hash then chunk
tag; without trusted signers 11 is the length and a chunk tag failure is step 12 of version 2;
null for "ok".

Readers that only know versions 1 and 2 reject every file here whose core header says version 3
with UnsupportedVersionError (step 3); tests/test_vectors_v3.py checks this with both references.

Readings of FORMAT.md chosen where it leaves room:
  * S1 ("not signed") comes right after the keyless header steps (before the key is used), so a
    v1/v2 file with trusted signers is a SignatureError whatever the key; the vectors only use
    the right key for it;
  * without trusted signers the trailer's contents are ignored (the spec's MAY): a damaged
    trailer of the right length opens (expect_without_trust "ok");
  * a non-canonical signature (S + l) is a SignatureError (S4), as OpenSSL rejects it.
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
import reference_format_v3 as r3  # noqa: E402

CS = 4096
ED25519_L = 2**252 + 27742317777372353535851937790883648493   # the group order l (RFC 8032)
ERRORS = (rf.FormatError, rf.KeyMismatchError, rf.AuthenticationError, r3.SignatureError)


def _det(label: str, n: int) -> bytes:
    return hashlib.shake_256(b"modelcrypt test vector " + label.encode()).digest(n) if n else b""


def SALT(label: str) -> bytes:
    return hashlib.sha256(b"modelcrypt test salt " + label.encode()).digest()


def seed(name: str) -> bytes:
    return _det("v3 signing key " + name, 32)


def spub(name: str) -> bytes:
    return r3.signer_public_key(seed(name))


def ident(name: str) -> bytes:
    return _det("v3 identity " + name, 32)


def xpub(name: str) -> bytes:
    return r2.public_from_private(ident(name))


TEAM_KEY = bytes(range(0x00, 0x20))        # the v1 / v2 vectors' 32-byte key
WRONG_KEY = bytes(range(0x01, 0x21))
PUBLISHER, OTHER = "publisher", "other"


def put(data: bytes, off: int, fmt: str, value: int) -> bytes:
    b = bytearray(data)
    struct.pack_into(fmt, b, off, value)
    return bytes(b)


def flip(data: bytes, off: int, mask: int = 0x01) -> bytes:
    b = bytearray(data)
    b[off] ^= mask
    return bytes(b)


def write(label, pt, *, x=(), sym=(), meta=b"", signer=PUBLISHER, room=None, salt=None):
    return r3.write_v3(pt, signing_seed=seed(signer), x25519_recipients=[xpub(n) for n in x],
                       symmetric_keys=list(sym), salt=salt or SALT("v3 " + label),
                       file_key=_det("v3 file key " + label, 32),
                       ephemeral_privates=[_det(f"v3 ephemeral {label} {i}", 32)
                                           for i in range(len(x))],
                       stanza_salts=[_det(f"v3 stanza salt {label} {i}", 32)
                                     for i in range(len(sym))],
                       chunk_size=CS, metadata_raw=meta, room=room)


def layout(data: bytes) -> dict:
    return r3.parse_header(data)


def chunk_span(data: bytes, i: int) -> tuple[int, int]:
    h = layout(data)
    off = rf.chunk_offset(i, h["header_length"], CS)
    return off, off + rf.chunk_plain_length(i, h["plaintext_length"], CS) + rf.TAG_LEN


def trailer_off(data: bytes) -> int:
    return layout(data)["payload_end"]


def resign(data: bytes, signer: str) -> bytes:
    """The same header and payload, trailer replaced by one signed with another key."""
    return r3.sign(data[:trailer_off(data)], seed(signer))


def build_cases():
    cases = []  # (file, desc, key, identity, trusted, expect, step, data, pt, meta)

    def add(name, desc, cred, trusted, expect, step, data, pt=b"", meta=b""):
        key, x = (cred[1], None) if cred[0] == "key" else (None, ident(cred[1]))
        trusted = None if trusted is None else [spub(s) for s in trusted]
        cases.append((name + ".mcx", desc, key, x, trusted, expect, step, data, pt, meta))

    T, A, B = ("key", TEAM_KEY), ("id", "alice"), ("id", "bob")
    P, PO = [PUBLISHER], [OTHER, PUBLISHER]
    SE, AE, FE, UV, KM = ("SignatureError", "AuthenticationError", "FormatError",
                          "UnsupportedVersionError", "KeyMismatchError")

    # ---------------------------------------------------------------- valid signed files
    pts = _det("v3 symmetric", 100)
    sym = write("symmetric", pts, sym=[TEAM_KEY])
    add("valid_symmetric", "symmetric master key (a type 2 stanza), 100 bytes, signed by the "
        "publisher; trusted", T, P, "ok", None, sym, pts)
    add("valid_symmetric", "the same file read without trusted signers (opens like v2)", T, None,
        "ok", None, sym, pts)
    add("valid_symmetric", "signed by the publisher, but only another key is trusted", T, [OTHER],
        SE, "S3", sym, pts)
    add("valid_symmetric", "a wrong master key with trusted signers: step 7 comes first", ("key",
        WRONG_KEY), P, KM, 7, sym)

    ptx = _det("v3 x25519", 300)
    xf = write("x25519", ptx, x=["alice"])
    add("valid_x25519", "one X25519 recipient (alice), 300 bytes, signed", A, P, "ok", None, xf, ptx)
    add("valid_x25519", "opened by bob (not a recipient) with trusted signers", B, P, KM, 7, xf)

    ptm = _det("v3 mixed", 1000)
    mixed = write("mixed", ptm, x=["alice"], sym=[TEAM_KEY])
    add("valid_mixed", "alice + team key, signed; opened by alice; the signer is the second of "
        "two trusted keys", A, PO, "ok", None, mixed, ptm)
    add("valid_mixed", "alice + team key, signed; opened by the team key", T, P, "ok", None,
        mixed, ptm)

    empty = write("empty", b"", sym=[TEAM_KEY])
    add("valid_empty", "empty plaintext: one chunk (a bare 16-byte tag), one chunk hash", T, P,
        "ok", None, empty)
    pt1 = _det("v3 one byte", 1)
    add("valid_1byte", "1-byte plaintext", T, P, "ok", None, write("1byte", pt1, sym=[TEAM_KEY]),
        pt1)
    ptc = _det("v3 chunks", 2 * CS + 100)
    multi = write("multichunk", ptc, sym=[TEAM_KEY])
    add("valid_multichunk", "3 chunks (4096, 4096, 100), 3 chunk hashes", T, P, "ok", None, multi,
        ptc)
    ptf = _det("v3 full chunks", 2 * CS)
    add("valid_two_full_chunks", "L = 2 * cs: 2 full chunks, no empty third chunk", T, P, "ok",
        None, write("two full", ptf, sym=[TEAM_KEY]), ptf)
    meta = b'{"framework":"torch","name":"v3 test"}'
    ptmeta = _det("v3 meta", 200)
    mfile = write("meta", ptmeta, x=["alice"], meta=meta)
    add("valid_metadata", "metadata (38 bytes), alice, signed", A, P, "ok", None, mfile, ptmeta,
        meta)

    # ---------------------------------------------------------------- recipients rewritten
    added = r3.rewrite_recipients(xf, identity=ident("alice"), add_x25519=[xpub("bob")],
                                  ephemeral_privates=[_det("v3 add bob", 32)])
    Hx = layout(xf)["header_length"]
    assert added[:128] == xf[:128] and added[Hx:] == xf[Hx:] and len(added) == len(xf)
    add("rewritten_added", "valid_x25519 after adding bob (same R; core header, payload and "
        "trailer unchanged): still verifies; opened by bob", B, P, "ok", None, added, ptx)
    add("rewritten_added", "the same file opened by alice", A, P, "ok", None, added, ptx)
    grown = r3.rewrite_recipients(xf, identity=ident("alice"),
                                  add_x25519=[xpub(f"r{i}") for i in range(20)],
                                  ephemeral_privates=[_det(f"v3 grow {i}", 32) for i in range(20)])
    assert layout(grown)["recipients_length"] > layout(xf)["recipients_length"]
    assert grown[:128] == xf[:128] and grown[layout(grown)["header_length"]:] == xf[Hx:]
    add("rewritten_grown", "valid_x25519 after adding 20 recipients: R grows, payload and "
        "trailer move unchanged behind it; still verifies", A, P, "ok", None, grown, ptx)
    removed = r3.rewrite_recipients(mixed, identity=ident("alice"),
                                    remove_symmetric_keys=[TEAM_KEY])
    add("rewritten_removed", "valid_mixed after removing the team key: alice still opens it", A,
        P, "ok", None, removed, ptm)
    add("rewritten_removed", "valid_mixed after removing the team key: the team key no longer "
        "does", T, P, KM, 7, removed)

    # ---------------------------------------------------------------- step 12: trailer fields
    to = trailer_off(multi)
    add("trailer_algorithm_2", "signature_algorithm = 2", T, P, UV, "S3", put(multi, to, "<H", 2),
        ptc)
    add("trailer_algorithm_0", "signature_algorithm = 0", T, P, UV, "S3", put(multi, to, "<H", 0),
        ptc)
    add("trailer_reserved_1", "trailer reserved = 1", T, P, FE, "S3", put(multi, to + 2, "<H", 1),
        ptc)
    add("trailer_reserved_high_bit", "trailer reserved = 0x8000", T, P, FE, "S3",
        put(multi, to + 2, "<H", 0x8000), ptc)
    other_signed = resign(multi, OTHER)
    assert other_signed[:to] == multi[:to]
    add("resigned_other_key", "valid_multichunk re-signed by another key (untrusted)", T, P, SE,
        "S3", other_signed, ptc)
    add("resigned_other_key", "the re-signed file with its own signer trusted", T, [OTHER], "ok",
        None, other_signed, ptc)

    # ---------------------------------------------------------------- step 13: the signature
    sig = to + 36
    add("signature_flipped_first", "first signature byte flipped (R)", T, P, SE, "S4",
        flip(multi, sig), ptc)
    add("signature_flipped_last", "last signature byte flipped (S)", T, P, SE, "S4",
        flip(multi, sig + 63, 0x10), ptc)
    S = int.from_bytes(multi[sig + 32:sig + 64], "little")
    malleated = multi[:sig + 32] + (S + ED25519_L).to_bytes(32, "little") + multi[sig + 64:]
    add("signature_s_plus_l", "S replaced by S + l (non-canonical; verifies in lax checkers)", T, P,
        SE, "S4", malleated, ptc)
    swapped_key = multi[:to + 4] + spub(OTHER) + multi[to + 36:]
    add("signer_key_swapped", "signer_public_key replaced by another trusted key; signature "
        "by the publisher", T, PO, SE, "S4", swapped_key, ptc)
    hashes = to + 100
    add("chunk_hash_flipped_first", "chunk_hash_0 byte flipped", T, P, SE, "S4",
        flip(multi, hashes), ptc)
    add("chunk_hash_flipped_last", "chunk_hash_2 (last) byte flipped", T, P, SE, "S4",
        flip(multi, hashes + 3 * 32 - 1), ptc)
    other_multi = write("multichunk other", _det("v3 chunks other", 2 * CS + 100), sym=[TEAM_KEY])
    spliced = multi[:to] + other_multi[trailer_off(other_multi):]
    add("trailer_from_other_file", "the trailer of another signed file with the same n", T, P, SE,
        "S4", spliced, ptc)
    (a0, a1), (b0, b1), (c0, _c1) = (chunk_span(multi, i) for i in range(3))
    swap = multi[:a0] + multi[b0:b1] + multi[a0:a1] + multi[c0:hashes] + \
        multi[hashes + 32:hashes + 64] + multi[hashes:hashes + 32] + multi[hashes + 64:]
    add("chunks_swapped_with_hashes", "chunks 0 and 1 swapped, their hash entries too", T, P, SE,
        "S4", swap)
    add("metadata_flipped", "metadata byte flipped (covered by the header MAC and the "
        "signature: S4 before the key)", A, P, SE, "S4", flip(mfile, 100))
    add("header_mac_flipped", "header_mac byte flipped (signed: S4)", T, P, SE, "S4", flip(multi, 96))
    add("salt_flipped", "salt byte flipped (signed: S4 before the stanza is opened)", T, P, SE, "S4",
        flip(multi, 40))
    add("plaintext_length_changed", "L + 1 in the header: the file length no longer matches (S2; "
        "without trusted signers the header MAC fails)", T, P, SE, "S2", put(multi, 16, "<Q", 2 * CS + 101))

    # ---------------------------------------------------------------- step 14: chunks
    for nm, off in (("ct_flipped_chunk0", a0 + 5), ("ct_flipped_chunk1_middle", b0 + CS // 2),
                    ("ct_flipped_last_chunk", c0 + 50), ("tag_flipped_last_chunk", len(multi)
                                                           - 100 - 3 * 32 - 1)):
        add(nm, f"one byte of the stored chunks flipped at offset {off}", T, P, SE, "S5",
            flip(multi, off))
    swap_only = multi[:a0] + multi[b0:b1] + multi[a0:a1] + multi[c0:]
    add("chunks_swapped", "chunks 0 and 1 swapped, hash entries left", T, P, SE, "S5", swap_only)
    bad_body = flip(multi[:to], b1 - 1)     # chunk 1's tag damaged BEFORE signing
    signed_bad = r3.sign(bad_body, seed(PUBLISHER))
    add("signed_bad_chunk", "the publisher signed a file whose chunk 1 tag is damaged: the "
        "signature and hashes verify (keyless ok), the tag does not", T, P, AE, "S5", signed_bad)

    # ---------------------------------------------------------------- S2: length
    add("trailer_truncated_1", "last byte of the trailer cut", T, P, SE, "S2", multi[:-1])
    add("trailer_hashes_removed", "trailer cut after its 100 fixed bytes", T, P, SE, "S2",
        multi[:hashes])
    add("trailer_removed", "version 3 header, trailer removed entirely", T, P, SE, "S2", multi[:to])
    add("trailer_extended_1", "one byte appended", T, P, SE, "S2", multi + b"\x00")
    add("trailer_extra_hash", "a 4th chunk hash (32 bytes) appended", T, P, SE, "S2",
        multi + multi[hashes:hashes + 32])

    # ---------------------------------------------------------------- not covered: recipients
    Hm = layout(multi)["header_length"]
    add("recipients_mac_flipped", "recipients_mac byte flipped: the key reader fails step 10; "
        "keyless verification passes (the signature does not cover the recipients block)", T, P,
        AE, 10, flip(multi, Hm - 1))
    bo = 132 + layout(xf)["metadata_length"]
    add("stanza_wrapped_corrupt", "alice's wrapped file key damaged: step 7 with the key; "
        "keyless verification passes", A, P, AE, 7, flip(xf, bo + 4 + 60))
    add("padding_flipped", "a recipients block padding byte set: step 6 in every mode", T, P, FE,
        6, flip(multi, Hm - 33))

    # ---------------------------------------------------------------- not signed
    stripped = put(multi[:to], 8, "<H", 2)
    add("signature_stripped", "version set back to 2 and the trailer removed: not signed with "
        "trusted signers; without, the header MAC (which covers the version) fails", T, P, SE,
        "S1", stripped)
    v2file = r2.write_v2(pts, symmetric_keys=[TEAM_KEY], salt=SALT("v3 v2 file"),
                         file_key=_det("v3 v2 file key", 32),
                         stanza_salts=[_det("v3 v2 stanza salt", 32)], chunk_size=CS)
    add("v2_file", "a valid version 2 file with trusted signers", T, P, SE, "S1", v2file,
        pts)
    v1file = rf.write(pts, TEAM_KEY, salt=SALT("v3 v1 file"), chunk_size=CS)
    add("v1_file", "a valid version 1 file with trusted signers", T, P, SE, "S1", v1file,
        pts)

    # ---------------------------------------------------------------- steps 1-5 with version 3
    add("version_4", "valid_symmetric with version 4 (unassigned)", T, P, UV, 3,
        put(sym, 8, "<H", 4))
    add("v3_algorithm_2", "version 3, core algorithm 2", T, P, UV, 3, put(sym, 10, "<H", 2))
    add("v3_reserved", "version 3, core reserved = 1", T, P, FE, 4, put(sym, 28, "<I", 1))
    add("v3_short", "a version 3 file cut to 95 bytes", T, P, FE, 2, sym[:95])
    add("v3_truncated_in_block", "a version 3 file cut inside the recipients block", T, P, FE, 5,
        sym[:200])
    return cases


def _outcome(fn):
    """(error class name or "ok", step or None, result) of running fn()."""
    try:
        return "ok", None, fn()
    except ERRORS as e:
        msg = str(e)
        step = None
        if msg.startswith("step "):
            token = msg.split(":")[0][5:]
            step = int(token) if token.isdigit() else token
        return type(e).__name__, step, None


def _hdr_step(expect, step):
    """Steps 1-4 of v1 are not numbered in the reference's messages: take the expected one."""
    return step if expect != "ok" and isinstance(step, int) and step <= 5 else None


def _keyless_header(data: bytes) -> dict | None:
    try:
        return r3.parse_header(data)
    except rf.FormatError:
        return None


def generate() -> dict:
    files, manifest = {}, []
    for fname, desc, key, x, trusted, expect, step, data, pt, meta in build_cases():
        assert files.get(fname, data) == data, fname

        def run(t):
            return _outcome(lambda: r3.read(data, key, identity=x, trusted_signers=t))
        got, got_step, res = run(trusted)
        got_step = got_step if got_step is not None else _hdr_step(expect, step)
        assert (got, got_step) == (expect, step), (fname, desc, got, got_step, expect, step)
        nt, nt_step, nt_res = run(None)
        nt_step = nt_step if nt_step is not None else _hdr_step(nt, step)
        kl, kl_step, signer = (None, None, None)
        if trusted is not None:
            kl, kl_step, signer = _outcome(lambda: r3.verify_keyless(data, trusted))
            kl_step = kl_step if kl_step is not None else _hdr_step(kl, step)
        entry = {"file": fname, "description": desc, "key": key.hex() if key else None,
                 "identity": x.hex() if x else None,
                 "trusted_signers": None if trusted is None else [k.hex() for k in trusted],
                 "expect": expect, "step": step, "expect_without_trust": nt,
                 "step_without_trust": nt_step, "keyless_expect": kl, "keyless_step": kl_step}
        opened = res if res is not None else nt_res
        if opened is not None:
            assert opened == (pt, meta), (fname, desc)
            entry.update(plaintext_length=len(pt), plaintext_sha256=hashlib.sha256(pt).hexdigest(),
                         metadata=meta.hex(), metadata_length=len(meta),
                         metadata_sha256=hashlib.sha256(meta).hexdigest())
        hdr = _keyless_header(data)
        if kl == "ok":
            assert signer == hdr["signer_public_key"], fname
        signer = hdr["signer_public_key"] if hdr and hdr["version"] == 3 else None
        entry["signer"] = signer.hex() if signer else None
        entry["signer_text"] = r3.encode_signer(signer) if signer else None
        if opened is not None:
            entry["recipients"] = r3.list_recipients(data) if hdr["version"] >= 2 else None
            entry["recipients_length"] = hdr.get("recipients_length")
        files[fname] = data
        manifest.append(entry)
    files["manifest.json"] = (json.dumps(manifest, indent=1) + "\n").encode()
    files["key_text.json"] = (json.dumps(key_text_vectors(), indent=1) + "\n").encode()
    return files


def key_text_vectors() -> dict:
    """Valid and invalid signer / signing key texts, checked against the reference decoders,
    and the publisher's key as PEM (PKCS#8 private, SubjectPublicKeyInfo public)."""
    signers, signing_keys = [], []
    for name in (PUBLISHER, OTHER, "third"):
        P = spub(name)
        signers.append({"text": r3.encode_signer(P), "public_key": P.hex(), "note": name})
        signing_keys.append({"text": r3.encode_signing_key(seed(name)), "seed": seed(name).hex(),
                             "public_key": P.hex(), "signer": r3.encode_signer(P), "note": name})
    P, s = spub(PUBLISHER), seed(PUBLISHER)
    st, kt = r3.encode_signer(P), r3.encode_signing_key(s)
    signers.append({"text": st.upper(), "public_key": P.hex(),
                    "note": "upper case (Bech32 is case-insensitive; only mixed case is invalid)"})
    signing_keys.append({"text": kt.lower(), "seed": s.hex(), "public_key": P.hex(),
                         "signer": st, "note": "lower case"})
    bad_signers = [
        (st[:-1] + ("q" if st[-1] != "q" else "p"), "bad checksum"),
        (st[:20] + st[20:].upper(), "mixed case"),
        (r2.encode_recipient(P), "X25519 recipient HRP (modelcrypt)"),
        (r2.bech32_encode(r3.HRP_SIGNING_KEY, P), "signing key HRP"),
        (r2.encode_recipient(P, "age"), "age recipient HRP"),
        (r2.bech32_encode(r3.HRP_SIGNER, P[:31]), "31 bytes"),
        (r2.bech32_encode(r3.HRP_SIGNER, P + b"\0"), "33 bytes"),
        ("", "empty"),
        (st.replace("1", "", 1), "no separator"),
        (st[:-2] + "b" + st[-1], "invalid data character 'b'"),
    ]
    bad_keys = [
        (kt[:-1] + ("Q" if kt[-1] != "Q" else "P"), "bad checksum"),
        (kt[:30] + kt[30:].lower(), "mixed case"),
        (r2.encode_identity(s), "X25519 identity HRP (modelcrypt-secret-key-)"),
        (r2.bech32_encode(r3.HRP_SIGNER, s), "signer HRP (a public key's)"),
        (r2.bech32_encode(r3.HRP_SIGNING_KEY, s[:31]).upper(), "31 bytes"),
        (r2.bech32_encode(r3.HRP_SIGNING_KEY, s + b"\0").upper(), "33 bytes"),
    ]
    for e in signers:
        assert r3.decode_signer(e["text"]).hex() == e["public_key"], e
    for e in signing_keys:
        assert r3.decode_signing_key(e["text"]).hex() == e["seed"], e
        assert r3.signer_public_key(bytes.fromhex(e["seed"])).hex() == e["public_key"]
    for decode, bad in ((r3.decode_signer, bad_signers), (r3.decode_signing_key, bad_keys)):
        for text, why in bad:
            try:
                decode(text)
            except r2.Bech32Error:
                continue
            raise AssertionError(f"accepted {why}: {text}")
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    sk = Ed25519PrivateKey.from_private_bytes(s)
    pem = {"seed": s.hex(), "public_key": P.hex(), "signer": st,
           "private_pkcs8": sk.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8,
                                             ser.NoEncryption()).decode(),
           "public_spki": sk.public_key().public_bytes(
               ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo).decode(),
           "note": "as openssl genpkey -algorithm ed25519 / openssl pkey -pubout write them"}
    return {"signers": signers, "signing_keys": signing_keys, "pem": [pem],
            "invalid_signers": [{"text": t, "why": w} for t, w in bad_signers],
            "invalid_signing_keys": [{"text": t, "why": w} for t, w in bad_keys]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="verify instead of writing")
    args = ap.parse_args()
    files = generate()
    ours = (".mcx", "manifest.json", "key_text.json")
    if args.check:
        present = {f for f in os.listdir(HERE) if f.endswith(ours)}
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
