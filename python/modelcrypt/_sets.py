"""Binding files into sets: shards of one checkpoint save, the files of an encrypted directory,
a ModelCheckpoint series (docs/FORMAT.md, "Sets of files").

Every member carries, in its authenticated metadata, the set's random id and its own name within
the set (plus its place for shards, its step for ModelCheckpoint files); an encrypted directory
also holds an encrypted manifest listing every member. Loaders compare what they find on disk with
that authenticated record and raise SetMismatchError on any difference. Files written before sets
existed carry no set id and load as before; but once any file of a group carries one, every file
of the group must, consistently (a binding cannot be removed by swapping in unbound files).
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import secrets
from collections.abc import Iterable, Mapping
from typing import Any, Optional

from . import _core, _metadata
from ._sources import is_file_object, is_url, shown_url
from .exceptions import FormatError, SetMismatchError

SET = "modelcrypt.set"
MEMBER = "modelcrypt.member"
MEMBER_INDEX = "modelcrypt.member_index"
MEMBER_COUNT = "modelcrypt.member_count"
WEIGHT_MAP = "modelcrypt.weight_map_sha256"
STEP = "modelcrypt.step"
KIND = "modelcrypt.kind"
RESERVED_PREFIX = "modelcrypt."
MANIFEST_NAME = ".modelcrypt-manifest"
MANIFEST_FORMAT = "modelcrypt-manifest"

_SET_ID = re.compile(r"[0-9a-f]{32}")


def new_set_id() -> str:
    """A fresh random 128-bit set id (32 lowercase hex digits)."""
    return secrets.token_bytes(16).hex()  # (not a secret: a public random id)


def check_user_metadata(metadata: Optional[Mapping[str, str]]) -> None:
    """Refuses caller metadata that uses the reserved ``modelcrypt.`` keys (set-binding writers only)."""
    for k in metadata or {}:
        if isinstance(k, str) and k.startswith(RESERVED_PREFIX):
            raise ValueError(f"metadata key {k!r} is reserved (keys starting with {RESERVED_PREFIX!r} bind sets "
                             "of files)")


def weight_map_digest(weight_map: Mapping[str, str]) -> str:
    """SHA-256 (hex) of a weight map in canonical JSON (sorted keys, no spaces, UTF-8)."""
    text = json.dumps(dict(weight_map), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def set_id_of(metadata: Mapping[str, str], where: str) -> Optional[str]:
    value = metadata.get(SET)
    if value is None:
        return None
    if not _SET_ID.fullmatch(value):
        raise FormatError(f"{where}: authenticated {SET} {value!r} is not 32 lowercase hex digits")
    return value


def _int_field(metadata: Mapping[str, str], key: str, where: str) -> int:
    value = metadata.get(key)
    if value is None or not re.fullmatch(r"0|[1-9][0-9]{0,11}", value):
        raise FormatError(f"{where}: authenticated {key} {value!r} is not a decimal integer")
    return int(value)


# ------------------------------------------------------------------ shards of one checkpoint save


def shard_metadata(set_id: str, name: str, index: int, count: int, digest: str) -> dict[str, str]:
    return {SET: set_id, MEMBER: name, MEMBER_INDEX: str(index), MEMBER_COUNT: str(count), WEIGHT_MAP: digest}


def check_shards(shards: Mapping[str, Mapping[str, str]], *, expected_names: Optional[Iterable[str]] = None,
                 weight_map: Optional[Mapping[str, str]] = None, index_set: Optional[str] = None,
                 where: str) -> None:
    """Checks a group of shards, {file name: authenticated metadata} (``{}`` for an unbound or
    plaintext file), against each other and against the (unauthenticated) index: one set id, each
    file named as it was saved, each place 1..N exactly once, and the weight map the shards
    authenticated. Nothing to check when no shard is bound and the index names no set."""
    bound = {name: md for name, md in shards.items() if SET in md}
    if not bound and index_set is None:
        return
    unbound = sorted(name for name in shards if name not in bound)
    if unbound:
        raise SetMismatchError(f"{where}: shard {unbound[0]} carries no set binding, but "
                               + ("the index names set " + index_set if index_set and not bound
                                  else "the other shards were saved as one set")
                               + " (a file from another save or an older version?)")
    if not bound:
        raise SetMismatchError(f"{where}: the index names set {index_set}, but none of its shards is there")
    set_ids = {name: set_id_of(md, f"shard {name}") for name, md in bound.items()}
    reference = index_set if index_set is not None else next(iter(set_ids.values()))
    for name, sid in set_ids.items():
        if sid != reference:
            raise SetMismatchError(f"{where}: shard {name} belongs to another save (set {sid}, expected {reference})")
    places: dict[int, str] = {}
    counts = set()
    digests = set()
    for name, md in bound.items():
        member = md.get(MEMBER)
        if member != name:
            raise SetMismatchError(f"{where}: file {name} holds shard {member!r} of the save (renamed or copied "
                                   "over another shard's name)")
        place = _int_field(md, MEMBER_INDEX, f"shard {name}")
        counts.add(_int_field(md, MEMBER_COUNT, f"shard {name}"))
        digests.add(md.get(WEIGHT_MAP))
        if place in places:
            raise SetMismatchError(f"{where}: shards {places[place]} and {name} both claim place {place} (duplicated)")
        places[place] = name
    if len(digests) != 1:
        raise SetMismatchError(f"{where}: the shards disagree on the weight map (mixed saves)")
    if weight_map is not None and weight_map_digest(weight_map) not in digests:
        raise SetMismatchError(f"{where}: the weight map does not match the one authenticated in the shards "
                               "(the index was edited or belongs to another save)")
    if len(counts) != 1:
        raise SetMismatchError(f"{where}: the shards disagree on how many shards the save has")
    (count,) = counts
    missing = [i for i in range(1, count + 1) if i not in places]
    if missing or len(places) != count:
        raise SetMismatchError(f"{where}: the save has {count} shard(s) but shard(s) number "
                               f"{', '.join(map(str, missing[:10]))} {'is' if len(missing) == 1 else 'are'} missing")
    if expected_names is not None:
        absent = sorted(set(expected_names) - set(shards))
        if absent:
            raise SetMismatchError(f"{where}: shard {absent[0]} is missing")


# ------------------------------------------------------------------ ModelCheckpoint series


_STEP_NAME = re.compile(r".*-(\d+)\.ckpt")


def check_step(path: str, metadata: Mapping[str, str]) -> None:
    """A ModelCheckpoint file's name must be the one it was saved under, with its authenticated step."""
    if STEP not in metadata:
        return
    where = f"checkpoint {path}"
    step = _int_field(metadata, STEP, where)
    name = os.path.basename(path)
    m = _STEP_NAME.fullmatch(name)
    if m is None or int(m.group(1)) != step or metadata.get(MEMBER, name) != name:
        raise SetMismatchError(f"{where}: the file name does not match its authenticated step {step} "
                               f"(saved as {metadata.get(MEMBER)!r}); it was renamed")


