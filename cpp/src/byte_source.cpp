#include "byte_source.hpp"

#include "errors.hpp"

namespace modelcrypt_core {

void ByteSource::readv_exact_at(IoVec* iov, int iovcnt, uint64_t offset) const {
  for (int i = 0; i < iovcnt; ++i) {
    const size_t got = read_at(iov[i].iov_base, iov[i].iov_len, offset);
    if (got != iov[i].iov_len) {
      throw Error(Status::io, path() + ": short read: " + std::to_string(got) + " of " + std::to_string(iov[i].iov_len) +
                                  " bytes at offset " + std::to_string(offset) + " (the source is shorter than its size, " +
                                  std::to_string(size()) + " bytes, or changed while it was read)", 0, path());
    }
    offset += got;
  }
}

void ByteSource::read_exact_at(void* buf, size_t n, uint64_t offset) const {
  IoVec iov = {buf, n};
  readv_exact_at(&iov, 1, offset);
}

}  // namespace modelcrypt_core
