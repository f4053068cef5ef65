// Reading the seed systems' encrypted formats (MindSpore frames, PaddleX PADDLE1, Paddle core
// CipherFactory files) and writing MindSpore's, described in ../shared/interop and docs/LEGACY.md.
// Decryption happens in place inside a SecureBuffer that holds the whole file image.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "crypto.hpp"
#include "secure_buffer.hpp"

namespace modelcrypt_core::legacy {

enum class Format { modelcrypt, mindspore, paddlex, paddle_cipher, unknown };
const char* format_name(Format f) noexcept;

// What the caller asked for with a mode string.
struct Mode {
  enum class Kind { aes_gcm, aes_cbc, sm4_cbc, paddle } kind = Kind::aes_gcm;
  enum class PaddleCipher { ctr, cbc, ecb, gcm } paddle_cipher = PaddleCipher::ctr;
  size_t iv_bytes = 16;   // paddle: iv_size / 8
  size_t tag_bytes = 16;  // paddle GCM: tag_size / 8
  std::string name;       // as written in error messages
};

// Parses "AES-GCM", "AES-CBC", "SM4-CBC" (case-insensitive) or "paddle:<cipher>[:iv=<bits>][:tag=<bits>]".
// Throws Error(invalid_argument) listing what is accepted.
Mode parse_mode(const std::string& text);
const std::vector<std::string>& fixed_mode_names();

// Format named by a file's first bytes (at most 8 are looked at).
Format detect(const uint8_t* prefix, size_t n) noexcept;

// Throws Error(invalid_argument) when `mode` cannot apply to a file of format `f` (naming both).
void check_mode_matches(Format f, const Mode& mode, const uint8_t* prefix, size_t n);

// The formats a read accepts (docs/LEGACY.md, "Legacy formats only when asked for"): a set of Format bits.
using FormatSet = unsigned;
constexpr FormatSet format_bit(Format f) noexcept { return 1u << static_cast<unsigned>(f); }
// The reader's format choice: "modelcrypt" (the default; "" means the same), "mindspore", "paddlex",
// "paddle-cipher" or "auto" (any format detected). A named legacy format also accepts modelcrypt
// files (an upgrade is never a risk). Modes that exist only in a legacy format choose it themselves:
// "AES-CBC"/"SM4-CBC" MindSpore, "paddle:..." Paddle cipher. A choice that contradicts the mode is
// Error(invalid_argument).
FormatSet accepted_formats(const std::string& choice, const Mode& mode);
const std::vector<std::string>& format_choices();
// The format a read of a file starting with `prefix` uses (Paddle cipher when the mode says so,
// else detected); Error(format) when it is a legacy format the caller did not ask for (saying how
// to opt in), Error(invalid_argument) when the mode does not fit the file.
Format choose_format(const Mode& mode, FormatSet accepted, const uint8_t* prefix, size_t n);

struct Result {
  size_t offset = 0;     // plaintext = image[offset, offset + length)
  size_t length = 0;
  std::string cipher;    // e.g. "AES-128-GCM"
  std::string insecure;  // non-empty: why this format is unsafe (for a warning)
  uint64_t frames = 0;
};

// Decrypts a complete legacy file image in place. Errors: Error(format | auth_failed | key_mismatch |
// invalid_argument | unsupported). On error the caller must wipe `image`.
Result decrypt_in_place(Format f, const Mode& mode, uint8_t* image, size_t size, ByteView key);

// Header-level description without a key (format, cipher, frame count, plaintext length when exact).
struct Description {
  std::string cipher;
  uint64_t frames = 0;
  int64_t plaintext_length = -1;  // -1: not known without the key (CBC padding)
};
Description describe(Format f, const uint8_t* image, size_t size);

// describe() of a file on disk (MindSpore or PaddleX; anything else is Error(format)).
struct FileDescription {
  Format format = Format::unknown;
  Description description;
  uint64_t file_length = 0;
};
FileDescription describe_file(const std::string& path);

// MindSpore writer: frames of at most 64 MiB of plaintext, a fresh random 16-byte IV per frame.
constexpr size_t kMindSporeFrameMax = 64u << 20;
uint64_t mindspore_encrypted_length(uint64_t plaintext_length, const Mode& mode);
// Encrypts `plaintext` into `out` (exactly mindspore_encrypted_length bytes).
void mindspore_encrypt(ByteView plaintext, const Mode& mode, ByteView key, uint8_t* out, uint64_t out_size);
// File -> file, frame by frame (memory: one frame), atomic output.
void mindspore_encrypt_file(const std::string& src, const std::string& dst, const Mode& mode, ByteView key);

}  // namespace modelcrypt_core::legacy
