// libFuzzer harness, structure-aware, for the legacy readers: the fuzz bytes choose a format, key and
// plaintext; a writer builds a valid file (legacy::mindspore_encrypt for MindSpore AES-GCM / AES-CBC /
// SM4-CBC; a PaddleX "PADDLE1" and Paddle CipherFactory writer in this file, following
// docs/LEGACY.md, for the others); decrypt_memory must give the plaintext back exactly. Further fuzz
// bytes then mutate the file (bit flips, byte writes, truncation, extension, deletion, insertion) and
// it is decrypted again:
//  * authenticated formats (MindSpore AES-GCM, PaddleX, Paddle AES-GCM): exactly the original
//    plaintext or a modelcrypt_core::Error; anything else is a silent wrong result and abort()s;
//  * unauthenticated ones (CBC, SM4, CTR, ECB): no crash, and a plaintext length that fits the layout.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstring>

#include "../src/container.hpp"
#include "../src/crypto.hpp"
#include "../src/legacy.hpp"
#include "fuzz_common.hpp"

using namespace modelcrypt_core;
using modelcrypt_core::fuzz::fail;
using modelcrypt_core::fuzz::guarded;
using Bytes = std::vector<uint8_t>;

namespace {

size_t pick(FuzzedDataProvider& p, size_t n) { return n ? p.ConsumeIntegralInRange<size_t>(0, n - 1) : 0; }

ByteView view(const Bytes& b) { return {b.data(), b.size()}; }

Bytes paddlex_write(const Bytes& pt, const Bytes& key) {
  Bytes out(7 + 64 + 64);
  std::memcpy(out.data(), "PADDLE1", 7);
  uint8_t digest[crypto::kSha256Size];
  crypto::sha256(view(key), digest);
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < 32; ++i) {
    out[7 + 2 * i] = static_cast<uint8_t>(hex[digest[i] >> 4]);
    out[8 + 2 * i] = static_cast<uint8_t>(hex[digest[i] & 15]);
  }
  for (size_t i = 0; i < 64; ++i) out[71 + i] = static_cast<uint8_t>(i * 37);  // filler
  out.resize(out.size() + pt.size() + 16);
  crypto::AesGcm gcm(view(key));
  gcm.encrypt({key.data() + 16, 16}, {}, pt.data(), out.data() + 135, pt.size(), out.data() + 135 + pt.size());
  return out;
}

