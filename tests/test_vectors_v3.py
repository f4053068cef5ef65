"""Format version 3 (publisher signatures) golden vectors: tests/vectors/v3/.

Section (a), tests named *reference*: every vector through the independent pure-Python reference
(tests/reference_format_v3.py) in its three modes (credential + trusted signers, credential only,
keyless verification), the v1 and v2 references' rejection of version 3, the signed message
recomputed from the spec with nothing but hashlib and Ed25519, recipients rewriting, and the
signer / signing key texts of key_text.json.

Section (b), tests named *modelcrypt*: the same vectors through the real library (load,
decrypt_bytes, verify, decrypt_file, open_encrypted / load_range and verify_signature with
trusted_signers=, inspect().version / .signer, SigningKey, parse_signer, the key file readers,
SignatureError).  Cross-checks of modelcrypt's signing writer against the reference reader, and
the other way round, are in tests/test_signature_crosscheck.py.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import struct
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))

import reference_format as rf  # noqa: E402
import reference_format_v2 as r2  # noqa: E402
import reference_format_v3 as r3  # noqa: E402

VECTORS = TESTS / "vectors" / "v3"
MANIFEST = json.loads((VECTORS / "manifest.json").read_text())
KEY_TEXT = json.loads((VECTORS / "key_text.json").read_text())
ERRORS = (rf.FormatError, rf.KeyMismatchError, rf.AuthenticationError, r3.SignatureError)
ERROR_NAMES = {"FormatError", "UnsupportedVersionError", "KeyMismatchError",
               "AuthenticationError", "SignatureError"}
TRUSTED = [e for e in MANIFEST if e["trusted_signers"] is not None]
CS = 4096


def _ids(entries):
    return [f"{e['file'][:-4]}-{i}" for i, e in enumerate(entries)]


def _data(entry) -> bytes:
    return (VECTORS / entry["file"]).read_bytes()


def _cred(entry):
    """(key bytes or None, X25519 private key bytes or None)."""
    return (bytes.fromhex(entry["key"]) if entry["key"] else None,
            bytes.fromhex(entry["identity"]) if entry["identity"] else None)


def _trusted(entry):
    ts = entry["trusted_signers"]
    return None if ts is None else [bytes.fromhex(k) for k in ts]


def _outcome(fn):
    """("ok" or the error class name, step or None, result)."""
    try:
        return "ok", None, fn()
    except ERRORS as e:
        msg, step = str(e), None
        if msg.startswith("step "):
            token = msg.split(":")[0][5:]
            step = int(token) if token.isdigit() else token
        return type(e).__name__, step, None


def _is_v3(data: bytes) -> bool:
    return len(data) >= 96 and data[:8] == rf.MAGIC and data[8:10] == b"\x03\x00"


def _check_opened(entry, pt, meta):
    assert len(pt) == entry["plaintext_length"]
    assert hashlib.sha256(pt).hexdigest() == entry["plaintext_sha256"]
    assert meta.hex() == entry["metadata"]


def _check(entry, got, want, want_step):
    name, step, res = got
    assert name == want, (entry["file"], entry["description"], name)
    # the reference names its step in its message, except v1 steps 1-5 (shared with v1)
    if want != "ok" and step is not None:
        assert step == want_step, (entry["file"], step, want_step)
    if name == "ok" and res is not None and isinstance(res, tuple):
        _check_opened(entry, *res)


# =========================================================================== (a) reference


def test_reference_manifest_is_well_formed():
    assert {p.name for p in VECTORS.glob("*.mcx")} == {e["file"] for e in MANIFEST}
    for e in MANIFEST:
        assert (e["key"] is None) != (e["identity"] is None), e["file"]
        for field in ("expect", "expect_without_trust"):
            assert e[field] == "ok" or e[field] in ERROR_NAMES, e
        assert (e["step"] is None) == (e["expect"] == "ok"), e
        assert (e["keyless_expect"] is None) == (e["trusted_signers"] is None), e
        if "ok" in (e["expect"], e["expect_without_trust"]):
            assert len(e["plaintext_sha256"]) == 64
    steps = {e["step"] for e in MANIFEST}
    assert {6, 7, 10, "S1", "S2", "S3", "S4", "S5"} <= steps
    assert {e["step_without_trust"] for e in MANIFEST} >= {7, 9, 10, 11, 12}
    assert {e["keyless_step"] for e in TRUSTED} >= {"S1", "S2", "S3", "S4", "S5"}
    # every rejection of version 3 is present, with and without trust
    assert {e["expect"] for e in MANIFEST} == {"ok"} | ERROR_NAMES
    assert {e["keyless_expect"] for e in TRUSTED} == {"ok"} | ERROR_NAMES - {"KeyMismatchError",
                                                                            "AuthenticationError"}
    # a changed chunk is a SignatureError with trust, an AuthenticationError without
    flipped = [e for e in MANIFEST if e["file"].startswith("ct_flipped_")]
    assert len(flipped) == 3 and all(
        (e["expect"], e["expect_without_trust"], e["keyless_expect"])
        == ("SignatureError", "AuthenticationError", "SignatureError") for e in flipped)


def test_reference_vectors_are_up_to_date():
    # By path and under its own name: the v1 / v2 generators may already be imported.
    spec = importlib.util.spec_from_file_location("generate_v3_vectors", VECTORS / "generate.py")
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    for name, blob in generate.generate().items():
        assert (VECTORS / name).read_bytes() == blob, f"{name} is stale: run generate.py"


@pytest.mark.parametrize("entry", MANIFEST, ids=_ids(MANIFEST))
def test_reference_reader(entry):
    data, (key, x) = _data(entry), _cred(entry)
    got = _outcome(lambda: r3.read(data, key, identity=x, trusted_signers=_trusted(entry)))
    _check(entry, got, entry["expect"], entry["step"])


@pytest.mark.parametrize("entry", MANIFEST, ids=_ids(MANIFEST))
def test_reference_reader_without_trust(entry):
    data, (key, x) = _data(entry), _cred(entry)
    got = _outcome(lambda: r3.read(data, key, identity=x))
    _check(entry, got, entry["expect_without_trust"], entry["step_without_trust"])


@pytest.mark.parametrize("entry", TRUSTED, ids=_ids(TRUSTED))
def test_reference_keyless_verification(entry):
    data = _data(entry)
    got = _outcome(lambda: r3.verify_keyless(data, _trusted(entry)))
    _check(entry, got, entry["keyless_expect"], entry["keyless_step"])
    if got[0] == "ok":
        assert got[2].hex() == entry["signer"]


V3_FILES = sorted({e["file"] for e in MANIFEST if _is_v3(_data(e))})


@pytest.mark.parametrize("name", V3_FILES)
def test_reference_v1_and_v2_readers_reject_v3(name):
    """Readers of versions 1 and 2 reject every version 3 file in step 3."""
    data = (VECTORS / name).read_bytes()
    with pytest.raises(rf.UnsupportedVersionError):
        rf.read(data, bytes(32))
    with pytest.raises(rf.UnsupportedVersionError):
        r2.read(data, bytes(32))
    with pytest.raises(rf.UnsupportedVersionError):
        r2.parse_header(data)


def test_reference_signature_recomputed_from_the_spec():
    """The trailer of valid_metadata / valid_multichunk, rebuilt with hashlib and Ed25519 only."""
    for name in ("valid_multichunk.mcx", "valid_metadata.mcx", "valid_empty.mcx"):
        data = (VECTORS / name).read_bytes()
        cs, L, M = struct.unpack_from("<IQI", data, 12)
        R = struct.unpack_from("<I", data, 128 + M)[0]
        H, n = 164 + M + R, max(1, -(-L // cs))
        T = H + L + 16 * n
        assert len(data) == T + 100 + 32 * n
        alg, res = struct.unpack_from("<HH", data, T)
        assert (alg, res) == (1, 0)
        pub, sig, hashes = data[T + 4:T + 36], data[T + 36:T + 100], data[T + 100:]
        for i in range(n):
            p = cs if i < n - 1 else L - (n - 1) * cs
            off = H + i * (cs + 16)
            assert hashes[32 * i:32 * i + 32] == hashlib.sha256(data[off:off + p + 16]).digest()
        message = (b"modelcrypt v3 signature" + hashlib.sha256(data[:128 + M]).digest()
                   + hashlib.sha256(hashes).digest())
        assert len(message) == 87
        Ed25519PublicKey.from_public_bytes(pub).verify(sig, message)   # raises if it does not


def test_reference_writer_is_deterministic_and_signs_what_it_wrote():
    args = dict(signing_seed=os.urandom(32), symmetric_keys=[os.urandom(16)],
                stanza_salts=[os.urandom(32)], salt=os.urandom(32), file_key=os.urandom(32),
                chunk_size=CS, metadata_raw=b'{"a":"b"}')
    pt = os.urandom(3 * CS + 7)
    a, b = r3.write_v3(pt, **args), r3.write_v3(pt, **args)
    assert a == b
    P = r3.signer_public_key(args["signing_seed"])
    assert r3.verify_keyless(a, [P]) == P == r3.parse_header(a)["signer_public_key"]
    assert r3.read(a, args["symmetric_keys"][0], trusted_signers=[P]) == (pt, b'{"a":"b"}')
    # the unsigned body is a version-3 header and payload: sign() refuses a signed file
    with pytest.raises(ValueError):
        r3.sign(a, args["signing_seed"])


def test_reference_rewrite_keeps_core_header_payload_and_trailer():
    seed, x_a, x_b, K = os.urandom(32), os.urandom(32), os.urandom(32), os.urandom(32)
    P = r3.signer_public_key(seed)
    data = r3.write_v3(os.urandom(9000), signing_seed=seed,
                       x25519_recipients=[r2.public_from_private(x_a)],
                       ephemeral_privates=[os.urandom(32)], salt=os.urandom(32),
                       file_key=os.urandom(32), chunk_size=CS)
    hdr = r3.parse_header(data)
    H, T = hdr["header_length"], hdr["payload_end"]
    added = r3.rewrite_recipients(data, identity=x_a, add_x25519=[r2.public_from_private(x_b)],
                                  ephemeral_privates=[os.urandom(32)], add_symmetric=[K],
                                  stanza_salts=[os.urandom(32)])
    assert added[:128] == data[:128] and added[H:] == data[H:] and added[T:] == data[T:]
    for cred in (dict(identity=x_b), dict(key=K)):
        assert r3.read(added, trusted_signers=[P], **cred)[0] == r3.read(data, identity=x_a)[0]
    assert r3.verify_keyless(added, [P]) == P
    removed = r3.rewrite_recipients(added, K, remove_fingerprints=[
        r2.fingerprint(r2.public_from_private(x_a))])
    with pytest.raises(rf.KeyMismatchError):
        r3.read(removed, identity=x_a, trusted_signers=[P])
    assert r3.verify_keyless(removed, [P]) == P
    many = [r2.public_from_private(os.urandom(32)) for _ in range(25)]
    grown = r3.rewrite_recipients(data, identity=x_a, add_x25519=many,
                                  ephemeral_privates=[os.urandom(32) for _ in many])
    hg = r3.parse_header(grown)
    assert hg["recipients_length"] > hdr["recipients_length"]
    assert grown[hg["header_length"]:] == data[H:] and r3.verify_keyless(grown, [P]) == P


def test_reference_signer_and_signing_key_text():
    for e in KEY_TEXT["signers"]:
        assert r3.decode_signer(e["text"]).hex() == e["public_key"]
        assert r3.encode_signer(bytes.fromhex(e["public_key"])) == e["text"].lower()
    for e in KEY_TEXT["signing_keys"]:
        seed = r3.decode_signing_key(e["text"])
        assert seed.hex() == e["seed"]
        assert r3.encode_signing_key(seed) == e["text"].upper()
        assert r3.encode_signer(r3.signer_public_key(seed)) == e["signer"]
        assert r3.parse_signing_key_file(f"# created: today\n# public key: {e['signer']}\n\n"
                                         f"{e['text']}\n") == seed
    for e in KEY_TEXT["invalid_signers"]:
        with pytest.raises(r3.Bech32Error):
            r3.decode_signer(e["text"])
    for e in KEY_TEXT["invalid_signing_keys"]:
        with pytest.raises(r3.Bech32Error):
            r3.decode_signing_key(e["text"])
    text = KEY_TEXT["signers"][0]["text"]
    assert text.startswith("modelcrypt-signer1") and len(text) == len("modelcrypt-signer1") + 58
    key = KEY_TEXT["signing_keys"][0]["text"]
    assert key.startswith("MODELCRYPT-SIGNING-KEY-1") and len(key) == 24 + 58
    with pytest.raises(r3.Bech32Error):
        r3.parse_signing_key_file(f"{key}\n{key}\n")


def test_reference_pem_keys_are_the_same_keys():
    from cryptography.hazmat.primitives.serialization import (
        load_pem_private_key, load_pem_public_key)
    for e in KEY_TEXT["pem"]:
        sk = load_pem_private_key(e["private_pkcs8"].encode(), None)
        assert sk.private_bytes_raw().hex() == e["seed"]
        assert load_pem_public_key(e["public_spki"].encode()).public_bytes_raw().hex() \
            == e["public_key"] == r3.signer_public_key(bytes.fromhex(e["seed"])).hex()
        assert r3.encode_signer(bytes.fromhex(e["public_key"])) == e["signer"]


# =========================================================================== (b) modelcrypt


def _mc_trust(entry, index=0):
    """trusted_signers for modelcrypt: str texts for even indices, 32-byte keys for odd ones."""
    keys = _trusted(entry)
    if keys is None:
        return None
    return [r3.encode_signer(k) for k in keys] if index % 2 == 0 else keys


def _mc_cred(entry):
    import modelcrypt
    key, x = _cred(entry)
    if x is not None:
        return {"identity": modelcrypt.Identity.from_private_bytes(x)}
    return {"key": key}


def _mc_check(entry, fn, want):
    import modelcrypt
    try:
        buf = fn()
    except modelcrypt.ModelCryptError as e:
        assert type(e) is getattr(modelcrypt, want), (entry["file"], entry["description"], repr(e))
        return
    assert want == "ok", f"{entry['file']} ({entry['description']}): opened, expected {want}"
    with buf:
        assert hashlib.sha256(bytes(buf)).hexdigest() == entry["plaintext_sha256"]
        meta = bytes.fromhex(entry["metadata"])
        assert dict(buf.metadata) == (json.loads(meta) if meta else {})


INDEXED = list(enumerate(MANIFEST))


@pytest.mark.parametrize("index,entry", INDEXED, ids=_ids(MANIFEST))
def test_modelcrypt_load_v3(index, entry):
    import modelcrypt
    _mc_check(entry, lambda: modelcrypt.load(VECTORS / entry["file"], **_mc_cred(entry),
                                             trusted_signers=_mc_trust(entry, index)),
              entry["expect"])


@pytest.mark.parametrize("index,entry", INDEXED, ids=_ids(MANIFEST))
def test_modelcrypt_decrypt_bytes_v3(index, entry):
    import modelcrypt
    blob = _data(entry)
    _mc_check(entry, lambda: modelcrypt.decrypt_bytes(blob, **_mc_cred(entry),
                                                      trusted_signers=_mc_trust(entry, index + 1)),
              entry["expect"])


@pytest.mark.parametrize("entry", MANIFEST, ids=_ids(MANIFEST))
def test_modelcrypt_load_v3_without_trust(entry):
    import modelcrypt
    _mc_check(entry, lambda: modelcrypt.load(VECTORS / entry["file"], **_mc_cred(entry)),
              entry["expect_without_trust"])


@pytest.mark.parametrize("index,entry", INDEXED, ids=_ids(MANIFEST))
def test_modelcrypt_verify_and_decrypt_file_v3(tmp_path, index, entry):
    """verify() and decrypt_file() with the entry's trust: the same outcome; no output on error."""
    import modelcrypt
    path, dst = VECTORS / entry["file"], tmp_path / "out.bin"
    cred, trust = _mc_cred(entry), _mc_trust(entry, index)
    for fn in (lambda: modelcrypt.verify(path, **cred, trusted_signers=trust),
               lambda: modelcrypt.decrypt_file(path, dst, **cred, trusted_signers=trust)):
        try:
            fn()
        except modelcrypt.ModelCryptError as e:
            assert type(e) is getattr(modelcrypt, entry["expect"]), (entry["file"], repr(e))
            assert not dst.exists() and list(tmp_path.iterdir()) == []
            continue
        assert entry["expect"] == "ok", f"{entry['file']}: passed, expected {entry['expect']}"
    if entry["expect"] == "ok":
        assert hashlib.sha256(dst.read_bytes()).hexdigest() == entry["plaintext_sha256"]


