#include "container.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <utility>
#include <cctype>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <system_error>
#include <thread>

#include <openssl/crypto.h>

#include "container_detail.hpp"
#include "errors.hpp"
#include "file_io.hpp"
#include "legacy.hpp"
#include "parallel.hpp"

namespace modelcrypt {
namespace {

using format::Header;
using format::kTagSize;

constexpr uint64_t kBatchBytes = 16u << 20;  // file->file working set
// Memory->file (save_checkpoint, DCP): smaller batches, so that the three slots of ciphertext stay
// in the CPU's cache between sealing and writing (no read to wait for either).
constexpr uint64_t kMemoryBatchBytes = 4u << 20;

std::atomic<uint64_t> g_chunks_decrypted{0};
std::atomic<uint64_t> g_ciphertext_bytes_read{0};
void count_read(uint64_t bytes) { g_ciphertext_bytes_read.fetch_add(bytes, std::memory_order_relaxed); }
constexpr uint64_t kMaxBatchChunks = 1024;   // stays under IOV_MAX

// Records the lowest failing chunk so the error names it deterministically.
class FailedChunk {
 public:
  void record(uint64_t index) {
    uint64_t cur = first_.load();
    while (index < cur && !first_.compare_exchange_weak(cur, index)) {}
  }
  bool any() const { return first_.load() != kNone; }
  uint64_t first() const { return first_.load(); }
  [[noreturn]] void raise(const Header& h) const {
    throw Error(Status::auth_failed, "authentication failed in chunk " + std::to_string(first_.load()) + " of " +
                                         std::to_string(h.chunk_count()) + ": the data was modified or is corrupt");
  }

 private:
  static constexpr uint64_t kNone = std::numeric_limits<uint64_t>::max();
  std::atomic<uint64_t> first_{kNone};
};

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
                    const std::function<void(ChunkWorker&, uint64_t)>& body) {
  parallel_for(count, resolve_threads(threads, count), [&]() {
    auto worker = std::make_shared<ChunkWorker>(key_view(payload_key));
    return [&body, worker](uint64_t j) { body(*worker, j); };
  });
}

enum class ChunkOutcome { ok, changed, bad_tag };

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

using detail::ParsedFileHeader;

// Reads the header once: the fixed prefix, then the rest of it after the prefix, into one copy
// that is then parsed, validated and (by the caller) authenticated. No byte of it is read twice,
// so a file rewritten meanwhile cannot make the bytes checked differ from the bytes used.
ParsedFileHeader read_header_once(const ByteSource& in) {
  ParsedFileHeader out;
  out.raw.resize(format::kFixedHeaderSize);
  size_t have = in.read_at(out.raw.data(), out.raw.size(), 0);
  for (;;) {  // v1: one more read; v2: two (the recipients length, then the rest)
    const uint64_t needed = format::header_bytes_needed(out.raw.data(), have, in.size());
    if (needed <= have) break;
    out.raw.resize(checked_size(needed));
    in.read_exact_at(out.raw.data() + have, out.raw.size() - have, have);
    have = out.raw.size();
  }
  out.raw.resize(have);
  out.header = format::parse_header(out.raw.data(), out.raw.size());
  return out;
}

// The same for a header held in the caller's memory: copied once into our own memory first.
ParsedFileHeader copy_memory_header(ByteView blob) {
  ParsedFileHeader out;
  out.raw.assign(blob.data, blob.data + std::min<size_t>(blob.size, format::kFixedHeaderSize));
  size_t have = out.raw.size();
  for (;;) {
    const uint64_t needed = format::header_bytes_needed(out.raw.data(), have, blob.size);
    if (needed <= have) break;
    out.raw.resize(checked_size(needed));
    std::memcpy(out.raw.data() + have, blob.data + have, out.raw.size() - have);
    have = out.raw.size();
  }
  out.header = format::parse_header(out.raw.data(), out.raw.size());
  return out;
}

// A batch of consecutive chunks [first, first+count) for the streaming file paths.
struct Batch {
  uint64_t first;
  uint64_t count;
};

uint64_t batch_chunks(const Header& h, uint64_t batch_bytes = kBatchBytes) {
  const uint64_t per = std::max<uint64_t>(1, batch_bytes / (uint64_t{h.chunk_size} + kTagSize));
  return std::min(per, kMaxBatchChunks);
}

constexpr uint64_t kPipelineSlots = 3;

// The batch buffers of a pipeline: one per stage in flight (fewer for short files). They hold
// plaintext, so they are SecureBuffers (wiped on release).
std::vector<SecureBuffer> pipeline_slots(uint64_t batches, uint64_t bytes_per_batch) {
  std::vector<SecureBuffer> slots;
  for (uint64_t k = 0; k < std::min(batches, kPipelineSlots); ++k) {
    slots.push_back(SecureBuffer::allocate(checked_size(bytes_per_batch)));
  }
  return slots;
}

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

}  // namespace

