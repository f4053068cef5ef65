// The writers: a plaintext source (a file, parts in memory) sealed chunk by chunk into a file, a
// caller's writer or memory (FORMAT.md "Writer algorithm"), reading, sealing and writing overlapped.
#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>

#include "chunk_pipeline.hpp"
#include "container.hpp"
#include "errors.hpp"
#include "file_io.hpp"

namespace modelcrypt_core {

using namespace chunks;  // NOLINT(google-build-using-namespace): this file's own machinery
using format::Header;
using format::kTagSize;

uint64_t encrypted_length(uint64_t plaintext_length, const EncryptOptions& options) {
  const uint32_t block = options.recipients.empty() ? 0 : format::writer_block_size(options.recipients.size(), options.with_key);
  const bool is_signed = options.signing_key != nullptr;
  const uint32_t room = block ? block : (is_signed ? format::writer_block_size(0, options.with_key) : 0);
  return format::encrypted_length(plaintext_length, options.chunk_size, options.metadata.size, room, is_signed);
}

void encrypt_memory(ByteView in, ByteView key, const std::string& mode, const EncryptOptions& options,
                    uint8_t* out, uint64_t out_size) {
  check_mode(mode);
  format::NewHeader nh = format::make_writer_header(key, options.recipients, in.size, options.chunk_size, options.metadata,
                                                    options.signing_key != nullptr);
  const Header& h = nh.header;
  if (out_size != h.file_length()) throw Error(Status::internal, "output buffer has the wrong size");
  std::memcpy(out, nh.serialized.data(), nh.serialized.size());
  std::vector<signature::ChunkHash> hashes(options.signing_key ? checked_size(h.chunk_count()) : 0);
  for_each_chunk(h.chunk_count(), options.threads, nh.keys.payload_key, [&](ChunkWorker& w, uint64_t i) {
    uint8_t* slot = out + h.chunk_file_offset(i);
    const size_t n = h.chunk_plaintext_size(i);
    seal_chunk(w.gcm, h, i, in.data + h.chunk_plaintext_offset(i), slot, slot + n);
    if (options.signing_key) signature::hash_chunk(w.sha(), slot, n, slot + n, hashes[i]);
  });
  if (options.signing_key) {
    const std::vector<uint8_t> trailer =
        signature::make_trailer(*options.signing_key, {nh.serialized.data(), static_cast<size_t>(h.core_length())}, hashes);
    std::memcpy(out + h.trailer_offset(), trailer.data(), trailer.size());
  }
}

namespace {

class FileSource final : public PlaintextSource {
 public:
  explicit FileSource(const std::string& path) : in_(path) {}
  uint64_t size() const override { return in_.size(); }
  void read(uint64_t offset, IoVec* iov, int iovcnt) override { in_.readv_exact_at(iov, iovcnt, offset); }
  void finish() override {
    if (in_.current_size() != in_.size()) {
      throw Error(Status::io, "source file '" + in_.path() + "' changed size while it was being encrypted", 0, in_.path());
    }
  }

 private:
  InputFile in_;
};

class PartsSource final : public PlaintextSource {
 public:
  explicit PartsSource(const std::vector<ByteView>& parts) : parts_(parts) {
    for (const ByteView& p : parts_) {
      starts_.push_back(total_);
      total_ += p.size;
    }
  }
  uint64_t size() const override { return total_; }
  bool in_memory() const override { return true; }
  const uint8_t* span(uint64_t offset, size_t n) const override {
    const auto after = std::upper_bound(starts_.begin(), starts_.end(), offset);
    if (after == starts_.begin()) return nullptr;
    const size_t part = static_cast<size_t>(after - starts_.begin()) - 1;
    const uint64_t within = offset - starts_[part];
    if (within > parts_[part].size || n > parts_[part].size - within) return nullptr;  // crosses into the next part
    return parts_[part].data + within;
  }
  void read(uint64_t offset, IoVec* iov, int iovcnt) override {
    // Parts are visited in order; find the one holding `offset` once, then walk forward.
    size_t part = static_cast<size_t>(std::upper_bound(starts_.begin(), starts_.end(), offset) - starts_.begin());
    part = part ? part - 1 : 0;
    for (int k = 0; k < iovcnt; ++k) {
      auto* dst = static_cast<uint8_t*>(iov[k].iov_base);
      size_t need = iov[k].iov_len;
      while (need) {
        while (part < parts_.size() && offset >= starts_[part] + parts_[part].size) ++part;
        if (part == parts_.size()) throw Error(Status::internal, "read past the end of the plaintext parts");
        const uint64_t within = offset - starts_[part];
        const size_t n = static_cast<size_t>(std::min<uint64_t>(need, parts_[part].size - within));
        std::memcpy(dst, parts_[part].data + within, n);
        dst += n;
        need -= n;
        offset += n;
      }
    }
  }

