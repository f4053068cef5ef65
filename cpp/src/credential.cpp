#include "credential.hpp"

#include <string>

#include "errors.hpp"
#include "format.hpp"

namespace modelcrypt_core {

Credential::Credential(ByteView symmetric_key) : secret_(symmetric_key.data, symmetric_key.data + symmetric_key.size) {}

Credential Credential::x25519_identity(ByteView private_key) {
  if (private_key.size != crypto::kX25519KeySize) {
    throw Error(Status::invalid_argument, "an X25519 identity is 32 bytes, got " + std::to_string(private_key.size));
  }
  Credential c;
  c.identity_ = true;
  c.secret_.assign(private_key.data, private_key.data + private_key.size);
  crypto::x25519_public_key(c.secret_.data(), c.public_.data());
  return c;
}

ByteView Credential::symmetric_key(const char* what) const {
  if (identity_) {
    throw Error(Status::invalid_argument, std::string(what) + " needs a symmetric key, not an X25519 identity");
  }
  return {secret_.data(), secret_.size()};
}

void check_credential(const Credential& credential) {
  if (!credential.is_identity()) format::check_master_key(credential.symmetric_key());
}

}  // namespace modelcrypt_core
