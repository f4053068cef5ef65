"""The `modelcrypt` command line (also `python -m modelcrypt`)."""

from __future__ import annotations

import argparse
import sys

from . import __version__, _native

EXIT_OK = 0
EXIT_USAGE = 2


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelcrypt",
        description="Authenticated encryption for model files.",
        epilog="exit codes: 0 ok, 2 usage error",
    )
    parser.add_argument("--version", action="version", version=f"modelcrypt {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    config = commands.add_parser(
        "config",
        help="print where the C/C++ API is installed",
        description="Print locations of the native API shipped in the wheel, for build systems: "
        "cmake -Dmodelcrypt_DIR=$(modelcrypt config --cmakedir) ...",
    )
    which = config.add_mutually_exclusive_group(required=True)
    which.add_argument("--cmakedir", action="store_const", const=_native.get_cmake_dir, dest="where",
                       help="directory of modelcryptConfig.cmake")
    which.add_argument("--includedir", action="store_const", const=_native.get_include, dest="where",
                       help="include directory (holds modelcrypt/modelcrypt.h)")
    which.add_argument("--libdir", action="store_const", const=_native.get_lib_dir, dest="where",
                       help="directory of libmodelcrypt.so")
    which.add_argument("--pkgconfigdir", action="store_const", const=_native.get_pkgconfig_dir, dest="where",
                       help="directory of modelcrypt.pc")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if args.command == "config":
        print(args.where())
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
