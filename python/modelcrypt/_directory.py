"""Encrypted directories: every file encrypted under its relative path, bound into one set, plus
an encrypted manifest listing them (docs/FORMAT.md, "Encrypted directories").

``modelcrypt encrypt DIR -o OUT`` and :func:`encrypt_directory` write them; ``modelcrypt
decrypt`` / ``verify`` of a directory, :func:`decrypt_directory`, :func:`verify_directory` and
the directory loaders (ONNX external data, Paddle model + params) check them: a member missing,
renamed, copied over another, taken from another encrypted directory, or a file not in the
manifest is a SetMismatchError, raised before any plaintext is written.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from typing import Any, Callable, Optional

from . import _sets
from ._api import (
    Credential,
    StrPath,
    _check_bool,
    _check_key,
    _check_signing_key,
    _credential,
    _fspath,
    decrypt_file,
    encrypt_file,
    inspect,
    is_encrypted,
)
from ._random_access import open_encrypted
from ._tree import excluded, install_tree, same_or_inside, walk
from .exceptions import SetMismatchError

__all__ = ["encrypt_directory", "decrypt_directory", "verify_directory"]

Report = Optional[Callable[[str], None]]


class DirectoryWriter:
    """Encrypts the files of one directory as members of a new set; ``finish`` writes the manifest."""

    def __init__(self, key: Any, metadata: Optional[Mapping[str, str]] = None, signing_key: Any = None):
        _sets.check_user_metadata(metadata)
        self.key = key
        self.signing_key = _check_signing_key(signing_key)  # signs every member and the manifest (format v3)
        self.metadata = dict(metadata or {})
        self.set_id = _sets.new_set_id()
        self.members: dict[str, int] = {}
        self.copied: dict[str, tuple[int, str]] = {}

    def encrypt(self, path: str, out: str, rel: str, **kwargs: Any) -> None:
        if rel == _sets.MANIFEST_NAME:
            raise ValueError(f"{path}: a file named {_sets.MANIFEST_NAME} at the top of the directory "
                             "(is it already an encrypted directory?)")
        encrypt_file(path, out, self.key, metadata=_sets.member_metadata(self.set_id, rel, self.metadata),
                     signing_key=self.signing_key, **kwargs)
        length = inspect(out).plaintext_length
        assert length is not None  # (known for the modelcrypt file just written)
        self.members[rel] = length

    def copy(self, path: str, out: str, rel: str, progress: Any = None) -> None:
        """Copies a file as plaintext (on request: encrypt --copy-excluded); the manifest records its
        length and SHA-256, so readers detect a copy that was modified, removed or added later."""
        if rel == _sets.MANIFEST_NAME:
            raise ValueError(f"{path}: a file named {_sets.MANIFEST_NAME} at the top of the directory "
                             "(is it already an encrypted directory?)")
        self.copied[rel] = copy_hashing(path, out, progress)

    def finish(self, directory: str) -> None:
        _sets.write_manifest(directory, self.key, self.set_id, self.members, self.copied, self.signing_key)


def copy_hashing(path: str, out: Optional[str], progress: Any = None) -> tuple[int, str]:
    """(length, SHA-256 hex) of the file at ``path``, read once; with ``out``, the same bytes are
    written there (a new file, mode 0644 less the umask) as they are hashed."""
    digest = hashlib.sha256()
    n = 0
    with open(path, "rb") as f, (open(out, "xb") if out is not None else contextlib.nullcontext()) as g:
        while True:
            block = f.read(1 << 20)
            if not block:
                break
            digest.update(block)
            if g is not None:
                g.write(block)
            n += len(block)
            if progress is not None:
                progress(n)
        if g is not None:
            g.flush()
            os.fsync(g.fileno())
    return n, digest.hexdigest()


class DirectoryReader:
    """Reads the members of an encrypted directory, each checked against its manifest (or, in a
    directory without one, refused when it claims to belong to a set)."""

    def __init__(self, root: str, key: Any):
        self.root, self.key = root, key
        self.manifest = _sets.Manifest.read(root, key)

    def check_files(self, files: Iterable[str]) -> None:
        """The directory's files (relative paths, the manifest excluded) are exactly its members."""
        if self.manifest is not None:
            self.manifest.check_tree(files)

    def is_copied(self, rel: str) -> bool:
        """Whether the manifest lists ``rel`` as a file copied as plaintext (encrypt --copy-excluded)."""
        return self.manifest is not None and rel in self.manifest.copied

    def _copy_checked(self, path: str, out: Optional[str], rel: str, progress: Any) -> None:
        n, digest = copy_hashing(path, out, progress)
        assert self.manifest is not None  # (is_copied(rel) held)
        self.manifest.check_copied(rel, n, digest, path)

    def _checked(self, path: str, rel: str) -> Any:
        """An open, checked handle on a member (None for a file that is not a modelcrypt file)."""
        if not is_encrypted(path):
            if self.manifest is not None:
                raise SetMismatchError(f"{path}: not a member of the encrypted directory {self.root} "
                                       "(not a modelcrypt file)")
            return None
        f = open_encrypted(path, self.key)
        try:
            md = f.metadata
            if self.manifest is not None:
                self.manifest.check_member(rel, md, f.plaintext_length, path)
            elif _sets.SET in md:
                raise SetMismatchError(f"{path}: member {md.get(_sets.MEMBER)!r} of an encrypted directory, but "
                                       f"{os.path.join(self.root, _sets.MANIFEST_NAME)} is missing")
        except BaseException:
            f.close()
            raise
        return f

    def decrypt(self, path: str, out: str, rel: str, *, threads: Optional[int] = None, progress: Any = None,
                durable: bool = True) -> None:
        if self.is_copied(rel):  # copied back as it was, checked against the manifest's SHA-256
            self._copy_checked(path, out, rel, progress)
            return
        f = self._checked(path, rel)
        if f is None:  # a legacy file in a directory without a manifest: as before
            decrypt_file(path, out, self.key, threads=threads, progress=progress, durable=durable)
            return
        with f:
            f.decrypt_to(out, threads=threads, progress=progress, durable=durable)

    def verify(self, path: str, rel: str, *, threads: Optional[int] = None, progress: Any = None) -> None:
        from ._api import verify

        if self.is_copied(rel):
            self._copy_checked(path, None, rel, progress)
            return
        f = self._checked(path, rel)
        if f is None:
            verify(path, self.key, threads=threads, progress=progress)
            return
        with f:
            f.verify(threads=threads, progress=progress)


