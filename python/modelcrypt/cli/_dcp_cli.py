"""`modelcrypt dcp to-checkpoint` / `dcp from-checkpoint`: convert between an encrypted PyTorch
Distributed Checkpoint directory and one encrypted save_checkpoint file (or shard index), offline,
in one process, with no plaintext on disk.

The key options (--key-file, --key-env, -i/--identity, ...) open SRC. The output is written under
--out-key-file / --out-key-env when given, else under SRC's symmetric key; from-checkpoint also
encrypts to every -r/-R recipient (a DCP checkpoint can be opened by identities; a single
save_checkpoint file is symmetric-key only)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from ._common import EXIT_DATA, EXIT_OK, CommandError, _info, _usage

QUIET_HELP = {"dcp": "no informational messages (errors still print)"}


def cmd_dcp(args: argparse.Namespace) -> int:
    from .._api import _core
    from ._key_source import _resolve_key, key_from_prefixed_options
    from ._recipients_cli import given_recipients, release_key
    from ._signing_cli import given_signing_key, given_trusted_signers

    try:
        from ..torch import dcp as mdcp
    except ImportError as exc:
        raise _usage(f"dcp needs PyTorch: {exc}") from None
    if os.path.exists(args.dst) and not args.force:
        raise _usage(f"{args.dst} exists; use --force to replace it")
    to_checkpoint = args.action == "to-checkpoint"
    recipients = given_recipients(args)
    if to_checkpoint and recipients:
        raise _usage("dcp to-checkpoint writes one save_checkpoint file, which is encrypted under a symmetric key: "
                     "-r/-R are for from-checkpoint (give --out-key-file or --out-key-env for the output key)")
    trusted, signing_key = given_trusted_signers(args), given_signing_key(args)
    key, _ = _resolve_key(args)
    out_key = None
    try:
        out_key = key_from_prefixed_options(args, "out")  # --out-key-file / --out-key-env
        is_identity = isinstance(key, _core.X25519Identity)
        if is_identity and out_key is None and not recipients:
            raise _usage("an identity opens SRC but cannot encrypt the output: give --out-key-file FILE or "
                         "--out-key-env VAR" + ("" if to_checkpoint else ", or -r RECIPIENT / -R FILE"))
        opener: dict[str, Any] = {"identity": key} if is_identity else {"key": key}
        output_key = out_key if out_key is not None else (None if is_identity else key)
        if to_checkpoint:
            try:
                mdcp.dcp_to_checkpoint(args.src, args.dst, **opener, out_key=output_key, trusted_signers=trusted,
                                       signing_key=signing_key, tensors_only=args.tensors_only)
            except mdcp.ObjectItemError as exc:  # the data, not the command line: exit 1
                raise CommandError(EXIT_DATA, f"{args.src}: {exc}".replace("tensors_only=True (CLI: --tensors-only)",
                                                                          "--tensors-only")) from None
        else:
            mdcp.checkpoint_to_dcp(args.src, args.dst, **opener, out_key=output_key, recipients=recipients or None,
                                   trusted_signers=trusted, signing_key=signing_key)
    finally:
        release_key(key)
        if out_key is not None:
            release_key(out_key)
    _info(args, f"converted {args.src} -> {args.dst}")
    return EXIT_OK


def add_dcp_command(command) -> None:
    from ._key_source import _add_key_options
    from ._recipients_cli import add_recipient_options
    from ._signing_cli import add_sign_options, add_trust_options

    p = command("dcp", "convert between an encrypted PyTorch Distributed Checkpoint directory and one encrypted "
                       "checkpoint file (no plaintext on disk)", cmd_dcp)
    p.add_argument("action", choices=("to-checkpoint", "from-checkpoint"),
                   help="to-checkpoint: DCP directory SRC -> checkpoint file DST; from-checkpoint: checkpoint file or "
                        "*.index.json SRC -> DCP directory DST")
    p.add_argument("src", metavar="SRC")
    p.add_argument("dst", metavar="DST")
    p.add_argument("--force", action="store_true", help="replace an existing DST")
    p.add_argument("--tensors-only", action="store_true",
                   help="to-checkpoint: leave out object items (optimizer param_groups, step counts), which a "
                        "checkpoint file cannot hold (without it they are an error, exit 1)")
    _add_key_options(p)
    g = p.add_argument_group("output key (default: SRC's symmetric key)")
    g.add_argument("--out-key-file", metavar="FILE", help="encrypt DST under the key in FILE")
    g.add_argument("--out-key-env", metavar="VAR", help="encrypt DST under the key in environment variable VAR")
    add_recipient_options(p)
    add_trust_options(p)
    add_sign_options(p)
