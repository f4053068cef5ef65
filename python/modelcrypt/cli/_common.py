"""Exit codes, the command error, messages, progress bars and argument types shared by the commands."""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Callable

from .._sizes import parse_size
from ..exceptions import ModelCryptError

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
  143  terminated by SIGTERM (kill, docker stop, systemd), 129 by SIGHUP: as for Ctrl-C
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
        base, bar = self.base, self.bar
        return lambda done: bar.update(base + done - bar.n)

    def file_done(self, size: int) -> None:
        self.base += size
        if self.bar is not None:
            self.bar.update(self.base - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _data_error(path: str, exc: ModelCryptError) -> CommandError:
    message = str(exc)
    return CommandError(EXIT_DATA, message if message.startswith(f"{path}:") else f"{path}: {message}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
def _chunk_size(text: str) -> int:
    """--chunk-size: the sizes save_checkpoint's max_shard_size takes (_sizes.py), a multiple of 4 KiB."""
    try:
        size = parse_size(text, "chunk size")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if size % 4096:
        raise argparse.ArgumentTypeError(f"chunk size {text!r} is {size} bytes, not a multiple of 4 KiB (4096)"
                                         + ("; did you mean KiB/MiB (powers of 1024)?"
                                            if re.search(r"[kmgt]b\s*$", text, re.I) else ""))
    return size


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


def _print_secret(comment: str, secret: bytearray) -> None:
    """Write `comment` and then the secret key text to stdout in one buffer that is wiped after (no
    intermediate copies: the buffer is sized once and filled in place)."""
    head = comment.encode()
    text = bytearray(len(head) + len(secret) + 1)
    try:
        text[:len(head)] = head
        text[len(head):len(head) + len(secret)] = secret
        text[-1:] = b"\n"
        sys.stdout.flush()
        fd = sys.stdout.fileno()
        view = memoryview(text)
        while view:
            view = view[os.write(fd, view):]
        view.release()
    finally:
        text[:] = bytes(len(text))
