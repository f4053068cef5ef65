// modelcrypt — header-only C++17 wrapper over the C API (modelcrypt.h).
//
//   modelcrypt::Key key = modelcrypt::Key::FromHex(hex_from_somewhere);
//   modelcrypt::Buffer model = modelcrypt::Load("model.onnx.mcx", key, "AES-GCM");
//   session.LoadFromMemory(model.data(), model.size());   // plaintext never touched the disk
//
// Errors throw modelcrypt::Error (a std::runtime_error carrying the mc_status). Buffer and Key are
// move-only and wipe their bytes when destroyed. Thread safety is that of the C API.
#ifndef MODELCRYPT_HPP
#define MODELCRYPT_HPP

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "modelcrypt/modelcrypt.h"

namespace modelcrypt {

class Error : public std::runtime_error {
 public:
  Error(mc_status status, const std::string& message)
      : std::runtime_error(std::string(mc_status_string(status)) + ": " + message), status_(status) {}
  mc_status status() const noexcept { return status_; }

 private:
  mc_status status_;
};

namespace detail {
inline void check(mc_status status) {
  if (status != MC_OK) throw Error(status, mc_last_error());
}
[[noreturn]] inline void bad_key(const std::string& why) { throw Error(MC_INVALID_ARGUMENT, why); }
}  // namespace detail

// A master key (16, 24 or 32 bytes). Wiped when destroyed.
class Key {
 public:
  static Key FromBytes(const void* data, std::size_t size) {
    Key k;
    const auto* p = static_cast<const std::uint8_t*>(data);
    k.bytes_.assign(p, p + size);
    k.validate();
    return k;
  }

  // Hex digits (either case); surrounding whitespace is ignored.
  // Key text, a key file or an environment variable, by the rules of the Python package and the
  // CLI (hex with optional 0x, base64, and for files raw bytes; see modelcrypt.h mc_key_from_*).
  static Key FromText(std::string_view text) {
    if (text.find("SECRET-KEY-1") != std::string_view::npos || text.find("secret-key-1") != std::string_view::npos) {
      mc_key* handle = nullptr;
      detail::check(mc_key_parse(text.data(), text.size(), &handle));
      return FromHandle(handle);
    }
    mc_buffer* out = nullptr;
    detail::check(mc_key_from_text(text.data(), text.size(), &out));
    return FromOwned(out);
  }
  // A key file, or an identity file (modelcrypt keygen --x25519, age-keygen): then the Key is an
  // X25519 identity, which opens format v2 files encrypted to its recipient.
  static Key FromFile(const std::string& path) {
    mc_key* handle = nullptr;
    detail::check(mc_key_read_file(path.c_str(), &handle));
    if (mc_key_is_identity(handle)) return FromHandle(handle);
    mc_key_free(handle);
    mc_buffer* out = nullptr;
    detail::check(mc_key_from_file(path.c_str(), &out));
    return FromOwned(out);
  }
  static Key FromEnv(const std::string& name = "MODELCRYPT_KEY") {
    mc_key* handle = nullptr;
    detail::check(mc_key_read_env(name.c_str(), &handle));
    if (mc_key_is_identity(handle)) return FromHandle(handle);
    mc_key_free(handle);
    mc_buffer* out = nullptr;
    detail::check(mc_key_from_env(name.c_str(), &out));
    return FromOwned(out);
  }

  static Key FromHex(std::string_view text) {
    text = trim(text);
    if (text.size() >= 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) text.remove_prefix(2);
    if (text.size() % 2 != 0) detail::bad_key("hex key has an odd number of digits");
    Key k;
    k.bytes_.reserve(text.size() / 2);
    for (std::size_t i = 0; i < text.size(); i += 2) {
      const int hi = hex_digit(text[i]), lo = hex_digit(text[i + 1]);
      if (hi < 0 || lo < 0) detail::bad_key("hex key contains a character that is not a hex digit");
      k.bytes_.push_back(static_cast<std::uint8_t>(hi << 4 | lo));
    }
    k.validate();
    return k;
  }

