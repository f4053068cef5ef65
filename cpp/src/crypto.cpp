#include "crypto.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <algorithm>
#include <climits>
#include <memory>
#include <string>

#include "errors.hpp"

namespace modelcrypt_core::crypto {

void wipe(void* data, size_t size) noexcept {
  if (data != nullptr && size != 0) OPENSSL_cleanse(data, size);
}

const char* openssl_version() noexcept { return OpenSSL_version(OPENSSL_VERSION); }

namespace {

[[noreturn]] void throw_openssl(const char* what) {
  unsigned long code = ERR_get_error();
  char buf[256] = {0};
  if (code != 0) ERR_error_string_n(code, buf, sizeof buf);
  ERR_clear_error();
  throw Error(Status::internal, std::string("OpenSSL: ") + what + (code ? std::string(": ") + buf : ""));
}

struct Algorithms {
  OSSL_LIB_CTX* libctx = nullptr;
  EVP_CIPHER* aes_gcm[3] = {nullptr, nullptr, nullptr};  // 128, 192, 256
  EVP_MAC* hmac = nullptr;
  EVP_KDF* hkdf = nullptr;
  EVP_MD* sha256 = nullptr;

  Algorithms() {
    // Never read openssl.cnf (OPENSSL_CONF included): configuration belongs to the host process
    // and must not change how modelcrypt encrypts.
    OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_ATEXIT, nullptr);
    libctx = OSSL_LIB_CTX_new();  // private context: the default provider, nothing else
    if (libctx == nullptr) throw_openssl("cannot create library context");
    const char* names[3] = {"AES-128-GCM", "AES-192-GCM", "AES-256-GCM"};
    for (int i = 0; i < 3; ++i) {
      aes_gcm[i] = EVP_CIPHER_fetch(libctx, names[i], nullptr);
      if (aes_gcm[i] == nullptr) throw_openssl("cannot fetch AES-GCM");
    }
    hmac = EVP_MAC_fetch(libctx, "HMAC", nullptr);
    if (hmac == nullptr) throw_openssl("cannot fetch HMAC");
    hkdf = EVP_KDF_fetch(libctx, "HKDF", nullptr);
    if (hkdf == nullptr) throw_openssl("cannot fetch HKDF");
    sha256 = EVP_MD_fetch(libctx, "SHA256", nullptr);
    if (sha256 == nullptr) throw_openssl("cannot fetch SHA-256");
  }
};

const Algorithms& algorithms() {
  static const Algorithms algs;  // thread-safe one-time initialisation
  return algs;
}

SecretBytes run_hkdf(int mode, ByteView key, ByteView salt, ByteView info, size_t out_len) {
  const Algorithms& a = algorithms();
  EVP_KDF_CTX* kctx = EVP_KDF_CTX_new(a.hkdf);
  if (kctx == nullptr) throw_openssl("cannot create HKDF context");
  OSSL_PARAM params[6];
  size_t n = 0;
  char digest[] = "SHA256";
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  params[n++] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
  params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(key.data ? key.data : reinterpret_cast<const uint8_t*>("")), key.size);
  // An absent salt is HashLen zero bytes (RFC 5869 2.2), which HMAC treats like an empty key.
  if (salt.size) params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<uint8_t*>(salt.data), salt.size);
  if (info.size) params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<uint8_t*>(info.data), info.size);
  params[n] = OSSL_PARAM_construct_end();
  SecretBytes out(out_len);
  const int ok = EVP_KDF_derive(kctx, out.data(), out.size(), params);
  EVP_KDF_CTX_free(kctx);
  if (ok <= 0) throw_openssl("HKDF failed");
  return out;
}

}  // namespace

void ensure_initialized() { (void)algorithms(); }

void random_bytes(uint8_t* out, size_t n) {
  const Algorithms& a = algorithms();
  if (n && RAND_bytes_ex(a.libctx, out, n, 256) != 1) throw_openssl("random number generator failed");
}

SecretBytes hkdf_sha256(ByteView ikm, ByteView salt, ByteView info, size_t out_len) {
  if (out_len == 0 || out_len > 255 * kSha256Size) {
    throw Error(Status::invalid_argument, "HKDF-SHA256 output length must be 1.." + std::to_string(255 * kSha256Size) + " bytes");
  }
  return run_hkdf(EVP_KDF_HKDF_MODE_EXTRACT_AND_EXPAND, ikm, salt, info, out_len);
}

