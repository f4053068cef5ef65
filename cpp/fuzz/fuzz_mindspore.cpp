// libFuzzer harness: arbitrary bytes as a MindSpore encrypted file image (frames of AES-GCM, AES-CBC
// or SM4-CBC, docs/LEGACY.md), read with the internal legacy API and the fixed key of the interop
// fixtures ("0123456789ABCDEF", 16 bytes):
//  * legacy::detect, legacy::describe (key-less frame walk);
//  * legacy::check_mode_matches + legacy::decrypt_in_place on an exact-size heap copy, with the mode
//    the first frame's magic names (so decryption is reached);
//  * decrypt_memory on the same bytes must agree (status, plaintext).
// Results are checked against describe(): frame count, GCM plaintext length, CBC padding bounds.
#include <cstring>

#include "../src/container.hpp"
#include "../src/legacy.hpp"
#include "fuzz_common.hpp"

using namespace modelcrypt_core;
using modelcrypt_core::fuzz::fail;
using modelcrypt_core::fuzz::guarded;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const uint8_t kKey[] = "0123456789ABCDEF";
  const ByteView key{kKey, 16};
  const std::vector<uint8_t> original(data, data + size);

  const legacy::Format f = legacy::detect(original.data(), size);
  legacy::Description desc;
  std::vector<uint8_t> probe = original;
  const Status describe_status = guarded("describe", [&] { desc = legacy::describe(legacy::Format::mindspore, probe.data(), probe.size()); });
  if (probe != original) fail("describe modified its input");
  if (describe_status == Status::ok && f != legacy::Format::mindspore) fail("describe accepted a file detect() does not call MindSpore");

  // The mode the file's magic names (AES-GCM when there is none).
  std::string mode_name = "AES-GCM";
  if (f == legacy::Format::mindspore) mode_name = data[0] == 0xD8 ? "AES-GCM" : data[0] == 0xD9 ? "AES-CBC" : "SM4-CBC";
  const legacy::Mode mode = legacy::parse_mode(mode_name);
  if (f == legacy::Format::mindspore) {
    guarded("check_mode_matches", [&] { legacy::check_mode_matches(f, mode, original.data(), size); });
  }

  std::vector<uint8_t> image = original;  // exact size: ASan catches any access past the end
  legacy::Result r;
  const Status st = guarded("decrypt_in_place", [&] { r = legacy::decrypt_in_place(legacy::Format::mindspore, mode, image.data(), image.size(), key); });
  if ((st == Status::ok || st == Status::auth_failed) && describe_status != Status::ok) {
    fail("decrypt_in_place went past a frame structure that describe rejects");
  }
  if (st == Status::ok) {
    if (r.offset > size || r.length > size - r.offset) fail("decrypt_in_place: result outside the image");
    if (r.frames != desc.frames) fail("decrypt_in_place and describe count different frames");
    if (desc.plaintext_length >= 0 && static_cast<uint64_t>(desc.plaintext_length) != r.length) fail("GCM plaintext length differs from describe");
    if (desc.plaintext_length < 0) {  // CBC: every frame loses 1..16 bytes of padding
      const size_t head = 4 + 4 + 4 + 16 + 4;
      const size_t ct = size - r.frames * head;
      if (r.length > ct - r.frames || r.length < ct - 16 * r.frames) fail("CBC plaintext length outside the padding bounds");
    }
  }

  if (f == legacy::Format::mindspore) {
    Decrypted d;
    const Status mst = guarded("decrypt_memory", [&] { d = decrypt_memory({original.data(), size}, key, mode_name, "mindspore", 1); });
    if (mst != st) fail(std::string("decrypt_memory status ") + status_name(mst) + " != decrypt_in_place status " + status_name(st));
    if (st == Status::ok && (d.size() != r.length || (r.length && std::memcmp(d.data(), image.data() + r.offset, r.length) != 0))) {
      fail("decrypt_memory and decrypt_in_place return different plaintexts");
    }
  }
  return 0;
}
