"""`modelcrypt dcp to-checkpoint` / `dcp from-checkpoint`: convert between an encrypted PyTorch
Distributed Checkpoint directory and one encrypted save_checkpoint file (or shard index), offline,
in one process, with no plaintext on disk."""

from __future__ import annotations

import argparse
import os

from ._common import EXIT_OK, _info, _usage

QUIET_HELP = {"dcp": "no informational messages (errors still print)"}


def cmd_dcp(args: argparse.Namespace) -> int:
    from ._key_source import _resolve_key
    from ._recipients_cli import release_key
    from ._signing_cli import given_signing_key, given_trusted_signers

    try:
        from ..torch import dcp as mdcp
    except ImportError as exc:
        raise _usage(f"dcp needs PyTorch: {exc}") from None
    if os.path.exists(args.dst) and not args.force:
        raise _usage(f"{args.dst} exists; use --force to replace it")
    trusted, signing_key = given_trusted_signers(args), given_signing_key(args)
    key, _ = _resolve_key(args)
    try:
        from .._api import _core

        if isinstance(key, _core.X25519Identity):
            raise _usage("dcp converts under one symmetric key (the output is written with it): give --key-file or "
                         "--key-env (in Python, dcp_to_checkpoint / checkpoint_to_dcp also take identity= and out_key=)")
        convert = mdcp.dcp_to_checkpoint if args.action == "to-checkpoint" else mdcp.checkpoint_to_dcp
        convert(args.src, args.dst, key, trusted_signers=trusted, signing_key=signing_key)
    finally:
        release_key(key)
    _info(args, f"converted {args.src} -> {args.dst}")
    return EXIT_OK


def add_dcp_command(command) -> None:
    from ._key_source import _add_key_options
    from ._signing_cli import add_sign_options, add_trust_options

    p = command("dcp", "convert between an encrypted PyTorch Distributed Checkpoint directory and one encrypted "
                       "checkpoint file (no plaintext on disk)", cmd_dcp)
    p.add_argument("action", choices=("to-checkpoint", "from-checkpoint"),
                   help="to-checkpoint: DCP directory SRC -> checkpoint file DST; from-checkpoint: checkpoint file or "
                        "*.index.json SRC -> DCP directory DST")
    p.add_argument("src", metavar="SRC")
    p.add_argument("dst", metavar="DST")
    p.add_argument("--force", action="store_true", help="replace an existing DST")
    _add_key_options(p)
    add_trust_options(p)
    add_sign_options(p)
