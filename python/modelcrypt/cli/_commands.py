"""The encrypt, decrypt, migrate, verify, inspect and config commands."""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys

from .. import _directory, _sets
from .._api import decrypt_file, detect_format, encrypt_file, inspect, verify
from .._directory import verify_directory
from .._sources import is_url, shown_url
from .._tree import excluded as _excluded
from .._trust import with_trusted_signers
from ..exceptions import ModelCryptError
from ..keys import wipe
from ..signing import verify_signature
from . import _urls
from ._common import EXIT_DATA, EXIT_IO, EXIT_OK, EXIT_USAGE, CommandError, _data_error, _info, _Progress, _usage
from ._key_source import _resolve_key, _resolve_old_key, has_key_source
from ._paths import _check_destination, _convert_path, _file_destination
from ._recipients_cli import given_recipients, release_key
from ._signing_cli import given_signing_key, given_trusted_signers


def _refuse_encrypted_input(args: argparse.Namespace, paths: list[str]) -> None:
    """Encrypting an encrypted file again is almost always a mistake (the wrong file, or a second run
    over the output): refused unless --force, which turns it into a warning."""
    found = []
    for path in paths:
        try:
            fmt = detect_format(path)
        except OSError:
            continue  # reported when the file is read
        if fmt != "unknown":
            found.append((path, fmt))
    if not found:
        return
    path, fmt = found[0]
    what = "a modelcrypt file" if fmt == "modelcrypt" else f"a {fmt} encrypted file"
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    if not args.force:
        hint = ("" if fmt == "modelcrypt" else "; to move it to format v1 use `modelcrypt migrate`")
        raise _usage(f"{path} is already {what}{more}: not encrypting it again{hint}; --force encrypts it anyway")
    print(f"warning: {path} is already {what}{more}; encrypting it again (--force)", file=sys.stderr)


def cmd_encrypt(args: argparse.Namespace) -> int:
    _refuse_stdio(args, "encrypt")
    src = args.src
    os.lstat(src)  # FileNotFoundError -> exit 3
    to_url = is_url(args.output)
    if to_url:  # one object, published only when complete (cli/_urls.py)
        dst = _urls.encrypt_destination(args, src)
    else:
        dst = (_file_destination(src, args.output, lambda name: name + ".mcx") if args.output
               else src.rstrip("/") + ".mcx")
        _check_destination(args, src, dst)
    metadata = {}
    for name, value in args.metadata or []:
        if name in metadata:
            raise _usage(f"--metadata {name} is given twice; each key once")
        metadata[name] = value
    if not os.path.isdir(src):
        _refuse_encrypted_input(args, [src])
    try:
        _sets.check_user_metadata(metadata)
    except ValueError as exc:
        raise _usage(str(exc)) from None
    recipients = given_recipients(args)
    if recipients and os.path.isdir(src):
        raise _usage("-r/-R encrypt a file to recipients; directories are encrypted with a key (--key-file) for now")
    signing_key = given_signing_key(args)
    key, generated = _resolve_key(args, allow_generate=True, optional=bool(recipients))
    try:
        options = dict(chunk_size=args.chunk_size, threads=args.threads, durable=not args.no_fsync)
        if recipients:
            options["recipients"] = recipients
        if signing_key is not None:
            options["signing_key"] = signing_key

        def convert(path: str, out: str, progress) -> None:
            encrypt_file(path, out, key, metadata=metadata or None, progress=progress, **options)

        if to_url:
            del options["durable"]  # the upload is committed (or discarded) as a whole
            _urls.encrypt(args, src, dst, lambda path, url, progress, storage_options: encrypt_file(
                path, url, key, metadata=metadata or None, progress=progress, storage_options=storage_options,
                **options))
            generated = None
            return EXIT_OK

        # A directory: its files are bound into one set with an encrypted manifest (_directory).
        writer = _directory.DirectoryWriter(key, metadata, signing_key)

        def check(plan):
            try:
                _directory.refuse_manifest_source(src, plan)
            except ValueError as exc:
                raise _usage(str(exc)) from None
            _refuse_encrypted_input(args, [os.path.join(src, rel) for kind, rel in plan if kind == "file"
                                           and not (args.copy_excluded and _excluded(rel, args.exclude or []))])
            return plan

        def convert_member(path: str, out: str, progress, rel: str) -> None:
            if args.copy_excluded and _excluded(rel, args.exclude or []):
                _info(args, f"copied as plaintext: {rel}")
                writer.copy(path, out, rel, progress=progress)
                return
            writer.encrypt(path, out, rel, progress=progress,
                           **{k: v for k, v in options.items() if k != "signing_key"})

        _convert_path(args, src, dst, convert, 0o777, "encrypt", convert_member, check, writer.finish)
        generated = None
        return EXIT_OK
    finally:
        release_key(key)
        if generated is not None and os.path.exists(generated):  # the run failed: the new key guards nothing
            os.unlink(generated)