SecretBytes hkdf_sha256_extract(ByteView ikm, ByteView salt) {
  return run_hkdf(EVP_KDF_HKDF_MODE_EXTRACT_ONLY, ikm, salt, ByteView{}, kSha256Size);
}

SecretBytes hkdf_sha256_expand(ByteView prk, ByteView info, size_t out_len) {
  if (out_len == 0 || out_len > 255 * kSha256Size) {
    throw Error(Status::invalid_argument, "HKDF-SHA256 output length out of range");
  }
  return run_hkdf(EVP_KDF_HKDF_MODE_EXPAND_ONLY, prk, ByteView{}, info, out_len);
}

void hmac_sha256(ByteView key, ByteView data, uint8_t out[kSha256Size]) {
  const Algorithms& a = algorithms();
  EVP_MAC_CTX* mctx = EVP_MAC_CTX_new(a.hmac);
  if (mctx == nullptr) throw_openssl("cannot create HMAC context");
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  static const uint8_t empty = 0;
  size_t out_len = 0;
  const bool ok = EVP_MAC_init(mctx, key.size ? key.data : &empty, key.size, params) > 0 &&
                  EVP_MAC_update(mctx, data.size ? data.data : &empty, data.size) > 0 &&
                  EVP_MAC_final(mctx, out, &out_len, kSha256Size) > 0 && out_len == kSha256Size;
  EVP_MAC_CTX_free(mctx);
  if (!ok) throw_openssl("HMAC-SHA256 failed");
}

void sha256(ByteView data, uint8_t out[kSha256Size]) {
  const Algorithms& a = algorithms();
  EVP_MD* md = EVP_MD_fetch(a.libctx, "SHA256", nullptr);
  unsigned int n = 0;
  static const uint8_t empty = 0;
  const bool ok = md != nullptr && EVP_Digest(data.size ? data.data : &empty, data.size, out, &n, md, nullptr) > 0;
  EVP_MD_free(md);
  if (!ok || n != kSha256Size) throw_openssl("SHA-256 failed");
}

long long cipher_crypt(const char* name, ByteView key, ByteView iv, const uint8_t* in, size_t len, uint8_t* out,
                       bool encrypt, bool padding) {
  const Algorithms& a = algorithms();
  EVP_CIPHER* cipher = EVP_CIPHER_fetch(a.libctx, name, nullptr);
  if (cipher == nullptr) {
    ERR_clear_error();
    throw Error(Status::unsupported, std::string("cipher ") + name + " is not available");
  }
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  long long result = -1;
  bool failed_setup = false;
  if (ctx == nullptr || static_cast<size_t>(EVP_CIPHER_get_key_length(cipher)) != key.size ||
      (EVP_CIPHER_get_iv_length(cipher) > 0 && static_cast<size_t>(EVP_CIPHER_get_iv_length(cipher)) != iv.size) ||
      EVP_CipherInit_ex2(ctx, cipher, key.data, iv.size ? iv.data : nullptr, encrypt ? 1 : 0, nullptr) <= 0 ||
      EVP_CIPHER_CTX_set_padding(ctx, padding ? 1 : 0) <= 0) {
    failed_setup = true;
  } else {
    size_t done = 0, produced = 0;
    bool ok = true;
    while (ok && done < len) {
      const int step = static_cast<int>(std::min<size_t>(len - done, 1u << 30));
      int outl = 0;
      ok = EVP_CipherUpdate(ctx, out + produced, &outl, in + done, step) > 0;
      done += static_cast<size_t>(step);
      produced += static_cast<size_t>(outl);
    }
    int finl = 0;
    if (ok && EVP_CipherFinal_ex(ctx, out + produced, &finl) > 0) result = static_cast<long long>(produced + finl);
  }
  EVP_CIPHER_CTX_free(ctx);
  EVP_CIPHER_free(cipher);
  ERR_clear_error();
  if (failed_setup) throw Error(Status::invalid_argument, std::string(name) + ": bad key or IV length");
  return result;
}