 private:
  const std::vector<ByteView>& parts_;
  std::vector<uint64_t> starts_;
  uint64_t total_ = 0;
};

}  // namespace

// The streaming writer: each batch of plaintext is read into its slots (leaving room for each
// chunk's tag), sealed in place in parallel, and written, with reading and writing overlapped with
// the sealing (run_pipeline); memory stays at three batches.
namespace {

class FileSink final : public CiphertextSink {
 public:
  FileSink(const std::string& dst, bool durable) : out_(dst, 0666, durable) {}
  void write_all(const uint8_t* data, size_t n) override { out_.write_all(data, n); }
  void commit(const std::function<void()>& before) override { out_.commit(before); }

 private:
  AtomicOutputFile out_;
};

// Calls the writer on one long-lived thread (the pipeline's store stage is a new thread per batch):
// a writer that allocates (a Python upload) then allocates from one malloc arena, so its memory
// stays that of one batch and one part instead of growing with a new arena per thread.
class WriterSink final : public CiphertextSink {
 public:
  explicit WriterSink(const CiphertextWriter& write) : write_(write), thread_([this] { run(); }) {}
  ~WriterSink() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  void write_all(const uint8_t* data, size_t n) override {
    std::unique_lock<std::mutex> lock(mutex_);
    data_ = data;
    n_ = n;
    pending_ = true;
    wake_.notify_all();
    wake_.wait(lock, [this] { return !pending_; });
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }
  void commit(const std::function<void()>& before) override { before(); }

 private:
  void run() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [this] { return pending_ || stop_; });
      if (!pending_) return;
      lock.unlock();
      std::exception_ptr error;
      try {
        write_(data_, n_);
      } catch (...) {
        error = std::current_exception();
      }
      lock.lock();
      error_ = error;
      pending_ = false;
      wake_.notify_all();
    }
  }
  const CiphertextWriter& write_;
  std::mutex mutex_;
  std::condition_variable wake_;
  const uint8_t* data_ = nullptr;
  size_t n_ = 0;
  bool pending_ = false, stop_ = false;
  std::exception_ptr error_;
  std::thread thread_;  // last: started once the rest is initialized
};

void encrypt_source_to_sink(PlaintextSource& source, const std::function<std::unique_ptr<CiphertextSink>()>& open,
                            ByteView key, const std::string& mode, const EncryptOptions& options);

}  // namespace

void encrypt_source_to_file(PlaintextSource& source, const std::string& dst, ByteView key, const std::string& mode,
                            const EncryptOptions& options) {
  encrypt_source_to_sink(source, [&] { return std::make_unique<FileSink>(dst, options.durable); }, key, mode, options);
}

void encrypt_source_to_writer(PlaintextSource& source, const CiphertextWriter& write, ByteView key,
                              const std::string& mode, const EncryptOptions& options) {
  encrypt_source_to_sink(source, [&] { return std::make_unique<WriterSink>(write); }, key, mode, options);
}

void encrypt_file_to_writer(const std::string& src, const CiphertextWriter& write, ByteView key,
                            const std::string& mode, const EncryptOptions& options) {
  check_mode(mode);
  format::check_writer_key(key, options.recipients);
  format::check_chunk_size(options.chunk_size);
  FileSource source(src);
  encrypt_source_to_writer(source, write, key, mode, options);
}

