"""The `modelcrypt` command line (also `python -m modelcrypt`). Contract: docs/KEYS_AND_CLI.md."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import warnings
from typing import Callable

from ._tree import install_tree
from ._tree import excluded as _excluded, same_or_inside as _same_or_inside, walk as _walk
from . import __version__, _directory, _native, _sets
from ._directory import verify_directory
from ._api import READ_FORMATS, decrypt_file, encrypt_file, generate_key, inspect, verify
from .exceptions import ModelCryptError
from .keys import KEY_FORMATS, _as_ascii, _key_from_text, key_from_env, read_key_file, wipe, write_key_file

EXIT_OK = 0
EXIT_DATA = 1         # wrong key, authentication failure, not a modelcrypt file
EXIT_USAGE = 2
EXIT_IO = 3
EXIT_INTERNAL = 4
EXIT_INTERRUPTED = 130

PROGRESS_MIN_BYTES = 64 << 20

EXIT_CODES_HELP = """exit codes:
  0    success
  1    wrong key, authentication failure (modified, truncated or extended data), not a modelcrypt file
  2    usage error (bad or conflicting options, missing key source, refusing to overwrite without --force)
  3    I/O error (missing or unreadable file, permission denied, disk full)
  4    internal error (a bug or an unexpected failure of the library; one line, no traceback)
  130  interrupted (Ctrl-C); no partial output and no temporary file is left behind
"""


class CommandError(Exception):
    """Ends the command with an exit code and a one-line message."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def _usage(message: str) -> CommandError:
    return CommandError(EXIT_USAGE, message)


def _info(args: argparse.Namespace, message: str) -> None:
    if not getattr(args, "quiet", False):
        print(message, file=sys.stderr)


# ----------------------------------------------------------------------------------------- keys

def _resolve_key(args: argparse.Namespace, *, allow_generate: bool = False) -> tuple[bytearray, str | None]:
    """The key from the one source given. Returns (key, path of a key file generated for it)."""
    sources = [s for s in ("key_file", "key_env", "key") if getattr(args, s, None) is not None]
    new_key_file = getattr(args, "new_key_file", None)
    if len(sources) > 1:
        raise _usage("give only one of --key-file, --key-env and --key")
    if sources and new_key_file is not None:
        raise _usage("--new-key-file generates a key; it cannot be combined with --key-file, --key-env or --key")
    try:
        if args.key_file is not None:
            return read_key_file(args.key_file), None
        if args.key_env is not None:
            return key_from_env(args.key_env), None
        if args.key is not None:
            warnings.warn("--key puts the key on the command line, where other users can see it "
                          "(use --key-file or --key-env)", UserWarning, stacklevel=1)
            return _key_from_text(_as_ascii(args.key, "--key"), "--key", allow_raw=False), None
    except ValueError as exc:
        raise _usage(str(exc)) from None
    if not allow_generate:
        raise _usage("no key given: use --key-file FILE, --key-env VAR or --key TEXT")
    if new_key_file is None:
        raise _usage("no key given: use --key-file FILE, --key-env VAR or --key TEXT, "
                     "or --new-key-file FILE to generate a new key")
    key = _new_key(32)
    try:
        write_key_file(new_key_file, key, "hex", force=args.force)
    except FileExistsError:
        raise _usage(f"{new_key_file} exists; use --force to replace it") from None
    _info(args, f"generated a new key: {new_key_file}")
    return key, new_key_file


def _add_key_options(p: argparse.ArgumentParser, *, generate: bool = False) -> None:
    g = p.add_argument_group("key source (exactly one)")
    g.add_argument("--key-file", metavar="FILE", help="key file holding a hex, base64 or raw key")
    g.add_argument("--key-env", metavar="VAR", help="environment variable holding a hex or base64 key")
    g.add_argument("--key", metavar="TEXT", help="hex or base64 key (visible to other users: prefer the above)")
    if generate:
        g.add_argument("--new-key-file", metavar="FILE",
                       help="with no key source: generate a 32-byte key and save it here (hex, mode 0600)")


# -------------------------------------------------------------------------------------- helpers

