#!/usr/bin/env python3
"""Format v2 recipients, side by side in one run (issue 14's speed contract):

* load with an X25519 identity vs load with a symmetric key, same plaintext size (target >= 0.95x);
* `add_recipients` (header rewritten in place) vs re-encrypting the file (target >= 50x faster).

    python3 benchmarks/recipients.py [--size 1GiB] [--repeat 3] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import modelcrypt  # noqa: E402
from modelcrypt._sizes import parse_size  # noqa: E402


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="1GiB")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    size = parse_size(args.size, "--size")
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        plain = os.path.join(d, "plain.bin")
        with open(plain, "wb") as f:
            for _ in range(0, size, 64 << 20):
                f.write(os.urandom(min(64 << 20, size)))
            f.truncate(size)
        key, ident, other = modelcrypt.generate_key(), modelcrypt.generate_identity(), modelcrypt.generate_identity()
        v1, v2 = os.path.join(d, "v1.mcx"), os.path.join(d, "v2.mcx")
        modelcrypt.encrypt_file(plain, v1, key)
        modelcrypt.encrypt_file(plain, v2, recipients=[ident])

        def load_key():
            modelcrypt.load(v1, key).close()

        def load_identity():
            modelcrypt.load(v2, identity=ident).close()

        load_key()
        load_identity()  # warm the page cache for both
        t_key = t_id = float("inf")
        for _ in range(args.repeat):  # interleaved, so drift (page cache, CPU clock) hits both alike
            t_key, t_id = min(t_key, best(load_key, 1)), min(t_id, best(load_identity, 1))
        state = {"added": False}

        def add_remove():
            if state["added"]:
                modelcrypt.remove_recipients(v2, identity=ident, recipients=[other.recipient])
            else:
                modelcrypt.add_recipients(v2, identity=ident, recipients=[other.recipient])
            state["added"] = not state["added"]

        def reencrypt():
            modelcrypt.encrypt_file(plain, os.path.join(d, "re.mcx"), recipients=[ident, other])

        t_add, t_re = best(add_remove, args.repeat), best(reencrypt, args.repeat)
    gib = size / (1 << 30)
    print(f"size {args.size}: load with key {t_key:.3f} s ({gib / t_key:.2f} GiB/s), with identity {t_id:.3f} s "
          f"({gib / t_id:.2f} GiB/s): identity/key speed ratio {t_key / t_id:.3f} (target >= 0.95)")
    print(f"recipients add/remove {t_add * 1000:.2f} ms (in place), re-encrypt {t_re:.3f} s: "
          f"{t_re / t_add:.0f}x faster (target >= 50x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
