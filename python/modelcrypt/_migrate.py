"""Migration of files encrypted by MindSpore, PaddleX or Paddle (or by modelcrypt under an old key)
into modelcrypt format v1, and ``paddle_cipher_mode`` for Paddle cipher config files.

``migrate(src, dst, old_key, new_key)`` decrypts each file into modelcrypt-owned memory
(``modelcrypt.load``, which detects the source format) and encrypts that buffer straight into a
v1 file (temporary file beside the destination, fsync, rename). No plaintext ever reaches the disk.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from typing import Any, Callable, Optional, Union

from . import _core, _metadata, _sets
from ._api import (
    DEFAULT_CHUNK_SIZE,
    Credential,
    StrPath,
    _check_bool,
    _check_key,
    _check_mode,
    _check_threads,
    _fspath,
    _shown,
    detect_format,
    inspect,
    load,
)
from ._random_access import open_encrypted
from ._tree import excluded as _excluded, install_tree, same_or_inside as _same_or_inside, walk as _walk
from .exceptions import FormatError, ModelCryptError

__all__ = ["migrate", "paddle_cipher_mode"]  # re-exported by the package

# ------------------------------------------------------------------ Paddle cipher configs

#: The cipher names Paddle's CipherFactory accepts (its default is AES_CTR_NoPadding).
PADDLE_CIPHERS = ("AES_CTR_NoPadding", "AES_CBC_PKCSPadding", "AES_ECB_PKCSPadding", "AES_GCM_NoPadding")
_PADDLE_DEFAULT_BITS = 128


def _config_int(value: str, name: str, where: str) -> int:
    if not value.isdigit() or not value.isascii():
        raise ValueError(f"{where}: {name} must be a whole number of bits, got {_shown(value)}")
    bits = int(value)
    if bits <= 0 or bits % 8:
        raise ValueError(f"{where}: {name} must be a positive multiple of 8 bits, got {bits}")
    return bits


def paddle_cipher_mode(config_path: Optional[StrPath] = None) -> str:
    """The modelcrypt mode for files Paddle encrypted with ``CipherFactory.create_cipher(config_path)``.

    Returns ``"paddle:<cipher_name>[:iv=<bits>][:tag=<bits>]"``, accepted everywhere a mode is
    (``load``, ``decrypt_file``, ``verify``, ``load_checkpoint``, ``migrate``). ``iv``/``tag`` appear
    only when they differ from Paddle's default of 128 bits (``tag`` for GCM only; ECB has no IV).
    ``config_path=None`` is Paddle's no-config default, ``"paddle:AES_CTR_NoPadding"``.

    The file is read as Paddle reads it: one ``name : value`` per line (Paddle needs the spaces
    around ``:``), ``#`` starts a comment line; keys ``cipher_name``, ``iv_size`` and ``tag_size``
    (bits); other keys are ignored. Unlike Paddle, blank lines (which crash Paddle) and
    indentation are fine, and everything Paddle would silently misread is a ValueError naming the
    line: a missing or misplaced ``:``, a value that is not one token, conflicting repeated keys
    (Paddle keeps the first), an unknown cipher name, sizes that are not multiples of 8 bits.
    """
    if config_path is None:
        return "paddle:AES_CTR_NoPadding"
    path = os.fsdecode(_fspath(config_path, "config_path"))
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    # (the exception's message would quote a byte of the file: perhaps a key file given by mistake)
    except UnicodeDecodeError as exc:
        position: int | None = exc.start
    else:
        position = None
    if position is not None:
        raise ValueError(f"{path}: not a text file (not UTF-8 at byte {position})")
    values: dict[str, tuple[str, int]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        where = f"{path}, line {number}"
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        # Paddle reads a whitespace-delimited name, one character (':'), then a value token; anything
        # else it misreads silently (e.g. "iv_size: 96" makes the name "iv_size:").
        name, rest = (stripped.split(None, 1) + [""])[:2]
        tokens = rest[1:].split() if rest.startswith(":") else []
        if ":" in name or not tokens:
            raise ValueError(f"{where}: expected 'name : value' (a space before ':'), got {_shown(stripped)}")
        if len(tokens) > 1 and not tokens[1].startswith("#"):
            raise ValueError(f"{where}: more than one value in {_shown(stripped)}")
        value = tokens[0]
        if name in values and values[name][0] != value:
            raise ValueError(f"{where}: {name} is set again ({_shown(value)}; line {values[name][1]} set "
                             f"{_shown(values[name][0])})")
        values.setdefault(name, (value, number))

    def line_of(name: str) -> str:
        return f"{path}, line {values[name][1]}"

    if "cipher_name" not in values:
        raise ValueError(f"{path}: no cipher_name line (Paddle refuses such a config); "
                         f"cipher names: {', '.join(PADDLE_CIPHERS)}")
    cipher = values["cipher_name"][0]
    if cipher not in PADDLE_CIPHERS:
        raise ValueError(f"{line_of('cipher_name')}: unknown cipher_name {_shown(cipher)}; "
                         f"Paddle's are {', '.join(PADDLE_CIPHERS)}")
    mode = f"paddle:{cipher}"
    if "iv_size" in values and cipher != "AES_ECB_PKCSPadding":
        iv = _config_int(values["iv_size"][0], "iv_size", line_of("iv_size"))
        if iv != _PADDLE_DEFAULT_BITS:
            if cipher != "AES_GCM_NoPadding":
                raise ValueError(f"{line_of('iv_size')}: {cipher} takes a 128-bit IV, not {iv} bits")
            mode += f":iv={iv}"
    if "tag_size" in values and cipher == "AES_GCM_NoPadding":
        tag = _config_int(values["tag_size"][0], "tag_size", line_of("tag_size"))
        if not 32 <= tag <= 128:
            raise ValueError(f"{line_of('tag_size')}: a GCM tag is 32 to 128 bits, not {tag}")
        if tag != _PADDLE_DEFAULT_BITS:
            mode += f":tag={tag}"
    return mode


# ------------------------------------------------------------------ migration

#: PaddleX's encrypted file names -> the names of the files they decrypt to (Paddle's own names),
#: used for PaddleX files when a directory is migrated (``keep_names=False``).
PADDLEX_NAMES = {
    "encrypted.pdmodel": "model.pdmodel",
    "encrypted.pdparams": "model.pdiparams",
    "encrypted.yml": "model.yml",
}

Report = Optional[Callable[[str], None]]


def _source_format(path: str) -> str:
    """'modelcrypt', 'mindspore', 'paddlex' or 'unknown', from the file's first bytes."""
    return detect_format(path)


