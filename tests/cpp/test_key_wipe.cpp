// Key hygiene of the core: master keys and the per-file keys derived from them (HKDF PRK, payload
// key, header MAC key) must never be given back to the heap unwiped. The heap watch records every
// block freed through operator delete while the core encrypts, decrypts, loads, verifies, fails
// authentication, reads legacy formats and grows SecretBytes; afterwards no recorded block may
// contain any of those keys. A positive control (a plain std::vector / std::string holding a key)
// shows that the watch does see unwiped keys.
// X25519 identities (format v2 recipients), through the C API: the identity's private key (raw, as
// the 5-bit groups its Bech32 text carries, and as that text), the X25519 shared secret and wrap
// key of its stanza, the per-file file key FK unwrapped from the stanza and the keys derived from
// FK (PRK, payload key, header MAC key, recipients MAC key) must not be in any freed block either,
// after generating, parsing and reading identities, encrypting to their recipients, loading,
// verifying, decrypting, re-wrapping (recipients edit) and wrong-identity failures.
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
#include "c_api_detail.hpp"  // mc_key's layout: the test reads an identity's private key out of it
#include "modelcrypt/modelcrypt.h"
#include "recipient_text.hpp"

using namespace modelcrypt_core;

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

// The same for a secret of any length (an identity's text, its 5-bit groups).
void expect_absent(const std::vector<uint8_t>& secret, const std::string& what) {
  const size_t full = heap_watch::blocks_containing(secret.data(), secret.size());
  const size_t half = heap_watch::blocks_containing(secret.data(), secret.size() / 2);
  CHECK_MSG(full == 0 && half == 0, what + ": " + std::to_string(half) + " freed heap block(s) still held it");
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

// The 32 bytes regrouped into 5-bit values, as Bech32 carries them (before the alphabet lookup).
std::vector<uint8_t> five_bit_groups(const Key32& k) {
  std::vector<uint8_t> out;
  uint32_t acc = 0;
  int bits = 0;
  for (uint8_t b : k) {
    acc = ((acc << 8) | b) & 0xfff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out.push_back(static_cast<uint8_t>((acc >> bits) & 31));
    }
  }
  return out;
}

// Secrets of a format v2 file opened by `identity`, computed from the file with the core's own
// primitives (into SecretBytes, copied out to the stack): FK, its PRK and derived keys, and the
// X25519 shared secret and wrap key of the identity's first stanza.
struct V2Secrets {
  Key32 fk, prk, payload, mac, recipients_mac, shared, wrap;
};
V2Secrets v2_secrets(const std::string& path, const Credential& identity) {
  const std::vector<uint8_t> file = read_file(path);
  const uint64_t h1 = format::header_bytes_needed(file.data(), format::kFixedHeaderSize, file.size());
  const uint64_t h = format::header_bytes_needed(file.data(), static_cast<size_t>(h1), file.size());
  const format::Header header = format::parse_header(file.data(), static_cast<size_t>(h));
  const format::FileKeys keys = format::authenticate_header(header, file.data(), identity, file.size());
  V2Secrets s;
  std::memcpy(s.fk.data(), keys.file_key.data(), 32);
  std::memcpy(s.payload.data(), keys.payload_key.data(), 32);
  std::memcpy(s.mac.data(), keys.mac_key.data(), 32);
  std::memcpy(s.recipients_mac.data(), keys.recipients_mac_key.data(), 32);
  const SecretBytes prk = crypto::hkdf_sha256_extract({keys.file_key.data(), 32}, {header.salt.data(), header.salt.size()});
  std::memcpy(s.prk.data(), prk.data(), 32);
  const std::vector<uint8_t>& body = header.stanzas.at(0).body;  // fingerprint(16) || E(32) || wrapped(48)
  SecretBytes shared(32);
  CHECK(crypto::x25519_shared(identity.private_key().data, body.data() + 16, shared.data()));
  uint8_t salt[64];
  std::memcpy(salt, body.data() + 16, 32);
  std::memcpy(salt + 32, identity.public_key().data(), 32);
  static const char kWrapInfo[] = "modelcrypt v2 x25519 wrap";
  const SecretBytes wrap = crypto::hkdf_sha256({shared.data(), 32}, {salt, sizeof salt},
                                               {reinterpret_cast<const uint8_t*>(kWrapInfo), sizeof kWrapInfo - 1}, 32);
  std::memcpy(s.shared.data(), shared.data(), 32);
  std::memcpy(s.wrap.data(), wrap.data(), 32);
  return s;
}