  // Standard base64 (RFC 4648, '+' '/', padding required); surrounding whitespace is ignored.
  static Key FromBase64(std::string_view text) {
    text = trim(text);
    if (text.size() % 4 != 0) detail::bad_key("base64 key length is not a multiple of 4");
    Key k;
    k.bytes_.reserve(text.size() / 4 * 3);  // no reallocation: no stray copies of key bytes
    std::uint32_t acc = 0;
    int bits = 0;
    std::size_t pad = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
      const char c = text[i];
      if (c == '=') {
        if (i + 2 < text.size() || ++pad > 2) detail::bad_key("base64 key has misplaced padding");
        continue;
      }
      if (pad) detail::bad_key("base64 key has data after padding");
      const int v = b64_digit(c);
      if (v < 0) detail::bad_key("base64 key contains a character outside the base64 alphabet");
      acc = (acc << 6) | static_cast<std::uint32_t>(v);
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        k.bytes_.push_back(static_cast<std::uint8_t>(acc >> bits));
        acc &= (1u << bits) - 1;
      }
    }
    acc = 0;
    k.validate();
    return k;
  }

  // A new random X25519 identity.
  static Key GenerateIdentity() {
    mc_key* handle = nullptr;
    detail::check(mc_key_generate_identity(&handle));
    return FromHandle(handle);
  }

  Key(Key&& other) noexcept : handle_(other.handle_), bytes_(std::move(other.bytes_)) {
    other.bytes_.clear();
    other.handle_ = nullptr;
  }
  Key& operator=(Key&& other) noexcept {
    if (this != &other) {
      wipe();
      mc_key_free(handle_);
      bytes_ = std::move(other.bytes_);
      handle_ = other.handle_;
      other.bytes_.clear();
      other.handle_ = nullptr;
    }
    return *this;
  }
  Key(const Key&) = delete;
  Key& operator=(const Key&) = delete;
  ~Key() {
    wipe();
    mc_key_free(handle_);
  }

  // Symmetric keys: the bytes. Identities: data() is NULL and size() 0 (the secret stays in the library).
  const std::uint8_t* data() const noexcept { return bytes_.data(); }
  std::size_t size() const noexcept { return bytes_.size(); }
  bool is_identity() const noexcept { return mc_key_is_identity(handle_) != 0; }
  // The library's key object (identities, and keys that require signers; NULL for a plain symmetric key).
  const mc_key* handle() const noexcept { return handle_; }

  // Publisher signatures (format v3): from now on every load with this key requires a valid
  // signature by one of the signers required ("modelcrypt-signer1..." or a PEM public key);
  // unsigned, otherwise signed or changed files throw Error(MC_SIGNATURE). Call once per signer.
  Key& RequireSigner(std::string_view signer) {
    if (handle_ == nullptr) {  // loads go through the library's key object; the bytes stay for encrypting
      detail::check(mc_key_new(bytes_.data(), bytes_.size(), &handle_));
    }
    detail::check(mc_key_require_signer(handle_, signer.data(), signer.size()));
    return *this;
  }
  // An identity's public recipient ("modelcrypt1..."); throws for a symmetric key.
  std::string Recipient() const {
    mc_buffer* out = nullptr;
    detail::check(mc_key_recipient(handle_, &out));
    std::string text(static_cast<const char*>(mc_buffer_data(out)), mc_buffer_size(out));
    mc_buffer_free(out);
    return text;
  }

 private:
  Key() = default;
  static Key FromHandle(mc_key* handle) {
    Key k;
    k.handle_ = handle;
    return k;
  }
  mc_key* handle_ = nullptr;
  static Key FromOwned(mc_buffer* owned) {  // copies the key out of a library buffer, which is then wiped
    Key k;
    const auto* p = static_cast<const std::uint8_t*>(mc_buffer_data(owned));
    try {
      k.bytes_.reserve(mc_buffer_size(owned));
      k.bytes_.assign(p, p + mc_buffer_size(owned));
    } catch (...) {
      mc_buffer_free(owned);
      throw;
    }
    mc_buffer_free(owned);
    k.validate();
    return k;
  }
  void wipe() noexcept { mc_wipe(bytes_.data(), bytes_.capacity()); }
  void validate() {
    if (bytes_.size() != 16 && bytes_.size() != 24 && bytes_.size() != 32) {
      const std::size_t n = bytes_.size();
      wipe();
      detail::bad_key("key must be 16, 24 or 32 bytes long, got " + std::to_string(n));
    }
  }
  static std::string_view trim(std::string_view s) {
    const char* ws = " \t\r\n";
    const std::size_t b = s.find_first_not_of(ws);
    if (b == std::string_view::npos) return {};
    return s.substr(b, s.find_last_not_of(ws) - b + 1);
  }
  static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  static int b64_digit(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  }
  std::vector<std::uint8_t> bytes_;
};

