// libFuzzer harness: arbitrary bytes as a complete file image, read as format v1 (docs/FORMAT.md).
//  * format::header_bytes_needed / parse_header (v1 and v2 recipients blocks) without a key (what inspect does);
//  * decrypt_memory with a fixed 32-byte key (bytes 00..1f), threads = 1;
//  * differential: the same bytes written to a temporary file go through load_file and inspect_file,
//    which must agree with the in-memory path (same status, same plaintext and metadata).
// The seeds in tests/fuzz/fuzz_v1_decrypt/ are files encrypted under that key, so mutations of them
// reach the key commitment, header MAC, length and chunk-tag checks.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "../src/container.hpp"
#include "../src/format.hpp"
#include "fuzz_common.hpp"

using namespace modelcrypt_core;
using modelcrypt_core::fuzz::fail;
using modelcrypt_core::fuzz::guarded;

namespace {

const std::vector<uint8_t> kKey = fuzz::counting_key(0x00, 32);

const std::string& temp_path() {
  static const std::string path = [] {
    // tmpfs when there is one: rewriting a file on a disk filesystem (ext4 with discard) costs
    // milliseconds per input. MC_FUZZ_TMPDIR overrides.
    const char* dir = std::getenv("MC_FUZZ_TMPDIR");
    if (dir == nullptr || *dir == 0) dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : std::getenv("TMPDIR");
    std::string tmpl = std::string(dir && *dir ? dir : "/tmp") + "/mc_fuzz_v1_XXXXXX";
    const int fd = mkstemp(tmpl.data());  // reserves a unique name; each input recreates the file
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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Exact-size heap copy, so that ASan sees any read past the end of the image.
  const std::vector<uint8_t> image(data, data + size);
  const ByteView blob{image.data(), image.size()};
  const ByteView key{kKey.data(), kKey.size()};

  // Key-less header parsing.
  format::Header parsed;
  const Status parse_status = guarded("parse_header", [&] {
    // v1: one step; v2: the recipients length first, then the whole header (recipients block included).
    uint64_t have = std::min<size_t>(size, format::kFixedHeaderSize), h = 0;
    for (int step = 0;; ++step) {
      h = format::header_bytes_needed(image.data(), static_cast<size_t>(have), size);
      if (h > size) fail("header_bytes_needed returned more than the file holds");
      if (h <= have) break;
      if (step > 2) fail("header_bytes_needed did not converge");
      have = h;
    }
    parsed = format::parse_header(image.data(), static_cast<size_t>(h));
    if (parsed.header_length() != h) fail("parse_header disagrees with header_bytes_needed");
  });

  // In memory, with the key.
  Decrypted mem;
  const Status mem_status = guarded("decrypt_memory", [&] { mem = decrypt_memory(blob, key, "AES-GCM", "modelcrypt", 1); });
  if (mem_status == Status::ok) {
    if (mem.view_offset + mem.view_length > mem.plaintext.size()) fail("decrypt_memory: view outside the buffer");
    if (mem.format == "modelcrypt") {
      if (parse_status != Status::ok) fail("decrypt_memory accepted a header that parse_header rejects");
      if (mem.size() != parsed.plaintext_length || mem.metadata != parsed.metadata) {
        fail("decrypt_memory: plaintext length or metadata disagree with the header");
      }
    }
  }

  // The same bytes from a file.
  write_file(image.data(), image.size());
  Decrypted file;
  const Status file_status = guarded("load_file", [&] { file = load_file(temp_path(), key, "AES-GCM", "modelcrypt", 1); });
  if (file_status != mem_status) {
    fail(std::string("load_file status ") + status_name(file_status) + " != decrypt_memory status " + status_name(mem_status));
  }
  if (mem_status == Status::ok) {
    if (file.format != mem.format || file.metadata != mem.metadata || file.size() != mem.size() ||
        (mem.size() && std::memcmp(file.data(), mem.data(), mem.size()) != 0)) {
      fail("load_file and decrypt_memory return different plaintexts");
    }
  }
  FileInfo info;
  const Status inspect_status = guarded("inspect_file", [&] { info = inspect_file(temp_path()); });
  if (inspect_status != parse_status) {
    fail(std::string("inspect_file status ") + status_name(inspect_status) + " != parse_header status " + status_name(parse_status));
  }
  if (inspect_status == Status::ok && (info.header.plaintext_length != parsed.plaintext_length ||
                                       info.header.metadata != parsed.metadata || info.file_length != size)) {
    fail("inspect_file and parse_header disagree");
  }
  unlink(temp_path().c_str());  // libFuzzer ends with _Exit: nothing is left behind but a crash's file
  return 0;
}
