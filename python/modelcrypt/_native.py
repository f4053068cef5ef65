"""The native library: where its API (C header, libmodelcrypt.so, CMake and pkg-config files) is
installed, and the OpenSSL linked into it."""

from __future__ import annotations

import os

from . import _core

__all__ = ["get_include", "get_lib_dir", "get_cmake_dir", "get_pkgconfig_dir", "openssl_version"]

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


def openssl_version() -> str:
    """Version text of the OpenSSL linked into modelcrypt's native library (one static copy, shared by
    the Python extension and libmodelcrypt.so), e.g. ``"OpenSSL 3.0.17 1 Jul 2025"``; the same text
    as ``mc_openssl_version()`` in the C API."""
    return _core.openssl_version()