class _Progress:
    """A tqdm bar on stderr over a known number of bytes, when stderr is a terminal."""

    def __init__(self, args: argparse.Namespace, total: int, desc: str, force: bool = False):
        self.bar = None
        self.base = 0
        if not args.quiet and sys.stderr.isatty() and (force or total >= PROGRESS_MIN_BYTES):
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, file=sys.stderr)

    def callback(self) -> Callable[[int], None] | None:
        if self.bar is None:
            return None
        base = self.base
        return lambda done: self.bar.update(base + done - self.bar.n)

    def file_done(self, size: int) -> None:
        self.base += size
        if self.bar is not None:
            self.bar.update(self.base - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()



def _check_destination(args: argparse.Namespace, src: str, dst: str) -> None:
    if _same_or_inside(dst, src) and (os.path.isdir(src) or os.path.realpath(dst) == os.path.realpath(src)):
        raise _usage(f"destination {dst} is the source or lies inside it")
    if os.path.lexists(dst):
        if not args.force:
            raise _usage(f"{dst} exists; use --force to replace it")
        if os.path.isdir(dst) != os.path.isdir(src):
            raise _usage(f"{dst} exists and is {'a directory' if os.path.isdir(dst) else 'a file'}; "
                         f"remove it first")


def _data_error(path: str, exc: ModelCryptError) -> CommandError:
    message = str(exc)
    return CommandError(EXIT_DATA, message if message.startswith(f"{path}:") else f"{path}: {message}")




def _mirror(args: argparse.Namespace, src: str, dst: str, convert: Callable, dir_mode: int, verb: str,
            check: Callable | None = None, finish: Callable | None = None) -> int:
    """Builds dst as a mirror of directory src in a temporary directory, then moves it into place.
    convert(path, out, progress, rel) converts one file; check(plan) runs before any file is
    converted, finish(tmp) after the last one, before the tree is moved into place."""
    plan = []
    for kind, rel in _walk(src):
        if kind == "symlink":
            _info(args, f"skipped symlink: {rel}")
        elif kind == "other":
            _info(args, f"skipped special file: {rel}")
        elif kind == "file" and _excluded(rel, getattr(args, "exclude", None) or []):
            _info(args, f"excluded: {rel}")
        else:
            plan.append((kind, rel))
    if check is not None:
        try:
            plan = check(plan)
        except ModelCryptError as exc:
            raise _data_error(src, exc) from None
    total = sum(os.lstat(os.path.join(src, rel)).st_size for kind, rel in plan if kind == "file")
    parent = os.path.dirname(os.path.abspath(dst))
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(dst))}.mctmp-", dir=parent)
    progress = _Progress(args, total, verb, force=True)
    count = 0
    try:
        os.chmod(tmp, dir_mode & ~_umask())
        for kind, rel in plan:
            out = os.path.join(tmp, rel)
            if kind == "dir":
                os.mkdir(out, dir_mode)
                continue
            path = os.path.join(src, rel)
            try:
                convert(path, out, progress.callback(), rel)
            except ModelCryptError as exc:
                raise _data_error(path, exc) from None
            progress.file_done(os.lstat(path).st_size)
            count += 1
        if finish is not None:
            finish(tmp)
        install_tree(tmp, dst)  # with --force, the old tree goes only now
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        progress.close()
    return count


def _convert_path(args: argparse.Namespace, src: str, dst: str, convert: Callable, dir_mode: int, verb: str,
                  convert_member: Callable | None = None, check: Callable | None = None,
                  finish: Callable | None = None) -> None:
    """Runs convert(src_file, dst_file, progress) on a file, or mirrors a directory with
    convert_member(path, out, progress, rel) (see _mirror)."""
    if os.path.isdir(src):
        n = _mirror(args, src, dst, convert_member, dir_mode, verb, check, finish)
        _info(args, f"{verb}ed {n} file(s) into {dst}")
        return
    progress = _Progress(args, os.path.getsize(src), verb)
    try:
        convert(src, dst, progress.callback())
    except ModelCryptError as exc:
        raise _data_error(src, exc) from None
    finally:
        progress.close()
    _info(args, f"{verb}ed {src} -> {dst}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _add_legacy_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("legacy formats (read only when asked for; see docs/LEGACY.md)")
    g.add_argument("--format", choices=READ_FORMATS, default="modelcrypt",
                   help="formats to accept: modelcrypt (default: format v1 only), mindspore, paddlex, paddle-cipher "
                        "(each also reads v1 files) or auto (any detected format)")
    g.add_argument("--mode", metavar="MODE", default="AES-GCM",
                   help="cipher of a legacy file: AES-GCM (default), MindSpore's AES-CBC or SM4-CBC, or "
                        "paddle:<cipher_name>[:iv=<bits>][:tag=<bits>] for Paddle cipher files")


def _chunk_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+)\s*(k|kib|m|mib)?\s*", text, re.IGNORECASE)
    if not m:
        raise argparse.ArgumentTypeError(f"invalid size {text!r} (e.g. 1048576, 256KiB, 4MiB)")
    unit = (m.group(2) or "").lower()
    return int(m.group(1)) * (1024 if unit.startswith("k") else 1 << 20 if unit.startswith("m") else 1)