const std::vector<std::string>& supported_modes() { return legacy::fixed_mode_names(); }

void check_mode(const std::string& mode) {
  const legacy::Mode m = legacy::parse_mode(mode);  // unknown modes: the list of supported ones
  if (m.kind != legacy::Mode::Kind::aes_gcm) {
    throw Error(Status::invalid_argument, "mode '" + mode + "' is for reading legacy files (and writing MindSpore files "
                                          "with format='mindspore'); modelcrypt files use mode 'AES-GCM'");
  }
}

DebugCounters debug_counters() noexcept {
  return {g_chunks_decrypted.load(), g_ciphertext_bytes_read.load()};
}

void reset_debug_counters() noexcept {
  g_chunks_decrypted = 0;
  g_ciphertext_bytes_read = 0;
}

namespace detail {

// Reads chunks [first, first + count) straight into their places in a new buffer and decrypts them
// there, in parallel: the plaintext exists once. Nothing is returned unless every chunk authenticates.
SecureBuffer load_chunks(const ByteSource& in, const Header& h, const format::FileKeys& keys, uint64_t first,
                         uint64_t count, unsigned threads, const signature::VerifiedTrailer* trailer) {
  const uint64_t begin = h.chunk_plaintext_offset(first);
  const uint64_t end = h.chunk_plaintext_offset(first + count - 1) + h.chunk_plaintext_size(first + count - 1);
  SecureBuffer out = SecureBuffer::allocate(checked_size(end - begin));
  uint8_t* base = out.data();
  FailedChunk failed, changed;
  for_each_chunk(count, threads, keys.payload_key, [&](ChunkWorker& w, uint64_t j) {
    const uint64_t i = first + j;
    uint8_t* slot = base + (h.chunk_plaintext_offset(i) - begin);
    uint8_t tag[kTagSize];
    struct iovec iov[2] = {{slot, h.chunk_plaintext_size(i)}, {tag, kTagSize}};
    in.readv_exact_at(iov, 2, h.chunk_file_offset(i));
    count_read(h.chunk_plaintext_size(i) + kTagSize);
    record(open_checked_chunk(w, h, trailer, i, slot, slot, tag), i, changed, failed);
  });
  if (changed.any() || failed.any()) {
    out.wipe();
    if (changed.any()) signature::raise_chunk_changed(changed.first(), h.chunk_count());
    failed.raise(h);
  }
  return out;
}

// Plaintext [offset, offset + length) (non-empty, inside the plaintext) decrypted into the caller's
// `out`: the chunks wholly inside the range are read straight into their place in `out` and
// decrypted there; the (at most two) chunks the range cuts are decrypted in wiping scratch memory
// and only the wanted part copied. On any failure every byte of `out` is wiped before the error.
void load_chunks_into(const ByteSource& in, const Header& h, const format::FileKeys& keys, uint64_t offset,
                      uint64_t length, uint8_t* out, unsigned threads, const signature::VerifiedTrailer* trailer) {
  const uint64_t first = offset / h.chunk_size;
  const uint64_t end = offset + length;
  const uint64_t count = (end - 1) / h.chunk_size - first + 1;
  FailedChunk failed, changed;
  try {
    for_each_chunk(count, threads, keys.payload_key, [&](ChunkWorker& w, uint64_t j) {
      const uint64_t i = first + j;
      const uint64_t begin = h.chunk_plaintext_offset(i);
      const size_t n = h.chunk_plaintext_size(i);
      uint8_t tag[kTagSize];
      if (begin >= offset && begin + n <= end) {  // wholly inside: decrypted in place in the caller's memory
        uint8_t* slot = out + (begin - offset);
        struct iovec iov[2] = {{slot, n}, {tag, kTagSize}};
        in.readv_exact_at(iov, 2, h.chunk_file_offset(i));
        count_read(n + kTagSize);
        record(open_checked_chunk(w, h, trailer, i, slot, slot, tag), i, changed, failed);
        return;
      }
      SecureBuffer scratch = SecureBuffer::allocate(n);  // a cut chunk: only its wanted part leaves here
      struct iovec iov[2] = {{scratch.data(), n}, {tag, kTagSize}};
      in.readv_exact_at(iov, 2, h.chunk_file_offset(i));
      count_read(n + kTagSize);
      const ChunkOutcome outcome = open_checked_chunk(w, h, trailer, i, scratch.data(), scratch.data(), tag);
      record(outcome, i, changed, failed);
      if (outcome == ChunkOutcome::ok) {
        const uint64_t from = std::max(begin, offset), to = std::min<uint64_t>(begin + n, end);
        std::memcpy(out + (from - offset), scratch.data() + (from - begin), checked_size(to - from));
      }
    });
  } catch (...) {
    OPENSSL_cleanse(out, checked_size(length));
    throw;
  }
  if (changed.any() || failed.any()) {
    OPENSSL_cleanse(out, checked_size(length));
    if (changed.any()) signature::raise_chunk_changed(changed.first(), h.chunk_count());
    failed.raise(h);
  }
}

}  // namespace detail

