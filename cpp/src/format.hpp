// Container formats v1 and v2 (docs/FORMAT.md): header layout, limits, key schedule, chunk geometry.
// Version 2 adds the recipients block (recipients.hpp) after the v1-shaped core header.
// Pure functions over bytes; no I/O here.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "credential.hpp"
#include "crypto.hpp"
#include "recipients.hpp"

namespace modelcrypt_core::format {

constexpr uint8_t kMagic[8] = {0x89, 'M', 'C', 'R', 'Y', 'P', 'T', '\n'};
constexpr uint16_t kVersion = 1;   // symmetric key only
constexpr uint16_t kVersion2 = 2;  // recipients block
constexpr uint16_t kVersion3 = 3;  // recipients block + publisher signature trailer (signature.hpp)
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
constexpr size_t kRecipientsLengthSize = 4;
constexpr size_t kRecipientsMacSize = 32;
constexpr size_t kMaxHeaderSizeV2 = kMaxHeaderSize + kRecipientsLengthSize + recipients::kMaxBlockSize + kRecipientsMacSize;

const char* algorithm_name(uint16_t algorithm) noexcept;

// Derived per-file secrets (key schedule of FORMAT.md).
struct FileKeys {
  SecretBytes file_key;     // the key the schedule ran on: the master key (v1) or FK (v2)
  SecretBytes recipients_mac_key;  // v2 only: HMAC-SHA256 over the recipients block
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
  // Version 2: the recipients block as stored (R bytes, padding included), its stanzas and its MAC.
  std::vector<uint8_t> recipients_block;
  std::vector<recipients::Stanza> stanzas;
  std::array<uint8_t, kRecipientsMacSize> recipients_mac{};

  uint64_t core_length() const noexcept { return kFixedHeaderSize + metadata.size() + kHeaderMacSize; }
  bool has_recipients() const noexcept { return version >= kVersion2; }  // v2 and v3
  bool is_signed() const noexcept { return version == kVersion3; }
  uint64_t header_length() const noexcept {
    return has_recipients() ? core_length() + kRecipientsLengthSize + recipients_block.size() + kRecipientsMacSize
                            : core_length();
  }
  uint64_t chunk_count() const noexcept;
  // v3: the signature trailer follows the last chunk (0 bytes for v1 and v2).
  uint64_t trailer_offset() const noexcept;
  uint64_t trailer_length() const noexcept;
  uint64_t file_length() const noexcept;  // the exact length a valid file has
  size_t chunk_plaintext_size(uint64_t index) const noexcept;
  uint64_t chunk_plaintext_offset(uint64_t index) const noexcept { return index * chunk_size; }
  uint64_t chunk_file_offset(uint64_t index) const noexcept { return header_length() + index * (uint64_t{chunk_size} + kTagSize); }
};

// How many header bytes the file has, as far as the first `prefix_len` bytes tell (validating reader
// steps 1-4, and for v2 the recipients length of step 5, on them). A v1 header's length H is known
// from the first 96 bytes; a v2 header's only once its 4-byte recipients length (at 128+M) is read:
// then this returns 132+M first, and H when called again with that many bytes. A caller reads
// until the result equals what it holds (at most three reads, each byte read once).
// Throws Error(format | unsupported), e.g. when the file is shorter than the header.
uint64_t header_bytes_needed(const uint8_t* prefix, size_t prefix_len, uint64_t file_length);

// Parses a complete header (H bytes) without a key. Validates every field again on these bytes
// (reader steps 1-6) and that they are exactly H bytes long: Error(format | unsupported).
Header parse_header(const uint8_t* data, size_t header_length);

// Reader steps 6-8 (v1) / 7-11 (v2): the key or identity opens the file (KeyMismatch), header MAC and
// recipients MAC (AuthFailed), exact file length (AuthFailed). `raw` is the header's H bytes as stored.
FileKeys authenticate_header(const Header& header, const uint8_t* raw, const Credential& credential, uint64_t file_length);

// Version 2: the bytes [128+M, H) of a header (recipients length, block, recipients MAC) for these
// stanzas in a block of `block_size` bytes, MACed with `keys` over `header_mac`.
std::vector<uint8_t> recipients_section(const std::array<uint8_t, kHeaderMacSize>& header_mac,
                                        const std::vector<recipients::Stanza>& stanzas, uint32_t block_size,
                                        const FileKeys& keys);

// Builds a new header (fresh salt) for a writer and its keys; `serialized` receives its H bytes.
struct NewHeader {
  Header header;
  FileKeys keys;
  std::vector<uint8_t> serialized;
};
NewHeader make_header(ByteView master_key, uint64_t plaintext_length, uint32_t chunk_size, ByteView metadata);
// Version 2 for X25519 recipients (and a symmetric-key stanza when `master_key` is not empty): a
// fresh random file key FK, one stanza per recipient. No recipient and no key: Error(invalid_argument).
// `version` is kVersion2, or kVersion3 for a file that will be signed (same header, a trailer follows).
NewHeader make_header_v2(ByteView master_key, const std::vector<recipients::PublicKey>& x25519_recipients,
                         uint64_t plaintext_length, uint32_t chunk_size, ByteView metadata, uint16_t version = kVersion2);
// make_header without recipients, make_header_v2 with them; a signed file is always v3.
NewHeader make_writer_header(ByteView master_key, const std::vector<recipients::PublicKey>& x25519_recipients,
                             uint64_t plaintext_length, uint32_t chunk_size, ByteView metadata, bool is_signed = false);
// Writers' key check: a 16/24/32-byte key, or (with recipients) no key at all.
void check_writer_key(ByteView master_key, const std::vector<recipients::PublicKey>& x25519_recipients);

// GCM nonce of chunk `index` (FORMAT.md: LE64(index) || 00 00 00 || last flag).
std::array<uint8_t, 12> chunk_nonce(uint64_t index, bool last) noexcept;

// Encrypted size for a plaintext of `plaintext_length` bytes; throws Error(invalid_argument) past limits.
// `recipients_block` is 0 for v1, else the block size R of the v2 header.
// `is_signed` adds the v3 signature trailer.
uint64_t encrypted_length(uint64_t plaintext_length, uint32_t chunk_size, size_t metadata_length, uint32_t recipients_block = 0,
                          bool is_signed = false);
// The block size R make_header_v2 picks for `x25519_count` X25519 stanzas (+1 symmetric if `with_key`).
uint32_t writer_block_size(size_t x25519_count, bool with_key);

}  // namespace modelcrypt_core::format
