// libFuzzer harness: arbitrary bytes as a file image read as format v3 (docs/FORMAT.md "Format version
// 3"), and as signer / signing-key text:
//  * decrypt_memory with the fixed key (bytes 00..1f) requiring the fixed signer (seed bytes 40..5f):
//    any success must give the same plaintext as the read without the signature requirement, and the
//    bytes must be a version 3 file;
//  * load_file (same bytes from a file, same credential) must agree with decrypt_memory;
//  * verify_signature_file (keyless) must succeed whenever the keyed, signed read did, and name the signer;
//  * signing_text::parse_signer / parse_signers_list / parse_signing_key on the bytes as text; what
//    parses must format back to a text that parses to the same key.
// Seeds in tests/fuzz/fuzz_v3_signature/ are files signed with that signer (tests/fuzz/make_seeds.py).
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "../src/container.hpp"
#include "../src/signing_text.hpp"
#include "fuzz_common.hpp"

using namespace modelcrypt_core;
using modelcrypt_core::fuzz::fail;
using modelcrypt_core::fuzz::guarded;

namespace {

const std::vector<uint8_t> kKey = fuzz::counting_key(0x00, 32);
const std::vector<uint8_t> kSeed = fuzz::counting_key(0x40, 32);

const signature::PublicKey& signer() {
  static const signature::PublicKey pk = signature::SigningKey::from_seed({kSeed.data(), kSeed.size()}).public_key();
  return pk;
}

const std::string& temp_path() {
  static const std::string path = [] {
    const char* dir = std::getenv("MC_FUZZ_TMPDIR");
    if (dir == nullptr || *dir == 0) dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : std::getenv("TMPDIR");
    std::string tmpl = std::string(dir && *dir ? dir : "/tmp") + "/mc_fuzz_v3_XXXXXX";
    const int fd = mkstemp(tmpl.data());
    if (fd < 0) fail("mkstemp failed");
    close(fd);
    return tmpl;
  }();
  return path;
}

void write_file(const uint8_t* data, size_t size) {
  const int fd = open(temp_path().c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) fail("cannot open the temporary file");
  size_t done = 0;
  while (done < size) {
    const ssize_t n = write(fd, data + done, size - done);
    if (n <= 0) fail("cannot write the temporary file");
    done += static_cast<size_t>(n);
  }
  close(fd);
}

void texts(const std::vector<uint8_t>& image) {
  const std::string_view text(reinterpret_cast<const char*>(image.data()), image.size());
  guarded("parse_signer", [&] {
    const signature::PublicKey k = signing_text::parse_signer(text);
    if (signing_text::parse_signer(signing_text::format_signer(k)) != k) fail("signer text does not round-trip");
  });
  guarded("parse_signers_list", [&] { signing_text::parse_signers_list(text, "fuzz input"); });
  guarded("parse_signing_key", [&] {
    const SecretBytes seed = signing_text::parse_signing_key({image.data(), image.size()}, "fuzz input");
    if (seed.size() != 32) fail("a signing key that is not 32 bytes");
    const SecretBytes again = signing_text::format_signing_key({seed.data(), seed.size()});
    if (signing_text::parse_signing_key({again.data(), again.size()}, "round trip") != seed) {
      fail("signing key text does not round-trip");
    }
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> image(data, data + size);  // exact-size heap copy for ASan
  const ByteView blob{image.data(), image.size()};
  Credential trusting(ByteView{kKey.data(), kKey.size()});
  trusting.require_signers({signer()});
  const Credential plain(ByteView{kKey.data(), kKey.size()});

  Decrypted signed_read;
  const Status signed_status = guarded("decrypt_memory (trust)", [&] {
    signed_read = decrypt_memory(blob, trusting, "AES-GCM", "modelcrypt", 1);
  });
  if (signed_status == Status::ok) {
    if (size < 10 || image[8] != 3 || image[9] != 0) fail("a signature was accepted on a file that is not version 3");
    Decrypted unsigned_read;
    const Status s = guarded("decrypt_memory", [&] { unsigned_read = decrypt_memory(blob, plain, "AES-GCM", "modelcrypt", 1); });
    if (s != Status::ok || unsigned_read.size() != signed_read.size() ||
        (signed_read.size() && std::memcmp(unsigned_read.data(), signed_read.data(), signed_read.size()) != 0)) {
      fail("the signed read and the plain read disagree");
    }
  }

  write_file(image.data(), image.size());
  Decrypted file;
  const Status file_status = guarded("load_file (trust)", [&] { file = load_file(temp_path(), trusting, "AES-GCM", "modelcrypt", 1); });
  if (file_status != signed_status) {
    fail(std::string("load_file status ") + status_name(file_status) + " != decrypt_memory status " + status_name(signed_status));
  }
  signature::PublicKey who{};
  const Status keyless = guarded("verify_signature_file", [&] { who = verify_signature_file(temp_path(), {signer()}, 1); });
  if (signed_status == Status::ok && (keyless != Status::ok || who != signer())) {
    fail("keyless verification rejects a file the keyed signed read accepted");
  }
  unlink(temp_path().c_str());
  texts(image);
  return 0;
}
