"""Format version 2 (recipients) golden vectors: tests/vectors/v2/.

Section (a), tests named *reference*: the vectors against the independent pure-Python reference
(tests/reference_format_v2.py), the v1 reference reader's rejection of v2, Bech32, and an interop
check of the X25519 identity decoding against real files written by age (tests/interop/age/).

Section (b), tests named *modelcrypt*: the same vectors through the real library, with the v2 API
(modelcrypt.Identity.from_text, load(path, key, identity=...), decrypt_bytes, inspect().recipients).
They fail until the v2 core lands; that is expected.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import sys
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))

import reference_format as rf  # noqa: E402
import reference_format_v2 as r2  # noqa: E402

VECTORS = TESTS / "vectors" / "v2"
AGE = TESTS / "interop" / "age"
MANIFEST = json.loads((VECTORS / "manifest.json").read_text())
ERRORS = (rf.FormatError, rf.KeyMismatchError, rf.AuthenticationError)


def _ids(entries):
    return [f"{e['file'][:-4]}-{'key' if 'key' in e else 'id'}{i}" for i, e in enumerate(entries)]


def _data(entry) -> bytes:
    return (VECTORS / entry["file"]).read_bytes()


def _credential(entry):
    """(key bytes or None, X25519 private key bytes or None)."""
    if "key" in entry:
        return bytes.fromhex(entry["key"]), None
    return None, r2.decode_identity(entry["identity"])


def _meta_dict(entry) -> dict:
    return json.loads(bytes.fromhex(entry["metadata"])) if entry["metadata_length"] else {}


# =========================================================================== (a) reference


def test_reference_manifest_is_well_formed():
    files = {p.name for p in VECTORS.glob("*.mcx")}
    assert files == {e["file"] for e in MANIFEST}
    for e in MANIFEST:
        assert ("key" in e) != ("identity" in e), e["file"]
        if "identity" in e:
            assert e["identity"].startswith("MODELCRYPT-SECRET-KEY-1")
        assert e["expect"] in ("ok", "FormatError", "UnsupportedVersionError",
                               "KeyMismatchError", "AuthenticationError")
        assert (e["step"] is None) == (e["expect"] == "ok")
    expects = {e["expect"] for e in MANIFEST}
    assert expects == {"ok", "FormatError", "UnsupportedVersionError", "KeyMismatchError",
                       "AuthenticationError"}
    # every v2 reader step 5-12 has at least one reject case
    assert {5, 6, 7, 8, 9, 10, 11, 12} <= {e["step"] for e in MANIFEST}


def test_reference_vectors_are_up_to_date():
    import importlib.util

    # By path and under its own name: tests/vectors/generate.py (v1) may already be imported as "generate".
    spec = importlib.util.spec_from_file_location("generate_v2_vectors", VECTORS / "generate.py")
    generate = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(VECTORS))
    try:
        spec.loader.exec_module(generate)
    finally:
        sys.path.remove(str(VECTORS))
    for name, blob in generate.generate().items():
        assert (VECTORS / name).read_bytes() == blob, f"{name} is stale: run generate.py"


@pytest.mark.parametrize("entry", MANIFEST, ids=_ids(MANIFEST))
def test_reference_reader(entry):
    data = _data(entry)
    key, x = _credential(entry)
    if entry["expect"] == "ok":
        pt, meta = r2.read(data, key, identity=x)
        assert len(pt) == entry["plaintext_length"]
        assert hashlib.sha256(pt).hexdigest() == entry["plaintext_sha256"]
        assert meta.hex() == entry["metadata"]
        if entry["recipients"] is not None:
            assert r2.list_recipients(data) == entry["recipients"]
            assert r2.parse_header(data)["recipients_length"] == entry["recipients_length"]
    else:
        with pytest.raises(ERRORS) as ei:
            r2.read(data, key, identity=x)
        assert type(ei.value).__name__ == entry["expect"], repr(ei.value)
        if entry["step"] >= 5 and data[8:10] == b"\x02\x00":
            assert str(ei.value).startswith(f"step {entry['step']}:"), str(ei.value)


@pytest.mark.parametrize("entry", MANIFEST, ids=_ids(MANIFEST))
def test_reference_keyless_listing(entry):
    """Steps 1-6 need no key: a file rejected at step 7 or later still lists its stanzas."""
    data = _data(entry)
    if entry["step"] is None or entry["step"] >= 7:
        hdr = r2.parse_header(data)
        if hdr["version"] == 2:
            assert len(hdr["stanzas"]) >= 1 and len(hdr["recipients_mac"]) == 32
    else:
        with pytest.raises(rf.FormatError):
            r2.parse_header(data)


# v1 files and v2_short (95 bytes: FormatError at step 2 for every reader) are left out
V2_FILES = sorted({e["file"] for e in MANIFEST
                   if (lambda d: len(d) >= 96 and d[8:10] == b"\x02\x00")(_data(e))})


@pytest.mark.parametrize("name", V2_FILES)
def test_reference_v1_reader_rejects_v2(name):
    """A reader that only knows v1 rejects every version 2 file in step 3."""
    data = (VECTORS / name).read_bytes()
    with pytest.raises(rf.UnsupportedVersionError):
        rf.read(data, bytes(32))


def test_reference_recipients_listed_with_fingerprints():
    entry = next(e for e in MANIFEST if e["file"] == "valid_mixed.mcx")
    alice = r2.decode_identity(entry["identity"]) if "identity" in entry else None
    recips = entry["recipients"]
    assert [r["type"] for r in recips] == ["x25519", "symmetric"]
    if alice is not None:
        assert recips[0]["fingerprint"] == r2.fingerprint(r2.public_from_private(alice)).hex()
    assert recips[1]["fingerprint"] is None
    unk = next(e for e in MANIFEST if e["file"] == "valid_unknown_stanza.mcx")
    assert [r["type"] for r in unk["recipients"]] == ["unknown", "x25519"]


def test_reference_fingerprint_formula():
    P = bytes(range(32))
    assert r2.fingerprint(P) == hashlib.sha256(b"modelcrypt v2 x25519 fingerprint" + P).digest()[:16]


def test_reference_rewrite_keeps_payload_and_core_header():
    x_a, x_b = os.urandom(32), os.urandom(32)
    K = os.urandom(24)
    data = r2.write_v2(os.urandom(9000), x25519_recipients=[r2.public_from_private(x_a)],
                       salt=os.urandom(32), file_key=os.urandom(32),
                       ephemeral_privates=[os.urandom(32)], chunk_size=4096)
    H = r2.parse_header(data)["header_length"]
    added = r2.rewrite_recipients(data, r2.X25519Identity(x_a),
                                  add_x25519=[r2.public_from_private(x_b)],
                                  ephemeral_privates=[os.urandom(32)],
                                  add_symmetric=[K], stanza_salts=[os.urandom(32)])
    assert added[:128] == data[:128] and added[H:] == data[H:] and len(added) == len(data)
    assert r2.read(added, identity=x_b)[0] == r2.read(data, identity=x_a)[0]
    assert r2.read(added, K)[0] == r2.read(data, identity=x_a)[0]
    removed = r2.rewrite_recipients(added, K, remove_fingerprints=[
        r2.fingerprint(r2.public_from_private(x_a))], remove_symmetric_keys=[K])
    assert removed[H:] == data[H:]
    assert [s["type"] for s in r2.parse_header(removed)["stanzas"]] == ["x25519"]
    with pytest.raises(rf.KeyMismatchError):
        r2.read(removed, identity=x_a)
    with pytest.raises(rf.KeyMismatchError):
        r2.read(removed, K)
    with pytest.raises(ValueError):  # must keep one stanza
        r2.rewrite_recipients(removed, identity=x_b, remove_fingerprints=[
            r2.fingerprint(r2.public_from_private(x_b))])
    # growing past R: a larger block, payload copied unchanged
    many = [r2.public_from_private(os.urandom(32)) for _ in range(20)]
    grown = r2.rewrite_recipients(data, identity=x_a, add_x25519=many,
                                  ephemeral_privates=[os.urandom(32) for _ in many])
    hg = r2.parse_header(grown)
    assert hg["recipients_length"] == r2.default_room(4 + 21 * 100)
    assert grown[hg["header_length"]:] == data[H:] and grown[:128] == data[:128]


def test_reference_writer_rules():
    args = dict(salt=os.urandom(32), file_key=os.urandom(32), chunk_size=4096)
    with pytest.raises(ValueError, match="low-order"):
        r2.write_v2(b"x", x25519_recipients=[bytes(32)], ephemeral_privates=[os.urandom(32)], **args)
    with pytest.raises(ValueError):
        r2.write_v2(b"x", **args)  # no stanza
    d = r2.write_v2(b"x", symmetric_keys=[os.urandom(16)], stanza_salts=[os.urandom(32)], **args)
    assert r2.parse_header(d)["recipients_length"] == 1024 * 1 + 1024  # used = 4 + 84
    assert r2.default_room(1024) == 2048 and r2.default_room(1025) == 3072


# ------------------------------------------------------------------ Bech32


def test_reference_bech32_bip173_vectors():
    for s in ("A12UEL5L", "a12uel5l", "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
              "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w"):
        hrp, data = r2.bech32_decode(s)
        assert r2.bech32_encode(hrp, data) == s.lower()
    for bad in ("A1G7SGD8", "a12UEL5L", "10a06t8", "1qzzfhee", "x1b4n0q5v", "li1dgmt3"):
        with pytest.raises(r2.Bech32Error):
            r2.bech32_decode(bad)


def test_reference_recipient_and_identity_text():
    x = bytes(range(1, 33))
    P = r2.public_from_private(x)
    rec, idt = r2.encode_recipient(P), r2.encode_identity(x)
    assert rec.startswith("modelcrypt1") and len(rec) == len("modelcrypt1") + 58
    assert idt.startswith("MODELCRYPT-SECRET-KEY-1") and idt == idt.upper()
    assert len(idt) == len("MODELCRYPT-SECRET-KEY-1") + 58
    assert r2.decode_recipient(rec) == P and r2.decode_identity(idt) == x
    assert r2.decode_identity(idt.lower()) == x
    with pytest.raises(r2.Bech32Error, match="mixed"):
        r2.decode_identity(idt[:-1] + idt[-1].lower())
    with pytest.raises(r2.Bech32Error, match="checksum"):
        r2.decode_recipient(rec[:-1] + ("q" if rec[-1] != "q" else "p"))
    with pytest.raises(r2.Bech32Error, match="human-readable"):
        r2.decode_recipient(r2.bech32_encode("modelcrypt-secret-key-", P))
    with pytest.raises(r2.Bech32Error, match="human-readable"):
        r2.decode_identity(rec)
    with pytest.raises(r2.Bech32Error, match="31 bytes"):
        r2.decode_recipient(r2.bech32_encode("modelcrypt", P[:31]))
    with pytest.raises(r2.Bech32Error, match="33 bytes"):
        r2.decode_recipient(r2.bech32_encode("age", P + b"\0"))


# ------------------------------------------------------------------ age interop


def _b64(s: str) -> bytes:
    return base64.b64decode(s + "=" * (-len(s) % 4), validate=True)


def _hkdf(ikm, salt, info, n=32):
    return HKDF(algorithm=hashes.SHA256(), length=n, salt=salt, info=info).derive(ikm)


def test_reference_age_identity_interop():
    """Decode age's Bech32 identity, derive the recipient, and open a real age file with it."""
    x = r2.parse_identity_file((AGE / "alice.identity").read_text())
    P = r2.public_from_private(x)
    assert r2.encode_recipient(P, "age") == (AGE / "alice.pub.txt").read_text().strip()
    assert r2.decode_recipient((AGE / "alice.pub.txt").read_text().strip()) == P
    # the same keys as modelcrypt text, and back
    assert r2.decode_identity(r2.encode_identity(x)) == x

    blob = (AGE / "alice_only.age").read_bytes()
    lines = blob.split(b"\n")
    assert lines[0] == b"age-encryption.org/v1"
    stanza = lines[1].split(b" ")
    assert stanza[:2] == [b"->", b"X25519"]
    E = _b64(stanza[2].decode())
    body = _b64(lines[2].decode())
    assert lines[3].startswith(b"--- ")
    shared = r2.x25519(x, E)
    wrap_key = _hkdf(shared, E + P, b"age-encryption.org/v1/X25519")
    file_key = ChaCha20Poly1305(wrap_key).decrypt(bytes(12), body, None)
    assert len(file_key) == 16
    # header MAC over the header up to and including "---"
    mac_end = len(b"\n".join(lines[:3])) + 1 + 3
    mac_key = _hkdf(file_key, b"", b"header")
    assert hmac.compare_digest(hmac.new(mac_key, blob[:mac_end], hashlib.sha256).digest(),
                               _b64(lines[3][4:].decode()))
    # and the payload (one last STREAM chunk) is plain.bin
    payload = blob[len(b"\n".join(lines[:4])) + 1:]
    nonce, ct = payload[:16], payload[16:]
    pkey = _hkdf(file_key, nonce, b"payload")
    pt = ChaCha20Poly1305(pkey).decrypt(bytes(11) + b"\x01", ct, None)
    assert pt == (AGE / "plain.bin").read_bytes()
    # a wrong identity does not unwrap
    other = bytes(32)
    with pytest.raises(InvalidTag):
        ChaCha20Poly1305(_hkdf(r2.x25519(other[:31] + b"\x01", E), E + P,
                               b"age-encryption.org/v1/X25519")).decrypt(bytes(12), body, None)


