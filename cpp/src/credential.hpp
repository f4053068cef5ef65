// What opens an encrypted file: a symmetric master key (format v1 files, and the symmetric-key
// stanzas of format v2) or an X25519 identity (the X25519 stanzas of format v2). Secrets are held
// in wiping memory. A ByteView converts implicitly to a symmetric credential, so every reader that
// took a key takes either.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "crypto.hpp"

namespace modelcrypt_core {

class Credential {
 public:
  Credential(ByteView symmetric_key);  // NOLINT(google-explicit-constructor): a key is a credential
  // A 32-byte X25519 private key; its public key is computed here.
  static Credential x25519_identity(ByteView private_key);

  bool is_identity() const noexcept { return identity_; }
  // The symmetric key. For an identity: Error(invalid_argument) naming `what` needs a symmetric key.
  ByteView symmetric_key(const char* what = "this operation") const;
  ByteView private_key() const noexcept { return {secret_.data(), secret_.size()}; }
  const std::array<uint8_t, crypto::kX25519KeySize>& public_key() const noexcept { return public_; }

  // Publisher signatures (format v3): when not empty, every file opened with this credential must
  // carry a valid signature by one of these Ed25519 public keys (Error(signature) otherwise).
  using SignerKey = std::array<uint8_t, crypto::kEd25519KeySize>;
  void require_signers(std::vector<SignerKey> signers) { trusted_signers_ = std::move(signers); }
  const std::vector<SignerKey>& trusted_signers() const noexcept { return trusted_signers_; }
  bool requires_signature() const noexcept { return !trusted_signers_.empty(); }

 private:
  Credential() = default;
  bool identity_ = false;
  SecretBytes secret_;
  std::array<uint8_t, crypto::kX25519KeySize> public_{};
  std::vector<SignerKey> trusted_signers_;
};

// Checks what the readers check before touching a file: a symmetric key's length (16, 24 or 32
// bytes; Error(invalid_argument)); identities are validated when made.
void check_credential(const Credential& credential);

}  // namespace modelcrypt_core
