// libFuzzer harness: Paddle core CipherFactory files (no magic; docs/LEGACY.md). Input layout:
//   byte 0  mode selector: bits 0-1 cipher (CTR, CBC, ECB, GCM), bits 2-3 IV option (default,
//           iv=96, iv=128, iv=8), bits 4-5 tag option (default, tag=32, tag=96, tag=128);
//           bits 6-7 both set: the rest of the input is a mode string for legacy::parse_mode instead.
//   byte 1  key selector (mod 3): the fixtures' keys 00..1f (AES-256), 40..4f (AES-128), 80..97 (AES-192)
//   rest    the file image
// The file image goes through legacy::decrypt_in_place(paddle_cipher) on an exact-size heap copy, and
// through decrypt_memory with the same mode string, which must agree.
#include <cstring>

#include "../src/container.hpp"
#include "../src/legacy.hpp"
#include "fuzz_common.hpp"

using namespace modelcrypt_core;
using modelcrypt_core::fuzz::fail;
using modelcrypt_core::fuzz::guarded;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t sel = data[0];
  if ((sel & 0xC0) == 0xC0) {  // mode-string parser
    const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
    legacy::Mode m;
    if (guarded("parse_mode", [&] { m = legacy::parse_mode(text); }) == Status::ok && m.kind == legacy::Mode::Kind::paddle) {
      const bool gcm = m.paddle_cipher == legacy::Mode::PaddleCipher::gcm;
      if (m.iv_bytes == 0 || m.iv_bytes > 128 || (gcm && (m.tag_bytes < 4 || m.tag_bytes > 16))) fail("parse_mode accepted sizes out of range: " + text);
    }
    return 0;
  }
  static const char* kCiphers[] = {"AES_CTR_NoPadding", "AES_CBC_PKCSPadding", "AES_ECB_PKCSPadding", "AES_GCM_NoPadding"};
  static const char* kIv[] = {"", ":iv=96", ":iv=128", ":iv=8"};
  static const char* kTag[] = {"", ":tag=32", ":tag=96", ":tag=128"};
  const std::string mode_text = std::string("paddle:") + kCiphers[sel & 3] + kIv[(sel >> 2) & 3] + kTag[(sel >> 4) & 3];
  legacy::Mode mode;
  if (guarded("parse_mode", [&] { mode = legacy::parse_mode(mode_text); }) != Status::ok) return 0;

  static const std::vector<uint8_t> kKeys[] = {fuzz::counting_key(0x00, 32), fuzz::counting_key(0x40, 16), fuzz::counting_key(0x80, 24)};
  const std::vector<uint8_t>& k = kKeys[data[1] % 3];
  const ByteView key{k.data(), k.size()};

  const std::vector<uint8_t> original(data + 2, data + size);
  std::vector<uint8_t> image = original;
  legacy::Result r;
  const Status st = guarded("decrypt_in_place", [&] {
    legacy::check_mode_matches(legacy::Format::paddle_cipher, mode, image.data(), image.size());
    r = legacy::decrypt_in_place(legacy::Format::paddle_cipher, mode, image.data(), image.size(), key);
  });
  if (st == Status::ok) {
    if (r.offset > image.size() || r.length > image.size() - r.offset) fail("decrypt_in_place: result outside the image");
    const bool gcm = mode.paddle_cipher == legacy::Mode::PaddleCipher::gcm;
    const bool ctr = mode.paddle_cipher == legacy::Mode::PaddleCipher::ctr;
    const size_t iv = mode.paddle_cipher == legacy::Mode::PaddleCipher::ecb ? 0 : mode.iv_bytes;
    const size_t body = image.size() - iv - (gcm ? mode.tag_bytes : 0);
    if ((gcm || ctr) ? r.length != body : (r.length >= body || r.length + 16 < body)) fail("plaintext length inconsistent with the layout");
  }
  Decrypted d;
  const Status mst = guarded("decrypt_memory", [&] { d = decrypt_memory({original.data(), original.size()}, key, mode_text, "auto", 1); });
  if (legacy::detect(original.data(), original.size()) == legacy::Format::modelcrypt) {
    // A Paddle cipher file starts with a random IV; one starting with the v1 magic is a v1 file, which
    // decrypt_memory refuses to read with a paddle: mode (decrypt_in_place, told the format, tries).
    if (mst != Status::invalid_argument) fail(std::string("decrypt_memory of a v1 image with a paddle mode: ") + status_name(mst));
    return 0;
  }
  if (mst != st) fail(std::string("decrypt_memory status ") + status_name(mst) + " != decrypt_in_place status " + status_name(st));
  if (st == Status::ok && (d.size() != r.length || (r.length && std::memcmp(d.data(), image.data() + r.offset, r.length) != 0))) {
    fail("decrypt_memory and decrypt_in_place return different plaintexts");
  }
  return 0;
}
