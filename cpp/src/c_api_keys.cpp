// The C ABI's opaque key object (mc_key: a symmetric key or an X25519 identity), the readers that
// take one, encryption to recipients and recipients editing.
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "c_api_detail.hpp"
#include "credential.hpp"
#include "file_io.hpp"
#include "key_text.hpp"
#include "recipient_text.hpp"
#include "recipients_edit.hpp"
#include "signature.hpp"



using namespace modelcrypt_core::c_api;
using modelcrypt_core::ByteView;
using modelcrypt_core::Credential;

namespace {

// A key file's or environment text's content: an identity when it holds one, else a symmetric key.
mc_key* key_from_content(ByteView content, bool allow_raw, const std::string& source) {
  if (modelcrypt_core::recipient_text::holds_identity(content)) {
    const modelcrypt_core::SecretBytes secret = modelcrypt_core::recipient_text::parse_identity(content, source);
    return new mc_key{Credential::x25519_identity({secret.data(), secret.size()})};
  }
  const modelcrypt_core::SecureBuffer key = modelcrypt_core::key_text::parse(content, allow_raw, source);
  return new mc_key{Credential(ByteView{key.data(), key.size()})};
}

std::vector<modelcrypt_core::recipients::PublicKey> recipients_of(const char* const* recipients, size_t count) {
  require(recipients != nullptr || count == 0, "recipients is NULL");
  std::vector<modelcrypt_core::recipients::PublicKey> out;
  for (size_t i = 0; i < count; ++i) {
    require(recipients[i] != nullptr, "a recipient is NULL");
    out.push_back(modelcrypt_core::recipient_text::parse_recipient(recipients[i]));
  }
  return out;
}

}  // namespace

