#include "format.hpp"

#include <cstring>

#include "errors.hpp"

namespace modelcrypt::format {
namespace {

uint16_t load_le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t load_le32(const uint8_t* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}
uint64_t load_le64(const uint8_t* p) { return uint64_t{load_le32(p)} | (uint64_t{load_le32(p + 4)} << 32); }
void store_le16(uint8_t* p, uint16_t v) { p[0] = uint8_t(v); p[1] = uint8_t(v >> 8); }
void store_le32(uint8_t* p, uint32_t v) { for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i)); }
void store_le64(uint8_t* p, uint64_t v) { for (int i = 0; i < 8; ++i) p[i] = uint8_t(v >> (8 * i)); }

constexpr char kInfoCommitment[] = "modelcrypt v1 key commitment";
constexpr char kInfoHeaderMac[] = "modelcrypt v1 header mac";
constexpr char kInfoPayload[] = "modelcrypt v1 payload AES-256-GCM";

ByteView info(const char* s) { return {reinterpret_cast<const uint8_t*>(s), std::strlen(s)}; }

uint64_t chunk_count_for(uint64_t length, uint32_t chunk_size) {
  return length == 0 ? 1 : (length + chunk_size - 1) / chunk_size;
}

[[noreturn]] void format_error(const std::string& what) { throw Error(Status::format, what); }

}  // namespace

const char* algorithm_name(uint16_t algorithm) noexcept {
  return algorithm == kAlgorithmAes256GcmHkdfSha256 ? "AES-256-GCM" : "unknown";
}

void check_master_key(ByteView master_key) {
  if (master_key.size != 16 && master_key.size != 24 && master_key.size != 32) {
    throw Error(Status::invalid_argument,
                "key must be 16, 24 or 32 bytes long, got " + std::to_string(master_key.size) + " bytes");
  }
}

void check_chunk_size(uint64_t chunk_size) {
  if (chunk_size < kMinChunkSize || chunk_size > kMaxChunkSize || chunk_size % kChunkSizeMultiple != 0) {
    throw Error(Status::invalid_argument, "chunk_size must be a multiple of 4096 between 4096 and 67108864 (64 MiB), got " +
                                              std::to_string(chunk_size));
  }
}

FileKeys derive_file_keys(ByteView master_key, const uint8_t salt[kSaltSize]) {
  check_master_key(master_key);
  const SecretBytes prk = crypto::hkdf_sha256_extract(master_key, ByteView{salt, kSaltSize});
  const ByteView prk_view{prk.data(), prk.size()};
  FileKeys keys;
  const SecretBytes commitment = crypto::hkdf_sha256_expand(prk_view, info(kInfoCommitment), kCommitmentSize);
  std::memcpy(keys.commitment.data(), commitment.data(), kCommitmentSize);
  keys.mac_key = crypto::hkdf_sha256_expand(prk_view, info(kInfoHeaderMac), 32);
  keys.payload_key = crypto::hkdf_sha256_expand(prk_view, info(kInfoPayload), 32);
  return keys;
}

uint64_t Header::chunk_count() const noexcept { return chunk_count_for(plaintext_length, chunk_size); }

uint64_t Header::file_length() const noexcept {
  return header_length() + plaintext_length + chunk_count() * kTagSize;
}

size_t Header::chunk_plaintext_size(uint64_t index) const noexcept {
  const uint64_t start = index * chunk_size;
  if (start >= plaintext_length) return 0;
  const uint64_t rest = plaintext_length - start;
  return static_cast<size_t>(rest < chunk_size ? rest : chunk_size);
}

uint64_t parse_header_length(const uint8_t* p, size_t n, uint64_t file_length) {
  if (n < sizeof kMagic || std::memcmp(p, kMagic, sizeof kMagic) != 0) {
    format_error("not a modelcrypt file (bad magic)");
  }
  if (n < kFixedHeaderSize) {
    format_error("truncated header: file has " + std::to_string(file_length) + " bytes, the fixed header alone needs 96");
  }
  const uint16_t version = load_le16(p + 8);
  if (version != kVersion) {
    throw Error(Status::unsupported, "unsupported format version " + std::to_string(version) + " (this build reads version 1)");
  }
  const uint16_t algorithm = load_le16(p + 10);
  if (algorithm != kAlgorithmAes256GcmHkdfSha256) {
    throw Error(Status::unsupported, "unsupported algorithm id " + std::to_string(algorithm) + " (this build knows 1 = AES-256-GCM)");
  }
  const uint32_t chunk_size = load_le32(p + 12);
  if (chunk_size < kMinChunkSize || chunk_size > kMaxChunkSize || chunk_size % kChunkSizeMultiple != 0) {
    format_error("invalid chunk size " + std::to_string(chunk_size) + " (must be a multiple of 4096 in 4096..67108864)");
  }
  const uint64_t plaintext_length = load_le64(p + 16);
  if (plaintext_length > kMaxPlaintextLength) {
    format_error("invalid plaintext length " + std::to_string(plaintext_length) + " (limit 2^48)");
  }
  if (chunk_count_for(plaintext_length, chunk_size) > kMaxChunkCount) {
    format_error("too many chunks (limit 2^32)");
  }
  const uint32_t metadata_length = load_le32(p + 24);
  if (metadata_length > kMaxMetadataSize) {
    format_error("invalid metadata length " + std::to_string(metadata_length) + " (limit 65536)");
  }
  if (load_le32(p + 28) != 0) format_error("reserved header field is not zero");
  const uint64_t header_length = kFixedHeaderSize + metadata_length + kHeaderMacSize;
  if (file_length < header_length) {
    format_error("truncated header: file has " + std::to_string(file_length) + " bytes, header needs " + std::to_string(header_length) + " bytes");
  }
  return header_length;
}

