"""What ``modelcrypt.inspect`` returns (FileInfo) and how it is read: from a local file or, through
fsspec, from the object at a URL (one ranged request for the header)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import _core, _metadata, _sources
from ._checks import Credential, StrPath, _credential, _fspath

__all__ = ["FileInfo", "inspect"]


@dataclass(frozen=True)
class FileInfo:
    """Header fields of an encrypted file. Read without the key, none of it is authenticated; read
    with one (``inspect(path, key)`` / ``identity=``), ``authenticated`` is True: every field but
    ``file_length`` and ``signer`` comes from the header the key authenticated, and ``opened_by``
    says which stanza opened it.

    For MindSpore and PaddleX files (``format`` "mindspore" / "paddlex") the modelcrypt-only fields
    are None; ``cipher`` and ``frames`` describe them (``plaintext_length`` is None for CBC files,
    whose padding is only known after decryption).
    """

    path: str
    file_length: int
    plaintext_length: int | None
    format: str = "modelcrypt"
    cipher: str = "AES-256-GCM"
    frames: int | None = None
    version: int | None = None
    algorithm: str | None = None
    chunk_size: int | None = None
    chunk_count: int | None = None
    header_length: int | None = None
    expected_file_length: int | None = None
    salt: bytes | None = None
    key_commitment: bytes | None = None
    metadata_raw: bytes = b""
    #: Format v2: the recipients block's size and its stanzas, [{"type": "x25519" | "symmetric" |
    #: "unknown", "type_id": int, "fingerprint": hex str | None}], in file order ([] for v1).
    recipients_length: int | None = None
    recipients: tuple = ()
    #: Format v3: the publisher the signature trailer names ("modelcrypt-signer1..."). Unauthenticated
    #: (inspect needs no key): it is a claim until verify_signature / trusted_signers= checks it.
    signer: str | None = None
    #: Whether the header was authenticated (inspect with a key or identity).
    authenticated: bool = False
    #: With a key or identity: what opened the file: "key" (format v1), "symmetric" (a v2 key stanza)
    #: or "x25519 <fingerprint>" (the identity's stanza). None without one.
    opened_by: str | None = None

    @property
    def metadata(self) -> dict[str, str]:
        return _metadata.decode(self.metadata_raw)


def inspect(path: StrPath, key: Credential | None = None, *, identity: object = None,
            storage_options: Mapping[str, Any] | None = None) -> FileInfo:
    """Header fields of an encrypted file. No key needed, and then nothing returned is authenticated.

    With ``key`` (or ``identity=``) the header of a modelcrypt file is authenticated first (reader
    steps 1-8 of docs/FORMAT.md, no chunk is read): a wrong key is KeyMismatchError, a modified
    header AuthenticationError, and the fields returned are those of the authenticated header, with
    ``authenticated`` True and ``opened_by`` naming the stanza that opened it. The payload is not
    checked (that is :func:`verify`), and ``signer`` stays a claim (see verify_signature).

    ``path`` may be a URL (``s3://...``, ``https://...``, through fsspec; ``storage_options`` as
    fsspec takes them): one ranged request reads the header."""
    if _sources.is_url(path):
        return inspect_url(path, key, identity=identity, storage_options=storage_options)
    if storage_options is not None:
        raise ValueError("storage_options apply to URLs (s3://..., https://...), not to a local path")
    raw = _fspath(path, "path")
    if key is not None or identity is not None:
        return _inspect_authenticated(raw, _credential(key, identity))
    if _core.detect_format(raw) in ("mindspore", "paddlex"):
        return FileInfo(path=os.fsdecode(raw), **_core.describe_legacy(raw))
    return FileInfo(path=os.fsdecode(raw), **_file_info_fields(_core.inspect(raw)))


def _file_info_fields(fields: dict) -> dict:
    """FileInfo's fields from the core's header dict (fingerprints and signer as text)."""
    signer = fields.pop("signer", None)
    fields["signer"] = _core.format_signer(signer) if signer is not None else None
    fields["recipients"] = tuple(
        {**r, "fingerprint": r["fingerprint"].hex() if r["fingerprint"] is not None else None}
        for r in fields["recipients"])
    return fields


def _inspect_authenticated(raw: bytes, credential: object) -> FileInfo:
    fmt = _core.detect_format(raw)
    if fmt in ("mindspore", "paddlex"):
        raise ValueError(f"inspect with a key authenticates modelcrypt headers; a {fmt} file has no authenticated "
                         "header (verify it with format=..., or migrate it to modelcrypt)")
    handle = _core.open_encrypted(raw, credential, "AES-GCM")
    try:
        fields = _file_info_fields(handle.header_info)
    finally:
        handle.close()
    if not fields["recipients"]:
        opened_by = "key"  # format v1: the key itself
    elif isinstance(credential, _core.X25519Identity):
        opened_by = f"x25519 {_core.recipient_fingerprint(credential.public_key).hex()}"
    else:
        opened_by = "symmetric"
    # The signer is in the v3 trailer, which the header does not cover: a claim, read as inspect reads it.
    claimed_signer = _core.inspect(raw)["signer"] if fields["version"] == 3 else None
    fields["signer"] = _core.format_signer(claimed_signer) if claimed_signer is not None else None
    return FileInfo(path=os.fsdecode(raw), authenticated=True, opened_by=opened_by, **fields)


def inspect_url(url: str, key: object = None, *, identity: object = None,
                storage_options: Mapping[str, Any] | None = None) -> FileInfo:
    """modelcrypt.inspect of the object at ``url``: its header (one request), unauthenticated
    without a key; with ``key`` or ``identity`` the header is authenticated as for a local file
    (no chunk is read) and ``opened_by`` names the stanza that opened it."""
    with _sources.RangeReader(url, storage_options) as reader:
        claimed = _file_info_fields(_core.inspect_source(reader, reader.size))
        if key is None and identity is None:
            return FileInfo(path=_sources.shown_url(url), **claimed)
        credential = _credential(key, identity)
        handle = _core.open_source(reader, reader.size, credential, "AES-GCM")
        try:
            fields = _file_info_fields(handle.header_info)
        finally:
            handle.close()
    if not fields["recipients"]:
        opened_by = "key"
    elif isinstance(credential, _core.X25519Identity):
        opened_by = f"x25519 {_core.recipient_fingerprint(credential.public_key).hex()}"
    else:
        opened_by = "symmetric"
    fields["signer"] = claimed["signer"] if fields["version"] == 3 else None  # the trailer's claim
    return FileInfo(path=_sources.shown_url(url), authenticated=True, opened_by=opened_by, **fields)
