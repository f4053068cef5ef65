#!/usr/bin/env bash
# Fuzzing (issue 8): builds the libFuzzer harnesses of cpp/fuzz/ with clang (ASan + UBSan + libFuzzer,
# no CMake) against the core sources of cpp/src, runs each for FUZZ_SECONDS on a copy of its seed
# corpus in tests/fuzz/<harness>/ (the committed corpus is never grown), then runs the atheris harness
# tests/fuzz/atheris_api.py for ATHERIS_SECONDS when atheris can be imported (or installed).
# Exit status: non-zero when a build fails or any harness finds a crash. Details: tests/fuzz/README.md.
#
#   FUZZ_SECONDS=60      seconds per libFuzzer harness
#   ATHERIS_SECONDS=30   seconds for the atheris harness (0: skip it)
#   FUZZ_HARNESSES="fuzz_v1_decrypt fuzz_mindspore"   a subset (default: every cpp/fuzz/fuzz_*.cpp)
#   FUZZ_BUILD_DIR       build/output directory (default: a new directory under ${TMPDIR:-/tmp})
#   PYTHON=python3       interpreter for atheris (must have modelcrypt installed)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
ATHERIS_SECONDS="${ATHERIS_SECONDS:-30}"
PYTHON="${PYTHON:-python3}"

if ! command -v clang++ >/dev/null; then
  echo "== installing clang (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # libFuzzer and the sanitizer runtimes of Debian 12's clang 14 live in libclang-rt-14-dev.
  apt-get install -y -qq clang libclang-rt-14-dev
fi

build="${FUZZ_BUILD_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/modelcrypt-fuzz.XXXXXX")}"
mkdir -p "$build/obj" "$build/bin" "$build/corpus" "$build/artifacts" "$build/logs"
echo "== build directory: $build"

sanitize=(-fsanitize=address,undefined -fno-sanitize-recover=undefined)
cxxflags=(-std=c++17 -O1 -g -fno-omit-frame-pointer -pthread)
# The core without the C ABI (c_api.cpp) or the Python binding.
core=(byte_source crypto credential recipients recipient_text recipients_edit random_access signature signing_text signature_verify errors format legacy chunk_pipeline container container_encrypt decrypt_into file_io file_io_common secure_buffer parallel)

echo "== compiling the core: ${core[*]}"
objs=()
for name in "${core[@]}"; do
  clang++ "${cxxflags[@]}" "${sanitize[@]}" -fsanitize=fuzzer-no-link -c "cpp/src/$name.cpp" -o "$build/obj/$name.o"
  objs+=("$build/obj/$name.o")
done

if [ -n "${FUZZ_HARNESSES:-}" ]; then
  read -r -a harnesses <<<"$FUZZ_HARNESSES"
else
  harnesses=()
  for src in cpp/fuzz/fuzz_*.cpp; do harnesses+=("$(basename "$src" .cpp)"); done
fi

for h in "${harnesses[@]}"; do
  echo "== linking $h"
  clang++ "${cxxflags[@]}" "${sanitize[@]}" -fsanitize=fuzzer "cpp/fuzz/$h.cpp" "${objs[@]}" -lcrypto -o "$build/bin/$h"
done

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

failed=()
summary=()

# run_harness NAME SECONDS ERROR_PATTERN COMMAND...: fuzzes a fresh copy of tests/fuzz/NAME with
# COMMAND (a libFuzzer-style driver), records the execution count, and on failure the first matching
# lines of its log.
run_harness() {
  local name="$1" seconds="$2" pattern="$3"
  shift 3
  local corpus="$build/corpus/$name" log="$build/logs/$name.log" status=0 execs line
  rm -rf "$corpus"
  mkdir -p "$corpus" "$build/artifacts/$name"
  if [ -d "tests/fuzz/$name" ]; then cp -R "tests/fuzz/$name/." "$corpus/"; fi
  echo "== fuzzing $name for ${seconds}s (log: $log)"
  "$@" -max_total_time="$seconds" -timeout=60 -print_final_stats=1 -artifact_prefix="$build/artifacts/$name/" \
    "$corpus" >"$log" 2>&1 || status=$?
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  line="$name: ${execs:-?} executions in ${seconds}s"
  if [ "$status" -ne 0 ]; then
    line="$line, FAILED (exit $status)"
    failed+=("$name")
    grep -E "$pattern" "$log" | head -20 >&2 || true
  fi
  echo "$line"
  summary+=("$line")
}

for h in "${harnesses[@]}"; do
  run_harness "$h" "$FUZZ_SECONDS" \
    'FUZZ BUG|ERROR: (AddressSanitizer|libFuzzer|LeakSanitizer)|runtime error|uncaught exception|==[0-9]+==|Test unit written' \
    "$build/bin/$h" -rss_limit_mb=2048
done

# Python entry points (atheris). atheris ships manylinux wheels for CPython 3.8-3.11 on x86_64.
if [ "$ATHERIS_SECONDS" != "0" ]; then
  if ! "$PYTHON" -c 'import atheris' 2>/dev/null; then
    echo "== installing atheris (pip)"
    "$PYTHON" -m pip install -q atheris || true
  fi
  if "$PYTHON" -c 'import atheris, modelcrypt' 2>/dev/null; then
    # ASAN_OPTIONS off: the interpreter is not built with ASan.
    ASAN_OPTIONS= run_harness atheris_api "$ATHERIS_SECONDS" 'Uncaught Python exception|Error|Traceback|Test unit written' \
      "$PYTHON" tests/fuzz/atheris_api.py
  else
    echo "== atheris_api skipped: atheris (or modelcrypt) cannot be imported by $PYTHON"
    summary+=("atheris_api: skipped (atheris not importable)")
  fi
fi

echo "== summary"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "crashes in: ${failed[*]} (reproducers in $build/artifacts/<harness>/, logs in $build/logs/)" >&2
  exit 1
fi
echo "no crashes ($root)"
