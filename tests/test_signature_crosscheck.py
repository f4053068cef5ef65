"""Format version 3 cross-checks between modelcrypt and the independent reference
(tests/reference_format_v3.py): files modelcrypt signs (encrypt_bytes / encrypt_file with
signing_key=, add_recipients on a signed file) verify in the reference reader, and files the
reference writer signs (and rewrites) open in modelcrypt with trusted_signers=.  The golden
vectors themselves are in tests/test_vectors_v3.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import reference_format_v2 as r2  # noqa: E402
import reference_format_v3 as r3  # noqa: E402

import modelcrypt  # noqa: E402

CS = 4096


def _signing_pair():
    seed = os.urandom(32)
    return seed, modelcrypt.SigningKey.from_private_bytes(seed), r3.signer_public_key(seed)


@pytest.mark.parametrize("size", [0, 1, CS - 1, CS, CS + 1, 5 * CS + 17])
def test_modelcrypt_signed_bytes_read_by_reference(size):
    _seed, sk, P = _signing_pair()
    key, x = os.urandom(32), os.urandom(32)
    alice = modelcrypt.Identity.from_private_bytes(x)
    pt = os.urandom(size)
    blob = modelcrypt.encrypt_bytes(pt, key, chunk_size=CS, metadata={"k": "v"}, signing_key=sk,
                                    recipients=[alice.recipient])
    hdr = r3.parse_header(blob)
    assert hdr["version"] == 3 and hdr["signer_public_key"] == P
    assert sorted(s["type"] for s in hdr["stanzas"]) == ["symmetric", "x25519"]
    assert r3.verify_keyless(blob, [P]) == P
    meta = b'{"k":"v"}'
    assert r3.read(blob, key, trusted_signers=[P]) == (pt, meta)
    assert r3.read(blob, identity=x, trusted_signers=[P]) == (pt, meta)
    # Ed25519 is deterministic: re-signing the same body with the same key gives the same file
    assert r3.sign(blob[:hdr["payload_end"]], _seed) == blob
    # a symmetric key alone, signed, is version 3 with a type 2 stanza
    only_key = modelcrypt.encrypt_bytes(pt, key, chunk_size=CS, signing_key=sk)
    assert [s["type"] for s in r3.parse_header(only_key)["stanzas"]] == ["symmetric"]
    assert r3.read(only_key, key, trusted_signers=[P])[0] == pt


@pytest.mark.parametrize("threads", [1, None])
def test_modelcrypt_signed_file_read_by_reference_and_tamper(tmp_path, threads):
    _seed, sk, P = _signing_pair()
    key = os.urandom(24)
    pt = os.urandom(7 * CS + 5)
    src, dst = tmp_path / "model.bin", tmp_path / "model.mcx"
    src.write_bytes(pt)
    modelcrypt.encrypt_file(src, dst, key, chunk_size=CS, signing_key=sk, threads=threads)
    blob = dst.read_bytes()
    assert r3.sign(blob[:r3.parse_header(blob)["payload_end"]], _seed) == blob
    assert r3.verify_keyless(blob, [P]) == P
    assert r3.read(blob, key, trusted_signers=[P])[0] == pt
    assert modelcrypt.inspect(dst).version == 3 and modelcrypt.inspect(dst).signer == sk.public_key
    assert modelcrypt.verify_signature(dst, trusted_signers=[sk.public_key]) == sk.public_key
    H = r3.parse_header(blob)["header_length"]
    bad = bytearray(blob)
    bad[H + 3 * (CS + 16) + 9] ^= 0x20               # chunk 3's ciphertext
    with pytest.raises(r3.SignatureError):
        r3.read(bytes(bad), key, trusted_signers=[P])
    with pytest.raises(modelcrypt.SignatureError):
        modelcrypt.decrypt_bytes(bytes(bad), key, trusted_signers=[P])
    with pytest.raises(modelcrypt.AuthenticationError):
        modelcrypt.decrypt_bytes(bytes(bad), key)
    with pytest.raises(modelcrypt.SignatureError):
        modelcrypt.decrypt_bytes(blob, key, trusted_signers=[os.urandom(32)])


def test_modelcrypt_reads_reference_signed_file(tmp_path):
    seed, sk, P = _signing_pair()
    x, key = os.urandom(32), os.urandom(16)
    pt = os.urandom(3 * CS + 1)
    blob = r3.write_v3(pt, signing_seed=seed, x25519_recipients=[r2.public_from_private(x)],
                       ephemeral_privates=[os.urandom(32)], symmetric_keys=[key],
                       stanza_salts=[os.urandom(32)], salt=os.urandom(32),
                       file_key=os.urandom(32), chunk_size=CS, metadata_raw=b'{"m":"1"}')
    path = tmp_path / "ref.mcx"
    path.write_bytes(blob)
    ident = modelcrypt.Identity.from_private_bytes(x)
    for trust in ([r3.encode_signer(P)], [P], [os.urandom(32), sk.public_key]):
        with modelcrypt.load(path, identity=ident, trusted_signers=trust) as buf:
            assert bytes(buf) == pt and dict(buf.metadata) == {"m": "1"}
        with modelcrypt.decrypt_bytes(blob, key, trusted_signers=trust) as buf:
            assert bytes(buf) == pt
    assert modelcrypt.verify_signature(path, trusted_signers=[P]) == r3.encode_signer(P)
    assert modelcrypt.parse_signer(modelcrypt.inspect(path).signer) == P


def test_modelcrypt_signed_default_chunk_size_large_file(tmp_path):
    """The default 1 MiB chunks, several of them, written in parallel: the reference agrees."""
    seed, sk, P = _signing_pair()
    key = os.urandom(32)
    pt = os.urandom(3 * 1024 * 1024 + 12345)
    src, dst = tmp_path / "big.bin", tmp_path / "big.mcx"
    src.write_bytes(pt)
    modelcrypt.encrypt_file(src, dst, key, signing_key=sk, metadata={"name": "big"})
    blob = dst.read_bytes()
    hdr = r3.parse_header(blob)
    assert hdr["chunk_size"] == 1024 * 1024 and hdr["chunk_count"] == 4
    assert r3.verify_keyless(blob, [P]) == P
    assert r3.read(blob, key, trusted_signers=[P]) == (pt, b'{"name":"big"}')


def test_modelcrypt_add_recipients_keeps_signature(tmp_path):
    """Recipients tools accept v3 and keep the core header, payload and trailer byte for byte."""
    _seed, sk, P = _signing_pair()
    key, x = os.urandom(32), os.urandom(32)
    alice = modelcrypt.Identity.from_private_bytes(x)
    pt = os.urandom(2 * CS + 3)
    path = tmp_path / "m.mcx"
    path.write_bytes(modelcrypt.encrypt_bytes(pt, key, chunk_size=CS, signing_key=sk))
    before = path.read_bytes()
    h0 = r3.parse_header(before)
    modelcrypt.add_recipients(path, key, [alice.recipient])
    after = path.read_bytes()
    h1 = r3.parse_header(after)
    assert after[:h0["core_header_length"]] == before[:h0["core_header_length"]]
    assert after[h1["header_length"]:] == before[h0["header_length"]:]
    assert r3.verify_keyless(after, [P]) == P
    assert r3.read(after, identity=x, trusted_signers=[P])[0] == pt
    # and the reference's rewrite (alice removed again) opens in modelcrypt with trust
    back = r3.rewrite_recipients(after, key, remove_fingerprints=[
        r2.fingerprint(r2.public_from_private(x))])
    with modelcrypt.decrypt_bytes(back, key, trusted_signers=[sk.public_key]) as buf:
        assert bytes(buf) == pt
    with pytest.raises(modelcrypt.KeyMismatchError):
        modelcrypt.decrypt_bytes(back, identity=alice, trusted_signers=[sk.public_key])
    # growing past R: modelcrypt copies the payload and the trailer behind a larger block
    many = [modelcrypt.Identity.from_private_bytes(os.urandom(32)).recipient for _ in range(25)]
    modelcrypt.add_recipients(path, key, many)
    grown = path.read_bytes()
    hg = r3.parse_header(grown)
    assert hg["recipients_length"] > h1["recipients_length"]
    assert grown[hg["header_length"]:] == before[h0["header_length"]:]
    assert r3.verify_keyless(grown, [P]) == P
    assert r3.read(grown, key, trusted_signers=[P])[0] == pt
    modelcrypt.remove_recipients(path, key, [alice.recipient])
    shrunk = path.read_bytes()
    assert shrunk[r3.parse_header(shrunk)["header_length"]:] == before[h0["header_length"]:]
    assert r3.verify_keyless(shrunk, [P]) == P
    with pytest.raises(r3.KeyMismatchError):
        r3.read(shrunk, identity=x, trusted_signers=[P])