def _auto_mode(path: str, fmt: str) -> str:
    if fmt == "mindspore":
        return inspect(path).cipher  # "AES-GCM", "AES-CBC" or "SM4-CBC", from the first frame's magic
    if fmt in ("modelcrypt", "paddlex"):
        return "AES-GCM"
    raise FormatError(f"{path}: not a modelcrypt, MindSpore or PaddleX encrypted file (Paddle cipher files have no "
                      "magic: give their mode, 'paddle:<cipher_name>' or paddle_cipher_mode(config), as old_mode / "
                      "--from-mode / --from-paddle-config)")


def _with_path(exc: ModelCryptError, path: str) -> ModelCryptError:
    message = str(exc)
    if path in message:
        return exc
    new = type(exc)(f"{path}: {message}")
    new.__cause__ = exc
    return new


class _Member:
    """Set binding of one file of a migrated directory: the source checked against its manifest
    (when it had one), the output bound into the new set under its output path."""

    def __init__(self, set_id: str, rel: str, out: str, source_manifest: Optional[_sets.Manifest]):
        self.set_id, self.rel, self.out, self.source_manifest = set_id, rel, out, source_manifest


def _member_metadata(member: Optional[_Member], source_raw: bytes, metadata: Optional[bytes], plaintext_length: int,
                     src: str) -> bytes:
    """The output's encoded metadata: the given metadata or the source's, bound into a migrated
    directory's new set; the source checked against its own manifest first."""
    meta = metadata if metadata is not None else source_raw
    if member is None:
        return meta
    source_meta = _metadata.decode(source_raw)
    if member.source_manifest is not None:
        member.source_manifest.check_member(member.rel, source_meta, plaintext_length, src)
    elif _sets.SET in source_meta and _sets.MEMBER_INDEX not in source_meta and _sets.STEP not in source_meta:
        raise _sets.SetMismatchError(f"{src}: member of an encrypted directory whose manifest is missing")
    kept = {k: v for k, v in _metadata.decode(meta).items() if not k.startswith(_sets.RESERVED_PREFIX)}
    return _metadata.encode(_sets.member_metadata(member.set_id, member.out, kept))