# =========================================================================== (b) modelcrypt


def open_with_modelcrypt(path, entry):
    import modelcrypt
    if "key" in entry:
        return modelcrypt.load(path, bytes.fromhex(entry["key"]))
    return modelcrypt.load(path, identity=modelcrypt.Identity.from_text(entry["identity"]))


def _mc_check(entry, fn):
    import modelcrypt
    try:
        buf = fn()
    except modelcrypt.ModelCryptError as e:
        assert type(e) is getattr(modelcrypt, entry["expect"]), (entry["file"], repr(e))
        return
    assert entry["expect"] == "ok", f"{entry['file']}: opened, expected {entry['expect']}"
    with buf:
        pt = bytes(buf)
        assert hashlib.sha256(pt).hexdigest() == entry["plaintext_sha256"]
        assert dict(buf.metadata) == _meta_dict(entry)


@pytest.mark.parametrize("entry", MANIFEST, ids=_ids(MANIFEST))
def test_modelcrypt_load_v2(entry):
    _mc_check(entry, lambda: open_with_modelcrypt(VECTORS / entry["file"], entry))


@pytest.mark.parametrize("entry", MANIFEST, ids=_ids(MANIFEST))
def test_modelcrypt_decrypt_bytes_v2(entry):
    import modelcrypt
    blob = _data(entry)
    if "key" in entry:
        fn = lambda: modelcrypt.decrypt_bytes(blob, bytes.fromhex(entry["key"]))  # noqa: E731
    else:
        fn = lambda: modelcrypt.decrypt_bytes(  # noqa: E731
            blob, identity=modelcrypt.Identity.from_text(entry["identity"]))
    _mc_check(entry, fn)


@pytest.mark.parametrize("entry", [e for e in MANIFEST if e["expect"] == "ok" and e["recipients"]],
                         ids=lambda e: e["file"][:-4])
def test_modelcrypt_inspect_recipients_v2(entry):
    import modelcrypt
    info = modelcrypt.inspect(VECTORS / entry["file"])
    got = [{"type": r["type"], "fingerprint": r["fingerprint"]} for r in info.recipients]
    assert got == entry["recipients"]


def test_modelcrypt_identity_text_matches_ref_decoder():
    import modelcrypt
    entry = next(e for e in MANIFEST if "identity" in e)
    x = r2.decode_identity(entry["identity"])
    ident = modelcrypt.Identity.from_text(entry["identity"])
    assert ident.recipient == r2.encode_recipient(r2.public_from_private(x))
    age_text = (AGE / "alice.identity").read_text()
    line = [ln for ln in age_text.splitlines() if ln and not ln.startswith("#")][0]
    assert modelcrypt.Identity.from_text(line).recipient == r2.encode_recipient(
        r2.decode_recipient((AGE / "alice.pub.txt").read_text().strip()))
