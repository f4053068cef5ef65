"""modelcrypt: authenticated encryption for model files, loaded straight back into memory."""

from importlib.metadata import PackageNotFoundError, version as _version

from ._api import (
    DEFAULT_CHUNK_SIZE,
    KEY_LENGTHS,
    SUPPORTED_MODES,
    DecryptedBuffer,
    FileInfo,
    decrypt_bytes,
    decrypt_file,
    encrypt_bytes,
    encrypt_file,
    generate_key,
    inspect,
    is_encrypted,
    load,
)
from .exceptions import (
    AuthenticationError,
    FormatError,
    KeyMismatchError,
    ModelCryptError,
    UnsupportedVersionError,
)

try:
    __version__ = _version("modelcrypt")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"

__all__ = [
    "__version__",
    "generate_key",
    "encrypt_file",
    "encrypt_bytes",
    "load",
    "decrypt_bytes",
    "decrypt_file",
    "is_encrypted",
    "inspect",
    "DecryptedBuffer",
    "FileInfo",
    "SUPPORTED_MODES",
    "KEY_LENGTHS",
    "DEFAULT_CHUNK_SIZE",
    "ModelCryptError",
    "KeyMismatchError",
    "AuthenticationError",
    "FormatError",
    "UnsupportedVersionError",
]
