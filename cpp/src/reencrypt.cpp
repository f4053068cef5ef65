// RandomAccessFile::reencrypt_to_file: key rotation (modelcrypt migrate of a v1 file) streaming
// from one authenticated handle into the streaming writer, three batches of memory at a time.

#include <algorithm>
#include <cstring>

#include "container.hpp"
#include "errors.hpp"
#include "random_access.hpp"

namespace modelcrypt_core {
namespace {

// Plaintext of an open encrypted file: each read decrypts (and authenticates) exactly the chunks
// covering it, then copies the plaintext into the writer's slots; the decrypted batch is wiped
// when it goes out of scope.
class DecryptingSource final : public PlaintextSource {
 public:
  DecryptingSource(const RandomAccessFile& file, unsigned threads) : file_(file), threads_(threads) {}
  uint64_t size() const override { return file_.header().plaintext_length; }
  void read(uint64_t offset, IoVec* iov, int iovcnt) override {
    uint64_t total = 0;
    for (int k = 0; k < iovcnt; ++k) total += iov[k].iov_len;
    if (total == 0) return;  // an empty file: one empty chunk, nothing to decrypt
    const Decrypted batch = file_.read_range(offset, total, threads_);
    if (batch.size() != total) throw Error(Status::internal, "re-encryption read a short batch");
    const uint8_t* from = batch.data();
    for (int k = 0; k < iovcnt; ++k) {
      if (iov[k].iov_len) std::memcpy(iov[k].iov_base, from, iov[k].iov_len);
      from += iov[k].iov_len;
    }
  }

 private:
  const RandomAccessFile& file_;
  unsigned threads_;
};

}  // namespace

void RandomAccessFile::reencrypt_to_file(const std::string& dst, ByteView new_key, const EncryptOptions& options) const {
  DecryptingSource source(*this, options.threads);
  encrypt_source_to_file(source, dst, new_key, "AES-GCM", options);
}

}  // namespace modelcrypt_core