def plan(src: str, exclude: Iterable[str] = (), report: Report = None) -> list[tuple[str, str]]:
    """[(kind, rel)] of a directory: dirs and regular files; links and special files skipped."""
    out = []
    patterns = list(exclude)
    for kind, rel in walk(src):
        if kind in ("symlink", "other"):
            if report:
                report(f"skipped {'symlink' if kind == 'symlink' else 'special file'}: {rel}")
        elif kind == "file" and excluded(rel, patterns):
            if report:
                report(f"excluded: {rel}")
        else:
            out.append((kind, rel))
    return out


def refuse_manifest_source(source: str, entries: Iterable[tuple[str, str]]) -> None:
    if ("file", _sets.MANIFEST_NAME) in list(entries):
        raise ValueError(f"{source} holds a {_sets.MANIFEST_NAME}: it is already an encrypted directory")


def member_files(entries: Iterable[tuple[str, str]]) -> list[str]:
    return [rel for kind, rel in entries if kind == "file" and rel != _sets.MANIFEST_NAME]


def _prepare(src: StrPath, dst: StrPath, overwrite: bool) -> tuple[str, str]:
    source = os.fsdecode(_fspath(src, "src"))
    target = os.fsdecode(_fspath(dst, "dst"))
    if not os.path.isdir(source):
        raise NotADirectoryError(f"{source} is not a directory")
    if same_or_inside(target, source):
        raise ValueError(f"destination {target} is the source or lies inside it")
    if os.path.lexists(target) and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
    if os.path.lexists(target) and not os.path.isdir(target):
        raise FileExistsError(f"{target} exists and is a file; remove it first")
    return source, target


