"""URLs on the command line (s3://, gs://, az://, http(s)://, memory://, ... through fsspec): decrypt,
verify and inspect read encrypted objects, encrypt writes one. Storage options come from
MODELCRYPT_STORAGE_OPTIONS (a JSON object) and --storage-option KEY=VALUE (which override it).
Everything shown names a URL through shown_url (no user:password@, no query string) and has the
storage options' secrets masked; commands and arguments that cannot be URLs are usage errors.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from typing import Any, Callable, Iterator

from .._sources import is_url, shown_url, url_filesystem
from ..exceptions import ModelCryptError, SourceReadError
from ._common import EXIT_DATA, EXIT_IO, EXIT_USAGE, CommandError, _info, _Progress, _safe_message, _usage

ENV = "MODELCRYPT_STORAGE_OPTIONS"

#: The arguments that may be URLs: (command, argparse dest).
URL_ARGUMENTS = {("encrypt", "output"), ("decrypt", "src"), ("verify", "files"), ("inspect", "file")}

#: Why the other ones cannot be (by command; "*" for the rest).
_WHY_NOT: dict[Any, str] = {
    ("encrypt", "src"): "encrypt reads a local SRC (download it first); -o may be a URL",
    ("decrypt", "output"): "decrypt writes plaintext to a local file or to stdout (-o -), not to a URL; "
                           "SRC may be a URL",
    "recipients": "recipients edits (or lists) a local file in place; download the object, run recipients on "
                  "it and upload it again",
    "migrate": "migrate reads and writes local files and directories",
    "dcp": "dcp converts local files and directories",
    "*": "it takes local paths",
}

#: Option names whose values are secrets (s3fs key/secret/token, gcsfs token, adlfs account_key, ...):
#: masked in every message the command prints.
_SECRET_NAME = re.compile(r"secret|password|passwd|token|credential|sas|signature|session|private|account_key|"
                          r"access_key|^key$|_key$", re.I)
_MASK = "***"


def add_storage_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage-option", metavar="KEY=VALUE", action="append", type=_storage_option,
                   dest="storage_option",
                   help="fsspec storage option for URLs (repeatable; VALUE is parsed as JSON when it parses, e.g. "
                        "anon=true, client_kwargs='{\"endpoint_url\": \"http://...\"}'); overrides the JSON object "
                        f"in ${ENV}")


def _storage_option(text: str) -> tuple[str, Any]:
    """--storage-option KEY=VALUE; never echoes the value (it may be a secret)."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise argparse.ArgumentTypeError("must be KEY=VALUE (the text given is not shown: it may hold a secret)")
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


def storage_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """The environment's storage options updated with the flags' (None when there are none)."""
    options: dict[str, Any] = {}
    text = os.environ.get(ENV)
    if text and text.strip():
        try:
            options = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _usage(f"{ENV} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); it must "
                         "be a JSON object of fsspec storage options") from None
        if not isinstance(options, dict):
            raise _usage(f"{ENV} must be a JSON object of fsspec storage options, not a JSON "
                         f"{type(options).__name__}")
    for name, value in getattr(args, "storage_option", None) or []:
        options[name] = value
    return options or None


def _secrets(value: Any, secret: bool = False) -> Iterator[str]:
    if isinstance(value, dict):
        for name, item in value.items():
            yield from _secrets(item, secret or bool(_SECRET_NAME.search(str(name))))
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _secrets(item, secret)
    elif secret and value is not None and not isinstance(value, bool) and len(str(value)) >= 3:
        yield str(value)


def redact(args: argparse.Namespace | None, text: str) -> str:
    """``text`` with the storage options' secret values masked and URLs shown without credentials."""
    text = re.sub(r"\b[A-Za-z][A-Za-z0-9+.\-]*://\S+", lambda m: shown_url(m.group(0)), text)
    found: list[str] = []
    sources: list[Any] = [getattr(args, "storage_option", None) or [], os.environ.get(ENV)]
    for source in sources:
        try:
            value = json.loads(source) if isinstance(source, str) else dict(source)
        except (ValueError, TypeError):
            continue
        found.extend(_secrets(value))
    for secret in sorted(set(found), key=len, reverse=True):
        text = text.replace(secret, _MASK)
    return text


