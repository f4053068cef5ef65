"""Independent reference readers and writers for the three legacy formats modelcrypt interoperates with.

Written from the format descriptions in tests/interop/README.md (not from modelcrypt's C++ core), using
nothing but the ``cryptography`` package and the standard library.  It is a test oracle: it decrypts the
fixtures made by the other systems' own code, and it checks (and produces) files in those formats for
tests/test_interop.py.  It favours clarity over speed and memory use.

Formats
-------
MindSpore frames (``save_checkpoint`` / ``export`` with ``enc_key`` + ``enc_mode``)
    read_mindspore(data, key, mode=None) -> plaintext
    write_mindspore(plaintext, key, mode, *, frame_size=MS_MAX_FRAME_PLAIN, ivs=None) -> bytes
    parse_mindspore(data) -> list[MSFrame]           (structure only, no key)
    mindspore_mode(data) -> "AES-GCM" | "AES-CBC" | "SM4-CBC" | None
    build_mindspore_frame(plaintext, key, mode, iv) -> bytes
    decrypt_mindspore_frame(frame, key) -> plaintext

PaddleX encryption tool (``PADDLE1`` files)
    read_paddlex(data, key) -> plaintext
    write_paddlex(plaintext, key, *, filler=None) -> bytes
    PADDLEX_* offsets

Paddle core ``CipherFactory`` / ``AESCipher`` (no magic: IV || body [|| tag])
    read_paddle_cipher(data, key, cipher_name="AES_CTR_NoPadding", iv_bits=128, tag_bits=128) -> plaintext
    write_paddle_cipher(plaintext, key, cipher_name, iv_bits=128, tag_bits=128, *, iv=None) -> bytes
    parse_paddle_cipher_config(text) -> {"cipher_name", "iv_size", "tag_size"}

Errors are this module's own classes (FormatError, AuthenticationError, KeyMismatchError), so a test can
never accidentally pass because the oracle and modelcrypt share code.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

# --------------------------------------------------------------------------- errors


class FormatError(Exception):
    """The bytes are not a well-formed file of the format (magic, length fields, truncation)."""


class AuthenticationError(Exception):
    """A GCM tag did not verify, or CBC/ECB padding was invalid (wrong key or modified data)."""


class KeyMismatchError(Exception):
    """The key check stored in the file (PaddleX's SHA-256 of the key) does not match the key."""


# --------------------------------------------------------------------------- shared helpers

BLOCK = 16


def pkcs7_pad(data: bytes, block: int = BLOCK) -> bytes:
    n = block - len(data) % block
    return bytes(data) + bytes([n]) * n


def pkcs7_unpad(data: bytes, block: int = BLOCK) -> bytes:
    """Strict PKCS#7: length a positive multiple of the block, last byte 1..block, all pad bytes equal."""
    if not data or len(data) % block:
        raise AuthenticationError("ciphertext is not a whole number of blocks")
    n = data[-1]
    if not 1 <= n <= block or data[-n:] != bytes([n]) * n:
        raise AuthenticationError("invalid PKCS#7 padding (wrong key or corrupted data)")
    return bytes(data[:-n])


def _aes_key(key: bytes) -> bytes:
    key = bytes(key)
    if len(key) not in (16, 24, 32):
        raise ValueError(f"AES key must be 16, 24 or 32 bytes, got {len(key)}")
    return key


def _sm4_key(key: bytes) -> bytes:
    key = bytes(key)
    if len(key) != 16:
        raise ValueError(f"SM4 key must be 16 bytes, got {len(key)}")
    return key


def _ecb_like(algorithm, mode, data: bytes, encrypt: bool) -> bytes:
    c = Cipher(algorithm, mode)
    op = c.encryptor() if encrypt else c.decryptor()
    return op.update(bytes(data)) + op.finalize()


def gcm_encrypt(key: bytes, nonce: bytes, plaintext: bytes, tag_len: int = 16) -> tuple[bytes, bytes]:
    """AES-GCM, no AAD. Returns (ciphertext, tag[:tag_len]). Any nonce length >= 8 bytes."""
    enc = Cipher(algorithms.AES(_aes_key(key)), modes.GCM(bytes(nonce))).encryptor()
    ct = enc.update(bytes(plaintext)) + enc.finalize()
    return ct, enc.tag[:tag_len]


def gcm_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, tag: bytes) -> bytes:
    """AES-GCM, no AAD, tag of 4..16 bytes. Raises AuthenticationError on a bad tag."""
    dec = Cipher(
        algorithms.AES(_aes_key(key)), modes.GCM(bytes(nonce), bytes(tag), min_tag_length=len(tag))
    ).decryptor()
    try:
        return dec.update(bytes(ciphertext)) + dec.finalize()
    except InvalidTag:
        raise AuthenticationError("GCM tag mismatch (wrong key or modified data)") from None


