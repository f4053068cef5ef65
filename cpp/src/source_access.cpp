#include "source_access.hpp"

#include <utility>

#include "errors.hpp"

namespace modelcrypt_core {

namespace {
const ByteSource& checked(const std::shared_ptr<const ByteSource>& source, const Credential& key, const std::string& mode) {
  if (!source) throw Error(Status::invalid_argument, "no source");
  check_mode(mode);
  check_credential(key);
  return *source;
}
}  // namespace

SourceFile::SourceFile(std::shared_ptr<const ByteSource> source, const Credential& key, const std::string& mode)
    : source_(std::move(source)), authenticated_(detail::authenticate_source(checked(source_, key, mode), key)) {}

Decrypted SourceFile::read_range(uint64_t offset, uint64_t length, unsigned threads) const {
  const format::Header& h = header();
  detail::check_range(h, offset, length);
  Decrypted out;
  out.metadata = h.metadata;
  if (length == 0) {
    out.plaintext = SecureBuffer::allocate(0);
    return out;
  }
  const uint64_t first = offset / h.chunk_size, last = (offset + length - 1) / h.chunk_size;
  out.plaintext = detail::load_chunks(*source_, h, authenticated_.keys, first, last - first + 1, threads,
                                      authenticated_.trailer.get());
  out.view_offset = static_cast<size_t>(offset - h.chunk_plaintext_offset(first));
  out.view_length = static_cast<size_t>(length);
  return out;
}

void SourceFile::read_range_into(uint64_t offset, uint64_t length, uint8_t* out, unsigned threads) const {
  detail::check_range(header(), offset, length);
  if (length == 0) return;
  detail::load_chunks_into(*source_, header(), authenticated_.keys, offset, length, out, threads,
                           authenticated_.trailer.get());
}

}  // namespace modelcrypt_core
