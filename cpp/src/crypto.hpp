// Thin, typed layer over OpenSSL EVP: AES-GCM, HKDF-SHA256, HMAC-SHA256, random bytes and
// constant-time comparison. OpenSSL runs in a private library context that never reads openssl.cnf.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

// No OpenSSL header here: this file is included by the Python extension, which links OpenSSL only
// through libmodelcrypt.so and must not reference any OpenSSL symbol itself.

namespace modelcrypt_core {

namespace crypto {
// Overwrites memory with zeros in a way the compiler cannot elide (OPENSSL_cleanse).
void wipe(void* data, size_t size) noexcept;
}  // namespace crypto

// Allocator that wipes memory (crypto::wipe) before giving it back.
template <class T>
struct WipingAllocator {
  using value_type = T;
  WipingAllocator() noexcept = default;
  template <class U>
  WipingAllocator(const WipingAllocator<U>&) noexcept {}
  T* allocate(size_t n) { return std::allocator<T>{}.allocate(n); }
  void deallocate(T* p, size_t n) noexcept {
    crypto::wipe(p, n * sizeof(T));
    std::allocator<T>{}.deallocate(p, n);
  }
  template <class U>
  bool operator==(const WipingAllocator<U>&) const noexcept { return true; }
  template <class U>
  bool operator!=(const WipingAllocator<U>&) const noexcept { return false; }
};

// Keys and other small secrets.
using SecretBytes = std::vector<uint8_t, WipingAllocator<uint8_t>>;

struct ByteView {
  const uint8_t* data = nullptr;
  size_t size = 0;
};

namespace crypto {

constexpr size_t kGcmTagSize = 16;
constexpr size_t kSha256Size = 32;
constexpr size_t kMaxGcmIvSize = 128;  // OpenSSL's limit

// Initialises OpenSSL (without loading any configuration file) and the private library context.
// Called implicitly by every function below; cheap after the first call.
void ensure_initialized();

void random_bytes(uint8_t* out, size_t n);

// HKDF-SHA256 (RFC 5869). out_len must be 1..255*32, else Error(invalid_argument).
SecretBytes hkdf_sha256(ByteView ikm, ByteView salt, ByteView info, size_t out_len);
SecretBytes hkdf_sha256_extract(ByteView ikm, ByteView salt);
SecretBytes hkdf_sha256_expand(ByteView prk, ByteView info, size_t out_len);

// SHA-256, 32-byte output.
void sha256(ByteView data, uint8_t out[kSha256Size]);

// A non-AEAD cipher by OpenSSL name ("AES-256-CBC", "SM4-CBC", "AES-128-CTR", "AES-192-ECB", ...)
// with optional PKCS#7 padding. `out` may equal `in` and must have room for len + 16 bytes when
// encrypting with padding. Returns the output length; decryption with bad padding returns -1.
long long cipher_crypt(const char* name, ByteView key, ByteView iv, const uint8_t* in, size_t len, uint8_t* out,
                       bool encrypt, bool padding);

// HMAC-SHA256, 32-byte output.
void hmac_sha256(ByteView key, ByteView data, uint8_t out[kSha256Size]);

// The linked OpenSSL's version text, e.g. "OpenSSL 3.0.17 1 Jul 2025" (OpenSSL_version(OPENSSL_VERSION)).
const char* openssl_version() noexcept;

// X25519 (RFC 7748) through OpenSSL. Keys are 32-byte strings; a private key is any 32 random
// bytes (clamped by the function). x25519_shared returns false when the shared secret is all zero
// (the peer's public key is a low-order point): callers must treat that as a failure.
constexpr size_t kX25519KeySize = 32;
void x25519_public_key(const uint8_t private_key[kX25519KeySize], uint8_t public_key[kX25519KeySize]);
[[nodiscard]] bool x25519_shared(const uint8_t private_key[kX25519KeySize], const uint8_t peer_public[kX25519KeySize],
                                 uint8_t shared[kX25519KeySize]);

// Ed25519 (RFC 8032, pure Ed25519) through OpenSSL. A private key is its 32-byte seed.
constexpr size_t kEd25519KeySize = 32;
constexpr size_t kEd25519SignatureSize = 64;
void ed25519_public_key(const uint8_t seed[kEd25519KeySize], uint8_t public_key[kEd25519KeySize]);
void ed25519_sign(const uint8_t seed[kEd25519KeySize], ByteView message, uint8_t signature[kEd25519SignatureSize]);
// False for a bad signature, and for a public key or signature OpenSSL rejects as malformed.
[[nodiscard]] bool ed25519_verify(const uint8_t public_key[kEd25519KeySize], ByteView message,
                                  const uint8_t signature[kEd25519SignatureSize]);

// Ed25519 keys in PEM as OpenSSL writes them: SubjectPublicKeyInfo ("PUBLIC KEY") and unencrypted
// PKCS#8 ("PRIVATE KEY"). False when the text holds no such Ed25519 key (another algorithm,
// encrypted, malformed).
bool ed25519_public_from_pem(ByteView pem, uint8_t public_key[kEd25519KeySize]);
bool ed25519_seed_from_pem(ByteView pem, SecretBytes* seed);

// Incremental SHA-256; one object per thread, reusable (reset() after final()).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const uint8_t* data, size_t len);
  void final(uint8_t out[kSha256Size]);  // then ready for the next message
 private:
  void* ctx_ = nullptr;  // EVP_MD_CTX*
};

// Constant-time equality of two equally long byte strings.
bool equal_constant_time(const uint8_t* a, const uint8_t* b, size_t n) noexcept;

// AES-GCM with a 16, 24 or 32-byte key (AES-128/192/256), IVs of 1..128 bytes, 16-byte tags.
// One object per thread: it keeps an initialised cipher context so per-message cost is one IV set.
// `in` and `out` may be the same pointer (in-place).
class AesGcm {
 public:
  explicit AesGcm(ByteView key);
  ~AesGcm();
  AesGcm(const AesGcm&) = delete;
  AesGcm& operator=(const AesGcm&) = delete;

  void encrypt(ByteView iv, ByteView aad, const uint8_t* in, uint8_t* out, size_t len,
               uint8_t tag[kGcmTagSize]);
  // Returns false when the tag does not verify; `out` then holds unauthenticated bytes that the
  // caller must wipe and never release.
  // `tag_len` 4..16: shorter tags exist only for reading legacy files that chose them.
  [[nodiscard]] bool decrypt(ByteView iv, ByteView aad, const uint8_t* in, uint8_t* out, size_t len,
                             const uint8_t* tag, size_t tag_len = kGcmTagSize);
  // decrypt() that also hashes what it reads: SHA-256(in || tag) goes to `digest`, each piece of
  // the ciphertext hashed just before it is decrypted (one pass over cache-resident pieces rather
  // than two over the whole chunk). `in` may equal `out`. Returns whether the tag verified.
  [[nodiscard]] bool decrypt_hashing(ByteView iv, ByteView aad, const uint8_t* in, uint8_t* out, size_t len,
                                     const uint8_t tag[kGcmTagSize], Sha256& sha, uint8_t digest[kSha256Size]);

 private:
  void start(void* ctx, int enc, ByteView iv, ByteView aad);
  void* enc_ctx_ = nullptr;  // EVP_CIPHER_CTX*, created on first use
  void* dec_ctx_ = nullptr;
  SecretBytes key_;
  const void* cipher_ = nullptr;  // EVP_CIPHER*
};

}  // namespace crypto
}  // namespace modelcrypt_core
