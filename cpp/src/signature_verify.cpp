// Keyless verification of a format v3 file's publisher signature (FORMAT.md "Keyless verification"):
// no key is needed, nothing is decrypted. The header is read once and parsed, the file length must
// be the one the header gives, the trailer is read once and its signature verified against the
// trusted keys, then every stored chunk is hashed (batch by batch, the chunks of a batch in
// parallel) and compared with its signed hash. Memory: one batch plus the hash list.
#include <algorithm>
#include <atomic>
#include <limits>
#include <memory>

#include "container.hpp"
#include "container_detail.hpp"
#include "errors.hpp"
#include "parallel.hpp"

namespace modelcrypt_core {
namespace {

constexpr uint64_t kBatchBytes = 16u << 20;
constexpr uint64_t kNone = std::numeric_limits<uint64_t>::max();

}  // namespace

signature::PublicKey verify_signature_file(const std::string& path, const std::vector<signature::PublicKey>& trusted,
                                           unsigned threads, const Progress& progress) {
  if (trusted.empty()) throw Error(Status::invalid_argument, "verifying a signature needs at least one trusted signer");
  InputFile in(path);
  const signature::PublicKey signer = verify_signature_source(in, trusted, threads, progress);
  if (!(in.current_size() == in.size())) {
    throw Error(Status::signature, "file '" + path + "' changed size while it was being verified", 0, path);
  }
  return signer;
}

signature::PublicKey verify_signature_source(const ByteSource& in, const std::vector<signature::PublicKey>& trusted,
                                             unsigned threads, const Progress& progress) {
  if (trusted.empty()) throw Error(Status::invalid_argument, "verifying a signature needs at least one trusted signer");
  const detail::ParsedFileHeader parsed = detail::read_file_header(in);  // steps 1-6, no key
  const format::Header& h = parsed.header;
  const auto trailer = detail::read_verified_trailer(in, parsed, trusted);  // steps S1-S4

  const uint64_t stride = uint64_t{h.chunk_size} + format::kTagSize;
  const uint64_t n = h.chunk_count();
  const uint64_t per_batch = std::min<uint64_t>(std::max<uint64_t>(1, kBatchBytes / stride), n);
  std::vector<uint8_t> buf(static_cast<size_t>(per_batch * stride));  // ciphertext only: nothing secret
  std::atomic<uint64_t> changed{kNone};
  for (uint64_t first = 0; first < n; first += per_batch) {
    const uint64_t count = std::min(per_batch, n - first);
    const uint64_t last = first + count - 1;
    in.read_exact_at(buf.data(), static_cast<size_t>((count - 1) * stride + h.chunk_plaintext_size(last) + format::kTagSize),
                     h.chunk_file_offset(first));
    parallel_for(count, resolve_threads(threads, count), [&]() {
      auto sha = std::make_shared<crypto::Sha256>();
      return [&, sha](uint64_t j) {
        const uint8_t* chunk = buf.data() + j * stride;
        const size_t len = h.chunk_plaintext_size(first + j);
        signature::ChunkHash hash;
        signature::hash_chunk(*sha, chunk, len, chunk + len, hash);
        if (!trailer->matches(first + j, hash)) {
          uint64_t cur = changed.load();
          while (first + j < cur && !changed.compare_exchange_weak(cur, first + j)) {}
        }
      };
    });
    if (changed.load() != kNone) signature::raise_chunk_changed(changed.load(), n);
    if (progress) progress(h.chunk_plaintext_offset(last) + h.chunk_plaintext_size(last));
  }
  return trailer->signer;
}

}  // namespace modelcrypt_core
