"""modelcrypt: authenticated encryption for model files, loaded straight back into memory."""

from importlib import import_module as _import_module
from importlib.metadata import PackageNotFoundError, version as _version
from typing import TYPE_CHECKING as _TYPE_CHECKING, Any as _Any

# First, before anything imports _core: on Windows, where _core.pyd finds modelcrypt.dll.
from . import _dll_path  # noqa: F401

# isort: split
from . import (
    _api,
    _directory,
    _load_into,
    _migrate,
    _native,
    _random_access,
    _safe_open,
    checkpoint,
    exceptions,
    keys,
    recipients,
    signing,
)
from ._api import *  # noqa: F401,F403  (names listed in _api.__all__)
from ._directory import *  # noqa: F401,F403  (names listed in _directory.__all__)
from ._load_into import *  # noqa: F401,F403  (names listed in _load_into.__all__)
from ._migrate import *  # noqa: F401,F403  (names listed in _migrate.__all__)
from ._native import *  # noqa: F401,F403  (names listed in _native.__all__)
from ._random_access import *  # noqa: F401,F403  (names listed in _random_access.__all__)
from ._safe_open import *  # noqa: F401,F403  (safe_open: a safetensors-style reader)
from .checkpoint import *  # noqa: F401,F403  (names listed in checkpoint.__all__)
from .exceptions import *  # noqa: F401,F403  (names listed in exceptions.__all__)
from .keys import *  # noqa: F401,F403  (names listed in keys.__all__)

# OpenSSF model signing of encrypted directories (the model-signing package, imported only when used).
# Its verify_directory is exported as verify_directory_signature: modelcrypt.verify_directory is the
# key-based check of _directory.
from .model_signing_interop import sign_directory, verify_directory_signature
from .recipients import *  # noqa: F401,F403  (names listed in recipients.__all__)
from .signing import *  # noqa: F401,F403  (names listed in signing.__all__)

try:
    __version__ = _version("modelcrypt")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"

__all__ = ["__version__", *_api.__all__, *_random_access.__all__, *_directory.__all__, *_native.__all__, *keys.__all__,
           *checkpoint.__all__, *exceptions.__all__,
           *_migrate.__all__, *recipients.__all__, *signing.__all__,
           "sign_directory", "verify_directory_signature", *_safe_open.__all__, *_load_into.__all__]

# The framework loaders are submodules that import their framework (torch, onnxruntime, ...), so
# ``import modelcrypt`` does not import them; ``modelcrypt.torch`` imports modelcrypt.torch on first
# access (PEP 562), or raises ImportError saying which extra to install when the framework is missing.
_FRAMEWORK_MODULES = frozenset({"mindspore", "numpy", "onnxruntime", "paddle", "torch", "transformers"})
if _TYPE_CHECKING:  # type checkers and IDEs see the submodules' real signatures
    from . import mindspore, numpy, onnxruntime, paddle, torch, transformers  # noqa: F401


def __getattr__(name: str) -> _Any:
    if name in _FRAMEWORK_MODULES:
        return _import_module(f"{__name__}.{name}")  # also binds it as an attribute of the package
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _FRAMEWORK_MODULES)