extern "C" {

mc_status mc_key_new(const uint8_t* key, size_t key_len, mc_key** out) {
  if (out) *out = nullptr;
  return guarded([&] {
    require(out != nullptr, "out is NULL");
    const ByteView k = key_view(key, key_len);
    modelcrypt_core::format::check_master_key(k);
    *out = new mc_key{Credential(k)};
  });
}

mc_status mc_key_generate_identity(mc_key** out) {
  if (out) *out = nullptr;
  return guarded([&] {
    require(out != nullptr, "out is NULL");
    modelcrypt_core::SecretBytes secret(32);
    modelcrypt_core::crypto::random_bytes(secret.data(), secret.size());
    *out = new mc_key{Credential::x25519_identity({secret.data(), secret.size()})};
  });
}

mc_status mc_key_parse(const char* text, size_t text_len, mc_key** out) {
  if (out) *out = nullptr;
  return guarded([&] {
    require(out != nullptr, "out is NULL");
    require(text != nullptr || text_len == 0, "text is NULL");
    *out = key_from_content({reinterpret_cast<const uint8_t*>(text), text_len}, false, "key text");
  });
}

mc_status mc_key_read_file(const char* path, mc_key** out) {
  if (out) *out = nullptr;
  return guarded([&] {
    require(out != nullptr, "out is NULL");
    require(path != nullptr, "path is NULL");
    modelcrypt_core::InputFile in(path);
    require(in.size() <= 65536, "key or identity file is larger than 64 KiB");
    modelcrypt_core::SecureBuffer content = modelcrypt_core::SecureBuffer::allocate(static_cast<size_t>(in.size()));
    in.read_exact_at(content.data(), content.size(), 0);
    *out = key_from_content({content.data(), content.size()}, true, std::string("key file '") + path + "'");
  });
}

mc_status mc_key_read_env(const char* name, mc_key** out) {
  if (out) *out = nullptr;
  return guarded([&] {
    require(out != nullptr, "out is NULL");
    require(name != nullptr, "name is NULL");
    const char* value = std::getenv(name);
    require(value != nullptr && *value != '\0', "environment variable is not set or empty");
    *out = key_from_content({reinterpret_cast<const uint8_t*>(value), std::strlen(value)}, false,
                            std::string("environment variable ") + name);
  });
}

int mc_key_is_identity(const mc_key* key) { return key != nullptr && key->credential.is_identity() ? 1 : 0; }

mc_status mc_key_recipient(const mc_key* key, mc_buffer** out) {
  if (out) *out = nullptr;
  return guarded([&] {
    require(out != nullptr, "out is NULL");
    const Credential& c = credential_of(key);
    require(c.is_identity(), "a symmetric key has no recipient");
    const std::string text = modelcrypt_core::recipient_text::format_recipient(c.public_key());
    modelcrypt_core::SecureBuffer b = modelcrypt_core::SecureBuffer::allocate(text.size());
    std::memcpy(b.data(), text.data(), text.size());
    *out = wrap(std::move(b));
  });
}

void mc_key_free(mc_key* key) { delete key; }

mc_status mc_load_with_key(const char* path, const mc_key* key, const char* mode, const char* format, unsigned threads,
                           mc_buffer** out) {
  if (out) *out = nullptr;
  return guarded([&] {
    require(out != nullptr, "out is NULL");
    require(path != nullptr, "path is NULL");
    *out = wrap(modelcrypt_core::load_file(path, credential_of(key), mode_or_default(mode), format_or_default(format), threads));
  });
}

namespace {

// The caller's mc_reader as a ByteSource: every call checked (count within the request), serialized
// unless the caller allows concurrent calls.
class ReaderSource final : public modelcrypt_core::ByteSource {
 public:
  explicit ReaderSource(const mc_reader& r) : reader_(r) {}
  uint64_t size() const noexcept override { return reader_.size; }
  const std::string& path() const noexcept override { return name_; }
  size_t read_at(void* buf, size_t n, uint64_t offset) const override {
    if (n == 0 || offset >= reader_.size) return 0;
    if (n > reader_.size - offset) n = static_cast<size_t>(reader_.size - offset);
    size_t done = 0;
    while (done < n) {
      size_t got = 0;
      int rc;
      if (reader_.concurrent_reads) {
        rc = reader_.read_at(reader_.ctx, offset + done, static_cast<uint8_t*>(buf) + done, n - done, &got);
      } else {
        std::lock_guard<std::mutex> lock(mutex_);
        rc = reader_.read_at(reader_.ctx, offset + done, static_cast<uint8_t*>(buf) + done, n - done, &got);
      }
      if (rc != 0) {
        throw Error(Status::io, "the reader callback failed (returned " + std::to_string(rc) + ") reading " +
                                    std::to_string(n - done) + " bytes at offset " + std::to_string(offset + done));
      }
      if (got > n - done) {
        throw Error(Status::io, "the reader callback reported " + std::to_string(got) + " bytes read where " +
                                    std::to_string(n - done) + " were asked for");
      }
      if (got == 0) break;  // the data ends here (earlier than mc_reader.size says: a short read)
      done += got;
    }
    return done;
  }

 private:
  mc_reader reader_;
  std::string name_ = "the mc_reader source";
  mutable std::mutex mutex_;
};

}  // namespace

mc_status mc_load_from_reader(const mc_reader* reader, const mc_key* key, const char* mode, unsigned threads,
                              mc_buffer** out) {
  if (out) *out = nullptr;
  return guarded([&] {
    require(out != nullptr, "out is NULL");
    require(reader != nullptr, "reader is NULL");
    require(reader->struct_size >= sizeof(mc_reader), "reader->struct_size is smaller than sizeof(mc_reader) "
                                                      "(zero-initialize the struct, then set struct_size)");
    require(reader->read_at != nullptr, "reader->read_at is NULL");
    const ReaderSource source(*reader);
    *out = wrap(modelcrypt_core::load_source(source, credential_of(key), mode_or_default(mode), threads));
  });
}

mc_status mc_decrypt_memory_with_key(const void* data, size_t size, const mc_key* key, const char* mode,
                                     const char* format, mc_buffer** out) {
  if (out) *out = nullptr;
  return guarded([&] {
    require(out != nullptr, "out is NULL");
    require(data != nullptr || size == 0, "data is NULL");
    *out = wrap(modelcrypt_core::decrypt_memory({static_cast<const uint8_t*>(data), size}, credential_of(key),
                                           mode_or_default(mode), format_or_default(format)));
  });
}

mc_status mc_verify_file_with_key(const char* path, const mc_key* key, const char* mode, const char* format,
                                  unsigned threads) {
  return guarded([&] {
    require(path != nullptr, "path is NULL");
    modelcrypt_core::verify_file(path, credential_of(key), mode_or_default(mode), format_or_default(format), threads);
  });
}

mc_status mc_load_range_with_key(const char* path, const mc_key* key, const char* mode, uint64_t offset,
                                 uint64_t length, unsigned threads, mc_buffer** out) {
  if (out) *out = nullptr;
  return guarded([&] {
    require(out != nullptr, "out is NULL");
    require(path != nullptr, "path is NULL");
    *out = wrap(modelcrypt_core::load_range(path, credential_of(key), mode_or_default(mode), offset, length, threads));
  });
}

namespace {

// The caller's writer options (NULL: the defaults), checked.
modelcrypt_core::EncryptOptions options_of(const mc_encrypt_options* given) {
  modelcrypt_core::EncryptOptions options;
  if (given == nullptr) return options;
  require(given->struct_size >= sizeof(mc_encrypt_options), "options->struct_size is not sizeof(mc_encrypt_options)");
  if (given->chunk_size != 0) options.chunk_size = given->chunk_size;
  options.threads = given->threads;
  require(given->metadata != nullptr || given->metadata_len == 0, "options->metadata is NULL");
  options.metadata = ByteView{given->metadata, given->metadata_len};
  options.durable = given->no_fsync == 0;
  return options;
}

// Encryption to recipients and/or a key object, signed when `signer` is given.
void encrypt_to(const char* src, const char* dst, const char* const* recipients, size_t count, const mc_key* key,
                const char* mode, std::shared_ptr<const modelcrypt_core::signature::SigningKey> signer,
                const mc_encrypt_options* given = nullptr) {
    require(src != nullptr && dst != nullptr, "src or dst is NULL");
    modelcrypt_core::EncryptOptions options = options_of(given);
    options.signing_key = std::move(signer);
    options.recipients = recipients_of(recipients, count);
    ByteView symmetric;
    if (key != nullptr) {
      if (key->credential.is_identity()) {
        options.recipients.push_back(key->credential.public_key());
      } else {
        symmetric = key->credential.symmetric_key();
      }
    }
    require(!options.recipients.empty() || symmetric.size != 0, "no recipient and no key");
    options.with_key = symmetric.size != 0;
    modelcrypt_core::encrypt_file(src, dst, symmetric, mode_or_default(mode), options);
}

}  // namespace

mc_status mc_encrypt_file_to_recipients(const char* src, const char* dst, const char* const* recipients, size_t count,
                                        const mc_key* key, const char* mode) {
  return guarded([&] { encrypt_to(src, dst, recipients, count, key, mode, nullptr); });
}

mc_status mc_encrypt_file_signed(const char* src, const char* dst, const mc_key* key, const char* const* recipients,
                                 size_t count, const mc_signing_key* signer, const char* mode) {
  return guarded([&] { encrypt_to(src, dst, recipients, count, key, mode, signing_key_of(signer)); });
}

mc_status mc_encrypt_file_ex(const char* src, const char* dst, const mc_key* key, const char* const* recipients,
                             size_t count, const mc_signing_key* signer, const char* mode,
                             const mc_encrypt_options* options) {
  return guarded([&] {
    encrypt_to(src, dst, recipients, count, key, mode, signer ? signing_key_of(signer) : nullptr, options);
  });
}

mc_status mc_decrypt_file_with_key(const char* src, const char* dst, const mc_key* key, const char* mode,
                                   const char* format, unsigned threads) {
  return guarded([&] {
    require(src != nullptr && dst != nullptr, "src or dst is NULL");
    modelcrypt_core::decrypt_file(src, dst, credential_of(key), mode_or_default(mode), format_or_default(format), threads);
  });
}

mc_status mc_recipients_edit(const char* path, const mc_key* key, const char* const* add, size_t add_count,
                             const char* const* remove, size_t remove_count) {
  return guarded([&] {
    require(path != nullptr, "path is NULL");
    modelcrypt_core::RecipientChanges changes;
    changes.add_x25519 = recipients_of(add, add_count);
    changes.remove_x25519 = recipients_of(remove, remove_count);
    modelcrypt_core::edit_recipients(path, credential_of(key), changes);
  });
}

}  // extern "C"
