"""Independent reference implementation of modelcrypt format version 3 (publisher signatures).

Written from docs/FORMAT.md ("Format version 3: files signed by their publisher", built on the
version 1 and 2 sections) only, never from the C++ core, with nothing but ``cryptography``
(Ed25519 through OpenSSL) and the standard library.  Versions 1 and 2 live in
tests/reference_format.py and tests/reference_format_v2.py; this module imports them.

Public API
----------
write_v3(plaintext, *, signing_seed, x25519_recipients, symmetric_keys, salt, file_key,
         ephemeral_privates, stanza_salts, chunk_size, metadata_raw, room) -> bytes
sign(body, signing_seed) -> bytes           append the trailer to an unsigned version 3 body
read(data, key=None, *, identity=None, trusted_signers=None) -> (plaintext, metadata_raw)
                                            v1, v2 and v3; trusted_signers = [32-byte keys]
verify_keyless(data, trusted_signers) -> signer public key (32 bytes)   "Keyless verification"
parse_header(data) -> dict                  steps 1-6 (no key), v1/v2/v3
parse_trailer(data, hdr) -> dict            the trailer's fields (no check)
list_recipients(data) -> [{type, fingerprint}]   v2 and v3, no key
rewrite_recipients(data, key=None, *, identity=None, ...) -> bytes   v2 and v3 (trailer kept)
signer_public_key(seed) -> bytes
Bech32 text: encode_signer / decode_signer (HRP modelcrypt-signer),
             encode_signing_key / decode_signing_key (HRP modelcrypt-signing-key-, upper case),
             parse_signing_key_file

Error messages of version 3 files start with "step N:", N the step of "Reader algorithm
(version 3)": S1 = not signed, S2 = length, S3 = trailer fields and trust, S4 = signature (all
four before the key is used), 6-10 as in version 2, S5 = chunk hashes and then chunk tags with
trusted signers; without trusted signers, 11 = length and chunk tags are "step 12" of version 2.
Keyless verification runs S1 to S5 (hashes only).

This is a test oracle: clarity over speed.  A real writer draws every random input from a
CSPRNG; taking them as parameters is what makes the vectors deterministic.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

import reference_format as v1
import reference_format_v2 as v2
from reference_format import (  # noqa: F401  (re-exported)
    AuthenticationError, FormatError, KeyMismatchError, UnsupportedVersionError,
)
from reference_format_v2 import Bech32Error, X25519Identity  # noqa: F401  (re-exported)

VERSION3 = 3
SIGNATURE_ALGORITHM = 1                      # Ed25519 over SHA-256 digests
TRAILER_FIXED = 100                          # algorithm, reserved, public key, signature
HASH_LEN = 32
PUBLIC_KEY_LEN = 32
SIGNATURE_LEN = 64
SIGNATURE_CONTEXT = b"modelcrypt v3 signature"
assert len(SIGNATURE_CONTEXT) == 23

HRP_SIGNER = "modelcrypt-signer"
HRP_SIGNING_KEY = "modelcrypt-signing-key-"


class SignatureError(Exception):
    """Version 3: not signed, signed by an untrusted key, or changed since signing.

    A direct subclass of the base error (here: of Exception), as ModelCryptError's."""


# --------------------------------------------------------------------------- Ed25519 + digests

def signer_public_key(signing_seed: bytes) -> bytes:
    """The Ed25519 public key (RFC 8032 encoding) of a 32-byte private seed."""
    return Ed25519PrivateKey.from_private_bytes(bytes(signing_seed)).public_key().public_bytes_raw()


def chunk_hash(stored_chunk: bytes) -> bytes:
    """SHA-256 of the stored chunk i: ciphertext || tag."""
    return hashlib.sha256(bytes(stored_chunk)).digest()


def signed_message(core_header: bytes, chunk_hashes: bytes) -> bytes:
    """"modelcrypt v3 signature" || SHA-256(file[0:128+M]) || SHA-256(chunk_hash_0 || ...)."""
    msg = (SIGNATURE_CONTEXT + hashlib.sha256(bytes(core_header)).digest()
           + hashlib.sha256(bytes(chunk_hashes)).digest())
    assert len(msg) == 87
    return msg


