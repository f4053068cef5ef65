// Error type of the modelcrypt core. Every failure inside the core is reported by throwing
// modelcrypt_core::Error carrying one Status; bindings translate it at their boundary.
#pragma once
#include <stdexcept>
#include <string>

namespace modelcrypt_core {

// Same set (and order) as the public C API's mc_status.
enum class Status : int {
  ok = 0,
  key_mismatch,      // the key is not the key this file was encrypted with
  auth_failed,       // authentication failed: the data was modified, truncated or extended
  format,            // not a well-formed modelcrypt file
  unsupported,       // well-formed, but a version or algorithm this build does not support
  io,                // operating-system I/O error (errno and path carried)
  invalid_argument,  // caller error: bad key length, bad mode, bad chunk size, dst == src
  no_memory,
  internal,
  signature,         // signature required and missing, from an untrusted signer, or not matching the file
};

const char* status_name(Status s) noexcept;

class Error : public std::runtime_error {
 public:
  Error(Status status, const std::string& message, int sys_errno = 0, std::string path = {})
      : std::runtime_error(message), status_(status), sys_errno_(sys_errno), path_(std::move(path)) {}
  Status status() const noexcept { return status_; }
  int sys_errno() const noexcept { return sys_errno_; }
  const std::string& path() const noexcept { return path_; }

 private:
  Status status_;
  int sys_errno_;
  std::string path_;
};

// Throws Status::io for the current errno, naming the operation and the path.
[[noreturn]] void throw_io_error(const std::string& what, const std::string& path);
[[noreturn]] void throw_io_error(const std::string& what, const std::string& path, int err);

}  // namespace modelcrypt_core