def _metadata_item(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"metadata must be KEY=VALUE, got {text!r}")
    return key, value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


# ------------------------------------------------------------------------------------- commands

def _new_key(length: int) -> bytearray:
    """A new random key as a bytearray (wipeable); the bytes generate_key returned is wiped."""
    fresh = generate_key(length)
    try:
        return bytearray(fresh)
    finally:
        wipe(fresh)


def _print_secret(key: bytearray, fmt: str) -> None:
    """Prints the key as hex or base64 text and a newline, wiping every copy of the text made here.
    Written straight to the stdout file descriptor (no copy left in Python's stdout buffers) when
    there is one."""
    import binascii
    text = binascii.hexlify(key) if fmt == "hex" else binascii.b2a_base64(key, newline=False)
    line = bytearray(len(text) + 1)
    line[:-1] = text
    line[-1] = 0x0A
    wipe(text)
    try:
        try:
            fd = sys.stdout.fileno()
        except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
            fd = None
        if fd is None:  # a replaced sys.stdout (tests, embedding): it gets a str, which cannot be wiped
            sys.stdout.write(line.decode("ascii"))
            return
        sys.stdout.flush()
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view):]
    finally:
        wipe(line)


def cmd_keygen(args: argparse.Namespace) -> int:
    key = _new_key(args.length)
    try:
        if args.output is None:
            if args.format == "raw":
                raise _usage("refusing to print a raw binary key to the terminal; use -o FILE or --format hex|base64")
            _print_secret(key, args.format)
            return EXIT_OK
        try:
            write_key_file(args.output, key, args.format, force=args.force)
        except FileExistsError:
            raise _usage(f"{args.output} exists; use --force to replace it") from None
        _info(args, f"wrote a new {args.length}-byte key to {args.output} ({args.format}, mode 0600)")
        return EXIT_OK
    finally:
        wipe(key)


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
            reader[0].check_files(_directory.member_files(plan))
            return plan

        def convert_member(path: str, out: str, progress, rel: str) -> None:
            reader[0].decrypt(path, out, rel, progress=progress, **options)

        _convert_path(args, src, dst, convert, 0o700, "decrypt", convert_member, check)
        return EXIT_OK
    finally:
        wipe(key)


def _resolve_old_key(args: argparse.Namespace) -> bytearray:
    """migrate's old key, from exactly one of --from-key-file, --from-key-env, --from-key (key-source rules)."""
    sources = [s for s in ("from_key_file", "from_key_env", "from_key") if getattr(args, s, None) is not None]
    if len(sources) > 1:
        raise _usage("give only one of --from-key-file, --from-key-env and --from-key")
    try:
        if args.from_key_file is not None:
            return read_key_file(args.from_key_file)
        if args.from_key_env is not None:
            return key_from_env(args.from_key_env)
        if args.from_key is not None:
            warnings.warn("--from-key puts the key on the command line, where other users can see it "
                          "(use --from-key-file or --from-key-env)", UserWarning, stacklevel=1)
            return _key_from_text(_as_ascii(args.from_key, "--from-key"), "--from-key", allow_raw=False)
    except ValueError as exc:
        raise _usage(str(exc)) from None
    raise _usage("no old key given: use --from-key-file FILE, --from-key-env VAR or --from-key TEXT")


