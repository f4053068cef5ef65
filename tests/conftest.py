"""Shared test helpers.

require(name): the framework integration tests need real frameworks (onnxruntime, torch, paddle, ...).
Without one, its tests are skipped with the pip command that installs it, unless
MODELCRYPT_REQUIRE_FRAMEWORKS=1 (set by .ci/run) turns the missing framework into a failure.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Any

import pytest

# module -> the modelcrypt extra that installs it
_EXTRAS = {
    "onnx": "onnx",
    "onnxruntime": "onnx",
    "torch": "torch",
    "paddle": "paddle",
    "safetensors": "test",
    "model_signing": "signing",
    "s3fs": "test",
    "moto": "test",
    "boto3": "test",
    "fsspec": "remote",
    "mypy": "test",
}


def require(name: str, *, load: bool = True) -> Any:
    """Import and return the module ``name``; skip the test when it is not installed (fail instead
    when MODELCRYPT_REQUIRE_FRAMEWORKS=1). With ``load=False`` only check that it is installed
    (returns None), for frameworks the test runs in a subprocess."""
    try:
        if load:
            return importlib.import_module(name)
        if importlib.util.find_spec(name) is None:
            raise ImportError(f"No module named {name!r}")
        return None
    except ImportError as exc:
        extra = _EXTRAS.get(name.split(".")[0], name)
        missing = f"{name} is not installed (pip install 'modelcrypt[{extra}]')"
        if os.environ.get("MODELCRYPT_REQUIRE_FRAMEWORKS") == "1":
            pytest.fail(f"{missing} and MODELCRYPT_REQUIRE_FRAMEWORKS=1 [{type(exc).__name__}: {exc}]", pytrace=False)
        pytest.skip(f"{missing}; set MODELCRYPT_REQUIRE_FRAMEWORKS=1 to make this a failure")


def require_tool(name: str, package: str) -> str:
    """The path of the command ``name`` (a Debian ``package``); skip the test when it is missing
    (fail instead when MODELCRYPT_REQUIRE_FRAMEWORKS=1: .ci/run installs it)."""
    import shutil

    path = shutil.which(name)
    if path is None:
        missing = f"{name} is not installed (apt-get install {package})"
        if os.environ.get("MODELCRYPT_REQUIRE_FRAMEWORKS") == "1":
            pytest.fail(f"{missing} and MODELCRYPT_REQUIRE_FRAMEWORKS=1", pytrace=False)
        pytest.skip(f"{missing}; set MODELCRYPT_REQUIRE_FRAMEWORKS=1 to make this a failure")
    return path


@pytest.fixture(scope="session")
def dcp_saved4(tmp_path_factory):
    """An encrypted DCP checkpoint saved by 4 ranks (tests/dcp_workers.py's "save"), shared by the DCP tests."""
    from dcp_jobs import job
    path = tmp_path_factory.mktemp("dcp") / "ckpt4"
    job(tmp_path_factory.mktemp("jobs"), 4, "save", path=path, chunk_size=64 << 10)
    return path