// Bytes owned by the library (decrypted model, or an encrypted image). Wiped when destroyed.
class Buffer {
 public:
  Buffer() noexcept = default;
  explicit Buffer(mc_buffer* owned) noexcept : buffer_(owned) {}
  Buffer(Buffer&& other) noexcept : buffer_(std::exchange(other.buffer_, nullptr)) {}
  Buffer& operator=(Buffer&& other) noexcept {
    if (this != &other) {
      mc_buffer_free(buffer_);
      buffer_ = std::exchange(other.buffer_, nullptr);
    }
    return *this;
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { mc_buffer_free(buffer_); }

  const std::uint8_t* data() const noexcept { return static_cast<const std::uint8_t*>(mc_buffer_data(buffer_)); }
  std::size_t size() const noexcept { return mc_buffer_size(buffer_); }
  const std::uint8_t* begin() const noexcept { return data(); }
  const std::uint8_t* end() const noexcept { return data() + size(); }
  bool empty() const noexcept { return size() == 0; }
  // The format decrypted ("modelcrypt", "mindspore", "paddlex", "paddle-cipher"; "" for encrypted images).
  std::string format() const { return mc_buffer_format(buffer_); }
  // Why that format is weak ("" for modelcrypt files): log it.
  std::string insecure_reason() const { return mc_buffer_insecure_reason(buffer_); }
  // The authenticated metadata as JSON text ("{}" when none).
  std::string metadata() const { return mc_buffer_metadata(buffer_); }

 private:
  mc_buffer* buffer_ = nullptr;
};

// Decrypts the file at `path` into memory (no temporary file). Throws Error. `format` is the
// caller's choice of accepted formats: "modelcrypt" (format v1 only, the default), or to read a
// legacy file "mindspore", "paddlex", "paddle-cipher" or "auto" (see modelcrypt.h).
// `threads`: 0 uses every core.
inline Buffer Load(const std::string& path, const Key& key, const std::string& mode = "AES-GCM",
                   const std::string& format = "modelcrypt", unsigned threads = 0) {
  mc_buffer* out = nullptr;
  if (key.handle() != nullptr) {
    detail::check(mc_load_with_key(path.c_str(), key.handle(), mode.c_str(), format.c_str(), threads, &out));
  } else {
    detail::check(mc_load_ex(path.c_str(), key.data(), key.size(), mode.c_str(), format.c_str(), threads, &out));
  }
  return Buffer(out);
}

// The caller's own I/O (an Android asset, a flash partition, a download library): returns how many
// bytes it read into `buf` at `offset` (fewer than `len` only at the end of the data); throw to fail.
using ReadAt = std::function<std::size_t(std::uint64_t offset, void* buf, std::size_t len)>;

// Load() through `read_at` instead of a path (modelcrypt files only): the encrypted data is `size`
// bytes long; every byte used is read once into the library's memory and authenticated there.
// `concurrent_reads`: read_at may be called from several threads at once (else calls are
// serialized; decryption stays parallel). An exception thrown by read_at is rethrown here.
inline Buffer Load(const ReadAt& read_at, std::uint64_t size, const Key& key, const std::string& mode = "AES-GCM",
                   unsigned threads = 0, bool concurrent_reads = false) {
  struct Context {
    const ReadAt* read_at;
    std::mutex mutex;
    std::exception_ptr error;
  } ctx{&read_at, {}, nullptr};
  mc_reader reader{};
  reader.struct_size = sizeof reader;
  reader.ctx = &ctx;
  reader.size = size;
  reader.concurrent_reads = concurrent_reads ? 1 : 0;
  reader.read_at = [](void* c, std::uint64_t offset, void* buf, std::size_t len, std::size_t* got) -> int {
    auto* context = static_cast<Context*>(c);
    try {  // no C++ exception crosses the C ABI: kept, and rethrown after the call
      *got = (*context->read_at)(offset, buf, len);
      return 0;
    } catch (...) {
      std::lock_guard<std::mutex> lock(context->mutex);
      if (!context->error) context->error = std::current_exception();
      return 1;
    }
  };
  mc_key* temporary = nullptr;
  const mc_key* handle = key.handle();
  if (handle == nullptr) {
    detail::check(mc_key_new(key.data(), key.size(), &temporary));
    handle = temporary;
  }
  mc_buffer* out = nullptr;
  const mc_status status = mc_load_from_reader(&reader, handle, mode.c_str(), threads, &out);
  const std::string message = status == MC_OK ? std::string() : std::string(mc_last_error());
  mc_key_free(temporary);
  if (ctx.error) {
    mc_buffer_free(out);
    std::rethrow_exception(ctx.error);
  }
  if (status != MC_OK) throw Error(status, message);
  return Buffer(out);
}

// Plaintext bytes [offset, offset + length) of a format v1 file: only the chunks covering them are decrypted.
inline Buffer LoadRange(const std::string& path, const Key& key, std::uint64_t offset, std::uint64_t length,
                        const std::string& mode = "AES-GCM", unsigned threads = 0) {
  mc_buffer* out = nullptr;
  if (key.handle() != nullptr) {
    detail::check(mc_load_range_with_key(path.c_str(), key.handle(), mode.c_str(), offset, length, threads, &out));
  } else {
    detail::check(mc_load_range(path.c_str(), key.data(), key.size(), mode.c_str(), offset, length, threads, &out));
  }
  return Buffer(out);
}

namespace detail {
// Runs fn(handle) with the key as an mc_key (a temporary one for a raw symmetric key, freed after).
template <class Fn>
inline void with_key_handle(const Key& key, Fn&& fn) {
  mc_key* temporary = nullptr;
  const mc_key* handle = key.handle();
  if (handle == nullptr) {
    check(mc_key_new(key.data(), key.size(), &temporary));
    handle = temporary;
  }
  const mc_status status = fn(handle);
  const std::string message = status == MC_OK ? std::string() : std::string(mc_last_error());
  mc_key_free(temporary);
  if (status != MC_OK) throw Error(status, message);
}
}  // namespace detail

// Decrypts the whole plaintext of a modelcrypt file into the caller's memory `dst` (`capacity`
// bytes; too small: Error(MC_INVALID_ARGUMENT) before any chunk is read) and returns the number of
// bytes written. Only authenticated plaintext ever reaches dst; on any error what was written is
// zeroed before Error is thrown (see mc_load_into).
inline std::size_t LoadInto(const std::string& path, const Key& key, void* dst, std::size_t capacity,
                            const std::string& mode = "AES-GCM", unsigned threads = 0) {
  std::size_t written = 0;
  detail::with_key_handle(key, [&](const mc_key* handle) {
    return mc_load_into(path.c_str(), handle, mode.c_str(), threads, dst, capacity, &written);
  });
  return written;
}

// Plaintext bytes [offset, offset + length) into dst[0, length) (capacity >= length), as LoadInto.
inline void LoadRangeInto(const std::string& path, const Key& key, std::uint64_t offset, std::uint64_t length, void* dst,
                     std::size_t capacity, const std::string& mode = "AES-GCM", unsigned threads = 0) {
  detail::with_key_handle(key, [&](const mc_key* handle) {
    return mc_load_range_into(path.c_str(), handle, mode.c_str(), offset, length, threads, dst, capacity);
  });
}

// Authenticates the whole file in bounded memory; throws Error unless every byte authenticates.
inline void Verify(const std::string& path, const Key& key, const std::string& mode = "AES-GCM",
                   const std::string& format = "modelcrypt", unsigned threads = 0) {
  if (key.handle() != nullptr) {
    detail::check(mc_verify_file_with_key(path.c_str(), key.handle(), mode.c_str(), format.c_str(), threads));
  } else {
    detail::check(mc_verify_file(path.c_str(), key.data(), key.size(), mode.c_str(), format.c_str(), threads));
  }
}

// Header fields without the key (unauthenticated), as JSON text (see mc_inspect).
inline std::string Inspect(const std::string& path) {
  mc_buffer* out = nullptr;
  detail::check(mc_inspect(path.c_str(), &out));
  Buffer json(out);
  return std::string(reinterpret_cast<const char*>(json.data()), json.size());
}

inline Buffer DecryptMemory(const void* data, std::size_t size, const Key& key, const std::string& mode = "AES-GCM",
                            const std::string& format = "modelcrypt") {
  mc_buffer* out = nullptr;
  if (key.handle() != nullptr) {
    detail::check(mc_decrypt_memory_with_key(data, size, key.handle(), mode.c_str(), format.c_str(), &out));
  } else {
    detail::check(mc_decrypt_memory_with_format(data, size, key.data(), key.size(), mode.c_str(), format.c_str(), &out));
  }
  return Buffer(out);
}

inline Buffer EncryptMemory(const void* data, std::size_t size, const Key& key, const std::string& mode = "AES-GCM") {
  mc_buffer* out = nullptr;
  detail::check(mc_encrypt_memory(data, size, key.data(), key.size(), mode.c_str(), &out));
  return Buffer(out);
}

inline void EncryptFile(const std::string& src, const std::string& dst, const Key& key, const std::string& mode = "AES-GCM") {
  detail::check(mc_encrypt_file(src.c_str(), dst.c_str(), key.data(), key.size(), mode.c_str()));
}

inline void DecryptFile(const std::string& src, const std::string& dst, const Key& key, const std::string& mode = "AES-GCM",
                        const std::string& format = "modelcrypt", unsigned threads = 0) {
  if (key.handle() != nullptr) {
    detail::check(mc_decrypt_file_with_key(src.c_str(), dst.c_str(), key.handle(), mode.c_str(), format.c_str(), threads));
  } else {
    detail::check(mc_decrypt_file_ex(src.c_str(), dst.c_str(), key.data(), key.size(), mode.c_str(), format.c_str(), threads));
  }
}

// Encrypts to X25519 recipients ("modelcrypt1..." / "age1..."), format v2; `key` (optional) adds a
// symmetric-key stanza, or for an identity its recipient.
inline void EncryptFileToRecipients(const std::string& src, const std::string& dst, const std::vector<std::string>& recipients,
                                    const Key* key = nullptr, const std::string& mode = "AES-GCM") {
  std::vector<const char*> texts;
  for (const std::string& r : recipients) texts.push_back(r.c_str());
  mc_key* symmetric = nullptr;
  if (key != nullptr && key->handle() == nullptr) detail::check(mc_key_new(key->data(), key->size(), &symmetric));
  const mc_status status = mc_encrypt_file_to_recipients(src.c_str(), dst.c_str(), texts.data(), texts.size(),
                                                         key == nullptr ? nullptr : key->handle() ? key->handle() : symmetric,
                                                         mode.c_str());
  mc_key_free(symmetric);
  detail::check(status);
}

// A publisher's Ed25519 signing key (format v3), held by the library in wiping memory.
class SigningKey {
 public:
  static SigningKey Generate() {
    SigningKey k;
    detail::check(mc_signing_key_generate(&k.handle_));
    return k;
  }
  // A signing key file (keygen --signing) or a PEM PKCS#8 Ed25519 private key file.
  static SigningKey FromFile(const std::string& path) {
    SigningKey k;
    detail::check(mc_signing_key_read_file(path.c_str(), &k.handle_));
    return k;
  }
  static SigningKey FromText(std::string_view text) {
    SigningKey k;
    detail::check(mc_signing_key_parse(text.data(), text.size(), &k.handle_));
    return k;
  }
  SigningKey(SigningKey&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  SigningKey& operator=(SigningKey&& other) noexcept {
    if (this != &other) {
      mc_signing_key_free(handle_);
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  SigningKey(const SigningKey&) = delete;
  SigningKey& operator=(const SigningKey&) = delete;
  ~SigningKey() { mc_signing_key_free(handle_); }
  // "modelcrypt-signer1...": what devices pass to Key::RequireSigner.
  std::string PublicKey() const {
    mc_buffer* out = nullptr;
    detail::check(mc_signing_key_public(handle_, &out));
    std::string text(static_cast<const char*>(mc_buffer_data(out)), mc_buffer_size(out));
    mc_buffer_free(out);
    return text;
  }
  const mc_signing_key* handle() const noexcept { return handle_; }

 private:
  SigningKey() = default;
  mc_signing_key* handle_ = nullptr;
};

// Encrypts and signs (format v3): to `recipients` and/or `key` (at least one).
inline void EncryptFileSigned(const std::string& src, const std::string& dst, const SigningKey& signer, const Key* key,
                              const std::vector<std::string>& recipients = {}, const std::string& mode = "AES-GCM") {
  std::vector<const char*> texts;
  for (const std::string& r : recipients) texts.push_back(r.c_str());
  mc_key* symmetric = nullptr;
  if (key != nullptr && key->handle() == nullptr) detail::check(mc_key_new(key->data(), key->size(), &symmetric));
  const mc_status status = mc_encrypt_file_signed(src.c_str(), dst.c_str(),
                                                  key == nullptr ? nullptr : key->handle() ? key->handle() : symmetric,
                                                  texts.data(), texts.size(), signer.handle(), mode.c_str());
  mc_key_free(symmetric);
  detail::check(status);
}

// Writer choices for EncryptFile (mc_encrypt_options).
struct EncryptOptions {
  std::vector<std::string> recipients;  // X25519 recipients (format v2); `key` may then be null
  const SigningKey* signer = nullptr;   // sign (format v3)
  std::uint32_t chunk_size = 0;         // 0: 1 MiB
  unsigned threads = 0;                 // 0: every core
  std::string metadata;                 // public, authenticated JSON object of strings ("" for none)
  bool fsync = true;                    // flush to the device before dst appears
  std::string mode = "AES-GCM";
};

// File -> file encryption with every writer choice: to `key` (may be null with recipients) and
// options.recipients, signed by options.signer.
inline void EncryptFile(const std::string& src, const std::string& dst, const Key* key, const EncryptOptions& options) {
  std::vector<const char*> texts;
  for (const std::string& r : options.recipients) texts.push_back(r.c_str());
  mc_key* symmetric = nullptr;
  if (key != nullptr && key->handle() == nullptr) detail::check(mc_key_new(key->data(), key->size(), &symmetric));
  mc_encrypt_options o{};
  o.struct_size = sizeof o;
  o.chunk_size = options.chunk_size;
  o.threads = options.threads;
  o.metadata = reinterpret_cast<const std::uint8_t*>(options.metadata.data());
  o.metadata_len = options.metadata.size();
  o.no_fsync = options.fsync ? 0 : 1;
  const mc_status status = mc_encrypt_file_ex(src.c_str(), dst.c_str(),
                                              key == nullptr ? nullptr : key->handle() ? key->handle() : symmetric,
                                              texts.data(), texts.size(), options.signer ? options.signer->handle() : nullptr,
                                              options.mode.c_str(), &o);
  mc_key_free(symmetric);
  detail::check(status);
}

// Keyless check of a file's publisher signature against trusted signers; returns the signer.
inline std::string VerifySignature(const std::string& path, const std::vector<std::string>& trusted, unsigned threads = 0) {
  std::vector<const char*> texts;
  for (const std::string& t : trusted) texts.push_back(t.c_str());
  mc_buffer* out = nullptr;
  detail::check(mc_verify_signature(path.c_str(), texts.data(), texts.size(), threads, &out));
  Buffer signer(out);
  return std::string(reinterpret_cast<const char*>(signer.data()), signer.size());
}

inline std::string Version() { return mc_version(); }

// Version text of the OpenSSL linked into libmodelcrypt, e.g. "OpenSSL 3.0.17 1 Jul 2025".
inline std::string OpenSSLVersion() { return mc_openssl_version(); }

}  // namespace modelcrypt

#endif  // MODELCRYPT_HPP
