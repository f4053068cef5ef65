// Keys as people hold them — hex or base64 text, key files, environment variables — parsed by the
// same rules as the Python package and the CLI (docs/KEYS_AND_CLI.md, "Key-file detection"), into
// wiping memory. Error messages never contain key bytes or key text.
#pragma once
#include <string>

#include "crypto.hpp"
#include "secure_buffer.hpp"

namespace modelcrypt_core::key_text {

// Hex (optional 0x, 32/48/64 digits) or standard base64 with padding decoding to 16/24/32 bytes;
// surrounding ASCII whitespace ignored. With allow_raw (key files): otherwise the exact bytes when
// 16, 24 or 32 long, and exactly 16 or 24 hex digits (a MindSpore-style ASCII key) are raw too.
// Anything else: Error(invalid_argument) naming `source` and what was found (never the text).
SecureBuffer parse(ByteView text, bool allow_raw, const std::string& source);

// A key file (at most 64 KiB; read once into wiping memory). Errors: Error(io) for the OS's, else as parse.
SecureBuffer read_file(const std::string& path);

// An environment variable holding hex or base64 text. Unset or empty: Error(invalid_argument).
SecureBuffer from_env(const std::string& name);

}  // namespace modelcrypt_core::key_text
