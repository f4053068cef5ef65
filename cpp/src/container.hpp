// The operations of modelcrypt on format v1 files: encrypt and decrypt between files and memory.
// All functions throw modelcrypt::Error; none releases plaintext that failed authentication.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "crypto.hpp"
#include "format.hpp"
#include "secure_buffer.hpp"

namespace modelcrypt {

// Modes accepted by the API ("AES-GCM": format v1, AES-256-GCM under per-file HKDF subkeys).
const std::vector<std::string>& supported_modes();
// Throws Error(invalid_argument) naming the supported modes.
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
};

struct Decrypted {
  SecureBuffer plaintext;
  std::vector<uint8_t> metadata;  // authenticated
};

struct FileInfo {
  format::Header header;
  uint64_t file_length = 0;
};

// File -> memory. Ciphertext is read straight into the output buffer and decrypted in place, chunks
// in parallel: the plaintext exists once. Peak extra memory: the plaintext itself.
Decrypted load_file(const std::string& path, ByteView key, const std::string& mode, unsigned threads = 0);

// Memory -> memory.
Decrypted decrypt_memory(ByteView blob, ByteView key, const std::string& mode, unsigned threads = 0);

// Size of the encrypted form of `plaintext_length` bytes.
uint64_t encrypted_length(uint64_t plaintext_length, const EncryptOptions& options);

// Memory -> memory: writes exactly encrypted_length(in.size, options) bytes to out.
void encrypt_memory(ByteView in, ByteView key, const std::string& mode, const EncryptOptions& options,
                    uint8_t* out, uint64_t out_size);

// File -> file, streaming in bounded memory (<= 16 MiB batches), atomic replacement of dst.
void encrypt_file(const std::string& src, const std::string& dst, ByteView key, const std::string& mode,
                  const EncryptOptions& options);
void decrypt_file(const std::string& src, const std::string& dst, ByteView key, const std::string& mode,
                  unsigned threads = 0, const Progress& progress = {});

// Authenticates a whole file in bounded memory (<= 16 MiB batches) and writes nothing.
void verify_file(const std::string& path, ByteView key, const std::string& mode, unsigned threads = 0,
                 const Progress& progress = {});

// True when the file starts with the format v1 magic. Errors opening it are Error(io).
bool is_encrypted(const std::string& path);

// Header fields, no key needed (so nothing in it is authenticated).
FileInfo inspect_file(const std::string& path);

}  // namespace modelcrypt