def _build(target: str, entries: list[tuple[str, str]], dir_mode: int, fill: Callable[[str], None]) -> None:
    parent = os.path.dirname(os.path.abspath(target))
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(target))}.mctmp-", dir=parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, dir_mode & ~umask)
        for kind, rel in entries:
            if kind == "dir":
                os.mkdir(os.path.join(tmp, rel), dir_mode)
        fill(tmp)
        install_tree(tmp, target)  # an existing target goes only now
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def encrypt_directory(
    src: StrPath,
    dst: StrPath,
    key: Credential,
    *,
    exclude: Iterable[str] = (),
    copy_excluded: bool = False,
    chunk_size: Optional[int] = None,
    metadata: Optional[Mapping[str, str]] = None,
    threads: Optional[int] = None,
    overwrite: bool = False,
    durable: bool = True,
    report: Report = None,
    signing_key: Any = None,
) -> list[str]:
    """Mirror directory ``src`` into the encrypted directory ``dst`` (what ``modelcrypt encrypt
    DIR -o DST`` does): every regular file encrypted under the same relative path, bound into one
    set (random set id and the relative path in each file's authenticated metadata), plus the
    encrypted manifest ``dst/.modelcrypt-manifest`` listing every member. Symbolic links and
    special files are skipped (reported); ``exclude`` globs leave files out, or, with
    ``copy_excluded=True``, copy them as plaintext (their length and SHA-256 in the manifest, so
    decrypting and verifying check them too). ``metadata`` goes into
    every file (keys starting with ``modelcrypt.`` are reserved). ``dst`` is built beside itself
    and renamed into place when complete; an existing ``dst`` needs ``overwrite=True`` and is
    replaced only then. ``signing_key`` signs every member and the manifest (format v3; files
    copied as plaintext are covered through their SHA-256 in the signed manifest). Returns the
    members' relative paths."""
    key = _check_key(key)
    _check_bool(copy_excluded, "copy_excluded")
    source, target = _prepare(src, dst, overwrite)
    patterns = list(exclude)
    entries = plan(source, () if copy_excluded else patterns, report)
    writer = DirectoryWriter(key, metadata, signing_key)
    refuse_manifest_source(source, entries)

    def fill(tmp: str) -> None:
        for rel in member_files(entries):
            if copy_excluded and excluded(rel, patterns):
                if report:
                    report(f"copied as plaintext: {rel}")
                writer.copy(os.path.join(source, rel), os.path.join(tmp, rel), rel)
                continue
            writer.encrypt(os.path.join(source, rel), os.path.join(tmp, rel), rel, chunk_size=chunk_size,
                           threads=threads, durable=durable)
        writer.finish(tmp)

    _build(target, entries, 0o777, fill)
    return sorted(writer.members)


def decrypt_directory(
    src: StrPath,
    dst: StrPath,
    key: Credential,
    *,
    exclude: Iterable[str] = (),
    threads: Optional[int] = None,
    overwrite: bool = False,
    durable: bool = True,
    report: Report = None,
    trusted_signers: Optional[Iterable[Any]] = None,
) -> list[str]:
    """Decrypt an encrypted directory into the plaintext directory ``dst`` (mode 0700 directories,
    0600 files; the manifest is not copied). The directory is checked against its manifest before
    anything is decrypted, and every member against it as it is decrypted (SetMismatchError).
    ``exclude`` globs (matched against the relative paths) leave members out of ``dst``; the
    directory is still checked as a whole. Files the manifest lists as copied as plaintext are
    copied back after their SHA-256 is checked. ``trusted_signers``: the manifest and every member
    must be signed by one of them (SignatureError). Returns the relative paths written."""
    key = _credential(key, None, trusted_signers)
    source, target = _prepare(src, dst, overwrite)
    entries = plan(source, (), report)
    reader = DirectoryReader(source, key)
    reader.check_files(member_files(entries))
    patterns = list(exclude)
    files = []
    for rel in member_files(entries):
        if excluded(rel, patterns):
            if report:
                report(f"excluded: {rel}")
        else:
            files.append(rel)

    def fill(tmp: str) -> None:
        for rel in files:
            reader.decrypt(os.path.join(source, rel), os.path.join(tmp, rel), rel, threads=threads, durable=durable)

    _build(target, entries, 0o700, fill)
    return files


def verify_directory(path: StrPath, key: Credential, *, threads: Optional[int] = None,
                     trusted_signers: Optional[Iterable[Any]] = None) -> list[str]:
    """Authenticate every member of an encrypted directory and the directory as a whole (against
    its manifest), writing nothing. ``trusted_signers`` as for decrypt_directory. Returns the
    members' relative paths."""
    key = _credential(key, None, trusted_signers)
    root = os.fsdecode(_fspath(path, "path"))
    reader = DirectoryReader(root, key)
    files = member_files(plan(root))
    reader.check_files(files)
    for rel in files:
        reader.verify(os.path.join(root, rel), rel, threads=threads)
    return files