def stored_chunks(data: bytes, hdr: dict) -> list[bytes]:
    """The n stored chunks (ciphertext || tag) of a file whose layout hdr describes."""
    H, cs, L, n = hdr["header_length"], hdr["chunk_size"], hdr["plaintext_length"], hdr["chunk_count"]
    out = []
    for i in range(n):
        off = v1.chunk_offset(i, H, cs)
        out.append(bytes(data[off:off + v1.chunk_plain_length(i, L, cs) + v1.TAG_LEN]))
    return out


def build_trailer(core_header: bytes, chunks: list[bytes], signing_seed: bytes, *,
                  algorithm: int = SIGNATURE_ALGORITHM, reserved: int = 0) -> bytes:
    """The signature trailer for these bytes (algorithm/reserved settable for vectors)."""
    hashes = b"".join(chunk_hash(c) for c in chunks)
    sk = Ed25519PrivateKey.from_private_bytes(bytes(signing_seed))
    signature = sk.sign(signed_message(core_header, hashes))
    return (struct.pack("<HH", algorithm, reserved) + sk.public_key().public_bytes_raw()
            + signature + hashes)


# --------------------------------------------------------------------------- writer

def sign(body: bytes, signing_seed: bytes) -> bytes:
    """Append the signature trailer to an unsigned version 3 file (header + payload)."""
    body = bytes(body)
    hdr = parse_header(body)
    if hdr["version"] != VERSION3 or len(body) != hdr["payload_end"]:
        raise ValueError("sign() takes a version 3 header and payload without a trailer")
    return body + build_trailer(body[:hdr["core_header_length"]], stored_chunks(body, hdr),
                                signing_seed)


def write_v3(plaintext: bytes, *, signing_seed: bytes, x25519_recipients=(), symmetric_keys=(),
             salt: bytes, file_key: bytes, ephemeral_privates=(), stanza_salts=(),
             chunk_size: int = v1.DEFAULT_CHUNK_SIZE, metadata_raw: bytes = b"",
             room: int | None = None, extra_stanzas=()) -> bytes:
    """A signed file: the version 2 layout with version = 3 (a symmetric master key is a type 2
    stanza), then the trailer signed with ``signing_seed``."""
    if len(bytes(signing_seed)) != 32:
        raise ValueError("signing seed must be 32 bytes")
    body = v2.write_v2(plaintext, x25519_recipients=x25519_recipients,
                       symmetric_keys=symmetric_keys, salt=salt, file_key=file_key,
                       ephemeral_privates=ephemeral_privates, stanza_salts=stanza_salts,
                       chunk_size=chunk_size, metadata_raw=metadata_raw, room=room,
                       extra_stanzas=extra_stanzas, version=VERSION3)
    return sign(body, signing_seed)


# --------------------------------------------------------------------------- keyless parsing

def parse_header(data: bytes) -> dict:
    """v1 and v2 as tests/reference_format_v2.parse_header.  v3: steps 1-6 (no key) with the v2
    fields plus payload_end T = H + L + 16n, trailer_length 100 + 32n, expected_file_length
    T + 100 + 32n, and signer_public_key (None unless the file has exactly that length)."""
    data = bytes(data)
    if not (len(data) >= v2.CORE_FIXED and data[:8] == v1.MAGIC
            and struct.unpack_from("<H", data, 8)[0] == VERSION3):
        return v2.parse_header(data)
    patched = bytearray(data[:v2.CORE_FIXED])
    struct.pack_into("<H", patched, 8, v2.VERSION2)  # steps 1-6 are those of version 2, verbatim
    hdr = v2.parse_header(bytes(patched) + data[v2.CORE_FIXED:])
    T = hdr["expected_file_length"]                 # the v2 file length: H + L + 16n
    n = hdr["chunk_count"]
    hdr.update(version=VERSION3, payload_end=T, trailer_length=TRAILER_FIXED + HASH_LEN * n,
               expected_file_length=T + TRAILER_FIXED + HASH_LEN * n, signer_public_key=None)
    if len(data) == hdr["expected_file_length"]:
        hdr["signer_public_key"] = parse_trailer(data, hdr)["signer_public_key"]
    return hdr


def list_recipients(data: bytes) -> list[dict]:
    """Keyless listing of a v2 or v3 file: [{type, fingerprint}]."""
    return [{"type": s["type"], "fingerprint": s["fingerprint"]}
            for s in parse_header(data)["stanzas"]]