def _entry(file, trusted=True):
    return next(e for e in MANIFEST if e["file"] == file and (e["trusted_signers"] is not None)
                == trusted and e["key"])


@pytest.mark.parametrize("file,bad_chunk", [
    ("valid_multichunk.mcx", None), ("ct_flipped_chunk0.mcx", 0),
    ("ct_flipped_chunk1_middle.mcx", 1), ("ct_flipped_last_chunk.mcx", 2),
    ("tag_flipped_last_chunk.mcx", 2), ("chunks_swapped.mcx", "01"),
    ("chunk_hash_flipped_first.mcx", "all"), ("signature_flipped_first.mcx", "all"),
    ("chunks_swapped_with_hashes.mcx", "all"), ("resigned_other_key.mcx", "all"),
    ("signed_bad_chunk.mcx", "tag1")])
def test_modelcrypt_random_access_checks_the_chunks_it_reads(file, bad_chunk):
    """S5 for random access: the signature over the hash list is checked (at open, or at the
    latest before the first read), and each range read checks only its own chunks."""
    import modelcrypt
    entry = _entry(file)
    key, trust = bytes.fromhex(entry["key"]), _mc_trust(entry)
    plain = r3.read((VECTORS / "valid_multichunk.mcx").read_bytes(), key)[0]
    if file == "signed_bad_chunk.mcx":  # its chunk 0 and 2 are valid_multichunk's (same keys)
        assert _data(entry)[:400] == (VECTORS / "valid_multichunk.mcx").read_bytes()[:400]
    # plaintext range -> the chunks it covers
    ranges = {(10, 100): {0}, (CS + 5, 200): {1}, (2 * CS + 1, 50): {2}, (CS - 10, 20): {0, 1}}
    bad = {None: set(), 0: {0}, 1: {1}, 2: {2}, "01": {0, 1}, "all": {0, 1, 2},
           "tag1": {1}}[bad_chunk]
    try:
        f = modelcrypt.open_encrypted(VECTORS / file, key, trusted_signers=trust)
    except modelcrypt.SignatureError:
        assert bad_chunk == "all", file          # S4 may run at open time
        return
    with f:
        for (off, n), chunks in ranges.items():
            err = modelcrypt.AuthenticationError if bad_chunk == "tag1" else modelcrypt.SignatureError
            if chunks & bad:
                with pytest.raises(err):
                    f.read_range(off, n)
            else:
                with f.read_range(off, n) as buf:
                    assert bytes(buf) == plain[off:off + n], (file, off)
    for (off, n), chunks in ranges.items():     # load_range: one handle per call
        if chunks & bad:
            with pytest.raises((modelcrypt.SignatureError, modelcrypt.AuthenticationError)):
                modelcrypt.load_range(VECTORS / file, key, offset=off, length=n,
                                      trusted_signers=trust)
        else:
            with modelcrypt.load_range(VECTORS / file, key, offset=off, length=n,
                                       trusted_signers=trust) as buf:
                assert bytes(buf) == plain[off:off + n]