namespace {

// Checks the caller's arguments before touching the file, so a bad mode or key length is reported
// as such even for a missing file.
const std::string& checked_arguments(const std::string& path, const Credential& key, const std::string& mode) {
  check_mode(mode);
  check_credential(key);
  return path;
}

}  // namespace

using detail::OpenedFile;

namespace {

// The format a read must use (see legacy::choose_format): from the file's first bytes, or Paddle
// cipher when the mode says so; legacy formats only when the caller asked for them.
legacy::Format format_for(const legacy::Mode& mode, legacy::FormatSet accepted, const uint8_t* prefix, size_t n) {
  return legacy::choose_format(mode, accepted, prefix, n);
}

legacy::Format sniff(const InputFile& in, const legacy::Mode& mode, legacy::FormatSet accepted) {
  uint8_t prefix[8];
  const size_t n = in.read_at(prefix, sizeof prefix, 0);
  return format_for(mode, accepted, prefix, n);
}

// A caller who requires a publisher signature gets none from a legacy format: Error(signature).
void refuse_if_signature_required(const Credential& key, legacy::Format f) {
  if (key.requires_signature()) {
    throw Error(Status::signature, std::string("the file is in the legacy ") + legacy::format_name(f) +
                                       " format, which has no publisher signature, but a signature from a trusted signer is required");
  }
}

// Decrypts a legacy file image (already in `image`) in place and describes the result.
Decrypted open_legacy(SecureBuffer image, legacy::Format f, const legacy::Mode& mode, ByteView key) {
  Decrypted out;
  const legacy::Result r = legacy::decrypt_in_place(f, mode, image.data(), image.size(), key);  // image wiped if this throws
  out.plaintext = std::move(image);
  out.view_offset = r.offset;
  out.view_length = r.length;
  out.format = legacy::format_name(f);
  out.cipher = r.cipher;
  out.insecure = r.insecure;
  return out;
}

// Reads a legacy file whole into our memory (once) and decrypts that copy; the format detected from
// the copy must be the one chosen from the first bytes read earlier.
Decrypted load_legacy_file(const InputFile& in, legacy::Format f, const legacy::Mode& mode, legacy::FormatSet accepted,
                           ByteView key) {
  SecureBuffer image = SecureBuffer::allocate(checked_size(in.size()));
  in.read_exact_at(image.data(), image.size(), 0);
  count_read(image.size());
  if (format_for(mode, accepted, image.data(), std::min<size_t>(image.size(), 8)) != f) {
    throw Error(Status::auth_failed, "the file changed while it was being read");
  }
  return open_legacy(std::move(image), f, mode, key);
}

}  // namespace

std::string detect_file_format(const std::string& path) {
  InputFile in(path);
  uint8_t prefix[8];
  return legacy::format_name(legacy::detect(prefix, in.read_at(prefix, sizeof prefix, 0)));
}

