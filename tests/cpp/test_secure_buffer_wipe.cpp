// Wipe-on-release of SecureBuffer, observed through modelcrypt_core::testing::set_release_observer:
// the observer runs after the wipe and before munmap, so it reads the very bytes being released.
// Covers plain buffers, move-assignment, the plaintext buffers that decrypt_memory / load_file /
// load_range return, the buffers an authentication failure discards, the streaming encryptor's
// batch buffer, and mc_buffer_free of the C API (c_api.cpp is compiled into this program); and that
// fork() children see zeros in place of live plaintext buffers (MADV_WIPEONFORK and its fallback).
// usage: test_secure_buffer_wipe [WORKDIR]
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "check.hpp"
#include "container.hpp"
#include "errors.hpp"
#include "modelcrypt/modelcrypt.h"
#include "secure_buffer.hpp"

using namespace modelcrypt_core;

namespace {

struct Release {
  const uint8_t* data;
  size_t size;
  bool zero;
};
constexpr size_t kMaxReleases = 4096;
Release g_releases[kMaxReleases];
std::atomic<size_t> g_count{0};

void observe(const uint8_t* data, size_t size) {
  bool zero = true;
  for (size_t i = 0; i < size; ++i) {
    if (data[i] != 0) {
      zero = false;
      break;
    }
  }
  const size_t slot = g_count.fetch_add(1);
  if (slot < kMaxReleases) g_releases[slot] = {data, size, zero};
}

void reset() { g_count = 0; }

size_t count() { return std::min(g_count.load(), kMaxReleases); }

// Releases observed since reset() of exactly this buffer.
int releases_of(const uint8_t* data, size_t size, bool* all_zero) {
  int n = 0;
  *all_zero = true;
  for (size_t i = 0; i < count(); ++i) {
    if (g_releases[i].data == data && g_releases[i].size == size) {
      ++n;
      *all_zero = *all_zero && g_releases[i].zero;
    }
  }
  return n;
}

bool every_release_zero() {
  for (size_t i = 0; i < count(); ++i) {
    if (!g_releases[i].zero) return false;
  }
  return true;
}

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>((i * 131 + seed) | 1);  // never 0
  return v;
}

void write_file(const std::string& path, const std::vector<uint8_t>& data) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || std::fwrite(data.data(), 1, data.size(), f) != data.size() || std::fclose(f) != 0) {
    std::perror(path.c_str());
    std::exit(2);
  }
}

