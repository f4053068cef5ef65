#!/usr/bin/env bash
# Build a pinned OpenSSL 3.5 LTS from source as static, position-independent libraries (libcrypto.a,
# libssl.a) into a prefix, for the release wheels (cibuildwheel's before-all, as pyca/cryptography
# does). The wheel's CMake build is then pointed at it with OPENSSL_ROOT_DIR=<prefix>.
#
# usage: scripts/build_openssl.sh PREFIX
# env:
#   OPENSSL_TARBALL   use this local tarball instead of downloading it (its SHA-256 is still checked)
#   OPENSSL_URL       where to download from (default: the OpenSSL GitHub release asset, then Debian's
#                     archive, which carries the same upstream tarball as openssl_<version>.orig.tar.gz)
#   OPENSSL_VERSION   another release than the pin: one of known_sha256 below, or give OPENSSL_SHA256 too
#   OPENSSL_TARGET    an explicit ./Configure target (e.g. darwin64-arm64-cc, VC-WIN64A); default: ./config
#   MACOSX_DEPLOYMENT_TARGET, CC, CFLAGS: honoured as usual
# Fails closed: no download tool, a checksum mismatch or an unknown checksum stops the build.
#
# Where the tarball comes from does not matter for trust: the SHA-256 below is checked whatever the
# source. This machine reaches no host but the package registries: the GitHub asset is unreachable
# here, Debian's archive is reachable (it serves 3.5.7 but not yet 3.5.9: .ci/run builds 3.5.7 here;
# docs/RELEASING.md).
set -euo pipefail

# The pin, for the release wheels. Update version and checksum together (docs/RELEASING.md, "Updating
# OpenSSL"). Each SHA-256 is the value OpenSSL publishes beside its tarball (openssl-X.tar.gz.sha256),
# and each equals the one in Debian's signed source index for openssl_X.orig.tar.gz (trixie, read
# 2026-12-04). 3.5.7 is the newest 3.5 LTS release this machine can download (from Debian's archive):
# .ci/run builds and tests the wheels with it, with exactly this script.
PINNED_VERSION="3.5.9"
known_sha256() {  # a function, not an associative array: macOS runs this with its bash 3.2
  case "$1" in
    3.5.9) echo 603f5602e2eef00d77fbd429d34dcd5822bb301757a1bc9cdb24c670f1eb859a ;;
    3.5.7) echo a8c0d28a529ca480f9f36cf5792e2cd21984552a3c8e4aa11a24aa31aeac98e8 ;;
  esac
}
OPENSSL_VERSION="${OPENSSL_VERSION:-$PINNED_VERSION}"
known="$(known_sha256 "$OPENSSL_VERSION")"
if [ -n "$known" ]; then
  if [ -n "${OPENSSL_SHA256:-}" ] && [ "$OPENSSL_SHA256" != "$known" ]; then
    echo "OPENSSL_SHA256 differs from the known checksum of OpenSSL $OPENSSL_VERSION: refusing" >&2
    exit 1
  fi
  OPENSSL_SHA256="$known"
fi

PREFIX="${1:?usage: build_openssl.sh PREFIX}"
mkdir -p "$PREFIX"
PREFIX="$(cd "$PREFIX" && pwd)"
if [ -z "${OPENSSL_SHA256:-}" ]; then
  echo "OPENSSL_SHA256 is not set for OpenSSL $OPENSSL_VERSION: refusing to build an unverified OpenSSL" >&2
  exit 1
fi
if [ -f "$PREFIX/.modelcrypt-openssl-$OPENSSL_VERSION" ]; then
  echo "OpenSSL $OPENSSL_VERSION already built in $PREFIX"
  exit 0
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/openssl-build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
tarball="$WORK/openssl-$OPENSSL_VERSION.tar.gz"
if [ -n "${OPENSSL_TARBALL:-}" ]; then
  cp "$OPENSSL_TARBALL" "$tarball"
