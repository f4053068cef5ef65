// Random-access bytes that an encrypted file is read from: a file (InputFile), or a caller's read
// callback (the C API's mc_reader, Python file objects). The readers of container.cpp take any
// ByteSource; each byte they use is read from it once, into memory the library owns.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#ifndef _WIN32
#include <sys/uio.h>
#endif

namespace modelcrypt_core {

// One piece of a scattered read or write: POSIX's struct iovec itself (so preadv/writev take arrays
// of it unchanged), and a struct of the same shape where there is none (Windows).
#ifdef _WIN32
struct IoVec {
  void* iov_base;
  size_t iov_len;
};
#else
using IoVec = struct ::iovec;
#endif

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
  virtual void readv_exact_at(IoVec* iov, int iovcnt, uint64_t offset) const;
  void read_exact_at(void* buf, size_t n, uint64_t offset) const;
};

}  // namespace modelcrypt_core