# =========================================================================== MindSpore frames

MS_MAGIC = {"AES-GCM": 0x7F3A5ED8, "AES-CBC": 0x7F3A5ED9, "SM4-CBC": 0x7F3A5EDA}
MS_MODE_OF_MAGIC = {v: k for k, v in MS_MAGIC.items()}
MS_IV_LEN = 16
MS_GCM_NONCE_LEN = 12           # GCM uses only iv[:12]; iv[12:16] is stored but never used
MS_TAG_LEN = 16
MS_BLOCK_OVERHEAD = 24          # block_len = cipher_len + 24 (iv_len field + iv + cipher_len field)
MS_MAX_FRAME_PLAIN = 64 * 1024 * 1024

_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")


@dataclass(frozen=True)
class MSFrame:
    """One parsed frame. Offsets are absolute positions in the file."""

    offset: int            # first byte of the frame (its magic)
    end: int               # one past the last byte of its ciphertext
    mode: str
    tag: bytes | None      # AES-GCM only
    block_len: int
    iv_len: int
    iv: bytes
    cipher_len: int
    ciphertext: bytes

    def regions(self) -> dict[str, tuple[int, int]]:
        """Absolute [start, end) byte ranges of each field of this frame."""
        o = self.offset
        out = {"magic": (o, o + 4)}
        o += 4
        if self.mode == "AES-GCM":
            out["tag"] = (o, o + MS_TAG_LEN)
            o += MS_TAG_LEN
        out["block_len"] = (o, o + 4)
        out["iv_len"] = (o + 4, o + 8)
        out["iv"] = (o + 8, o + 8 + MS_IV_LEN)
        o += 8 + MS_IV_LEN
        out["cipher_len"] = (o, o + 4)
        out["ciphertext"] = (o + 4, o + 4 + self.cipher_len)
        return out


def mindspore_mode(data: bytes) -> str | None:
    """The cipher named by the file's first magic, or None when it does not start with a MindSpore magic."""
    if len(data) < 4:
        return None
    return MS_MODE_OF_MAGIC.get(_U32.unpack_from(data, 0)[0])


