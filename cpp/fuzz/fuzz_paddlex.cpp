// libFuzzer harness: arbitrary bytes as a PaddleX "PADDLE1" file image (docs/LEGACY.md), read with
// the internal legacy API and the fixed key of the interop fixtures (bytes 01..20):
//  * legacy::detect, legacy::describe;
//  * legacy::decrypt_in_place(paddlex) on an exact-size heap copy, whatever detect() says (the reader
//    must not rely on the caller having checked the magic for memory safety);
//  * decrypt_memory on the same bytes must agree when detect() says PaddleX.
#include <cstring>

#include "../src/container.hpp"
#include "../src/legacy.hpp"
#include "fuzz_common.hpp"

using namespace modelcrypt_core;
using modelcrypt_core::fuzz::fail;
using modelcrypt_core::fuzz::guarded;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<uint8_t> kKey = fuzz::counting_key(0x01, 32);
  const ByteView key{kKey.data(), kKey.size()};
  const std::vector<uint8_t> original(data, data + size);

  const legacy::Format f = legacy::detect(original.data(), size);
  legacy::Description desc;
  const Status describe_status = guarded("describe", [&] { desc = legacy::describe(legacy::Format::paddlex, original.data(), size); });

  const legacy::Mode mode = legacy::parse_mode("AES-GCM");
  std::vector<uint8_t> image = original;
  legacy::Result r;
  const Status st = guarded("decrypt_in_place", [&] { r = legacy::decrypt_in_place(legacy::Format::paddlex, mode, image.data(), image.size(), key); });
  if (st == Status::ok) {
    if (describe_status != Status::ok) fail("decrypt_in_place accepted a file describe rejects");
    if (r.offset > size || r.length > size - r.offset) fail("decrypt_in_place: result outside the image");
    if (static_cast<int64_t>(r.length) != desc.plaintext_length) fail("plaintext length differs from describe");
  }
  if (f == legacy::Format::paddlex) {
    Decrypted d;
    const Status mst = guarded("decrypt_memory", [&] { d = decrypt_memory({original.data(), size}, key, "AES-GCM", "paddlex", 1); });
    if (mst != st) fail(std::string("decrypt_memory status ") + status_name(mst) + " != decrypt_in_place status " + status_name(st));
    if (st == Status::ok && (d.size() != r.length || (r.length && std::memcmp(d.data(), image.data() + r.offset, r.length) != 0))) {
      fail("decrypt_memory and decrypt_in_place return different plaintexts");
    }
  }
  return 0;
}
