"""sign-dir and verify-dir: OpenSSF model signing (the model-signing package) of encrypted
directories, offline, with elliptic-curve keys given as PEM files (never on the command line)."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from ..exceptions import SignatureError
from ..keys import wipe
from ..model_signing_interop import INSTALL_HINT, private_key_is_encrypted, sign_directory, verify_directory_signature
from ._common import EXIT_DATA, EXIT_OK, EXIT_USAGE, CommandError, _info, _usage

QUIET_HELP = {
    "sign-dir": "no informational messages (errors still print)",
    "verify-dir": "print only failures (no OK line)",
}


def _path_only(value: str, option: str) -> str:
    """Key options take a file's path: key text pasted in their place is refused without echoing it."""
    if "-----BEGIN" in value or "\n" in value:
        raise _usage(f"{option} takes the path of a PEM file, not the key itself (a key on the command line is "
                     "visible to other users)")
    return value


def _password(args: argparse.Namespace) -> bytearray | None:
    """The password of an encrypted PEM private key: from --password-env VAR, else a prompt on the
    terminal; None for a key that is not encrypted."""
    if args.password_env is not None:
        value = os.environ.get(args.password_env)
        if not value:
            raise _usage(f"--password-env {args.password_env}: the environment variable is not set or empty")
        return bytearray(value.encode("utf-8"))
    if not private_key_is_encrypted(args.key):
        return None
    if not sys.stdin.isatty():
        raise _usage(f"{args.key}: the private key is encrypted; give its password with --password-env VAR "
                     "(there is no terminal to prompt on)")
    return bytearray(getpass.getpass(f"password for {args.key}: ").encode("utf-8"))


def _unavailable(exc: ImportError) -> CommandError:
    message = str(exc)
    return CommandError(EXIT_USAGE, message if INSTALL_HINT in message else f"{message}: {INSTALL_HINT}")


def cmd_sign_dir(args: argparse.Namespace) -> int:
    _path_only(args.key, "--key")
    password = _password(args)
    try:
        sig = sign_directory(args.directory, args.key, signature=args.signature, password=password,
                             allow_plaintext=args.allow_plaintext)
    except ImportError as exc:
        raise _unavailable(exc) from None
    finally:
        if password is not None:
            wipe(password)
    _info(args, f"signed {args.directory}: {sig} (an OpenSSF model-signing bundle; check it with "
                f"`modelcrypt verify-dir {args.directory} --trust PUBLIC.pem` or `model_signing verify key "
                f"{args.directory} --signature {sig} --public_key PUBLIC.pem`)")
    return EXIT_OK


def cmd_verify_dir(args: argparse.Namespace) -> int:
    _path_only(args.trust, "--trust")
    try:
        verify_directory_signature(args.directory, args.trust, signature=args.signature)
    except ImportError as exc:
        raise _unavailable(exc) from None
    except SignatureError as exc:
        print(f"FAILED: {exc}")
        return EXIT_DATA
    if not args.quiet:
        print(f"OK: {args.directory} (signed by the key of {args.trust})")
    return EXIT_OK


def add_model_signing_commands(command) -> None:
    p = command("sign-dir", "sign an encrypted directory (OpenSSF model signing, EC key, offline)", cmd_sign_dir)
    p.add_argument("directory", metavar="DIR", help="encrypted directory (modelcrypt encrypt SRC -o DIR)")
    p.add_argument("--key", metavar="PEM", required=True,
                   help="path of the EC private key (PEM; P-256, P-384 or P-521), never the key itself")
    p.add_argument("--signature", metavar="FILE", help="signature bundle to write (default: DIR.sig beside DIR)")
    p.add_argument("--password-env", metavar="VAR",
                   help="environment variable holding the password of an encrypted PEM key (default: prompt in a "
                        "terminal)")
    p.add_argument("--allow-plaintext", action="store_true",
                   help="sign a directory that is not an encrypted modelcrypt directory (no .modelcrypt-manifest)")

    p = command("verify-dir", "check an encrypted directory's OpenSSF model signature (no model key needed)",
                cmd_verify_dir)
    p.add_argument("directory", metavar="DIR")
    p.add_argument("--trust", metavar="PEM", required=True, help="path of the signer's EC public key (PEM)")
    p.add_argument("--signature", metavar="FILE", help="signature bundle (default: DIR.sig beside DIR)")