namespace {
struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};
struct PkeyCtxDeleter {
  void operator()(EVP_PKEY_CTX* p) const noexcept { EVP_PKEY_CTX_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

Pkey x25519_private(const uint8_t private_key[kX25519KeySize]) {
  Pkey key(EVP_PKEY_new_raw_private_key_ex(algorithms().libctx, "X25519", nullptr, private_key, kX25519KeySize));
  if (!key) throw_openssl("cannot load an X25519 private key");
  return key;
}
}  // namespace

void x25519_public_key(const uint8_t private_key[kX25519KeySize], uint8_t public_key[kX25519KeySize]) {
  const Pkey key = x25519_private(private_key);
  size_t n = kX25519KeySize;
  if (EVP_PKEY_get_raw_public_key(key.get(), public_key, &n) <= 0 || n != kX25519KeySize) {
    throw_openssl("cannot compute an X25519 public key");
  }
}

bool x25519_shared(const uint8_t private_key[kX25519KeySize], const uint8_t peer_public[kX25519KeySize],
                   uint8_t shared[kX25519KeySize]) {
  const Algorithms& a = algorithms();
  const Pkey key = x25519_private(private_key);
  const Pkey peer(EVP_PKEY_new_raw_public_key_ex(a.libctx, "X25519", nullptr, peer_public, kX25519KeySize));
  if (!peer) throw_openssl("cannot load an X25519 public key");
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter> ctx(EVP_PKEY_CTX_new_from_pkey(a.libctx, key.get(), nullptr));
  size_t n = kX25519KeySize;
  // OpenSSL refuses an all-zero result (a low-order peer point); that is a "no", not an internal error.
  const bool ok = ctx && EVP_PKEY_derive_init(ctx.get()) > 0 && EVP_PKEY_derive_set_peer_ex(ctx.get(), peer.get(), 0) > 0 &&
                  EVP_PKEY_derive(ctx.get(), shared, &n) > 0 && n == kX25519KeySize;
  ERR_clear_error();
  if (!ok) {
    wipe(shared, kX25519KeySize);
    return false;
  }
  uint8_t any = 0;
  for (size_t i = 0; i < kX25519KeySize; ++i) any |= shared[i];
  return any != 0;
}

namespace {
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* p) const noexcept { EVP_MD_CTX_free(p); }
};
Pkey ed25519_private(const uint8_t seed[kEd25519KeySize]) {
  Pkey key(EVP_PKEY_new_raw_private_key_ex(algorithms().libctx, "ED25519", nullptr, seed, kEd25519KeySize));
  if (!key) throw_openssl("cannot load an Ed25519 private key");
  return key;
}
}  // namespace

void ed25519_public_key(const uint8_t seed[kEd25519KeySize], uint8_t public_key[kEd25519KeySize]) {
  const Pkey key = ed25519_private(seed);
  size_t n = kEd25519KeySize;
  if (EVP_PKEY_get_raw_public_key(key.get(), public_key, &n) <= 0 || n != kEd25519KeySize) {
    throw_openssl("cannot compute an Ed25519 public key");
  }
}

void ed25519_sign(const uint8_t seed[kEd25519KeySize], ByteView message, uint8_t signature[kEd25519SignatureSize]) {
  const Algorithms& a = algorithms();
  const Pkey key = ed25519_private(seed);
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  size_t n = kEd25519SignatureSize;
  static const uint8_t empty = 0;
  const bool ok = ctx && EVP_DigestSignInit_ex(ctx.get(), nullptr, nullptr, a.libctx, nullptr, key.get(), nullptr) > 0 &&
                  EVP_DigestSign(ctx.get(), signature, &n, message.size ? message.data : &empty, message.size) > 0 &&
                  n == kEd25519SignatureSize;
  if (!ok) throw_openssl("Ed25519 signing failed");
}

bool ed25519_verify(const uint8_t public_key[kEd25519KeySize], ByteView message,
                    const uint8_t signature[kEd25519SignatureSize]) {
  const Algorithms& a = algorithms();
  const Pkey key(EVP_PKEY_new_raw_public_key_ex(a.libctx, "ED25519", nullptr, public_key, kEd25519KeySize));
  if (!key) {
    ERR_clear_error();
    return false;
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  static const uint8_t empty = 0;
  const bool ok = ctx && EVP_DigestVerifyInit_ex(ctx.get(), nullptr, nullptr, a.libctx, nullptr, key.get(), nullptr) > 0 &&
                  EVP_DigestVerify(ctx.get(), signature, kEd25519SignatureSize, message.size ? message.data : &empty,
                                   message.size) == 1;
  ERR_clear_error();
  return ok;
}

namespace {
struct BioDeleter {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};
int refuse_password(char*, int, int, void*) { return 0; }  // encrypted PEM: not supported, never prompts
}  // namespace

bool ed25519_public_from_pem(ByteView pem, uint8_t public_key[kEd25519KeySize]) {
  const Algorithms& a = algorithms();
  if (pem.size == 0 || pem.size > INT_MAX) return false;
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new_mem_buf(pem.data, static_cast<int>(pem.size)));
  Pkey key(bio ? PEM_read_bio_PUBKEY_ex(bio.get(), nullptr, refuse_password, nullptr, a.libctx, nullptr) : nullptr);
  size_t n = kEd25519KeySize;
  const bool ok = key && EVP_PKEY_is_a(key.get(), "ED25519") &&
                  EVP_PKEY_get_raw_public_key(key.get(), public_key, &n) > 0 && n == kEd25519KeySize;
  ERR_clear_error();
  return ok;
}

