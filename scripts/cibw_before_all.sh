#!/usr/bin/env bash
# cibuildwheel's before-all: install what building OpenSSL needs on the build image, then build the
# pinned static OpenSSL (scripts/build_openssl.sh) into PREFIX. The wheel builds find it through
# OPENSSL_ROOT_DIR (set in [tool.cibuildwheel.*] environment in pyproject.toml).
#
# usage: scripts/cibw_before_all.sh PREFIX
# Runs inside the manylinux_2_28 (AlmaLinux 8) / musllinux_1_2 (Alpine) containers, and on the macOS
# and Windows runners. Verified by the release pipeline only (no containers or foreign OSes here).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PREFIX="${1:?usage: cibw_before_all.sh PREFIX}"

if command -v dnf >/dev/null || command -v yum >/dev/null; then
  # manylinux_2_28: OpenSSL 3's Configure needs these perl modules (not in the image's minimal perl)
  "$(command -v dnf || command -v yum)" install -y perl-IPC-Cmd perl-Time-Piece perl-File-Compare perl-File-Copy
elif command -v apk >/dev/null; then
  apk add --no-cache perl make linux-headers   # musllinux_1_2
fi

case "$(uname -s)" in
  MINGW*|MSYS*|CYGWIN*) export OPENSSL_TARGET="${OPENSSL_TARGET:-VC-WIN64A}" ;;
esac
bash "$here/build_openssl.sh" "$PREFIX"