Header parse_header(const uint8_t* p, size_t header_length) {
  // Every field is validated here, on the very bytes parsed: a caller that validated an earlier
  // read of the same header (which may have changed since) gains nothing from that.
  if (header_length < kFixedHeaderSize || parse_header_length(p, kFixedHeaderSize, header_length) != header_length) {
    format_error("header length does not match its metadata length field");
  }
  Header h;
  h.version = load_le16(p + 8);
  h.algorithm = load_le16(p + 10);
  h.chunk_size = load_le32(p + 12);
  h.plaintext_length = load_le64(p + 16);
  const uint32_t metadata_length = load_le32(p + 24);
  std::memcpy(h.salt.data(), p + 32, kSaltSize);
  std::memcpy(h.commitment.data(), p + 64, kCommitmentSize);
  h.metadata.assign(p + kFixedHeaderSize, p + kFixedHeaderSize + metadata_length);
  std::memcpy(h.mac.data(), p + kFixedHeaderSize + metadata_length, kHeaderMacSize);
  return h;
}

FileKeys authenticate_header(const Header& header, const uint8_t* raw, ByteView master_key, uint64_t file_length) {
  FileKeys keys = derive_file_keys(master_key, header.salt.data());
  if (!crypto::equal_constant_time(keys.commitment.data(), header.commitment.data(), kCommitmentSize)) {
    throw Error(Status::key_mismatch, "wrong key: it does not match this file's key commitment (the file was encrypted with another key, or its salt or commitment bytes are corrupted)");
  }
  uint8_t mac[kHeaderMacSize];
  const size_t mac_offset = kFixedHeaderSize + header.metadata.size();
  crypto::hmac_sha256({keys.mac_key.data(), keys.mac_key.size()}, {raw, mac_offset}, mac);
  if (!crypto::equal_constant_time(mac, header.mac.data(), kHeaderMacSize)) {
    throw Error(Status::auth_failed, "header authentication failed: the header was modified");
  }
  const uint64_t expected = header.file_length();
  if (file_length != expected) {
    throw Error(Status::auth_failed, std::string(file_length < expected ? "truncated file" : "trailing data after the last chunk") +
                                         ": file has " + std::to_string(file_length) + " bytes, its authenticated header says " +
                                         std::to_string(expected) + " bytes");
  }
  return keys;
}

NewHeader make_header(ByteView master_key, uint64_t plaintext_length, uint32_t chunk_size, ByteView metadata) {
  check_master_key(master_key);
  check_chunk_size(chunk_size);
  if (metadata.size > kMaxMetadataSize) {
    throw Error(Status::invalid_argument, "metadata is " + std::to_string(metadata.size) + " bytes; the limit is 65536");
  }
  if (plaintext_length > kMaxPlaintextLength || chunk_count_for(plaintext_length, chunk_size) > kMaxChunkCount) {
    throw Error(Status::invalid_argument, "input too large for format v1 (limit 2^48 bytes and 2^32 chunks)");
  }
  NewHeader out;
  Header& h = out.header;
  h.chunk_size = chunk_size;
  h.plaintext_length = plaintext_length;
  crypto::random_bytes(h.salt.data(), kSaltSize);
  h.metadata.assign(metadata.data, metadata.data + metadata.size);
  out.keys = derive_file_keys(master_key, h.salt.data());
  h.commitment = out.keys.commitment;

  std::vector<uint8_t>& s = out.serialized;
  s.assign(h.header_length(), 0);
  std::memcpy(s.data(), kMagic, sizeof kMagic);
  store_le16(s.data() + 8, h.version);
  store_le16(s.data() + 10, h.algorithm);
  store_le32(s.data() + 12, h.chunk_size);
  store_le64(s.data() + 16, h.plaintext_length);
  store_le32(s.data() + 24, static_cast<uint32_t>(metadata.size));
  store_le32(s.data() + 28, 0);
  std::memcpy(s.data() + 32, h.salt.data(), kSaltSize);
  std::memcpy(s.data() + 64, h.commitment.data(), kCommitmentSize);
  if (metadata.size) std::memcpy(s.data() + kFixedHeaderSize, metadata.data, metadata.size);
  const size_t mac_offset = kFixedHeaderSize + metadata.size;
  crypto::hmac_sha256({out.keys.mac_key.data(), out.keys.mac_key.size()}, {s.data(), mac_offset}, h.mac.data());
  std::memcpy(s.data() + mac_offset, h.mac.data(), kHeaderMacSize);
  return out;
}

std::array<uint8_t, 12> chunk_nonce(uint64_t index, bool last) noexcept {
  std::array<uint8_t, 12> nonce{};
  store_le64(nonce.data(), index);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

uint64_t encrypted_length(uint64_t plaintext_length, uint32_t chunk_size, size_t metadata_length) {
  check_chunk_size(chunk_size);
  if (plaintext_length > kMaxPlaintextLength || metadata_length > kMaxMetadataSize) {
    throw Error(Status::invalid_argument, "input too large for format v1");
  }
  return kFixedHeaderSize + metadata_length + kHeaderMacSize + plaintext_length +
         chunk_count_for(plaintext_length, chunk_size) * kTagSize;
}

}  // namespace modelcrypt::format
