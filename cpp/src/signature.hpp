// Format version 3 (docs/FORMAT.md, "Format version 3"): the publisher signature trailer. An Ed25519
// signature over SHA-256 of the core header and of the list of per-chunk SHA-256 hashes, so that
// readers check chunks in parallel with their decryption and random-access readers check only the
// chunks they read. Pure functions over bytes plus the signing key container; no I/O here.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "crypto.hpp"

namespace modelcrypt_core::signature {

constexpr uint16_t kAlgorithmEd25519Sha256 = 1;
constexpr size_t kPublicKeySize = crypto::kEd25519KeySize;
constexpr size_t kSignatureSize = crypto::kEd25519SignatureSize;
constexpr size_t kChunkHashSize = crypto::kSha256Size;
constexpr size_t kTrailerFixedSize = 4 + kPublicKeySize + kSignatureSize;  // 100
constexpr char kContext[] = "modelcrypt v3 signature";                     // 23 bytes, no terminator
constexpr size_t kMessageSize = sizeof kContext - 1 + 2 * crypto::kSha256Size;  // 87

using PublicKey = std::array<uint8_t, kPublicKeySize>;
using ChunkHash = std::array<uint8_t, kChunkHashSize>;

// An Ed25519 private key (its RFC 8032 seed) in wiping memory, with its public key.
class SigningKey {
 public:
  static SigningKey generate();
  static SigningKey from_seed(ByteView seed);  // 32 bytes, else Error(invalid_argument)
  const PublicKey& public_key() const noexcept { return public_; }
  ByteView seed() const noexcept { return {seed_.data(), seed_.size()}; }
  void sign(ByteView message, uint8_t signature[kSignatureSize]) const;

 private:
  SigningKey() = default;
  SecretBytes seed_;
  PublicKey public_{};
};

// Length of the trailer of a file with `chunk_count` chunks: 100 + 32 * n.
uint64_t trailer_length(uint64_t chunk_count) noexcept;

// The stored chunk as read: its ciphertext, then its tag.
void hash_chunk(crypto::Sha256& sha, const uint8_t* ciphertext, size_t length, const uint8_t* tag, ChunkHash& out);

// "modelcrypt v3 signature" || SHA-256(core header) || SHA-256(hash_0 || ... || hash_{n-1}).
std::array<uint8_t, kMessageSize> signed_message(ByteView core_header, const ChunkHash* hashes, uint64_t count);

// A writer's trailer for these chunk hashes.
std::vector<uint8_t> make_trailer(const SigningKey& key, ByteView core_header, const std::vector<ChunkHash>& hashes);

// The signer a trailer names (its first 36 bytes hold it); nothing about it is checked.
PublicKey claimed_signer(const uint8_t* trailer_fixed_part);

// A trailer whose signature verified under a trusted key: the signer and the chunk hashes (in our memory).
struct VerifiedTrailer {
  PublicKey signer{};
  std::vector<ChunkHash> hashes;
  void check_chunk(uint64_t index, const ChunkHash& actual) const;  // Error(signature) naming the chunk
  bool matches(uint64_t index, const ChunkHash& actual) const noexcept;
};

// Reader step S3 on the trailer's fixed 100 bytes (copied once into our memory): algorithm
// (Error(unsupported)), reserved (Error(format)), signer trusted (Error(signature)). Returns the signer.
// Readers run it before they allocate and read the 32 * n bytes of chunk hashes.
PublicKey check_trailer_head(const uint8_t* fixed_part, const std::vector<PublicKey>& trusted);

// Reader step S4: the signature of the trailer's fixed part (already through check_trailer_head) over the
// core header and these chunk hashes (in our memory). Moves the hashes into the result.
VerifiedTrailer verify_trailer_signature(const uint8_t* fixed_part, const PublicKey& signer, ByteView core_header,
                                         std::vector<ChunkHash> hashes);

// Steps S3-S4 on a whole trailer already copied once into our memory (`length` must be
// trailer_length(chunk_count)).
VerifiedTrailer verify_trailer(const uint8_t* trailer, size_t length, uint64_t chunk_count, ByteView core_header,
                               const std::vector<PublicKey>& trusted);

// Error(signature) for a caller who asked for a signature on a file of `version` 1 or 2.
[[noreturn]] void raise_not_signed(uint16_t version);
// Error(signature) for a chunk whose hash differs from its signed hash.
[[noreturn]] void raise_chunk_changed(uint64_t index, uint64_t count);

}  // namespace modelcrypt_core::signature
