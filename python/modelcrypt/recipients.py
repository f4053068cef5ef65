"""Public-key recipients (format v2): X25519 identities, recipients, and re-wrapping a file's key.

An *identity* is an X25519 private key (``MODELCRYPT-SECRET-KEY-1...``, or ``AGE-SECRET-KEY-1...``
as ``age-keygen`` writes it); its *recipient* is the public key (``modelcrypt1...`` / ``age1...``)
that publishers encrypt to. Wherever a key is accepted for reading (load, decrypt_bytes, verify,
open_encrypted, load_checkpoint, the framework loaders), an Identity is accepted too.
"""

from __future__ import annotations

import os
import stat
import warnings
from typing import Any

from . import _core
from ._api import StrPath, _check_bool, _check_key, _credential, _fspath, _recipient_keys
from ._atomic import atomic_write
from .exceptions import InsecureKeyFileWarning
from .keys import _path_shown

__all__ = [
    "Identity",
    "generate_identity",
    "read_identity_file",
    "write_identity_file",
    "identity_from_env",
    "read_recipients_file",
    "recipient_fingerprint",
    "add_recipients",
    "remove_recipients",
    "list_recipients",
    "DEFAULT_IDENTITY_ENV",
]

#: An X25519 identity held in wiping native memory (no secret in its repr; not picklable).
#: ``.recipient`` is its public recipient text; ``.public_key`` the 32 raw bytes.
Identity = _core.X25519Identity

DEFAULT_IDENTITY_ENV = "MODELCRYPT_IDENTITY"
_MAX_IDENTITY_FILE = 1 << 16


def generate_identity() -> Identity:
    """A fresh X25519 identity from OpenSSL's CSPRNG."""
    return Identity.generate()


def _read_small(path: StrPath, what: str) -> tuple[bytearray, int, str]:
    raw = _fspath(path, "path")
    name = _path_shown(os.fsdecode(raw))  # key text pasted in place of a path is not repeated
    failure = None
    try:
        f = open(raw, "rb", buffering=0)
    except OSError as exc:  # re-raised below with the name as shown, outside this block (no chained original)
        failure = (exc.errno, exc.strerror or "cannot open")
    if failure is not None:
        raise OSError(failure[0], failure[1], name)  # OSError(errno, ...) is FileNotFoundError etc.
    with f:
        mode = os.fstat(f.fileno()).st_mode
        content = bytearray(_MAX_IDENTITY_FILE + 1)
        size = 0
        while size < len(content):
            n = f.readinto(memoryview(content)[size:])
            if not n:
                break
            size += n
    if size > _MAX_IDENTITY_FILE:
        content[:] = bytes(len(content))
        raise ValueError(f"{what} {name} is larger than 64 KiB")
    del content[size:]
    return content, mode, name


def read_identity_file(path: StrPath) -> Identity:
    """An identity file: one MODELCRYPT-SECRET-KEY-1... or AGE-SECRET-KEY-1... line; '#' comment
    lines and blank lines ignored (the layout age-keygen writes). Warns when others can read it."""
    content, mode, name = _read_small(path, "identity file")
    try:
        if stat.S_IMODE(mode) & 0o077:
            warnings.warn(f"identity file {name} is accessible to other users (mode {stat.S_IMODE(mode):04o}); "
                          f"run: chmod 600 {name}", InsecureKeyFileWarning, stacklevel=2)
        return Identity.from_text(content, f"identity file {name}")
    finally:
        content[:] = bytes(len(content))


def identity_from_env(name: str = DEFAULT_IDENTITY_ENV) -> Identity:
    """An identity from an environment variable holding its text."""
    from .keys import _env_name

    shown = _env_name(name)  # a name that looks like key text is not repeated
    value = os.environ.get(name)
    if not value:
        raise ValueError(f"environment variable {shown} is " + ("not set" if value is None else "empty"))
    return Identity.from_text(bytearray(value.encode("ascii", "replace")), f"environment variable {shown}")


def write_identity_file(path: StrPath, identity: Identity, *, force: bool = False) -> None:
    """Write an identity file (mode 0600, atomically) with a comment naming its public recipient.
    Never replaces an existing file unless force=True."""
    if not isinstance(identity, Identity):
        raise TypeError(f"identity must be a modelcrypt.Identity, not {type(identity).__name__}")
    _check_bool(force, "force")
    target = os.fsdecode(_fspath(path, "path"))
    secret = identity.secret_text()
    header = f"# modelcrypt X25519 identity\n# public key: {identity.recipient}\n".encode()
    content = bytearray(len(header) + len(secret) + 1)
    content[: len(header)] = header
    content[len(header):-1] = secret
    content[-1] = 0x0A
    secret[:] = bytes(len(secret))
    try:
        atomic_write(target, content, permissions=0o600, exact_permissions=True, replace=force)
    except FileExistsError:
        raise FileExistsError(f"{target} exists; refusing to overwrite an identity or key file") from None
    finally:
        content[:] = bytes(len(content))


def read_recipients_file(path: StrPath) -> list[str]:
    """A recipients file: one recipient per line ('#' comments and blank lines ignored), checked."""
    content, _, name = _read_small(path, "recipients file")
    text = content.decode("utf-8", "replace")
    keys = _core.parse_recipients_list(text, f"recipients file {name}")
    return [_core.format_recipient(k) for k in keys]


def recipient_fingerprint(recipient: object) -> str:
    """The 16-byte fingerprint (hex) under which a file lists this recipient (inspect, list_recipients)."""
    keys = _recipient_keys([recipient])
    assert keys is not None  # (None only for recipients=None)
    (key,) = keys
    return _core.recipient_fingerprint(key).hex()


def _edit(path: StrPath, key: object, identity: object, add: object, remove: object, add_keys: object,
          remove_keys: object, durable: bool) -> dict:
    credential = _credential(key, identity)
    def symmetric(keys: Any) -> list:
        if keys is None:
            return []
        return [_check_key(k) for k in keys]
    return _core.edit_recipients(_fspath(path, "path"), credential, _recipient_keys(add) or [], symmetric(add_keys),
                                 _recipient_keys(remove) or [], symmetric(remove_keys), _check_bool(durable, "durable"))


def add_recipients(path: StrPath, key: object = None, recipients: list | None = None, *, identity: object = None,
                   keys: list | None = None, durable: bool = True) -> dict:
    """Wrap the file key of the format v2 file ``path`` for more recipients (and symmetric ``keys``).

    ``key`` / ``identity`` must open the file. No payload byte is decrypted or re-encrypted: when the
    header has room only its recipients section is rewritten in place; otherwise the payload is
    copied unchanged behind a larger header into a file that replaces ``path`` atomically. Returns
    {"in_place", "stanzas", "added", "removed"}. Recipients already present are left as they are."""
    return _edit(path, key, identity, recipients, None, keys, None, durable)


def remove_recipients(path: StrPath, key: object = None, recipients: list | None = None, *, identity: object = None,
                      keys: list | None = None, durable: bool = True) -> dict:
    """Remove recipients (and symmetric ``keys``' stanzas) from a format v2 file, as add_recipients.

    The removed devices can no longer unwrap the file key from this file; one that kept the key or
    an old copy can still read it (re-encrypt with migrate to lock it out of new versions). A
    recipient that is not in the file is a ValueError; so is removing the last one."""
    return _edit(path, key, identity, None, recipients, None, keys, durable)


def list_recipients(path: StrPath) -> list[dict]:
    """The stanzas of a file, keyless: [{"type", "type_id", "fingerprint" (hex or None)}]."""
    from ._api import inspect

    return [dict(r) for r in inspect(path).recipients]