def parse_mindspore(data: bytes) -> list[MSFrame]:
    """Split a MindSpore encrypted file into frames, checking every structural rule (no key needed).

    Rules: at least one frame; every frame starts with the SAME magic as the first; the GCM tag is
    present; block_len == cipher_len + 24; iv_len == 16; cipher_len > 0 (and a multiple of 16 for CBC
    modes); no field or ciphertext runs past the end of the file; nothing follows the last frame.
    """
    data = bytes(data)
    mode = mindspore_mode(data)
    if mode is None:
        raise FormatError("not a MindSpore encrypted file (no frame magic at offset 0)")
    frames = []
    pos = 0
    while pos < len(data):
        start = pos
        if len(data) - pos < 4:
            raise FormatError(f"truncated frame magic at offset {pos}")
        magic = _U32.unpack_from(data, pos)[0]
        if magic != MS_MAGIC[mode]:
            raise FormatError(f"frame at offset {pos}: magic {magic:#010x} is not {mode}'s {MS_MAGIC[mode]:#010x}")
        pos += 4
        tag = None
        if mode == "AES-GCM":
            if len(data) - pos < MS_TAG_LEN:
                raise FormatError(f"frame at offset {start}: truncated tag")
            tag = data[pos:pos + MS_TAG_LEN]
            pos += MS_TAG_LEN
        if len(data) - pos < 8 + MS_IV_LEN + 4:
            raise FormatError(f"frame at offset {start}: truncated frame header")
        block_len, iv_len = _I32.unpack_from(data, pos)[0], _I32.unpack_from(data, pos + 4)[0]
        if iv_len != MS_IV_LEN:
            raise FormatError(f"frame at offset {start}: iv_len {iv_len} != 16")
        iv = data[pos + 8:pos + 8 + MS_IV_LEN]
        pos += 8 + MS_IV_LEN
        cipher_len = _I32.unpack_from(data, pos)[0]
        pos += 4
        if cipher_len <= 0:
            raise FormatError(f"frame at offset {start}: cipher_len {cipher_len} <= 0")
        if block_len != cipher_len + MS_BLOCK_OVERHEAD:
            raise FormatError(f"frame at offset {start}: block_len {block_len} != cipher_len {cipher_len} + 24")
        if mode != "AES-GCM" and cipher_len % BLOCK:
            raise FormatError(f"frame at offset {start}: CBC cipher_len {cipher_len} is not a multiple of 16")
        if cipher_len > len(data) - pos:
            raise FormatError(f"frame at offset {start}: cipher_len {cipher_len} runs past the end of the file")
        ct = data[pos:pos + cipher_len]
        pos += cipher_len
        frames.append(MSFrame(start, pos, mode, tag, block_len, iv_len, iv, cipher_len, ct))
    return frames


def _ms_cipher(mode: str, key: bytes, iv: bytes):
    if mode == "AES-CBC":
        return algorithms.AES(_aes_key(key)), modes.CBC(iv)
    if mode == "SM4-CBC":
        return algorithms.SM4(_sm4_key(key)), modes.CBC(iv)
    raise ValueError(mode)


def decrypt_mindspore_frame(frame: MSFrame, key: bytes) -> bytes:
    if frame.mode == "AES-GCM":
        return gcm_decrypt(key, frame.iv[:MS_GCM_NONCE_LEN], frame.ciphertext, frame.tag)
    alg, mode = _ms_cipher(frame.mode, key, frame.iv)
    return pkcs7_unpad(_ecb_like(alg, mode, frame.ciphertext, encrypt=False))


def read_mindspore(data: bytes, key: bytes, mode: str | None = None) -> bytes:
    """Decrypt a whole MindSpore frame file. ``mode`` (if given) must match the file's magic."""
    frames = parse_mindspore(data)
    if mode is not None and mode.upper() != frames[0].mode:
        raise ValueError(f"file is MindSpore {frames[0].mode}, mode {mode!r} was given")
    return b"".join(decrypt_mindspore_frame(f, key) for f in frames)


def build_mindspore_frame(plaintext: bytes, key: bytes, mode: str, iv: bytes) -> bytes:
    """One frame holding ``plaintext`` (non-empty) under the 16-byte ``iv``."""
    mode = mode.upper()
    iv = bytes(iv)
    if len(iv) != MS_IV_LEN:
        raise ValueError("MindSpore IVs are 16 bytes")
    if not plaintext:
        raise ValueError("a frame holds at least one byte")
    if mode == "AES-GCM":
        ct, tag = gcm_encrypt(key, iv[:MS_GCM_NONCE_LEN], plaintext)
        head = _U32.pack(MS_MAGIC[mode]) + tag
    else:
        alg, m = _ms_cipher(mode, key, iv)
        ct = _ecb_like(alg, m, pkcs7_pad(plaintext), encrypt=True)
        head = _U32.pack(MS_MAGIC[mode])
    return head + _I32.pack(len(ct) + MS_BLOCK_OVERHEAD) + _I32.pack(MS_IV_LEN) + iv + _I32.pack(len(ct)) + ct