def parse_trailer(data: bytes, hdr: dict) -> dict:
    """The trailer's fields at T (the caller has checked the file length)."""
    T = hdr["payload_end"]
    trailer = bytes(data[T:T + hdr["trailer_length"]])          # read once, our own copy
    algorithm, reserved = struct.unpack_from("<HH", trailer, 0)
    return {"algorithm": algorithm, "reserved": reserved,
            "signer_public_key": trailer[4:36], "signature": trailer[36:100],
            "chunk_hashes": trailer[100:]}


def _trusted(trusted_signers) -> list[bytes]:
    keys = [bytes(k) for k in trusted_signers]
    if any(len(k) != PUBLIC_KEY_LEN for k in keys):
        raise ValueError("trusted signers are 32-byte Ed25519 public keys")
    return keys


def check_trailer(data: bytes, hdr: dict, trusted: list[bytes]) -> dict:
    """Steps S3 and S4. Returns the verified trailer (its chunk_hashes are what S5 uses)."""
    tr = parse_trailer(data, hdr)
    if tr["algorithm"] != SIGNATURE_ALGORITHM:
        raise UnsupportedVersionError(f"step S3: unsupported signature algorithm {tr['algorithm']}")
    if tr["reserved"] != 0:
        raise FormatError("step S3: signature trailer reserved field is not zero")
    if not any(tr["signer_public_key"] == k for k in trusted):
        raise SignatureError("step S3: signed by an untrusted key")
    message = signed_message(data[:hdr["core_header_length"]], tr["chunk_hashes"])
    try:
        Ed25519PublicKey.from_public_bytes(tr["signer_public_key"]).verify(tr["signature"], message)
    except (InvalidSignature, ValueError):
        raise SignatureError("step S4: the signature does not verify") from None
    return tr


def _check_signed_length(data: bytes, hdr: dict) -> None:
    """S1 and S2: signed at all, and exactly the length that was signed."""
    if hdr["version"] != VERSION3:
        raise SignatureError(f"step S1: not signed (format version {hdr['version']})")
    if len(data) != hdr["expected_file_length"]:
        raise SignatureError(f"step S2: file length {len(data)} != expected "
                             f"{hdr['expected_file_length']} (truncated or trailing data)")


def verify_keyless(data: bytes, trusted_signers) -> bytes:
    """Keyless verification: steps 1-6, S1-S4 and S5 without decryption (every chunk hash).
    Returns the signer's public key."""
    data, trusted = bytes(data), _trusted(trusted_signers)
    hdr = parse_header(data)                                        # 1-6
    _check_signed_length(data, hdr)                                 # S1, S2
    tr = check_trailer(data, hdr, trusted)                          # S3, S4
    for i, chunk in enumerate(stored_chunks(data, hdr)):            # S5
        if chunk_hash(chunk) != tr["chunk_hashes"][HASH_LEN * i:HASH_LEN * (i + 1)]:
            raise SignatureError(f"step S5: chunk {i} differs from the signed chunk")
    return tr["signer_public_key"]


# --------------------------------------------------------------------------- reader

def open_header(data: bytes, key=None, *, identity=None) -> tuple[dict, bytes, dict]:
    """Version 3 steps 1-10 (those of version 2). Returns (hdr, file_key, keys)."""
    if isinstance(key, X25519Identity):
        key, identity = None, key
    hdr = parse_header(data)                                        # 1-6
    if hdr["version"] != VERSION3:
        raise ValueError("not a version 3 file")
    fk = v2.find_file_key(hdr, key, identity)                       # 7
    keys = v2.derive_keys_v2(fk, hdr["salt"])
    M = hdr["metadata_length"]
    if not hmac.compare_digest(keys["key_commitment"], hdr["key_commitment"]):
        raise AuthenticationError("step 8: key commitment mismatch (stanza of another file)")
    if not hmac.compare_digest(v1.header_mac(keys["mac_key"], data[:v2.CORE_FIXED + M]),
                               hdr["header_mac"]):
        raise AuthenticationError("step 9: header authentication failed")
    covered = data[v2.CORE_FIXED + M:132 + M + hdr["recipients_length"]]
    if not hmac.compare_digest(v2.recipients_mac(keys["recipients_mac_key"], covered),
                               hdr["recipients_mac"]):
        raise AuthenticationError("step 10: recipients block authentication failed")
    return hdr, fk, keys


