"""The argument parser of the `modelcrypt` command line."""

from __future__ import annotations

import argparse
import os

from .. import __version__
from .._api import READ_FORMATS
from ..keys import KEY_FORMATS
from ._commands import cmd_decrypt, cmd_encrypt, cmd_inspect, cmd_migrate, cmd_verify
from ._common import EXIT_CODES_HELP, _chunk_size, _metadata_item, _positive_int
from ._config_cli import add_config_command
from ._dcp_cli import QUIET_HELP as _DCP_QUIET_HELP, add_dcp_command
from ._key_source import _add_key_options, cmd_keygen
from ._model_signing_cli import QUIET_HELP as _SIGNING_QUIET_HELP, add_model_signing_commands
from ._recipients_cli import add_recipient_options, add_recipients_command
from ._signing_cli import add_sign_options, add_trust_options
from ._urls import add_storage_options


def _add_legacy_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("legacy formats (read only when asked for; see docs/LEGACY.md)")
    g.add_argument("--format", choices=READ_FORMATS, default="modelcrypt",
                   help="formats to accept: modelcrypt (default: format v1 only), mindspore, paddlex, paddle-cipher "
                        "(each also reads v1 files) or auto (any detected format)")
    g.add_argument("--mode", metavar="MODE", default="AES-GCM",
                   help="cipher of a legacy file: AES-GCM (default), MindSpore's AES-CBC or SM4-CBC, or "
                        "paddle:<cipher_name>[:iv=<bits>][:tag=<bits>] for Paddle cipher files")


