"""Trusted publisher signers (format v3) as readers take them: ``trusted_signers=[...]``.

A list of signer public keys: ``modelcrypt-signer1...`` text, a PEM Ed25519 public key, a
SigningKey (its public key) or 32 raw bytes. A reader given one requires every file it opens to be
signed by one of them (SignatureError otherwise); the key or identity it opens the file with is
wrapped with the signers into one native credential, which every read path accepts as its key.
"""

from __future__ import annotations

from typing import TypeVar

from . import _core

_Credential = TypeVar("_Credential")

__all__: list[str] = []


def signer_keys(trusted_signers: object) -> list[bytes] | None:
    """32-byte Ed25519 public keys from ``trusted_signers`` (None stays None)."""
    if trusted_signers is None:
        return None
    if isinstance(trusted_signers, (str, bytes, bytearray, _core.SigningKey)) \
            or not hasattr(trusted_signers, "__iter__"):
        raise TypeError("trusted_signers must be a list of signer public keys (str such as 'modelcrypt-signer1...'), "
                        "not a single value")
    out = []
    for s in trusted_signers:
        if isinstance(s, str):
            out.append(_core.parse_signer(s))
        elif isinstance(s, _core.SigningKey):
            out.append(s.public_key_bytes)
        elif isinstance(s, (bytes, bytearray, memoryview)) and len(s) == 32:
            out.append(bytes(s))
        else:
            raise TypeError("each trusted signer must be a str ('modelcrypt-signer1...' or a PEM public key), "
                            f"a SigningKey or 32 bytes, not {type(s).__name__}")
    if not out:
        raise ValueError("trusted_signers is empty: give at least one signer, or None to not require a signature")
    return out


def with_trusted_signers(credential: _Credential, trusted_signers: object) -> _Credential | _core.TrustedCredential:
    """``credential`` (a checked key or Identity) requiring a signature by one of ``trusted_signers``."""
    keys = signer_keys(trusted_signers)
    if keys is None:
        return credential
    if isinstance(credential, _core.TrustedCredential):
        raise TypeError("the key already carries trusted signers; give trusted_signers= once")
    return _core.TrustedCredential(credential, keys)


def requires_signature(credential: object) -> bool:
    return isinstance(credential, _core.TrustedCredential)
