"""Where the extension finds the native library: python/modelcrypt/_dll_path.py runs before _core loads.

On Windows (no run path) it adds modelcrypt/lib, where the DLL is installed, to the DLL search path;
elsewhere it does nothing. The import order is checked on every platform, the DLL directory where it
applies (Windows wheels, in the release pipeline).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import modelcrypt
from modelcrypt import _dll_path

_RECORD_IMPORTS = """
import sys
order = []
class Recorder:
    def find_spec(self, name, path=None, target=None):
        if name in ("modelcrypt._dll_path", "modelcrypt._core"):
            order.append(name)
        return None
sys.meta_path.insert(0, Recorder())
import modelcrypt
print(order)
"""


def test_dll_path_is_imported_before_the_extension() -> None:
    out = subprocess.run([sys.executable, "-c", _RECORD_IMPORTS], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    order = ast.literal_eval(out.stdout.strip().splitlines()[-1])
    assert order[:2] == ["modelcrypt._dll_path", "modelcrypt._core"], order


def test_dll_directory_is_the_package_lib_dir() -> None:
    if sys.platform == "win32":
        assert _dll_path._added is not None
        names = os.listdir(modelcrypt.get_lib_dir())
        assert any(n.lower().endswith(".dll") and "modelcrypt" in n.lower() for n in names), names
        assert os.path.samefile(_dll_path._lib_dir, modelcrypt.get_lib_dir())
    else:
        assert _dll_path._added is None  # a run path finds libmodelcrypt here
