#!/usr/bin/env python3
"""Format v2 recipients (issue 14's speed targets): benchmarks/run.py with its recipient cases only.

    python3 benchmarks/recipients.py [--size 1GiB] [--repeat 3] [--dir DIR] [--json OUT] [any run.py option]

is ``python3 benchmarks/run.py --cases load,load_identity,recipients_add,reencrypt_recipients ...``:
load with an X25519 identity vs load with a symmetric key, same plaintext size (target >= 0.95x), and
``add_recipients`` in place (header only) vs re-encrypting the file (target >= 50x faster), measured
side by side in one run and reported with run.py's other targets (see benchmarks/README.md).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if any(a == "--cases" or a.startswith("--cases=") for a in args):
        raise SystemExit("recipients.py runs run.py's recipient cases; use run.py for --cases")
    return run.main(["--cases", ",".join(run.RECIPIENT_CASES), *args])


if __name__ == "__main__":
    sys.exit(main())
