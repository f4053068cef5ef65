// The readers: loading, decrypting and verifying files, sources and memory (FORMAT.md "Reader
// algorithm"), and the opened-file operations random access builds on. The writers are in
// container_encrypt.cpp, the chunk machinery both use in chunk_pipeline.cpp.
#include "container.hpp"

#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>

#include <openssl/crypto.h>

#include "chunk_pipeline.hpp"
#include "container_detail.hpp"
#include "errors.hpp"
#include "file_io.hpp"
#include "legacy.hpp"
#include "parallel.hpp"

namespace modelcrypt_core {

using namespace chunks;  // NOLINT(google-build-using-namespace): the chunk machinery (chunk_pipeline.hpp)

namespace {

using format::Header;
using format::kTagSize;
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
}  // namespace

const std::vector<std::string>& supported_modes() { return legacy::fixed_mode_names(); }

void check_mode(const std::string& mode) {
  const legacy::Mode m = legacy::parse_mode(mode);  // unknown modes: the list of supported ones
  if (m.kind != legacy::Mode::Kind::aes_gcm) {
    throw Error(Status::invalid_argument, "mode '" + mode + "' is for reading legacy files (and writing MindSpore files "
                                          "with format='mindspore'); modelcrypt files use mode 'AES-GCM'");
  }
}

DebugCounters debug_counters() noexcept { return counters(); }

void reset_debug_counters() noexcept { reset_counters(); }

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
    IoVec iov[2] = {{slot, h.chunk_plaintext_size(i)}, {tag, kTagSize}};
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
        IoVec iov[2] = {{slot, n}, {tag, kTagSize}};
        in.readv_exact_at(iov, 2, h.chunk_file_offset(i));
        count_read(n + kTagSize);
        record(open_checked_chunk(w, h, trailer, i, slot, slot, tag), i, changed, failed);
        return;
      }
      SecureBuffer scratch = SecureBuffer::allocate(n);  // a cut chunk: only its wanted part leaves here
      IoVec iov[2] = {{scratch.data(), n}, {tag, kTagSize}};
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
  std::vector<IoVec> iov(per_batch);
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

}  // namespace modelcrypt_core
