"""Publisher signatures (format v3): Ed25519 signing keys, trusted signers, keyless verification.

A publisher signs a model when encrypting it (``encrypt_file(..., signing_key=sk)``); devices that
pass ``trusted_signers=[sk.public_key]`` to any reader (load, load_range, decrypt_bytes, verify,
open_encrypted, load_checkpoint, the framework loaders) get a SignatureError, and no plaintext,
unless the file is signed by one of them and unchanged since. Anyone can check the signature
without any key: ``verify_signature(path, trusted_signers)``.

Key texts: ``MODELCRYPT-SIGNING-KEY-1...`` (private, in a 0600 file) and ``modelcrypt-signer1...``
(public, what devices trust). PEM Ed25519 keys as OpenSSL writes them are accepted too.
"""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Mapping
from typing import Any

from . import _core
from ._atomic import atomic_write
from ._checks import (
    ProgressCallback,
    StrPath,
    _check_bool,
    _check_progress,
    _check_threads,
    _fspath,
)
from ._sources import is_url
from ._trust import signer_keys
from ._url_files import verify_signature_url
from .exceptions import InsecureKeyFileWarning
from .recipients import _read_small

__all__ = [
    "SigningKey",
    "generate_signing_key",
    "read_signing_key_file",
    "write_signing_key_file",
    "signing_key_from_env",
    "read_trusted_signers_file",
    "parse_signer",
    "verify_signature",
    "DEFAULT_SIGNING_KEY_ENV",
]

#: An Ed25519 signing key held in wiping native memory (no secret in its repr; not picklable).
#: ``.public_key`` is its public text ("modelcrypt-signer1..."); ``.public_key_bytes`` the 32 raw bytes.
SigningKey = _core.SigningKey

DEFAULT_SIGNING_KEY_ENV = "MODELCRYPT_SIGNING_KEY"


def generate_signing_key() -> SigningKey:
    """A fresh Ed25519 signing key from OpenSSL's CSPRNG."""
    return SigningKey.generate()


def read_signing_key_file(path: StrPath) -> SigningKey:
    """A signing key file: one MODELCRYPT-SIGNING-KEY-1... line ('#' comments and blank lines
    ignored) or an unencrypted PEM Ed25519 private key. Warns when others can read it."""
    content, mode, name = _read_small(path, "signing key file")
    try:
        if stat.S_IMODE(mode) & 0o077:
            warnings.warn(f"signing key file {name} is accessible to other users (mode {stat.S_IMODE(mode):04o}); "
                          f"run: chmod 600 {name}", InsecureKeyFileWarning, stacklevel=2)
        return SigningKey.from_text(content, f"signing key file {name}")
    finally:
        content[:] = bytes(len(content))


def signing_key_from_env(name: str = DEFAULT_SIGNING_KEY_ENV) -> SigningKey:
    """A signing key from an environment variable holding its text (for CI signing jobs)."""
    from .keys import _env_name

    shown = _env_name(name)
    value = os.environ.get(name)
    if not value:
        raise ValueError(f"environment variable {shown} is " + ("not set" if value is None else "empty"))
    return SigningKey.from_text(bytearray(value.encode("ascii", "replace")), f"environment variable {shown}")


def write_signing_key_file(path: StrPath, signing_key: SigningKey, *, force: bool = False) -> None:
    """Write a signing key file (mode 0600, atomically) with a comment naming its public key.
    Never replaces an existing file unless force=True."""
    if not isinstance(signing_key, SigningKey):
        raise TypeError(f"signing_key must be a modelcrypt.SigningKey, not {type(signing_key).__name__}")
    _check_bool(force, "force")
    target = os.fsdecode(_fspath(path, "path"))
    secret = signing_key.secret_text()
    header = f"# modelcrypt Ed25519 signing key\n# public key: {signing_key.public_key}\n".encode()
    content = bytearray(len(header) + len(secret) + 1)
    content[: len(header)] = header
    content[len(header):-1] = secret
    content[-1] = 0x0A
    secret[:] = bytes(len(secret))
    try:
        atomic_write(target, content, permissions=0o600, exact_permissions=True, replace=force)
    except FileExistsError:
        raise FileExistsError(f"{target} exists; refusing to overwrite a signing key or key file") from None
    finally:
        content[:] = bytes(len(content))


def read_trusted_signers_file(path: StrPath) -> list[str]:
    """A trusted-signers file: one "modelcrypt-signer1..." per line ('#' comments ignored), or a PEM
    Ed25519 public key. Returns the signers' public key texts."""
    raw = _fspath(path, "path")
    with open(raw, "rb") as f:
        content = f.read(1 << 20)
    keys = _core.parse_signers_list(content, f"trusted signers file {os.fsdecode(raw)}")
    return [_core.format_signer(k) for k in keys]


def parse_signer(text: str) -> bytes:
    """The 32-byte Ed25519 public key of a signer given as "modelcrypt-signer1..." or PEM text."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, not {type(text).__name__}")
    return _core.parse_signer(text)


def verify_signature(path: StrPath, trusted_signers: list, *, threads: int | None = None,
                     progress: ProgressCallback = None, storage_options: Mapping[str, Any] | None = None) -> str:
    """Keyless check that ``path`` is exactly what a trusted publisher signed (format v3): the
    header, the signature and every chunk's hash, without any key and without decrypting.

    Returns the signer's public key text. Unsigned, signed by an untrusted key, changed, truncated or
    extended: SignatureError. The recipients block is not covered (recipients can be added and
    removed without the publisher), so this proves what the file decrypts to, not who can open it.

    ``path`` may be a URL (``s3://...``, through fsspec; ``storage_options`` as fsspec takes them):
    the object is read once.
    """
    if is_url(path):
        return verify_signature_url(path, trusted_signers, threads=threads, progress=progress,
                                    storage_options=storage_options)
    if storage_options is not None:
        raise ValueError("storage_options apply to URLs (s3://..., https://...), not to a local path")
    keys = signer_keys(trusted_signers)
    if keys is None:
        raise TypeError("verify_signature needs trusted_signers (a list of signer public keys)")
    signer = _core.verify_signature(_fspath(path, "path"), keys, _check_threads(threads), _check_progress(progress))
    return _core.format_signer(signer)
