// Errors that name the file they are about. The core's messages say what is wrong with a file
// ("authentication failed in chunk 3 of 5: ...") but mostly not which file; the binding knows the path
// the caller passed, and adds it once here: "model.onnx.mcx: authentication failed in chunk 3 ...".
// Only the path is added (never the key or any plaintext); the status, and so the exception type, is
// unchanged. OS errors that carry their path (OSError.filename) already name it; argument errors
// (ValueError: a bad mode, dst == src, ...) are about the call and are left as they are.
#pragma once
#include <string>
#include <utility>

#include "errors.hpp"

namespace modelcrypt_core::binding {

inline Error naming_file(const Error& e, const std::string& path) {
  if (path.empty() || e.status() == Status::invalid_argument || (e.status() == Status::io && !e.path().empty())) return e;
  const std::string message = e.what();
  if (message.rfind(path + ": ", 0) == 0 || message.find("'" + path + "'") != std::string::npos) return e;
  return Error(e.status(), path + ": " + message, e.sys_errno(), e.path());
}

// Runs `operation` (a core call about the file at `path`), rethrowing its Error with the path named.
template <typename Operation>
decltype(auto) about_file(const std::string& path, Operation&& operation) {
  try {
    return std::forward<Operation>(operation)();
  } catch (const Error& e) {
    throw naming_file(e, path);
  }
}

}  // namespace modelcrypt_core::binding
