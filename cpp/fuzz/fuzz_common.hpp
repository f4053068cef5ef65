// Shared helpers of the libFuzzer harnesses (built by .ci/fuzz.sh; see tests/fuzz/README.md).
// Rule of every harness: a modelcrypt_core::Error is an expected outcome; any other exception, a crash, a
// sanitizer report or a silently wrong plaintext is a bug, and the harness abort()s on it.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "../src/errors.hpp"

namespace modelcrypt_core::fuzz {

[[noreturn]] inline void fail(const std::string& why) {
  std::fprintf(stderr, "FUZZ BUG: %s\n", why.c_str());
  std::fflush(stderr);
  std::abort();
}

// A deterministic key: byte i = start + i (the interop fixtures' keys have this shape).
inline std::vector<uint8_t> counting_key(uint8_t start, size_t n) {
  std::vector<uint8_t> k(n);
  for (size_t i = 0; i < n; ++i) k[i] = static_cast<uint8_t>(start + i);
  return k;
}

inline bool same(const uint8_t* a, size_t an, const std::vector<uint8_t>& b) {
  return an == b.size() && (an == 0 || std::memcmp(a, b.data(), an) == 0);
}

// Errors that reading untrusted bytes may legitimately raise. Status::internal, io and no_memory
// point at a bug in the parser (an unchecked length reaching OpenSSL or an allocation).
inline void check_reader_error(const Error& e, const char* where) {
  switch (e.status()) {
    case Status::key_mismatch:
    case Status::auth_failed:
    case Status::format:
    case Status::unsupported:
    case Status::invalid_argument:
    case Status::signature:
      return;
    default:
      fail(std::string(where) + ": unexpected status " + status_name(e.status()) + ": " + e.what());
  }
}

// Runs `body`; a modelcrypt_core::Error is checked with check_reader_error and returned as its status,
// anything else aborts. Returns Status::ok when body returned normally.
template <class F>
Status guarded(const char* where, F&& body) {
  try {
    body();
    return Status::ok;
  } catch (const Error& e) {
    check_reader_error(e, where);
    return e.status();
  } catch (const std::exception& e) {
    fail(std::string(where) + ": non-modelcrypt exception: " + e.what());
  } catch (...) {
    fail(std::string(where) + ": non-std exception");
  }
}

}  // namespace modelcrypt_core::fuzz
