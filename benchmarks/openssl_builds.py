"""Two builds of modelcrypt side by side: the same sources linked against two OpenSSL releases (for
example Debian's 3.0.x and the pinned 3.5 LTS that the release wheels build from source).

Each build is installed in its own Python environment; this script runs the same measurements in
both, alternating A, B, A, B ... within one run, and reports the medians and their ratio B / A:

    python benchmarks/openssl_builds.py --a /work/venv-o30/bin/python --b /work/venv-o35/bin/python \
        --size 256MiB --repeat 5 --json benchmarks/results/2026-12-04-openssl.json

Cases (in memory, so that disk speed does not hide the cipher): `encrypt_bytes` and
`decrypt_bytes` of random data with AES-256-GCM, on one thread (the cipher's own speed on one core:
where AES-NI / VAES + AVX-512 code paths differ between releases) and on every core.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

MiB = 1 << 20

CHILD = r"""
import json, os, sys, time
import modelcrypt
size, threads, repeat = int(sys.argv[1]), int(sys.argv[2]) or None, int(sys.argv[3])
data = os.urandom(size)
key = modelcrypt.generate_key()
blob = modelcrypt.encrypt_bytes(data, key, threads=threads)
out = {"openssl": modelcrypt.openssl_version(), "encrypt": [], "decrypt": []}
for _ in range(repeat):
    t = time.perf_counter(); modelcrypt.encrypt_bytes(data, key, threads=threads)
    out["encrypt"].append(time.perf_counter() - t)
    t = time.perf_counter()
    with modelcrypt.decrypt_bytes(blob, key, threads=threads) as buf:
        assert len(buf) == size
    out["decrypt"].append(time.perf_counter() - t)
print(json.dumps(out))
"""


def parse_size(text: str) -> int:
    units = {"KIB": 1 << 10, "MIB": MiB, "GIB": 1 << 30}
    t = text.strip().upper()
    for unit, mult in units.items():
        if t.endswith(unit):
            return int(float(t[: -len(unit)]) * mult)
    return int(t)


def run(python: str, size: int, threads: int, repeat: int) -> dict:
    proc = subprocess.run([python, "-c", CHILD, str(size), str(threads), str(repeat)],
                          capture_output=True, text=True, check=False, cwd="/")
    if proc.returncode != 0:
        raise SystemExit(f"{python} failed:\n{proc.stderr}")
    return json.loads(proc.stdout)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--a", required=True, help="python of build A (the baseline)")
    ap.add_argument("--b", required=True, help="python of build B")
    ap.add_argument("--size", type=parse_size, default=256 * MiB, help="plaintext size (default 256MiB)")
    ap.add_argument("--repeat", type=int, default=5, help="alternating rounds (default 5)")
    ap.add_argument("--json", metavar="OUT", help="also write the results to this JSON file")
    args = ap.parse_args(argv)

    cores = len(os.sched_getaffinity(0))
    results: dict = {"size": args.size, "repeat": args.repeat, "cores": cores, "cases": {}}
    for threads in (1, 0):
        label = "1 thread" if threads == 1 else f"all {cores} cores"
        times: dict[str, dict[str, list[float]]] = {"a": {"encrypt": [], "decrypt": []},
                                                    "b": {"encrypt": [], "decrypt": []}}
        for _ in range(args.repeat):  # A, B alternating: drift and noise hit both alike
            for side, python in (("a", args.a), ("b", args.b)):
                out = run(python, args.size, threads, 1)
                results[f"openssl_{side}"] = out["openssl"]
                for op in ("encrypt", "decrypt"):
                    times[side][op] += out[op]
        for op in ("encrypt", "decrypt"):
            a, b = statistics.median(times["a"][op]), statistics.median(times["b"][op])
            case = {"a_s": a, "b_s": b, "a_MiB_s": args.size / MiB / a, "b_MiB_s": args.size / MiB / b,
                    "throughput_b_over_a": a / b}
            results["cases"][f"{op}, {label}"] = case
    print(f"A: {results['openssl_a']}\nB: {results['openssl_b']}\n"
          f"{args.size // MiB} MiB, AES-256-GCM, median of {args.repeat} alternating rounds")
    for name, c in results["cases"].items():
        print(f"  {name:24s} A {c['a_MiB_s']:8.0f} MiB/s   B {c['b_MiB_s']:8.0f} MiB/s   "
              f"B/A {c['throughput_b_over_a']:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
