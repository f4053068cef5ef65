// Key hygiene of the core: master keys and the per-file keys derived from them (HKDF PRK, payload
// key, header MAC key) must never be given back to the heap unwiped. The heap watch records every
// block freed through operator delete while the core encrypts, decrypts, loads, verifies, fails
// authentication, reads legacy formats and grows SecretBytes; afterwards no recorded block may
// contain any of those keys. A positive control (a plain std::vector / std::string holding a key)
// shows that the watch does see unwiped keys.
// usage: test_key_wipe [WORKDIR]
#include <array>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "check.hpp"
#include "container.hpp"
#include "crypto.hpp"
#include "errors.hpp"
#include "format.hpp"
#include "heap_watch.hpp"
#include "legacy.hpp"

using namespace modelcrypt;

namespace {

using Key32 = std::array<uint8_t, 32>;

Key32 random_key() {
  Key32 k;
  crypto::random_bytes(k.data(), k.size());
  return k;
}

ByteView view(const Key32& k) { return {k.data(), k.size()}; }
ByteView view(const std::vector<uint8_t>& v) { return {v.data(), v.size()}; }

void write_file(const std::string& path, const std::vector<uint8_t>& data) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || std::fwrite(data.data(), 1, data.size(), f) != data.size() || std::fclose(f) != 0) {
    std::perror(path.c_str());
    std::exit(2);
  }
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::vector<uint8_t> out;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return out;
  uint8_t buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.insert(out.end(), buf, buf + n);
  std::fclose(f);
  return out;
}

// The keys a modelcrypt file's salt derives from a master key (copied out of SecretBytes, which are
// gone again before any recording starts).
struct Derived {
  Key32 prk, payload, mac;
};
Derived derive(const Key32& master, const std::vector<uint8_t>& file) {
  Derived d;
  const uint8_t* salt = file.data() + 32;
  const SecretBytes prk = crypto::hkdf_sha256_extract(view(master), {salt, format::kSaltSize});
  const format::FileKeys keys = format::derive_file_keys(view(master), salt);
  std::memcpy(d.prk.data(), prk.data(), 32);
  std::memcpy(d.payload.data(), keys.payload_key.data(), 32);
  std::memcpy(d.mac.data(), keys.mac_key.data(), 32);
  return d;
}

// No recorded block holds `secret` (all of it, or its first 16 bytes: a 128-bit key schedule
// prefix or a truncated copy would be just as bad).
void expect_absent(const Key32& secret, const std::string& what) {
  const size_t full = heap_watch::blocks_containing(secret.data(), secret.size());
  const size_t half = heap_watch::blocks_containing(secret.data(), 16);
  CHECK_MSG(full == 0 && half == 0, what + ": " + std::to_string(half) + " freed heap block(s) still held it");
}

void expect_absent(const Key32& master, const Derived& d, const std::string& what) {
  expect_absent(master, what + ", master key");
  expect_absent(d.prk, what + ", HKDF PRK");
  expect_absent(d.payload, what + ", payload key");
  expect_absent(d.mac, what + ", header MAC key");
}

template <class F>
Status status_of(F&& f) {
  try {
    f();
    return Status::ok;
  } catch (const Error& e) {
    return e.status();
  }
}

void test_watch_sees_plain_containers() {
  const Key32 secret = random_key();
  heap_watch::start();
  { std::vector<uint8_t> v(secret.begin(), secret.end()); }
  { std::string s(reinterpret_cast<const char*>(secret.data()), secret.size()); }
  heap_watch::stop();
  CHECK(heap_watch::blocks_containing(secret.data(), secret.size()) == 2);
}

void test_secret_bytes() {
  const Key32 secret = random_key();
  heap_watch::start();
  { SecretBytes s(secret.begin(), secret.end()); }
  {
    SecretBytes grown;  // every reallocation gives the old storage back through the wiping allocator
    for (int round = 0; round < 4; ++round) grown.insert(grown.end(), secret.begin(), secret.end());
    grown.shrink_to_fit();
    SecretBytes copy = grown;
    copy = SecretBytes(secret.begin(), secret.end());
  }
  {
    const SecretBytes out = crypto::hkdf_sha256(view(secret), {}, {}, 64);
    const SecretBytes prk = crypto::hkdf_sha256_extract(view(secret), {});
    const SecretBytes okm = crypto::hkdf_sha256_expand({prk.data(), prk.size()}, {}, 32);
  }
  { crypto::AesGcm gcm(view(secret)); }
  heap_watch::stop();
  CHECK(heap_watch::blocks() > 0 && !heap_watch::overflowed());
  expect_absent(secret, "SecretBytes / HKDF / AesGcm");
}

