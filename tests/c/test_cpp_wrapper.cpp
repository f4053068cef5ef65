// Checks the header-only C++ wrapper (modelcrypt.hpp): Key parsing, Buffer ownership, Error status.
// Built by tests/test_native_api.py with c++ -std=c++17 -Wall -Wextra -Werror. usage: WORKDIR
#include <modelcrypt/modelcrypt.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

static int passed, failed;
#define CHECK(cond)                                                     \
  do {                                                                  \
    if (cond) ++passed;                                                 \
    else { ++failed; std::printf("FAILED line %d: %s\n", __LINE__, #cond); } \
  } while (0)

template <class F>
static mc_status status_of(F&& f) {
  try {
    f();
    return MC_OK;
  } catch (const modelcrypt::Error& e) {
    return e.status();
  }
}

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const std::string dir = argv[1];
  using modelcrypt::Key;
  const Key hex = Key::FromHex(" 30313233343536373839414243444546\n");
  CHECK(hex.size() == 16 && std::memcmp(hex.data(), "0123456789ABCDEF", 16) == 0);
  const Key b64 = Key::FromBase64("MDEyMzQ1Njc4OUFCQ0RFRg==");
  CHECK(b64.size() == 16 && std::memcmp(b64.data(), "0123456789ABCDEF", 16) == 0);
  const Key raw = Key::FromBytes("0123456789ABCDEF0123456789ABCDEF", 32);
  CHECK(raw.size() == 32);
  const Key b64_32 = Key::FromBase64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
  CHECK(b64_32.size() == 32 && b64_32.data()[31] == 31);
  CHECK(status_of([] { Key::FromHex("3031"); }) == MC_INVALID_ARGUMENT);            // too short
  CHECK(status_of([] { Key::FromHex("303132333435363738394142434445GG"); }) == MC_INVALID_ARGUMENT);
  CHECK(status_of([] { Key::FromHex("303"); }) == MC_INVALID_ARGUMENT);             // odd
  CHECK(status_of([] { Key::FromBase64("MDEyMzQ1Njc4OUFCQ0RFRg="); }) == MC_INVALID_ARGUMENT);  // bad length
  CHECK(status_of([] { Key::FromBase64("MDEyMzQ1Njc4OUFCQ0RF*g=="); }) == MC_INVALID_ARGUMENT);
  CHECK(status_of([] { Key::FromBase64("MDEy=zQ1Njc4OUFCQ0RFRg=="); }) == MC_INVALID_ARGUMENT);
  CHECK(status_of([] { Key::FromBytes("short", 5); }) == MC_INVALID_ARGUMENT);

  const std::string model = "not really a model, but bytes all the same";
  modelcrypt::Buffer enc = modelcrypt::EncryptMemory(model.data(), model.size(), hex);
  CHECK(enc.size() > model.size());
  const std::string path = dir + "/wrapper.mcx";
  std::FILE* f = std::fopen(path.c_str(), "wb");
  CHECK(f && std::fwrite(enc.data(), 1, enc.size(), f) == enc.size());
  if (f) std::fclose(f);
  modelcrypt::Buffer loaded = modelcrypt::Load(path, hex);
  CHECK(std::string(loaded.begin(), loaded.end()) == model);
  modelcrypt::Buffer moved = std::move(loaded);
  CHECK(loaded.size() == 0 && loaded.data() == nullptr && moved.size() == model.size());
  modelcrypt::Buffer from_memory = modelcrypt::DecryptMemory(enc.data(), enc.size(), b64);
  CHECK(from_memory.size() == model.size());
  CHECK(status_of([&] { modelcrypt::Load(path, raw); }) == MC_KEY_MISMATCH);
  CHECK(status_of([&] { modelcrypt::Load(dir + "/missing.mcx", raw); }) == MC_IO);
  CHECK(status_of([&] { modelcrypt::Load(path, hex, "AES-CBC"); }) == MC_INVALID_ARGUMENT);
  try {
    modelcrypt::Load(path, raw);
  } catch (const modelcrypt::Error& e) {
    CHECK(std::string(e.what()).rfind("KEY_MISMATCH: ", 0) == 0);
  }
  modelcrypt::EncryptFile(path, dir + "/wrapper2.mcx", hex);
  modelcrypt::DecryptFile(dir + "/wrapper2.mcx", dir + "/wrapper2.bin", hex);
  // parity with Python (issue 13): Verify, LoadRange, metadata, Inspect, key text/file/env, threads
  modelcrypt::Verify(path, hex);
  CHECK(status_of([&] { modelcrypt::Verify(path, raw); }) == MC_KEY_MISMATCH);
  modelcrypt::Buffer part = modelcrypt::LoadRange(path, hex, 4, 6, "AES-GCM", 1);
  CHECK(std::string(part.begin(), part.end()) == model.substr(4, 6));
  CHECK(part.metadata() == "{}");
  CHECK(status_of([&] { modelcrypt::LoadRange(path, hex, model.size(), 1); }) == MC_INVALID_ARGUMENT);
  // decrypting into the caller's memory (issue 18): raw key and key object alike
  std::vector<char> into(model.size() + 4, 'x');
  CHECK(modelcrypt::LoadInto(path, hex, into.data(), into.size()) == model.size());
  CHECK(std::string(into.data(), model.size()) == model && into[model.size()] == 'x');
  std::vector<char> part_into(6);
  modelcrypt::LoadRangeInto(path, hex, 4, 6, part_into.data(), part_into.size(), "AES-GCM", 1);
  CHECK(std::string(part_into.begin(), part_into.end()) == model.substr(4, 6));
  CHECK(status_of([&] { modelcrypt::LoadInto(path, hex, into.data(), model.size() - 1); }) == MC_INVALID_ARGUMENT);
  CHECK(status_of([&] { modelcrypt::LoadInto(path, raw, into.data(), into.size()); }) == MC_KEY_MISMATCH);
  const std::string info = modelcrypt::Inspect(path);
  CHECK(info.find("\"plaintext_length\":" + std::to_string(model.size())) != std::string::npos);
  CHECK(modelcrypt::Load(path, hex, "AES-GCM", "modelcrypt", 2).size() == model.size());
  const Key text = Key::FromText("0x30313233343536373839414243444546");
  CHECK(text.size() == 16 && std::memcmp(text.data(), "0123456789ABCDEF", 16) == 0);
  const Key hex0x = Key::FromHex("0X30313233343536373839414243444546");
  CHECK(hex0x.size() == 16);
  const std::string keyfile = dir + "/wrapper.key";
  f = std::fopen(keyfile.c_str(), "wb");
  CHECK(f && std::fputs("MDEyMzQ1Njc4OUFCQ0RFRg==\n", f) >= 0);
  if (f) std::fclose(f);
  CHECK(modelcrypt::Load(path, Key::FromFile(keyfile)).size() == model.size());
  CHECK(status_of([&] { Key::FromFile(dir + "/missing.key"); }) == MC_IO);
  CHECK(status_of([] { Key::FromEnv("MC_WRAPPER_TEST_UNSET"); }) == MC_INVALID_ARGUMENT);
  CHECK(status_of([] { Key::FromText("0123"); }) == MC_INVALID_ARGUMENT);
  CHECK(!modelcrypt::Version().empty());
  CHECK(modelcrypt::OpenSSLVersion().rfind("OpenSSL 3.", 0) == 0);

  // Format v2: an identity is a Key too, and Load(path, key, mode) takes either.
  const Key device = Key::GenerateIdentity();
  CHECK(device.is_identity() && device.size() == 0 && device.Recipient().rfind("modelcrypt1", 0) == 0);
  const Key other = Key::GenerateIdentity();
  const std::string plain_path = dir + "/wrapper_plain.bin", v2 = dir + "/wrapper_v2.mcx";
  f = std::fopen(plain_path.c_str(), "wb");
  CHECK(f && std::fwrite(model.data(), 1, model.size(), f) == model.size());
  if (f) std::fclose(f);
  modelcrypt::EncryptFileToRecipients(plain_path, v2, {device.Recipient()}, &hex);
  modelcrypt::Buffer opened = modelcrypt::Load(v2, device, "AES-GCM");
  CHECK(opened.size() == model.size() && std::memcmp(opened.data(), model.data(), model.size()) == 0);
  CHECK(modelcrypt::Load(v2, hex).size() == model.size());
  CHECK(modelcrypt::LoadRange(v2, device, 1, 2).size() == 2);
  CHECK(status_of([&] { modelcrypt::Load(v2, other); }) == MC_KEY_MISMATCH);
  CHECK(status_of([&] { modelcrypt::Verify(v2, other); }) == MC_KEY_MISMATCH);
  modelcrypt::Verify(v2, device);
  const std::string idfile = dir + "/wrapper.identity";
  f = std::fopen(idfile.c_str(), "wb");
  CHECK(f && std::fputs("# created by the test\n", f) >= 0);
  if (f) std::fclose(f);
  CHECK(status_of([&] { Key::FromFile(idfile); }) == MC_INVALID_ARGUMENT);

  // Format v3: a signed model; Load(path, key, mode) with a key that requires the publisher.
  const modelcrypt::SigningKey publisher = modelcrypt::SigningKey::Generate();
  const std::string v3 = dir + "/wrapper_v3.mcx";
  modelcrypt::EncryptFileSigned(plain_path, v3, publisher, &hex);
  Key trusting = Key::FromHex("30313233343536373839414243444546");
  trusting.RequireSigner(publisher.PublicKey());
  CHECK(!trusting.is_identity() && trusting.handle() != nullptr);
  modelcrypt::Buffer signed_model = modelcrypt::Load(v3, trusting, "AES-GCM");
  CHECK(signed_model.size() == model.size() && std::memcmp(signed_model.data(), model.data(), model.size()) == 0);
  CHECK(modelcrypt::LoadRange(v3, trusting, 3, 4).size() == 4);
  CHECK(status_of([&] { modelcrypt::Load(v2, trusting); }) == MC_SIGNATURE);  // v2: not signed
  Key wary = Key::FromHex("30313233343536373839414243444546");
  wary.RequireSigner(modelcrypt::SigningKey::Generate().PublicKey());
  CHECK(status_of([&] { modelcrypt::Load(v3, wary); }) == MC_SIGNATURE);
  CHECK(modelcrypt::VerifySignature(v3, {publisher.PublicKey()}) == publisher.PublicKey());
  CHECK(status_of([&] { modelcrypt::VerifySignature(v2, {publisher.PublicKey()}); }) == MC_SIGNATURE);
  // a key that requires a signer still encrypts (and signs) with its bytes
  const std::string v1_again = dir + "/wrapper_trusting.mcx";
  modelcrypt::EncryptFile(plain_path, v1_again, trusting);
  CHECK(status_of([&] { modelcrypt::Load(v1_again, trusting); }) == MC_SIGNATURE);  // v1: not signed
  CHECK(modelcrypt::Load(v1_again, hex).size() == model.size());
  const std::string v3_again = dir + "/wrapper_v3_again.mcx";
  modelcrypt::EncryptFileSigned(plain_path, v3_again, publisher, &trusting);
  CHECK(modelcrypt::Load(v3_again, trusting).size() == model.size());

  // EncryptFile with options: to a recipient and the key, signed, small chunks, metadata, no fsync
  modelcrypt::EncryptOptions options;
  options.recipients = {device.Recipient()};
  options.signer = &publisher;
  options.chunk_size = 4096;
  options.threads = 2;
  options.metadata = "{\"model\":\"tiny\"}";
  options.fsync = false;
  const std::string with_options = dir + "/wrapper_options.mcx";
  modelcrypt::EncryptFile(plain_path, with_options, &hex, options);
  modelcrypt::Buffer by_device = modelcrypt::Load(with_options, device);
  CHECK(by_device.size() == model.size() && std::memcmp(by_device.data(), model.data(), model.size()) == 0);
  CHECK(std::string(by_device.metadata()) == options.metadata);
  CHECK(modelcrypt::Load(with_options, trusting).size() == model.size());  // signed by the publisher
  CHECK(modelcrypt::Inspect(with_options).find("\"chunk_size\":4096") != std::string::npos);
  options.chunk_size = 7;
  CHECK(status_of([&] { modelcrypt::EncryptFile(plain_path, dir + "/bad.mcx", &hex, options); }) == MC_INVALID_ARGUMENT);

  // Load through the caller's read callback: a symmetric key and an identity; a throwing callback's
  // exception comes back as itself; a source that ends early is an Error(MC_IO)
  {
    std::FILE* f = std::fopen(with_options.c_str(), "rb");
    std::vector<std::uint8_t> blob;
    if (f) {
      std::uint8_t block[4096];
      std::size_t n;
      while ((n = std::fread(block, 1, sizeof block, f)) > 0) blob.insert(blob.end(), block, block + n);
      std::fclose(f);
    }
    std::size_t calls = 0;
    modelcrypt::ReadAt from_memory = [&](std::uint64_t offset, void* buf, std::size_t len) -> std::size_t {
      ++calls;
      if (offset >= blob.size()) return 0;
      const std::size_t n = std::min<std::size_t>(len, blob.size() - offset);
      std::memcpy(buf, blob.data() + offset, n);
      return n;
    };
    modelcrypt::Buffer a = modelcrypt::Load(from_memory, blob.size(), hex);
    CHECK(a.size() == model.size() && std::memcmp(a.data(), model.data(), model.size()) == 0 && calls > 0);
    modelcrypt::Buffer b = modelcrypt::Load(from_memory, blob.size(), device, "AES-GCM", 2, true);
    CHECK(b.size() == model.size() && std::memcmp(b.data(), model.data(), model.size()) == 0);
    struct Unplugged {};
    modelcrypt::ReadAt throwing = [&](std::uint64_t offset, void* buf, std::size_t len) -> std::size_t {
      if (offset > 0) throw Unplugged{};
      return from_memory(offset, buf, len);
    };
    bool rethrown = false;
    try {
      modelcrypt::Load(throwing, blob.size(), hex);
    } catch (const Unplugged&) {
      rethrown = true;
    }
    CHECK(rethrown);
    CHECK(status_of([&] { modelcrypt::Load(from_memory, blob.size() + 10, hex); }) == MC_AUTH_FAILED);  // size says longer
    modelcrypt::ReadAt short_source = [&](std::uint64_t offset, void* buf, std::size_t len) -> std::size_t {
      const std::size_t end = blob.size() / 2;  // the data stops in the middle of the chunks
      return offset >= end ? 0 : from_memory(offset, buf, std::min<std::size_t>(len, end - offset));
    };
    CHECK(status_of([&] { modelcrypt::Load(short_source, blob.size(), hex); }) == MC_IO);
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
