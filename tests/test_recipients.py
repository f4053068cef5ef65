"""Format v2: files encrypted to X25519 recipients (and symmetric keys), re-wrapping without
re-encryption, identities and recipients as text, against real OpenSSL and cryptography."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

import modelcrypt
from modelcrypt import _core

AGE = os.path.join(os.path.dirname(__file__), "interop", "age")


def _header_parts(blob: bytes) -> dict:
    m = struct.unpack_from("<I", blob, 24)[0]
    core = 128 + m
    r = struct.unpack_from("<I", blob, core)[0]
    return {"m": m, "core": core, "r": r, "h": core + 4 + r + 32}


@pytest.fixture()
def plaintext() -> bytes:
    return os.urandom(3 * 4096 + 17)


@pytest.mark.parametrize("count", [1, 2, 50])
def test_each_recipient_alone_opens(tmp_path, plaintext, count):
    ids = [modelcrypt.generate_identity() for _ in range(count)]
    src, dst = tmp_path / "m.bin", tmp_path / "m.mcx"
    src.write_bytes(plaintext)
    modelcrypt.encrypt_file(src, dst, recipients=[i.recipient for i in ids], chunk_size=4096)
    for ident in ids:
        with modelcrypt.load(dst, identity=ident) as buf:
            assert bytes(buf) == plaintext
    blob = dst.read_bytes()
    assert struct.unpack_from("<H", blob, 8)[0] == 2
    with modelcrypt.decrypt_bytes(blob, identity=ids[-1]) as buf:
        assert bytes(buf) == plaintext
    modelcrypt.verify(dst, identity=ids[0])
    with pytest.raises(modelcrypt.KeyMismatchError, match="no stanza"):
        modelcrypt.load(dst, identity=modelcrypt.generate_identity())
    info = modelcrypt.inspect(dst)
    assert [r["type"] for r in info.recipients] == ["x25519"] * count
    assert {r["fingerprint"] for r in info.recipients} == {modelcrypt.recipient_fingerprint(i.recipient) for i in ids}


def test_mixed_symmetric_and_x25519(tmp_path, plaintext):
    key, ident = modelcrypt.generate_key(), modelcrypt.generate_identity()
    blob = modelcrypt.encrypt_bytes(plaintext, key, recipients=[ident.recipient])
    with modelcrypt.decrypt_bytes(blob, key) as a, modelcrypt.decrypt_bytes(blob, identity=ident) as b:
        assert bytes(a) == bytes(b) == plaintext
    with pytest.raises(modelcrypt.KeyMismatchError):
        modelcrypt.decrypt_bytes(blob, modelcrypt.generate_key())
    only_x = modelcrypt.encrypt_bytes(plaintext, recipients=[ident])
    with pytest.raises(modelcrypt.KeyMismatchError, match="identity"):
        modelcrypt.decrypt_bytes(only_x, key)
    v1 = modelcrypt.encrypt_bytes(plaintext, key)
    with pytest.raises(modelcrypt.KeyMismatchError, match="v1"):
        modelcrypt.decrypt_bytes(v1, identity=ident)


def test_random_access_and_checkpoint_with_identity(tmp_path):
    np = pytest.importorskip("numpy")
    ident = modelcrypt.generate_identity()
    data = os.urandom(50000)
    path = tmp_path / "r.mcx"
    path.write_bytes(modelcrypt.encrypt_bytes(data, ident, chunk_size=4096))
    with modelcrypt.load_range(path, identity=ident, offset=12345, length=9000) as part:
        assert bytes(part) == data[12345:21345]
    with modelcrypt.open_encrypted(path, identity=ident) as f:
        assert f.plaintext_length == len(data)
    state = {"w": np.arange(12, dtype=np.float32)}
    ck = tmp_path / "ck.safetensors.mcx"
    modelcrypt.save_checkpoint(state, ck, ident)
    loaded = modelcrypt.load_checkpoint(ck, ident)
    assert (loaded["w"] == state["w"]).all()


def _split(path) -> tuple[bytes, bytes, dict]:
    """(header, payload, header parts) of a v2/v3 file: the payload is everything from H on (the
    chunks, and a v3 signature trailer). H as inspect reports it, checked against docs/FORMAT.md
    (H = 164 + M + R) computed from the raw bytes."""
    blob = path.read_bytes()
    hp = _header_parts(blob)
    info = modelcrypt.inspect(path)
    assert (info.header_length, info.recipients_length, info.file_length) == (hp["h"], hp["r"], len(blob))
    return blob[: hp["h"]], blob[hp["h"]:], hp


def _opens(path, credential, plaintext, **kw) -> None:
    kwargs = {"identity": credential} if isinstance(credential, modelcrypt.Identity) else {"key": credential}
    with modelcrypt.load(path, **kwargs, **kw) as buf:
        assert bytes(buf) == plaintext


@pytest.mark.parametrize("variant", ["x25519", "with_key", "signed"])
def test_add_remove_rewrites_header_only(tmp_path, variant):
    """In place (the block has room): the same file (inode) is rewritten, its size and header length
    stay, and every byte outside the recipients block and its MAC, [128+M, H), is unchanged: the core
    header, header MAC and the whole payload (chunks, v3 trailer) byte for byte."""
    plaintext = os.urandom(5 * 4096 + 123)  # 6 chunks
    a, b, c = (modelcrypt.generate_identity() for _ in range(3))
    key, team = modelcrypt.generate_key(), modelcrypt.generate_key()
    signer = modelcrypt.SigningKey.generate() if variant == "signed" else None
    src, path = tmp_path / "m.bin", tmp_path / "m.mcx"
    src.write_bytes(plaintext)
    modelcrypt.encrypt_file(src, path, key if variant == "with_key" else None, recipients=[a, b], chunk_size=4096,
                            signing_key=signer, metadata={"name": "header-only"})
    head0, payload0, hp = _split(path)
    inode, size = path.stat().st_ino, path.stat().st_size
    trust = {"trusted_signers": [signer.public_key]} if signer else {}

    def unchanged_outside_block(label):
        head, payload, hq = _split(path)
        assert path.stat().st_ino == inode and path.stat().st_size == size, label
        assert hq == hp, label  # same M, R and H
        assert payload == payload0, f"{label}: payload bytes changed"
        assert head[: hp["core"]] == head0[: hp["core"]], f"{label}: core header / header MAC changed"
        return head

    r = modelcrypt.add_recipients(path, identity=a, recipients=[c.recipient])
    assert r["in_place"] and r["added"] == 1
    head = unchanged_outside_block("add")
    assert head != head0  # the block did change: a new stanza, a new recipients MAC
    for ident in (a, b, c):
        _opens(path, ident, plaintext, **trust)
    if variant == "with_key":
        _opens(path, key, plaintext)
        r = modelcrypt.add_recipients(path, key, keys=[team])  # a symmetric stanza, opened by the key
        assert r["in_place"] and r["added"] == 1
        unchanged_outside_block("add key")
        _opens(path, team, plaintext)
    if signer:
        assert modelcrypt.verify_signature(path, [signer.public_key]) is not None

    r = modelcrypt.remove_recipients(path, identity=c, recipients=[a.recipient])
    assert r["in_place"] and r["removed"] == 1
    unchanged_outside_block("remove")
    with pytest.raises(modelcrypt.KeyMismatchError):
        modelcrypt.load(path, identity=a)
    for ident in (b, c):
        _opens(path, ident, plaintext, **trust)
    if variant == "with_key":
        r = modelcrypt.remove_recipients(path, identity=b, keys=[team])
        assert r["in_place"] and r["removed"] == 1
        unchanged_outside_block("remove key")
        with pytest.raises(modelcrypt.KeyMismatchError):
            modelcrypt.load(path, team)
        _opens(path, key, plaintext)
    with pytest.raises(ValueError, match="not a recipient"):
        modelcrypt.remove_recipients(path, identity=b, recipients=[a.recipient])
    if variant != "with_key":  # (with_key: the key's stanza would remain)
        with pytest.raises(ValueError, match="none"):
            modelcrypt.remove_recipients(path, identity=b, recipients=[b.recipient, c.recipient])
    unchanged_outside_block("refused removals")


def test_add_grows_header_and_copies_payload(tmp_path, plaintext):
    """No room in the block: the payload is copied behind a larger header, the same bytes shifted by
    exactly the growth of R; the core header is unchanged; old and new identities open it."""
    a = modelcrypt.generate_identity()
    path = tmp_path / "m.mcx"
    path.write_bytes(modelcrypt.encrypt_bytes(plaintext, recipients=[a], chunk_size=4096))
    head0, payload0, hp = _split(path)
    before = path.read_bytes()
    many = [modelcrypt.generate_identity() for _ in range(40)]
    r = modelcrypt.add_recipients(path, identity=a, recipients=[m.recipient for m in many])
    assert not r["in_place"] and r["stanzas"] == 41
    head, payload, hq = _split(path)
    assert hq["r"] > hp["r"] and hq["m"] == hp["m"]
    assert payload == payload0  # payload bytes unchanged, only moved ...
    assert path.stat().st_size - len(before) == hq["h"] - hp["h"] == hq["r"] - hp["r"]  # ... by the growth
    assert head[: hp["core"]] == head0[: hp["core"]]
    for ident in (a, many[0], many[-1]):
        _opens(path, ident, plaintext)
    # removing from the grown file is in place again: the header keeps its (larger) size
    inode = path.stat().st_ino
    r = modelcrypt.remove_recipients(path, identity=many[0], recipients=[m.recipient for m in many[1:]])
    assert r["in_place"] and r["stanzas"] == 2 and path.stat().st_ino == inode
    _, payload2, hr = _split(path)
    assert hr == hq and payload2 == payload0
    _opens(path, a, plaintext)
    with pytest.raises(modelcrypt.KeyMismatchError):
        modelcrypt.load(path, identity=many[-1])


@pytest.mark.parametrize("grow", [False, True])
def test_recipient_edits_never_read_the_payload(tmp_path, grow):
    """A file whose payload is corrupt (one ciphertext byte flipped) still takes and drops recipients:
    nothing is decrypted or re-encrypted (a re-encryption would fail authentication); the corrupt
    payload is kept byte for byte (in place, or shifted behind a grown header), and every identity,
    old and new, still gets AuthenticationError from it while the header authenticates."""
    plaintext = os.urandom(4 * 4096)
    a = modelcrypt.generate_identity()
    path = tmp_path / "m.mcx"
    path.write_bytes(modelcrypt.encrypt_bytes(plaintext, recipients=[a], chunk_size=4096))
    _, _, hp = _split(path)
    blob = bytearray(path.read_bytes())
    blob[hp["h"] + 2 * (4096 + 16) + 100] ^= 0x01  # inside chunk 2's ciphertext
    path.write_bytes(blob)
    _, payload0, _ = _split(path)
    new = [modelcrypt.generate_identity() for _ in range(40 if grow else 1)]
    r = modelcrypt.add_recipients(path, identity=a, recipients=[n.recipient for n in new])
    assert r["in_place"] is not grow
    _, payload, hq = _split(path)
    assert payload == payload0 and (hq["h"] > hp["h"]) is grow
    r = modelcrypt.remove_recipients(path, identity=new[0], recipients=[a.recipient])
    assert r["in_place"]
    assert _split(path)[1] == payload0
    info = modelcrypt.inspect(path, identity=new[-1])  # the header authenticates (no chunk read)
    assert info.authenticated and len(info.recipients) == len(new)
    for ident in (new[0], new[-1]):
        with pytest.raises(modelcrypt.AuthenticationError):
            modelcrypt.load(path, identity=ident)
    with pytest.raises(modelcrypt.KeyMismatchError):
        modelcrypt.load(path, identity=a)


def test_v1_file_cannot_take_recipients(tmp_path, plaintext):
    key = modelcrypt.generate_key()
    path = tmp_path / "v1.mcx"
    path.write_bytes(modelcrypt.encrypt_bytes(plaintext, key))
    ident = modelcrypt.generate_identity()
    with pytest.raises(ValueError, match="v1"):
        modelcrypt.add_recipients(path, key, [ident.recipient])
    with modelcrypt.open_encrypted(path, key) as f:  # the way from v1 to recipients: re-encrypt, no plaintext on disk
        f.reencrypt_to(tmp_path / "v2.mcx", recipients=[ident.recipient])
    with modelcrypt.load(tmp_path / "v2.mcx", identity=ident) as buf:
        assert bytes(buf) == plaintext


def _flip(blob: bytes, at: int) -> bytes:
    b = bytearray(blob)
    b[at] ^= 0x01
    return bytes(b)


def test_tamper_matrix_v2_header(plaintext):
    ident, key = modelcrypt.generate_identity(), modelcrypt.generate_key()
    blob = modelcrypt.encrypt_bytes(plaintext, key, recipients=[ident], metadata={"k": "v"}, chunk_size=4096)
    hp = _header_parts(blob)
    block = hp["core"] + 4
    stanza0 = block + 4  # symmetric stanza first
    stanza1 = stanza0 + 4 + 80  # then the X25519 one
    cases = {
        "metadata": (96, modelcrypt.AuthenticationError),
        "header_mac": (hp["core"] - 1, modelcrypt.AuthenticationError),
        "recipients_length": (hp["core"] + 1, modelcrypt.FormatError),
        "stanza_count": (block, modelcrypt.AuthenticationError),  # 3: an empty unknown stanza read from the padding
        "block_reserved": (block + 2, modelcrypt.FormatError),
        "stanza_type_reserved": (stanza1 + 1, modelcrypt.FormatError),
        "stanza_body_length": (stanza1 + 2, modelcrypt.FormatError),
        "fingerprint": (stanza1 + 4, modelcrypt.KeyMismatchError),
        "ephemeral": (stanza1 + 4 + 16, modelcrypt.AuthenticationError),
        "wrapped": (stanza1 + 4 + 48, modelcrypt.AuthenticationError),
        "padding": (hp["h"] - 33, modelcrypt.FormatError),
        "recipients_mac": (hp["h"] - 1, modelcrypt.AuthenticationError),
        "salt": (40, modelcrypt.AuthenticationError),  # the wrap's AAD: the stanza no longer unwraps
        "payload": (hp["h"] + 5, modelcrypt.AuthenticationError),
    }
    for name, (at, error) in cases.items():
        with pytest.raises(error):
            modelcrypt.decrypt_bytes(_flip(blob, at), identity=ident)
            pytest.fail(name)
    for count in (0, 1025):
        bad = blob[:block] + struct.pack("<H", count) + blob[block + 2:]
        with pytest.raises(modelcrypt.FormatError, match="stanza count"):
            modelcrypt.decrypt_bytes(bad, identity=ident)
        with pytest.raises(modelcrypt.FormatError):
            modelcrypt.inspect_bytes(bad) if hasattr(modelcrypt, "inspect_bytes") else _core_inspect(bad)
    # the symmetric stanza tampered: that key no longer opens it, the identity still checks the MAC
    with pytest.raises(modelcrypt.KeyMismatchError):
        modelcrypt.decrypt_bytes(_flip(blob, stanza0 + 4 + 40), key)
    with pytest.raises(modelcrypt.AuthenticationError):
        modelcrypt.decrypt_bytes(_flip(blob, stanza0 + 4 + 40), identity=ident)
    with pytest.raises(modelcrypt.AuthenticationError):
        modelcrypt.decrypt_bytes(blob[:-1], identity=ident)
    # a stanza copied from another file (same recipient) does not unwrap here (AAD = file salt)
    other = modelcrypt.encrypt_bytes(plaintext, key, recipients=[ident], metadata={"k": "v"}, chunk_size=4096)
    spliced = blob[:stanza1] + other[stanza1:stanza1 + 100] + blob[stanza1 + 100:]
    with pytest.raises(modelcrypt.AuthenticationError):
        modelcrypt.decrypt_bytes(spliced, identity=ident)


def _core_inspect(blob: bytes) -> None:
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".mcx") as f:
        f.write(blob)
        f.flush()
        modelcrypt.inspect(f.name)


def test_low_order_recipient_refused():
    with pytest.raises(ValueError, match="low-order"):
        modelcrypt.encrypt_bytes(b"x", recipients=[bytes(32)])


def test_x25519_derivation_matches_cryptography(plaintext):
    """An independent unwrap of the X25519 stanza with `cryptography` (FORMAT.md, version 2)."""
    ident = modelcrypt.generate_identity()
    blob = modelcrypt.encrypt_bytes(plaintext, recipients=[ident], chunk_size=4096)
    hp = _header_parts(blob)
    body = blob[hp["core"] + 4 + 4 + 4:][:96]
    fp, eph, wrapped = body[:16], body[16:48], body[48:96]
    pub = ident.public_key
    assert fp == hashlib.sha256(b"modelcrypt v2 x25519 fingerprint" + pub).digest()[:16]
    secret = ident.secret_text()
    priv = X25519PrivateKey.from_private_bytes(_core.X25519Identity.from_text(secret, "t").public_key and _bech32_data(bytes(secret).decode()))
    assert priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) == pub
    shared = priv.exchange(X25519PublicKey.from_public_bytes(eph))
    wrap_key = HKDF(hashes.SHA256(), 32, eph + pub, b"modelcrypt v2 x25519 wrap").derive(shared)
    salt = blob[32:64]
    fk = AESGCM(wrap_key).decrypt(bytes(12), wrapped, salt)
    prk = hmac.new(salt, fk, hashlib.sha256).digest()
    commitment = hmac.new(prk, b"modelcrypt v1 key commitment\x01", hashlib.sha256).digest()
    assert commitment == blob[64:96]
    rmac_key = hmac.new(prk, b"modelcrypt v2 recipients mac\x01", hashlib.sha256).digest()
    m = hp["m"]
    assert hmac.new(rmac_key, blob[96 + m: hp["h"] - 32], hashlib.sha256).digest() == blob[hp["h"] - 32: hp["h"]]


_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _bech32_data(text: str) -> bytes:
    text = text.strip().lower()
    data = [_CHARSET.index(c) for c in text[text.rindex("1") + 1:]][:-6]
    acc, bits, out = 0, 0, bytearray()
    for v in data:
        acc, bits = (acc << 5) | v, bits + 5
        if bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
    return bytes(out)


def test_age_keys_are_identities_and_recipients(tmp_path, plaintext):
    alice = modelcrypt.read_identity_file(os.path.join(AGE, "alice.identity"))
    alice_pub = open(os.path.join(AGE, "alice.pub.txt")).read().strip()
    assert _core.parse_recipient(alice_pub) == alice.public_key
    blob = modelcrypt.encrypt_bytes(plaintext, recipients=[alice_pub, open(os.path.join(AGE, "bob.pub.txt")).read().strip()])
    with modelcrypt.decrypt_bytes(blob, identity=alice) as buf:
        assert bytes(buf) == plaintext
    bob = modelcrypt.read_identity_file(os.path.join(AGE, "bob.identity"))
    with modelcrypt.decrypt_bytes(blob, identity=bob) as buf:
        assert bytes(buf) == plaintext
    # The identity decoding agrees with age itself: unwrap the age file's X25519 stanza per the age spec.
    age = open(os.path.join(AGE, "alice_only.age"), "rb").read()
    lines = age.split(b"\n")
    stanza = lines[1].split(b" ")
    assert stanza[:2] == [b"->", b"X25519"]
    b64 = lambda s: base64.b64decode(s + b"=" * (-len(s) % 4))  # noqa: E731
    eph, body = b64(stanza[2]), b64(lines[2])
    priv = X25519PrivateKey.from_private_bytes(_bech32_data(open(os.path.join(AGE, "alice.identity")).read().splitlines()[-1]))
    shared = priv.exchange(X25519PublicKey.from_public_bytes(eph))
    wrap = HKDF(hashes.SHA256(), 32, eph + alice.public_key, b"age-encryption.org/v1/X25519").derive(shared)
    file_key = ChaCha20Poly1305(wrap).decrypt(bytes(12), body, None)
    mac_line = next(i for i, l in enumerate(lines) if l.startswith(b"---"))
    header = b"\n".join(lines[:mac_line]) + b"\n---"
    mac_key = HKDF(hashes.SHA256(), 32, b"", b"header").derive(file_key)
    assert base64.b64encode(hmac.new(mac_key, header, hashlib.sha256).digest()).rstrip(b"=") == lines[mac_line][4:]


def _open_age(blob: bytes, priv: X25519PrivateKey, public_key: bytes) -> tuple[int, bytes]:
    """Per the age spec (C2SP): unwrap the one X25519 stanza of ``blob`` that ``priv`` opens, check the
    header MAC and decrypt the payload. Returns (index of the stanza that opened, plaintext)."""
    header, _, payload = blob.partition(b"\n--- ")
    mac_b64, _, payload = payload.partition(b"\n")
    lines = header.split(b"\n")
    assert lines[0] == b"age-encryption.org/v1"
    b64 = lambda s: base64.b64decode(s + b"=" * (-len(s) % 4))  # noqa: E731
    opened = []
    for index, i in enumerate(range(1, len(lines), 2)):
        stanza = lines[i].split(b" ")
        assert stanza[:2] == [b"->", b"X25519"]
        eph = b64(stanza[2])
        wrap = HKDF(hashes.SHA256(), 32, eph + public_key, b"age-encryption.org/v1/X25519").derive(
            priv.exchange(X25519PublicKey.from_public_bytes(eph)))
        try:
            opened.append((index, ChaCha20Poly1305(wrap).decrypt(bytes(12), b64(lines[i + 1]), None)))
        except Exception:  # cryptography's InvalidTag: a stanza for another recipient
            continue
    assert len(opened) == 1, f"{len(opened)} stanzas opened"
    index, file_key = opened[0]
    mac_key = HKDF(hashes.SHA256(), 32, b"", b"header").derive(file_key)
    assert base64.b64encode(hmac.new(mac_key, header + b"\n---", hashlib.sha256).digest()).rstrip(b"=") == mac_b64
    nonce, ct = payload[:16], payload[16:]
    payload_key = HKDF(hashes.SHA256(), 32, nonce, b"payload").derive(file_key)
    return index, ChaCha20Poly1305(payload_key).decrypt(bytes(11) + b"\x01", ct, None)  # one last chunk


@pytest.mark.filterwarnings("ignore::modelcrypt.InsecureKeyFileWarning")  # the fixtures are checked in 0644
@pytest.mark.parametrize("name, stanzas", [("alice", 2), ("bob", 2), ("alice", 1)])
def test_age_files_open_with_the_identities_modelcrypt_reads(name, stanzas):
    """age's own files (age 1.1.1: alice_only.age, two_recipients.age to Alice and Bob) open, per the
    age spec, with the private key modelcrypt decodes from the age-keygen file and the public key it
    derives: each identity opens exactly its own stanza, and the MAC and payload check."""
    ident = modelcrypt.read_identity_file(os.path.join(AGE, f"{name}.identity"))
    secret = ident.secret_text()
    try:
        priv = X25519PrivateKey.from_private_bytes(_bech32_data(bytes(secret).decode()))
    finally:
        modelcrypt.wipe(secret)
    assert priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) == ident.public_key
    pub_text = open(os.path.join(AGE, f"{name}.pub.txt")).read().strip()
    assert modelcrypt.recipient_fingerprint(pub_text) == modelcrypt.recipient_fingerprint(ident.recipient)
    blob = open(os.path.join(AGE, "two_recipients.age" if stanzas == 2 else "alice_only.age"), "rb").read()
    assert blob.count(b"\n-> X25519 ") == stanzas
    index, plain = _open_age(blob, priv, ident.public_key)
    assert plain == open(os.path.join(AGE, "plain.bin"), "rb").read()
    assert hashlib.sha256(plain).hexdigest() == "d660d8b53ba2e163763072ce35312cacf3bcd47901b6ca42994a201a2a951dec"
    if stanzas == 2:  # Alice's and Bob's stanzas are different ones
        other = "bob" if name == "alice" else "alice"
        other_ident = modelcrypt.read_identity_file(os.path.join(AGE, f"{other}.identity"))
        other_secret = other_ident.secret_text()
        try:
            other_priv = X25519PrivateKey.from_private_bytes(_bech32_data(bytes(other_secret).decode()))
        finally:
            modelcrypt.wipe(other_secret)
        assert _open_age(blob, other_priv, other_ident.public_key)[0] != index


def test_identity_text_round_trip_and_errors(tmp_path):
    ident = modelcrypt.generate_identity()
    assert ident.recipient.startswith("modelcrypt1")
    assert "SECRET" not in repr(ident)
    path = tmp_path / "dev.identity"
    modelcrypt.write_identity_file(path, ident)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert modelcrypt.read_identity_file(path).public_key == ident.public_key
    with pytest.raises(FileExistsError):
        modelcrypt.write_identity_file(path, modelcrypt.generate_identity())
    text = bytes(ident.secret_text()).decode()
    bad = text[:-1] + ("Q" if text[-1] != "Q" else "P")
    with pytest.raises(ValueError, match="checksum") as err:
        _core.X25519Identity.from_text(bad.encode(), "x")
    assert text[25:] not in str(err.value)
    with pytest.raises(ValueError, match="checksum"):
        _core.parse_recipient(ident.recipient[:-1] + ("q" if ident.recipient[-1] != "q" else "p"))
    with pytest.raises(ValueError, match="identity"):
        _core.parse_recipient(text)
    with pytest.raises(TypeError):
        import pickle
        pickle.dumps(ident)


def test_inspect_with_an_identity_or_key_authenticates_the_header(tmp_path, plaintext):
    ident, other, key = modelcrypt.generate_identity(), modelcrypt.generate_identity(), modelcrypt.generate_key()
    src, dst = tmp_path / "m.bin", tmp_path / "m.mcx"
    src.write_bytes(plaintext)
    modelcrypt.encrypt_file(src, dst, key, recipients=[other.recipient, ident.recipient], chunk_size=4096,
                            metadata={"model": "tiny"})
    keyless = modelcrypt.inspect(dst)
    assert not keyless.authenticated and keyless.opened_by is None
    info = modelcrypt.inspect(dst, identity=ident)
    assert info.authenticated and info.opened_by == f"x25519 {modelcrypt.recipient_fingerprint(ident.recipient)}"
    for field in ("version", "plaintext_length", "chunk_size", "header_length", "salt", "key_commitment",
                  "metadata_raw", "recipients", "recipients_length", "file_length"):
        assert getattr(info, field) == getattr(keyless, field), field
    assert info.metadata == {"model": "tiny"}
    assert modelcrypt.inspect(dst, ident).opened_by == info.opened_by  # an identity passed as the key
    assert modelcrypt.inspect(dst, key).opened_by == "symmetric"
    with pytest.raises(modelcrypt.KeyMismatchError, match="identity"):
        modelcrypt.inspect(dst, identity=modelcrypt.generate_identity())
    with pytest.raises(modelcrypt.KeyMismatchError):
        modelcrypt.inspect(dst, modelcrypt.generate_key())
    with pytest.raises(TypeError, match="not both"):
        modelcrypt.inspect(dst, key, identity=ident)
    # A modified header (the metadata, which keyless inspect shows as it finds it) fails authentication.
    blob = bytearray(dst.read_bytes())
    at = bytes(blob).index(b"tiny")
    blob[at] ^= 0x01
    dst.write_bytes(blob)
    assert modelcrypt.inspect(dst).metadata == {"model": "uiny"}
    with pytest.raises(modelcrypt.AuthenticationError):
        modelcrypt.inspect(dst, identity=ident)
    v1 = tmp_path / "v1.mcx"
    modelcrypt.encrypt_file(src, v1, key)
    assert modelcrypt.inspect(v1, key).opened_by == "key"
    with pytest.raises(ValueError, match="mindspore"):
        modelcrypt.inspect(os.path.join(os.path.dirname(__file__), "interop", "mindspore", "b_gcm16.ckpt"), key)
