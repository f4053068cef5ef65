"""Independent reference implementation of modelcrypt format version 2 (recipients).

Written from docs/FORMAT.md ("Format version 2: files encrypted to recipients") only,
never from the C++ core, with nothing but ``cryptography`` and the standard library.
Version 1 lives in tests/reference_format.py (unchanged); this module imports it.

Public API
----------
write_v2(plaintext, *, x25519_recipients, symmetric_keys, salt, file_key,
         ephemeral_privates, stanza_salts, chunk_size, metadata_raw, room) -> bytes
read(data, key=None, *, identity=None) -> (plaintext, metadata_raw)   v1 and v2
parse_header(data) -> dict                  v1: steps 1-5; v2: steps 1-6 (no key)
rewrite_recipients(data, key=None, *, identity=None, add_x25519, add_symmetric,
                   remove_fingerprints, remove_symmetric_keys, ...) -> bytes
fingerprint(public_key) -> bytes (16)
X25519Identity(private_key)                 wrapper usable as ``key_or_identity``
Bech32: bech32_encode / bech32_decode, encode_recipient / encode_identity,
        decode_recipient / decode_identity (modelcrypt and age forms)

This is a test oracle: clarity over speed.  A real writer draws every random input
from a CSPRNG; taking them as parameters is what makes the vectors deterministic.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

import reference_format as v1
from reference_format import (  # noqa: F401  (re-exported)
    AuthenticationError, FormatError, KeyMismatchError, UnsupportedVersionError,
)

VERSION2 = 2
CORE_FIXED = v1.FIXED_HEADER_LEN          # 96
MIN_R = 4
MAX_R = 262144
MAX_STANZAS = 1024
TYPE_X25519 = 1
TYPE_SYMMETRIC = 2
X25519_BODY_LEN = 96
SYMMETRIC_BODY_LEN = 80
FK_LEN = 32
ZERO_NONCE = bytes(12)

INFO_RECIPIENTS_MAC = b"modelcrypt v2 recipients mac"
INFO_X25519_WRAP = b"modelcrypt v2 x25519 wrap"
INFO_SYMMETRIC_WRAP = b"modelcrypt v2 symmetric wrap"
FINGERPRINT_PREFIX = b"modelcrypt v2 x25519 fingerprint"
assert (len(INFO_RECIPIENTS_MAC), len(INFO_X25519_WRAP), len(INFO_SYMMETRIC_WRAP),
        len(FINGERPRINT_PREFIX)) == (28, 25, 28, 32)


# --------------------------------------------------------------------------- X25519 helpers

class X25519Identity:
    """A 32-byte X25519 private key, passed to read() to open v2 files as a recipient."""

    def __init__(self, private_key: bytes):
        private_key = bytes(private_key)
        if len(private_key) != 32:
            raise ValueError("X25519 private key must be 32 bytes")
        self.private_key = private_key

    @property
    def public_key(self) -> bytes:
        return public_from_private(self.private_key)

    def __repr__(self) -> str:  # never show the key
        return f"X25519Identity(fingerprint={fingerprint(self.public_key).hex()})"


def public_from_private(private_key: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(bytes(private_key)).public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw)


def x25519(private_key: bytes, public_key: bytes) -> bytes:
    """Raw X25519(k, u). Returns 32 zero bytes for a low-order u (cryptography raises)."""
    try:
        return X25519PrivateKey.from_private_bytes(bytes(private_key)).exchange(
            X25519PublicKey.from_public_bytes(bytes(public_key)))
    except ValueError:  # OpenSSL refuses an all-zero shared secret
        return bytes(32)


def fingerprint(public_key: bytes) -> bytes:
    public_key = bytes(public_key)
    if len(public_key) != 32:
        raise ValueError("X25519 public key must be 32 bytes")
    return hashlib.sha256(FINGERPRINT_PREFIX + public_key).digest()[:16]


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def derive_keys_v2(file_key: bytes, salt: bytes) -> dict:
    """v1 keys from FK (the v1 schedule accepts a 32-byte IKM) + recipients_mac_key."""
    keys = v1.derive_keys(file_key, salt)
    keys["recipients_mac_key"] = HKDFExpand(
        algorithm=hashes.SHA256(), length=32, info=INFO_RECIPIENTS_MAC).derive(keys["prk"])
    return keys


def x25519_wrap_key(shared: bytes, ephemeral_public: bytes, recipient_public: bytes) -> bytes:
    return _hkdf(shared, ephemeral_public + recipient_public, INFO_X25519_WRAP)


def symmetric_wrap_key(master_key: bytes, stanza_salt: bytes) -> bytes:
    return _hkdf(v1._check_key(master_key), stanza_salt, INFO_SYMMETRIC_WRAP)


def make_x25519_stanza(recipient_public: bytes, ephemeral_private: bytes, file_key: bytes,
                       file_salt: bytes) -> bytes:
    E = public_from_private(ephemeral_private)
    S = x25519(ephemeral_private, recipient_public)
    if S == bytes(32):
        raise ValueError("low-order recipient public key (shared secret is all zero)")
    wrapped = AESGCM(x25519_wrap_key(S, E, recipient_public)).encrypt(ZERO_NONCE, file_key, file_salt)
    body = fingerprint(recipient_public) + E + wrapped
    return struct.pack("<BBH", TYPE_X25519, 0, len(body)) + body


def make_symmetric_stanza(master_key: bytes, stanza_salt: bytes, file_key: bytes,
                          file_salt: bytes) -> bytes:
    if len(stanza_salt) != 32:
        raise ValueError("stanza salt must be 32 bytes")
    wrapped = AESGCM(symmetric_wrap_key(master_key, stanza_salt)).encrypt(
        ZERO_NONCE, file_key, file_salt)
    body = bytes(stanza_salt) + wrapped
    return struct.pack("<BBH", TYPE_SYMMETRIC, 0, len(body)) + body


def default_room(used: int) -> int:
    """Writer rule: R = 1024 * ceil(used / 1024) + 1024."""
    return 1024 * math.ceil(used / 1024) + 1024


def build_block(stanzas: list[bytes], room: int | None = None) -> bytes:
    """The recipients block (N, reserved, stanzas, zero padding); len == R."""
    body = struct.pack("<HH", len(stanzas), 0) + b"".join(stanzas)
    R = default_room(len(body)) if room is None else room
    if R < len(body):
        raise ValueError(f"room {R} smaller than the stanzas ({len(body)} bytes)")
    return body + bytes(R - len(body))


def recipients_mac(recipients_mac_key: bytes, covered: bytes) -> bytes:
    """HMAC over file[96+M : 132+M+R] (header_mac || R || block)."""
    return v1.header_mac(recipients_mac_key, covered)


def assemble(core_header: bytes, block: bytes, recipients_mac_key: bytes) -> bytes:
    """core header (file[0:128+M]) + R + block + recipients_mac."""
    covered = core_header[-v1.MAC_LEN:] + struct.pack("<I", len(block)) + block
    return core_header + covered[v1.MAC_LEN:] + recipients_mac(recipients_mac_key, covered)


# --------------------------------------------------------------------------- writer

def write_v2(plaintext: bytes, *, x25519_recipients=(), symmetric_keys=(), salt: bytes,
             file_key: bytes, ephemeral_privates=(), stanza_salts=(),
             chunk_size: int = v1.DEFAULT_CHUNK_SIZE, metadata_raw: bytes = b"",
             room: int | None = None, extra_stanzas=(), version: int = VERSION2) -> bytes:
    """Encrypt to recipients. X25519 stanzas first (in order), then symmetric, then extra_stanzas
    (raw stanza bytes, e.g. of an unknown type).  ``version`` = 3 gives the unsigned body of a
    version 3 file (tests/reference_format_v3.py appends the signature trailer)."""
    x25519_recipients, symmetric_keys = list(x25519_recipients), list(symmetric_keys)
    if len(ephemeral_privates) != len(x25519_recipients):
        raise ValueError("one ephemeral private key per X25519 recipient")
    if len(stanza_salts) != len(symmetric_keys):
        raise ValueError("one stanza salt per symmetric key")
    if len(file_key) != FK_LEN:
        raise ValueError("file key must be 32 bytes")
    stanzas = [make_x25519_stanza(P, e, file_key, salt)
               for P, e in zip(x25519_recipients, ephemeral_privates)]
    stanzas += [make_symmetric_stanza(K, s, file_key, salt)
                for K, s in zip(symmetric_keys, stanza_salts)]
    stanzas += [bytes(s) for s in extra_stanzas]
    if not 1 <= len(stanzas) <= MAX_STANZAS:
        raise ValueError("a v2 file has 1 to 1024 stanzas")
    plaintext, metadata_raw = bytes(plaintext), bytes(metadata_raw)
    v1.write(b"", file_key, salt=salt, chunk_size=chunk_size, metadata_raw=metadata_raw)  # checks
    keys = derive_keys_v2(file_key, salt)
    L, cs = len(plaintext), chunk_size
    head = v1.build_header(chunk_size=cs, plaintext_length=L, metadata_raw=metadata_raw, salt=salt,
                           key_commitment=keys["key_commitment"], version=version)
    mac = v1.header_mac(keys["mac_key"], head)
    n = v1.chunk_count(L, cs)
    chunks = [v1.encrypt_chunk(keys["payload_key"], i, i == n - 1, mac,
                               plaintext[i * cs:(i + 1) * cs]) for i in range(n)]
    block = build_block(stanzas, room)
    return assemble(head + mac, block, keys["recipients_mac_key"]) + b"".join(chunks)


# --------------------------------------------------------------------------- keyless parsing

def _parse_block(block: bytes) -> list[dict]:
    """Step 6. Returns [{type, reserved, offset, raw, body, fingerprint?, ...}]."""
    N, reserved = struct.unpack_from("<HH", block, 0)
    if N == 0 or N > MAX_STANZAS:
        raise FormatError(f"step 6: stanza count {N} out of range 1..1024")
    if reserved != 0:
        raise FormatError("step 6: recipients block reserved field is not zero")
    pos, stanzas = 4, []
    for k in range(N):
        if pos + 4 > len(block):
            raise FormatError(f"step 6: stanza {k} runs past the recipients block")
        typ, res, B = struct.unpack_from("<BBH", block, pos)
        if res != 0:
            raise FormatError(f"step 6: stanza {k} reserved field is not zero")
        if pos + 4 + B > len(block):
            raise FormatError(f"step 6: stanza {k} runs past the recipients block")
        if typ == TYPE_X25519 and B != X25519_BODY_LEN:
            raise FormatError(f"step 6: X25519 stanza {k} body length {B} != 96")
        if typ == TYPE_SYMMETRIC and B != SYMMETRIC_BODY_LEN:
            raise FormatError(f"step 6: symmetric stanza {k} body length {B} != 80")
        body = bytes(block[pos + 4:pos + 4 + B])
        st = {"type": {1: "x25519", 2: "symmetric"}.get(typ, "unknown"), "type_byte": typ,
              "raw": bytes(block[pos:pos + 4 + B]), "body": body, "fingerprint": None}
        if typ == TYPE_X25519:
            st.update(fingerprint=body[:16].hex(), ephemeral=body[16:48], wrapped=body[48:])
        elif typ == TYPE_SYMMETRIC:
            st.update(stanza_salt=body[:32], wrapped=body[32:])
        stanzas.append(st)
        pos += 4 + B
    if any(block[pos:]):
        raise FormatError("step 6: recipients block padding is not zero")
    return stanzas


def parse_header(data: bytes) -> dict:
    """v1 file: v1 steps 1-5.  v2 file: steps 1-6 (no key).  Other versions: step 3 error.

    v2 adds: recipients_length, stanzas, recipients_mac, core_header_length (128+M);
    header_length is H = 164 + M + R.
    """
    data = bytes(data)
    if len(data) >= CORE_FIXED and data[:8] == v1.MAGIC and \
            struct.unpack_from("<H", data, 8)[0] == VERSION2:
        patched = bytearray(data[:CORE_FIXED])
        struct.pack_into("<H", patched, 8, v1.VERSION)  # reuse v1 steps 1-4 verbatim
        try:
            hdr = v1.parse_header(bytes(patched) + data[CORE_FIXED:])
        except FormatError as e:
            if str(e) == "truncated header":   # v1 step 5; v2 reports it as step 5 below
                hdr = None
            else:
                raise
        M = struct.unpack_from("<I", data, 24)[0]
        # 5. core header + R field, R bounds, whole header
        if hdr is None or len(data) < 132 + M:
            raise FormatError("step 5: truncated header")
        R = struct.unpack_from("<I", data, 128 + M)[0]
        if R < MIN_R or R > MAX_R:
            raise FormatError(f"step 5: recipients_length {R} out of range 4..262144")
        H = 164 + M + R
        if len(data) < H:
            raise FormatError("step 5: truncated header (recipients block)")
        stanzas = _parse_block(data[132 + M:132 + M + R])  # 6
        hdr.update(version=VERSION2, core_header_length=128 + M, recipients_length=R,
                   stanzas=stanzas, recipients_mac=bytes(data[132 + M + R:H]),
                   header_length=H,
                   expected_file_length=v1.expected_file_length(
                       H, hdr["plaintext_length"], hdr["chunk_size"]))
        return hdr
    return v1.parse_header(data)


def list_recipients(data: bytes) -> list[dict]:
    """Keyless listing: [{type, fingerprint}] as `modelcrypt.inspect(...).recipients`."""
    return [{"type": s["type"], "fingerprint": s["fingerprint"]}
            for s in parse_header(data)["stanzas"]]


# --------------------------------------------------------------------------- reader

def _unwrap(wrap_key: bytes, wrapped: bytes, file_salt: bytes) -> bytes | None:
    try:
        return AESGCM(wrap_key).decrypt(ZERO_NONCE, wrapped, file_salt)
    except InvalidTag:
        return None


def find_file_key(hdr: dict, key: bytes | None = None, identity=None) -> bytes:
    """Step 7 (v2 only)."""
    salt = hdr["salt"]
    if identity is not None:
        x = identity.private_key if isinstance(identity, X25519Identity) else bytes(identity)
        P = public_from_private(x)
        fp = fingerprint(P).hex()
        candidates = [s for s in hdr["stanzas"] if s["type"] == "x25519" and s["fingerprint"] == fp]
        if not candidates:
            raise KeyMismatchError("step 7: no stanza matches this identity")
        for s in candidates:
            S = x25519(x, s["ephemeral"])
            if S == bytes(32):
                continue
            fk = _unwrap(x25519_wrap_key(S, s["ephemeral"], P), s["wrapped"], salt)
            if fk is not None:
                return fk
        raise AuthenticationError("step 7: the stanza for this identity does not unwrap")
    key = v1._check_key(key)
    for s in hdr["stanzas"]:
        if s["type"] == "symmetric":
            fk = _unwrap(symmetric_wrap_key(key, s["stanza_salt"]), s["wrapped"], salt)
            if fk is not None:
                return fk
    raise KeyMismatchError("step 7: no symmetric stanza unwraps with this key")


def _split_credential(key_or_identity, identity):
    if isinstance(key_or_identity, X25519Identity):
        return None, key_or_identity
    return key_or_identity, identity


def open_header(data: bytes, key_or_identity=None, *, identity=None) -> tuple[dict, bytes, dict]:
    """v2 steps 1-10. Returns (hdr, file_key, keys)."""
    key, identity = _split_credential(key_or_identity, identity)
    hdr = parse_header(data)                     # 1-6
    if hdr["version"] != VERSION2:
        raise ValueError("not a version 2 file")
    fk = find_file_key(hdr, key, identity)       # 7
    keys = derive_keys_v2(fk, hdr["salt"])
    M = hdr["metadata_length"]
    if not hmac.compare_digest(keys["key_commitment"], hdr["key_commitment"]):
        raise AuthenticationError("step 8: key commitment mismatch (stanza of another file)")
    if not hmac.compare_digest(v1.header_mac(keys["mac_key"], data[:CORE_FIXED + M]),
                               hdr["header_mac"]):
        raise AuthenticationError("step 9: header authentication failed")
    covered = data[CORE_FIXED + M:132 + M + hdr["recipients_length"]]
    if not hmac.compare_digest(recipients_mac(keys["recipients_mac_key"], covered),
                               hdr["recipients_mac"]):
        raise AuthenticationError("step 10: recipients block authentication failed")
    return hdr, fk, keys


def read(data: bytes, key_or_identity=None, *, identity=None) -> tuple[bytes, bytes]:
    """Full reader for v1 and v2. Returns (plaintext, metadata_raw)."""
    data = bytes(data)
    key, identity = _split_credential(key_or_identity, identity)
    hdr = parse_header(data)
    if hdr["version"] != VERSION2:
        if identity is not None:
            raise KeyMismatchError("step 7: a version 1 file has no stanzas; it opens only with "
                                   "its master key")
        return v1.read(data, key)
    hdr, _fk, keys = open_header(data, key, identity=identity)   # 1-10
    if len(data) != hdr["expected_file_length"]:
        raise AuthenticationError(f"step 11: file length {len(data)} != expected "
                                  f"{hdr['expected_file_length']}")
    H, cs, L, n = hdr["header_length"], hdr["chunk_size"], hdr["plaintext_length"], hdr["chunk_count"]
    parts = []
    for i in range(n):                                              # 12
        off = v1.chunk_offset(i, H, cs)
        p = v1.chunk_plain_length(i, L, cs)
        try:
            parts.append(v1.decrypt_chunk(keys["payload_key"], i, i == n - 1, hdr["header_mac"],
                                          data[off:off + p + v1.TAG_LEN]))
        except InvalidTag:
            raise AuthenticationError(f"step 12: chunk {i} failed authentication") from None
    return b"".join(parts), hdr["metadata_raw"]


# --------------------------------------------------------------------------- add / remove

def rewrite_recipients(data: bytes, key_or_identity=None, *, identity=None, add_x25519=(),
                       ephemeral_privates=(), add_symmetric=(), stanza_salts=(),
                       remove_fingerprints=(), remove_symmetric_keys=(),
                       room: int | None = None) -> bytes:
    """Return the file with a new recipients block and MAC; core header and payload unchanged.

    Kept stanzas (including unknown types) stay in order; new X25519 then symmetric stanzas are
    appended.  R stays the same when the new stanzas fit (room=None), else the writer rule.
    """
    data = bytes(data)
    hdr, fk, keys = open_header(data, key_or_identity, identity=identity)
    return rebuild_recipients(data, hdr, fk, keys, add_x25519=add_x25519,
                              ephemeral_privates=ephemeral_privates, add_symmetric=add_symmetric,
                              stanza_salts=stanza_salts, remove_fingerprints=remove_fingerprints,
                              remove_symmetric_keys=remove_symmetric_keys, room=room)


def rebuild_recipients(data: bytes, hdr: dict, fk: bytes, keys: dict, *, add_x25519=(),
                       ephemeral_privates=(), add_symmetric=(), stanza_salts=(),
                       remove_fingerprints=(), remove_symmetric_keys=(),
                       room: int | None = None) -> bytes:
    """rewrite_recipients once the header is authenticated (hdr, FK and keys from steps 1-10).
    Everything from H on (payload, and a version 3 trailer) is kept byte for byte."""
    salt = hdr["salt"]
    drop_fps = {bytes(f).hex() if isinstance(f, (bytes, bytearray)) else f
                for f in remove_fingerprints}
    drop_sym = [v1._check_key(k) for k in remove_symmetric_keys]

    def removed(s):
        if s["type"] == "x25519":
            return s["fingerprint"] in drop_fps
        if s["type"] == "symmetric":
            return any(_unwrap(symmetric_wrap_key(k, s["stanza_salt"]), s["wrapped"], salt)
                       is not None for k in drop_sym)
        return False

    stanzas = [s["raw"] for s in hdr["stanzas"] if not removed(s)]
    if len(add_x25519) != len(ephemeral_privates) or len(add_symmetric) != len(stanza_salts):
        raise ValueError("one fresh random input per added stanza")
    stanzas += [make_x25519_stanza(P, e, fk, salt) for P, e in zip(add_x25519, ephemeral_privates)]
    stanzas += [make_symmetric_stanza(K, s, fk, salt) for K, s in zip(add_symmetric, stanza_salts)]
    if not 1 <= len(stanzas) <= MAX_STANZAS:
        raise ValueError("removing must keep at least one stanza (and at most 1024)")
    used = 4 + sum(len(s) for s in stanzas)
    R_old = hdr["recipients_length"]
    if room is None:
        room = R_old if used <= R_old else default_room(used)
    core = data[:hdr["core_header_length"]]
    return assemble(core, build_block(stanzas, room), keys["recipients_mac_key"]) + \
        data[hdr["header_length"]:]


# --------------------------------------------------------------------------- Bech32 (BIP 173)

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)

HRP_RECIPIENT = "modelcrypt"
HRP_IDENTITY = "modelcrypt-secret-key-"
HRP_AGE_RECIPIENT = "age"
HRP_AGE_IDENTITY = "age-secret-key-"


class Bech32Error(ValueError):
    pass


def _polymod(values) -> int:
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= _GEN[i] if (top >> i) & 1 else 0
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convertbits(data, frombits, tobits, pad):
    acc = bits = 0
    out, maxv = [], (1 << tobits) - 1
    for v in data:
        acc = (acc << frombits) | v
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (tobits - bits)) & maxv)
    elif bits >= frombits or ((acc << (tobits - bits)) & maxv):
        raise Bech32Error("invalid padding bits")
    return out


def bech32_encode(hrp: str, data: bytes) -> str:
    """Lowercase Bech32 (checksum constant 1), no 90-character limit."""
    d5 = _convertbits(bytes(data), 8, 5, True)
    values = _hrp_expand(hrp) + d5
    pm = _polymod(values + [0] * 6) ^ 1
    checksum = [(pm >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[v] for v in d5 + checksum)


def bech32_decode(text: str) -> tuple[str, bytes]:
    """Return (hrp in lower case, data bytes). Rejects mixed case and a bad checksum."""
    if text.lower() != text and text.upper() != text:
        raise Bech32Error("mixed case")
    if any(ord(c) < 33 or ord(c) > 126 for c in text):
        raise Bech32Error("invalid character")
    s = text.lower()
    pos = s.rfind("1")
    if pos < 1 or pos + 7 > len(s):
        raise Bech32Error("missing separator or checksum")
    hrp, rest = s[:pos], s[pos + 1:]
    if any(c not in _CHARSET for c in rest):
        raise Bech32Error("invalid data character")
    values = [_CHARSET.index(c) for c in rest]
    if _polymod(_hrp_expand(hrp) + values) != 1:
        raise Bech32Error("bad checksum")
    return hrp, bytes(_convertbits(values[:-6], 5, 8, False))


def _decode32(text: str, hrps: tuple[str, ...]) -> bytes:
    hrp, data = bech32_decode(text.strip())
    if hrp not in hrps:
        raise Bech32Error(f"unexpected human-readable part {hrp!r}")
    if len(data) != 32:
        raise Bech32Error(f"key data is {len(data)} bytes, expected 32")
    return data


def encode_recipient(public_key: bytes, hrp: str = HRP_RECIPIENT) -> str:
    return bech32_encode(hrp, public_key)


def encode_identity(private_key: bytes, hrp: str = HRP_IDENTITY) -> str:
    return bech32_encode(hrp, private_key).upper()


def decode_recipient(text: str) -> bytes:
    return _decode32(text, (HRP_RECIPIENT, HRP_AGE_RECIPIENT))


def decode_identity(text: str) -> bytes:
    return _decode32(text, (HRP_IDENTITY, HRP_AGE_IDENTITY))


def parse_identity_file(text: str) -> bytes:
    """One identity line; '#' comment lines and blank lines ignored."""
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if len(lines) != 1:
        raise Bech32Error(f"identity file must hold exactly one identity line, has {len(lines)}")
    return decode_identity(lines[0])
