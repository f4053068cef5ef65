#include "signature.hpp"

#include <algorithm>
#include <cstring>

#include "errors.hpp"
#include "signing_text.hpp"

namespace modelcrypt_core::signature {
namespace {

uint16_t load_le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }

}  // namespace

SigningKey SigningKey::generate() {
  SecretBytes seed(kPublicKeySize);
  crypto::random_bytes(seed.data(), seed.size());
  return from_seed({seed.data(), seed.size()});
}

SigningKey SigningKey::from_seed(ByteView seed) {
  if (seed.size != kPublicKeySize) {
    throw Error(Status::invalid_argument, "an Ed25519 signing key is 32 bytes, got " + std::to_string(seed.size));
  }
  SigningKey k;
  k.seed_.assign(seed.data, seed.data + seed.size);
  crypto::ed25519_public_key(k.seed_.data(), k.public_.data());
  return k;
}

void SigningKey::sign(ByteView message, uint8_t signature[kSignatureSize]) const {
  crypto::ed25519_sign(seed_.data(), message, signature);
}

uint64_t trailer_length(uint64_t chunk_count) noexcept { return kTrailerFixedSize + kChunkHashSize * chunk_count; }

void hash_chunk(crypto::Sha256& sha, const uint8_t* ciphertext, size_t length, const uint8_t* tag, ChunkHash& out) {
  sha.update(ciphertext, length);
  sha.update(tag, crypto::kGcmTagSize);
  sha.final(out.data());
}

std::array<uint8_t, kMessageSize> signed_message(ByteView core_header, const ChunkHash* hashes, uint64_t count) {
  std::array<uint8_t, kMessageSize> m{};
  const size_t context = sizeof kContext - 1;
  std::memcpy(m.data(), kContext, context);
  crypto::sha256(core_header, m.data() + context);
  crypto::Sha256 list;
  for (uint64_t i = 0; i < count; ++i) list.update(hashes[i].data(), kChunkHashSize);
  list.final(m.data() + context + crypto::kSha256Size);
  return m;
}

std::vector<uint8_t> make_trailer(const SigningKey& key, ByteView core_header, const std::vector<ChunkHash>& hashes) {
  std::vector<uint8_t> t(trailer_length(hashes.size()));
  t[0] = static_cast<uint8_t>(kAlgorithmEd25519Sha256 & 0xff);
  t[1] = static_cast<uint8_t>(kAlgorithmEd25519Sha256 >> 8);
  std::memcpy(t.data() + 4, key.public_key().data(), kPublicKeySize);
  const auto message = signed_message(core_header, hashes.data(), hashes.size());
  key.sign({message.data(), message.size()}, t.data() + 4 + kPublicKeySize);
  for (size_t i = 0; i < hashes.size(); ++i) {
    std::memcpy(t.data() + kTrailerFixedSize + i * kChunkHashSize, hashes[i].data(), kChunkHashSize);
  }
  return t;
}

PublicKey claimed_signer(const uint8_t* fixed) {
  PublicKey pk{};
  std::memcpy(pk.data(), fixed + 4, kPublicKeySize);
  return pk;
}

bool VerifiedTrailer::matches(uint64_t index, const ChunkHash& actual) const noexcept {
  return index < hashes.size() && crypto::equal_constant_time(hashes[index].data(), actual.data(), kChunkHashSize);
}

void VerifiedTrailer::check_chunk(uint64_t index, const ChunkHash& actual) const {
  if (!matches(index, actual)) raise_chunk_changed(index, hashes.size());
}

PublicKey check_trailer_head(const uint8_t* t, const std::vector<PublicKey>& trusted) {
  const uint16_t algorithm = load_le16(t);
  if (algorithm != kAlgorithmEd25519Sha256) {
    throw Error(Status::unsupported, "unsupported signature algorithm " + std::to_string(algorithm) +
                                         " (this build knows 1 = Ed25519 over SHA-256)");
  }
  if (load_le16(t + 2) != 0) throw Error(Status::format, "reserved field of the signature trailer is not zero");
  const PublicKey signer = claimed_signer(t);
  const bool trusted_signer = std::any_of(trusted.begin(), trusted.end(), [&](const PublicKey& k) {
    return std::memcmp(k.data(), signer.data(), kPublicKeySize) == 0;
  });
  if (!trusted_signer) {
    throw Error(Status::signature, "signed by an untrusted key (" + signing_text::format_signer(signer) +
                                       "), not by any of the " + std::to_string(trusted.size()) + " trusted signer(s)");
  }
  return signer;
}

VerifiedTrailer verify_trailer_signature(const uint8_t* t, const PublicKey& signer, ByteView core_header,
                                         std::vector<ChunkHash> hashes) {
  VerifiedTrailer out;
  out.signer = signer;
  out.hashes = std::move(hashes);
  const auto message = signed_message(core_header, out.hashes.data(), out.hashes.size());
  if (!crypto::ed25519_verify(out.signer.data(), {message.data(), message.size()}, t + 4 + kPublicKeySize)) {
    throw Error(Status::signature, "the publisher signature does not verify: the header or the chunk list was changed "
                                   "after signing (or the signature is corrupt)");
  }
  return out;
}

VerifiedTrailer verify_trailer(const uint8_t* t, size_t length, uint64_t chunk_count, ByteView core_header,
                               const std::vector<PublicKey>& trusted) {
  if (length != trailer_length(chunk_count)) throw Error(Status::internal, "signature trailer has the wrong length");
  const PublicKey signer = check_trailer_head(t, trusted);
  std::vector<ChunkHash> hashes(static_cast<size_t>(chunk_count));
  for (uint64_t i = 0; i < chunk_count; ++i) {
    std::memcpy(hashes[i].data(), t + kTrailerFixedSize + i * kChunkHashSize, kChunkHashSize);
  }
  return verify_trailer_signature(t, signer, core_header, std::move(hashes));
}

void raise_not_signed(uint16_t version) {
  throw Error(Status::signature, "the file is not signed (format v" + std::to_string(version) +
                                     "), but a signature from a trusted signer is required");
}

void raise_chunk_changed(uint64_t index, uint64_t count) {
  throw Error(Status::signature, "chunk " + std::to_string(index) + " of " + std::to_string(count) +
                                     " does not match its signed hash: the file was changed after it was signed");
}

}  // namespace modelcrypt_core::signature
