"""Smoke test of an *installed* modelcrypt (a wheel or an sdist), run from outside the source tree.

    python scripts/smoke_installed.py [EXPECTED_VERSION] [--no-compiler]

Checks, failing with a non-zero exit on the first problem:
- the package imported is the installed one (not python/ of a checkout), and its native module loads;
- ``modelcrypt.__version__``, ``modelcrypt --version`` and the distribution metadata
  (importlib.metadata) agree, and equal EXPECTED_VERSION when given (the version in the wheel's
  file name; cibuildwheel's test-command gives none);
- with --no-compiler: no C/C++ compiler is reachable on PATH (the wheel must not need one);
- the CLI round trip: keygen, encrypt, inspect, decrypt gives the original bytes; a wrong key is refused;
- the Python API round trip in memory (encrypt_file / load), and a flipped ciphertext byte is refused.
The quickstart (examples/quickstart.py) and the pytest subset are run by the caller
(scripts/build_and_smoke_wheels.sh).
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
from typing import NoReturn


def fail(message: str) -> NoReturn:
    """Print ``message`` and exit non-zero."""
    print(f"SMOKE FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def check_compiler_absent() -> None:
    """The test runs with PATH holding no compiler, as on a user's machine without a toolchain."""
    for tool in ("cc", "gcc", "c++", "g++", "clang", "cmake", "ld"):
        found = shutil.which(tool)
        if found:
            fail(f"{tool} is on PATH ({found}); the smoke test must run without a toolchain")


def check_versions(expected: str | None) -> None:
    """__version__, the CLI's --version and the wheel metadata are the same version."""
    import modelcrypt
    from modelcrypt import _core  # noqa: F401  (the native module must load)

    here = os.path.dirname(os.path.abspath(__file__))
    source_pkg = os.path.join(os.path.dirname(here), "python", "modelcrypt")
    if os.path.abspath(os.path.dirname(modelcrypt.__file__)) == os.path.abspath(source_pkg):
        fail(f"imported the source tree ({modelcrypt.__file__}), not the installed package")
    meta = importlib.metadata.version("modelcrypt")
    cli = subprocess.run([sys.executable, "-m", "modelcrypt", "--version"], check=True,
                         capture_output=True, text=True).stdout.strip()
    script = shutil.which("modelcrypt")
    if script is None:
        fail("the modelcrypt console script is not on PATH")
    cli_script = subprocess.run([script, "--version"], check=True, capture_output=True, text=True).stdout.strip()
    got = {"__version__": modelcrypt.__version__, "metadata": meta,
           "python -m modelcrypt --version": cli.split()[-1], "modelcrypt --version": cli_script.split()[-1]}
    if set(got.values()) != {expected or meta}:
        fail(f"versions disagree (expected {expected or meta}): {got}")
    print(f"versions agree: {meta} ({modelcrypt.__file__})")


def check_cli_roundtrip(tmp: str) -> None:
    """keygen / encrypt / inspect / decrypt through the installed console script."""
    exe = shutil.which("modelcrypt") or fail("the modelcrypt console script is not on PATH")
    plain = os.path.join(tmp, "model.bin")
    payload = os.urandom(300_000) + b"modelcrypt smoke"
    with open(plain, "wb") as f:
        f.write(payload)
    key, other = os.path.join(tmp, "model.key"), os.path.join(tmp, "other.key")

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([exe, *args], capture_output=True, text=True)
        if ok and res.returncode != 0:
            fail(f"modelcrypt {' '.join(args)} exited {res.returncode}: {res.stderr.strip()}")
        return res

    run("keygen", "-o", key)
    run("keygen", "-o", other)
    run("encrypt", plain, "-o", plain + ".mcx", "--key-file", key)
    run("inspect", plain + ".mcx")
    out = os.path.join(tmp, "model.copy")
    run("decrypt", plain + ".mcx", "-o", out, "--key-file", key)
    with open(out, "rb") as f:
        if f.read() != payload:
            fail("CLI decrypt did not give back the original bytes")
    bad = run("decrypt", plain + ".mcx", "-o", os.path.join(tmp, "never"), "--key-file", other, ok=False)
    if bad.returncode == 0 or os.path.exists(os.path.join(tmp, "never")):
        fail("CLI decrypt with the wrong key did not fail closed")
    print("CLI keygen/encrypt/inspect/decrypt OK; wrong key refused")


def check_api_roundtrip(tmp: str) -> None:
    """encrypt_file / load in memory; tampering is an AuthenticationError-family failure."""
    import modelcrypt

    src = os.path.join(tmp, "api.bin")
    data = bytes(range(256)) * 5000
    with open(src, "wb") as f:
        f.write(data)
    key = modelcrypt.generate_key()
    enc = src + ".mcx"
    modelcrypt.encrypt_file(src, enc, key, metadata={"smoke": "1"})
    with modelcrypt.load(enc, key) as buf:
        if bytes(buf) != data:
            fail("load() did not give back the original bytes")
    blob = bytearray(open(enc, "rb").read())
    blob[-40] ^= 1
    with open(enc, "wb") as f:
        f.write(blob)
    try:
        modelcrypt.load(enc, key)
    except modelcrypt.ModelCryptError as exc:
        print(f"API round trip OK; tampered file refused ({type(exc).__name__})")
    else:
        fail("a tampered file was loaded")


def check_openssl(expected: str) -> None:
    """The OpenSSL linked into the wheel is the one it was built against (e.g. the pinned 3.5 LTS),
    as the library, the Python API and `modelcrypt config --openssl-version` all report it."""
    import modelcrypt

    reported = modelcrypt.openssl_version()
    if reported.split()[:2] != ["OpenSSL", expected]:
        fail(f"the wheel links {reported!r}, expected OpenSSL {expected}")
    cli = subprocess.run([sys.executable, "-m", "modelcrypt", "config", "--openssl-version"],
                         capture_output=True, text=True, check=False)
    if cli.returncode != 0 or cli.stdout.strip() != reported:
        fail(f"`modelcrypt config --openssl-version` printed {cli.stdout.strip()!r} (exit {cli.returncode}), "
             f"the API {reported!r}")
    print(f"links {reported}")


def main(argv: list[str]) -> int:
    """Run every check; exit 0 when all pass."""
    versions = [a for a in argv if not a.startswith("-")]
    openssl = [a.split("=", 1)[1] for a in argv if a.startswith("--openssl=")]
    unknown = [a for a in argv if a.startswith("-") and a != "--no-compiler" and not a.startswith("--openssl=")]
    if len(versions) > 1 or len(openssl) > 1 or unknown:
        fail("usage: smoke_installed.py [EXPECTED_VERSION] [--no-compiler] [--openssl=EXPECTED_OPENSSL_VERSION]")
    if "--no-compiler" in argv:
        check_compiler_absent()
        print("no compiler on PATH")
    if openssl:
        check_openssl(openssl[0])
    check_versions(versions[0] if versions else None)
    with tempfile.TemporaryDirectory() as tmp:
        check_cli_roundtrip(tmp)
        check_api_roundtrip(tmp)
    print(f"smoke OK on Python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
