"""Reading the members of an encrypted Hugging Face directory into memory, each checked against
the directory's authenticated manifest (docs/FORMAT.md, "Encrypted directories")."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any, Optional

from .. import _sets
from .._custom import wipe_if_sole_owner
from .._random_access import open_encrypted
from .._sources import is_url
from .._tree import walk
from ..exceptions import FormatError, SetMismatchError

__all__: list[str] = []


class EncryptedModelDirectory:
    """An encrypted directory (what ``modelcrypt encrypt DIR -o OUT`` and
    ``modelcrypt.transformers.save_pretrained`` write), local or under a URL prefix.

    Opening it reads and authenticates the manifest (a wrong key: KeyMismatchError). A local
    directory is compared with the manifest as a whole at once: a member missing or a file added is
    a SetMismatchError. Every member read is checked to carry the manifest's set id and its own
    relative path (a file from another save, or two members swapped: SetMismatchError) and is
    decrypted into memory only."""

    def __init__(self, root: Any, key: Any, storage_options: Optional[Mapping[str, Any]] = None):
        if is_url(root):
            self.root: str = root.rstrip("/")
        else:
            if storage_options is not None:
                raise ValueError("storage_options apply to URLs (s3://..., https://...), not to a local path")
            self.root = os.path.abspath(os.fsdecode(os.fspath(root)))
            if not os.path.isdir(self.root):
                raise NotADirectoryError(f"{self.root} is not a directory (an encrypted Hugging Face model "
                                         "directory is written by `modelcrypt encrypt DIR -o DIR.enc/` or "
                                         "modelcrypt.transformers.save_pretrained)")
        self.key = key
        self.storage_options = storage_options
        manifest = _sets.Manifest.read(self.root, key, storage_options)
        if manifest is None:
            raise SetMismatchError(f"{self.root}: no {_sets.MANIFEST_NAME}: not an encrypted directory (or its "
                                   "manifest was removed)")
        self.manifest = manifest
        if not is_url(self.root):
            files = [rel for kind, rel in walk(self.root) if kind == "file" and rel != _sets.MANIFEST_NAME]
            manifest.check_tree(files)

    def __contains__(self, rel: str) -> bool:
        return rel in self.manifest.members or rel in self.manifest.copied

    def names(self) -> list[str]:
        """The relative paths the manifest lists (encrypted members and plaintext copies)."""
        return sorted(set(self.manifest.members) | set(self.manifest.copied))

    def _path(self, rel: str) -> str:
        return _sets.join_member(self.root, rel)

    def _missing(self, rel: str) -> SetMismatchError:
        return SetMismatchError(f"{_sets.shown_place(self._path(rel))}: member {rel!r} listed in the manifest "
                                "is missing")

    def read(self, rel: str) -> Any:
        """The plaintext of member ``rel``: a DecryptedBuffer (bytes for a file the manifest lists as
        copied as plaintext, checked against its SHA-256)."""
        if rel not in self:
            raise FileNotFoundError(f"{self.root}: no {rel!r} in the encrypted directory")
        path = self._path(rel)
        if rel in self.manifest.copied:
            return self._read_copied(rel, path)
        try:
            if is_url(path):
                opened = open_encrypted(path, self.key, storage_options=self.storage_options)
            else:
                if not os.path.isfile(path):
                    raise self._missing(rel)
                opened = open_encrypted(path, self.key)
        except FileNotFoundError:
            raise self._missing(rel) from None
        with opened as f:
            self.manifest.check_member(rel, f.metadata, f.plaintext_length, f.path)
            return f.read_all()

    def _read_copied(self, rel: str, path: str) -> bytes:
        try:
            if is_url(path):
                import fsspec

                with fsspec.open(path, "rb", **dict(self.storage_options or {})) as f:
                    data = f.read()
            else:
                with open(path, "rb") as f:
                    data = f.read()
        except FileNotFoundError:
            raise self._missing(rel) from None
        self.manifest.check_copied(rel, len(data), hashlib.sha256(data).hexdigest(), _sets.shown_place(path))
        return data

    def read_json(self, rel: str) -> Any:
        """Member ``rel`` parsed as UTF-8 JSON (FormatError naming the file, quoting none of it)."""
        return parse_json(self.read_text(rel), f"{_sets.shown_place(self._path(rel))}")

    def read_text(self, rel: str) -> str:
        """Member ``rel`` decoded as UTF-8 (its decrypted buffer and the bytes copy wiped afterwards)."""
        buf = self.read(rel)
        raw = bytes(buf)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FormatError(f"{_sets.shown_place(self._path(rel))}: not UTF-8 (at byte {exc.start})") from None
        finally:
            wipe_if_sole_owner(raw)
            close = getattr(buf, "close", None)
            if close is not None:
                close()


def parse_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        msg = getattr(exc, "msg", type(exc).__name__)
        pos = getattr(exc, "pos", None)
        at = f" at character {pos})" if pos is not None else ")"
        raise FormatError(f"{where}: not valid JSON ({msg}" + at) from None
