// The recipients block of format v2 (docs/FORMAT.md, "Format version 2"): stanzas that wrap the
// per-file key FK for X25519 public keys and symmetric keys, their parsing (capped, validated),
// serialisation with room for later stanzas, and wrapping / unwrapping.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "credential.hpp"
#include "crypto.hpp"

namespace modelcrypt_core::recipients {

constexpr uint8_t kTypeX25519 = 1;
constexpr uint8_t kTypeSymmetric = 2;
constexpr size_t kX25519BodySize = 96;     // fingerprint 16 || ephemeral 32 || wrapped 48
constexpr size_t kSymmetricBodySize = 80;  // stanza salt 32 || wrapped 48
constexpr size_t kFingerprintSize = 16;
constexpr size_t kFileKeySize = 32;
constexpr uint32_t kMinBlockSize = 4;
constexpr uint32_t kMaxBlockSize = 262144;
constexpr size_t kMaxStanzas = 1024;
constexpr size_t kSaltSize = 32;  // the file's salt, the AAD of every wrap

using PublicKey = std::array<uint8_t, crypto::kX25519KeySize>;
using Fingerprint = std::array<uint8_t, kFingerprintSize>;

struct Stanza {
  uint8_t type = 0;
  std::vector<uint8_t> body;
  // For X25519 stanzas: the recipient fingerprint (body[0:16]).
  Fingerprint fingerprint() const;
};

Fingerprint fingerprint_of(const PublicKey& public_key);

// Parses a block of `size` bytes (4..262144): Error(format) for anything malformed.
std::vector<Stanza> parse_block(const uint8_t* data, size_t size);
// Bytes the stanzas need (count + reserved + every stanza).
size_t used_size(const std::vector<Stanza>& stanzas);
// The block size a writer picks for `used` bytes: 1024 * ceil(used / 1024) + 1024 (room).
uint32_t block_size_with_room(size_t used);
// The block of exactly `block_size` bytes (>= used_size; zero padding). 1..1024 stanzas.
std::vector<uint8_t> serialize_block(const std::vector<Stanza>& stanzas, uint32_t block_size);

// New stanzas wrapping `file_key` (32 bytes) for this file (`file_salt`). A low-order public key:
// Error(invalid_argument). A symmetric key must be 16, 24 or 32 bytes.
Stanza wrap_x25519(ByteView file_key, const PublicKey& recipient, const uint8_t file_salt[kSaltSize]);
Stanza wrap_symmetric(ByteView file_key, ByteView key, const uint8_t file_salt[kSaltSize]);

// FK from the stanza that `credential` opens (reader step 7): Error(key_mismatch) when no stanza is
// for it, Error(auth_failed) when the matching X25519 stanza does not unwrap.
SecretBytes unwrap(const std::vector<Stanza>& stanzas, const Credential& credential, const uint8_t file_salt[kSaltSize]);
// True when `credential` opens this stanza (for removing a symmetric key's stanza).
bool opens(const Stanza& stanza, const Credential& credential, const uint8_t file_salt[kSaltSize]);

}  // namespace modelcrypt_core::recipients