def _docs_help() -> str:
    """Where the documentation is: installed with the package (modelcrypt/docs), else the source tree's."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for docs in (os.path.join(here, "docs"), os.path.join(os.path.dirname(os.path.dirname(here)), "docs")):
        if os.path.isfile(os.path.join(docs, "KEYS_AND_CLI.md")):
            return (f"documentation: {os.path.join(docs, 'KEYS_AND_CLI.md')} (keys and commands), FORMAT.md "
                    f"(file format) and LEGACY.md (MindSpore, PaddleX, Paddle) in {docs}")
    return "documentation: docs/KEYS_AND_CLI.md in the modelcrypt source distribution"


def _add_output_options(p: argparse.ArgumentParser) -> None:
    """--no-fsync and --force, as encrypt, decrypt and migrate take them."""
    p.add_argument("--no-fsync", action="store_true",
                   help="don't flush outputs to the device before renaming them into place (faster on slow disks; "
                        "a power loss soon after may leave an empty or partial output)")
    p.add_argument("--force", action="store_true", help="replace an existing DST")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelcrypt",
        description="Authenticated encryption for model files (format: docs/FORMAT.md).",
        epilog=EXIT_CODES_HELP + "\n" + _docs_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"modelcrypt {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    quiet_help = {
        "keygen": "no message on stderr (a key printed to stdout is still printed)",
        "encrypt": "no progress bar and no informational messages (warnings and errors still print)",
        "decrypt": "no progress bar and no informational messages (warnings and errors still print)",
        "migrate": "no progress bar and no informational messages (warnings and errors still print)",
        "verify": "print only failures (no OK lines)",
        "inspect": "accepted for symmetry; inspect prints only the fields (and warnings)",
        "config": "accepted for symmetry; config prints only the values",
        "recipients": "no informational messages",
        **_SIGNING_QUIET_HELP,
        **_DCP_QUIET_HELP,
    }

    def command(name: str, help_: str, func) -> argparse.ArgumentParser:
        p = commands.add_parser(name, help=help_, description=help_, epilog=EXIT_CODES_HELP,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(func=func)
        p.add_argument("-q", "--quiet", action="store_true", help=quiet_help[name])
        return p

    p = command("keygen", "generate a random key", cmd_keygen)
    p.add_argument("-o", "--output", metavar="FILE", help="write the key to FILE (mode 0600) instead of stdout")
    p.add_argument("--format", choices=KEY_FORMATS, default="hex", help="key encoding (default: hex)")
    p.add_argument("--length", type=int, choices=(16, 24, 32), default=32, help="key length in bytes (default: 32)")
    p.add_argument("--overwrite-key", action="store_true",
                   help="replace an existing key file (whatever was encrypted with the old key is lost)")
    p.add_argument("--force", action="store_true", help=argparse.SUPPRESS)  # refused with a message: see cmd_keygen
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--x25519", action="store_true",
                      help="generate an X25519 identity (a device's private key) instead; prints its public recipient")
    kind.add_argument("--signing", action="store_true",
                      help="generate an Ed25519 signing key (a publisher's private key) instead; prints its public key")

    p = command("encrypt", "encrypt a file, or mirror a directory into an encrypted one", cmd_encrypt)
    p.add_argument("src", metavar="SRC", help="file or directory to encrypt")
    p.add_argument("-o", "--output", metavar="DST",
                   help="output (default: SRC.mcx); for a file SRC, DST may be a URL (s3://, gs://, az://, ... "
                        "through fsspec; URL/ appends SRC's name + .mcx): the upload is streamed and published only "
                        "when complete, and an existing object is replaced only with --force")
    _add_key_options(p, generate=True)
    add_recipient_options(p)
    add_sign_options(p)
    p.add_argument("--exclude", metavar="GLOB", action="append", help="skip files matching GLOB (repeatable)")
    p.add_argument("--copy-excluded", action="store_true",
                   help="copy the files --exclude matches into the mirror as plaintext instead of dropping them "
                        "(their SHA-256 goes into the encrypted manifest; decrypt and verify check them)")
    p.add_argument("--chunk-size", type=_chunk_size, default=None, metavar="N", help="chunk size (default 1MiB)")
    p.add_argument("--metadata", type=_metadata_item, action="append", metavar="KEY=VALUE",
                   help="authenticated, unencrypted metadata (repeatable)")
    p.add_argument("--threads", type=_positive_int, default=None, metavar="N", help="threads (default: all cores)")
    add_storage_options(p)
    _add_output_options(p)

    p = command("decrypt", "decrypt to a plaintext file or directory (on purpose)", cmd_decrypt)
    p.add_argument("src", metavar="SRC",
                   help="encrypted file or directory, or the URL of an encrypted object (s3://, gs://, az://, "
                        "http(s)://, ... through fsspec): streamed in bounded memory into a temporary file beside "
                        "DST, renamed into place only once every chunk is authenticated")
    p.add_argument("-o", "--output", metavar="DST", required=True,
                   help="plaintext output (a local file or directory; - for stdout)")
    _add_key_options(p)
    add_trust_options(p)
    _add_legacy_options(p)
    p.add_argument("--exclude", metavar="GLOB", action="append", dest="decrypt_exclude",
                   help="SRC a directory: don't write members matching GLOB (repeatable); the whole directory is "
                        "still checked against its manifest")
    p.add_argument("--threads", type=_positive_int, default=None, metavar="N", help="threads (default: all cores)")
    add_storage_options(p)
    _add_output_options(p)

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
    _add_output_options(p)

    p = command("verify", "authenticate whole files with the key (and/or their publisher signature: --trust); "
                "writes nothing", cmd_verify)
    p.add_argument("files", metavar="FILE", nargs="+",
                   help="encrypted file, directory or URL of an object (s3://, https://, ... through fsspec; read "
                        "once, in bounded memory)")
    _add_key_options(p)
    add_trust_options(p, keyless=True)
    _add_legacy_options(p)
    p.add_argument("--threads", type=_positive_int, default=None, metavar="N", help="threads (default: all cores)")
    add_storage_options(p)

    p = command("inspect", "show header fields (no key needed, nothing authenticated); with a key or identity, "
                "authenticate the header and say which stanza opens the file", cmd_inspect)
    p.add_argument("file", metavar="FILE", help="encrypted file, or the URL of an object (its header only is read)")
    p.add_argument("--json", action="store_true", help="one JSON object")
    _add_key_options(p, optional=True)
    add_storage_options(p)

    add_recipients_command(commands, command)
    add_dcp_command(command)
    add_model_signing_commands(command)

    add_config_command(command)
    return parser