def check_arguments(args: argparse.Namespace) -> None:
    """A URL where a command takes only a local path, or --storage-option without any URL: usage errors."""
    command = getattr(args, "command", None)
    any_url = False
    for dest, value in vars(args).items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            if not is_url(item):
                continue
            if (command, dest) in URL_ARGUMENTS:
                any_url = True
                continue
            why = _WHY_NOT.get((command, dest)) or _WHY_NOT.get(command) or _WHY_NOT["*"]
            raise _usage(f"{command}: {_option_name(dest)} cannot be a URL ({shown_url(item)}): {why}")
    if getattr(args, "storage_option", None) and not any_url:
        raise _usage("--storage-option applies to URLs (s3://..., https://...); no argument is one")


def _option_name(dest: str) -> str:
    return {"src": "SRC", "output": "-o", "file": "FILE", "files": "FILE", "directory": "DIR",
            "dst": "DST"}.get(dest, "--" + dest.replace("_", "-"))


@contextlib.contextmanager
def url_errors(url: str) -> Iterator[None]:
    """The failures of reading or writing ``url`` as the command's exit codes and one-line messages."""
    shown = shown_url(url)
    try:
        yield
    except (CommandError, KeyboardInterrupt):
        raise
    except ImportError as exc:  # fsspec, or the filesystem's package (s3fs, gcsfs, ...), is missing
        raise CommandError(EXIT_USAGE, f"{shown}: {exc}") from None
    except SourceReadError as exc:  # storage faults: I/O, not the data
        raise CommandError(EXIT_IO, str(exc)) from None
    except ModelCryptError as exc:  # the core calls the reader "the file object": the URL says it
        text = str(exc)
        for name in ("the file object: ", "the file object"):
            text = text.replace(name, "" if name.endswith(": ") else "the object")
        raise CommandError(EXIT_DATA, text if text.startswith(f"{shown}:") else f"{shown}: {text}") from None
    except FileNotFoundError as exc:
        text = str(exc)
        raise CommandError(EXIT_IO, text if shown in text else f"{shown}: {text}") from None
    except OSError as exc:
        raise CommandError(EXIT_IO, f"{shown}: {_safe_message(exc)}") from None
    except ValueError as exc:  # an unknown scheme, an argument the library refused
        raise CommandError(EXIT_USAGE, f"{shown}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the storage's client (botocore, aiohttp, ...): I/O, one line
        raise CommandError(EXIT_IO, f"{shown}: {_safe_message(exc)}") from None


def _is_prefix(url: str, options: dict | None) -> bool:
    """Whether ``url`` names a directory (a prefix with objects under it), asked only after a failure."""
    try:
        fs, path = url_filesystem(url, options)
        return bool(fs.isdir(path))
    except Exception:  # noqa: BLE001
        return False


def _refuse_prefix(url: str, command: str) -> None:
    if url.endswith("/"):
        raise _usage(f"{command} of a URL takes one object, not a directory ({shown_url(url)}): directories are "
                     "mirrored from local paths only")


@contextlib.contextmanager
def _opened(url: str, credential: Any, options: dict | None, command: str) -> Iterator[Any]:
    """open_encrypted of the object at ``url`` (header authenticated), its errors as for url_errors."""
    from .._random_access import open_encrypted

    _refuse_prefix(url, command)
    try:
        with url_errors(url):
            f = open_encrypted(url, credential, storage_options=options)
    except CommandError:
        if _is_prefix(url, options):
            raise _usage(f"{command} of a URL takes one object; {shown_url(url)} is a directory (prefix): "
                         "directories are mirrored from local paths only") from None
        raise
    try:
        yield f
    finally:
        f.close()


def _check_modelcrypt(args: argparse.Namespace, command: str) -> None:
    if getattr(args, "format", "modelcrypt") != "modelcrypt" or getattr(args, "mode", "AES-GCM") != "AES-GCM":
        raise _usage(f"{command} of a URL reads modelcrypt files only (--format/--mode are for local legacy files; "
                     "migrate them first)")


def decrypt(args: argparse.Namespace, credential: object, trusted: list[str] | None,
            plain_name: Callable[[str], str]) -> None:
    """decrypt URL -o FILE (the library's write_decrypted: a temporary file beside FILE, fsynced,
    renamed into place once every chunk is authenticated; removed on any failure) or -o - (stdout,
    block by block)."""
    from .._atomic import write_all
    from .._url_files import each_block, write_decrypted

    src, dst = args.src, args.output
    _check_modelcrypt(args, "decrypt")
    if args.decrypt_exclude:
        raise _usage("--exclude applies to a directory SRC; a URL is one object")
    _refuse_prefix(src, "decrypt")
    options = storage_options(args)
    if dst == "-":
        if sys.stdout.isatty():
            raise _usage("refusing to write plaintext to a terminal; redirect stdout (-o - | ...) or give -o FILE")
        if trusted:  # the whole object's signature first: an object changed at rest writes nothing
            verify_signature(args, src, trusted)
        sys.stdout.flush()
        with _opened(src, credential, options, "decrypt") as f, url_errors(src):
            try:
                for block in each_block(f, args.threads):
                    write_all(sys.stdout.fileno(), block)
            except BrokenPipeError:
                raise CommandError(EXIT_IO, f"{shown_url(src)}: the reader of stdout closed the pipe; output "
                                            "incomplete") from None
        return
    if dst.endswith("/") or os.path.isdir(dst):
        if not os.path.isdir(dst):
            raise _usage(f"{dst} is not an existing directory; create it first, or give -o DIR/NAME")
        dst = os.path.join(dst, plain_name(src.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]))
    if os.path.lexists(dst):
        if not args.force:
            raise _usage(f"{dst} exists; use --force to replace it")
        if os.path.isdir(dst):
            raise _usage(f"{dst} exists and is a directory; remove it first")
    with _opened(src, credential, options, "decrypt") as f:
        bar = _Progress(args, f.plaintext_length, "decrypt")
        try:
            with url_errors(src):
                try:
                    write_decrypted(f, dst, threads=args.threads, progress=bar.callback(), durable=not args.no_fsync,
                                    replace=args.force)
                except FileExistsError:  # it appeared meanwhile
                    raise _usage(f"{dst} exists; use --force to replace it") from None
        finally:
            bar.close()
    _info(args, f"decrypted {shown_url(src)} -> {dst}")


