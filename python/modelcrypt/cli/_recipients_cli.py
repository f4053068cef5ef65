"""Public-key recipients on the command line: -r/-R for encrypt, -i for readers, keygen --x25519,
and the `recipients list|add|remove` command."""

from __future__ import annotations

import argparse
import sys

from .. import recipients as _rc
from .._api import inspect
from ..keys import wipe
from ._common import EXIT_OK, _info, _print_secret, _usage


def add_recipient_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("recipients (format v2: the file opens with any recipient's identity)")
    g.add_argument("-r", "--recipient", metavar="RECIPIENT", action="append",
                   help="encrypt to this X25519 recipient (modelcrypt1... or age1...; repeatable)")
    g.add_argument("-R", "--recipients-file", metavar="FILE", action="append",
                   help="encrypt to every recipient listed in FILE, one per line (repeatable)")


def add_identity_options(g) -> None:
    g.add_argument("-i", "--identity", metavar="FILE",
                   help="identity file (MODELCRYPT-SECRET-KEY-1... or an age-keygen file) for format v2 files")
    g.add_argument("--identity-env", metavar="VAR", help="environment variable holding an identity")


def given_identity(args: argparse.Namespace):
    """The identity of -i / --identity-env, or None."""
    try:
        if getattr(args, "identity", None) is not None:
            return _rc.read_identity_file(args.identity)
        if getattr(args, "identity_env", None) is not None:
            return _rc.identity_from_env(args.identity_env)
    except ValueError as exc:
        raise _usage(str(exc)) from None
    return None


def given_recipients(args: argparse.Namespace) -> list[str]:
    out = list(getattr(args, "recipient", None) or [])
    try:
        for path in getattr(args, "recipients_file", None) or []:
            out.extend(_rc.read_recipients_file(path))
        for r in out:
            _rc.recipient_fingerprint(r)  # checks the text now: a usage error, before any work
    except ValueError as exc:
        raise _usage(str(exc)) from None
    return out


def release_key(key) -> None:
    """Wipes a key the command holds (identities wipe themselves when released)."""
    if isinstance(key, (bytearray, memoryview)):
        wipe(key)


def keygen_x25519(args: argparse.Namespace) -> int:
    ident = _rc.generate_identity()
    if args.output is None:
        secret = ident.secret_text()
        try:
            _print_secret(f"# public key: {ident.recipient}\n", secret)
        finally:
            wipe(secret)
        print(f"public key: {ident.recipient}", file=sys.stderr)
        return EXIT_OK
    try:  # --overwrite-key replaces the file atomically: the old key stays until the new one is in place
        _rc.write_identity_file(args.output, ident, force=args.overwrite_key)
    except FileExistsError:
        raise _usage(f"{args.output} exists; an identity file is replaced only with --overwrite-key (files "
                     "encrypted to its recipient could then no longer be decrypted)") from None
    _info(args, f"wrote a new X25519 identity to {args.output} (mode 0600); its recipient:")
    print(ident.recipient)
    return EXIT_OK


def cmd_recipients(args: argparse.Namespace) -> int:
    from ._key_source import _resolve_key

    if args.action == "list":
        known = {}
        for r in given_recipients(args):
            known[_rc.recipient_fingerprint(r)] = r
        info = inspect(args.file)
        if info.format != "modelcrypt" or info.version != 2:
            print(f"{args.file}: format v{info.version} file with one symmetric key (no recipients block)")
            return EXIT_OK
        for s in info.recipients:
            if s["type"] == "x25519":
                name = known.get(s["fingerprint"], "")
                print(f"x25519 {s['fingerprint']}" + (f" {name}" if name else ""))
            else:
                print(s["type"] if s["type"] != "unknown" else f"unknown (type {s['type_id']})")
        return EXIT_OK
    recipients = given_recipients(args)
    add_key_files = getattr(args, "symmetric_key_file", None) or []
    if not recipients and not add_key_files:
        raise _usage(f"recipients {args.action}: give -r RECIPIENT, -R FILE or --symmetric-key-file FILE")
    key, _ = _resolve_key(args)
    from ..keys import read_key_file

    extra = [read_key_file(p) for p in add_key_files]
    try:
        edit = _rc.add_recipients if args.action == "add" else _rc.remove_recipients
        result = edit(args.file, key, recipients, keys=extra or None, durable=not args.no_fsync)
    finally:
        release_key(key)
        for k in extra:
            wipe(k)
    how = "header rewritten in place" if result["in_place"] else "header grown; payload copied unchanged"
    _info(args, f"{args.file}: {result['added']} added, {result['removed']} removed, {result['stanzas']} "
                f"stanzas now ({how})")
    return EXIT_OK


def add_recipients_command(commands, command) -> None:
    from ._key_source import _add_key_options

    p = command("recipients", "list, add or remove the recipients of a format v2 file (payload untouched)",
                cmd_recipients)
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, help_ in (("list", "keyless: stanza types and X25519 fingerprints (-R FILE names known ones)"),
                          ("add", "wrap the file key for more recipients (needs a key or identity that opens "
                                  "the file)"),
                          ("remove", "remove recipients' stanzas (a removed device that kept the file key can "
                                     "still read this file: re-encrypt with migrate to lock it out)")):
        q = sub.add_parser(action, help=help_, description=help_)
        q.add_argument("file", metavar="FILE")
        q.add_argument("-q", "--quiet", action="store_true", help="no informational messages")
        add_recipient_options(q)
        if action != "list":
            _add_key_options(q)
            q.add_argument("--symmetric-key-file", metavar="FILE", action="append",
                           help=f"also {action} the stanza of this symmetric key (repeatable)")
            q.add_argument("--no-fsync", action="store_true", help="do not flush to the device")