def test_modelcrypt_signature_error_names_the_chunk():
    import modelcrypt
    for file, chunk in (("ct_flipped_chunk1_middle.mcx", 1), ("ct_flipped_last_chunk.mcx", 2)):
        entry = _entry(file)
        with pytest.raises(modelcrypt.SignatureError, match=f"chunk {chunk}"):
            modelcrypt.load(VECTORS / file, bytes.fromhex(entry["key"]),
                            trusted_signers=_mc_trust(entry))


@pytest.mark.parametrize("index,entry", list(enumerate(TRUSTED)), ids=_ids(TRUSTED))
def test_modelcrypt_verify_signature_keyless(index, entry):
    import modelcrypt
    try:
        signer = modelcrypt.verify_signature(VECTORS / entry["file"],
                                             trusted_signers=_mc_trust(entry, index))
    except modelcrypt.ModelCryptError as e:
        assert type(e) is getattr(modelcrypt, entry["keyless_expect"]), (entry["file"], repr(e))
        return
    assert entry["keyless_expect"] == "ok", f"{entry['file']}: verified, expected an error"
    assert signer == entry["signer_text"]


# files that open, and are either intact signed files or unsigned (damaged trailers are left out:
# what inspect shows for them is not specified)
INSPECTED = sorted({e["file"]: e for e in TRUSTED if e["expect_without_trust"] == "ok" and (
    e["keyless_expect"] == "ok" or e["keyless_step"] == "S1")}.values(),
    key=lambda e: e["file"])


