"""``modelcrypt config``: where the C/C++ API is installed, the version, and the OpenSSL linked in."""

from __future__ import annotations

import argparse
from typing import Callable

from .. import __version__, _native
from ._common import EXIT_OK

_WHERE = (("--cmakedir", _native.get_cmake_dir, "directory of modelcryptConfig.cmake"),
          ("--includedir", _native.get_include, "include directory (modelcrypt/modelcrypt.h)"),
          ("--libdir", _native.get_lib_dir, "directory of libmodelcrypt.so"),
          ("--pkgconfigdir", _native.get_pkgconfig_dir, "directory of modelcrypt.pc"))


def add_config_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Registers ``config`` through the parser's ``command(name, help, func)`` helper."""
    p = command("config", "print where the C/C++ API is installed and the OpenSSL linked in", cmd_config)
    which = p.add_mutually_exclusive_group()
    for flag, func, what in _WHERE:
        which.add_argument(flag, action="store_const", const=func, dest="where", help=what)
    which.add_argument("--openssl-version", action="store_const", const=_native.openssl_version, dest="where",
                       help="version of the OpenSSL linked into modelcrypt (e.g. 'OpenSSL 3.0.17 1 Jul 2025')")


def _summary() -> list[str]:
    lines = [f"modelcrypt: {__version__}", f"openssl: {_native.openssl_version()}"]
    for flag, func, _ in _WHERE:
        try:
            where = func()
        except FileNotFoundError:
            where = "(not installed)"
        lines.append(f"{flag[2:]}: {where}")
    return lines


def cmd_config(args: argparse.Namespace) -> int:
    """With a flag prints that one value; without, one ``name: value`` line for each."""
    if args.where is not None:
        print(args.where())
    else:
        print("\n".join(_summary()))
    return EXIT_OK
