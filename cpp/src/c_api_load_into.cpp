// The C ABI's readers into the caller's memory (mc_load_into, mc_load_range_into; decrypt_into.hpp).
#include "c_api_detail.hpp"
#include "decrypt_into.hpp"

using namespace modelcrypt_core::c_api;

extern "C" {

mc_status mc_load_into(const char* path, const mc_key* key, const char* mode, unsigned threads, void* dst,
                       size_t capacity, size_t* written) {
  if (written) *written = 0;
  return guarded([&] {
    require(path != nullptr, "path is NULL");
    require(dst != nullptr || capacity == 0, "dst is NULL");
    const uint64_t n = modelcrypt_core::load_file_into(path, credential_of(key), mode_or_default(mode),
                                                  static_cast<uint8_t*>(dst), capacity, threads);
    if (written) *written = static_cast<size_t>(n);
  });
}

mc_status mc_load_range_into(const char* path, const mc_key* key, const char* mode, uint64_t offset,
                             uint64_t length, unsigned threads, void* dst, size_t capacity) {
  return guarded([&] {
    require(path != nullptr, "path is NULL");
    require(dst != nullptr || capacity == 0, "dst is NULL");
    modelcrypt_core::load_range_into(path, credential_of(key), mode_or_default(mode), offset, length,
                                static_cast<uint8_t*>(dst), capacity, threads);
  });
}

}  // extern "C"