def read(data: bytes, key=None, *, identity=None, trusted_signers=None) -> tuple[bytes, bytes]:
    """Full reader for versions 1, 2 and 3. Returns (plaintext, metadata_raw).

    trusted_signers None: signatures are not checked (a v3 file opens like a v2 file, its
    trailer's contents ignored).  A list of 32-byte Ed25519 public keys: steps S1 to S4 run
    before the key is used (a v1 or v2 file is a SignatureError "not signed"), then steps 7 to 10
    of version 2, then S5 for every chunk."""
    data = bytes(data)
    if isinstance(key, X25519Identity):
        key, identity = None, key
    trusted = None if trusted_signers is None else _trusted(trusted_signers)
    hdr = parse_header(data)                                        # 1-6
    hashes = None
    if trusted is not None:
        _check_signed_length(data, hdr)                             # S1, S2
        hashes = check_trailer(data, hdr, trusted)["chunk_hashes"]  # S3, S4
    elif hdr["version"] != VERSION3:
        return v2.read(data, key, identity=identity)
    hdr, _fk, keys = open_header(data, key, identity=identity)      # 7-10
    if len(data) != hdr["expected_file_length"]:                    # 11 (holds after S2)
        raise AuthenticationError(f"step 11: file length {len(data)} != expected "
                                  f"{hdr['expected_file_length']} (truncated or trailing data)")
    step = 12 if hashes is None else "S5"
    n, parts = hdr["chunk_count"], []
    for i, chunk in enumerate(stored_chunks(data, hdr)):            # S5 (or v2 step 12)
        if hashes is not None and chunk_hash(chunk) != hashes[HASH_LEN * i:HASH_LEN * (i + 1)]:
            raise SignatureError(f"step S5: chunk {i} differs from the signed chunk")
        try:
            parts.append(v1.decrypt_chunk(keys["payload_key"], i, i == n - 1, hdr["header_mac"],
                                          chunk))
        except InvalidTag:
            raise AuthenticationError(f"step {step}: chunk {i} failed authentication") from None
    return b"".join(parts), hdr["metadata_raw"]


# --------------------------------------------------------------------------- add / remove

def rewrite_recipients(data: bytes, key=None, *, identity=None, **changes) -> bytes:
    """tests/reference_format_v2.rewrite_recipients for v2 and v3 files (same keyword
    arguments).  For v3 the core header, the payload and the trailer stay byte for byte."""
    data = bytes(data)
    if parse_header(data)["version"] != VERSION3:
        return v2.rewrite_recipients(data, key, identity=identity, **changes)
    hdr, fk, keys = open_header(data, key, identity=identity)
    if len(data) != hdr["expected_file_length"]:
        raise AuthenticationError("step 11: truncated or trailing data")
    return v2.rebuild_recipients(data, hdr, fk, keys, **changes)


# --------------------------------------------------------------------------- key text

def encode_signer(public_key: bytes) -> str:
    """modelcrypt-signer1... (lower case), the form --trust takes."""
    if len(bytes(public_key)) != PUBLIC_KEY_LEN:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return v2.bech32_encode(HRP_SIGNER, public_key)


def encode_signing_key(signing_seed: bytes) -> str:
    """MODELCRYPT-SIGNING-KEY-1... (printed in upper case)."""
    if len(bytes(signing_seed)) != 32:
        raise ValueError("an Ed25519 private seed is 32 bytes")
    return v2.bech32_encode(HRP_SIGNING_KEY, signing_seed).upper()


def decode_signer(text: str) -> bytes:
    return v2._decode32(text, (HRP_SIGNER,))


def decode_signing_key(text: str) -> bytes:
    return v2._decode32(text, (HRP_SIGNING_KEY,))


def parse_signing_key_file(text: str) -> bytes:
    """One signing key line; '#' comment lines and blank lines ignored."""
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if len(lines) != 1:
        raise Bech32Error(f"signing key file must hold exactly one key line, has {len(lines)}")
    return decode_signing_key(lines[0])
