#include "errors.hpp"

#include <cerrno>
#include <cstring>

namespace modelcrypt_core {

const char* status_name(Status s) noexcept {
  switch (s) {
    case Status::ok: return "OK";
    case Status::key_mismatch: return "KEY_MISMATCH";
    case Status::auth_failed: return "AUTH_FAILED";
    case Status::format: return "FORMAT";
    case Status::unsupported: return "UNSUPPORTED";
    case Status::io: return "IO";
    case Status::invalid_argument: return "INVALID_ARGUMENT";
    case Status::no_memory: return "NO_MEMORY";
    case Status::internal: return "INTERNAL";
    case Status::signature: return "SIGNATURE";
  }
  return "UNKNOWN";
}

void throw_io_error(const std::string& what, const std::string& path, int err) {
  throw Error(Status::io, what + " '" + path + "': " + std::strerror(err), err, path);
}

void throw_io_error(const std::string& what, const std::string& path) {
  throw_io_error(what, path, errno);
}

}  // namespace modelcrypt_core