STDIO = "-"
STREAM_BLOCK = 8 << 20  # decrypt -o -: bytes authenticated and written per step


def _refuse_stdio(args: argparse.Namespace, command: str, *, output_ok: bool = False) -> None:
    """`-` means stdin/stdout only where it is supported; never a file named `-` by accident."""
    if args.src == STDIO:
        raise _usage(f"{command} cannot read SRC from stdin: "
                     + ("the format records the plaintext length in its header, before the data, so "
                        "encrypt needs a file (save the stream to one first)" if command == "encrypt" else
                        "an encrypted file is authenticated and read through one open file (give its path)")
                     + "; a file really named '-' is ./-")
    if args.output == STDIO and not output_ok:
        raise _usage(f"{command} cannot write to stdout (-o -): outputs are written atomically to a file; "
                     "give -o FILE (a file really named '-' is ./-)")


def _decrypt_to_stdout(args: argparse.Namespace, key, trusted=None) -> int:
    """decrypt -o -: streams the plaintext to stdout, each 8 MiB block authenticated before it is
    written. A failure part-way (a modified chunk, a file truncated or replaced meanwhile) ends with
    exit 1 after the authentic blocks before it were written: only exit 0 means the consumer got the
    whole file. With --trust the whole file's signature and chunk hashes are checked first (no key,
    nothing written), so a file changed at rest writes nothing; the stream then checks each chunk
    again as it is decrypted (a file changed meanwhile still ends with exit 1). Never to a terminal;
    modelcrypt formats only."""
    from .._random_access import open_encrypted

    if os.path.isdir(args.src):
        raise _usage("decrypt -o - takes a file; a directory decrypts into a directory (-o DIR)")
    if args.format != "modelcrypt":
        raise _usage("decrypt -o - reads modelcrypt format v1 files only; migrate a legacy file first, or "
                     "decrypt it to a file")
    if sys.stdout.isatty():
        raise _usage("refusing to write plaintext to a terminal; redirect stdout (-o - | ...) or give -o FILE")
    fd = sys.stdout.fileno()
    sys.stdout.flush()
    try:
        if trusted:
            verify_signature(args.src, trusted, threads=args.threads)
        with open_encrypted(args.src, key, args.mode) as f:
            total = f.plaintext_length
            for offset in range(0, total, STREAM_BLOCK):
                with f.read_range(offset, min(STREAM_BLOCK, total - offset), threads=args.threads) as block:
                    with memoryview(block) as view:
                        done = 0
                        while done < len(view):
                            with view[done:] as rest:  # every view released before the block is wiped
                                done += os.write(fd, rest)
    except BrokenPipeError:  # the consumer stopped reading: not our error, but say the output is partial
        raise CommandError(EXIT_IO, f"{args.src}: the reader of stdout closed the pipe; output incomplete") from None
    return EXIT_OK


def _plain_name(name: str) -> str:
    if name.endswith(".mcx") and len(name) > 4:
        return name[:-4]
    raise _usage(f"cannot name the plaintext of {name} (no .mcx suffix to remove): give -o DIR/NAME")


def cmd_decrypt(args: argparse.Namespace) -> int:
    src, dst = args.src, args.output
    _refuse_stdio(args, "decrypt", output_ok=True)
    if is_url(src):  # streamed from the object (cli/_urls.py)
        trusted = given_trusted_signers(args)
        raw_key, _ = _resolve_key(args)
        try:
            _urls.decrypt(args, with_trusted_signers(raw_key, trusted), trusted, _plain_name)
            return EXIT_OK
        finally:
            release_key(raw_key)
    os.lstat(src)
    if dst != STDIO:
        dst = _file_destination(src, dst, _plain_name)
    trusted = given_trusted_signers(args)
    if dst == STDIO:
        raw_key, _ = _resolve_key(args)
        try:
            return _decrypt_to_stdout(args, with_trusted_signers(raw_key, trusted), trusted)
        except ModelCryptError as exc:
            raise _data_error(src, exc) from None
        finally:
            release_key(raw_key)
    if args.decrypt_exclude and not os.path.isdir(src):
        raise _usage("--exclude applies to a directory SRC")
    _check_destination(args, src, dst)
    raw_key, _ = _resolve_key(args)
    assert raw_key is not None  # (None only with optional=True)
    key = with_trusted_signers(raw_key, trusted)  # --trust: every file must carry a trusted publisher signature
    try:
        options = dict(threads=args.threads, durable=not args.no_fsync)

        def convert(path: str, out: str, progress) -> None:
            decrypt_file(path, out, key, args.mode, format=args.format, progress=progress, **options)

        # A directory: checked against its manifest before anything is decrypted, each member as it is.
        reader: list = []

        def check(plan):
            reader.append(_directory.DirectoryReader(src, key))
            plan = [(kind, rel) for kind, rel in plan if (kind, rel) != ("file", _sets.MANIFEST_NAME)]
            reader[0].check_files(_directory.member_files(plan))  # the whole directory, --exclude or not
            kept = []
            for kind, rel in plan:
                if kind == "file" and _excluded(rel, args.decrypt_exclude or []):
                    _info(args, f"excluded: {rel}")
                else:
                    kept.append((kind, rel))
            return kept

        def convert_member(path: str, out: str, progress, rel: str) -> None:
            reader[0].decrypt(path, out, rel, progress=progress, **options)

        _convert_path(args, src, dst, convert, 0o700, "decrypt", convert_member, check)
        return EXIT_OK
    finally:
        release_key(raw_key)


