"""The `modelcrypt` command line (also `python -m modelcrypt`). Contract: docs/KEYS_AND_CLI.md."""

from ._common import EXIT_DATA, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_IO, EXIT_OK, EXIT_USAGE
from ._main import main

__all__ = ["main", "EXIT_OK", "EXIT_DATA", "EXIT_USAGE", "EXIT_IO", "EXIT_INTERNAL", "EXIT_INTERRUPTED"]