def _streams(mode: Any, src: str) -> bool:
    """A format v1 source: re-encrypted in bounded memory (three batches), not loaded whole."""
    return isinstance(mode, str) and mode.upper() == "AES-GCM" and _source_format(src) == "modelcrypt"


def _migrate_one(src: str, dst: str, old_key: Any, new_key: Any, mode: Any, metadata: Optional[bytes],
                 threads: int, member: Optional[_Member] = None, progress: Any = None, durable: bool = True) -> int:
    if _streams(mode, src):
        try:
            with open_encrypted(src, old_key) as f:
                n = f.plaintext_length
                meta = _member_metadata(member, f.metadata_raw, metadata, n, src)
                f.reencrypt_to(dst, new_key, metadata_raw=meta, chunk_size=DEFAULT_CHUNK_SIZE, threads=threads or None,
                               progress=progress, durable=durable)
            return n
        except ModelCryptError as exc:
            raise _with_path(exc, src) from None
    # MindSpore, PaddleX and Paddle cipher files are decrypted whole into memory: their formats
    # authenticate (if at all) only the whole file or frame, so nothing can be released earlier.
    try:
        buf = load(src, old_key, mode, format="auto", threads=threads or None)  # migrate reads every format
    except ModelCryptError as exc:
        raise _with_path(exc, src) from None
    except ValueError as exc:  # the key does not fit the file's format, or the mode disagrees with the file
        raise ValueError(f"{src}: {exc}") from None
    try:
        meta = _member_metadata(member, bytes(getattr(buf, "metadata_raw", b"") or b""), metadata, len(buf), src)
        _core.encrypt_parts_to_file([buf], os.fsencode(dst), new_key, "AES-GCM", DEFAULT_CHUNK_SIZE, meta, threads,
                                    progress, durable)
        return len(buf)
    finally:
        buf.close()  # wipes the plaintext


def _plan_tree(src: str, old_mode: Any, keep_names: bool, exclude: list[str],
               report: Report) -> list[tuple[str, str, str, Any]]:
    """[(kind, source rel, output rel, mode)] for a directory, checked before anything is decrypted."""
    plan = []
    outputs: dict[str, str] = {}
    for kind, rel in _walk(src):
        if (kind, rel) == ("file", _sets.MANIFEST_NAME):  # the source's manifest: checked, replaced by a new one
            continue
        if kind in ("symlink", "other"):
            if report:
                report(f"skipped {'symlink' if kind == 'symlink' else 'special file'}: {rel}")
            continue
        if kind == "file" and _excluded(rel, exclude):
            if report:
                report(f"excluded: {rel}")
            continue
        if kind == "dir":
            plan.append(("dir", rel, rel, None))
            continue
        path = os.path.join(src, rel)
        out = rel
        if old_mode is None:
            fmt = _source_format(path)
            mode: Any = _auto_mode(path, fmt)
        else:
            fmt, mode = None, old_mode
        head, name = os.path.split(rel)
        if not keep_names and name in PADDLEX_NAMES and (fmt or _source_format(path)) == "paddlex":
            out = os.path.join(head, PADDLEX_NAMES[name]) if head else PADDLEX_NAMES[name]
        if out in outputs:
            raise ValueError(f"{src}: {outputs[out]} and {rel} would both be migrated to {out} "
                             "(pass keep_names=True / --keep-names to keep PaddleX's names)")
        outputs[out] = rel
        plan.append(("file", rel, out, mode))
    return plan


