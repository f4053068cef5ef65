// Key hygiene of the header-only C++ wrapper (modelcrypt.hpp): modelcrypt::Key keeps its bytes in a
// std::vector that it wipes itself, so no freed heap block may still hold the key after keys are
// parsed (hex, base64, raw), moved, move-assigned, rejected part-way through parsing, or used.
// usage: test_wrapper_key_wipe [WORKDIR]
#include <modelcrypt/modelcrypt.hpp>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "check.hpp"
#include "heap_watch.hpp"

namespace {

const uint8_t kKey[32] = {0x9f, 0x13, 0x5e, 0xa0, 0x77, 0x21, 0xc4, 0x08, 0x3b, 0xde, 0x61, 0x92, 0x0f, 0xb5, 0x4a, 0xe3,
                          0x16, 0x8c, 0x2d, 0x70, 0xf1, 0x45, 0xaa, 0x39, 0xc7, 0x02, 0x5b, 0x8e, 0xd4, 0x6f, 0x13, 0xb8};

std::string hex(const uint8_t* p, size_t n) {
  static const char digits[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += digits[p[i] >> 4];
    s += digits[p[i] & 15];
  }
  return s;
}

std::string base64(const uint8_t* p, size_t n) {
  static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string s;
  for (size_t i = 0; i < n; i += 3) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (i + 1 < n ? uint32_t{p[i + 1]} << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
    s += a[v >> 18 & 63];
    s += a[v >> 12 & 63];
    s += i + 1 < n ? a[v >> 6 & 63] : '=';
    s += i + 2 < n ? a[v & 63] : '=';
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  check::WorkDir dir(argc, argv);
  using modelcrypt::Key;
  const std::string key_hex = hex(kKey, 32), key_b64 = base64(kKey, 32);
  const std::string bad_hex = key_hex.substr(0, 40) + "zz";       // 20 key bytes decoded, then a bad digit
  const std::string bad_b64 = key_b64.substr(0, 40) + "!!!!";     // 30 key bytes decoded, then a bad character
  const std::string path = dir.file("wrapper.mcx");
  std::vector<uint8_t> pt(10000, 0x42);

  // Positive control: the watch sees a key in an unwiped vector.
  heap_watch::start();
  { std::vector<uint8_t> v(kKey, kKey + 32); }
  heap_watch::stop();
  CHECK(heap_watch::blocks_containing(kKey, 16) == 1);

  heap_watch::start();
  {
    Key a = Key::FromBytes(kKey, 32);
    Key b = Key::FromHex(key_hex);
    Key c = Key::FromBase64(key_b64);
    CHECK(a.size() == 32 && std::memcmp(a.data(), kKey, 32) == 0);
    CHECK(b.size() == 32 && std::memcmp(b.data(), kKey, 32) == 0);
    CHECK(c.size() == 32 && std::memcmp(c.data(), kKey, 32) == 0);
    Key d(std::move(a));
    b = std::move(c);
    d = Key::FromHex(key_hex);
    CHECK(d.size() == 32 && b.size() == 32);
    modelcrypt::Buffer enc = modelcrypt::EncryptMemory(pt.data(), pt.size(), d);
    FILE* f = std::fopen(path.c_str(), "wb");
    CHECK(f && std::fwrite(enc.data(), 1, enc.size(), f) == enc.size() && std::fclose(f) == 0);
    modelcrypt::Buffer dec = modelcrypt::Load(path, b);
    CHECK(dec.size() == pt.size() && std::memcmp(dec.data(), pt.data(), pt.size()) == 0);
    int rejected = 0;
    for (const std::string* text : {&bad_hex, &bad_b64}) {
      try {
        (void)(text == &bad_hex ? Key::FromHex(*text) : Key::FromBase64(*text));
      } catch (const modelcrypt::Error& e) {
        rejected += e.status() == MC_INVALID_ARGUMENT;
      }
    }
    try {
      (void)Key::FromBytes(kKey, 31);  // wrong length: rejected after copying 31 key bytes
    } catch (const modelcrypt::Error& e) {
      rejected += e.status() == MC_INVALID_ARGUMENT;
    }
    CHECK(rejected == 3);
  }
  heap_watch::stop();
  CHECK(heap_watch::blocks() > 0 && !heap_watch::overflowed());
  // Only the key's own bytes are looked for (the hex/base64 texts are the caller's strings).
  const size_t leaks = heap_watch::blocks_containing(kKey, 16);
  CHECK_MSG(leaks == 0, std::to_string(leaks) + " freed heap block(s) still held the key");
  return check::finish();
}
