// Container format v1 (docs/FORMAT.md): header layout, limits, key schedule, chunk geometry.
// Pure functions over bytes; no I/O here.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "crypto.hpp"

namespace modelcrypt::format {

constexpr uint8_t kMagic[8] = {0x89, 'M', 'C', 'R', 'Y', 'P', 'T', '\n'};
constexpr uint16_t kVersion = 1;
constexpr uint16_t kAlgorithmAes256GcmHkdfSha256 = 1;
constexpr size_t kFixedHeaderSize = 96;
constexpr size_t kSaltSize = 32;
constexpr size_t kCommitmentSize = 32;
constexpr size_t kHeaderMacSize = 32;
constexpr size_t kTagSize = crypto::kGcmTagSize;
constexpr uint32_t kMinChunkSize = 4096;
constexpr uint32_t kMaxChunkSize = 64u << 20;
constexpr uint32_t kChunkSizeMultiple = 4096;
constexpr uint32_t kDefaultChunkSize = 1u << 20;
constexpr uint32_t kMaxMetadataSize = 65536;
constexpr uint64_t kMaxPlaintextLength = uint64_t{1} << 48;
constexpr uint64_t kMaxChunkCount = uint64_t{1} << 32;
constexpr size_t kMaxHeaderSize = kFixedHeaderSize + kMaxMetadataSize + kHeaderMacSize;

const char* algorithm_name(uint16_t algorithm) noexcept;

// Derived per-file secrets (key schedule of FORMAT.md).
struct FileKeys {
  SecretBytes payload_key;  // 32 bytes, AES-256-GCM
  SecretBytes mac_key;      // 32 bytes, HMAC-SHA256 over the header
  std::array<uint8_t, kCommitmentSize> commitment{};
};
FileKeys derive_file_keys(ByteView master_key, const uint8_t salt[kSaltSize]);

// Checks a master key's length (16, 24 or 32 bytes); throws Error(invalid_argument).
void check_master_key(ByteView master_key);
// Checks a writer's chunk size against the limits; throws Error(invalid_argument).
void check_chunk_size(uint64_t chunk_size);

struct Header {
  uint16_t version = kVersion;
  uint16_t algorithm = kAlgorithmAes256GcmHkdfSha256;
  uint32_t chunk_size = kDefaultChunkSize;
  uint64_t plaintext_length = 0;
  std::array<uint8_t, kSaltSize> salt{};
  std::array<uint8_t, kCommitmentSize> commitment{};
  std::vector<uint8_t> metadata;
  std::array<uint8_t, kHeaderMacSize> mac{};

  uint64_t header_length() const noexcept { return kFixedHeaderSize + metadata.size() + kHeaderMacSize; }
  uint64_t chunk_count() const noexcept;
  uint64_t file_length() const noexcept;  // the exact length a valid file has
  size_t chunk_plaintext_size(uint64_t index) const noexcept;
  uint64_t chunk_plaintext_offset(uint64_t index) const noexcept { return index * chunk_size; }
  uint64_t chunk_file_offset(uint64_t index) const noexcept { return header_length() + index * (uint64_t{chunk_size} + kTagSize); }
};

// Size of the fixed header prefix plus metadata plus MAC, known from the first 96 bytes.
// Validates reader steps 1-4 of FORMAT.md on `prefix` (the file's first min(96, file_length) bytes).
// Returns the full header length H. Throws Error(format | unsupported).
uint64_t parse_header_length(const uint8_t* prefix, size_t prefix_len, uint64_t file_length);

// Parses a complete header (H bytes) without a key. Validates every field again on these bytes
// (reader steps 1-4) and that they are exactly H bytes long: Error(format | unsupported).
Header parse_header(const uint8_t* data, size_t header_length);

// Reader steps 6-8: key commitment (KeyMismatch), header MAC (AuthFailed), exact file length
// (AuthFailed). `raw` is the header's H bytes as stored.
FileKeys authenticate_header(const Header& header, const uint8_t* raw, ByteView master_key, uint64_t file_length);

// Builds a new header (fresh salt) for a writer and its keys; `serialized` receives its H bytes.
struct NewHeader {
  Header header;
  FileKeys keys;
  std::vector<uint8_t> serialized;
};
NewHeader make_header(ByteView master_key, uint64_t plaintext_length, uint32_t chunk_size, ByteView metadata);

// GCM nonce of chunk `index` (FORMAT.md: LE64(index) || 00 00 00 || last flag).
std::array<uint8_t, 12> chunk_nonce(uint64_t index, bool last) noexcept;

// Encrypted size for a plaintext of `plaintext_length` bytes; throws Error(invalid_argument) past limits.
uint64_t encrypted_length(uint64_t plaintext_length, uint32_t chunk_size, size_t metadata_length);

}  // namespace modelcrypt::format