Bytes paddle_write(const Bytes& pt, const Bytes& key, const legacy::Mode& m, FuzzedDataProvider& p) {
  using C = legacy::Mode::PaddleCipher;
  const size_t iv_len = m.paddle_cipher == C::ecb ? 0 : m.iv_bytes;
  Bytes iv = p.ConsumeBytes<uint8_t>(iv_len);
  iv.resize(iv_len, 0x5A);
  Bytes out = iv;
  if (m.paddle_cipher == C::gcm) {
    out.resize(iv_len + pt.size() + m.tag_bytes);
    uint8_t tag[16];
    crypto::AesGcm gcm(view(key));
    gcm.encrypt(view(iv), {}, pt.data(), out.data() + iv_len, pt.size(), tag);
    std::memcpy(out.data() + iv_len + pt.size(), tag, m.tag_bytes);  // truncated tag, as Crypto++ writes it
    return out;
  }
  const char* suffix = m.paddle_cipher == C::ctr ? "CTR" : m.paddle_cipher == C::cbc ? "CBC" : "ECB";
  const std::string name = "AES-" + std::to_string(key.size() * 8) + "-" + suffix;
  out.resize(iv_len + pt.size() + 16);
  const long long n = crypto::cipher_crypt(name.c_str(), view(key), view(iv), pt.data(), pt.size(), out.data() + iv_len,
                                           true, m.paddle_cipher != C::ctr);
  if (n < 0) fail("reference encryption failed");
  out.resize(iv_len + static_cast<size_t>(n));
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider p(data, size);
  static const char* kModes[] = {
      "AES-GCM", "AES-CBC", "SM4-CBC",  // MindSpore (written by legacy::mindspore_encrypt)
      "paddlex",
      "paddle:AES_GCM_NoPadding", "paddle:AES_GCM_NoPadding:iv=96", "paddle:AES_GCM_NoPadding:iv=96:tag=32",
      "paddle:AES_GCM_NoPadding:iv=8:tag=64", "paddle:AES_GCM_NoPadding:iv=1024:tag=120",
      "paddle:AES_CTR_NoPadding", "paddle:AES_CBC_PKCSPadding", "paddle:AES_ECB_PKCSPadding"};
  const size_t which = p.ConsumeIntegralInRange<size_t>(0, sizeof kModes / sizeof *kModes - 1);
  const std::string mode_text = which == 3 ? "AES-GCM" : kModes[which];
  const legacy::Mode mode = legacy::parse_mode(mode_text);
  static const size_t kKeyLengths[] = {16, 24, 32};
  size_t key_len = kKeyLengths[p.ConsumeIntegralInRange(0, 2)];
  if (which == 2) key_len = 16;  // SM4
  if (which == 3) key_len = 32;  // PaddleX
  const Bytes key = fuzz::counting_key(static_cast<uint8_t>(0x10 * which), key_len);
  const Bytes pt = p.ConsumeBytes<uint8_t>(p.ConsumeIntegralInRange<size_t>(0, 600));

  Bytes file;
  if (which < 3) {
    file.resize(legacy::mindspore_encrypted_length(pt.size(), mode));
    legacy::mindspore_encrypt(view(pt), mode, view(key), file.data(), file.size());
  } else if (which == 3) {
    file = paddlex_write(pt, key);
  } else {
    file = paddle_write(pt, key, mode, p);
  }
  const bool authenticated = which == 0 || which == 3 || mode.paddle_cipher == legacy::Mode::PaddleCipher::gcm;
  const bool is_paddle = which >= 4;
  // Paddle files start with their IV; this harness takes the IV from the input, so it can start with
  // the v1 magic, which a random IV never does (2^-64) and which readers take as a v1 file.
  if (is_paddle && legacy::detect(file.data(), file.size()) == legacy::Format::modelcrypt) return 0;

  {
    Decrypted d;
    if (guarded("decrypt_memory (genuine)", [&] { d = decrypt_memory(view(file), view(key), mode_text, "auto", 1); }) != Status::ok) {
      fail("a freshly written " + std::string(kModes[which]) + " file does not decrypt");
    }
    if (!fuzz::same(d.data(), d.size(), pt)) fail("round trip changed the plaintext (" + std::string(kModes[which]) + ")");
  }

  Bytes blob = file;
  const int ops = p.ConsumeIntegralInRange(1, 4);
  for (int k = 0; k < ops; ++k) {
    switch (p.ConsumeIntegralInRange(0, 5)) {
      case 0:
        if (!blob.empty()) blob[pick(p, blob.size())] ^= static_cast<uint8_t>(1u << p.ConsumeIntegralInRange(0, 7));
        break;
      case 1:
        if (!blob.empty()) blob[pick(p, blob.size())] = p.ConsumeIntegral<uint8_t>();
        break;
      case 2:
        blob.resize(pick(p, blob.size() + 1));
        break;
      case 3: {
        const Bytes extra = p.ConsumeBytes<uint8_t>(p.ConsumeIntegralInRange<size_t>(1, 64));
        blob.insert(blob.end(), extra.begin(), extra.end());
        break;
      }
      case 4: {
        const size_t a = pick(p, blob.size() + 1);
        blob.erase(blob.begin() + a, blob.begin() + a + p.ConsumeIntegralInRange<size_t>(0, blob.size() - a));
        break;
      }
      default: {
        const size_t a = pick(p, blob.size() + 1);
        const Bytes extra = p.ConsumeBytes<uint8_t>(p.ConsumeIntegralInRange<size_t>(1, 32));
        blob.insert(blob.begin() + a, extra.begin(), extra.end());
        break;
      }
    }
  }

  Decrypted d;
  if (guarded("decrypt_memory", [&] { d = decrypt_memory(view(blob), view(key), mode_text, "auto", 1); }) == Status::ok) {
    if (d.view_offset + d.view_length > d.plaintext.size()) fail("view outside the buffer");
    if (authenticated && !fuzz::same(d.data(), d.size(), pt)) fail("SILENT WRONG PLAINTEXT from a mutated " + std::string(kModes[which]) + " file");
    if (is_paddle && d.size() > blob.size()) fail("plaintext longer than the file");
  }
  return 0;
}
