// The C ABI (cpp/include/modelcrypt/modelcrypt.h) over the core. Every entry point converts
// arguments, calls the core, and turns any exception into an mc_status plus thread-local detail text.
#include "modelcrypt/modelcrypt.h"

#include <openssl/crypto.h>

#include <new>
#include <string>

#include "c_api_detail.hpp"
#include "container.hpp"
#include "errors.hpp"

#ifndef MODELCRYPT_VERSION
#error "MODELCRYPT_VERSION must be defined by the build"
#endif

#if defined(_WIN32) && defined(__GNUC__)
thread_local std::string modelcrypt_core::c_api::t_last_error;  // see c_api_detail.hpp
#endif

namespace {
using namespace modelcrypt_core::c_api;
static_assert(static_cast<int>(Status::key_mismatch) == MC_KEY_MISMATCH, "status values must match");
static_assert(static_cast<int>(Status::internal) == MC_INTERNAL, "status values must match");
static_assert(static_cast<int>(Status::signature) == MC_SIGNATURE, "status values must match");
}  // namespace

extern "C" {

const char* mc_status_string(mc_status status) {
  if (static_cast<int>(status) < 0 || static_cast<int>(status) > MC_SIGNATURE) return "UNKNOWN";
  return modelcrypt_core::status_name(static_cast<Status>(status));
}

const char* mc_last_error(void) { return t_last_error.c_str(); }

const char* mc_version(void) { return MODELCRYPT_VERSION; }

const char* mc_openssl_version(void) { return modelcrypt_core::crypto::openssl_version(); }

mc_status mc_load_with_format(const char* path, const uint8_t* key, size_t key_len, const char* mode, const char* format,
                              mc_buffer** out) {
  if (out) *out = nullptr;
  return guarded([&] {
    require(out != nullptr, "out is NULL");
    require(path != nullptr, "path is NULL");
    *out = wrap(modelcrypt_core::load_file(path, key_view(key, key_len), mode_or_default(mode), format_or_default(format)));
  });
}

mc_status mc_load(const char* path, const uint8_t* key, size_t key_len, const char* mode, mc_buffer** out) {
  return mc_load_with_format(path, key, key_len, mode, nullptr, out);
}

mc_status mc_decrypt_memory_with_format(const void* data, size_t size, const uint8_t* key, size_t key_len,
                                        const char* mode, const char* format, mc_buffer** out) {
  if (out) *out = nullptr;
  return guarded([&] {
    require(out != nullptr, "out is NULL");
    require(data != nullptr || size == 0, "data is NULL");
    const modelcrypt_core::ByteView blob{static_cast<const uint8_t*>(data), size};
    *out = wrap(modelcrypt_core::decrypt_memory(blob, key_view(key, key_len), mode_or_default(mode), format_or_default(format)));
  });
}

mc_status mc_decrypt_memory(const void* data, size_t size, const uint8_t* key, size_t key_len, const char* mode,
                            mc_buffer** out) {
  return mc_decrypt_memory_with_format(data, size, key, key_len, mode, nullptr, out);
}

mc_status mc_encrypt_file(const char* src, const char* dst, const uint8_t* key, size_t key_len, const char* mode) {
  return guarded([&] {
    require(src != nullptr, "src is NULL");
    require(dst != nullptr, "dst is NULL");
    modelcrypt_core::encrypt_file(src, dst, key_view(key, key_len), mode_or_default(mode), modelcrypt_core::EncryptOptions{});
  });
}

mc_status mc_decrypt_file_with_format(const char* src, const char* dst, const uint8_t* key, size_t key_len,
                                      const char* mode, const char* format) {
  return guarded([&] {
    require(src != nullptr, "src is NULL");
    require(dst != nullptr, "dst is NULL");
    modelcrypt_core::decrypt_file(src, dst, key_view(key, key_len), mode_or_default(mode), format_or_default(format));
  });
}

mc_status mc_decrypt_file(const char* src, const char* dst, const uint8_t* key, size_t key_len, const char* mode) {
  return mc_decrypt_file_with_format(src, dst, key, key_len, mode, nullptr);
}

mc_status mc_encrypt_memory(const void* data, size_t size, const uint8_t* key, size_t key_len, const char* mode,
                            mc_buffer** out) {
  if (out) *out = nullptr;
  return guarded([&] {
    require(out != nullptr, "out is NULL");
    require(data != nullptr || size == 0, "data is NULL");
    static const uint8_t empty = 0;
    const modelcrypt_core::ByteView in{data ? static_cast<const uint8_t*>(data) : &empty, size};
    const modelcrypt_core::ByteView k = key_view(key, key_len);
    modelcrypt_core::check_mode(mode_or_default(mode));
    const modelcrypt_core::EncryptOptions options;
    const uint64_t n = modelcrypt_core::encrypted_length(size, options);
    if (n > SIZE_MAX) throw Error(Status::no_memory, "encrypted size does not fit in memory");
    modelcrypt_core::SecureBuffer bytes = modelcrypt_core::SecureBuffer::allocate(static_cast<size_t>(n));
    modelcrypt_core::encrypt_memory(in, k, mode_or_default(mode), options, bytes.data(), n);
    *out = wrap(std::move(bytes));
  });
}

const void* mc_buffer_data(const mc_buffer* buffer) { return buffer ? buffer->bytes.data() + buffer->offset : nullptr; }

size_t mc_buffer_size(const mc_buffer* buffer) { return buffer ? buffer->size : 0; }

const char* mc_buffer_format(const mc_buffer* buffer) { return buffer ? buffer->format : ""; }

const char* mc_buffer_insecure_reason(const mc_buffer* buffer) { return buffer ? buffer->insecure.c_str() : ""; }

void mc_buffer_free(mc_buffer* buffer) { delete buffer; }  // SecureBuffer wipes on release

void mc_wipe(void* data, size_t size) {
  if (data != nullptr && size != 0) OPENSSL_cleanse(data, size);
}

}  // extern "C"