const uint8_t kKey[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                          17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
const ByteView kKeyView{kKey, sizeof kKey};

std::vector<uint8_t> encrypt(const std::vector<uint8_t>& pt, uint32_t chunk_size) {
  EncryptOptions options;
  options.chunk_size = chunk_size;
  options.threads = 4;
  std::vector<uint8_t> out(encrypted_length(pt.size(), options));
  encrypt_memory({pt.data(), pt.size()}, kKeyView, "AES-GCM", options, out.data(), out.size());
  return out;
}

void test_plain_buffers() {
  // 4 KiB pages, a partial page, the 2 MiB huge-page path and a size just above it.
  for (size_t size : {size_t{1}, size_t{4095}, size_t{4096}, size_t{5000}, size_t{2} << 20, (size_t{3} << 20) + 17}) {
    reset();
    const uint8_t* where = nullptr;
    {
      SecureBuffer b = SecureBuffer::allocate(size);
      std::memset(b.data(), 0xA5, b.size());
      where = b.data();
    }
    bool zero = false;
    CHECK_MSG(releases_of(where, size, &zero) == 1 && zero, "size " + std::to_string(size));
  }
  // Move-assignment releases the target's old bytes; the moved-from buffer releases nothing.
  reset();
  {
    SecureBuffer a = SecureBuffer::allocate(100);
    std::memset(a.data(), 0x5A, a.size());
    const uint8_t* old = a.data();
    SecureBuffer b = SecureBuffer::allocate(200);
    std::memset(b.data(), 0x3C, b.size());
    const uint8_t* moved = b.data();
    a = std::move(b);
    bool zero = false;
    CHECK(releases_of(old, 100, &zero) == 1 && zero);
    CHECK(a.data() == moved && a.size() == 200);
    SecureBuffer c(std::move(a));
    CHECK(c.data() == moved && a.data() == nullptr && a.size() == 0);
  }
  CHECK(count() == 2 && every_release_zero());
  // wipe() zeroes in place and keeps the mapping; the release after it still sees zeros.
  reset();
  {
    SecureBuffer b = SecureBuffer::allocate(10000);
    std::memset(b.data(), 0x77, b.size());
    b.wipe();
    bool zero = true;
    for (size_t i = 0; i < b.size(); ++i) zero = zero && b.data()[i] == 0;
    CHECK(zero);
  }
  CHECK(count() == 1 && every_release_zero());
  // Size 0: no mapping, nothing to wipe, no release to observe, and data() is still non-null.
  reset();
  {
    SecureBuffer b = SecureBuffer::allocate(0);
    CHECK(b.data() != nullptr && b.size() == 0);
  }
  CHECK(count() == 0);
}

void test_decrypted_buffers(const check::WorkDir& dir) {
  const std::vector<uint8_t> pt = pattern(300000, 7);  // 74 chunks of 4 KiB
  const std::vector<uint8_t> blob = encrypt(pt, 4096);
  const std::string path = dir.file("wipe.mcx");
  write_file(path, blob);

  reset();
  const uint8_t* where = nullptr;
  {
    Decrypted d = decrypt_memory({blob.data(), blob.size()}, kKeyView, "AES-GCM", "modelcrypt", 4);
    CHECK(d.size() == pt.size() && std::memcmp(d.data(), pt.data(), pt.size()) == 0);
    where = d.plaintext.data();
  }
  bool zero = false;
  CHECK(releases_of(where, pt.size(), &zero) == 1 && zero);

  reset();
  {
    Decrypted d = load_file(path, kKeyView, "AES-GCM", "modelcrypt", 4);
    CHECK(d.size() == pt.size() && std::memcmp(d.data(), pt.data(), pt.size()) == 0);
    where = d.plaintext.data();
  }
  CHECK(releases_of(where, pt.size(), &zero) == 1 && zero);

  reset();
  size_t mapped = 0;
  {
    Decrypted d = load_range(path, kKeyView, "AES-GCM", 10000, 50000, 2);
    CHECK(d.size() == 50000 && std::memcmp(d.data(), pt.data() + 10000, 50000) == 0);
    where = d.plaintext.data();
    mapped = d.plaintext.size();
  }
  CHECK(releases_of(where, mapped, &zero) == 1 && zero);

  // A tampered last chunk: the plaintext buffer holding unauthenticated bytes is wiped and
  // released before the error reaches the caller.
  std::vector<uint8_t> bad = blob;
  bad[bad.size() - 20] ^= 1;
  reset();
  bool threw = false;
  try {
    (void)decrypt_memory({bad.data(), bad.size()}, kKeyView, "AES-GCM", "modelcrypt", 4);
  } catch (const Error& e) {
    threw = e.status() == Status::auth_failed;
  }
  CHECK(threw);
  CHECK(count() == 1 && g_releases[0].size == pt.size() && g_releases[0].zero);

  write_file(path, bad);
  reset();
  threw = false;
  try {
    (void)load_file(path, kKeyView, "AES-GCM", "modelcrypt", 4);
  } catch (const Error& e) {
    threw = e.status() == Status::auth_failed;
  }
  CHECK(threw);
  CHECK(count() == 1 && g_releases[0].size == pt.size() && g_releases[0].zero);

  // The streaming paths keep plaintext batches in a SecureBuffer too.
  const std::string src = dir.file("plain.bin"), enc = dir.file("plain.bin.mcx"), dec = dir.file("plain.out");
  write_file(src, pt);
  reset();
  EncryptOptions options;
  options.chunk_size = 4096;
  encrypt_file(src, enc, kKeyView, "AES-GCM", options);
  CHECK(count() >= 1 && every_release_zero());  // one or more batch buffers, however the pipeline is built
  reset();
  (void)decrypt_file(enc, dec, kKeyView, "AES-GCM", "modelcrypt", 2);
  CHECK(count() >= 1 && every_release_zero());
  reset();
  (void)verify_file(enc, kKeyView, "AES-GCM", "modelcrypt", 2);
  CHECK(count() >= 1 && every_release_zero());
}

void test_c_api_buffers(const check::WorkDir& dir) {
  const std::vector<uint8_t> pt = pattern(70000, 3);
  const std::string path = dir.file("capi.mcx");
  write_file(path, encrypt(pt, 1u << 20));

  reset();
  mc_buffer* out = nullptr;
  CHECK(mc_load(path.c_str(), kKey, sizeof kKey, nullptr, &out) == MC_OK);
  CHECK(mc_buffer_size(out) == pt.size() && std::memcmp(mc_buffer_data(out), pt.data(), pt.size()) == 0);
  const auto* where = static_cast<const uint8_t*>(mc_buffer_data(out));
  mc_buffer_free(out);
  bool zero = false;
  CHECK(releases_of(where, pt.size(), &zero) == 1 && zero);

  // mc_encrypt_memory's output and mc_decrypt_memory's plaintext are wiped by mc_buffer_free too.
  reset();
  mc_buffer* enc = nullptr;
  mc_buffer* dec = nullptr;
  CHECK(mc_encrypt_memory(pt.data(), pt.size(), kKey, sizeof kKey, "aes-gcm", &enc) == MC_OK);
  CHECK(mc_decrypt_memory(mc_buffer_data(enc), mc_buffer_size(enc), kKey, sizeof kKey, nullptr, &dec) == MC_OK);
  CHECK(mc_buffer_size(dec) == pt.size() && std::memcmp(mc_buffer_data(dec), pt.data(), pt.size()) == 0);
  where = static_cast<const uint8_t*>(mc_buffer_data(dec));
  const size_t enc_size = mc_buffer_size(enc);
  const auto* enc_where = static_cast<const uint8_t*>(mc_buffer_data(enc));
  mc_buffer_free(dec);
  mc_buffer_free(enc);
  CHECK(releases_of(where, pt.size(), &zero) == 1 && zero);
  CHECK(releases_of(enc_where, enc_size, &zero) == 1 && zero);
  CHECK(count() == 2);
}

// Forks: the child checks whether `size` bytes at `data` read as zeros in its copy of the memory.
// Returns 1 (child saw zeros), 0 (it saw something else), -1 (the child failed).
int child_sees_zeros(const uint8_t* data, size_t size) {
  const pid_t pid = fork();
  if (pid == 0) {
    bool zero = true;
    for (size_t i = 0; i < size; ++i) zero = zero && data[i] == 0;
    _exit(zero ? 10 : 11);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status) == 10 ? 1 : WEXITSTATUS(status) == 11 ? 0 : -1;
}

// fork() children see zeros where the parent holds plaintext (MADV_WIPEONFORK, or the pthread_atfork
// fallback); the parent keeps its bytes. Includes the C API's buffers.
void test_fork_children_see_zeros(const check::WorkDir& dir) {
  for (bool fallback : {false, true}) {
    testing::set_fork_fallback(fallback);
    for (size_t size : {size_t{4096}, size_t{5000}, (size_t{3} << 20) + 17}) {
      const std::vector<uint8_t> pt = pattern(size, 9);
      SecureBuffer b = SecureBuffer::allocate(size);
      std::memcpy(b.data(), pt.data(), size);
      CHECK_MSG(child_sees_zeros(b.data(), size) == 1, "fallback " + std::to_string(fallback) + " size " + std::to_string(size));
      CHECK(std::memcmp(b.data(), pt.data(), size) == 0);
      SecureBuffer moved = std::move(b);  // the fallback registry follows the mapping, not the object
      CHECK(child_sees_zeros(moved.data(), size) == 1);
    }
  }
  testing::set_fork_fallback(false);  // the C API's buffers
  const std::vector<uint8_t> pt = pattern(70000, 4);
  const std::string path = dir.file("fork.mcx");
  write_file(path, encrypt(pt, 1u << 20));
  mc_buffer* out = nullptr;
  CHECK(mc_load(path.c_str(), kKey, sizeof kKey, nullptr, &out) == MC_OK);
  CHECK(child_sees_zeros(static_cast<const uint8_t*>(mc_buffer_data(out)), mc_buffer_size(out)) == 1);
  CHECK(std::memcmp(mc_buffer_data(out), pt.data(), pt.size()) == 0);
  mc_buffer_free(out);
}

}  // namespace

int main(int argc, char** argv) {
  check::WorkDir dir(argc, argv);
  testing::set_release_observer(observe);
  test_plain_buffers();
  test_decrypted_buffers(dir);
  test_c_api_buffers(dir);
  test_fork_children_see_zeros(dir);
  testing::set_release_observer(nullptr);
  reset();
  { SecureBuffer b = SecureBuffer::allocate(10); }
  CHECK(count() == 0);  // unset observer: nothing is called
  return check::finish();
}
