// Internals of container.cpp shared with random_access.cpp: an encrypted file opened and
// authenticated once (reader steps 1-8 of FORMAT.md), and the operations that read its payload
// through that same descriptor with those same keys.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "container.hpp"
#include "file_io.hpp"
#include "format.hpp"

namespace modelcrypt::detail {

struct ParsedFileHeader {
  format::Header header;
  std::vector<uint8_t> raw;
};

// An encrypted file whose header has been parsed and authenticated with the key (reader steps 1-8).
struct OpenedFile {
  InputFile in;
  ParsedFileHeader parsed;
  format::FileKeys keys;
  OpenedFile(const std::string& path, ByteView key, const std::string& mode);
};

// Reads and decrypts chunks [first, first + count) of `f` into a new buffer (parallel, in place).
// Nothing is returned unless every chunk authenticates (Error(auth_failed) naming the first bad one).
SecureBuffer load_opened_chunks(const OpenedFile& f, uint64_t first, uint64_t count, unsigned threads);

// decrypt_file / verify_file on an already opened file (same descriptor, same keys).
void decrypt_opened(const OpenedFile& f, const std::string& dst, unsigned threads, const Progress& progress,
                    bool durable);
void verify_opened(const OpenedFile& f, unsigned threads, const Progress& progress);

}  // namespace modelcrypt::detail
