// The operations of modelcrypt on format v1 files: encrypt and decrypt between files and memory.
// All functions throw modelcrypt_core::Error; none releases plaintext that failed authentication.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "byte_source.hpp"
#include "credential.hpp"
#include "crypto.hpp"
#include "format.hpp"
#include "secure_buffer.hpp"
#include "signature.hpp"

namespace modelcrypt_core {

// Fixed mode names accepted for reading ("AES-GCM", "AES-CBC", "SM4-CBC"; plus "paddle:..." modes).
const std::vector<std::string>& supported_modes();
// For writers of modelcrypt files: only "AES-GCM". Throws Error(invalid_argument) saying why.
void check_mode(const std::string& mode);

// Called on the calling thread after each batch of a streaming operation with the number of
// plaintext bytes done so far. It may throw to cancel: the operation stops, removes its temporary
// file and rethrows (this is how Ctrl-C reaches a long encryption from Python).
using Progress = std::function<void(uint64_t bytes_done)>;

struct EncryptOptions {
  uint32_t chunk_size = format::kDefaultChunkSize;
  ByteView metadata;     // authenticated, not encrypted; at most 64 KiB
  unsigned threads = 0;  // 0: all available CPUs
  Progress progress;     // optional
  bool durable = true;   // file output: fsync before the rename (see AtomicOutputFile)
  // Format v2: X25519 recipients to encrypt to. With any, the key may be empty (no symmetric-key
  // stanza); `with_key` says whether it is not (only encrypted_length needs to be told).
  std::vector<recipients::PublicKey> recipients;
  bool with_key = true;
  // Format v3: sign the file with this publisher key (the output is then always version 3).
  std::shared_ptr<const signature::SigningKey> signing_key;
};

struct Decrypted {
  SecureBuffer plaintext;
  std::vector<uint8_t> metadata;  // authenticated
  // The bytes handed out: [view_offset, view_offset + view_length) of `plaintext` (all of it unless
  // a range was loaded, where whole chunks are decrypted around the requested bytes).
  size_t view_offset = 0;
  size_t view_length = 0;
  std::string format = "modelcrypt";  // or "mindspore", "paddlex", "paddle-cipher"
  std::string cipher = "AES-256-GCM";
  std::string insecure;               // non-empty for legacy formats with known weaknesses: why
  const uint8_t* data() const noexcept { return plaintext.data() + view_offset; }
  size_t size() const noexcept { return view_length; }
};

// Process-wide counters for tests and benchmarks (random access must read little).
struct DebugCounters {
  uint64_t chunks_decrypted = 0;
  uint64_t ciphertext_bytes_read = 0;
};
DebugCounters debug_counters() noexcept;
void reset_debug_counters() noexcept;

// Plaintext for the streaming writer: a file, or a list of memory parts read as one.
class PlaintextSource {
 public:
  virtual ~PlaintextSource() = default;
  virtual uint64_t size() const = 0;
  // Fills the (strided) iov slots with the plaintext that starts at `offset`.
  virtual void read(uint64_t offset, IoVec* iov, int iovcnt) = 0;
  // Whether the plaintext is in memory already (read() is a copy, not I/O).
  virtual bool in_memory() const { return false; }
  // The plaintext [offset, offset + n) in place when the source holds it contiguously in memory
  // (sealed from there without a copy), else nullptr (read() copies it into a slot).
  virtual const uint8_t* span(uint64_t offset, size_t n) const {
    (void)offset;
    (void)n;
    return nullptr;
  }
  // Called after the last read (a file source checks that it did not change meanwhile).
  virtual void finish() {}
};

struct FileInfo {
  format::Header header;
  uint64_t file_length = 0;
  // v3: the signer the trailer names (unauthenticated: a claim until checked against a trusted key).
  bool has_signer = false;
  signature::PublicKey signer{};
};

// Format of a file from its first bytes: "modelcrypt", "mindspore", "paddlex" or "unknown".
std::string detect_file_format(const std::string& path);

// File -> memory. Reads modelcrypt files and, when `format` asks for them, MindSpore and PaddleX files
// (detected from their first bytes) and Paddle cipher files (`mode` "paddle:..."); a mode that
// disagrees with the file is Error(invalid_argument). For modelcrypt files: ciphertext is read straight into the output buffer and decrypted in place, chunks
// in parallel: the plaintext exists once. Peak extra memory: the plaintext itself.
// `format` is the caller's choice of accepted formats (legacy::accepted_formats): "modelcrypt" (the
// default) reads format v1 only; legacy formats only when named ("mindspore", "paddlex",
// "paddle-cipher", "auto") or implied by a legacy-only mode.
Decrypted load_file(const std::string& path, const Credential& key, const std::string& mode, const std::string& format = "modelcrypt",
                    unsigned threads = 0);

// Any ByteSource -> memory (modelcrypt files only; `mode` must be "AES-GCM"): as load_file, every
// ciphertext byte read from `source` once, straight into the output buffer, and decrypted there,
// chunks in parallel (so `source` must allow concurrent read_at calls when threads != 1).
Decrypted load_source(const ByteSource& source, const Credential& key, const std::string& mode, unsigned threads = 0);

// File -> memory, part of the plaintext: authenticates the header exactly like load_file, then reads
// and decrypts only the chunks covering [offset, offset + length). Out of range: Error(invalid_argument).
Decrypted load_range(const std::string& path, const Credential& key, const std::string& mode, uint64_t offset,
                     uint64_t length, unsigned threads = 0);

// Memory -> memory.
// Every byte of `blob` is copied once into library memory before it is parsed, authenticated or
// decrypted: a blob that changes meanwhile (a shared mapping) yields its authentic plaintext or an error.
Decrypted decrypt_memory(ByteView blob, const Credential& key, const std::string& mode, const std::string& format = "modelcrypt",
                         unsigned threads = 0);

// Size of the encrypted form of `plaintext_length` bytes.
uint64_t encrypted_length(uint64_t plaintext_length, const EncryptOptions& options);

// Memory -> memory: writes exactly encrypted_length(in.size, options) bytes to out.
void encrypt_memory(ByteView in, ByteView key, const std::string& mode, const EncryptOptions& options,
                    uint8_t* out, uint64_t out_size);

// File -> file, streaming in bounded memory (<= 16 MiB batches), atomic replacement of dst.
void encrypt_file(const std::string& src, const std::string& dst, ByteView key, const std::string& mode,
                  const EncryptOptions& options);
// Any plaintext source -> file, streaming in three batches of memory, atomic replacement of dst.
void encrypt_source_to_file(PlaintextSource& source, const std::string& dst, ByteView key, const std::string& mode,
                            const EncryptOptions& options);
// Where the streaming writer puts ciphertext: a file written atomically, or a caller's writer.
class CiphertextSink {
 public:
  virtual ~CiphertextSink() = default;
  virtual void write_all(const uint8_t* data, size_t n) = 0;
  // The output is complete: `before` (which may throw to cancel) runs, then the output is published.
  virtual void commit(const std::function<void()>& before) = 0;
};
// Receives the ciphertext in order, in pieces of up to one 16 MiB batch, as each is sealed (on a
// writer thread, never two calls at once). It throws to cancel; the caller discards what it got
// unless the call returns normally (a partial stream is never a valid file: it fails to load).
using CiphertextWriter = std::function<void(const uint8_t* data, size_t n)>;
// Any plaintext source -> writer, streaming in three batches of memory.
void encrypt_source_to_writer(PlaintextSource& source, const CiphertextWriter& write, ByteView key,
                              const std::string& mode, const EncryptOptions& options);
// File -> writer (e.g. a multipart upload), streaming in bounded memory.
void encrypt_file_to_writer(const std::string& src, const CiphertextWriter& write, ByteView key,
                            const std::string& mode, const EncryptOptions& options);
// Memory parts -> file: encrypts the concatenation of `parts` without ever concatenating them.
void encrypt_parts_to_file(const std::vector<ByteView>& parts, const std::string& dst, ByteView key,
                           const std::string& mode, const EncryptOptions& options);

// Library-owned, wiping copy of caller bytes (e.g. the output of a caller-supplied cipher).
Decrypted secure_copy(ByteView data);
// Legacy formats (MindSpore, PaddleX, Paddle cipher) are read as for load_file; these return the
// weakness of such a format ("" for modelcrypt files), for the caller to warn about.
std::string decrypt_file(const std::string& src, const std::string& dst, const Credential& key, const std::string& mode,
                         const std::string& format = "modelcrypt", unsigned threads = 0, const Progress& progress = {},
                         bool durable = true);

// Authenticates a whole file in bounded memory (three 16 MiB batches) and writes nothing.
std::string verify_file(const std::string& path, const Credential& key, const std::string& mode,
                        const std::string& format = "modelcrypt", unsigned threads = 0, const Progress& progress = {});

// Keyless verification of a v3 file's publisher signature (FORMAT.md "Keyless verification"): the
// header, the trailer and every chunk's hash, without any key; returns the signer. Not signed,
// untrusted signer, changed, truncated or extended: Error(signature). Bounded memory.
signature::PublicKey verify_signature_file(const std::string& path, const std::vector<signature::PublicKey>& trusted,
                                           unsigned threads = 0, const Progress& progress = {});
// The same for a ByteSource (a URL read through a callback): the source must not change while it is
// read (a URL's reader pins the object's version).
signature::PublicKey verify_signature_source(const ByteSource& in, const std::vector<signature::PublicKey>& trusted,
                                             unsigned threads = 0, const Progress& progress = {});

// True when the file starts with the format v1 magic. Errors opening it are Error(io).
bool is_encrypted(const std::string& path);

// Header fields, no key needed (so nothing in it is authenticated).
FileInfo inspect_file(const std::string& path);
// The same for a ByteSource (a URL or file object read through a callback).
FileInfo inspect_source(const ByteSource& in);

}  // namespace modelcrypt_core
