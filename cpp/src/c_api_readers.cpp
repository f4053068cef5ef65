// The C ABI's parity entry points (modelcrypt.h, "Parity with the Python API"): thread counts,
// verification, random access, keyless inspection and key parsing, over the same core.
#include <cstdio>
#include <cstring>
#include <string>

#include "c_api_detail.hpp"
#include "signing_text.hpp"
#include "container.hpp"
#include "key_text.hpp"
#include "legacy.hpp"

namespace {

using namespace modelcrypt_core::c_api;

// JSON string literal of arbitrary bytes (unauthenticated header text): quotes, backslashes and
// control characters escaped, bytes >= 0x80 passed through (UTF-8).
std::string json_string(const uint8_t* data, size_t size) {
  std::string out = "\"";
  for (size_t i = 0; i < size; ++i) {
    const unsigned char c = data[i];
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", c);
      out += esc;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string hex(const uint8_t* data, size_t size) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < size; ++i) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 15];
  }
  return "\"" + out + "\"";
}

mc_buffer* text_buffer(const std::string& text) {
  modelcrypt_core::SecureBuffer bytes = modelcrypt_core::SecureBuffer::allocate(text.size());
  if (!text.empty()) std::memcpy(bytes.data(), text.data(), text.size());
  return wrap(std::move(bytes));
}

std::string inspect_json(const std::string& path) {
  const std::string fmt = modelcrypt_core::detect_file_format(path);
  if (fmt == "mindspore" || fmt == "paddlex") {
    const modelcrypt_core::legacy::FileDescription d = modelcrypt_core::legacy::describe_file(path);
    return "{\"format\":\"" + fmt + "\",\"cipher\":" +
           json_string(reinterpret_cast<const uint8_t*>(d.description.cipher.data()), d.description.cipher.size()) +
           ",\"frames\":" + std::to_string(d.description.frames) + ",\"plaintext_length\":" +
           (d.description.plaintext_length < 0 ? std::string("null") : std::to_string(d.description.plaintext_length)) +
           ",\"file_length\":" + std::to_string(d.file_length) + "}";
  }
  const modelcrypt_core::FileInfo info = modelcrypt_core::inspect_file(path);  // Error(format) for anything else
  const modelcrypt_core::format::Header& h = info.header;
  return "{\"format\":\"modelcrypt\",\"version\":" + std::to_string(h.version) + ",\"algorithm\":\"" +
         modelcrypt_core::format::algorithm_name(h.algorithm) + "\",\"chunk_size\":" + std::to_string(h.chunk_size) +
         ",\"plaintext_length\":" + std::to_string(h.plaintext_length) + ",\"chunk_count\":" +
         std::to_string(h.chunk_count()) + ",\"header_length\":" + std::to_string(h.header_length()) +
         ",\"file_length\":" + std::to_string(info.file_length) + ",\"expected_file_length\":" +
         std::to_string(h.file_length()) + ",\"salt\":" + hex(h.salt.data(), h.salt.size()) +
         ",\"key_commitment\":" + hex(h.commitment.data(), h.commitment.size()) + ",\"metadata\":" +
         json_string(h.metadata.data(), h.metadata.size()) + ",\"signer\":" +
         (info.has_signer ? "\"" + modelcrypt_core::signing_text::format_signer(info.signer) + "\"" : std::string("null")) + "}";
}

}  // namespace

extern "C" {

const char* mc_buffer_metadata(const mc_buffer* buffer) { return buffer ? buffer->metadata.c_str() : "{}"; }

mc_status mc_load_ex(const char* path, const uint8_t* key, size_t key_len, const char* mode, const char* format,
                     unsigned threads, mc_buffer** out) {
  if (out) *out = nullptr;
  return guarded([&] {
    require(out != nullptr, "out is NULL");
    require(path != nullptr, "path is NULL");
    *out = wrap(modelcrypt_core::load_file(path, key_view(key, key_len), mode_or_default(mode), format_or_default(format),
                                      threads));
  });
}

mc_status mc_decrypt_file_ex(const char* src, const char* dst, const uint8_t* key, size_t key_len, const char* mode,
                             const char* format, unsigned threads) {
  return guarded([&] {
    require(src != nullptr, "src is NULL");
    require(dst != nullptr, "dst is NULL");
    modelcrypt_core::decrypt_file(src, dst, key_view(key, key_len), mode_or_default(mode), format_or_default(format), threads);
  });
}

mc_status mc_verify_file(const char* path, const uint8_t* key, size_t key_len, const char* mode, const char* format,
                         unsigned threads) {
  return guarded([&] {
    require(path != nullptr, "path is NULL");
    modelcrypt_core::verify_file(path, key_view(key, key_len), mode_or_default(mode), format_or_default(format), threads);
  });
}

mc_status mc_load_range(const char* path, const uint8_t* key, size_t key_len, const char* mode, uint64_t offset,
                        uint64_t length, unsigned threads, mc_buffer** out) {
  if (out) *out = nullptr;
  return guarded([&] {
    require(out != nullptr, "out is NULL");
    require(path != nullptr, "path is NULL");
    *out = wrap(modelcrypt_core::load_range(path, key_view(key, key_len), mode_or_default(mode), offset, length, threads));
  });
}

mc_status mc_inspect(const char* path, mc_buffer** out) {
  if (out) *out = nullptr;
  return guarded([&] {
    require(out != nullptr, "out is NULL");
    require(path != nullptr, "path is NULL");
    *out = text_buffer(inspect_json(path));
  });
}

mc_status mc_key_from_text(const char* text, size_t text_len, mc_buffer** out) {
  if (out) *out = nullptr;
  return guarded([&] {
    require(out != nullptr, "out is NULL");
    require(text != nullptr, "text is NULL");
    *out = wrap(modelcrypt_core::key_text::parse({reinterpret_cast<const uint8_t*>(text), text_len}, false, "key text"));
  });
}

mc_status mc_key_from_file(const char* path, mc_buffer** out) {
  if (out) *out = nullptr;
  return guarded([&] {
    require(out != nullptr, "out is NULL");
    require(path != nullptr, "path is NULL");
    *out = wrap(modelcrypt_core::key_text::read_file(path));
  });
}

mc_status mc_key_from_env(const char* name, mc_buffer** out) {
  if (out) *out = nullptr;
  return guarded([&] {
    require(out != nullptr, "out is NULL");
    require(name != nullptr && *name, "name is NULL or empty");
    *out = wrap(modelcrypt_core::key_text::from_env(name));
  });
}

}  // extern "C"
