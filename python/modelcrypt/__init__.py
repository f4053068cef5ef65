"""modelcrypt: authenticated encryption for model files, loaded straight back into memory."""

from importlib.metadata import PackageNotFoundError, version as _version

from . import _api, _directory, _migrate, _native, _random_access, checkpoint, exceptions, keys, recipients, signing
from ._api import *  # noqa: F401,F403  (names listed in _api.__all__)
from ._random_access import *  # noqa: F401,F403  (names listed in _random_access.__all__)
from ._directory import *  # noqa: F401,F403  (names listed in _directory.__all__)
from ._native import *  # noqa: F401,F403  (names listed in _native.__all__)
from .keys import *  # noqa: F401,F403  (names listed in keys.__all__)
from .checkpoint import *  # noqa: F401,F403  (names listed in checkpoint.__all__)
from .exceptions import *  # noqa: F401,F403  (names listed in exceptions.__all__)
from ._migrate import *  # noqa: F401,F403  (names listed in _migrate.__all__)
from .recipients import *  # noqa: F401,F403  (names listed in recipients.__all__)
from .signing import *  # noqa: F401,F403  (names listed in signing.__all__)
from . import _load_into
from ._load_into import *  # noqa: F401,F403  (names listed in _load_into.__all__)
# OpenSSF model signing of encrypted directories (the model-signing package, imported only when used).
# Its verify_directory is exported as verify_directory_signature: modelcrypt.verify_directory is the
# key-based check of _directory.
from . import model_signing_interop
from .model_signing_interop import sign_directory, verify_directory_signature

try:
    __version__ = _version("modelcrypt")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"

__all__ = ["__version__", *_api.__all__, *_random_access.__all__, *_directory.__all__, *_native.__all__, *keys.__all__, *checkpoint.__all__, *exceptions.__all__,
           *_migrate.__all__, *recipients.__all__, *signing.__all__,
           "sign_directory", "verify_directory_signature", *_load_into.__all__]
