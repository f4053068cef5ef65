"""Publisher signatures on the command line: keygen --signing, encrypt --sign, --trust for the
readers (verify, decrypt), and keyless `verify --trust` (no key: the signature over the ciphertext)."""

from __future__ import annotations

import argparse
import os
import sys

from .. import signing as _sg
from ..keys import _path_shown, wipe
from ._common import EXIT_OK, _info, _print_secret, _usage


def add_sign_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("publisher signature (format v3: devices can check who made the model)")
    g.add_argument("--sign", metavar="FILE", help="sign with this signing key file (keygen --signing; or a PEM "
                                                   "Ed25519 private key)")
    g.add_argument("--sign-env", metavar="VAR", help="environment variable holding the signing key")


def add_trust_options(p: argparse.ArgumentParser, *, keyless: bool = False) -> None:
    extra = "; with no key source, only the signature is checked (no key needed)" if keyless else ""
    g = p.add_argument_group("trusted publishers")
    g.add_argument("--trust", metavar="SIGNER", action="append",
                   help="require a signature by this signer: a public key (modelcrypt-signer1...) or a file of them "
                        "(one per line, or a PEM Ed25519 public key); repeatable" + extra)


def given_signing_key(args: argparse.Namespace):
    """The signing key of --sign / --sign-env, or None."""
    if getattr(args, "sign", None) is not None and getattr(args, "sign_env", None) is not None:
        raise _usage("give only one of --sign and --sign-env")
    try:
        if getattr(args, "sign", None) is not None:
            return _sg.read_signing_key_file(args.sign)
        if getattr(args, "sign_env", None) is not None:
            return _sg.signing_key_from_env(args.sign_env)
    except ValueError as exc:
        raise _usage(str(exc)) from None
    return None


def given_trusted_signers(args: argparse.Namespace) -> list[str] | None:
    """The signers of every --trust (public key text, or a file of them), or None."""
    values = getattr(args, "trust", None)
    if not values:
        return None
    out: list[str] = []
    try:
        for value in values:
            if os.path.isfile(value):
                out.extend(_sg.read_trusted_signers_file(value))
                continue
            try:
                _sg.parse_signer(value)  # checked now: a usage error, before any work
            except ValueError as exc:
                if value.strip().lower().startswith(("modelcrypt-signer1", "-----begin public key")):
                    raise
                raise ValueError(f"{_path_shown(value)}: neither a signer public key (modelcrypt-signer1...) nor "
                                 f"a file of them ({exc})") from None
            out.append(value)
    except ValueError as exc:
        raise _usage(f"--trust {exc}") from None
    return out


def keygen_signing(args: argparse.Namespace) -> int:
    key = _sg.generate_signing_key()
    if args.output is None:
        secret = key.secret_text()
        try:
            _print_secret(f"# public key: {key.public_key}\n", secret)
        finally:
            wipe(secret)
        print(f"public key: {key.public_key}", file=sys.stderr)
        return EXIT_OK
    try:  # --overwrite-key replaces the file atomically: the old key stays until the new one is in place
        _sg.write_signing_key_file(args.output, key, force=args.overwrite_key)
    except FileExistsError:
        raise _usage(f"{args.output} exists; a signing key file is replaced only with --overwrite-key (devices that "
                     "trust its public key would no longer accept new models)") from None
    _info(args, f"wrote a new Ed25519 signing key to {args.output} (mode 0600); its public key (for --trust):")
    print(key.public_key)
    return EXIT_OK
