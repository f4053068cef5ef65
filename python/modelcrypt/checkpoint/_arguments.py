"""Checks of the arguments shared by the checkpoint functions: keys and modes, metadata, sizes, names."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

from .._api import _check_key, _check_mode, _check_signing_key, _recipient_keys, _shown
from .._sizes import parse_size

EncMode = Union[str, Callable[[bytes, bytes], bytes]]
DecMode = Union[str, Callable[[str, bytes], bytes]]


def _check_metadata(metadata: Any) -> Optional[Mapping[str, str]]:
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a mapping of str to str or None, not {type(metadata).__name__}")
    for k, v in metadata.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError("metadata keys and values must be str")
    return metadata


def _parse_size(size: Any) -> int:
    return parse_size(size, "max_shard_size")  # the same spellings as the CLI's --chunk-size (_sizes.py)


def _check_key_mode(key: Any, mode: Any, what: str) -> tuple[Any, Any]:
    mode = _check_mode(mode)  # a mode name, or a custom cipher callable
    if key is None:
        if callable(mode):
            raise ValueError(f"a custom {what}_mode callable needs {what}_key (it is passed to the callable)")
        return None, mode
    return _check_key(key), mode


def _check_enc(enc_key: Any, enc_mode: Any) -> tuple[Any, Any]:
    return _check_key_mode(enc_key, enc_mode, "enc")


def _check_signing(signing_key: Any, enc_key: Any, enc_mode: Any, recipients: Any = None) -> Any:
    """A publisher signing key for an encrypted checkpoint (format v3), or None."""
    signing_key = _check_signing_key(signing_key)
    if signing_key is not None and ((enc_key is None and not recipients) or callable(enc_mode)):
        raise ValueError("signing_key signs modelcrypt files: it needs enc_key or recipients and a modelcrypt enc_mode")
    return signing_key


def _check_recipients(recipients: Any, enc_mode: Any) -> Optional[list[bytes]]:
    """X25519 recipients of an encrypted checkpoint (format v2) as 32-byte public keys, or None."""
    keys = _recipient_keys(recipients)
    if keys is None:
        return None
    if not keys:
        raise ValueError("recipients is empty: give at least one recipient, or recipients=None")
    if callable(enc_mode):
        raise ValueError("recipients need a modelcrypt enc_mode; a custom enc_mode callable takes only enc_key")
    return keys


@dataclass(frozen=True, repr=False)
class Encryption:
    """How a checkpoint file is written: plain (no key, no recipients), with a custom cipher callable,
    or as a modelcrypt file under ``key`` and/or to ``recipients``, signed by ``signing_key``."""

    key: Any = None
    mode: Any = "AES-GCM"
    recipients: Optional[list[bytes]] = None
    signing_key: Any = None

    @property
    def encrypted(self) -> bool:
        return self.key is not None or bool(self.recipients)

    @property
    def modelcrypt(self) -> bool:
        """Encrypted in modelcrypt's format (so it has authenticated metadata), not by a custom cipher."""
        return self.encrypted and not callable(self.mode)

    def __repr__(self) -> str:  # never the key
        return f"<Encryption {'modelcrypt' if self.modelcrypt else 'custom' if self.encrypted else 'plain'}>"


def _check_encryption(enc_key: Any, enc_mode: Any, recipients: Any = None, signing_key: Any = None) -> Encryption:
    """The checked writer arguments of save_checkpoint / CheckpointConfig."""
    enc_key, enc_mode = _check_enc(enc_key, enc_mode)
    keys = _check_recipients(recipients, enc_mode)
    return Encryption(enc_key, enc_mode, keys, _check_signing(signing_key, enc_key, enc_mode, keys))


CHECKPOINT_FORMATS = ("safetensors", "mindspore")


def _check_format(format: Any) -> str:
    if not isinstance(format, str):
        raise TypeError(f"format must be a str, not {type(format).__name__}")
    if format.lower() not in CHECKPOINT_FORMATS:
        raise ValueError(f"unknown checkpoint format {_shown(format)}; supported: {', '.join(CHECKPOINT_FORMATS)}")
    return format.lower()


def _check_dec(dec_key: Any, dec_mode: Any) -> tuple[Any, Any]:
    return _check_key_mode(dec_key, dec_mode, "dec")


def _check_names(names: Any) -> Optional[list[str]]:
    if names is None:
        return None
    if isinstance(names, (str, bytes)):
        raise TypeError("names must be an iterable of str (a list), not a single str")
    names = list(names)
    for n in names:
        if not isinstance(n, str):
            raise TypeError(f"names must be str, not {type(n).__name__}")
    return list(dict.fromkeys(names))


def _missing(names: Iterable[str], where: str) -> KeyError:
    missing = list(names)
    shown = ", ".join(_shown(n, 200) for n in missing[:20]) + (", ..." if len(missing) > 20 else "")
    return KeyError(f"{len(missing)} name(s) not in {where}: {shown}")