def migrate(
    src: StrPath,
    dst: StrPath,
    old_key: Credential,
    new_key: Credential,
    old_mode: Union[str, Callable[..., bytes], None] = None,
    *,
    keep_names: bool = False,
    exclude: Iterable[str] = (),
    metadata: Optional[Mapping[str, str]] = None,
    overwrite: bool = False,
    threads: Optional[int] = None,
    report: Report = None,
    progress: Optional[Callable[[int], None]] = None,
    durable: bool = True,
) -> list[str]:
    """Re-encrypt a file, or every file of a directory, into modelcrypt format v1 under ``new_key``.

    Sources: MindSpore frame files (AES-GCM, AES-CBC, SM4-CBC), PaddleX ``PADDLE1`` files,
    modelcrypt v1 files (key rotation; their metadata is kept), and with ``old_mode`` Paddle
    cipher files (``"paddle:<cipher_name>..."`` or ``paddle_cipher_mode(config)``) or a custom
    MindSpore-style ``dec(cipher_file, key)`` callable. ``old_mode=None`` detects each file's
    format and cipher from its first bytes; a given ``old_mode`` applies to every file and must
    agree with what a file says. ``old_key`` is the key those files were written with (PaddleX:
    the 32 raw bytes, e.g. ``modelcrypt.key_from_base64(printed_key)``).

    A modelcrypt v1 file (key rotation) streams: decrypted and authenticated batch by batch
    through one open handle and encrypted as it goes, in bounded memory (about 50 MiB whatever the
    size). A MindSpore, PaddleX or Paddle cipher file is decrypted whole into modelcrypt-owned
    memory (their formats authenticate the whole file or frame at once, so nothing could be
    released earlier) and encrypted from that buffer; the buffer is wiped after. Outputs are atomic
    (temporary file beside them, fsync unless ``durable=False``, rename). No plaintext is written
    anywhere. ``progress(bytes_done)`` gets the plaintext bytes migrated so far, over all files.
    A directory ``src`` is mirrored into ``dst`` like ``modelcrypt encrypt`` does (same relative
    paths; sub-directories recreated; symbolic links and special
    files skipped and reported), built in a temporary directory beside ``dst`` and renamed into
    place only when every file succeeded. File names are kept, except PaddleX's: a PaddleX file
    named ``encrypted.pdmodel``, ``encrypted.pdparams`` or ``encrypted.yml`` becomes
    ``model.pdmodel``, ``model.pdiparams`` or ``model.yml`` (the names of the files it holds, so
    the result is what ``modelcrypt encrypt`` makes of the original export directory; it then
    loads with ``modelcrypt.paddle.create_predictor``); ``keep_names=True`` keeps them.
    Every file of a directory must be an encrypted file of a known format (checked for all files
    before any is decrypted), else FormatError naming it; ``exclude`` globs (matched against the
    relative path with ``/`` separators and against the bare name) leave files out.

    ``metadata`` (str -> str) is stored in every output; by default v1 sources keep theirs
    (keys starting with ``modelcrypt.`` are reserved). A migrated directory is a new set, like one
    ``encrypt_directory`` writes: every output carries the new set id and its relative path, and
    ``dst/.modelcrypt-manifest`` lists them. A source directory with a manifest is checked
    against it (with ``old_key``) first: a missing, added, renamed or foreign member raises
    SetMismatchError before anything is decrypted.
    An existing ``dst`` raises FileExistsError unless ``overwrite=True`` (then it is replaced only
    once the new output is complete). ``dst`` equal to ``src`` or inside it: ValueError.
    ``report(message)`` receives the skipped-entry messages.

    Unauthenticated sources (MindSpore AES-CBC/SM4-CBC, Paddle CTR/CBC/ECB) raise
    InsecureFormatWarning: modelcrypt cannot tell their wrong-key or tampered plaintext from the
    real one (CTR never, CBC in about 1 of 256 cases), and migrating authenticates whatever they
    decrypt to, so check the migrated model before deleting the originals.
    Errors from a file name it (KeyMismatchError, AuthenticationError, FormatError). Returns the
    paths written, in order.
    """
    source = os.fsdecode(_fspath(src, "src"))
    target = os.fsdecode(_fspath(dst, "dst"))
    old_key, new_key = _check_key(old_key), _check_key(new_key)
    if old_mode is not None:
        old_mode = _check_mode(old_mode)
    threads_n = _check_threads(threads)
    _sets.check_user_metadata(metadata)
    meta = None if metadata is None else _metadata.encode(metadata)
    if report is not None and not callable(report):
        raise TypeError(f"report must be callable or None, not {type(report).__name__}")
    is_dir = os.path.isdir(source)
    os.lstat(source)  # FileNotFoundError for a missing source
    if _same_or_inside(target, source) and (is_dir or os.path.realpath(target) == os.path.realpath(source)):
        raise ValueError(f"destination {target} is the source or lies inside it")
    if os.path.lexists(target):
        if not overwrite:
            raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
        if os.path.isdir(target) != is_dir:
            raise FileExistsError(f"{target} exists and is {'a directory' if os.path.isdir(target) else 'a file'}; "
                                  "remove it first")

    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be callable or None, not {type(progress).__name__}")
    _check_bool(durable, "durable")
    if not is_dir:
        mode = old_mode if old_mode is not None else _auto_mode(source, _source_format(source))
        _migrate_one(source, target, old_key, new_key, mode, meta, threads_n, progress=progress, durable=durable)
        return [target]

    if isinstance(exclude, str):
        exclude = [exclude]
    plan = _plan_tree(source, old_mode, keep_names, list(exclude), report)
    # A directory is migrated as one set: a source with a manifest is checked against it (with the
    # old key) before anything is decrypted, and the output is a new set with its own manifest.
    source_manifest = None
    if os.path.isfile(os.path.join(source, _sets.MANIFEST_NAME)):
        try:
            source_manifest = _sets.Manifest.read(source, old_key)
        except ModelCryptError as exc:
            raise _with_path(exc, os.path.join(source, _sets.MANIFEST_NAME)) from None
        assert source_manifest is not None  # (read returns None only where there is no manifest file)
        if exclude:  # excluded members are simply not part of the new set
            source_manifest.members = {r: n for r, n in source_manifest.members.items()
                                       if not _excluded(r, list(exclude))}
        source_manifest.check_tree(rel for kind, rel in _walk(source)
                                   if kind == "file" and rel != _sets.MANIFEST_NAME
                                   and not _excluded(rel, list(exclude)))
    set_id = _sets.new_set_id()
    members: dict[str, int] = {}
    parent = os.path.dirname(os.path.abspath(target))
    base = os.path.basename(os.path.abspath(target))
    tmp = tempfile.mkdtemp(prefix=f".{base}.mctmp-", dir=parent)
    written = []
    done = 0
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        for kind, rel, out, mode in plan:
            if kind == "dir":
                os.mkdir(os.path.join(tmp, out), 0o777)
                continue
            base_done = done

            def file_progress(n: int, base_done: int = base_done) -> None:
                if progress is not None:  # (always: passed only then)
                    progress(base_done + n)

            members[out] = _migrate_one(os.path.join(source, rel), os.path.join(tmp, out), old_key, new_key, mode,
                                        meta, threads_n, _Member(set_id, rel, out, source_manifest),
                                        file_progress if progress is not None else None, durable)
            done += members[out]
            written.append(os.path.join(target, out))
        _sets.write_manifest(tmp, new_key, set_id, members)
        install_tree(tmp, target)  # with overwrite, the old tree goes only now
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return written