def write_mindspore(plaintext: bytes, key: bytes, mode: str = "AES-GCM", *,
                    frame_size: int = MS_MAX_FRAME_PLAIN, ivs=None) -> bytes:
    """Encrypt into frames of ``frame_size`` plaintext bytes (the last one shorter), as MindSpore does.

    ``ivs``: optional sequence of 16-byte IVs, one per frame (for deterministic vectors); by default a
    fresh random IV per frame.
    """
    plaintext = bytes(plaintext)
    pieces = [plaintext[i:i + frame_size] for i in range(0, len(plaintext), frame_size)]
    ivs = list(ivs) if ivs is not None else [os.urandom(MS_IV_LEN) for _ in pieces]
    if len(ivs) < len(pieces):
        raise ValueError("not enough IVs")
    return b"".join(build_mindspore_frame(p, key, mode, iv) for p, iv in zip(pieces, ivs))


# =========================================================================== PaddleX PADDLE1

PADDLEX_MAGIC = b"PADDLE"
PADDLEX_VERSION = b"1"
PADDLEX_KEY_LEN = 32
PADDLEX_HASH = (7, 71)           # lowercase hex SHA-256 of the raw key (ASCII)
PADDLEX_FILLER = (71, 135)       # 64 random bytes, checked by nobody
PADDLEX_HEADER_LEN = 135
PADDLEX_TAG_LEN = 16


def paddlex_key_hash(key: bytes) -> bytes:
    return hashlib.sha256(bytes(key)).hexdigest().encode("ascii")


def _paddlex_key(key: bytes) -> bytes:
    key = bytes(key)
    if len(key) != PADDLEX_KEY_LEN:
        raise ValueError(f"PaddleX keys are 32 bytes, got {len(key)}")
    return key


def read_paddlex(data: bytes, key: bytes) -> bytes:
    data = bytes(data)
    key = _paddlex_key(key)
    if data[:6] != PADDLEX_MAGIC:
        raise FormatError("not a PaddleX encrypted file")
    if data[6:7] != PADDLEX_VERSION:
        raise FormatError(f"unsupported PaddleX version {data[6:7]!r}")
    if len(data) < PADDLEX_HEADER_LEN + PADDLEX_TAG_LEN:
        raise FormatError("truncated PaddleX file")
    if not hmac.compare_digest(data[PADDLEX_HASH[0]:PADDLEX_HASH[1]], paddlex_key_hash(key)):
        raise KeyMismatchError("stored SHA-256 of the key does not match this key")
    body = data[PADDLEX_HEADER_LEN:]
    return gcm_decrypt(key, key[16:32], body[:-PADDLEX_TAG_LEN], body[-PADDLEX_TAG_LEN:])


def write_paddlex(plaintext: bytes, key: bytes, *, filler: bytes | None = None) -> bytes:
    """PADDLE1 file exactly as PaddleX's encryption tool lays it out (nonce = key[16:32], fixed per key)."""
    key = _paddlex_key(key)
    filler = os.urandom(64) if filler is None else bytes(filler)
    if len(filler) != 64:
        raise ValueError("filler is 64 bytes")
    ct, tag = gcm_encrypt(key, key[16:32], plaintext)
    return PADDLEX_MAGIC + PADDLEX_VERSION + paddlex_key_hash(key) + filler + ct + tag


# =========================================================================== Paddle CipherFactory

PADDLE_CIPHERS = ("AES_CTR_NoPadding", "AES_CBC_PKCSPadding", "AES_ECB_PKCSPadding", "AES_GCM_NoPadding")


def _paddle_check(cipher_name: str, iv_bits: int, tag_bits: int) -> None:
    if cipher_name not in PADDLE_CIPHERS:
        raise ValueError(f"unknown Paddle cipher {cipher_name!r}")
    if iv_bits % 8 or tag_bits % 8:
        raise ValueError("iv/tag sizes are in bits, multiples of 8")
    if cipher_name in ("AES_CTR_NoPadding", "AES_CBC_PKCSPadding") and iv_bits != 128:
        raise ValueError("CTR and CBC take a 128-bit IV")