Decrypted load_file(const std::string& path, const Credential& key, const std::string& mode_text, const std::string& format_choice,
                    unsigned threads) {
  const legacy::Mode mode = legacy::parse_mode(mode_text);
  const legacy::FormatSet accepted = legacy::accepted_formats(format_choice, mode);
  check_credential(key);  // argument errors come first
  OpenedFile f(path);
  const legacy::Format format = sniff(f.in, mode, accepted);
  if (format != legacy::Format::modelcrypt) {
    refuse_if_signature_required(key, format);
    return load_legacy_file(f.in, format, mode, accepted, key.symmetric_key("a legacy format"));
  }
  f.authenticate(key);
  const Header& h = f.parsed.header;
  Decrypted out;
  out.plaintext = detail::load_chunks(f.in, h, f.keys, 0, h.chunk_count(), threads, f.trailer.get());
  out.view_length = out.plaintext.size();
  out.metadata = h.metadata;
  return out;
}

Decrypted load_source(const ByteSource& source, const Credential& key, const std::string& mode, unsigned threads) {
  check_mode(mode);
  check_credential(key);
  const detail::AuthenticatedHeader a = detail::authenticate_source(source, key);
  const Header& h = a.parsed.header;
  Decrypted out;
  out.plaintext = detail::load_chunks(source, h, a.keys, 0, h.chunk_count(), threads, a.trailer.get());
  out.view_length = out.plaintext.size();
  out.metadata = h.metadata;
  return out;
}

Decrypted load_range(const std::string& path, const Credential& key, const std::string& mode, uint64_t offset,
                     uint64_t length, unsigned threads) {
  check_mode(mode);
  check_credential(key);
  OpenedFile f(path);
  if (sniff(f.in, legacy::parse_mode(mode), legacy::format_bit(legacy::Format::modelcrypt)) != legacy::Format::modelcrypt) {
    throw Error(Status::invalid_argument, "random access needs a modelcrypt file; legacy formats load whole");
  }
  f.authenticate(key);
  detail::check_range(f.parsed.header, offset, length);
  return detail::load_opened_range(f, offset, length, threads);
}

