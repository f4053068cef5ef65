#!/usr/bin/env bash
# Windows check on a Linux machine: cross-compile modelcrypt.dll and the C API tests with MinGW-w64
# (static OpenSSL for mingw64 built by scripts/build_openssl.sh) and run the tests under Wine.
# What this verifies and what it leaves to the release pipeline (MSVC, the Python extension):
# docs/RELEASING.md, "Windows cross check".
#
# usage: scripts/check_windows_cross.sh [BUILD_DIR]      (default: build/windows-cross)
# needs: apt-get install -y g++-mingw-w64-x86-64-posix wine64 cmake make perl
# env:
#   MC_WIN_OPENSSL   prefix of the mingw64 OpenSSL (built there when missing;
#                    default: ~/.cache/modelcrypt/openssl-mingw64-<version>)
#   OPENSSL_TARBALL, OPENSSL_VERSION, OPENSSL_SHA256: passed to scripts/build_openssl.sh (offline:
#                    OPENSSL_TARBALL=<local tarball>; another version needs its checksum)
#   WINEPREFIX       Wine prefix (default: a fresh one under BUILD_DIR)
# Exit status: 0 when the DLL's exports are right and every test passed under Wine.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build/windows-cross}"
mkdir -p "$build"
build="$(cd "$build" && pwd)"
triple=x86_64-w64-mingw32

for tool in "$triple-gcc-posix" "$triple-g++-posix" "$triple-objdump" cmake make perl; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y g++-mingw-w64-x86-64-posix cmake make perl" >&2; exit 1; }
done
wine="$(command -v wine64 || command -v wine || true)"
[ -n "$wine" ] || { echo "missing wine: apt-get install -y wine64" >&2; exit 1; }

# 1. OpenSSL for mingw64, static (Configure target mingw64, cross prefix from CROSS_COMPILE).
ssl_version="${OPENSSL_VERSION:-$(sed -n 's/^PINNED_VERSION="\(.*\)"$/\1/p' "$root/scripts/build_openssl.sh")}"
ssl="${MC_WIN_OPENSSL:-$HOME/.cache/modelcrypt/openssl-mingw64-$ssl_version}"
OPENSSL_TARGET=mingw64 CROSS_COMPILE="$triple-" CC=gcc "$root/scripts/build_openssl.sh" "$ssl"

# 2. The DLL and the tests, warnings as errors.
cmake -S "$root" -B "$build" -DCMAKE_TOOLCHAIN_FILE="$root/scripts/cross/mingw-w64-x86_64.cmake" \
  -DOPENSSL_ROOT_DIR="$ssl" -DCMAKE_BUILD_TYPE=Release -DMODELCRYPT_BUILD_TESTS=ON \
  -DMODELCRYPT_WARNINGS_AS_ERRORS=ON
make -C "$build" -j"$(nproc 2>/dev/null || echo 2)" modelcrypt modelcrypt_tests

# 3. The DLL exports the C API (every MC_API function of modelcrypt.h) and the C++ core, no OpenSSL.
dll="$build/libmodelcrypt.dll"
exports="$("$triple-objdump" -p "$dll" | awk '/^\[Ordinal\/Name Pointer\] Table/ {t=1; next} t && NF==0 {t=0} t {print $NF}')"
want="$(sed -n 's/^MC_API [^(]*[ *]\(mc_[a-z0-9_]*\)(.*/\1/p' "$root/cpp/include/modelcrypt/modelcrypt.h" | sort -u)"
got="$(grep '^mc_' <<<"$exports" | sort -u || true)"
if [ "$want" != "$got" ]; then
  echo "FAIL: the DLL's mc_* exports differ from modelcrypt.h's MC_API functions:" >&2
  diff <(echo "$want") <(echo "$got") >&2 || true
  exit 1
fi
if grep -Eq '^(EVP_|OPENSSL_|CRYPTO_|OSSL_|BN_)' <<<"$exports"; then
  echo "FAIL: the DLL exports OpenSSL symbols:" >&2; grep -E '^(EVP_|OPENSSL_|CRYPTO_|OSSL_|BN_)' <<<"$exports" | head >&2; exit 1
fi
core="$(grep -c '^_ZN\(K\)\?15modelcrypt_core' <<<"$exports" || true)"
[ "$core" -gt 0 ] || { echo "FAIL: the DLL exports none of the C++ core (namespace modelcrypt_core)" >&2; exit 1; }
echo "exports OK: $(wc -l <<<"$got") mc_* functions (all of modelcrypt.h), $core modelcrypt_core symbols, no OpenSSL"

# 4. The tests under Wine, with the MinGW runtime DLLs (libstdc++, libgcc_s, libwinpthread) on its path.
gcc_dir="$(dirname "$("$triple-gcc-posix" -print-libgcc-file-name)")"
pthread_dir="$(dirname "$("$triple-gcc-posix" -print-file-name=libwinpthread-1.dll)")"
export WINEPATH="$gcc_dir;$pthread_dir"
export WINEPREFIX="${WINEPREFIX:-$build/wineprefix}"
export WINEDEBUG="${WINEDEBUG:--all}" WINEDLLOVERRIDES="${WINEDLLOVERRIDES:-mscoree,mshtml=}"
"$wine" wineboot --init >/dev/null 2>&1 || true
# -V: each test prints "N passed, M failed" and any check it skips on Windows (with the reason).
(cd "$build" && ctest -V --output-on-failure) | grep -E "Test command|passed|failed|skipped|FAILED|Test #"
# 5. The installed layout (modelcrypt/lib: DLL, import library, CMake package, pkg-config) as a user
#    meets it: a C program built with find_package(modelcrypt) against the install, run under Wine.
inst="$build/install"
rm -rf "$inst" "$build/consumer"
cmake --install "$build" --prefix "$inst" >/dev/null
mkdir -p "$build/consumer/src"
cat >"$build/consumer/src/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.18)
project(consumer C)
find_package(modelcrypt CONFIG REQUIRED)
add_executable(consumer consumer.c)
target_link_libraries(consumer PRIVATE modelcrypt::modelcrypt)
CMAKE
cat >"$build/consumer/src/consumer.c" <<'C'
#include <modelcrypt/modelcrypt.h>
#include <stdio.h>
#include <string.h>
int main(void) {
  static const uint8_t key[32] = {1};
  const char text[] = "weights";
  mc_buffer *enc = NULL, *dec = NULL;
  int ok = mc_encrypt_memory(text, sizeof text, key, 32, NULL, &enc) == MC_OK &&
           mc_decrypt_memory(mc_buffer_data(enc), mc_buffer_size(enc), key, 32, NULL, &dec) == MC_OK &&
           mc_buffer_size(dec) == sizeof text && memcmp(mc_buffer_data(dec), text, sizeof text) == 0;
  printf("consumer: modelcrypt %s, %s: round trip %s\n", mc_version(), mc_openssl_version(), ok ? "OK" : "FAILED");
  mc_buffer_free(enc);
  mc_buffer_free(dec);
  return ok ? 0 : 1;
}
C
cmake -S "$build/consumer/src" -B "$build/consumer" -DCMAKE_TOOLCHAIN_FILE="$root/scripts/cross/mingw-w64-x86_64.cmake" \
  -Dmodelcrypt_DIR="$inst/modelcrypt/lib/cmake/modelcrypt" -DCMAKE_BUILD_TYPE=Release >/dev/null
make -C "$build/consumer" >/dev/null
WINEPATH="$WINEPATH;$inst/modelcrypt/lib" "$wine" "$build/consumer/consumer.exe"

echo "Windows cross check passed: $dll"
