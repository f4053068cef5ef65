"""Warning about keys whose bytes look like text: hex or base64 text passed as raw bytes (a key file
read with open(...).read()), or a password. Such a key still works (MindSpore's ASCII keys do), but
it is either the wrong key or a weak one. Nothing here copies the key or shows it."""

from __future__ import annotations

import re
import sys
import warnings
from types import FrameType

from .exceptions import KeyTextWarning

_HEX_TEXT = re.compile(rb"(?:0[xX])?[0-9a-fA-F]+\s*")
_PRINTABLE_TEXT = re.compile(rb"[\x20-\x7e]+\s*")


def key_text_kind(key) -> str | None:
    """'hex' or 'text' when every byte of the key is printable ASCII (a random key of 16 bytes is
    with probability below 2e-7), else None. `key` is bytes-like (bytes, bytearray, a byte view);
    nothing is copied."""
    if _HEX_TEXT.fullmatch(key):
        return "hex"
    if _PRINTABLE_TEXT.fullmatch(key):
        return "text"
    return None


def warn_if_key_looks_like_text(key) -> None:
    with memoryview(key) as view, view.cast("B") as octets:
        kind = key_text_kind(octets)
        n = octets.nbytes
    if kind is None:
        return
    if kind == "hex":
        message = (f"the {n}-byte key is made of hex digits: it looks like hex text used as raw bytes (a key file "
                   "read with open(...).read()?); decode it with modelcrypt.read_key_file(path) or "
                   "modelcrypt.key_from_hex(text). An ASCII key (MindSpore style) works but is only as strong "
                   "as its text")
    else:
        message = (f"the {n}-byte key is printable text: it looks like a password or like base64 text used as raw "
                   "bytes; use a random key (modelcrypt.generate_key(), `modelcrypt keygen`) or decode base64 with "
                   "modelcrypt.key_from_base64(text)")
    warnings.warn(message, KeyTextWarning, stacklevel=_caller_level())


def _caller_level() -> int:
    """The stacklevel of the first frame outside the modelcrypt package: the user's call."""
    frame: FrameType | None = sys._getframe(2)  # the frame that called warn_if_key_looks_like_text
    level = 2
    while frame is not None and frame.f_globals.get("__name__", "").partition(".")[0] == "modelcrypt":
        frame, level = frame.f_back, level + 1
    return level