@pytest.mark.parametrize("entry", INSPECTED, ids=lambda e: e["file"][:-4])
def test_modelcrypt_inspect_v3(entry):
    import modelcrypt
    info = modelcrypt.inspect(VECTORS / entry["file"])
    data = _data(entry)
    assert info.version == struct.unpack_from("<H", data, 8)[0]
    assert info.signer == entry["signer_text"]
    if info.version == 3:
        assert info.signer is not None
        assert [{"type": r["type"], "fingerprint": r["fingerprint"]} for r in info.recipients] \
            == entry["recipients"]
        assert info.recipients_length == entry["recipients_length"]


def test_modelcrypt_parse_signer_and_signing_key():
    import modelcrypt
    for e in KEY_TEXT["signers"]:
        assert modelcrypt.parse_signer(e["text"]) == bytes.fromhex(e["public_key"])
    for e in KEY_TEXT["invalid_signers"]:
        with pytest.raises(ValueError):
            modelcrypt.parse_signer(e["text"])
    for e in KEY_TEXT["signing_keys"]:
        sk = modelcrypt.SigningKey.from_private_bytes(bytes.fromhex(e["seed"]))
        assert sk.public_key == e["signer"]
        assert sk.public_key_bytes == bytes.fromhex(e["public_key"])
        assert e["seed"] not in repr(sk) and e["text"].lower() not in repr(sk).lower()
    assert issubclass(modelcrypt.SignatureError, modelcrypt.ModelCryptError)
    assert modelcrypt.SignatureError.__bases__ == (modelcrypt.ModelCryptError,)