bool ed25519_seed_from_pem(ByteView pem, SecretBytes* seed) {
  const Algorithms& a = algorithms();
  if (pem.size == 0 || pem.size > INT_MAX) return false;
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new_mem_buf(pem.data, static_cast<int>(pem.size)));
  Pkey key(bio ? PEM_read_bio_PrivateKey_ex(bio.get(), nullptr, refuse_password, nullptr, a.libctx, nullptr) : nullptr);
  SecretBytes out(kEd25519KeySize);
  size_t n = out.size();
  const bool ok = key && EVP_PKEY_is_a(key.get(), "ED25519") &&
                  EVP_PKEY_get_raw_private_key(key.get(), out.data(), &n) > 0 && n == kEd25519KeySize;
  ERR_clear_error();
  if (ok) *seed = std::move(out);
  return ok;
}

Sha256::Sha256() {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr || EVP_DigestInit_ex2(ctx, algorithms().sha256, nullptr) <= 0) {
    EVP_MD_CTX_free(ctx);
    throw_openssl("cannot start SHA-256");
  }
  ctx_ = ctx;
}

Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

void Sha256::update(const uint8_t* data, size_t len) {
  if (len && EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data, len) <= 0) throw_openssl("SHA-256 failed");
}

void Sha256::final(uint8_t out[kSha256Size]) {
  auto* ctx = static_cast<EVP_MD_CTX*>(ctx_);
  unsigned int n = 0;
  if (EVP_DigestFinal_ex(ctx, out, &n) <= 0 || n != kSha256Size || EVP_DigestInit_ex2(ctx, nullptr, nullptr) <= 0) {
    throw_openssl("SHA-256 failed");
  }
}

bool equal_constant_time(const uint8_t* a, const uint8_t* b, size_t n) noexcept {
  return CRYPTO_memcmp(a, b, n) == 0;
}

AesGcm::AesGcm(ByteView key) : key_(key.data, key.data + key.size) {
  const Algorithms& a = algorithms();
  switch (key.size) {
    case 16: cipher_ = a.aes_gcm[0]; break;
    case 24: cipher_ = a.aes_gcm[1]; break;
    case 32: cipher_ = a.aes_gcm[2]; break;
    default:
      throw Error(Status::invalid_argument, "AES-GCM key must be 16, 24 or 32 bytes, got " + std::to_string(key.size));
  }
}

AesGcm::~AesGcm() {
  EVP_CIPHER_CTX_free(static_cast<EVP_CIPHER_CTX*>(enc_ctx_));  // frees and cleanses key schedule
  EVP_CIPHER_CTX_free(static_cast<EVP_CIPHER_CTX*>(dec_ctx_));
}

void AesGcm::start(void* vctx, int enc, ByteView iv, ByteView aad) {
  if (iv.size == 0) throw Error(Status::invalid_argument, "AES-GCM IV must not be empty");
  // OpenSSL's GCM implementation accepts IVs of at most 128 bytes (1024 bits).
  if (iv.size > kMaxGcmIvSize) {
    throw Error(Status::invalid_argument, "AES-GCM IV must be at most 128 bytes, got " + std::to_string(iv.size));
  }
  auto* ctx = static_cast<EVP_CIPHER_CTX*>(vctx);
  size_t ivlen = iv.size;
  OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_CIPHER_PARAM_AEAD_IVLEN, &ivlen),
                         OSSL_PARAM_construct_end()};
  // The key schedule is set up once per context; later calls only change the IV.
  if (EVP_CIPHER_CTX_get0_cipher(ctx) == nullptr) {
    if (EVP_CipherInit_ex2(ctx, static_cast<const EVP_CIPHER*>(cipher_), nullptr, nullptr, enc, nullptr) <= 0 ||
        EVP_CipherInit_ex2(ctx, nullptr, key_.data(), nullptr, enc, nullptr) <= 0) {
      throw_openssl("AES-GCM key setup failed");
    }
  }
  if (EVP_CIPHER_CTX_set_params(ctx, params) <= 0 || EVP_CipherInit_ex2(ctx, nullptr, nullptr, iv.data, enc, nullptr) <= 0) {
    throw_openssl("AES-GCM IV setup failed");
  }
  size_t done = 0;
  while (done < aad.size) {
    const int step = static_cast<int>(std::min<size_t>(aad.size - done, 1u << 30));
    int outl = 0;
    if (EVP_CipherUpdate(ctx, nullptr, &outl, aad.data + done, step) <= 0) throw_openssl("AES-GCM AAD failed");
    done += static_cast<size_t>(step);
  }
}