# ------------------------------------------------------------------ encrypted directories


def member_metadata(set_id: str, rel: str, base: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    out = dict(base or {})
    out[SET] = set_id
    out[MEMBER] = rel
    return out


def manifest_bytes(set_id: str, members: Mapping[str, int],
                   copied: Optional[Mapping[str, tuple[int, str]]] = None) -> bytes:
    doc: dict[str, Any] = {"format": MANIFEST_FORMAT, "version": 1, "set": set_id,
                           "members": {rel: {"plaintext_length": n} for rel, n in sorted(members.items())}}
    if copied:  # files copied as plaintext on request (encrypt --copy-excluded): their length and SHA-256
        doc["copied"] = {rel: {"length": n, "sha256": digest} for rel, (n, digest) in sorted(copied.items())}
    return json.dumps(doc, ensure_ascii=False, sort_keys=True, indent=1).encode("utf-8") + b"\n"


def write_manifest(directory: str, key: Any, set_id: str, members: Mapping[str, int],
                   copied: Optional[Mapping[str, tuple[int, str]]] = None, signing_key: Any = None) -> str:
    """Writes the encrypted manifest of a directory (atomic)."""
    path = os.path.join(directory, MANIFEST_NAME)
    meta = _metadata.encode({SET: set_id, KIND: "manifest"})
    _core.encrypt_parts_to_file([manifest_bytes(set_id, members, copied)], os.fsencode(path), key, "AES-GCM",
                                _core.DEFAULT_CHUNK_SIZE, meta, 0, signing_key=signing_key)
    return path


def _member_path_ok(rel: object) -> bool:
    return isinstance(rel, str) and bool(rel) and not rel.startswith("/") and ".." not in rel.split("/")


_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class Manifest:
    """The authenticated list of an encrypted directory's members."""

    def __init__(self, root: str, set_id: str, members: dict[str, int],
                 copied: Optional[dict[str, tuple[int, str]]] = None):
        self.root, self.set_id, self.members = root, set_id, members
        self.copied: dict[str, tuple[int, str]] = copied or {}  # plaintext copies: rel -> (length, sha256 hex)

    @classmethod
    def read(cls, root: str, key: Any, storage_options: Optional[Mapping[str, Any]] = None) -> Optional["Manifest"]:
        """The manifest of directory ``root`` (a local directory or a URL prefix, read with
        ``storage_options``), authenticated with ``key``; None when there is none."""
        from ._random_access import open_encrypted

        path = join_member(root, MANIFEST_NAME)
        if is_url(root):
            try:
                opened = open_encrypted(path, key, storage_options=storage_options)
            except FileNotFoundError:
                return None
        elif not os.path.lexists(path):
            return None
        else:
            opened = open_encrypted(path, key)
        where = f"manifest {shown_place(path)}"
        with opened as f:
            md = f.metadata
            with f.read_all() as buf:
                raw = bytes(buf)
        if md.get(KIND) != "manifest":
            raise SetMismatchError(f"{where}: not a manifest (a member file copied over it?)")
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise FormatError(f"{where}: not UTF-8 JSON: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT or doc.get("version") != 1:
            raise FormatError(f"{where}: not a version 1 modelcrypt manifest")
        set_id = doc.get("set")
        if set_id != set_id_of(md, where) or not isinstance(set_id, str):
            raise FormatError(f"{where}: its set id disagrees with its authenticated metadata")
        members = doc.get("members")
        if not isinstance(members, dict):
            raise FormatError(f"{where}: 'members' is not an object")
        out: dict[str, int] = {}
        for rel, info in members.items():
            n = info.get("plaintext_length") if isinstance(info, dict) else None
            if not _member_path_ok(rel) or type(n) is not int or n < 0:
                raise FormatError(f"{where}: bad member entry {rel!r}")
            out[rel] = n
        copied_doc = doc.get("copied", {})
        if not isinstance(copied_doc, dict):
            raise FormatError(f"{where}: 'copied' is not an object")
        copied: dict[str, tuple[int, str]] = {}
        for rel, info in copied_doc.items():
            n = info.get("length") if isinstance(info, dict) else None
            digest = info.get("sha256") if isinstance(info, dict) else None
            if (not _member_path_ok(rel) or rel in out or type(n) is not int or n < 0
                    or not isinstance(digest, str) or not _SHA256_HEX.fullmatch(digest)):
                raise FormatError(f"{where}: bad entry {rel!r} of 'copied'")
            copied[rel] = (n, digest)
        return cls(root, set_id, out, copied)

    def check_copied(self, rel: str, length: int, digest: str, where: str) -> None:
        """A file the manifest lists as copied as plaintext, against its listed length and SHA-256."""
        if rel not in self.copied:
            raise SetMismatchError(f"{where}: {rel!r} is not in the directory's manifest")
        if self.copied[rel] != (length, digest):
            raise SetMismatchError(f"{where}: this plaintext file was modified after it was copied "
                                   "(its length or SHA-256 differs from the manifest's)")

    def check_member(self, rel: str, metadata: Mapping[str, str], plaintext_length: int, where: str) -> None:
        """One file of the directory, found at relative path ``rel``, against the manifest."""
        sid = set_id_of(metadata, where)
        if sid is None:
            raise SetMismatchError(f"{where}: not a member of the encrypted directory (no set binding; "
                                   "a file added from elsewhere?)")
        if sid != self.set_id:
            raise SetMismatchError(f"{where}: belongs to another encrypted directory (set {sid}, "
                                   f"the manifest's is {self.set_id})")
        member = metadata.get(MEMBER)
        if member != rel:
            raise SetMismatchError(f"{where}: was encrypted as {member!r}, not {rel!r} (renamed or copied over "
                                   "another member)")
        if rel not in self.members:
            raise SetMismatchError(f"{where}: {rel!r} is not in the directory's manifest")
        if self.members[rel] != plaintext_length:
            raise SetMismatchError(f"{where}: {plaintext_length} bytes, the manifest lists {self.members[rel]}")

    def check_tree(self, files: Iterable[str]) -> None:
        """The files found (relative paths, the manifest excluded) are exactly the members listed."""
        found = set(files)
        listed = set(self.members) | set(self.copied)
        missing = sorted(listed - found)
        if missing:
            raise SetMismatchError(f"{self.root}: member {missing[0]!r} listed in the manifest is missing"
                                   + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        extra = sorted(found - listed)
        if extra:
            raise SetMismatchError(f"{self.root}: {extra[0]!r} is not listed in the directory's manifest "
                                   "(added after encryption?)")


def _url_path(url: str) -> tuple[str, str]:
    """("scheme://", the rest without any query string) of a URL."""
    scheme, _, rest = url.split("?", 1)[0].partition("://")
    return scheme + "://", rest


def join_member(root: str, rel: str) -> str:
    """Where the member ``rel`` (``/``-separated) of the set rooted at ``root`` is: a path under a
    local directory, or an object under a URL prefix (``s3://bucket/dir`` + ``a/b`` ->
    ``s3://bucket/dir/a/b``)."""
    if is_url(root):
        return root.rstrip("/") + "/" + rel
    return os.path.join(root, *rel.split("/"))


def shown_place(path: Any) -> str:
    """A file's location for messages: a local path, a URL without credentials or query string, or
    a file object's name."""
    if is_url(path):
        return shown_url(path)
    if is_file_object(path):
        name = getattr(path, "name", None)
        return name if isinstance(name, str) else f"<{type(path).__name__}>"
    return os.fsdecode(os.fspath(path))


def root_of(path: str, rel: str) -> Optional[str]:
    """The directory (or URL prefix) a member named ``rel`` lives under when found at ``path``; None
    when ``path`` does not end with ``rel`` (the file was renamed or moved)."""
    parts = rel.split("/")
    if is_url(path):
        scheme, rest = _url_path(path)
        found = rest.split("/")
        if len(found) <= len(parts) or found[-len(parts):] != parts:
            return None  # (a bucket itself is a root, never "scheme://")
        return scheme + "/".join(found[:-len(parts)])
    p = os.path.abspath(path)
    for part in reversed(parts):
        head, tail = os.path.split(p)
        if tail != part:
            return None
        p = head
    return p


class BoundFiles:
    """Loads the files of one model (a model and its external data, a program and its parameters)
    so that they are one set: each is read through one handle whose authenticated metadata is
    checked before its plaintext is handed out. Unbound files (no set id; custom or legacy modes)
    load as before, unless another file of the same model is bound."""

    def __init__(self, key: Any, mode: Any, format: str = "modelcrypt",
                 storage_options: Optional[Mapping[str, Any]] = None):
        self.key, self.mode, self.format = key, mode, format
        self.storage_options = storage_options  # for files given as URLs (fsspec); refused with a local path
        self.set_id: Optional[str] = None
        self.manifest: Optional[Manifest] = None
        self.unbound: Optional[str] = None  # a file loaded without a binding
        self.root: Optional[str] = None
        self.manifest_missing: Optional[str] = None

    def load(self, path: Any, rel: Optional[str] = None) -> Any:
        """Decrypts ``path`` (a local path, a URL or a file object) into a DecryptedBuffer. ``rel``:
        the member name it must carry (relative to the first file's set root); None for the first
        file (the model). Members of a set found at URLs are checked exactly as local ones: their
        root is the URL prefix, their manifest the object beside them."""
        from ._api import _check_source_mode, is_encrypted, load as _load
        from ._random_access import open_encrypted

        if is_url(path) or is_file_object(path):  # modelcrypt files only (no legacy format, no custom cipher)
            _check_source_mode(self.mode, self.format)
            opened = open_encrypted(path, self.key, self.mode, storage_options=self.storage_options)
            p: Any = path
        else:
            if self.storage_options is not None:
                raise ValueError("storage_options apply to URLs (s3://..., https://...), not to a local path")
            p = os.fsdecode(os.fspath(path))
            if callable(self.mode) or not isinstance(self.mode, str) or self.mode.upper() != "AES-GCM" \
                    or not is_encrypted(p):
                buf = _load(p, self.key, self.mode, format=self.format)  # legacy files only when format says so
                self._note_unbound(p)
                return buf
            opened = open_encrypted(p, self.key, self.mode)
        with opened as f:
            where = f.path
            md = f.metadata
            sid = set_id_of(md, where)
            if sid is None:
                self._note_unbound(where)
            else:
                self._check_bound(p, rel, md, f.plaintext_length, sid, where)
            return f.read_all()

    def rel_of(self, location: Any) -> Optional[str]:
        """The member name of the file at ``location`` (a path or URL) in the set: its path relative to
        the set's root; None before a bound file decided the root, or for a file object."""
        if self.root is None or is_file_object(location):
            return None
        if is_url(self.root):
            scheme, rest = _url_path(location) if is_url(location) else ("", os.fsdecode(os.fspath(location)))
            root_scheme, root_rest = _url_path(self.root)
            if scheme != root_scheme:
                return shown_place(location)  # not under the root: matches no member name
            return posixpath.relpath("/" + rest, "/" + root_rest)
        return os.path.relpath(os.path.abspath(os.fsdecode(os.fspath(location))), self.root).replace(os.sep, "/")

    def _note_unbound(self, where: str) -> None:
        if self.set_id is not None:
            raise SetMismatchError(f"{where}: carries no set binding, unlike the model's other files "
                                   "(a file from another save or an older version?)")
        self.unbound = self.unbound or where

    def _check_bound(self, path: str, rel: Optional[str], md: Mapping[str, str], length: int, sid: str,
                     where: str) -> None:
        if self.unbound is not None:
            raise SetMismatchError(f"{where}: belongs to set {sid}, but {self.unbound} carries no set binding")
        member = md.get(MEMBER)
        if not isinstance(member, str) or not member:
            raise FormatError(f"{where}: authenticated {SET} without {MEMBER}")
        if self.set_id is None:  # the first file: it decides the set and where its root is
            self.set_id = sid
            if is_file_object(path):  # no location: no root, no manifest to find
                if MEMBER_INDEX not in md and STEP not in md:
                    self.manifest_missing = f"{where}: member of an encrypted directory read from a file object, " \
                                            "whose manifest cannot be found (pass its path or URL)"
            else:
                root = root_of(path, member)
                if root is None:
                    raise SetMismatchError(f"{where}: was encrypted as {member!r}; the file was renamed or moved")
                self.root = root
                self.manifest = Manifest.read(root, self.key, self.storage_options)
                if self.manifest is None and MEMBER_INDEX not in md and STEP not in md:
                    # a directory member alone: fine for a model of one file, an error once a second is needed
                    self.manifest_missing = f"{where}: member of an encrypted directory whose manifest " \
                                            f"{shown_place(join_member(root, MANIFEST_NAME))} is missing"
        else:
            if self.manifest_missing is not None:
                raise SetMismatchError(self.manifest_missing)
            if sid != self.set_id:
                raise SetMismatchError(f"{where}: belongs to another save (set {sid}, the model's is {self.set_id})")
            if rel is None:
                rel = self.rel_of(path)
            if rel is not None and member != rel:
                raise SetMismatchError(f"{where}: was encrypted as {member!r}, not {rel!r} (renamed or swapped)")
        if self.manifest is not None:
            self.manifest.check_member(member, md, length, where)
