"""Byte surgery on format v3 (signed) files for the signature tests, written from docs/FORMAT.md
("Format version 3") with `cryptography` only: where the chunks and the trailer are, and how to
recompute a trailer with another Ed25519 key (a re-signed file).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

CONTEXT = b"modelcrypt v3 signature"
TAG = 16
FIXED_TRAILER = 100  # algorithm u16, reserved u16, public key 32, signature 64


@dataclass(frozen=True)
class Layout:
    version: int
    metadata_length: int
    header_length: int  # H: where the payload starts
    chunk_size: int
    plaintext_length: int
    chunk_count: int

    @property
    def core_header_end(self) -> int:  # 128 + M: what header_digest covers
        return 128 + self.metadata_length

    @property
    def trailer(self) -> int:  # T = H + L + 16 n
        return self.header_length + self.plaintext_length + TAG * self.chunk_count

    @property
    def signer_key(self) -> slice:
        return slice(self.trailer + 4, self.trailer + 36)

    @property
    def signature(self) -> slice:
        return slice(self.trailer + 36, self.trailer + 100)

    def hash_entry(self, i: int) -> slice:
        start = self.trailer + FIXED_TRAILER + 32 * i
        return slice(start, start + 32)

    def chunk(self, i: int) -> slice:
        """Stored chunk i: ciphertext || tag."""
        start = self.header_length + i * (self.chunk_size + TAG)
        p = self.chunk_size if i < self.chunk_count - 1 else self.plaintext_length - (self.chunk_count - 1) * self.chunk_size
        return slice(start, start + p + TAG)


def layout(data: bytes) -> Layout:
    version, = struct.unpack_from("<H", data, 8)
    cs, length, m = struct.unpack_from("<IQI", data, 12)
    if version == 1:
        h = 128 + m
    else:
        r, = struct.unpack_from("<I", data, 128 + m)
        h = 164 + m + r
    n = max(1, -(-length // cs))
    return Layout(version, m, h, cs, length, n)


def flipped(data: bytes, offset: int, bit: int = 0x01) -> bytes:
    out = bytearray(data)
    out[offset] ^= bit
    return bytes(out)


def swap_chunks(data: bytes, i: int, j: int, *, swap_hashes: bool) -> bytes:
    """Swap two full chunks (and, when asked, their chunk hash entries, so the hash list matches)."""
    lay = layout(data)
    a, b = lay.chunk(i), lay.chunk(j)
    assert a.stop - a.start == b.stop - b.start, "swap full chunks only"
    out = bytearray(data)
    out[a], out[b] = data[b], data[a]
    if swap_hashes:
        ha, hb = lay.hash_entry(i), lay.hash_entry(j)
        out[ha], out[hb] = data[hb], data[ha]
    return bytes(out)


def chunk_hashes(data: bytes) -> list[bytes]:
    lay = layout(data)
    return [hashlib.sha256(data[lay.chunk(i)]).digest() for i in range(lay.chunk_count)]


def signed_message(data: bytes, hashes: list[bytes]) -> bytes:
    lay = layout(data)
    header_digest = hashlib.sha256(data[: lay.core_header_end]).digest()
    chunks_digest = hashlib.sha256(b"".join(hashes)).digest()
    return CONTEXT + header_digest + chunks_digest


def raw_public(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def resigned(data: bytes, private: Ed25519PrivateKey) -> bytes:
    """The same file with its trailer recomputed per docs/FORMAT.md and signed by ``private``
    (chunk hashes recomputed from the stored chunks)."""
    lay = layout(data)
    hashes = chunk_hashes(data)
    trailer = struct.pack("<HH", 1, 0) + raw_public(private) + private.sign(signed_message(data, hashes)) + b"".join(hashes)
    return data[: lay.trailer] + trailer


def trailer_is_valid(data: bytes) -> bool:
    """Independent check of a v3 file's trailer with `cryptography` (the signer it names)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    lay = layout(data)
    if lay.version != 3 or len(data) != lay.trailer + FIXED_TRAILER + 32 * lay.chunk_count:
        return False
    stored = [data[lay.hash_entry(i)] for i in range(lay.chunk_count)]
    if stored != chunk_hashes(data):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(data[lay.signer_key]).verify(data[lay.signature], signed_message(data, stored))
    except InvalidSignature:
        return False
    return True


def forged_by_key_holder(data: bytes, key: bytes, *, metadata_raw: bytes | None = None, version: int = 3) -> bytes:
    """What a holder of the symmetric key can make from a signed file without the signing key (the
    threat version 3 closes): new metadata and/or another version, a valid header MAC and
    recipients MAC, every chunk re-sealed under the new header MAC, and, for version 3, the
    trailer with the chunk hashes recomputed and the publisher's old signature kept. Version 2
    drops the trailer (a stripped signature that still authenticates under the key)."""
    import reference_format as v1
    import reference_format_v2 as v2

    lay = layout(data)
    as_v2 = bytearray(data)
    struct.pack_into("<H", as_v2, 8, 2)
    hdr = v2.parse_header(bytes(as_v2[: lay.header_length]))
    keys = v2.derive_keys_v2(v2.find_file_key(hdr, key), hdr["salt"])
    m = lay.metadata_length
    old_mac = data[96 + m: 128 + m]
    plaintext = [v1.decrypt_chunk(keys["payload_key"], i, i == lay.chunk_count - 1, old_mac, data[lay.chunk(i)])
                 for i in range(lay.chunk_count)]
    meta = data[96: 96 + m] if metadata_raw is None else metadata_raw
    fixed = bytearray(data[:96])
    struct.pack_into("<H", fixed, 8, version)
    struct.pack_into("<I", fixed, 24, len(meta))
    core = bytes(fixed) + meta
    mac = v1.header_mac(keys["mac_key"], core)
    block = data[132 + m: lay.header_length - 32]
    header = v2.assemble(core + mac, block, keys["recipients_mac_key"])
    chunks = [v1.encrypt_chunk(keys["payload_key"], i, i == lay.chunk_count - 1, mac, p) for i, p in enumerate(plaintext)]
    body = header + b"".join(chunks)
    if version != 3:
        return body
    hashes = [hashlib.sha256(c).digest() for c in chunks]
    old_fixed = data[lay.trailer: lay.trailer + FIXED_TRAILER]
    return body + old_fixed + b"".join(hashes)