def _tree_size(path: str) -> int:
    """Bytes under path (a file's size, or a directory's regular files'): the progress bar's total."""
    if not os.path.isdir(path):
        return os.path.getsize(path)
    total = 0
    for root, _, names in os.walk(path):
        for name in names:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            total += st.st_size if stat.S_ISREG(st.st_mode) else 0
    return total


def cmd_migrate(args: argparse.Namespace) -> int:
    from .._migrate import migrate, paddle_cipher_mode

    _refuse_stdio(args, "migrate")
    src = args.src
    os.lstat(src)
    dst = _file_destination(src, args.output, lambda name: name)
    _check_destination(args, src, dst)
    old_mode = args.from_mode
    if args.from_paddle_config is not None:
        if old_mode is not None:
            raise _usage("give only one of --from-mode and --from-paddle-config")
        try:
            old_mode = paddle_cipher_mode(args.from_paddle_config)
        except ValueError as exc:
            raise _usage(str(exc)) from None
    old_key = _resolve_old_key(args)
    generated = None
    key = None
    try:
        key, generated = _resolve_key(args, allow_generate=True)
        assert key is not None  # (None only with optional=True)
        bar = _Progress(args, _tree_size(src), "migrate", force=os.path.isdir(src))
        try:
            written = migrate(src, dst, old_key, key, old_mode, keep_names=args.keep_names,
                              exclude=args.exclude or (), overwrite=True, threads=args.threads,
                              report=lambda message: _info(args, message), progress=bar.callback(),
                              durable=not args.no_fsync)
        finally:
            bar.close()
        if os.path.isdir(src):
            _info(args, f"migrated {len(written)} file(s) into {dst}")
        else:
            _info(args, f"migrated {src} -> {dst}")
        generated = None
        return EXIT_OK
    finally:
        wipe(old_key)
        if key is not None:
            release_key(key)
        if generated is not None and os.path.exists(generated):  # the run failed: the new key guards nothing
            os.unlink(generated)


def cmd_verify(args: argparse.Namespace) -> int:
    trusted = given_trusted_signers(args)
    if trusted is not None and not has_key_source(args):
        return _verify_keyless(args, trusted)
    raw_key, _ = _resolve_key(args)
    assert raw_key is not None  # (None only with optional=True)
    key = with_trusted_signers(raw_key, trusted)
    status = EXIT_OK
    try:
        for path in args.files:
            try:
                if is_url(path):
                    _urls.verify(args, path, key)
                elif os.path.isdir(path):  # every member, and the directory against its manifest
                    verify_directory(path, key, threads=args.threads)
                else:
                    verify(path, key, args.mode, format=args.format, threads=args.threads)
            except ModelCryptError as exc:
                print(f"FAILED: {_data_error(path, exc)}")  # the path once, whether or not the message names it
                status = status or EXIT_DATA
            except OSError as exc:
                print(f"FAILED: {path}: {exc.strerror or exc}")
                status = status or EXIT_IO
            except CommandError as exc:  # a URL's failure, as cli/_urls.py words it
                if exc.code == EXIT_USAGE:
                    raise
                print(f"FAILED: {_urls.redact(args, str(exc))}")
                status = status or exc.code
            else:
                if not args.quiet:
                    print(f"OK: {shown_url(path)}" + (" (signed by a trusted publisher)" if trusted else ""))
        return status
    finally:
        release_key(raw_key)


