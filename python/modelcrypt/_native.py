"""Where the native API (C header, libmodelcrypt.so, CMake and pkg-config files) is installed."""

from __future__ import annotations

import os

__all__ = ["get_include", "get_lib_dir", "get_cmake_dir", "get_pkgconfig_dir"]

_HERE = os.path.dirname(os.path.abspath(__file__))


def _existing(path: str) -> str:
    if not os.path.isdir(path):
        raise FileNotFoundError(f"modelcrypt's native files are not installed here: {path} (reinstall the wheel)")
    return path


def get_include() -> str:
    """Directory to add to the include path: it holds modelcrypt/modelcrypt.h and modelcrypt.hpp."""
    return _existing(os.path.join(_HERE, "include"))


def get_lib_dir() -> str:
    """Directory holding libmodelcrypt.so."""
    return _existing(os.path.join(_HERE, "lib"))


def get_cmake_dir() -> str:
    """Directory holding modelcryptConfig.cmake (pass it as modelcrypt_DIR or in CMAKE_PREFIX_PATH)."""
    return _existing(os.path.join(_HERE, "lib", "cmake", "modelcrypt"))


def get_pkgconfig_dir() -> str:
    """Directory holding modelcrypt.pc (add it to PKG_CONFIG_PATH)."""
    return _existing(os.path.join(_HERE, "lib", "pkgconfig"))
