// Decrypting into the caller's memory (decrypt_into.hpp): batches of ciphertext read into memory of
// ours, chunks opened in per-thread scratch buffers and authenticated there, then copied out.
#include "decrypt_into.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <utility>

#include <openssl/crypto.h>

#include "chunk_pipeline.hpp"
#include "container_detail.hpp"
#include "errors.hpp"
#include "parallel.hpp"
#include "random_access.hpp"

namespace modelcrypt_core {

using format::Header;
using format::kTagSize;
using namespace chunks;  // NOLINT(google-build-using-namespace): the chunk machinery (chunk_pipeline.hpp)

namespace {

// Ciphertext per batch. Two batches are in memory at once (one being read, one being decrypted),
// so with one scratch chunk per thread the working set stays far below 64 MiB for any file.
constexpr uint64_t kIntoBatchBytes = 8u << 20;
constexpr unsigned kBatchSlots = 2;

std::string sizes(uint64_t needed, uint64_t capacity) {
  return "the destination holds " + std::to_string(capacity) + " bytes but " + std::to_string(needed) +
         " are needed";
}

// The batches of consecutive chunks that cover `spans` (sorted): chunks no span touches are not read.
std::vector<Batch> covering_batches(const Header& h, const std::vector<PlaintextSpan>& spans, uint64_t per_batch) {
  std::vector<Batch> batches;
  auto add_run = [&](uint64_t first, uint64_t end) {
    for (uint64_t c = first; c < end; c += per_batch) batches.push_back({c, std::min(per_batch, end - c)});
  };
  bool open = false;
  uint64_t run_first = 0, run_end = 0;
  for (const PlaintextSpan& s : spans) {
    const uint64_t first = s.offset / h.chunk_size;
    const uint64_t end = (s.offset + s.length - 1) / h.chunk_size + 1;
    if (open && first <= run_end) {
      run_end = std::max(run_end, end);
      continue;
    }
    if (open) add_run(run_first, run_end);
    open = true;
    run_first = first;
    run_end = end;
  }
  if (open) add_run(run_first, run_end);
  return batches;
}

// Copies the plaintext of the chunk that starts at plaintext offset `begin` (n bytes at `pt`) into
// every span it overlaps.
void scatter(const std::vector<PlaintextSpan>& spans, uint64_t begin, const uint8_t* pt, size_t n) {
  const uint64_t end = begin + n;
  auto it = std::partition_point(spans.begin(), spans.end(),
                                 [&](const PlaintextSpan& s) { return s.offset + s.length <= begin; });
  for (; it != spans.end() && it->offset < end; ++it) {
    const uint64_t from = std::max(begin, it->offset), to = std::min(end, it->offset + it->length);
    std::memcpy(it->dst + (from - it->offset), pt + (from - begin), static_cast<size_t>(to - from));
  }
}

}  // namespace

namespace detail {

std::vector<PlaintextSpan> checked_spans(const Header& h, std::vector<PlaintextSpan> spans) {
  for (const PlaintextSpan& s : spans) {
    check_range(h, s.offset, s.length);
    if (s.length != 0 && s.dst == nullptr) throw Error(Status::invalid_argument, "destination is NULL");
    checked_size(s.length);
  }
  spans.erase(std::remove_if(spans.begin(), spans.end(), [](const PlaintextSpan& s) { return s.length == 0; }),
              spans.end());
  std::sort(spans.begin(), spans.end(),
            [](const PlaintextSpan& a, const PlaintextSpan& b) { return a.offset < b.offset; });
  for (size_t i = 1; i < spans.size(); ++i) {
    const PlaintextSpan& prev = spans[i - 1];
    if (spans[i].offset < prev.offset + prev.length) {
      throw Error(Status::invalid_argument, "plaintext ranges [" + std::to_string(prev.offset) + ", " +
                                                std::to_string(prev.offset + prev.length) + ") and [" +
                                                std::to_string(spans[i].offset) + ", " +
                                                std::to_string(spans[i].offset + spans[i].length) + ") overlap");
    }
  }
  return spans;
}

void wipe_spans(const std::vector<PlaintextSpan>& spans) noexcept {
  for (const PlaintextSpan& s : spans) {
    if (s.length != 0 && s.dst != nullptr) OPENSSL_cleanse(s.dst, static_cast<size_t>(s.length));
  }
}

void decrypt_spans_into(const ByteSource& in, const Header& h, const format::FileKeys& keys,
                        const std::vector<PlaintextSpan>& spans, unsigned threads,
                        const signature::VerifiedTrailer* trailer) {
  if (spans.empty()) return;
  const uint64_t stride = uint64_t{h.chunk_size} + kTagSize;
  const uint64_t per_batch = std::min(batch_chunks(h, kIntoBatchBytes), h.chunk_count());
  const std::vector<Batch> batches = covering_batches(h, spans, per_batch);
  uint64_t widest = 0;
  for (const Batch& b : batches) widest = std::max(widest, b.count);
  const unsigned workers = resolve_threads(threads, widest);
  try {
    // Ciphertext only (chunks are opened into the scratch buffers), but kept in our own memory.
    std::vector<SecureBuffer> slots;
    for (unsigned k = 0; k < std::min<uint64_t>(kBatchSlots, batches.size()); ++k) {
      slots.push_back(SecureBuffer::allocate(checked_size(widest * stride)));
    }
    std::vector<SecureBuffer> scratch;  // one chunk of plaintext per thread, wiped when released
    for (unsigned k = 0; k < workers; ++k) scratch.push_back(SecureBuffer::allocate(h.chunk_size));

    auto load = [&](size_t b) {
      const Batch& batch = batches[b];
      const uint64_t last = batch.first + batch.count - 1;
      const size_t bytes = checked_size((batch.count - 1) * stride + h.chunk_plaintext_size(last) + kTagSize);
      in.read_exact_at(slots[b % kBatchSlots].data(), bytes, h.chunk_file_offset(batch.first));
      count_read(bytes);
    };
    FailedChunk failed, changed;
    auto process = [&](size_t b) {
      const Batch& batch = batches[b];
      const uint8_t* base = slots[b % kBatchSlots].data();
      std::atomic<unsigned> next_scratch{0};
      parallel_for(batch.count, std::min<unsigned>(workers, static_cast<unsigned>(batch.count)), [&]() {
        auto worker = std::make_shared<ChunkWorker>(key_view(keys.payload_key));
        uint8_t* pt = scratch[next_scratch.fetch_add(1) % workers].data();
        return [&, worker, pt](uint64_t j) {
          const uint64_t i = batch.first + j;
          const uint8_t* ct = base + j * stride;
          const size_t n = h.chunk_plaintext_size(i);
          const ChunkOutcome outcome = open_checked_chunk(*worker, h, trailer, i, ct, pt, ct + n);
          record(outcome, i, changed, failed);
          if (outcome == ChunkOutcome::ok) scatter(spans, h.chunk_plaintext_offset(i), pt, n);
        };
      });
      if (changed.any()) signature::raise_chunk_changed(changed.first(), h.chunk_count());
      if (failed.any()) failed.raise(h);
    };

    load(0);
    for (size_t b = 0; b < batches.size(); ++b) {
      StageThread reader([&, b] {
        if (b + 1 < batches.size()) load(b + 1);
      });
      process(b);  // throws: the reader is joined first (StageThread's destructor)
      reader.finish();
    }
  } catch (...) {
    wipe_spans(spans);
    throw;
  }
}

}  // namespace detail

uint64_t load_file_into(const std::string& path, const Credential& key, const std::string& mode, uint8_t* dst,
                        uint64_t capacity, unsigned threads) {
  const RandomAccessFile file(path, key, mode);
  const uint64_t needed = file.header().plaintext_length;
  if (capacity < needed) {
    throw Error(Status::invalid_argument, "cannot decrypt '" + path + "' into the destination: " +
                                              sizes(needed, capacity), 0, path);
  }
  file.read_spans_into({{0, needed, dst}}, threads);
  return needed;
}

void load_range_into(const std::string& path, const Credential& key, const std::string& mode, uint64_t offset,
                     uint64_t length, uint8_t* dst, uint64_t capacity, unsigned threads) {
  if (capacity < length) {
    throw Error(Status::invalid_argument, "cannot decrypt " + std::to_string(length) + " bytes of '" + path +
                                              "' into the destination: " + sizes(length, capacity), 0, path);
  }
  const RandomAccessFile file(path, key, mode);
  file.read_spans_into({{offset, length, dst}}, threads);
}

}  // namespace modelcrypt_core