Decrypted decrypt_memory(ByteView blob, const Credential& key, const std::string& mode_text, const std::string& format_choice,
                         unsigned threads) {
  const legacy::Mode mode = legacy::parse_mode(mode_text);
  const legacy::FormatSet accepted = legacy::accepted_formats(format_choice, mode);
  check_credential(key);  // argument errors come first
  // The caller's memory may change under us (an mmap of a file being rewritten): every byte is
  // copied once into memory we own, and only that copy is parsed, authenticated and decrypted.
  uint8_t prefix[8] = {};
  const size_t prefix_len = std::min<size_t>(blob.size, sizeof prefix);
  if (prefix_len) std::memcpy(prefix, blob.data, prefix_len);
  if (format_for(mode, accepted, prefix, prefix_len) != legacy::Format::modelcrypt) {
    SecureBuffer image = SecureBuffer::allocate(blob.size);
    if (blob.size) std::memcpy(image.data(), blob.data, blob.size);
    const legacy::Format f = format_for(mode, accepted, image.data(), std::min<size_t>(image.size(), 8));  // the copy decides
    if (f == legacy::Format::modelcrypt) {
      throw Error(Status::auth_failed, "the data changed while it was being read");
    }
    refuse_if_signature_required(key, f);
    return open_legacy(std::move(image), f, mode, key.symmetric_key("a legacy format"));
  }
  const ParsedFileHeader parsed = copy_memory_header(blob);
  const Header& h = parsed.header;
  std::shared_ptr<const signature::VerifiedTrailer> trailer;
  if (key.requires_signature()) {  // the signature first: before the key is used (FORMAT.md, version 3)
    detail::check_signed_length(h, blob.size);  // then the trailer lies inside the blob
    const std::vector<uint8_t> copy(blob.data + h.trailer_offset(), blob.data + h.trailer_offset() + h.trailer_length());
    trailer = std::make_shared<signature::VerifiedTrailer>(signature::verify_trailer(
        copy.data(), copy.size(), h.chunk_count(), {parsed.raw.data(), static_cast<size_t>(h.core_length())},
        key.trusted_signers()));
  }
  const format::FileKeys keys = format::authenticate_header(h, parsed.raw.data(), key, blob.size);

  Decrypted out;
  out.plaintext = SecureBuffer::allocate(checked_size(h.plaintext_length));
  out.metadata = h.metadata;
  uint8_t* dst = out.plaintext.data();
  FailedChunk failed, changed;
  for_each_chunk(h.chunk_count(), threads, keys.payload_key, [&](ChunkWorker& w, uint64_t i) {
    // Copy the chunk and its tag into our memory once, then authenticate and decrypt that copy in place.
    const uint8_t* ct = blob.data + h.chunk_file_offset(i);
    const size_t n = h.chunk_plaintext_size(i);
    uint8_t* slot = dst + h.chunk_plaintext_offset(i);
    uint8_t tag[kTagSize];
    if (n) std::memcpy(slot, ct, n);
    std::memcpy(tag, ct + n, kTagSize);
    record(open_checked_chunk(w, h, trailer.get(), i, slot, slot, tag), i, changed, failed);
  });
  if (changed.any() || failed.any()) {
    out.plaintext.wipe();
    if (changed.any()) signature::raise_chunk_changed(changed.first(), h.chunk_count());
    failed.raise(h);
  }
  out.view_length = out.plaintext.size();
  return out;
}

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
  void read(uint64_t offset, struct iovec* iov, int iovcnt) override { in_.readv_exact_at(iov, iovcnt, offset); }
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
  void read(uint64_t offset, struct iovec* iov, int iovcnt) override {
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
  std::vector<struct iovec> iov(per_batch);
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

Decrypted secure_copy(ByteView data) {
  Decrypted out;
  out.plaintext = SecureBuffer::allocate(data.size);
  if (data.size) std::memcpy(out.plaintext.data(), data.data, data.size);
  out.view_length = data.size;
  return out;
}

namespace {

// Decrypts a file's payload batch by batch, handing each authenticated batch of plaintext to
// `out` (when given), with reading and writing overlapped with the decryption (run_pipeline).
// Nothing reaches `out` before its chunks have authenticated.
void stream_decrypt(const InputFile& in, const Header& h, const format::FileKeys& keys, unsigned threads,
                    AtomicOutputFile* out, const Progress& progress, const signature::VerifiedTrailer* trailer) {
  const uint64_t stride = uint64_t{h.chunk_size} + kTagSize;
  const uint64_t per_batch = std::min(batch_chunks(h), h.chunk_count());
  const uint64_t batches = (h.chunk_count() + per_batch - 1) / per_batch;
  std::vector<SecureBuffer> slots = pipeline_slots(batches, per_batch * stride);
  std::vector<struct iovec> iov(per_batch);
  FailedChunk failed, changed;
  auto first_of = [&](uint64_t b) { return b * per_batch; };
  auto count_of = [&](uint64_t b) { return std::min(per_batch, h.chunk_count() - first_of(b)); };
  run_pipeline(
      batches,
      [&](uint64_t b) {  // load: chunks with their tags
        const uint64_t first = first_of(b), count = count_of(b);
        const uint64_t last = first + count - 1;
        const size_t batch_bytes = checked_size((count - 1) * stride + h.chunk_plaintext_size(last) + kTagSize);
        in.read_exact_at(slots[b % kPipelineSlots].data(), batch_bytes, h.chunk_file_offset(first));
        count_read(batch_bytes);
      },
      [&](uint64_t b) {  // process: open in place; a bad tag stops here, before the batch is stored
        uint8_t* base = slots[b % kPipelineSlots].data();
        const uint64_t first = first_of(b);
        for_each_chunk(count_of(b), threads, keys.payload_key, [&](ChunkWorker& w, uint64_t j) {
          uint8_t* slot = base + j * stride;
          const size_t n = h.chunk_plaintext_size(first + j);
          record(open_checked_chunk(w, h, trailer, first + j, slot, slot, slot + n), first + j, changed, failed);
        });
        if (changed.any()) signature::raise_chunk_changed(changed.first(), h.chunk_count());
        if (failed.any()) failed.raise(h);
      },
      [&](uint64_t b) {  // store: the plaintext of each chunk, without the tags
        if (out == nullptr) return;
        uint8_t* base = slots[b % kPipelineSlots].data();
        const uint64_t first = first_of(b), count = count_of(b);
        for (uint64_t j = 0; j < count; ++j) iov[j] = {base + j * stride, h.chunk_plaintext_size(first + j)};
        out->writev_all(iov.data(), static_cast<int>(count));
      },
      [&](uint64_t b) {
        if (progress) {
          const uint64_t last = first_of(b) + count_of(b) - 1;
          progress(h.chunk_plaintext_offset(last) + h.chunk_plaintext_size(last));
        }
      });
  // With an output the final report is the caller's, once the output is flushed (see decrypt_file).
  if (out == nullptr && progress) progress(h.plaintext_length);
}

}  // namespace

std::string decrypt_file(const std::string& src, const std::string& dst, const Credential& key, const std::string& mode_text,
                         const std::string& format_choice, unsigned threads, const Progress& progress, bool durable) {
  const legacy::Mode mode = legacy::parse_mode(mode_text);
  const legacy::FormatSet accepted = legacy::accepted_formats(format_choice, mode);
  check_credential(key);  // argument errors come first
  OpenedFile f(src);
  const legacy::Format format = sniff(f.in, mode, accepted);
  if (format != legacy::Format::modelcrypt) {  // legacy formats are small enough to go through memory
    refuse_if_signature_required(key, format);
    check_output_path(src, dst);
    const Decrypted d = load_legacy_file(f.in, format, mode, accepted, key.symmetric_key("a legacy format"));
    AtomicOutputFile out(dst, 0600, durable);
    out.write_all(d.data(), d.size());
    out.commit();
    return d.insecure;
  }
  f.authenticate(key);
  detail::decrypt_opened(f, dst, threads, progress, durable);
  return {};
}

std::string verify_file(const std::string& path, const Credential& key, const std::string& mode_text,
                        const std::string& format_choice, unsigned threads, const Progress& progress) {
  const legacy::Mode mode = legacy::parse_mode(mode_text);
  const legacy::FormatSet accepted = legacy::accepted_formats(format_choice, mode);
  check_credential(key);  // argument errors come first
  OpenedFile f(path);
  const legacy::Format format = sniff(f.in, mode, accepted);
  if (format != legacy::Format::modelcrypt) {
    refuse_if_signature_required(key, format);
    return load_legacy_file(f.in, format, mode, accepted, key.symmetric_key("a legacy format")).insecure;
  }
  f.authenticate(key);
  detail::verify_opened(f, threads, progress);
  return {};
}

bool is_encrypted(const std::string& path) {
  InputFile in(path);
  uint8_t magic[sizeof format::kMagic];
  return in.read_at(magic, sizeof magic, 0) == sizeof magic && std::memcmp(magic, format::kMagic, sizeof magic) == 0;
}

namespace detail {

OpenedFile::OpenedFile(const std::string& path) : in(path) {}

OpenedFile::OpenedFile(const std::string& path, const Credential& key, const std::string& mode)
    : in(checked_arguments(path, key, mode)) {
  authenticate(key);
}

void OpenedFile::authenticate(const Credential& key) {
  parsed = read_header_once(in);
  // A required signature is checked first, before the key is used (FORMAT.md, version 3): any change
  // to the signed bytes is then a SignatureError, and a wrong key still a KeyMismatchError.
  if (key.requires_signature()) trailer = read_verified_trailer(in, parsed, key.trusted_signers());
  keys = format::authenticate_header(parsed.header, parsed.raw.data(), key, in.size());
}

AuthenticatedHeader authenticate_source(const ByteSource& source, const Credential& key) {
  AuthenticatedHeader out;
  out.parsed = read_header_once(source);
  if (key.requires_signature()) out.trailer = read_verified_trailer(source, out.parsed, key.trusted_signers());
  out.keys = format::authenticate_header(out.parsed.header, out.parsed.raw.data(), key, source.size());
  return out;
}

void check_signed_length(const Header& h, uint64_t file_length) {
  if (!h.is_signed()) signature::raise_not_signed(h.version);
  if (file_length != h.file_length()) {
    throw Error(Status::signature, std::string(file_length < h.file_length() ? "truncated file" : "trailing data after the signature") +
                                       ": file has " + std::to_string(file_length) + " bytes, its header says " +
                                       std::to_string(h.file_length()) + " (so it is not the file that was signed)");
  }
}

ParsedFileHeader read_file_header(const ByteSource& in) { return read_header_once(in); }

std::shared_ptr<const signature::VerifiedTrailer> read_verified_trailer(
    const ByteSource& in, const ParsedFileHeader& parsed, const std::vector<signature::PublicKey>& trusted) {
  const Header& h = parsed.header;
  check_signed_length(h, in.size());  // S1, S2: n is now bounded by the real file length
  // S3 on the fixed 100 bytes before the 32 * n bytes of hashes are allocated; then the hashes are read
  // once, straight into the memory the verified trailer keeps (no second copy).
  std::array<uint8_t, signature::kTrailerFixedSize> head{};
  in.read_exact_at(head.data(), head.size(), h.trailer_offset());
  count_read(head.size());
  const signature::PublicKey signer = signature::check_trailer_head(head.data(), trusted);
  std::vector<signature::ChunkHash> hashes(checked_size(h.chunk_count()));
  const size_t hashes_size = hashes.size() * signature::kChunkHashSize;
  static_assert(sizeof(signature::ChunkHash) == signature::kChunkHashSize, "chunk hashes are packed");
  in.read_exact_at(reinterpret_cast<uint8_t*>(hashes.data()), hashes_size, h.trailer_offset() + head.size());
  count_read(hashes_size);
  return std::make_shared<signature::VerifiedTrailer>(signature::verify_trailer_signature(
      head.data(), signer, {parsed.raw.data(), static_cast<size_t>(h.core_length())}, std::move(hashes)));
}

SecureBuffer load_opened_chunks(const OpenedFile& f, uint64_t first, uint64_t count, unsigned threads) {
  return load_chunks(f.in, f.parsed.header, f.keys, first, count, threads, f.trailer.get());
}

void check_range(const Header& h, uint64_t offset, uint64_t length) {
  if (offset > h.plaintext_length || length > h.plaintext_length - offset) {
    throw Error(Status::invalid_argument, "range [" + std::to_string(offset) + ", " + std::to_string(offset) + "+" +
                                              std::to_string(length) + ") is outside the plaintext of " +
                                              std::to_string(h.plaintext_length) + " bytes");
  }
}

Decrypted load_opened_range(const OpenedFile& f, uint64_t offset, uint64_t length, unsigned threads) {
  const Header& h = f.parsed.header;
  Decrypted out;
  out.metadata = h.metadata;
  if (length == 0) {
    out.plaintext = SecureBuffer::allocate(0);
    return out;
  }
  const uint64_t first = offset / h.chunk_size;
  const uint64_t last = (offset + length - 1) / h.chunk_size;
  out.plaintext = load_opened_chunks(f, first, last - first + 1, threads);
  out.view_offset = checked_size(offset - h.chunk_plaintext_offset(first));
  out.view_length = checked_size(length);
  return out;
}

void load_opened_range_into(const OpenedFile& f, uint64_t offset, uint64_t length, uint8_t* out, unsigned threads) {
  if (length == 0) return;
  load_chunks_into(f.in, f.parsed.header, f.keys, offset, length, out, threads, f.trailer.get());
}

void decrypt_opened(const OpenedFile& f, const std::string& dst, unsigned threads, const Progress& progress,
                    bool durable) {
  check_output_path(f.in.path(), dst);
  AtomicOutputFile out(dst, 0600, durable);  // decrypted weights are the secret: owner-only by default
  stream_decrypt(f.in, f.parsed.header, f.keys, threads, &out, progress, f.trailer.get());  // on failure the temp file goes, dst stays
  out.commit([&] {  // progress may cancel (Ctrl-C) up to the rename, never after it
    if (progress) progress(f.parsed.header.plaintext_length);
  });
}

void verify_opened(const OpenedFile& f, unsigned threads, const Progress& progress) {
  stream_decrypt(f.in, f.parsed.header, f.keys, threads, nullptr, progress, f.trailer.get());
}

}  // namespace detail

FileInfo inspect_file(const std::string& path) {
  InputFile in(path);
  return inspect_source(in);
}

FileInfo inspect_source(const ByteSource& in) {
  FileInfo info;
  info.header = read_header_once(in).header;
  info.file_length = in.size();
  const Header& h = info.header;
  if (h.is_signed() && info.file_length >= h.trailer_offset() + signature::kTrailerFixedSize) {
    uint8_t fixed[signature::kTrailerFixedSize];
    in.read_exact_at(fixed, sizeof fixed, h.trailer_offset());
    info.has_signer = true;
    info.signer = signature::claimed_signer(fixed);
  }
  return info;
}

}  // namespace modelcrypt
