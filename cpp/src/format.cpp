#include "format.hpp"

#include <cstring>

#include "errors.hpp"
#include "signature.hpp"

namespace modelcrypt_core::format {
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
  keys.file_key.assign(master_key.data, master_key.data + master_key.size);
  return keys;
}

uint64_t Header::chunk_count() const noexcept { return chunk_count_for(plaintext_length, chunk_size); }

uint64_t Header::trailer_offset() const noexcept {
  return header_length() + plaintext_length + chunk_count() * kTagSize;
}

uint64_t Header::trailer_length() const noexcept {
  return is_signed() ? signature::trailer_length(chunk_count()) : 0;
}

uint64_t Header::file_length() const noexcept { return trailer_offset() + trailer_length(); }

size_t Header::chunk_plaintext_size(uint64_t index) const noexcept {
  const uint64_t start = index * chunk_size;
  if (start >= plaintext_length) return 0;
  const uint64_t rest = plaintext_length - start;
  return static_cast<size_t>(rest < chunk_size ? rest : chunk_size);
}

namespace {

// Reader steps 1-4 on the fixed part; returns the core length 128 + M (the whole header for v1).
uint64_t check_fixed_part(const uint8_t* p, size_t n, uint64_t file_length) {
  if (n < sizeof kMagic || std::memcmp(p, kMagic, sizeof kMagic) != 0) {
    format_error("not a modelcrypt file (bad magic)");
  }
  if (n < kFixedHeaderSize) {
    format_error("truncated header: file has " + std::to_string(file_length) + " bytes, the fixed header alone needs 96");
  }
  const uint16_t version = load_le16(p + 8);
  if (version != kVersion && version != kVersion2 && version != kVersion3) {
    throw Error(Status::unsupported, "unsupported format version " + std::to_string(version) + " (this build reads versions 1, 2 and 3)");
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
  return kFixedHeaderSize + metadata_length + kHeaderMacSize;
}

void check_file_holds(uint64_t file_length, uint64_t needed) {
  if (file_length < needed) {
    format_error("truncated header: file has " + std::to_string(file_length) + " bytes, header needs " +
                 std::to_string(needed) + " bytes");
  }
}

}  // namespace

uint64_t header_bytes_needed(const uint8_t* p, size_t n, uint64_t file_length) {
  const uint64_t core = check_fixed_part(p, n, file_length);
  if (load_le16(p + 8) == kVersion) {
    check_file_holds(file_length, core);
    return core;
  }
  const uint64_t with_length = core + kRecipientsLengthSize;
  check_file_holds(file_length, with_length);
  if (n < with_length) return with_length;
  const uint32_t block = load_le32(p + core);
  if (block < recipients::kMinBlockSize || block > recipients::kMaxBlockSize) {
    format_error("invalid recipients length " + std::to_string(block) + " (must be 4..262144)");
  }
  const uint64_t header_length = with_length + block + kRecipientsMacSize;
  check_file_holds(file_length, header_length);
  return header_length;
}

Header parse_header(const uint8_t* p, size_t header_length) {
  // Every field is validated here, on the very bytes parsed: a caller that validated an earlier
  // read of the same header (which may have changed since) gains nothing from that.
  if (header_length < kFixedHeaderSize) format_error("header is shorter than its fixed part");
  const uint64_t core = check_fixed_part(p, kFixedHeaderSize, header_length);
  const uint16_t version = load_le16(p + 8);
  if (version != kVersion && header_length < core + kRecipientsLengthSize) {
    format_error("header length does not match its length fields");
  }
  if (header_bytes_needed(p, header_length, header_length) != header_length) {
    format_error("header length does not match its length fields");
  }
  Header h;
  h.version = version;
  h.algorithm = load_le16(p + 10);
  h.chunk_size = load_le32(p + 12);
  h.plaintext_length = load_le64(p + 16);
  const uint32_t metadata_length = load_le32(p + 24);
  std::memcpy(h.salt.data(), p + 32, kSaltSize);
  std::memcpy(h.commitment.data(), p + 64, kCommitmentSize);
  h.metadata.assign(p + kFixedHeaderSize, p + kFixedHeaderSize + metadata_length);
  std::memcpy(h.mac.data(), p + kFixedHeaderSize + metadata_length, kHeaderMacSize);
  if (version != kVersion) {  // v2 and v3
    const uint32_t block = load_le32(p + core);
    const uint8_t* b = p + core + kRecipientsLengthSize;
    h.stanzas = recipients::parse_block(b, block);  // reader step 6
    h.recipients_block.assign(b, b + block);
    std::memcpy(h.recipients_mac.data(), b + block, kRecipientsMacSize);
  }
  return h;
}

namespace {

constexpr char kInfoRecipientsMac[] = "modelcrypt v2 recipients mac";

void derive_recipients_mac_key(FileKeys& keys, const uint8_t salt[kSaltSize]) {
  const SecretBytes prk = crypto::hkdf_sha256_extract({keys.file_key.data(), keys.file_key.size()}, ByteView{salt, kSaltSize});
  keys.recipients_mac_key = crypto::hkdf_sha256_expand({prk.data(), prk.size()}, info(kInfoRecipientsMac), 32);
}

void recipients_mac(const FileKeys& keys, const uint8_t* section_with_header_mac, size_t len, uint8_t out[kRecipientsMacSize]) {
  crypto::hmac_sha256({keys.recipients_mac_key.data(), keys.recipients_mac_key.size()}, {section_with_header_mac, len}, out);
}

}  // namespace

FileKeys authenticate_header(const Header& header, const uint8_t* raw, const Credential& credential, uint64_t file_length) {
  FileKeys keys;
  if (header.has_recipients()) {
    const SecretBytes fk = recipients::unwrap(header.stanzas, credential, header.salt.data());  // step 7
    keys = derive_file_keys({fk.data(), fk.size()}, header.salt.data());
    if (!crypto::equal_constant_time(keys.commitment.data(), header.commitment.data(), kCommitmentSize)) {
      throw Error(Status::auth_failed, "header authentication failed: the recipient stanza unwraps to a key that is not this "
                                       "file's (a stanza from another file, or a modified header)");
    }
    derive_recipients_mac_key(keys, header.salt.data());
  } else {
    if (credential.is_identity()) {
      throw Error(Status::key_mismatch, "wrong key: this file is encrypted with a symmetric key (format v1), not to "
                                        "recipients; an identity cannot open it");
    }
    keys = derive_file_keys(credential.symmetric_key(), header.salt.data());
    if (!crypto::equal_constant_time(keys.commitment.data(), header.commitment.data(), kCommitmentSize)) {
      throw Error(Status::key_mismatch, "wrong key: it does not match this file's key commitment (the file was encrypted with another key, or its salt or commitment bytes are corrupted)");
    }
  }
  uint8_t mac[kHeaderMacSize];
  const size_t mac_offset = kFixedHeaderSize + header.metadata.size();
  crypto::hmac_sha256({keys.mac_key.data(), keys.mac_key.size()}, {raw, mac_offset}, mac);
  if (!crypto::equal_constant_time(mac, header.mac.data(), kHeaderMacSize)) {
    throw Error(Status::auth_failed, "header authentication failed: the header was modified");
  }
  if (header.has_recipients()) {
    uint8_t rmac[kRecipientsMacSize];
    const size_t covered = kHeaderMacSize + kRecipientsLengthSize + header.recipients_block.size();
    recipients_mac(keys, raw + mac_offset, covered, rmac);
    if (!crypto::equal_constant_time(rmac, header.recipients_mac.data(), kRecipientsMacSize)) {
      throw Error(Status::auth_failed, "header authentication failed: the recipients block was modified");
    }
  }
  const uint64_t expected = header.file_length();
  if (file_length != expected) {
    throw Error(Status::auth_failed, std::string(file_length < expected ? "truncated file" : "trailing data after the last chunk") +
                                         ": file has " + std::to_string(file_length) + " bytes, its authenticated header says " +
                                         std::to_string(expected) + " bytes");
  }
  return keys;
}

std::vector<uint8_t> recipients_section(const std::array<uint8_t, kHeaderMacSize>& header_mac,
                                        const std::vector<recipients::Stanza>& stanzas, uint32_t block_size,
                                        const FileKeys& keys) {
  const std::vector<uint8_t> block = recipients::serialize_block(stanzas, block_size);
  std::vector<uint8_t> covered(kHeaderMacSize + kRecipientsLengthSize);
  std::memcpy(covered.data(), header_mac.data(), kHeaderMacSize);
  store_le32(covered.data() + kHeaderMacSize, block_size);
  covered.insert(covered.end(), block.begin(), block.end());
  uint8_t mac[kRecipientsMacSize];
  recipients_mac(keys, covered.data(), covered.size(), mac);
  std::vector<uint8_t> out(covered.begin() + kHeaderMacSize, covered.end());
  out.insert(out.end(), mac, mac + kRecipientsMacSize);
  return out;
}

namespace {

void check_writer_limits(uint64_t plaintext_length, uint32_t chunk_size, ByteView metadata) {
  check_chunk_size(chunk_size);
  if (metadata.size > kMaxMetadataSize) {
    throw Error(Status::invalid_argument, "metadata is " + std::to_string(metadata.size) + " bytes; the limit is 65536");
  }
  if (plaintext_length > kMaxPlaintextLength || chunk_count_for(plaintext_length, chunk_size) > kMaxChunkCount) {
    throw Error(Status::invalid_argument, "input too large for the format (limit 2^48 bytes and 2^32 chunks)");
  }
}

// Fills `out` (keys already derived) with the core header: fields, commitment, metadata, header MAC.
void build_core(NewHeader& out, uint16_t version, uint64_t plaintext_length, uint32_t chunk_size, ByteView metadata) {
  Header& h = out.header;
  h.version = version;
  h.chunk_size = chunk_size;
  h.plaintext_length = plaintext_length;
  h.metadata.assign(metadata.data, metadata.data + metadata.size);
  h.commitment = out.keys.commitment;
  std::vector<uint8_t>& s = out.serialized;
  s.assign(h.core_length(), 0);
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
}

}  // namespace

NewHeader make_header(ByteView master_key, uint64_t plaintext_length, uint32_t chunk_size, ByteView metadata) {
  check_master_key(master_key);
  check_writer_limits(plaintext_length, chunk_size, metadata);
  NewHeader out;
  crypto::random_bytes(out.header.salt.data(), kSaltSize);
  out.keys = derive_file_keys(master_key, out.header.salt.data());
  build_core(out, kVersion, plaintext_length, chunk_size, metadata);
  return out;
}

void check_writer_key(ByteView master_key, const std::vector<recipients::PublicKey>& x25519_recipients) {
  if (x25519_recipients.empty() || master_key.size != 0) check_master_key(master_key);
  if (x25519_recipients.size() + (master_key.size ? 1 : 0) > recipients::kMaxStanzas) {
    throw Error(Status::invalid_argument, std::to_string(x25519_recipients.size()) + " recipients; a file holds at most 1024 stanzas");
  }
}

uint32_t writer_block_size(size_t x25519_count, bool with_key) {
  const size_t used = 4 + x25519_count * (4 + recipients::kX25519BodySize) + (with_key ? 4 + recipients::kSymmetricBodySize : 0);
  return recipients::block_size_with_room(used);
}

NewHeader make_header_v2(ByteView master_key, const std::vector<recipients::PublicKey>& x25519_recipients,
                         uint64_t plaintext_length, uint32_t chunk_size, ByteView metadata, uint16_t version) {
  check_writer_key(master_key, x25519_recipients);
  if (version != kVersion2 && version != kVersion3) throw Error(Status::internal, "make_header_v2: version 2 or 3");
  if (x25519_recipients.empty() && master_key.size == 0) throw Error(Status::invalid_argument, "no key and no recipient");
  check_writer_limits(plaintext_length, chunk_size, metadata);
  NewHeader out;
  crypto::random_bytes(out.header.salt.data(), kSaltSize);
  SecretBytes fk(recipients::kFileKeySize);
  crypto::random_bytes(fk.data(), fk.size());
  const ByteView fk_view{fk.data(), fk.size()};
  out.keys = derive_file_keys(fk_view, out.header.salt.data());
  derive_recipients_mac_key(out.keys, out.header.salt.data());
  std::vector<recipients::Stanza> stanzas;
  if (master_key.size) stanzas.push_back(recipients::wrap_symmetric(fk_view, master_key, out.header.salt.data()));
  for (const recipients::PublicKey& r : x25519_recipients) {
    stanzas.push_back(recipients::wrap_x25519(fk_view, r, out.header.salt.data()));
  }
  build_core(out, version, plaintext_length, chunk_size, metadata);
  const uint32_t block = writer_block_size(x25519_recipients.size(), master_key.size != 0);
  const std::vector<uint8_t> section = recipients_section(out.header.mac, stanzas, block, out.keys);
  out.serialized.insert(out.serialized.end(), section.begin(), section.end());
  out.header.recipients_block.assign(section.begin() + kRecipientsLengthSize, section.end() - kRecipientsMacSize);
  std::memcpy(out.header.recipients_mac.data(), section.data() + section.size() - kRecipientsMacSize, kRecipientsMacSize);
  out.header.stanzas = std::move(stanzas);
  return out;
}

NewHeader make_writer_header(ByteView master_key, const std::vector<recipients::PublicKey>& x25519_recipients,
                             uint64_t plaintext_length, uint32_t chunk_size, ByteView metadata, bool is_signed) {
  if (is_signed) return make_header_v2(master_key, x25519_recipients, plaintext_length, chunk_size, metadata, kVersion3);
  if (x25519_recipients.empty()) return make_header(master_key, plaintext_length, chunk_size, metadata);
  return make_header_v2(master_key, x25519_recipients, plaintext_length, chunk_size, metadata);
}

std::array<uint8_t, 12> chunk_nonce(uint64_t index, bool last) noexcept {
  std::array<uint8_t, 12> nonce{};
  store_le64(nonce.data(), index);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

uint64_t encrypted_length(uint64_t plaintext_length, uint32_t chunk_size, size_t metadata_length, uint32_t recipients_block,
                          bool is_signed) {
  check_chunk_size(chunk_size);
  if (plaintext_length > kMaxPlaintextLength || metadata_length > kMaxMetadataSize) {
    throw Error(Status::invalid_argument, "input too large for the format");
  }
  const uint64_t recipients = recipients_block ? kRecipientsLengthSize + recipients_block + kRecipientsMacSize : 0;
  const uint64_t chunks = chunk_count_for(plaintext_length, chunk_size);
  return kFixedHeaderSize + metadata_length + kHeaderMacSize + recipients + plaintext_length + chunks * kTagSize +
         (is_signed ? signature::trailer_length(chunks) : 0);
}

}  // namespace modelcrypt_core::format
