"""Windows only: where the extension _core.pyd finds modelcrypt.dll.

On Linux and macOS the extension finds libmodelcrypt in modelcrypt/lib through its run path
($ORIGIN/lib, @loader_path/lib). Windows has no run path and, since Python 3.8, no PATH search for
an extension's dependencies: the package's lib directory (modelcrypt.get_lib_dir(), where the DLL is
installed beside its import library, the CMake package and the pkg-config file) is added with
os.add_dll_directory before anything imports _core. Importing this module elsewhere does nothing.
"""

from __future__ import annotations

import os
import sys

_added = None  # the handle os.add_dll_directory returns, kept for the life of the process

if sys.platform == "win32":
    _lib_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib")
    if os.path.isdir(_lib_dir):
        _added = os.add_dll_directory(_lib_dir)
