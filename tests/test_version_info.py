"""Versions reported by the installed package (issue 19): modelcrypt's own (``__version__``,
``modelcrypt --version``, ``mc_version()``) agree with the wheel's metadata, and the OpenSSL version
(``modelcrypt.openssl_version()``, ``modelcrypt config``, ``mc_openssl_version()``) is that of the
copy linked into libmodelcrypt.so.

Run against a non-editable install: the metadata is the installed distribution's.
"""

import ctypes
import importlib.metadata
import os
import shutil
import subprocess
import sys

import pytest

import modelcrypt


def _run(*args):
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc.stdout


@pytest.fixture(scope="module")
def script():
    path = shutil.which("modelcrypt")
    assert path, "the modelcrypt console script is not on PATH"
    return path


@pytest.fixture(scope="module")
def clib():
    lib = ctypes.CDLL(os.path.join(modelcrypt.get_lib_dir(), "libmodelcrypt.so"))
    for name in ("mc_version", "mc_openssl_version"):
        getattr(lib, name).restype = ctypes.c_char_p
        getattr(lib, name).argtypes = []
    return lib


def test_versions_agree_with_the_wheel_metadata(script, clib):
    expected = importlib.metadata.version("modelcrypt")
    assert expected != "0+unknown"
    assert modelcrypt.__version__ == expected
    for cmd in ([script, "--version"], [sys.executable, "-m", "modelcrypt", "--version"]):
        assert _run(*cmd).strip() == f"modelcrypt {expected}", cmd
    assert clib.mc_version().decode() == expected
    assert f"modelcrypt: {expected}" in _run(script, "config").splitlines()


def test_openssl_version_is_the_linked_copy(script, clib):
    text = modelcrypt.openssl_version()
    assert isinstance(text, str) and text.startswith("OpenSSL 3."), text
    assert "openssl_version" in modelcrypt.__all__
    assert clib.mc_openssl_version().decode() == text
    assert _run(script, "config", "--openssl-version").strip() == text
    assert f"openssl: {text}" in _run(script, "config").splitlines()
    # The text is OpenSSL_version()'s of the static copy inside libmodelcrypt.so, not of a shared
    # libcrypto the process might also have loaded.
    with open(os.path.join(modelcrypt.get_lib_dir(), "libmodelcrypt.so"), "rb") as f:
        assert text.encode() in f.read()