namespace {

void encrypt_source_to_sink(PlaintextSource& source, const std::function<std::unique_ptr<CiphertextSink>()>& open,
                            ByteView key, const std::string& mode, const EncryptOptions& options) {
  check_mode(mode);
  format::check_writer_key(key, options.recipients);
  format::check_chunk_size(options.chunk_size);
  format::NewHeader nh = format::make_writer_header(key, options.recipients, source.size(), options.chunk_size, options.metadata,
                                                    options.signing_key != nullptr);
  const Header& h = nh.header;
  // A signed file's chunk hashes (32 bytes per chunk) are kept for the trailer written at the end.
  std::vector<signature::ChunkHash> hashes(options.signing_key ? checked_size(h.chunk_count()) : 0);
  const uint64_t stride = uint64_t{h.chunk_size} + kTagSize;
  const uint64_t per_batch =
      std::min(batch_chunks(h, source.in_memory() ? kMemoryBatchBytes : kBatchBytes), h.chunk_count());
  const uint64_t batches = (h.chunk_count() + per_batch - 1) / per_batch;
  std::vector<SecureBuffer> slots = pipeline_slots(batches, per_batch * stride);
  std::vector<IoVec> iov(per_batch);
  std::vector<std::vector<const uint8_t*>> plaintext_of(kPipelineSlots, std::vector<const uint8_t*>(per_batch));
  auto first_of = [&](uint64_t b) { return b * per_batch; };
  auto count_of = [&](uint64_t b) { return std::min(per_batch, h.chunk_count() - first_of(b)); };
  auto end_of = [&](uint64_t b) {  // plaintext offset just past batch b
    const uint64_t last = first_of(b) + count_of(b) - 1;
    return h.chunk_plaintext_offset(last) + h.chunk_plaintext_size(last);
  };

  const std::unique_ptr<CiphertextSink> sink = open();
  CiphertextSink& out = *sink;
  out.write_all(nh.serialized.data(), nh.serialized.size());
  run_pipeline(
      batches,
      [&](uint64_t b) {  // load: where each chunk's plaintext is (in the source's memory, or copied into its slot)
        uint8_t* base = slots[b % kPipelineSlots].data();
        const uint8_t** from = plaintext_of[b % kPipelineSlots].data();
        const uint64_t first = first_of(b), count = count_of(b);
        uint64_t copied = 0;  // chunks [j - copied, j) go to their slots in one read
        auto read_copied = [&](uint64_t end) {
          if (copied) source.read(h.chunk_plaintext_offset(first + end - copied), iov.data(), static_cast<int>(copied));
          copied = 0;
        };
        for (uint64_t j = 0; j < count; ++j) {
          const size_t n = h.chunk_plaintext_size(first + j);
          from[j] = source.span(h.chunk_plaintext_offset(first + j), n);
          if (from[j] != nullptr) {
            read_copied(j);
            continue;
          }
          from[j] = base + j * stride;
          iov[copied++] = {base + j * stride, n};
        }
        read_copied(count);
      },
      [&](uint64_t b) {  // process: seal each chunk into its slot
        uint8_t* base = slots[b % kPipelineSlots].data();
        const uint8_t* const* from = plaintext_of[b % kPipelineSlots].data();
        const uint64_t first = first_of(b);
        for_each_chunk(count_of(b), options.threads, nh.keys.payload_key, [&](ChunkWorker& w, uint64_t j) {
          uint8_t* slot = base + j * stride;
          const size_t n = h.chunk_plaintext_size(first + j);
          seal_chunk(w.gcm, h, first + j, from[j], slot, slot + n);
          if (options.signing_key) signature::hash_chunk(w.sha(), slot, n, slot + n, hashes[first + j]);
        });
      },
      [&](uint64_t b) {  // store: chunks and tags are contiguous
        const uint64_t count = count_of(b);
        const uint64_t last = first_of(b) + count - 1;
        out.write_all(slots[b % kPipelineSlots].data(), checked_size((count - 1) * stride + h.chunk_plaintext_size(last) + kTagSize));
      },
      [&](uint64_t b) {
        if (options.progress) options.progress(end_of(b));
      });
  source.finish();
  if (options.signing_key) {
    const std::vector<uint8_t> trailer =
        signature::make_trailer(*options.signing_key, {nh.serialized.data(), static_cast<size_t>(h.core_length())}, hashes);
    out.write_all(trailer.data(), trailer.size());
  }
  out.commit([&] {  // progress may cancel (Ctrl-C) up to the rename, never after it
    if (options.progress) options.progress(end_of(batches - 1));
  });
}

}  // namespace

void encrypt_file(const std::string& src, const std::string& dst, ByteView key, const std::string& mode,
                  const EncryptOptions& options) {
  check_mode(mode);
  format::check_writer_key(key, options.recipients);
  format::check_chunk_size(options.chunk_size);
  FileSource source(src);
  check_output_path(src, dst);
  encrypt_source_to_file(source, dst, key, mode, options);
}

void encrypt_parts_to_file(const std::vector<ByteView>& parts, const std::string& dst, ByteView key,
                           const std::string& mode, const EncryptOptions& options) {
  PartsSource source(parts);
  encrypt_source_to_file(source, dst, key, mode, options);
}

}  // namespace modelcrypt_core