else
  urls=()
  if [ -n "${OPENSSL_URL:-}" ]; then
    urls=("$OPENSSL_URL")
  else
    urls=("https://github.com/openssl/openssl/releases/download/openssl-$OPENSSL_VERSION/openssl-$OPENSSL_VERSION.tar.gz"
          "http://deb.debian.org/debian/pool/main/o/openssl/openssl_$OPENSSL_VERSION.orig.tar.gz")
  fi
  got_it=0
  for url in "${urls[@]}"; do
    echo "downloading $url"
    if command -v curl >/dev/null; then
      curl --fail --location --silent --show-error --retry 3 --connect-timeout 20 -o "$tarball" "$url" && got_it=1
    elif command -v wget >/dev/null; then
      wget -q -T 20 -O "$tarball" "$url" && got_it=1
    else
      echo "neither curl nor wget is installed" >&2; exit 1
    fi
    [ "$got_it" = 1 ] && break
  done
  if [ "$got_it" != 1 ]; then
    echo "could not download OpenSSL $OPENSSL_VERSION from: ${urls[*]}" >&2; exit 1
  fi
fi

sha256_of() {
  if command -v sha256sum >/dev/null; then sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null; then shasum -a 256 "$1" | cut -d' ' -f1
  else openssl dgst -sha256 -r "$1" | cut -d' ' -f1
  fi
}
got="$(sha256_of "$tarball" | tr 'A-F' 'a-f')"
if [ "$got" != "$OPENSSL_SHA256" ]; then
  echo "SHA-256 mismatch for openssl-$OPENSSL_VERSION.tar.gz: got $got, expected $OPENSSL_SHA256" >&2
  exit 1
fi
echo "openssl-$OPENSSL_VERSION.tar.gz: SHA-256 OK ($got)"

tar -xzf "$tarball" -C "$WORK"
cd "$WORK/openssl-$OPENSSL_VERSION"
# Static, PIC, no loadable modules or engines, no tests/docs/apps: only the libraries modelcrypt links.
flags=(no-shared no-module no-dynamic-engine no-tests no-docs no-apps no-ssl3 no-comp no-zlib
       no-atexit -fPIC "--prefix=$PREFIX" "--openssldir=$PREFIX/ssl" "--libdir=lib")
case "$(uname -s)" in
  MINGW*|MSYS*|CYGWIN*)
    # Windows (MSVC): perl Configure VC-WIN64A, nmake; run from a Developer prompt (cibuildwheel on
    # windows runners sets one up via the msvc action in .github/workflows/wheels.yml).
    win_flags=()
    for f in "${flags[@]}"; do [ "$f" = -fPIC ] || win_flags+=("$f"); done
    # OpenSSL's AES-NI / VAES / PCLMULQDQ code (AES-GCM at several GB/s per core) needs NASM on Windows
    # (.github/workflows/wheels.yml installs it). Without NASM only the portable C code builds, many
    # times slower: allowed for a local build, with a warning, never for a release (MODELCRYPT_RELEASE=1).
    if ! command -v nasm >/dev/null; then
      if [ "${MODELCRYPT_RELEASE:-0}" = 1 ]; then
        echo "NASM is not on PATH: a release build must not fall back to OpenSSL's no-asm code" >&2; exit 1
      fi
      echo "warning: NASM is not on PATH: building OpenSSL with no-asm (slow AES-GCM)" >&2
      win_flags+=(no-asm)
    fi
    perl Configure "${OPENSSL_TARGET:-VC-WIN64A}" "${win_flags[@]}"
    nmake
    nmake install_sw
    ;;
  *)
    if [ -n "${OPENSSL_TARGET:-}" ]; then
      ./Configure "$OPENSSL_TARGET" "${flags[@]}"
    else
      ./config "${flags[@]}"
    fi
    make -j"$( (nproc || sysctl -n hw.ncpu) 2>/dev/null || echo 2)"
    make install_sw
    ;;
esac
touch "$PREFIX/.modelcrypt-openssl-$OPENSSL_VERSION"
echo "OpenSSL $OPENSSL_VERSION (static) installed in $PREFIX"
