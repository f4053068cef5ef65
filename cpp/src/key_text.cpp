#include "key_text.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#ifndef _WIN32
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "errors.hpp"
#ifdef _WIN32
#include "file_io.hpp"
#endif

namespace modelcrypt_core::key_text {
namespace {

bool is_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }
bool is_hex(uint8_t c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_b64(uint8_t c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}
int hex_value(uint8_t c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; }

bool all_of(ByteView v, bool (*pred)(uint8_t)) {
  for (size_t i = 0; i < v.size; ++i)
    if (!pred(v.data[i])) return false;
  return v.size > 0;
}

bool key_length(size_t n) { return n == 16 || n == 24 || n == 32; }

[[noreturn]] void bad(const std::string& message) { throw Error(Status::invalid_argument, message); }

SecureBuffer copy_of(ByteView v) {
  SecureBuffer out = SecureBuffer::allocate(v.size);
  if (v.size) std::memcpy(out.data(), v.data, v.size);
  return out;
}

SecureBuffer from_hex(ByteView digits, const std::string& source) {
  if (digits.size != 32 && digits.size != 48 && digits.size != 64)
    bad(source + ": hex key of " + std::to_string(digits.size) + " digits; expected 32, 48 or 64");
  SecureBuffer out = SecureBuffer::allocate(digits.size / 2);
  for (size_t i = 0; i < out.size(); ++i)
    out.data()[i] = static_cast<uint8_t>(hex_value(digits.data[2 * i]) << 4 | hex_value(digits.data[2 * i + 1]));
  return out;
}

SecureBuffer from_base64(ByteView text, const std::string& source) {
  size_t pad = 0;
  while (pad < 2 && pad < text.size && text.data[text.size - 1 - pad] == '=') ++pad;
  const ByteView body{text.data, text.size - pad};
  if (!all_of(body, is_b64) || text.size % 4) bad(source + " is not valid base64");
  SecureBuffer out = SecureBuffer::allocate(text.size / 4 * 3);
  const int n = EVP_DecodeBlock(out.data(), text.data, static_cast<int>(text.size));  // counts padding as bytes
  if (n < 0 || static_cast<size_t>(n) < pad) bad(source + " is not valid base64");
  const size_t len = static_cast<size_t>(n) - pad;
  if (!key_length(len)) bad(source + " decodes to " + std::to_string(len) + " bytes; a key must be 16, 24 or 32 bytes");
  SecureBuffer key = SecureBuffer::allocate(len);
  std::memcpy(key.data(), out.data(), len);
  return key;  // `out` is wiped when it goes
}

// Text that could be (most of) a key: a run of 16 hex digits or 20 base64 characters. Such a file
// name or variable name (a key given where its name was expected) is never repeated in a message.
bool looks_like_key_text(const std::string& s) {
  size_t hex_run = 0, b64_run = 0;
  for (const unsigned char c : s) {
    hex_run = is_hex(c) ? hex_run + 1 : 0;
    b64_run = (is_b64(c) || c == '=') ? b64_run + 1 : 0;
    if (hex_run >= 16 || b64_run >= 20) return true;
  }
  return s.size() > 4096;
}

}  // namespace

SecureBuffer parse(ByteView content, bool allow_raw, const std::string& source) {
  size_t begin = 0, end = content.size;
  while (begin < end && is_space(content.data[begin])) ++begin;
  while (end > begin && is_space(content.data[end - 1])) --end;
  ByteView text{content.data + begin, end - begin};
  if (text.size > 2 && text.data[0] == '0' && (text.data[1] == 'x' || text.data[1] == 'X') &&
      all_of({text.data + 2, text.size - 2}, is_hex))
    return from_hex({text.data + 2, text.size - 2}, source);
  if (all_of(text, is_hex)) {
    if (allow_raw && text.size != 32 && text.size != 48 && text.size != 64 && (content.size == 16 || content.size == 24))
      return copy_of(content);  // exactly 16/24 hex-digit bytes: a raw ASCII key (no hex key has that many digits)
    if (!allow_raw && (text.size == 16 || text.size == 24))
      bad(source + ": hex key of " + std::to_string(text.size) + " digits; expected 32, 48 or 64 (a raw ASCII key "
          "such as MindSpore's can only come from a key file holding exactly its bytes)");
    return from_hex(text, source);
  }
  size_t pad = 0;
  while (pad < 2 && pad < text.size && text.data[text.size - 1 - pad] == '=') ++pad;
  if (text.size && text.size % 4 == 0 && all_of({text.data, text.size - pad}, is_b64)) return from_base64(text, source);
  if (allow_raw && key_length(content.size)) return copy_of(content);
  bad(source + " holds " + std::to_string(content.size) + " bytes that are neither a hex key (32/48/64 digits), a base64 key" +
      (allow_raw ? " nor a raw 16/24/32-byte key" : ""));
}

SecureBuffer read_file(const std::string& path) {
  const std::string source = looks_like_key_text(path)
      ? std::string("key file <path not shown: it looks like key text; give the PATH of a file holding the key>")
      : "key file " + path;
#ifdef _WIN32
  SecureBuffer content = SecureBuffer::allocate(1 << 16);
  size_t size = 0;
  try {
    size = InputFile(path).read_at(content.data(), content.size(), 0);
  } catch (const Error& e) {  // its message names the path, which may be key text: say `source`
    if (e.status() != Status::io) throw Error(e.status(), source + ": not a regular file, or a path that is not UTF-8");
    throw Error(Status::io, source + ": " + std::strerror(e.sys_errno() ? e.sys_errno() : EIO), e.sys_errno());
  }
#else
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    throw Error(Status::io, source + ": " + std::strerror(e), e);
  }
  SecureBuffer content = SecureBuffer::allocate(1 << 16);
  size_t size = 0;
  for (;;) {
    const ssize_t n = ::read(fd, content.data() + size, content.size() - size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      throw Error(Status::io, source + ": " + std::strerror(e), e);
    }
    if (n == 0 || (size += static_cast<size_t>(n)) == content.size()) break;
  }
  ::close(fd);
#endif
  return parse({content.data(), size}, true, source);
}

SecureBuffer from_env(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  const bool keylike = looks_like_key_text(name) || name.size() > 64 || name.find_first_not_of(
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") != std::string::npos;
  const std::string shown = keylike ? std::string("<a name of ") + std::to_string(name.size()) + " characters, not shown>" : name;
  const std::string hint = keylike ? " (the name looks like key text; give the NAME of a variable, such as MODELCRYPT_KEY)" : "";
  if (value == nullptr) bad("environment variable " + shown + " is not set" + hint);
  if (*value == '\0') bad("environment variable " + shown + " is empty");
  return parse({reinterpret_cast<const uint8_t*>(value), std::strlen(value)}, false, "environment variable " + shown);
}

}  // namespace modelcrypt_core::key_text
