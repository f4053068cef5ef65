"""Independent reference implementation of the modelcrypt container format v1.

Written from docs/FORMAT.md only (not from the C++ core), using nothing but the
``cryptography`` package and the standard library.  It exists to cross-check the
real implementation and to generate the golden files in tests/vectors/.

Public API
----------
read(data, key) -> (plaintext, metadata_raw)
write(plaintext, key, *, salt, chunk_size=1048576, metadata_raw=b"") -> bytes
parse_header(data) -> dict          (reader steps 1-5, no key)

Low-level helpers used by tests/vectors/generate.py for byte surgery:
derive_keys, chunk_nonce, encrypt_chunk, build_header, header_mac.

This is a test oracle: it favours clarity over speed and memory use.
"""

from __future__ import annotations

import hmac
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

# --------------------------------------------------------------------------- constants

MAGIC = b"\x89MCRYPT\n"
VERSION = 1
ALGORITHM = 1  # AES-256-GCM chunks, HKDF-SHA256 key schedule, HMAC-SHA256 header MAC

FIXED_HEADER_LEN = 96
MAC_LEN = 32
TAG_LEN = 16
SALT_LEN = 32
COMMITMENT_LEN = 32

CHUNK_ALIGN = 4096
MIN_CHUNK_SIZE = 4096
MAX_CHUNK_SIZE = 64 * 1024 * 1024  # 67108864
DEFAULT_CHUNK_SIZE = 1024 * 1024
MAX_PLAINTEXT_LENGTH = 2**48
MAX_CHUNK_COUNT = 2**32
MAX_METADATA_LENGTH = 65536

MASTER_KEY_LENGTHS = (16, 24, 32)

INFO_COMMITMENT = b"modelcrypt v1 key commitment"
INFO_MAC = b"modelcrypt v1 header mac"
INFO_PAYLOAD = b"modelcrypt v1 payload AES-256-GCM"

# magic(8s) version(H) algorithm(H) chunk_size(I) plaintext_length(Q)
# metadata_length(I) reserved(I) salt(32s) key_commitment(32s)
_FIXED = struct.Struct("<8sHHIQII32s32s")
assert _FIXED.size == FIXED_HEADER_LEN


# --------------------------------------------------------------------------- errors

class FormatError(Exception):
    """Not a modelcrypt v1 file, or a header field is out of bounds."""


class UnsupportedVersionError(FormatError):
    """Valid magic, but a version / algorithm this reader does not implement."""


class KeyMismatchError(Exception):
    """The key commitment does not match the key (wrong key, or salt/commitment tampered)."""


class AuthenticationError(Exception):
    """Header MAC, file length or a chunk tag failed: the file was modified."""


# --------------------------------------------------------------------------- key schedule

def _check_key(key: bytes) -> bytes:
    key = bytes(key)
    if len(key) not in MASTER_KEY_LENGTHS:
        raise ValueError(f"master key must be 16, 24 or 32 bytes, got {len(key)}")
    return key


def derive_keys(key: bytes, salt: bytes) -> dict:
    """Return {"prk", "key_commitment", "mac_key", "payload_key"} for (K, salt)."""
    key = _check_key(key)
    if len(salt) != SALT_LEN:
        raise ValueError("salt must be 32 bytes")
    # HKDF-Extract(salt, IKM) == HMAC-SHA256(key=salt, msg=IKM)  (RFC 5869 2.2)
    h = crypto_hmac.HMAC(salt, hashes.SHA256())
    h.update(key)
    prk = h.finalize()

    def expand(info: bytes) -> bytes:
        return HKDFExpand(algorithm=hashes.SHA256(), length=32, info=info).derive(prk)

    out = {
        "prk": prk,
        "key_commitment": expand(INFO_COMMITMENT),
        "mac_key": expand(INFO_MAC),
        "payload_key": expand(INFO_PAYLOAD),
    }
    # Sanity: the one-shot HKDF (extract+expand) agrees with the split form.
    assert out["key_commitment"] == HKDF(
        algorithm=hashes.SHA256(), length=32, salt=salt, info=INFO_COMMITMENT
    ).derive(key)
    return out


def header_mac(mac_key: bytes, header_without_mac: bytes) -> bytes:
    h = crypto_hmac.HMAC(mac_key, hashes.SHA256())
    h.update(header_without_mac)
    return h.finalize()


# --------------------------------------------------------------------------- payload

