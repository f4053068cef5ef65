// Random access to an encrypted file read through a ByteSource (Python file objects and URLs, the
// caller's read callback): its header read and authenticated once, when it is opened; every range
// then reads and decrypts only the chunks covering it, through the same source with the same keys.
// (RandomAccessFile is the same for a path, with checks that the file did not change under it.)
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "byte_source.hpp"
#include "container_detail.hpp"

namespace modelcrypt_core {

class SourceFile {
 public:
  // Reader steps 1-8 of FORMAT.md, once: wrong key Error(key_mismatch), modified header
  // Error(auth_failed), not a modelcrypt file Error(format); `mode` must be "AES-GCM".
  SourceFile(std::shared_ptr<const ByteSource> source, const Credential& key, const std::string& mode);

  const std::string& path() const noexcept { return source_->path(); }
  const format::Header& header() const noexcept { return authenticated_.parsed.header; }
  uint64_t file_length() const noexcept { return source_->size(); }

  // As RandomAccessFile::read_range / read_range_into. Safe to call from several threads at once
  // when the source allows concurrent reads.
  Decrypted read_range(uint64_t offset, uint64_t length, unsigned threads = 0) const;
  void read_range_into(uint64_t offset, uint64_t length, uint8_t* out, unsigned threads = 0) const;

 private:
  std::shared_ptr<const ByteSource> source_;
  detail::AuthenticatedHeader authenticated_;
};

}  // namespace modelcrypt_core