namespace {
bool update_all(EVP_CIPHER_CTX* ctx, const uint8_t* in, uint8_t* out, size_t len) {
  size_t done = 0;
  while (done < len) {
    const int step = static_cast<int>(std::min<size_t>(len - done, 1u << 30));
    int outl = 0;
    if (EVP_CipherUpdate(ctx, out + done, &outl, in + done, step) <= 0 || outl != step) return false;
    done += static_cast<size_t>(step);
  }
  return true;
}
}  // namespace

void AesGcm::encrypt(ByteView iv, ByteView aad, const uint8_t* in, uint8_t* out, size_t len,
                     uint8_t tag[kGcmTagSize]) {
  if (enc_ctx_ == nullptr && (enc_ctx_ = EVP_CIPHER_CTX_new()) == nullptr) throw_openssl("cannot create cipher context");
  auto* ctx = static_cast<EVP_CIPHER_CTX*>(enc_ctx_);
  start(ctx, 1, iv, aad);
  int outl = 0;
  uint8_t dummy[16];
  if (!update_all(ctx, in, out, len) || EVP_EncryptFinal_ex(ctx, dummy, &outl) <= 0 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, kGcmTagSize, tag) <= 0) {
    throw_openssl("AES-GCM encryption failed");
  }
}

bool AesGcm::decrypt(ByteView iv, ByteView aad, const uint8_t* in, uint8_t* out, size_t len,
                     const uint8_t* tag, size_t tag_len) {
  if (tag_len < 4 || tag_len > kGcmTagSize) throw Error(Status::invalid_argument, "GCM tag must be 4..16 bytes");
  if (dec_ctx_ == nullptr && (dec_ctx_ = EVP_CIPHER_CTX_new()) == nullptr) throw_openssl("cannot create cipher context");
  auto* ctx = static_cast<EVP_CIPHER_CTX*>(dec_ctx_);
  start(ctx, 0, iv, aad);
  if (!update_all(ctx, in, out, len)) throw_openssl("AES-GCM decryption failed");
  uint8_t tag_copy[kGcmTagSize];
  std::copy(tag, tag + tag_len, tag_copy);
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(tag_len), tag_copy) <= 0) {
    throw_openssl("AES-GCM tag setup failed");
  }
  int outl = 0;
  uint8_t dummy[16];
  const bool ok = EVP_DecryptFinal_ex(ctx, dummy, &outl) > 0;
  ERR_clear_error();
  return ok;
}

bool AesGcm::decrypt_hashing(ByteView iv, ByteView aad, const uint8_t* in, uint8_t* out, size_t len,
                             const uint8_t tag[kGcmTagSize], Sha256& sha, uint8_t digest[kSha256Size]) {
  constexpr size_t kPiece = 64u << 10;  // fits the L2 cache beside the cipher's state
  if (dec_ctx_ == nullptr && (dec_ctx_ = EVP_CIPHER_CTX_new()) == nullptr) throw_openssl("cannot create cipher context");
  auto* ctx = static_cast<EVP_CIPHER_CTX*>(dec_ctx_);
  start(ctx, 0, iv, aad);
  for (size_t done = 0; done < len;) {
    const size_t n = std::min(kPiece, len - done);
    sha.update(in + done, n);
    if (!update_all(ctx, in + done, out + done, n)) throw_openssl("AES-GCM decryption failed");
    done += n;
  }
  uint8_t tag_copy[kGcmTagSize];
  std::copy(tag, tag + kGcmTagSize, tag_copy);
  sha.update(tag_copy, kGcmTagSize);
  sha.final(digest);
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(kGcmTagSize), tag_copy) <= 0) {
    throw_openssl("AES-GCM tag setup failed");
  }
  int outl = 0;
  uint8_t dummy[16];
  const bool ok = EVP_DecryptFinal_ex(ctx, dummy, &outl) > 0;
  ERR_clear_error();
  return ok;
}

}  // namespace modelcrypt_core::crypto
