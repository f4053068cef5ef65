"""Where a command gets its key: --key-file, --key-env, --key, --new-key-file (and migrate's --from-*); keygen."""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from .._api import generate_key
from .._core import X25519Identity
from ..keys import _as_ascii, _key_from_text, key_from_env, read_key_file, wipe, write_key_file
from ._common import EXIT_OK, _info, _usage


def _resolve_key(args: argparse.Namespace, *, allow_generate: bool = False,
                 optional: bool = False) -> tuple[bytearray | X25519Identity | None, str | None]:
    """The key (or identity, -i) from the one source given. Returns (key, path of a key file
    generated for it). `optional` (encrypt with recipients): no source gives (None, None)."""
    from ._recipients_cli import given_identity

    sources = [s for s in ("key_file", "key_env", "key", "identity", "identity_env")
               if getattr(args, s, None) is not None]
    new_key_file = getattr(args, "new_key_file", None)
    if len(sources) > 1:
        raise _usage("give only one of --key-file, --key-env, --key, -i/--identity and --identity-env")
    identity = given_identity(args)
    if identity is not None:
        return identity, None
    if not sources and new_key_file is None and optional:
        return None, None
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
        raise _usage("no key given: use --key-file FILE, --key-env VAR, --key TEXT or -i IDENTITY_FILE")
    if new_key_file is None:
        raise _usage("no key given: use --key-file FILE, --key-env VAR or --key TEXT, "
                     "or --new-key-file FILE to generate a new key")
    key = _new_key(32)
    try:
        write_key_file(new_key_file, key, "hex", force=False)  # never a key file that exists: --force is about DST
    except FileExistsError:
        wipe(key)
        raise _usage(f"{new_key_file} exists: --new-key-file never replaces a key file (whatever was encrypted "
                     f"with it could no longer be decrypted), not even with --force; give a new file name, or "
                     f"encrypt with that key: --key-file {new_key_file}") from None
    _info(args, f"generated a new key: {new_key_file}")
    return key, new_key_file


def has_key_source(args: argparse.Namespace) -> bool:
    """Whether any key or identity source was given (verify --trust without one is keyless)."""
    return any(getattr(args, s, None) is not None for s in ("key_file", "key_env", "key", "identity", "identity_env"))


def _add_key_options(p: argparse.ArgumentParser, *, generate: bool = False, optional: bool = False) -> None:
    g = p.add_argument_group("key source (optional: at most one)" if optional else "key source (exactly one)")
    g.add_argument("--key-file", metavar="FILE", help="key file holding a hex, base64 or raw key")
    g.add_argument("--key-env", metavar="VAR", help="environment variable holding a hex or base64 key")
    g.add_argument("--key", metavar="TEXT", help="hex or base64 key (visible to other users: prefer the above)")
    from ._recipients_cli import add_identity_options

    add_identity_options(g)
    if generate:
        g.add_argument("--new-key-file", metavar="FILE",
                       help="with no key source: generate a 32-byte key and save it here (hex, mode 0600)")


def key_from_prefixed_options(args: argparse.Namespace, prefix: str) -> bytearray | None:
    """The key of exactly one of --PREFIX-key-file, --PREFIX-key-env and (where the command has it)
    --PREFIX-key, with the key-source rules; None when none is given."""
    attr = prefix.replace("-", "_")
    options = [(f"{attr}_key_file", f"--{prefix}-key-file"), (f"{attr}_key_env", f"--{prefix}-key-env"),
               (f"{attr}_key", f"--{prefix}-key")]
    given = [(a, o) for a, o in options if getattr(args, a, None) is not None]
    if len(given) > 1:
        raise _usage("give only one of " + ", ".join(o for a, o in options if hasattr(args, a)))
    if not given:
        return None
    (a, option), value = given[0], getattr(args, given[0][0])
    try:
        if a.endswith("_file"):
            return read_key_file(value)
        if a.endswith("_env"):
            return key_from_env(value)
        warnings.warn(f"{option} puts the key on the command line, where other users can see it "
                      f"(use --{prefix}-key-file or --{prefix}-key-env)", UserWarning, stacklevel=1)
        return _key_from_text(_as_ascii(value, option), option, allow_raw=False)
    except ValueError as exc:
        raise _usage(str(exc)) from None


def _resolve_old_key(args: argparse.Namespace) -> bytearray:
    """migrate's old key, from exactly one of --from-key-file, --from-key-env, --from-key (key-source rules)."""
    key = key_from_prefixed_options(args, "from")
    if key is None:
        raise _usage("no old key given: use --from-key-file FILE, --from-key-env VAR or --from-key TEXT")
    return key


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
    if getattr(args, "x25519", False):
        from ._recipients_cli import keygen_x25519

        return keygen_x25519(args)
    if getattr(args, "signing", False):
        from ._signing_cli import keygen_signing

        return keygen_signing(args)
    if args.force:
        raise _usage("keygen has no --force: replacing a key file loses whatever was encrypted with the old key; "
                     "if that is what you want, say so with --overwrite-key")
    key = _new_key(args.length)
    try:
        if args.output is None:
            if args.format == "raw":
                raise _usage("refusing to print a raw binary key to the terminal; use -o FILE or --format hex|base64")
            _print_secret(key, args.format)
            return EXIT_OK
        try:
            write_key_file(args.output, key, args.format, force=args.overwrite_key)
        except FileExistsError:
            raise _usage(f"{args.output} exists; a key file is replaced only with --overwrite-key (whatever was "
                         "encrypted with the old key can then no longer be decrypted)") from None
        _info(args, f"wrote a new {args.length}-byte key to {args.output} ({args.format}, mode 0600)")
        return EXIT_OK
    finally:
        wipe(key)
