#include "recipients.hpp"

#include <cstring>
#include <optional>
#include <string>

#include "errors.hpp"
#include "format.hpp"

namespace modelcrypt_core::recipients {
namespace {

constexpr char kInfoX25519Wrap[] = "modelcrypt v2 x25519 wrap";
constexpr char kInfoSymmetricWrap[] = "modelcrypt v2 symmetric wrap";
constexpr char kFingerprintPrefix[] = "modelcrypt v2 x25519 fingerprint";
constexpr size_t kWrappedSize = kFileKeySize + crypto::kGcmTagSize;
constexpr uint8_t kZeroNonce[12] = {};

ByteView info(const char* s) { return {reinterpret_cast<const uint8_t*>(s), std::strlen(s)}; }

[[noreturn]] void format_error(const std::string& what) { throw Error(Status::format, "recipients block: " + what); }

uint16_t load_le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
void store_le16(uint8_t* p, uint16_t v) { p[0] = uint8_t(v); p[1] = uint8_t(v >> 8); }

void seal(ByteView wrap_key, ByteView file_key, const uint8_t file_salt[kSaltSize], uint8_t out[kWrappedSize]) {
  if (file_key.size != kFileKeySize) throw Error(Status::internal, "file key must be 32 bytes");
  crypto::AesGcm gcm(wrap_key);
  gcm.encrypt({kZeroNonce, sizeof kZeroNonce}, {file_salt, kSaltSize}, file_key.data, out, kFileKeySize, out + kFileKeySize);
}

std::optional<SecretBytes> open_wrapped(ByteView wrap_key, const uint8_t wrapped[kWrappedSize], const uint8_t file_salt[kSaltSize]) {
  crypto::AesGcm gcm(wrap_key);
  SecretBytes fk(kFileKeySize);
  if (!gcm.decrypt({kZeroNonce, sizeof kZeroNonce}, {file_salt, kSaltSize}, wrapped, fk.data(), kFileKeySize, wrapped + kFileKeySize)) {
    return std::nullopt;
  }
  return fk;
}

SecretBytes x25519_wrap_key(const uint8_t shared[32], const uint8_t ephemeral[32], const uint8_t recipient[32]) {
  uint8_t salt[64];
  std::memcpy(salt, ephemeral, 32);
  std::memcpy(salt + 32, recipient, 32);
  return crypto::hkdf_sha256({shared, 32}, {salt, sizeof salt}, info(kInfoX25519Wrap), 32);
}

SecretBytes symmetric_wrap_key(ByteView key, const uint8_t stanza_salt[32]) {
  format::check_master_key(key);
  return crypto::hkdf_sha256(key, {stanza_salt, 32}, info(kInfoSymmetricWrap), 32);
}

// FK from an X25519 stanza with this identity, or nothing (tag, or an all-zero shared secret).
std::optional<SecretBytes> open_x25519(const Stanza& s, const Credential& identity, const uint8_t file_salt[kSaltSize]) {
  const uint8_t* ephemeral = s.body.data() + kFingerprintSize;
  SecretBytes shared(32);
  if (!crypto::x25519_shared(identity.private_key().data, ephemeral, shared.data())) return std::nullopt;
  const SecretBytes wrap_key = x25519_wrap_key(shared.data(), ephemeral, identity.public_key().data());
  return open_wrapped({wrap_key.data(), wrap_key.size()}, s.body.data() + kFingerprintSize + 32, file_salt);
}

std::optional<SecretBytes> open_symmetric(const Stanza& s, ByteView key, const uint8_t file_salt[kSaltSize]) {
  const SecretBytes wrap_key = symmetric_wrap_key(key, s.body.data());
  return open_wrapped({wrap_key.data(), wrap_key.size()}, s.body.data() + 32, file_salt);
}

}  // namespace

Fingerprint Stanza::fingerprint() const {
  Fingerprint f{};
  if (type == kTypeX25519 && body.size() >= kFingerprintSize) std::memcpy(f.data(), body.data(), kFingerprintSize);
  return f;
}

Fingerprint fingerprint_of(const PublicKey& public_key) {
  uint8_t input[sizeof kFingerprintPrefix - 1 + 32];
  std::memcpy(input, kFingerprintPrefix, sizeof kFingerprintPrefix - 1);
  std::memcpy(input + sizeof kFingerprintPrefix - 1, public_key.data(), 32);
  uint8_t digest[crypto::kSha256Size];
  crypto::sha256({input, sizeof input}, digest);
  Fingerprint f{};
  std::memcpy(f.data(), digest, kFingerprintSize);
  return f;
}

std::vector<Stanza> parse_block(const uint8_t* p, size_t size) {
  if (size < kMinBlockSize || size > kMaxBlockSize) format_error("length " + std::to_string(size) + " is out of bounds (4..262144)");
  const size_t count = load_le16(p);
  if (count == 0 || count > kMaxStanzas) format_error("stanza count " + std::to_string(count) + " is out of bounds (1..1024)");
  if (load_le16(p + 2) != 0) format_error("reserved field is not zero");
  std::vector<Stanza> out;
  out.reserve(count);
  size_t at = 4;
  for (size_t i = 0; i < count; ++i) {
    if (size - at < 4) format_error("stanza " + std::to_string(i) + " runs past the end of the block");
    const uint8_t type = p[at];
    if (p[at + 1] != 0) format_error("stanza " + std::to_string(i) + " has a non-zero reserved byte");
    const size_t body = load_le16(p + at + 2);
    at += 4;
    if (size - at < body) format_error("stanza " + std::to_string(i) + " runs past the end of the block");
    if ((type == kTypeX25519 && body != kX25519BodySize) || (type == kTypeSymmetric && body != kSymmetricBodySize)) {
      format_error("stanza " + std::to_string(i) + " of type " + std::to_string(type) + " has a body of " + std::to_string(body) +
                   " bytes (X25519: 96, symmetric: 80)");
    }
    Stanza s;
    s.type = type;
    s.body.assign(p + at, p + at + body);
    out.push_back(std::move(s));
    at += body;
  }
  for (; at < size; ++at) {
    if (p[at] != 0) format_error("padding byte at offset " + std::to_string(at) + " of the block is not zero");
  }
  return out;
}

size_t used_size(const std::vector<Stanza>& stanzas) {
  size_t n = 4;
  for (const Stanza& s : stanzas) n += 4 + s.body.size();
  return n;
}

uint32_t block_size_with_room(size_t used) {
  const uint64_t size = 1024 * ((uint64_t{used} + 1023) / 1024) + 1024;
  return static_cast<uint32_t>(size > kMaxBlockSize ? (used <= kMaxBlockSize ? kMaxBlockSize : size) : size);
}

std::vector<uint8_t> serialize_block(const std::vector<Stanza>& stanzas, uint32_t block_size) {
  if (stanzas.empty()) throw Error(Status::invalid_argument, "a file needs at least one recipient");
  if (stanzas.size() > kMaxStanzas) {
    throw Error(Status::invalid_argument, std::to_string(stanzas.size()) + " recipients; a file holds at most 1024");
  }
  const size_t used = used_size(stanzas);
  if (used > kMaxBlockSize) throw Error(Status::invalid_argument, "the recipients do not fit in 262144 bytes");
  if (block_size < used || block_size > kMaxBlockSize) throw Error(Status::internal, "recipients block size out of range");
  std::vector<uint8_t> out(block_size, 0);
  store_le16(out.data(), static_cast<uint16_t>(stanzas.size()));
  size_t at = 4;
  for (const Stanza& s : stanzas) {
    out[at] = s.type;
    store_le16(out.data() + at + 2, static_cast<uint16_t>(s.body.size()));
    std::memcpy(out.data() + at + 4, s.body.data(), s.body.size());
    at += 4 + s.body.size();
  }
  return out;
}

Stanza wrap_x25519(ByteView file_key, const PublicKey& recipient, const uint8_t file_salt[kSaltSize]) {
  SecretBytes ephemeral_private(32);
  crypto::random_bytes(ephemeral_private.data(), ephemeral_private.size());
  uint8_t ephemeral[32];
  crypto::x25519_public_key(ephemeral_private.data(), ephemeral);
  SecretBytes shared(32);
  if (!crypto::x25519_shared(ephemeral_private.data(), recipient.data(), shared.data())) {
    throw Error(Status::invalid_argument, "recipient is not a usable X25519 public key (a low-order point)");
  }
  const SecretBytes wrap_key = x25519_wrap_key(shared.data(), ephemeral, recipient.data());
  Stanza s;
  s.type = kTypeX25519;
  s.body.resize(kX25519BodySize);
  const Fingerprint f = fingerprint_of(recipient);
  std::memcpy(s.body.data(), f.data(), kFingerprintSize);
  std::memcpy(s.body.data() + kFingerprintSize, ephemeral, 32);
  seal({wrap_key.data(), wrap_key.size()}, file_key, file_salt, s.body.data() + kFingerprintSize + 32);
  return s;
}

Stanza wrap_symmetric(ByteView file_key, ByteView key, const uint8_t file_salt[kSaltSize]) {
  Stanza s;
  s.type = kTypeSymmetric;
  s.body.resize(kSymmetricBodySize);
  crypto::random_bytes(s.body.data(), 32);
  const SecretBytes wrap_key = symmetric_wrap_key(key, s.body.data());
  seal({wrap_key.data(), wrap_key.size()}, file_key, file_salt, s.body.data() + 32);
  return s;
}

bool opens(const Stanza& s, const Credential& credential, const uint8_t file_salt[kSaltSize]) {
  if (credential.is_identity()) {
    return s.type == kTypeX25519 && s.fingerprint() == fingerprint_of(credential.public_key()) &&
           open_x25519(s, credential, file_salt).has_value();
  }
  return s.type == kTypeSymmetric && open_symmetric(s, credential.symmetric_key(), file_salt).has_value();
}

SecretBytes unwrap(const std::vector<Stanza>& stanzas, const Credential& credential, const uint8_t file_salt[kSaltSize]) {
  if (credential.is_identity()) {
    const Fingerprint mine = fingerprint_of(credential.public_key());
    bool matched = false;
    for (const Stanza& s : stanzas) {
      if (s.type != kTypeX25519 || s.fingerprint() != mine) continue;
      matched = true;
      if (auto fk = open_x25519(s, credential, file_salt)) return std::move(*fk);
    }
    if (!matched) {
      throw Error(Status::key_mismatch, "wrong identity: no stanza of this file matches this identity (the file is not "
                                        "encrypted to its recipient)");
    }
    throw Error(Status::auth_failed, "the recipient stanza for this identity does not unwrap: the header was modified");
  }
  const ByteView key = credential.symmetric_key();
  bool any = false;
  for (const Stanza& s : stanzas) {
    if (s.type != kTypeSymmetric) continue;
    any = true;
    if (auto fk = open_symmetric(s, key, file_salt)) return std::move(*fk);
  }
  if (!any) {
    throw Error(Status::key_mismatch, "wrong key: this file is encrypted to X25519 recipients only; open it with an identity");
  }
  throw Error(Status::key_mismatch, "wrong key: no symmetric-key stanza of this file opens with this key (or the stanza is corrupted)");
}

}  // namespace modelcrypt_core::recipients
