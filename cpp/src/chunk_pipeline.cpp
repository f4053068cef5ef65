#include "chunk_pipeline.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>

#include "parallel.hpp"

namespace modelcrypt_core::chunks {
namespace {
std::atomic<uint64_t> g_chunks_decrypted{0};
std::atomic<uint64_t> g_ciphertext_bytes_read{0};
}  // namespace

using format::Header;
using format::kTagSize;

void count_read(uint64_t bytes) { g_ciphertext_bytes_read.fetch_add(bytes, std::memory_order_relaxed); }

DebugCounters counters() noexcept { return {g_chunks_decrypted.load(), g_ciphertext_bytes_read.load()}; }

void reset_counters() noexcept {
  g_chunks_decrypted = 0;
  g_ciphertext_bytes_read = 0;
}

// Decrypts chunk `index` (ct -> out, may alias); false on a bad tag.
bool open_chunk(crypto::AesGcm& gcm, const Header& h, uint64_t index, const uint8_t* ct, uint8_t* out,
                const uint8_t* tag) {
  g_chunks_decrypted.fetch_add(1, std::memory_order_relaxed);
  const auto nonce = format::chunk_nonce(index, index + 1 == h.chunk_count());
  return gcm.decrypt({nonce.data(), nonce.size()}, {h.mac.data(), h.mac.size()}, ct, out, h.chunk_plaintext_size(index), tag);
}

void seal_chunk(crypto::AesGcm& gcm, const Header& h, uint64_t index, const uint8_t* pt, uint8_t* out, uint8_t* tag) {
  const auto nonce = format::chunk_nonce(index, index + 1 == h.chunk_count());
  gcm.encrypt({nonce.data(), nonce.size()}, {h.mac.data(), h.mac.size()}, pt, out, h.chunk_plaintext_size(index), tag);
}

ByteView key_view(const SecretBytes& k) { return {k.data(), k.size()}; }

// Runs body(worker, j) for every j in [0, count) on up to `threads` threads, one worker per thread.
void for_each_chunk(uint64_t count, unsigned threads, const SecretBytes& payload_key,
                    const std::function<void(ChunkWorker&, uint64_t)>& body) {
  parallel_for(count, resolve_threads(threads, count), [&]() {
    auto worker = std::make_shared<ChunkWorker>(key_view(payload_key));
    return [&body, worker](uint64_t j) { body(*worker, j); };
  });
}

// Opens chunk `index` (ct -> out, may alias). With a signature required (`trailer`), the stored
// bytes (ciphertext then tag, as read into our memory) are hashed in the same pass and must equal
// the chunk's verified hash ("changed" otherwise, whatever the tag says).
ChunkOutcome open_checked_chunk(ChunkWorker& w, const Header& h, const signature::VerifiedTrailer* trailer, uint64_t index,
                                const uint8_t* ct, uint8_t* out, const uint8_t* tag) {
  if (trailer == nullptr) return open_chunk(w.gcm, h, index, ct, out, tag) ? ChunkOutcome::ok : ChunkOutcome::bad_tag;
  g_chunks_decrypted.fetch_add(1, std::memory_order_relaxed);
  const auto nonce = format::chunk_nonce(index, index + 1 == h.chunk_count());
  signature::ChunkHash hash;
  const bool tag_ok = w.gcm.decrypt_hashing({nonce.data(), nonce.size()}, {h.mac.data(), h.mac.size()}, ct, out,
                                            h.chunk_plaintext_size(index), tag, w.sha(), hash.data());
  if (!trailer->matches(index, hash)) return ChunkOutcome::changed;
  return tag_ok ? ChunkOutcome::ok : ChunkOutcome::bad_tag;
}

// Records a chunk's failure in `changed` (signature) or `failed` (tag).
void record(ChunkOutcome outcome, uint64_t index, FailedChunk& changed, FailedChunk& failed) {
  if (outcome == ChunkOutcome::changed) changed.record(index);
  if (outcome == ChunkOutcome::bad_tag) failed.record(index);
}

size_t checked_size(uint64_t n) {
  if (n > std::numeric_limits<size_t>::max()) throw Error(Status::no_memory, "size does not fit in memory");
  return static_cast<size_t>(n);
}

uint64_t batch_chunks(const Header& h, uint64_t batch_bytes) {
  const uint64_t per = std::max<uint64_t>(1, batch_bytes / (uint64_t{h.chunk_size} + kTagSize));
  return std::min(per, kMaxBatchChunks);
}

// The batch buffers of a pipeline: one per stage in flight (fewer for short files). They hold
// plaintext, so they are SecureBuffers (wiped on release).
std::vector<SecureBuffer> pipeline_slots(uint64_t batches, uint64_t bytes_per_batch) {
  std::vector<SecureBuffer> slots;
  for (uint64_t k = 0; k < std::min(batches, kPipelineSlots); ++k) {
    slots.push_back(SecureBuffer::allocate(checked_size(bytes_per_batch)));
  }
  return slots;
}

// Runs a file->file job as a three-stage pipeline over `batches` batches, batch b in slot b % 3:
// while the chunk workers process batch b, a reader thread loads batch b+1 and a writer thread
// stores batch b-1, so reading, crypto and writing all overlap; memory stays at three batches.
// `between(b)` runs on the calling thread after batch b has been stored, for every batch but the
// last (progress, cancellation; the caller reports the end itself, e.g. once its output is flushed).
// On any error every stage is joined before the error propagates, and no batch whose processing
// failed is ever stored.
void run_pipeline(uint64_t batches, const std::function<void(uint64_t)>& load,
                  const std::function<void(uint64_t)>& process, const std::function<void(uint64_t)>& store,
                  const std::function<void(uint64_t)>& between) {
  if (batches == 0) return;
  load(0);
  for (uint64_t b = 0; b < batches; ++b) {
    StageThread writer([&, b] {
      if (b > 0) store(b - 1);
    });
    StageThread reader([&, b] {
      if (b + 1 < batches) load(b + 1);
    });
    process(b);  // throws: the destructors join both stages first
    writer.finish();
    reader.finish();
    if (b > 0) between(b - 1);
  }
  store(batches - 1);
}

}  // namespace modelcrypt_core::chunks