void test_modelcrypt_paths(const check::WorkDir& dir) {
  const Key32 master = random_key(), other = random_key();
  std::vector<uint8_t> pt(200000);
  for (size_t i = 0; i < pt.size(); ++i) pt[i] = static_cast<uint8_t>(i * 7 + 3);
  EncryptOptions options;
  options.chunk_size = 8192;
  options.threads = 4;
  const std::string meta = "{\"k\": 1}";
  options.metadata = {reinterpret_cast<const uint8_t*>(meta.data()), meta.size()};
  std::vector<uint8_t> blob(encrypted_length(pt.size(), options));
  encrypt_memory(view(pt), view(master), "AES-GCM", options, blob.data(), blob.size());
  const Derived keys = derive(master, blob);
  const std::string path = dir.file("keys.mcx"), out = dir.file("keys.out"), src = dir.file("keys.bin");
  write_file(path, blob);
  write_file(src, pt);
  std::vector<uint8_t> tampered = blob;
  tampered[tampered.size() - 1] ^= 0x80;
  const std::string tampered_path = dir.file("tampered.mcx");
  write_file(tampered_path, tampered);

  // Readers: the file's keys are known in advance.
  heap_watch::start();
  {
    const format::FileKeys k = format::derive_file_keys(view(master), blob.data() + 32);
    Decrypted a = decrypt_memory(view(blob), view(master), "AES-GCM", "modelcrypt", 4);
    Decrypted b = load_file(path, view(master), "aes-gcm", "modelcrypt", 4);
    Decrypted c = load_range(path, view(master), "AES-GCM", 9000, 30000, 3);
    CHECK(a.size() == pt.size() && b.size() == pt.size() && c.size() == 30000);
    CHECK(std::memcmp(b.data(), pt.data(), pt.size()) == 0 && std::memcmp(c.data(), pt.data() + 9000, 30000) == 0);
    CHECK(verify_file(path, view(master), "AES-GCM", "modelcrypt", 2).empty());
    CHECK(decrypt_file(path, out, view(master), "AES-GCM", "modelcrypt", 2).empty());
    (void)inspect_file(path);
    CHECK(status_of([&] { (void)load_file(path, view(other), "AES-GCM", "modelcrypt", 2); }) == Status::key_mismatch);
    CHECK(status_of([&] { (void)decrypt_memory(view(tampered), view(master), "AES-GCM", "modelcrypt", 2); }) == Status::auth_failed);
    CHECK(status_of([&] { (void)load_file(tampered_path, view(master), "AES-GCM", "modelcrypt", 2); }) == Status::auth_failed);
    CHECK(status_of([&] { (void)verify_file(tampered_path, view(master), "AES-GCM", "modelcrypt", 2); }) == Status::auth_failed);
    CHECK(status_of([&] { (void)decrypt_file(tampered_path, out + "2", view(master), "AES-GCM", "modelcrypt", 2); }) == Status::auth_failed);
  }
  heap_watch::stop();
  CHECK(heap_watch::blocks() > 0 && !heap_watch::overflowed());
  CHECK(read_file(out) == pt);
  expect_absent(master, keys, "readers");
  expect_absent(other, "readers, wrong key");

  // Writers: each output has a fresh salt, so its keys are derived after the fact from the output.
  std::vector<uint8_t> mem_out(blob.size());
  const std::string enc_file = dir.file("w1.mcx"), enc_parts = dir.file("w2.mcx");
  const std::vector<ByteView> parts = {{pt.data(), 1000}, {pt.data() + 1000, pt.size() - 1000}};
  heap_watch::start();
  encrypt_memory(view(pt), view(master), "AES-GCM", options, mem_out.data(), mem_out.size());
  encrypt_file(src, enc_file, view(master), "AES-GCM", options);
  encrypt_parts_to_file(parts, enc_parts, view(master), "AES-GCM", options);
  heap_watch::stop();
  CHECK(heap_watch::blocks() > 0 && !heap_watch::overflowed());
  expect_absent(master, derive(master, mem_out), "encrypt_memory");
  expect_absent(master, derive(master, read_file(enc_file)), "encrypt_file");
  expect_absent(master, derive(master, read_file(enc_parts)), "encrypt_parts_to_file");
}

void test_legacy_paths(const check::WorkDir& dir) {
  const Key32 master = random_key();
  std::vector<uint8_t> pt(50000);
  for (size_t i = 0; i < pt.size(); ++i) pt[i] = static_cast<uint8_t>(i * 11 + 5);
  const std::string src = dir.file("legacy.bin");
  write_file(src, pt);
  // A Paddle AES-CTR cipher file: IV || AES-256-CTR(plaintext), built here with the core's cipher.
  std::vector<uint8_t> paddle(16 + pt.size());
  crypto::random_bytes(paddle.data(), 16);
  (void)crypto::cipher_crypt("AES-256-CTR", view(master), {paddle.data(), 16}, pt.data(), pt.size(), paddle.data() + 16,
                             true, false);

  heap_watch::start();
  for (const char* mode : {"AES-GCM", "AES-CBC"}) {
    const legacy::Mode m = legacy::parse_mode(mode);
    std::vector<uint8_t> ms(legacy::mindspore_encrypted_length(pt.size(), m));
    legacy::mindspore_encrypt(view(pt), m, view(master), ms.data(), ms.size());
    Decrypted d = decrypt_memory(view(ms), view(master), mode, "mindspore", 2);
    CHECK(d.size() == pt.size() && std::memcmp(d.data(), pt.data(), pt.size()) == 0);
    const std::string path = dir.file(std::string("ms-") + mode);
    legacy::mindspore_encrypt_file(src, path, m, view(master));
    Decrypted e = load_file(path, view(master), mode, "mindspore", 2);
    CHECK(e.size() == pt.size() && std::memcmp(e.data(), pt.data(), pt.size()) == 0);
  }
  {
    Decrypted d = decrypt_memory(view(paddle), view(master), "paddle:AES_CTR_NoPadding", "modelcrypt", 1);
    CHECK(d.size() == pt.size() && std::memcmp(d.data(), pt.data(), pt.size()) == 0);
  }
  heap_watch::stop();
  CHECK(heap_watch::blocks() > 0 && !heap_watch::overflowed());
  expect_absent(master, "legacy formats");
}

}  // namespace

int main(int argc, char** argv) {
  check::WorkDir dir(argc, argv);
  crypto::ensure_initialized();
  test_watch_sees_plain_containers();
  test_secret_bytes();
  test_modelcrypt_paths(dir);
  test_legacy_paths(dir);
  return check::finish();
}
