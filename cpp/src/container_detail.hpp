// Internals of container.cpp shared with random_access.cpp: an encrypted file opened and
// authenticated once (reader steps 1-8 of FORMAT.md), and the operations that read its payload
// through that same descriptor with those same keys.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "container.hpp"
#include "file_io.hpp"
#include "format.hpp"
#include "signature.hpp"

namespace modelcrypt_core::detail {

struct ParsedFileHeader {
  format::Header header;
  std::vector<uint8_t> raw;
};

// A file opened once for a read. authenticate() reads its header once, into one copy that is parsed,
// validated and authenticated with the key (reader steps 1-8); every later read goes through the
// same descriptor with the keys derived then.
// Reads the header once into one copy that is parsed and validated (reader steps 1-6, no key).
ParsedFileHeader read_file_header(const ByteSource& in);

// Format v3, for a caller who requires a signature (FORMAT.md "Reader algorithm (version 3)", steps
// S1-S4, before any key is used): the file must be v3 and exactly as long as its header says
// (check_signed_length); the trailer is read once into our memory and verified against the core
// header copy in `parsed`. Not signed, truncated or extended, an untrusted signer or a bad signature:
// Error(signature).
void check_signed_length(const format::Header& h, uint64_t file_length);
std::shared_ptr<const signature::VerifiedTrailer> read_verified_trailer(
    const ByteSource& in, const ParsedFileHeader& parsed, const std::vector<signature::PublicKey>& trusted);

// A source's header read once, the signature checked when required (before the key is used), then
// authenticated with the key (reader steps 1-8).
struct AuthenticatedHeader {
  ParsedFileHeader parsed;
  format::FileKeys keys;
  std::shared_ptr<const signature::VerifiedTrailer> trailer;
};
AuthenticatedHeader authenticate_source(const ByteSource& source, const Credential& key);

struct OpenedFile {
  InputFile in;
  ParsedFileHeader parsed;
  format::FileKeys keys;
  // Set when the credential requires a signature: the verified chunk hashes every read checks.
  std::shared_ptr<const signature::VerifiedTrailer> trailer;
  explicit OpenedFile(const std::string& path);  // opened, not yet authenticated
  // Checks mode and key first, then opens and authenticates.
  OpenedFile(const std::string& path, const Credential& key, const std::string& mode);
  void authenticate(const Credential& key);
};

// Chunks [first, first + count) of any source (header `h`, its keys) read straight into a new
// buffer and decrypted there, in parallel; nothing is returned unless every chunk authenticates.
SecureBuffer load_chunks(const ByteSource& in, const format::Header& h, const format::FileKeys& keys, uint64_t first,
                         uint64_t count, unsigned threads, const signature::VerifiedTrailer* trailer);
// Plaintext [offset, offset + length) (non-empty, in range) of any source decrypted into `out`;
// on any failure `out` is wiped before the error.
void load_chunks_into(const ByteSource& in, const format::Header& h, const format::FileKeys& keys, uint64_t offset,
                      uint64_t length, uint8_t* out, unsigned threads, const signature::VerifiedTrailer* trailer);

// Reads and decrypts chunks [first, first + count) of `f` into a new buffer (parallel, in place).
// Nothing is returned unless every chunk authenticates (Error(auth_failed) naming the first bad one).
SecureBuffer load_opened_chunks(const OpenedFile& f, uint64_t first, uint64_t count, unsigned threads);

// Error(invalid_argument) unless [offset, offset + length) lies inside the plaintext of `h`.
void check_range(const format::Header& h, uint64_t offset, uint64_t length);
// Plaintext bytes [offset, offset + length) (checked by check_range): the whole chunks covering
// them are read and decrypted, the view is the range.
Decrypted load_opened_range(const OpenedFile& f, uint64_t offset, uint64_t length, unsigned threads);

// (Into the caller's memory: RandomAccessFile::read_spans_into, decrypt_into.hpp.)

// decrypt_file / verify_file on an already opened file (same descriptor, same keys).
void decrypt_opened(const OpenedFile& f, const std::string& dst, unsigned threads, const Progress& progress,
                    bool durable);
void verify_opened(const OpenedFile& f, unsigned threads, const Progress& progress);

}  // namespace modelcrypt_core::detail
