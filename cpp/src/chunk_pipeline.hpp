// The chunk machinery shared by the readers (container.cpp) and the writers (container_encrypt.cpp):
// sealing and opening one chunk, running a body over every chunk on the worker threads, the batches
// and three-stage pipeline of the streaming file paths, and the debug counters.
#pragma once
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <vector>
#include <atomic>

#include "container.hpp"
#include "crypto.hpp"
#include "errors.hpp"
#include "format.hpp"
#include "secure_buffer.hpp"
#include "signature.hpp"

namespace modelcrypt_core::chunks {

constexpr uint64_t kBatchBytes = 16u << 20;  // file->file working set
// Memory->file (save_checkpoint, DCP): smaller batches, so that the three slots of ciphertext stay
// in the CPU's cache between sealing and writing (no read to wait for either).
constexpr uint64_t kMemoryBatchBytes = 4u << 20;
constexpr uint64_t kMaxBatchChunks = 1024;   // stays under IOV_MAX
constexpr uint64_t kPipelineSlots = 3;

// Ciphertext bytes read into our memory and chunks opened, for tests (debug_counters).
void count_read(uint64_t bytes);
DebugCounters counters() noexcept;
void reset_counters() noexcept;

// Records the lowest failing chunk so the error names it deterministically.
class FailedChunk {
 public:
  void record(uint64_t index) {
    uint64_t cur = first_.load();
    while (index < cur && !first_.compare_exchange_weak(cur, index)) {}
  }
  bool any() const { return first_.load() != kNone; }
  uint64_t first() const { return first_.load(); }
  [[noreturn]] void raise(const format::Header& h) const {
    throw Error(Status::auth_failed, "authentication failed in chunk " + std::to_string(first_.load()) + " of " +
                                         std::to_string(h.chunk_count()) + ": the data was modified or is corrupt");
  }

 private:
  static constexpr uint64_t kNone = std::numeric_limits<uint64_t>::max();
  std::atomic<uint64_t> first_{kNone};
};

// Decrypts chunk `index` (ct -> out, may alias); false on a bad tag.
bool open_chunk(crypto::AesGcm& gcm, const format::Header& h, uint64_t index, const uint8_t* ct, uint8_t* out,
                const uint8_t* tag);
void seal_chunk(crypto::AesGcm& gcm, const format::Header& h, uint64_t index, const uint8_t* pt, uint8_t* out,
                uint8_t* tag);
ByteView key_view(const SecretBytes& k);

// What each thread of for_each_chunk owns: an AES-GCM context keyed with the payload key, and a
// SHA-256 context (made on first use) for the chunk hashes of signed files.
struct ChunkWorker {
  explicit ChunkWorker(ByteView payload_key) : gcm(payload_key) {}
  crypto::AesGcm gcm;
  crypto::Sha256& sha() {
    if (!sha_) sha_ = std::make_unique<crypto::Sha256>();
    return *sha_;
  }

 private:
  std::unique_ptr<crypto::Sha256> sha_;
};

// Runs body(worker, j) for every j in [0, count) on up to `threads` threads, one worker per thread.
void for_each_chunk(uint64_t count, unsigned threads, const SecretBytes& payload_key,
                    const std::function<void(ChunkWorker&, uint64_t)>& body);

enum class ChunkOutcome { ok, changed, bad_tag };

// Opens chunk `index` (ct -> out, may alias). With a signature required (`trailer`), the stored
// bytes (ciphertext then tag, as read into our memory) are hashed in the same pass and must equal
// the chunk's verified hash ("changed" otherwise, whatever the tag says).
ChunkOutcome open_checked_chunk(ChunkWorker& w, const format::Header& h, const signature::VerifiedTrailer* trailer,
                                uint64_t index, const uint8_t* ct, uint8_t* out, const uint8_t* tag);
// Records a chunk's failure in `changed` (signature) or `failed` (tag).
void record(ChunkOutcome outcome, uint64_t index, FailedChunk& changed, FailedChunk& failed);
// n as a size_t, or Error(no_memory).
size_t checked_size(uint64_t n);

// A batch of consecutive chunks [first, first+count) for the streaming file paths.
struct Batch {
  uint64_t first;
  uint64_t count;
};

uint64_t batch_chunks(const format::Header& h, uint64_t batch_bytes = kBatchBytes);
// The batch buffers of a pipeline: one per stage in flight (fewer for short files). They hold
// plaintext, so they are SecureBuffers (wiped on release).
std::vector<SecureBuffer> pipeline_slots(uint64_t batches, uint64_t bytes_per_batch);

// Runs `fn` on a new thread, or (no thread to spare) right here; finish() joins and rethrows.
class StageThread {
 public:
  explicit StageThread(const std::function<void()>& fn) : fn_(fn) {
    try {
      thread_ = std::thread([this] { run(); });
    } catch (const std::system_error&) {
      run();
    }
  }
  // Joins; then rethrows what the stage threw.
  void finish() {
    join();
    if (error_) std::rethrow_exception(error_);
  }
  void join() noexcept {
    if (thread_.joinable()) thread_.join();
  }
  ~StageThread() { join(); }

 private:
  void run() noexcept {
    try {
      fn_();
    } catch (...) {
      error_ = std::current_exception();
    }
  }
  std::function<void()> fn_;
  std::exception_ptr error_;
  std::thread thread_;
};

// Runs a file->file job as a three-stage pipeline over `batches` batches, batch b in slot b % 3:
// while the chunk workers process batch b, a reader thread loads batch b+1 and a writer thread
// stores batch b-1, so reading, crypto and writing all overlap; memory stays at three batches.
// `between(b)` runs on the calling thread after batch b has been stored, for every batch but the
// last (progress, cancellation; the caller reports the end itself, e.g. once its output is flushed).
// On any error every stage is joined before the error propagates, and no batch whose processing
// failed is ever stored.
void run_pipeline(uint64_t batches, const std::function<void(uint64_t)>& load,
                  const std::function<void(uint64_t)>& process, const std::function<void(uint64_t)>& store,
                  const std::function<void(uint64_t)>& between);

}  // namespace modelcrypt_core::chunks