def chunk_count(plaintext_length: int, chunk_size: int) -> int:
    """n = max(1, ceil(L / cs))."""
    return max(1, -(-plaintext_length // chunk_size))


def chunk_plain_length(i: int, plaintext_length: int, chunk_size: int) -> int:
    n = chunk_count(plaintext_length, chunk_size)
    if not 0 <= i < n:
        raise IndexError(i)
    return chunk_size if i < n - 1 else plaintext_length - (n - 1) * chunk_size


def chunk_offset(i: int, header_length: int, chunk_size: int) -> int:
    """Offset of chunk i (ciphertext followed by its tag) in the file."""
    return header_length + i * (chunk_size + TAG_LEN)


def expected_file_length(header_length: int, plaintext_length: int, chunk_size: int) -> int:
    return header_length + plaintext_length + TAG_LEN * chunk_count(plaintext_length, chunk_size)


def chunk_nonce(i: int, last: bool) -> bytes:
    """nonce_i = LE64(i) || 00 00 00 || last_i."""
    return struct.pack("<Q", i) + b"\x00\x00\x00" + (b"\x01" if last else b"\x00")


def encrypt_chunk(payload_key: bytes, i: int, last: bool, aad: bytes, pt: bytes) -> bytes:
    """Return ct_i || tag_i."""
    return AESGCM(payload_key).encrypt(chunk_nonce(i, last), bytes(pt), aad)


def decrypt_chunk(payload_key: bytes, i: int, last: bool, aad: bytes, ct_and_tag: bytes) -> bytes:
    return AESGCM(payload_key).decrypt(chunk_nonce(i, last), bytes(ct_and_tag), aad)


# --------------------------------------------------------------------------- writer

def build_header(
    *,
    chunk_size: int,
    plaintext_length: int,
    metadata_raw: bytes,
    salt: bytes,
    key_commitment: bytes,
    version: int = VERSION,
    algorithm: int = ALGORITHM,
    reserved: int = 0,
    magic: bytes = MAGIC,
    metadata_length: int | None = None,
) -> bytes:
    """Header bytes file[0 : 96+M] (everything the header MAC covers). No validation."""
    if metadata_length is None:
        metadata_length = len(metadata_raw)
    fixed = _FIXED.pack(
        magic, version, algorithm, chunk_size, plaintext_length,
        metadata_length, reserved, salt, key_commitment,
    )
    return fixed + bytes(metadata_raw)


def write(
    plaintext: bytes,
    key: bytes,
    *,
    salt: bytes,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    metadata_raw: bytes = b"",
) -> bytes:
    """Encrypt ``plaintext`` into a v1 container. Deterministic given ``salt``.

    A real writer MUST draw ``salt`` from a CSPRNG for every file; taking it as a
    parameter is what makes this oracle deterministic for test vectors.
    """
    key = _check_key(key)
    plaintext = bytes(plaintext)
    metadata_raw = bytes(metadata_raw)
    if len(salt) != SALT_LEN:
        raise ValueError("salt must be 32 bytes")
    if not (MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE and chunk_size % CHUNK_ALIGN == 0):
        raise ValueError(f"invalid chunk_size {chunk_size}")
    if len(metadata_raw) > MAX_METADATA_LENGTH:
        raise ValueError("metadata too large")
    L = len(plaintext)
    if L > MAX_PLAINTEXT_LENGTH or chunk_count(L, chunk_size) > MAX_CHUNK_COUNT:
        raise ValueError("plaintext too large")

    keys = derive_keys(key, salt)
    head = build_header(
        chunk_size=chunk_size, plaintext_length=L, metadata_raw=metadata_raw,
        salt=salt, key_commitment=keys["key_commitment"],
    )
    mac = header_mac(keys["mac_key"], head)
    out = [head, mac]
    n = chunk_count(L, chunk_size)
    for i in range(n):
        pt = plaintext[i * chunk_size:(i + 1) * chunk_size]
        out.append(encrypt_chunk(keys["payload_key"], i, i == n - 1, mac, pt))
    data = b"".join(out)
    assert len(data) == expected_file_length(len(head) + MAC_LEN, L, chunk_size)
    return data


# --------------------------------------------------------------------------- reader

def parse_header(data: bytes) -> dict:
    """Reader steps 1-5 (everything that needs no key).

    Returns a dict with: version, algorithm, chunk_size, plaintext_length,
    metadata_length, reserved, chunk_count, header_length, file_length, salt,
    key_commitment, metadata_raw, header_mac, expected_file_length.
    """
    data = bytes(data)
    size = len(data)

    # 1. magic
    if size < len(MAGIC) or bytes(data[:8]) != MAGIC:
        raise FormatError("not a modelcrypt file")
    # 2. fixed header present
    if size < FIXED_HEADER_LEN:
        raise FormatError("truncated header")
    (_magic, version, algorithm, cs, L, M, reserved, salt, commitment) = _FIXED.unpack(
        bytes(data[:FIXED_HEADER_LEN])
    )
    # 3. version / algorithm
    if version != VERSION:
        raise UnsupportedVersionError(f"unsupported format version {version}")
    if algorithm != ALGORITHM:
        raise UnsupportedVersionError(f"unsupported algorithm {algorithm}")
    # 4. field bounds
    if reserved != 0:
        raise FormatError("reserved field is not zero")
    if not (MIN_CHUNK_SIZE <= cs <= MAX_CHUNK_SIZE) or cs % CHUNK_ALIGN != 0:
        raise FormatError(f"invalid chunk_size {cs}")
    if M > MAX_METADATA_LENGTH:
        raise FormatError(f"metadata_length {M} too large")
    if L > MAX_PLAINTEXT_LENGTH:
        raise FormatError(f"plaintext_length {L} too large")
    n = chunk_count(L, cs)
    if n > MAX_CHUNK_COUNT:
        raise FormatError(f"chunk count {n} too large")
    # 5. whole header present
    H = FIXED_HEADER_LEN + M + MAC_LEN
    if size < H:
        raise FormatError("truncated header")

    return {
        "version": version,
        "algorithm": algorithm,
        "chunk_size": cs,
        "plaintext_length": L,
        "metadata_length": M,
        "reserved": reserved,
        "chunk_count": n,
        "header_length": H,
        "file_length": size,
        "salt": bytes(salt),
        "key_commitment": bytes(commitment),
        "metadata_raw": bytes(data[FIXED_HEADER_LEN:FIXED_HEADER_LEN + M]),
        "header_mac": bytes(data[FIXED_HEADER_LEN + M:H]),
        "expected_file_length": H + L + TAG_LEN * n,
    }


def read(data: bytes, key: bytes) -> tuple[bytes, bytes]:
    """Full reader (steps 1-9). Returns (plaintext, metadata_raw)."""
    key = _check_key(key)
    data = bytes(data)
    hdr = parse_header(data)  # steps 1-5
    H = hdr["header_length"]
    M = hdr["metadata_length"]
    keys = derive_keys(key, hdr["salt"])

    # 6. key commitment (constant time)
    if not hmac.compare_digest(keys["key_commitment"], hdr["key_commitment"]):
        raise KeyMismatchError("wrong key (key commitment mismatch)")
    # 7. header MAC (constant time)
    mac = header_mac(keys["mac_key"], data[:FIXED_HEADER_LEN + M])
    if not hmac.compare_digest(mac, hdr["header_mac"]):
        raise AuthenticationError("header authentication failed")
    # 8. exact file length
    if len(data) != hdr["expected_file_length"]:
        raise AuthenticationError(
            f"file length {len(data)} != expected {hdr['expected_file_length']} "
            "(truncated or trailing data)"
        )
    # 9. every chunk; no plaintext released unless all pass
    cs, L, n = hdr["chunk_size"], hdr["plaintext_length"], hdr["chunk_count"]
    parts = []
    for i in range(n):
        off = chunk_offset(i, H, cs)
        p = chunk_plain_length(i, L, cs)
        try:
            parts.append(
                decrypt_chunk(keys["payload_key"], i, i == n - 1, mac, data[off:off + p + TAG_LEN])
            )
        except InvalidTag:
            raise AuthenticationError(f"chunk {i} failed authentication") from None
    return b"".join(parts), hdr["metadata_raw"]


__all__ = [
    "FormatError", "UnsupportedVersionError", "KeyMismatchError", "AuthenticationError",
    "read", "write", "parse_header",
    "derive_keys", "header_mac", "build_header", "chunk_nonce", "encrypt_chunk",
    "decrypt_chunk", "chunk_count", "chunk_plain_length", "chunk_offset",
    "expected_file_length", "MAGIC", "DEFAULT_CHUNK_SIZE",
]
