// Shared by the files of the C ABI (c_api.cpp, c_api_readers.cpp): the buffer type behind the
// opaque mc_buffer, argument checks, and the exception -> mc_status translation.
#pragma once
#include <memory>
#include <new>
#include <string>

#include "container.hpp"
#include "credential.hpp"
#include "errors.hpp"
#include "signature.hpp"
#include "modelcrypt/modelcrypt.h"

struct mc_buffer {
  modelcrypt_core::SecureBuffer bytes;  // owns (and wipes) everything decrypted
  size_t offset = 0;               // the caller's bytes: [offset, offset + size) of `bytes`
  size_t size = 0;                 // (legacy formats decrypt in place: headers and IVs surround them)
  const char* format = "";         // static: the format decrypted ("" for encrypted images)
  std::string insecure;            // why that format is weak ("" when it is not)
  std::string metadata = "{}";     // the authenticated metadata, JSON text
};

// The opaque key objects of the C ABI (c_api_keys.cpp, c_api_signing.cpp).
struct mc_key {
  modelcrypt_core::Credential credential;
};
struct mc_signing_key {
  std::shared_ptr<const modelcrypt_core::signature::SigningKey> key;
};

namespace modelcrypt_core::c_api {

using modelcrypt_core::Error;
using modelcrypt_core::Status;

#if defined(_WIN32) && defined(__GNUC__)
// MinGW's GCC defines an inline thread_local's TLS init function in every object (the DLL then fails
// to link with multiple definitions): there it is defined once, in c_api.cpp.
extern thread_local std::string t_last_error;
#else
inline thread_local std::string t_last_error;
#endif

inline mc_status fail(mc_status status, const std::string& message) {
  try {
    t_last_error = message;
  } catch (...) {
    t_last_error.clear();
  }
  return status;
}

// Runs `body`, mapping every exception to a status. Clears the thread's last error first.
template <class Body>
mc_status guarded(Body&& body) noexcept {
  t_last_error.clear();
  try {
    body();
    return MC_OK;
  } catch (const Error& e) {
    return fail(static_cast<mc_status>(e.status()), e.what());
  } catch (const std::bad_alloc&) {
    return fail(MC_NO_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return fail(MC_INTERNAL, e.what());
  } catch (...) {
    return fail(MC_INTERNAL, "unknown internal error");
  }
}

inline void require(bool condition, const char* message) {
  if (!condition) throw Error(Status::invalid_argument, message);
}

inline std::string mode_or_default(const char* mode) { return mode ? std::string(mode) : std::string("AES-GCM"); }

inline modelcrypt_core::ByteView key_view(const uint8_t* key, size_t key_len) {
  require(key != nullptr, "key is NULL");
  return {key, key_len};
}

inline const char* static_format_name(const std::string& name) {
  for (const char* known : {"modelcrypt", "mindspore", "paddlex", "paddle-cipher"}) {
    if (name == known) return known;
  }
  return "unknown";
}

inline mc_buffer* wrap(modelcrypt_core::SecureBuffer&& bytes) {
  mc_buffer* b = new mc_buffer;
  b->size = bytes.size();
  b->bytes = std::move(bytes);
  return b;
}

inline mc_buffer* wrap(modelcrypt_core::Decrypted&& d) {
  mc_buffer* b = new mc_buffer;
  b->offset = d.view_offset;
  b->size = d.view_length;
  if (!d.metadata.empty()) b->metadata.assign(d.metadata.begin(), d.metadata.end());
  b->bytes = std::move(d.plaintext);
  b->format = static_format_name(d.format);
  b->insecure = d.insecure;
  return b;
}

inline const modelcrypt_core::Credential& credential_of(const mc_key* key) {
  require(key != nullptr, "key is NULL");
  return key->credential;
}

inline const char* format_or_default(const char* format) { return format ? format : "modelcrypt"; }

inline std::shared_ptr<const modelcrypt_core::signature::SigningKey> signing_key_of(const mc_signing_key* signer) {
  require(signer != nullptr, "signing key is NULL");
  return signer->key;
}

}  // namespace modelcrypt_core::c_api