def verify(args: argparse.Namespace, url: str, credential: object) -> None:
    """verify URL with a key: every chunk authenticated, nothing kept (bounded memory)."""
    from .._url_files import each_block

    _check_modelcrypt(args, "verify")
    with _opened(url, credential, storage_options(args), "verify") as f, url_errors(url):
        for _ in each_block(f, args.threads):
            pass


def verify_signature(args: argparse.Namespace, url: str, trusted: list[str]) -> str:
    """verify --trust URL without a key: the publisher signature over the whole object."""
    from .._url_files import verify_signature_url

    _refuse_prefix(url, "verify")
    with url_errors(url):
        return verify_signature_url(url, trusted, threads=args.threads, storage_options=storage_options(args))


def inspect(args: argparse.Namespace, url: str, key: object):
    """inspect URL: the header (one request); with a key or identity, authenticated."""
    from .._file_info import inspect_url

    _refuse_prefix(url, "inspect")
    with url_errors(url):
        return inspect_url(url, key, storage_options=storage_options(args))


def encrypt_destination(args: argparse.Namespace, src: str) -> str:
    """encrypt SRC -o URL: the object's URL (URL/ appends SRC's name + .mcx), refused if it exists
    without --force; directories are mirrored to local paths only."""
    if os.path.isdir(src):
        raise _usage(f"encrypt -o URL takes a file SRC; {src} is a directory (directories are mirrored into "
                     "local directories only)")
    url = args.output
    if url.endswith("/"):
        url += os.path.basename(os.path.abspath(src)) + ".mcx"
    if not args.force:
        with url_errors(url):
            fs, path = url_filesystem(url, storage_options(args))
            exists = fs.exists(path)
        if exists:
            raise _usage(f"{shown_url(url)} exists; use --force to replace it")
    return url


def encrypt(args: argparse.Namespace, src: str, url: str, encrypt_file: Callable) -> None:
    """encrypt_file(src, url, progress=..., storage_options=...) with a progress bar and URL errors:
    the upload is published only when complete (encrypt_file's streaming upload)."""
    bar = _Progress(args, os.path.getsize(src), "encrypt")
    try:
        with url_errors(url):
            encrypt_file(src, url, bar.callback(), storage_options(args))
    finally:
        bar.close()
    _info(args, f"encrypted {src} -> {shown_url(url)}")