def cmd_migrate(args: argparse.Namespace) -> int:
    from ._migrate import migrate, paddle_cipher_mode

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
                print(f"FAILED: {path}: {exc}")
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
        raise _data_error(args.file, exc) from None
    fields = {
        "version": info.version,
        "algorithm": info.algorithm,
        "chunk_size": info.chunk_size,
        "plaintext_length": info.plaintext_length,
        "chunk_count": info.chunk_count,
        "header_length": info.header_length,
        "file_length": info.file_length,
        "salt": info.salt.hex(),
        "key_commitment": info.key_commitment.hex(),
        "metadata": info.metadata,
    }
    if args.json:
        print(json.dumps({"path": info.path, **fields}, indent=2, ensure_ascii=False))
    else:
        for name, value in fields.items():
            print(f"{name}: {json.dumps(value, ensure_ascii=False) if name == 'metadata' else value}")
        if info.file_length != info.expected_file_length:
            print(f"warning: file has {info.file_length} bytes, its header says {info.expected_file_length} "
                  "(truncated or extended; unauthenticated without the key)", file=sys.stderr)
    return EXIT_OK


def cmd_config(args: argparse.Namespace) -> int:
    print(args.where())
    return EXIT_OK


# --------------------------------------------------------------------------------------- parser

def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelcrypt",
        description="Authenticated encryption for model files (format: docs/FORMAT.md).",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"modelcrypt {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help_: str, func) -> argparse.ArgumentParser:
        p = commands.add_parser(name, help=help_, description=help_, epilog=EXIT_CODES_HELP,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(func=func)
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or informational messages")
        return p

    p = command("keygen", "generate a random key", cmd_keygen)
    p.add_argument("-o", "--output", metavar="FILE", help="write the key to FILE (mode 0600) instead of stdout")
    p.add_argument("--format", choices=KEY_FORMATS, default="hex", help="key encoding (default: hex)")
    p.add_argument("--length", type=int, choices=(16, 24, 32), default=32, help="key length in bytes (default: 32)")
    p.add_argument("--force", action="store_true", help="replace an existing key file")

    p = command("encrypt", "encrypt a file, or mirror a directory into an encrypted one", cmd_encrypt)
    p.add_argument("src", metavar="SRC", help="file or directory to encrypt")
    p.add_argument("-o", "--output", metavar="DST", help="output (default: SRC.mcx)")
    _add_key_options(p, generate=True)
    p.add_argument("--exclude", metavar="GLOB", action="append", help="skip files matching GLOB (repeatable)")
    p.add_argument("--chunk-size", type=_chunk_size, default=None, metavar="N", help="chunk size (default 1MiB)")
    p.add_argument("--metadata", type=_metadata_item, action="append", metavar="KEY=VALUE",
                   help="authenticated, unencrypted metadata (repeatable)")
    p.add_argument("--threads", type=_positive_int, default=None, metavar="N", help="threads (default: all cores)")
    p.add_argument("--no-fsync", action="store_true",
                   help="don't flush outputs to the device before renaming them into place (faster on slow disks; "
                        "a power loss soon after may leave an empty or partial output)")
    p.add_argument("--force", action="store_true", help="replace an existing DST")

    p = command("decrypt", "decrypt to a plaintext file or directory (on purpose)", cmd_decrypt)
    p.add_argument("src", metavar="SRC", help="encrypted file or directory")
    p.add_argument("-o", "--output", metavar="DST", required=True, help="plaintext output")
    _add_key_options(p)
    _add_legacy_options(p)
    p.add_argument("--threads", type=_positive_int, default=None, metavar="N", help="threads (default: all cores)")
    p.add_argument("--no-fsync", action="store_true",
                   help="don't flush outputs to the device before renaming them into place (faster on slow disks; "
                        "a power loss soon after may leave an empty or partial output)")
    p.add_argument("--force", action="store_true", help="replace an existing DST")

    p = command("migrate", "re-encrypt MindSpore, PaddleX, Paddle or modelcrypt files (file or directory) into "
                "modelcrypt format v1 under a new key; no plaintext is written", cmd_migrate)
    p.add_argument("src", metavar="SRC", help="encrypted file or directory")
    p.add_argument("-o", "--output", metavar="DST", required=True, help="v1 output (file or directory mirror)")
    g = p.add_argument_group("old key (exactly one)")
    g.add_argument("--from-key-file", metavar="FILE", help="key file of the old key (hex, base64 or raw)")
    g.add_argument("--from-key-env", metavar="VAR", help="environment variable holding the old key (hex or base64)")
    g.add_argument("--from-key", metavar="TEXT", help="old key as hex or base64 (visible to other users)")
    m = p.add_argument_group("old format (default: detected from each file)")
    m.add_argument("--from-mode", metavar="MODE",
                   help="AES-GCM, AES-CBC, SM4-CBC, or paddle:<cipher_name>[:iv=<bits>][:tag=<bits>] for Paddle "
                        "cipher files (which have no magic)")
    m.add_argument("--from-paddle-config", metavar="CONF",
                   help="Paddle cipher config file the files were encrypted with (sets the paddle:... mode)")
    _add_key_options(p, generate=True)
    p.add_argument("--keep-names", action="store_true",
                   help="keep PaddleX's encrypted.pdmodel/.pdparams/.yml names (default: model.pdmodel, "
                        "model.pdiparams, model.yml)")
    p.add_argument("--exclude", metavar="GLOB", action="append", help="skip files matching GLOB (repeatable)")
    p.add_argument("--threads", type=_positive_int, default=None, metavar="N", help="threads (default: all cores)")
    p.add_argument("--force", action="store_true", help="replace an existing DST")

    p = command("verify", "authenticate whole files with the key; writes nothing", cmd_verify)
    p.add_argument("files", metavar="FILE", nargs="+")
    _add_key_options(p)
    _add_legacy_options(p)
    p.add_argument("--threads", type=_positive_int, default=None, metavar="N", help="threads (default: all cores)")

    p = command("inspect", "show header fields (no key needed, nothing authenticated)", cmd_inspect)
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true", help="one JSON object")

    p = command("config", "print where the C/C++ API is installed", cmd_config)
    which = p.add_mutually_exclusive_group(required=True)
    for flag, func, what in (("--cmakedir", _native.get_cmake_dir, "directory of modelcryptConfig.cmake"),
                             ("--includedir", _native.get_include, "include directory (modelcrypt/modelcrypt.h)"),
                             ("--libdir", _native.get_lib_dir, "directory of libmodelcrypt.so"),
                             ("--pkgconfigdir", _native.get_pkgconfig_dir, "directory of modelcrypt.pc")):
        which.add_argument(flag, action="store_const", const=func, dest="where", help=what)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _safe_message(exc: BaseException) -> str:
    """An exception's message for the terminal: one line, and withheld when it carries bytes
    (a bytes repr, e.g. of data a custom cipher choked on) or key-like text."""
    try:
        text = str(exc)
    except Exception:  # a broken __str__
        text = ""
    text = " ".join(text.split())
    if "b'" in text or 'b"' in text or "bytearray(" in text or _KEYLIKE_MESSAGE.search(text):
        return f"{type(exc).__name__} (message withheld: it may hold key or file bytes)"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


_KEYLIKE_MESSAGE = re.compile(r"[0-9A-Fa-f]{32,}|[A-Za-z0-9+/]{22,}={0,2}")


def _text_streams() -> None:
    """Messages name files and options as given; characters the terminal's encoding cannot show
    (lone surrogates from non-UTF-8 file names) come out escaped instead of failing."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):
                pass


def main(argv: list[str] | None = None) -> int:
    _text_streams()
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    warnings.showwarning = _show_warning
    warnings.simplefilter("default")
    try:
        return args.func(args)
    except CommandError as exc:
        print(f"modelcrypt: error: {exc}", file=sys.stderr)
        return exc.code
    except ModelCryptError as exc:
        print(f"modelcrypt: error: {exc}", file=sys.stderr)
        return EXIT_DATA
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename and str(exc.filename) not in str(exc) else ""
        print(f"modelcrypt: error: {exc}{where}", file=sys.stderr)
        return EXIT_IO
    except (ValueError, TypeError, OverflowError) as exc:  # argument values the API refused (bad input)
        print(f"modelcrypt: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("modelcrypt: interrupted; no output was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - never a traceback (it could show data); one line instead
        print(f"modelcrypt: internal error: {_safe_message(exc)}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