def test_modelcrypt_signing_key_texts_and_pem(tmp_path):
    """key_text.json through the key file readers: signing key lines (with comments), PEM."""
    import modelcrypt
    for i, e in enumerate(KEY_TEXT["signing_keys"]):
        path = tmp_path / f"k{i}.key"
        path.write_text(f"# a comment\n\n{e['text']}\n")
        path.chmod(0o600)
        sk = modelcrypt.read_signing_key_file(path)
        assert sk.public_key == e["signer"] and sk.public_key_bytes.hex() == e["public_key"]
    for i, e in enumerate(KEY_TEXT["invalid_signing_keys"]):
        path = tmp_path / f"bad{i}.key"
        path.write_text(e["text"] + "\n")
        path.chmod(0o600)
        with pytest.raises(ValueError):
            modelcrypt.read_signing_key_file(path)
    for i, e in enumerate(KEY_TEXT["pem"]):
        priv, pub = tmp_path / f"p{i}.pem", tmp_path / f"p{i}.pub.pem"
        priv.write_text(e["private_pkcs8"])
        priv.chmod(0o600)
        pub.write_text(e["public_spki"])
        assert modelcrypt.read_signing_key_file(priv).public_key == e["signer"]
        assert modelcrypt.parse_signer(e["public_spki"]).hex() == e["public_key"]
        assert modelcrypt.read_trusted_signers_file(pub) == [e["signer"]]
