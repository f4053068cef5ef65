#!/usr/bin/env bash
# Sanitizer run: builds the core, libmodelcrypt.so and the C/C++ tests (tests/cpp, tests/c) with
# gcc -fsanitize=address,undefined and runs them under CTest (leak checking on where ptrace allows
# it); then builds the Python extension with the same flags into a throwaway venv and runs a
# round-trip smoke test under ASan/UBSan. OpenSSL comes from the system's static libcrypto.a and is
# not instrumented. Everything goes to a temporary directory; the source tree is not written to.
# usage: .ci/sanitize.sh [--no-python]      exits non-zero on any failure
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"

python_smoke=1
for arg in "$@"; do
  case "$arg" in
    --no-python) python_smoke=0 ;;
    *) echo "usage: $0 [--no-python]" >&2; exit 2 ;;
  esac
done

export CC=gcc CXX=g++
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/modelcrypt-sanitize.XXXXXX")"
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
start=$SECONDS
jobs="$(nproc 2>/dev/null || echo 2)"

export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# LeakSanitizer stops the process with ptrace; some containers forbid that. Probe once.
printf '#include <stdlib.h>\nint main(void){ void* volatile p = malloc(7); p = 0; return 0; }\n' >"$WORK/leak.c"
gcc -fsanitize=address -g "$WORK/leak.c" -o "$WORK/leak"
ASAN_OPTIONS=detect_leaks=1 "$WORK/leak" >"$WORK/leak.log" 2>&1 || true
if grep -q "detected memory leaks" "$WORK/leak.log"; then
  leaks=1
else
  leaks=0
  echo "note: LeakSanitizer does not work here (ptrace not permitted?); running without leak checks"
fi
export ASAN_OPTIONS="detect_leaks=$leaks:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1"

echo "== native: configure and build with $SAN"
cmake -S "$ROOT" -B "$WORK/native" -DMODELCRYPT_BUILD_TESTS=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_FLAGS="$SAN" -DCMAKE_CXX_FLAGS="$SAN" \
  -DCMAKE_EXE_LINKER_FLAGS="$SAN" -DCMAKE_SHARED_LINKER_FLAGS="$SAN" -DCMAKE_MODULE_LINKER_FLAGS="$SAN" \
  >"$WORK/configure.log" 2>&1 || { cat "$WORK/configure.log"; exit 1; }
cmake --build "$WORK/native" -j"$jobs" --target modelcrypt_tests >"$WORK/build.log" 2>&1 || { tail -n 100 "$WORK/build.log"; exit 1; }

echo "== native: tests (ASAN_OPTIONS=$ASAN_OPTIONS)"
(cd "$WORK/native" && ctest --output-on-failure --timeout 600)
echo "native tests passed ($((SECONDS - start)) s)"

if [ "$python_smoke" = 0 ]; then
  echo "== done in $((SECONDS - start)) s (Python smoke test skipped)"
  exit 0
fi

echo "== python: build the extension with $SAN into a separate venv"
python3 -m venv "$WORK/venv"
PY="$WORK/venv/bin/python"
# scikit-build-core: sanitizer flags through cmake.define, a build directory outside the tree.
"$PY" -m pip install -q "$ROOT" \
  --config-settings=build-dir="$WORK/skbuild" \
  --config-settings=cmake.build-type=RelWithDebInfo \
  --config-settings=cmake.define.CMAKE_C_FLAGS="$SAN" \
  --config-settings=cmake.define.CMAKE_CXX_FLAGS="$SAN" \
  --config-settings=cmake.define.CMAKE_SHARED_LINKER_FLAGS="$SAN" \
  --config-settings=cmake.define.CMAKE_MODULE_LINKER_FLAGS="$SAN" \
  >"$WORK/pip.log" 2>&1 || { tail -n 100 "$WORK/pip.log"; exit 1; }

core="$(find "$WORK/venv" -name '_core*.so' | head -n 1)"
# (captured first: grep -q closing the pipe early would fail the pipeline under pipefail)
needed="$(readelf -d "$core" 2>/dev/null || true)"
imports="$(nm -D --undefined-only "$core" 2>/dev/null || true)"
if [ -z "$core" ] || [[ "$needed" != *libasan* ]] || [[ "$imports" != *__ubsan_handle* ]] || [[ "$imports" != *__asan_report* ]]; then
  echo "the installed extension ($core) is not built with the sanitizers" >&2
  exit 1
fi

cat >"$WORK/smoke.py" <<'PYEOF'
import concurrent.futures
import os
import sys
import tempfile

import modelcrypt
from modelcrypt import _core
from modelcrypt.exceptions import AuthenticationError, KeyMismatchError

venv = sys.argv[1]
assert os.path.realpath(_core.__file__).startswith(os.path.realpath(venv)), _core.__file__
maps = open("/proc/self/maps").read()
assert "libasan" in maps and "libubsan" in maps, "the sanitizer runtimes are not loaded"

key, other = modelcrypt.generate_key(), modelcrypt.generate_key()
data = os.urandom(3 * 1024 * 1024 + 12345)

blob = modelcrypt.encrypt_bytes(data, key, chunk_size=65536, metadata={"name": "smoke"})
with modelcrypt.decrypt_bytes(blob, key) as buf:
    assert bytes(buf) == data
bad = bytearray(blob)
bad[-1] ^= 1
try:
    modelcrypt.decrypt_bytes(bytes(bad), key)
    raise AssertionError("tampered bytes decrypted")
except AuthenticationError:
    pass
try:
    modelcrypt.decrypt_bytes(blob, other)
    raise AssertionError("wrong key accepted")
except KeyMismatchError:
    pass

with tempfile.TemporaryDirectory() as d:
    src, enc, dec = (os.path.join(d, n) for n in ("model.bin", "model.bin.mcx", "model.out"))
    with open(src, "wb") as f:
        f.write(data)
    modelcrypt.encrypt_file(src, enc, key, chunk_size=1 << 20, metadata={"k": "v"})
    with modelcrypt.load(enc, key) as buf:
        assert bytes(buf) == data
    buf = modelcrypt.load(enc, key)
    buf.close()
    try:
        len(buf)
        raise AssertionError("closed buffer usable")
    except ValueError:
        pass
    with modelcrypt.load_range(enc, key, offset=1000, length=2_000_000) as part:
        assert bytes(part) == data[1000:2_001_000]
    modelcrypt.decrypt_file(enc, dec, key)
    with open(dec, "rb") as f:
        assert f.read() == data
    modelcrypt.verify(enc, key)

    def load_once(_):
        with modelcrypt.load(enc, key, threads=2) as b:
            return bytes(b) == data
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        assert all(pool.map(load_once, range(8)))

    with open(enc, "r+b") as f:
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 1]))
    for attempt in (lambda: modelcrypt.load(enc, key), lambda: modelcrypt.verify(enc, key)):
        try:
            attempt()
            raise AssertionError("tampered file accepted")
        except AuthenticationError:
            pass
print("python smoke test passed")
PYEOF

echo "== python: smoke test under ASan/UBSan"
LIBASAN="$(gcc -print-file-name=libasan.so)"
LIBUBSAN="$(gcc -print-file-name=libubsan.so)"
(cd "$WORK" && LD_PRELOAD="$LIBASAN $LIBUBSAN" ASAN_OPTIONS="detect_leaks=0" "$PY" smoke.py "$WORK/venv")
echo "== done in $((SECONDS - start)) s"
