#include "container.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>

#include "errors.hpp"
#include "file_io.hpp"
#include "parallel.hpp"

namespace modelcrypt {
namespace {

using format::Header;
using format::kTagSize;

constexpr uint64_t kBatchBytes = 16u << 20;  // file->file working set
constexpr uint64_t kMaxBatchChunks = 1024;   // stays under IOV_MAX

// Records the lowest failing chunk so the error names it deterministically.
class FailedChunk {
 public:
  void record(uint64_t index) {
    uint64_t cur = first_.load();
    while (index < cur && !first_.compare_exchange_weak(cur, index)) {}
  }
  bool any() const { return first_.load() != kNone; }
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
  const auto nonce = format::chunk_nonce(index, index + 1 == h.chunk_count());
  return gcm.decrypt({nonce.data(), nonce.size()}, {h.mac.data(), h.mac.size()}, ct, out, h.chunk_plaintext_size(index), tag);
}

void seal_chunk(crypto::AesGcm& gcm, const Header& h, uint64_t index, const uint8_t* pt, uint8_t* out, uint8_t* tag) {
  const auto nonce = format::chunk_nonce(index, index + 1 == h.chunk_count());
  gcm.encrypt({nonce.data(), nonce.size()}, {h.mac.data(), h.mac.size()}, pt, out, h.chunk_plaintext_size(index), tag);
}

ByteView key_view(const SecretBytes& k) { return {k.data(), k.size()}; }

// Runs body(gcm, j) for every j in [0, count) on up to `threads` threads; each thread owns an
// AES-GCM context keyed with `payload_key`.
void for_each_chunk(uint64_t count, unsigned threads, const SecretBytes& payload_key,
                    const std::function<void(crypto::AesGcm&, uint64_t)>& body) {
  parallel_for(count, resolve_threads(threads, count), [&]() {
    auto gcm = std::make_shared<crypto::AesGcm>(key_view(payload_key));
    return [&body, gcm](uint64_t j) { body(*gcm, j); };
  });
}

size_t checked_size(uint64_t n) {
  if (n > std::numeric_limits<size_t>::max()) throw Error(Status::no_memory, "size does not fit in memory");
  return static_cast<size_t>(n);
}

struct ParsedFileHeader {
  Header header;
  std::vector<uint8_t> raw;
};

ParsedFileHeader read_file_header(const InputFile& in) {
  uint8_t prefix[format::kFixedHeaderSize];
  const size_t got = in.read_at(prefix, sizeof prefix, 0);
  const uint64_t header_length = format::parse_header_length(prefix, got, in.size());
  ParsedFileHeader out;
  out.raw.resize(header_length);
  in.read_exact_at(out.raw.data(), out.raw.size(), 0);
  out.header = format::parse_header(out.raw.data(), out.raw.size());
  return out;
}

// A batch of consecutive chunks [first, first+count) for the streaming file paths.
struct Batch {
  uint64_t first;
  uint64_t count;
};

uint64_t batch_chunks(const Header& h) {
  const uint64_t per = std::max<uint64_t>(1, kBatchBytes / (uint64_t{h.chunk_size} + kTagSize));
  return std::min(per, kMaxBatchChunks);
}

}  // namespace

const std::vector<std::string>& supported_modes() {
  static const std::vector<std::string> modes = {"AES-GCM"};
  return modes;
}

void check_mode(const std::string& mode) {
  std::string upper(mode);
  std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
  for (const auto& m : supported_modes()) {
    if (upper == m) return;
  }
  std::string list;
  for (const auto& m : supported_modes()) list += (list.empty() ? "" : ", ") + ("'" + m + "'");
  throw Error(Status::invalid_argument, "unsupported mode '" + mode + "'; supported modes: " + list);
}

Decrypted load_file(const std::string& path, ByteView key, const std::string& mode, unsigned threads) {
  check_mode(mode);
  format::check_master_key(key);
  InputFile in(path);
  ParsedFileHeader parsed = read_file_header(in);
  const Header& h = parsed.header;
  const format::FileKeys keys = format::authenticate_header(h, parsed.raw.data(), key, in.size());

  Decrypted out;
  out.plaintext = SecureBuffer::allocate(checked_size(h.plaintext_length));
  out.metadata = h.metadata;
  uint8_t* dst = out.plaintext.data();
  FailedChunk failed;
  for_each_chunk(h.chunk_count(), threads, keys.payload_key, [&](crypto::AesGcm& gcm, uint64_t i) {
    // The ciphertext lands where its plaintext belongs and is decrypted in place.
    uint8_t* slot = dst + h.chunk_plaintext_offset(i);
    uint8_t tag[kTagSize];
    struct iovec iov[2] = {{slot, h.chunk_plaintext_size(i)}, {tag, kTagSize}};
    in.readv_exact_at(iov, 2, h.chunk_file_offset(i));
    if (!open_chunk(gcm, h, i, slot, slot, tag)) failed.record(i);
  });
  if (failed.any()) {
    out.plaintext.wipe();
    failed.raise(h);
  }
  return out;
}

Decrypted decrypt_memory(ByteView blob, ByteView key, const std::string& mode, unsigned threads) {
  check_mode(mode);
  format::check_master_key(key);
  const uint64_t header_length = format::parse_header_length(blob.data, std::min<size_t>(blob.size, format::kFixedHeaderSize), blob.size);
  const Header h = format::parse_header(blob.data, checked_size(header_length));
  const format::FileKeys keys = format::authenticate_header(h, blob.data, key, blob.size);

  Decrypted out;
  out.plaintext = SecureBuffer::allocate(checked_size(h.plaintext_length));
  out.metadata = h.metadata;
  uint8_t* dst = out.plaintext.data();
  FailedChunk failed;
  for_each_chunk(h.chunk_count(), threads, keys.payload_key, [&](crypto::AesGcm& gcm, uint64_t i) {
    const uint8_t* ct = blob.data + h.chunk_file_offset(i);
    if (!open_chunk(gcm, h, i, ct, dst + h.chunk_plaintext_offset(i), ct + h.chunk_plaintext_size(i))) failed.record(i);
  });
  if (failed.any()) {
    out.plaintext.wipe();
    failed.raise(h);
  }
  return out;
}

uint64_t encrypted_length(uint64_t plaintext_length, const EncryptOptions& options) {
  return format::encrypted_length(plaintext_length, options.chunk_size, options.metadata.size);
}

void encrypt_memory(ByteView in, ByteView key, const std::string& mode, const EncryptOptions& options,
                    uint8_t* out, uint64_t out_size) {
  check_mode(mode);
  format::NewHeader nh = format::make_header(key, in.size, options.chunk_size, options.metadata);
  const Header& h = nh.header;
  if (out_size != h.file_length()) throw Error(Status::internal, "output buffer has the wrong size");
  std::memcpy(out, nh.serialized.data(), nh.serialized.size());
  for_each_chunk(h.chunk_count(), options.threads, nh.keys.payload_key, [&](crypto::AesGcm& gcm, uint64_t i) {
    uint8_t* slot = out + h.chunk_file_offset(i);
    seal_chunk(gcm, h, i, in.data + h.chunk_plaintext_offset(i), slot, slot + h.chunk_plaintext_size(i));
  });
}

void encrypt_file(const std::string& src, const std::string& dst, ByteView key, const std::string& mode,
                  const EncryptOptions& options) {
  check_mode(mode);
  format::check_master_key(key);
  format::check_chunk_size(options.chunk_size);
  InputFile in(src);
  check_output_path(src, dst);
  format::NewHeader nh = format::make_header(key, in.size(), options.chunk_size, options.metadata);
  const Header& h = nh.header;
  const uint64_t stride = uint64_t{h.chunk_size} + kTagSize;
  const uint64_t per_batch = std::min(batch_chunks(h), h.chunk_count());
  SecureBuffer buf = SecureBuffer::allocate(checked_size(per_batch * stride));  // holds plaintext: wiped on release
  std::vector<struct iovec> iov(per_batch);

  AtomicOutputFile out(dst, 0666);
  out.write_all(nh.serialized.data(), nh.serialized.size());
  for (uint64_t first = 0; first < h.chunk_count(); first += per_batch) {
    const uint64_t count = std::min(per_batch, h.chunk_count() - first);
    // Each chunk's plaintext lands in its slot, leaving room for its tag: encryption is in place.
    for (uint64_t j = 0; j < count; ++j) iov[j] = {buf.data() + j * stride, h.chunk_plaintext_size(first + j)};
    in.readv_exact_at(iov.data(), static_cast<int>(count), h.chunk_plaintext_offset(first));
    for_each_chunk(count, options.threads, nh.keys.payload_key, [&](crypto::AesGcm& gcm, uint64_t j) {
      uint8_t* slot = buf.data() + j * stride;
      seal_chunk(gcm, h, first + j, slot, slot, slot + h.chunk_plaintext_size(first + j));
    });
    const uint64_t last = first + count - 1;
    out.write_all(buf.data(), checked_size((count - 1) * stride + h.chunk_plaintext_size(last) + kTagSize));
    if (options.progress) options.progress(h.chunk_plaintext_offset(last) + h.chunk_plaintext_size(last));
  }
  if (in.current_size() != h.plaintext_length) {
    throw Error(Status::io, "source file '" + src + "' changed size while it was being encrypted", 0, src);
  }
  out.commit();
}

namespace {

// Decrypts a file's payload batch by batch, handing each authenticated batch of plaintext to
// `out` (when given). Nothing reaches `out` before its chunks have authenticated.
void stream_decrypt(const InputFile& in, const Header& h, const format::FileKeys& keys, unsigned threads,
                    AtomicOutputFile* out, const Progress& progress) {
  const uint64_t stride = uint64_t{h.chunk_size} + kTagSize;
  const uint64_t per_batch = std::min(batch_chunks(h), h.chunk_count());
  SecureBuffer buf = SecureBuffer::allocate(checked_size(per_batch * stride));
  std::vector<struct iovec> iov(per_batch);
  FailedChunk failed;
  for (uint64_t first = 0; first < h.chunk_count(); first += per_batch) {
    const uint64_t count = std::min(per_batch, h.chunk_count() - first);
    const uint64_t last = first + count - 1;
    in.read_exact_at(buf.data(), checked_size((count - 1) * stride + h.chunk_plaintext_size(last) + kTagSize),
                     h.chunk_file_offset(first));
    for_each_chunk(count, threads, keys.payload_key, [&](crypto::AesGcm& gcm, uint64_t j) {
      uint8_t* slot = buf.data() + j * stride;
      if (!open_chunk(gcm, h, first + j, slot, slot, slot + h.chunk_plaintext_size(first + j))) failed.record(first + j);
    });
    if (failed.any()) failed.raise(h);
    if (out != nullptr) {
      for (uint64_t j = 0; j < count; ++j) iov[j] = {buf.data() + j * stride, h.chunk_plaintext_size(first + j)};
      out->writev_all(iov.data(), static_cast<int>(count));
    }
    if (progress) progress(h.chunk_plaintext_offset(last) + h.chunk_plaintext_size(last));
  }
}

}  // namespace

void decrypt_file(const std::string& src, const std::string& dst, ByteView key, const std::string& mode,
                  unsigned threads, const Progress& progress) {
  check_mode(mode);
  format::check_master_key(key);
  InputFile in(src);
  check_output_path(src, dst);
  const ParsedFileHeader parsed = read_file_header(in);
  const format::FileKeys keys = format::authenticate_header(parsed.header, parsed.raw.data(), key, in.size());
  AtomicOutputFile out(dst, 0600);  // decrypted weights are the secret: owner-only by default
  stream_decrypt(in, parsed.header, keys, threads, &out, progress);  // on failure the temp file goes, dst stays
  out.commit();
}

void verify_file(const std::string& path, ByteView key, const std::string& mode, unsigned threads,
                 const Progress& progress) {
  check_mode(mode);
  format::check_master_key(key);
  InputFile in(path);
  const ParsedFileHeader parsed = read_file_header(in);
  const format::FileKeys keys = format::authenticate_header(parsed.header, parsed.raw.data(), key, in.size());
  stream_decrypt(in, parsed.header, keys, threads, nullptr, progress);
}

bool is_encrypted(const std::string& path) {
  InputFile in(path);
  uint8_t magic[sizeof format::kMagic];
  return in.read_at(magic, sizeof magic, 0) == sizeof magic && std::memcmp(magic, format::kMagic, sizeof magic) == 0;
}

FileInfo inspect_file(const std::string& path) {
  InputFile in(path);
  FileInfo info;
  info.header = read_file_header(in).header;
  info.file_length = in.size();
  return info;
}

}  // namespace modelcrypt