void expect_absent(const V2Secrets& s, const std::string& what) {
  expect_absent(s.fk, what + ", file key FK");
  expect_absent(s.prk, what + ", HKDF PRK of FK");
  expect_absent(s.payload, what + ", payload key");
  expect_absent(s.mac, what + ", header MAC key");
  expect_absent(s.recipients_mac, what + ", recipients MAC key");
  expect_absent(s.shared, what + ", X25519 shared secret");
  expect_absent(s.wrap, what + ", stanza wrap key");
}

// An identity's private key, out of the C API's opaque mc_key (onto the stack).
Key32 private_key_of(const mc_key* key) {
  Key32 k{};
  const ByteView v = key->credential.private_key();
  CHECK(v.size == 32);
  std::memcpy(k.data(), v.data, 32);
  return k;
}

std::string recipient_of(const mc_key* key) {
  mc_buffer* b = nullptr;
  CHECK(mc_key_recipient(key, &b) == MC_OK);
  std::string r(reinterpret_cast<const char*>(mc_buffer_data(b)), mc_buffer_size(b));
  mc_buffer_free(b);
  return r;
}

void test_identity_paths(const check::WorkDir& dir) {
  std::vector<uint8_t> pt(120000);
  for (size_t i = 0; i < pt.size(); ++i) pt[i] = static_cast<uint8_t>(i * 13 + 1);
  const std::string src = dir.file("id.bin"), path = dir.file("id.mcx"), out = dir.file("id.out");
  const std::string id_file = dir.file("id.identity"), path2 = dir.file("id2.mcx");
  write_file(src, pt);
  Key32 priv{}, priv2{};
  std::vector<uint8_t> text, text2;  // the identities' Bech32 text (copied after the watch stops)
  V2Secrets secrets{}, secrets2{};

  heap_watch::start();
  {
    mc_key* ident = nullptr;
    mc_key* second = nullptr;
    CHECK(mc_key_generate_identity(&ident) == MC_OK && mc_key_is_identity(ident) == 1);
    CHECK(mc_key_generate_identity(&second) == MC_OK);
    priv = private_key_of(ident);
    priv2 = private_key_of(second);
    const std::string recipient = recipient_of(ident), recipient2 = recipient_of(second);
    const char* to[] = {recipient.c_str()};
    CHECK(mc_encrypt_file_to_recipients(src.c_str(), path.c_str(), to, 1, nullptr, "AES-GCM") == MC_OK);
    secrets = v2_secrets(path, ident->credential);

    // its text, parsed back (mc_key_parse) and read from a file (mc_key_read_file)
    {
      const SecretBytes t = recipient_text::format_identity({priv.data(), priv.size()});
      FILE* f = std::fopen(id_file.c_str(), "wb");
      CHECK(f != nullptr && std::fwrite(t.data(), 1, t.size(), f) == t.size() && std::fclose(f) == 0);
      mc_key* parsed = nullptr;
      CHECK(mc_key_parse(reinterpret_cast<const char*>(t.data()), t.size(), &parsed) == MC_OK);
      CHECK(parsed != nullptr && private_key_of(parsed) == priv);
      mc_key_free(parsed);
    }
    mc_key* from_file = nullptr;
    CHECK(mc_key_read_file(id_file.c_str(), &from_file) == MC_OK && mc_key_is_identity(from_file) == 1);

    // readers
    for (const mc_key* k : {static_cast<const mc_key*>(ident), static_cast<const mc_key*>(from_file)}) {
      mc_buffer* b = nullptr;
      CHECK(mc_load_with_key(path.c_str(), k, nullptr, nullptr, 2, &b) == MC_OK);
      CHECK(b != nullptr && mc_buffer_size(b) == pt.size() && std::memcmp(mc_buffer_data(b), pt.data(), pt.size()) == 0);
      mc_buffer_free(b);
    }
    {
      mc_buffer* b = nullptr;
      CHECK(mc_load_range_with_key(path.c_str(), ident, nullptr, 5000, 40000, 2, &b) == MC_OK);
      CHECK(b != nullptr && mc_buffer_size(b) == 40000 && std::memcmp(mc_buffer_data(b), pt.data() + 5000, 40000) == 0);
      mc_buffer_free(b);
      const std::vector<uint8_t> blob = read_file(path);
      CHECK(mc_decrypt_memory_with_key(blob.data(), blob.size(), ident, nullptr, nullptr, &b) == MC_OK);
      CHECK(b != nullptr && mc_buffer_size(b) == pt.size());
      mc_buffer_free(b);
    }
    CHECK(mc_verify_file_with_key(path.c_str(), ident, nullptr, nullptr, 2) == MC_OK);
    CHECK(mc_decrypt_file_with_key(path.c_str(), out.c_str(), ident, nullptr, nullptr, 2) == MC_OK);
    {
      mc_buffer* b = nullptr;
      CHECK(mc_load_with_key(path.c_str(), second, nullptr, nullptr, 2, &b) == MC_KEY_MISMATCH && b == nullptr);
    }

    // re-wrapping FK for another recipient and removing it again (FK unwrapped, new stanza sealed)
    const char* add[] = {recipient2.c_str()};
    CHECK(mc_recipients_edit(path.c_str(), from_file, add, 1, nullptr, 0) == MC_OK);
    {
      mc_buffer* b = nullptr;
      CHECK(mc_load_with_key(path.c_str(), second, nullptr, nullptr, 2, &b) == MC_OK && mc_buffer_size(b) == pt.size());
      mc_buffer_free(b);
    }
    CHECK(mc_recipients_edit(path.c_str(), second, nullptr, 0, to, 1) == MC_OK);
    CHECK(mc_verify_file_with_key(path.c_str(), ident, nullptr, nullptr, 2) == MC_KEY_MISMATCH);

    // a file to both recipients, opened by the second one
    const char* both[] = {recipient.c_str(), recipient2.c_str()};
    CHECK(mc_encrypt_file_to_recipients(src.c_str(), path2.c_str(), both, 2, nullptr, "AES-GCM") == MC_OK);
    secrets2 = v2_secrets(path2, second->credential);
    {
      mc_buffer* b = nullptr;
      CHECK(mc_load_with_key(path2.c_str(), second, nullptr, nullptr, 1, &b) == MC_OK && mc_buffer_size(b) == pt.size());
      mc_buffer_free(b);
    }
    mc_key_free(from_file);
    mc_key_free(second);
    mc_key_free(ident);
  }
  heap_watch::stop();
  CHECK(heap_watch::blocks() > 0 && !heap_watch::overflowed());
  CHECK(read_file(out) == pt);
  {
    const SecretBytes t = recipient_text::format_identity({priv.data(), priv.size()});
    const SecretBytes t2 = recipient_text::format_identity({priv2.data(), priv2.size()});
    text.assign(t.begin(), t.end());
    text2.assign(t2.begin(), t2.end());
  }
  CHECK(text.size() > 60);
  expect_absent(priv, "identity, private key");
  expect_absent(five_bit_groups(priv), "identity, private key as Bech32 5-bit groups");
  expect_absent(text, "identity, its text");
  expect_absent(priv2, "second identity, private key");
  expect_absent(five_bit_groups(priv2), "second identity, private key as Bech32 5-bit groups");
  expect_absent(text2, "second identity, its text");
  expect_absent(secrets, "file to the identity");
  expect_absent(secrets2, "file to both identities");
}

// Positive control for the identity checks: the same secrets in plain containers are seen.
void test_watch_sees_identity_secrets() {
  mc_key* ident = nullptr;
  CHECK(mc_key_generate_identity(&ident) == MC_OK);
  const Key32 priv = private_key_of(ident);
  const std::vector<uint8_t> five = five_bit_groups(priv);
  heap_watch::start();
  { std::vector<uint8_t> v(priv.begin(), priv.end()); }
  { std::vector<uint8_t> v(five.begin(), five.end()); }
  heap_watch::stop();
  mc_key_free(ident);
  CHECK(heap_watch::blocks_containing(priv.data(), priv.size()) == 1);
  CHECK(heap_watch::blocks_containing(five.data(), five.size()) == 1);
}

}  // namespace

int main(int argc, char** argv) {
  check::WorkDir dir(argc, argv);
  crypto::ensure_initialized();
  test_watch_sees_plain_containers();
  test_secret_bytes();
  test_modelcrypt_paths(dir);
  test_legacy_paths(dir);
  test_watch_sees_identity_secrets();
  test_identity_paths(dir);
  return check::finish();
}
