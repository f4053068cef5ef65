// The C ABI of publisher signatures (format v3): signing key objects, trusted signers on a key
// object, and keyless verification.
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "c_api_detail.hpp"
#include "file_io.hpp"
#include "signing_text.hpp"

using namespace modelcrypt_core::c_api;
using modelcrypt_core::ByteView;

namespace {

mc_signing_key* signing_key_from(ByteView content, const std::string& source) {
  const modelcrypt_core::SecretBytes seed = modelcrypt_core::signing_text::parse_signing_key(content, source);
  return new mc_signing_key{std::make_shared<const modelcrypt_core::signature::SigningKey>(
      modelcrypt_core::signature::SigningKey::from_seed({seed.data(), seed.size()}))};
}

modelcrypt_core::signature::PublicKey signer_from(const char* text, size_t len) {
  require(text != nullptr, "signer is NULL");
  return modelcrypt_core::signing_text::parse_signer({text, len});
}

}  // namespace

extern "C" {

mc_status mc_key_require_signer(mc_key* key, const char* signer, size_t signer_len) {
  return guarded([&] {
    require(key != nullptr, "key is NULL");
    std::vector<modelcrypt_core::Credential::SignerKey> signers = key->credential.trusted_signers();
    signers.push_back(signer_from(signer, signer_len));
    key->credential.require_signers(std::move(signers));
  });
}

mc_status mc_signing_key_generate(mc_signing_key** out) {
  if (out) *out = nullptr;
  return guarded([&] {
    require(out != nullptr, "out is NULL");
    *out = new mc_signing_key{std::make_shared<const modelcrypt_core::signature::SigningKey>(
        modelcrypt_core::signature::SigningKey::generate())};
  });
}

mc_status mc_signing_key_parse(const char* text, size_t text_len, mc_signing_key** out) {
  if (out) *out = nullptr;
  return guarded([&] {
    require(out != nullptr, "out is NULL");
    require(text != nullptr || text_len == 0, "text is NULL");
    *out = signing_key_from({reinterpret_cast<const uint8_t*>(text), text_len}, "signing key text");
  });
}

mc_status mc_signing_key_read_file(const char* path, mc_signing_key** out) {
  if (out) *out = nullptr;
  return guarded([&] {
    require(out != nullptr, "out is NULL");
    require(path != nullptr, "path is NULL");
    modelcrypt_core::InputFile in(path);
    require(in.size() <= 65536, "signing key file is larger than 64 KiB");
    modelcrypt_core::SecureBuffer content = modelcrypt_core::SecureBuffer::allocate(static_cast<size_t>(in.size()));
    in.read_exact_at(content.data(), content.size(), 0);
    *out = signing_key_from({content.data(), content.size()}, std::string("signing key file '") + path + "'");
  });
}

mc_status mc_signing_key_public(const mc_signing_key* key, mc_buffer** out) {
  if (out) *out = nullptr;
  return guarded([&] {
    require(out != nullptr, "out is NULL");
    const std::string text = modelcrypt_core::signing_text::format_signer(signing_key_of(key)->public_key());
    modelcrypt_core::SecureBuffer b = modelcrypt_core::SecureBuffer::allocate(text.size());
    std::memcpy(b.data(), text.data(), text.size());
    *out = wrap(std::move(b));
  });
}

void mc_signing_key_free(mc_signing_key* key) { delete key; }

mc_status mc_verify_signature(const char* path, const char* const* trusted, size_t count, unsigned threads,
                              mc_buffer** signer_out) {
  if (signer_out) *signer_out = nullptr;
  return guarded([&] {
    require(path != nullptr, "path is NULL");
    require(trusted != nullptr && count > 0, "no trusted signer given");
    std::vector<modelcrypt_core::signature::PublicKey> keys;
    for (size_t i = 0; i < count; ++i) {
      require(trusted[i] != nullptr, "a trusted signer is NULL");
      keys.push_back(signer_from(trusted[i], std::strlen(trusted[i])));
    }
    const modelcrypt_core::signature::PublicKey signer = modelcrypt_core::verify_signature_file(path, keys, threads);
    if (signer_out != nullptr) {
      const std::string text = modelcrypt_core::signing_text::format_signer(signer);
      modelcrypt_core::SecureBuffer b = modelcrypt_core::SecureBuffer::allocate(text.size());
      std::memcpy(b.data(), text.data(), text.size());
      *signer_out = wrap(std::move(b));
    }
  });
}

}  // extern "C"
