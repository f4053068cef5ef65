// libFuzzer harness, structure-aware: the fuzz bytes choose a key length, chunk size, metadata and a
// plaintext; the real encryptor (encrypt_memory) writes a format v1 file, which must decrypt back
// exactly. Further fuzz bytes then mutate that file (bit flips, byte writes, truncation, extension,
// deletion, insertion, chunk swaps and duplication, splices from a second encryption of the same
// plaintext under the same key, a wrong key) and decrypt_memory runs on the result.
// Required: either exactly the original plaintext and metadata, or a modelcrypt_core::Error. A different
// plaintext (or any success on bytes that are neither of the two genuine files) is a silent wrong
// result: abort().
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>

#include "../src/container.hpp"
#include "../src/format.hpp"
#include "fuzz_common.hpp"

using namespace modelcrypt_core;
using modelcrypt_core::fuzz::fail;
using modelcrypt_core::fuzz::guarded;
using Bytes = std::vector<uint8_t>;

namespace {

Bytes encrypt(const Bytes& pt, const Bytes& key, uint32_t chunk_size, const Bytes& metadata) {
  EncryptOptions o;
  o.chunk_size = chunk_size;
  o.metadata = {metadata.data(), metadata.size()};
  o.threads = 1;
  Bytes out(encrypted_length(pt.size(), o));
  encrypt_memory({pt.data(), pt.size()}, {key.data(), key.size()}, "AES-GCM", o, out.data(), out.size());
  return out;
}

// Status::ok with the plaintext in `d`, or the Error's status.
Status decrypt(const Bytes& blob, const Bytes& key, Decrypted& d) {
  return guarded("decrypt_memory", [&] { d = decrypt_memory({blob.data(), blob.size()}, ByteView{key.data(), key.size()}, "AES-GCM", "modelcrypt", 1); });
}

size_t pick(FuzzedDataProvider& p, size_t n) { return n ? p.ConsumeIntegralInRange<size_t>(0, n - 1) : 0; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider p(data, size);
  static const size_t kKeyLengths[] = {16, 24, 32};
  const Bytes key = fuzz::counting_key(0x40, kKeyLengths[p.ConsumeIntegralInRange(0, 2)]);
  const uint32_t chunk_size = format::kMinChunkSize * p.ConsumeIntegralInRange<uint32_t>(1, 3);
  const size_t pt_len = p.ConsumeIntegralInRange<size_t>(0, 4 * format::kMinChunkSize + 64);
  const Bytes metadata = p.ConsumeBytes<uint8_t>(p.ConsumeIntegralInRange<size_t>(0, 300));
  const Bytes pattern = p.ConsumeBytes<uint8_t>(p.ConsumeIntegralInRange<size_t>(0, 64));
  Bytes pt(pt_len);
  for (size_t i = 0; i < pt_len; ++i) pt[i] = pattern.empty() ? static_cast<uint8_t>(i * 131) : static_cast<uint8_t>(pattern[i % pattern.size()] + i / pattern.size());

  const Bytes original = encrypt(pt, key, chunk_size, metadata);
  const Bytes second = encrypt(pt, key, chunk_size, metadata);  // fresh salt: other file keys

  // The genuine files decrypt exactly.
  for (const Bytes* f : {&original, &second}) {
    Decrypted d;
    if (decrypt(*f, key, d) != Status::ok) fail("a freshly encrypted file does not decrypt");
    if (!fuzz::same(d.data(), d.size(), pt) || d.metadata != metadata) fail("round trip changed the plaintext");
  }

  format::Header h;
  h.chunk_size = chunk_size;
  h.plaintext_length = pt_len;
  h.metadata = metadata;
  const uint64_t chunks = h.chunk_count();
  const size_t stride = chunk_size + format::kTagSize;

  Bytes blob = original;
  Bytes use_key = key;
  const int ops = p.ConsumeIntegralInRange(1, 4);
  for (int k = 0; k < ops && (p.remaining_bytes() || k == 0); ++k) {
    switch (p.ConsumeIntegralInRange(0, 11)) {
      case 0: {  // flip one bit
        if (blob.empty()) break;
        blob[pick(p, blob.size())] ^= static_cast<uint8_t>(1u << p.ConsumeIntegralInRange(0, 7));
        break;
      }
      case 1: {  // write a byte
        if (blob.empty()) break;
        blob[pick(p, blob.size())] = p.ConsumeIntegral<uint8_t>();
        break;
      }
      case 2:  // truncate
        blob.resize(pick(p, blob.size() + 1));
        break;
      case 3: {  // append bytes
        const Bytes extra = p.ConsumeBytes<uint8_t>(p.ConsumeIntegralInRange<size_t>(1, 64));
        blob.insert(blob.end(), extra.begin(), extra.end());
        break;
      }
      case 4: {  // delete a range
        const size_t a = pick(p, blob.size() + 1);
        const size_t n = p.ConsumeIntegralInRange<size_t>(0, blob.size() - a);
        blob.erase(blob.begin() + a, blob.begin() + a + n);
        break;
      }
      case 5: {  // insert bytes
        const size_t a = pick(p, blob.size() + 1);
        const Bytes extra = p.ConsumeBytes<uint8_t>(p.ConsumeIntegralInRange<size_t>(1, 32));
        blob.insert(blob.begin() + a, extra.begin(), extra.end());
        break;
      }
      case 6: {  // swap two whole chunks (ciphertext + tag), where the layout is still the original one
        if (blob.size() != original.size() || chunks < 2) break;
        const uint64_t i = pick(p, chunks - 1), j = pick(p, chunks - 1);  // full-size chunks only
        if (i == j) break;
        std::swap_ranges(blob.begin() + h.chunk_file_offset(i), blob.begin() + h.chunk_file_offset(i) + stride,
                         blob.begin() + h.chunk_file_offset(j));
        break;
      }
      case 7: {  // duplicate a chunk, or drop the last one (with its tag)
        if (blob.size() != original.size()) break;
        const uint64_t i = pick(p, chunks);
        const size_t at = h.chunk_file_offset(i), n = h.chunk_plaintext_size(i) + format::kTagSize;
        if (p.ConsumeBool()) {
          const Bytes copy(blob.begin() + at, blob.begin() + at + n);
          blob.insert(blob.begin() + at + n, copy.begin(), copy.end());
        } else {
          blob.erase(blob.begin() + at, blob.begin() + at + n);
        }
        break;
      }
      case 8: {  // splice a range from the second genuine file (same key, same plaintext, other salt)
        if (blob.size() != second.size()) break;
        const size_t a = pick(p, blob.size());
        const size_t n = p.ConsumeIntegralInRange<size_t>(1, blob.size() - a);
        std::copy(second.begin() + a, second.begin() + a + n, blob.begin() + a);
        break;
      }
      case 9: {  // splice a whole chunk, the header, or the header's salt/commitment from the second file
        if (blob.size() != second.size()) break;
        const int what = p.ConsumeIntegralInRange(0, 2);
        size_t a = 0, n = 0;
        if (what == 0) {
          const uint64_t i = pick(p, chunks);
          a = h.chunk_file_offset(i);
          n = h.chunk_plaintext_size(i) + format::kTagSize;
        } else if (what == 1) {
          n = h.header_length();
        } else {
          a = 32;
          n = format::kSaltSize + format::kCommitmentSize;
        }
        std::copy(second.begin() + a, second.begin() + a + n, blob.begin() + a);
        break;
      }
      case 10: {  // a wrong key of the same or another length
        use_key = fuzz::counting_key(0x41, kKeyLengths[p.ConsumeIntegralInRange(0, 2)]);
        if (p.ConsumeBool()) {  // or one bit away from the right key
          use_key = key;
          use_key[pick(p, use_key.size())] ^= 0x80;
        }
        break;
      }
      default: {  // rewrite a header field (chunk size, lengths, version, reserved) to a fuzz value
        if (blob.size() < format::kFixedHeaderSize) break;
        static const size_t kFields[] = {8, 10, 12, 16, 24, 28};
        const size_t at = kFields[p.ConsumeIntegralInRange(0, 5)];
        const uint32_t v = p.ConsumeIntegral<uint32_t>();
        std::memcpy(blob.data() + at, &v, 4);
        break;
      }
    }
  }

  Decrypted d;
  if (decrypt(blob, use_key, d) == Status::ok) {
    if (!fuzz::same(d.data(), d.size(), pt) || d.metadata != metadata) fail("SILENT WRONG PLAINTEXT from a mutated file");
    if (blob != original && blob != second) fail("a modified file (neither genuine file) was accepted");
    if (use_key != key) fail("a wrong key was accepted");
  }
  return 0;
}