def read_paddle_cipher(data: bytes, key: bytes, cipher_name: str = "AES_CTR_NoPadding",
                       iv_bits: int = 128, tag_bits: int = 128) -> bytes:
    """IV (iv_bits/8 bytes; none for ECB) || body [|| tag (tag_bits/8 bytes) for GCM]."""
    _paddle_check(cipher_name, iv_bits, tag_bits)
    data, key = bytes(data), _aes_key(key)
    if cipher_name == "AES_ECB_PKCSPadding":
        return pkcs7_unpad(_ecb_like(algorithms.AES(key), modes.ECB(), data, encrypt=False))
    n = iv_bits // 8
    if len(data) < n:
        raise FormatError("shorter than the IV")
    iv, body = data[:n], data[n:]
    if cipher_name == "AES_CTR_NoPadding":
        return _ecb_like(algorithms.AES(key), modes.CTR(iv), body, encrypt=False)
    if cipher_name == "AES_CBC_PKCSPadding":
        return pkcs7_unpad(_ecb_like(algorithms.AES(key), modes.CBC(iv), body, encrypt=False))
    t = tag_bits // 8
    if len(body) < t:
        raise FormatError("shorter than IV + tag")
    return gcm_decrypt(key, iv, body[:len(body) - t], body[len(body) - t:])


def write_paddle_cipher(plaintext: bytes, key: bytes, cipher_name: str = "AES_CTR_NoPadding",
                        iv_bits: int = 128, tag_bits: int = 128, *, iv: bytes | None = None) -> bytes:
    _paddle_check(cipher_name, iv_bits, tag_bits)
    plaintext, key = bytes(plaintext), _aes_key(key)
    if cipher_name == "AES_ECB_PKCSPadding":
        return _ecb_like(algorithms.AES(key), modes.ECB(), pkcs7_pad(plaintext), encrypt=True)
    iv = os.urandom(iv_bits // 8) if iv is None else bytes(iv)
    if len(iv) != iv_bits // 8:
        raise ValueError("iv length does not match iv_bits")
    if cipher_name == "AES_CTR_NoPadding":
        return iv + _ecb_like(algorithms.AES(key), modes.CTR(iv), plaintext, encrypt=True)
    if cipher_name == "AES_CBC_PKCSPadding":
        return iv + _ecb_like(algorithms.AES(key), modes.CBC(iv), pkcs7_pad(plaintext), encrypt=True)
    ct, tag = gcm_encrypt(key, iv, plaintext, tag_bits // 8)
    return iv + ct + tag


# What CipherFactory::CreateCipher uses when NO config file is given. A config file that is given must
# name cipher_name (Paddle refuses one without it); iv_size / tag_size default to 128 bits.
PADDLE_DEFAULT_CONFIG = {"cipher_name": "AES_CTR_NoPadding", "iv_size": 128, "tag_size": 128}


def parse_paddle_cipher_config(text: str) -> dict:
    """``name : value`` lines; ``#`` starts a comment line; blank lines ignored; cipher_name required."""
    out = {"iv_size": 128, "tag_size": 128}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"bad config line {line!r}")
        name, value = name.strip(), value.strip()
        out[name] = int(value) if name in ("iv_size", "tag_size") else value
    if "cipher_name" not in out:
        raise ValueError("config names no cipher_name (Paddle refuses it)")
    return out


__all__ = [
    "FormatError", "AuthenticationError", "KeyMismatchError",
    "pkcs7_pad", "pkcs7_unpad", "gcm_encrypt", "gcm_decrypt",
    "MS_MAGIC", "MS_IV_LEN", "MS_GCM_NONCE_LEN", "MS_MAX_FRAME_PLAIN", "MSFrame",
    "mindspore_mode", "parse_mindspore", "decrypt_mindspore_frame", "read_mindspore",
    "build_mindspore_frame", "write_mindspore",
    "PADDLEX_MAGIC", "PADDLEX_HASH", "PADDLEX_FILLER", "PADDLEX_HEADER_LEN", "PADDLEX_TAG_LEN",
    "paddlex_key_hash", "read_paddlex", "write_paddlex",
    "PADDLE_CIPHERS", "PADDLE_DEFAULT_CONFIG", "read_paddle_cipher", "write_paddle_cipher", "parse_paddle_cipher_config",
]
