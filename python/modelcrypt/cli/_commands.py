"""The encrypt, decrypt, migrate, verify, inspect and config commands."""

from __future__ import annotations

import argparse
import json
import os
import sys

from .. import _directory, _sets
from .._directory import verify_directory
from .._tree import excluded as _excluded
from .._api import decrypt_file, encrypt_file, inspect, verify
from ..exceptions import ModelCryptError
from ..keys import wipe
from ._common import EXIT_DATA, EXIT_IO, EXIT_OK, CommandError, _data_error, _info, _usage
from ._key_source import _resolve_key, _resolve_old_key
from ._paths import _check_destination, _convert_path


def cmd_encrypt(args: argparse.Namespace) -> int:
    src = args.src
    os.lstat(src)  # FileNotFoundError -> exit 3
    dst = args.output or src.rstrip("/") + ".mcx"
    _check_destination(args, src, dst)
    metadata = dict(args.metadata or [])
    try:
        _sets.check_user_metadata(metadata)
    except ValueError as exc:
        raise _usage(str(exc)) from None
    key, generated = _resolve_key(args, allow_generate=True)
    try:
        options = dict(chunk_size=args.chunk_size, threads=args.threads, durable=not args.no_fsync)

        def convert(path: str, out: str, progress) -> None:
            encrypt_file(path, out, key, metadata=metadata or None, progress=progress, **options)

        # A directory: its files are bound into one set with an encrypted manifest (_directory).
        writer = _directory.DirectoryWriter(key, metadata)

        def check(plan):
            try:
                _directory.refuse_manifest_source(src, plan)
            except ValueError as exc:
                raise _usage(str(exc)) from None
            return plan

        def convert_member(path: str, out: str, progress, rel: str) -> None:
            if args.copy_excluded and _excluded(rel, args.exclude or []):
                _info(args, f"copied as plaintext: {rel}")
                writer.copy(path, out, rel, progress=progress)
                return
            writer.encrypt(path, out, rel, progress=progress, **options)

        _convert_path(args, src, dst, convert, 0o777, "encrypt", convert_member, check, writer.finish)
        generated = None
        return EXIT_OK
    finally:
        wipe(key)
        if generated is not None and os.path.exists(generated):  # the run failed: the new key guards nothing
            os.unlink(generated)


def cmd_decrypt(args: argparse.Namespace) -> int:
    src, dst = args.src, args.output
    os.lstat(src)
    if args.decrypt_exclude and not os.path.isdir(src):
        raise _usage("--exclude applies to a directory SRC")
    _check_destination(args, src, dst)
    key, _ = _resolve_key(args)
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
        wipe(key)


def cmd_migrate(args: argparse.Namespace) -> int:
    from .._migrate import migrate, paddle_cipher_mode

    src, dst = args.src, args.output
    os.lstat(src)
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
        written = migrate(src, dst, old_key, key, old_mode, keep_names=args.keep_names, exclude=args.exclude or (),
                          overwrite=True, threads=args.threads, report=lambda message: _info(args, message))
        if os.path.isdir(src):
            _info(args, f"migrated {len(written)} file(s) into {dst}")
        else:
            _info(args, f"migrated {src} -> {dst}")
        generated = None
        return EXIT_OK
    finally:
        wipe(old_key)
        if key is not None:
            wipe(key)
        if generated is not None and os.path.exists(generated):  # the run failed: the new key guards nothing
            os.unlink(generated)


def cmd_verify(args: argparse.Namespace) -> int:
    key, _ = _resolve_key(args)
    status = EXIT_OK
    try:
        for path in args.files:
            try:
                if os.path.isdir(path):  # every member, and the directory against its manifest
                    verify_directory(path, key, threads=args.threads)
                else:
                    verify(path, key, args.mode, format=args.format, threads=args.threads)
            except ModelCryptError as exc:
                print(f"FAILED: {_data_error(path, exc)}")  # the path once, whether or not the message names it
                status = status or EXIT_DATA
            except OSError as exc:
                print(f"FAILED: {path}: {exc.strerror or exc}")
                status = status or EXIT_IO
            else:
                if not args.quiet:
                    print(f"OK: {path}")
        return status
    finally:
        wipe(key)


def cmd_inspect(args: argparse.Namespace) -> int:
    try:
        info = inspect(args.file)
    except ModelCryptError as exc:
        error = _data_error(args.file, exc)
        if "magic" in str(exc):  # what inspect reads: modelcrypt v1, MindSpore and PaddleX headers
            error = CommandError(error.code, f"{error}; inspect reads modelcrypt, MindSpore and PaddleX files "
                                             "(Paddle cipher files have no header to show)")
        raise error from None
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
    }
    if info.format != "modelcrypt":  # a legacy file: only the fields its format has (docs/LEGACY.md)
        fields = {name: value for name, value in fields.items()
                  if value is not None and not (name == "metadata" and not value)}
    else:
        del fields["frames"]  # MindSpore/PaddleX only
    if args.json:
        print(json.dumps({"path": info.path, **fields}, indent=2, ensure_ascii=False))
    else:
        for name, value in fields.items():
            print(f"{name}: {json.dumps(value, ensure_ascii=False) if name == 'metadata' else value}")
        if info.format != "modelcrypt":
            print(f"note: a {info.format} file; these fields are read without the key and are not authenticated "
                  "(`modelcrypt migrate` moves it to format v1)", file=sys.stderr)
        elif info.file_length != info.expected_file_length:
            print(f"warning: file has {info.file_length} bytes, its header says {info.expected_file_length} "
                  "(truncated or extended; unauthenticated without the key)", file=sys.stderr)
    return EXIT_OK


def cmd_config(args: argparse.Namespace) -> int:
    print(args.where())
    return EXIT_OK
