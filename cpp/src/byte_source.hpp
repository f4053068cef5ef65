// Random-access bytes that an encrypted file is read from: a file (InputFile), or a caller's read
// callback (the C API's mc_reader, Python file objects). The readers of container.cpp take any
// ByteSource; each byte they use is read from it once, into memory the library owns.
#pragma once
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace modelcrypt_core {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // The source's length in bytes, fixed when it was opened.
  virtual uint64_t size() const noexcept = 0;
  // What error messages call the source (a path, "the reader callback", ...).
  virtual const std::string& path() const noexcept = 0;
  // Reads up to n bytes at offset; returns the count (short only at the end). Failure: Error(io).
  virtual size_t read_at(void* buf, size_t n, uint64_t offset) const = 0;
  // Reads exactly the bytes described by iov (modified) at offset; a short read is Error(io). The
  // default reads each entry with read_at.
  virtual void readv_exact_at(struct iovec* iov, int iovcnt, uint64_t offset) const;
  void read_exact_at(void* buf, size_t n, uint64_t offset) const;
};

}  // namespace modelcrypt_core