def _verify_keyless(args: argparse.Namespace, trusted: list[str]) -> int:
    """verify --trust without a key: each file's publisher signature over its ciphertext (format v3),
    without decrypting; proves the bytes are what the publisher signed, not that they decrypt."""
    if args.format != "modelcrypt" or args.mode != "AES-GCM":
        raise _usage("verify --trust without a key checks modelcrypt signatures; --format/--mode need a key")
    for path in args.files:  # a usage error before any file is checked
        if os.path.isdir(path):
            raise _usage(f"{path} is a directory: keyless verification takes files (with a key, verify checks "
                         "a directory against its manifest; for a registry, see `modelcrypt sign-dir`)")
    status = EXIT_OK
    for path in args.files:
        try:
            signer = (_urls.verify_signature(args, path, trusted) if is_url(path)
                      else verify_signature(path, trusted, threads=args.threads))
        except CommandError as exc:  # a URL's failure, as cli/_urls.py words it
            if exc.code == EXIT_USAGE:
                raise
            print(f"FAILED: {_urls.redact(args, str(exc))}")
            status = status or exc.code
            continue
        except ModelCryptError as exc:
            print(f"FAILED: {_data_error(path, exc)}")
            status = status or EXIT_DATA
        except OSError as exc:
            print(f"FAILED: {path}: {exc.strerror or exc}")
            status = status or EXIT_IO
        else:
            if not args.quiet:
                print(f"OK: {shown_url(path)} (signature by {signer}; ciphertext only, not decrypted)")
    return status


def cmd_inspect(args: argparse.Namespace) -> int:
    key = _resolve_key(args)[0] if has_key_source(args) else None
    try:
        info = _urls.inspect(args, args.file, key) if is_url(args.file) else inspect(args.file, key)
    except ValueError as exc:  # a key given for a legacy file, whose header nothing authenticates
        raise _usage(f"{args.file}: {exc}") from None
    except ModelCryptError as exc:
        error = _data_error(args.file, exc)
        if "magic" in str(exc):  # what inspect reads: modelcrypt v1, MindSpore and PaddleX headers
            error = CommandError(error.code, f"{error}; inspect reads modelcrypt, MindSpore and PaddleX files "
                                             "(Paddle cipher files have no header to show)")
        raise error from None
    finally:
        release_key(key)
    fields = {
        "format": info.format,
        "cipher": info.cipher,
        "version": info.version,
        "algorithm": info.algorithm,
        "chunk_size": info.chunk_size,
        "plaintext_length": info.plaintext_length,
        "chunk_count": info.chunk_count,
        "frames": info.frames,
        "header_length": info.header_length,
        "file_length": info.file_length,
        "salt": info.salt.hex() if info.salt is not None else None,
        "key_commitment": info.key_commitment.hex() if info.key_commitment is not None else None,
        "metadata": info.metadata,
        "recipients": [f"{r['type']} {r['fingerprint']}" if r["fingerprint"] else r["type"] for r in info.recipients]
        if info.version in (2, 3) else None,
        "signer": info.signer,
        "authenticated": "header" if info.authenticated else None,  # the payload is not read
        "opened_by": info.opened_by,
    }
    if info.format != "modelcrypt":  # a legacy file: only the fields its format has (docs/LEGACY.md)
        fields = {name: value for name, value in fields.items()
                  if value is not None and not (name == "metadata" and not value)}
    else:
        del fields["frames"]  # MindSpore/PaddleX only
        if fields["recipients"] is None:
            del fields["recipients"]
        for name in ("signer", "authenticated", "opened_by"):
            if fields[name] is None:
                del fields[name]
    if args.json:
        print(json.dumps({"path": info.path, **fields}, indent=2, ensure_ascii=False))
    else:
        for name, value in fields.items():
            print(f"{name}: {json.dumps(value, ensure_ascii=False) if name == 'metadata' else value}")
        if info.authenticated:
            print("note: the header is authenticated; no payload byte was read (`modelcrypt verify` checks them)",
                  file=sys.stderr)
        if info.format != "modelcrypt":
            print(f"note: a {info.format} file; these fields are read without the key and are not authenticated "
                  "(`modelcrypt migrate` moves it to format v1)", file=sys.stderr)
        elif info.signer is not None:
            print("note: signer is what the file claims (read without any check); `modelcrypt verify FILE --trust "
                  "SIGNER` checks the signature", file=sys.stderr)
        if info.format == "modelcrypt" and info.file_length != info.expected_file_length:
            print(f"warning: file has {info.file_length} bytes, its header says {info.expected_file_length} "
                  "(truncated or extended; unauthenticated without the key)", file=sys.stderr)
    return EXIT_OK

