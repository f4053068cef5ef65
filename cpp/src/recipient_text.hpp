// Text forms of X25519 recipients (public keys) and identities (private keys): Bech32 (BIP 173)
// with the human-readable parts "modelcrypt" / "modelcrypt-secret-key-", and age's "age" /
// "age-secret-key-" (the same X25519 keys, as age-keygen writes them). docs/FORMAT.md,
// "Recipient and identity text". Errors never contain the text of an identity.
#pragma once
#include <array>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto.hpp"
#include "secure_buffer.hpp"

namespace modelcrypt_core::recipient_text {

using PublicKey = std::array<uint8_t, crypto::kX25519KeySize>;

// "modelcrypt1..." (lowercase).
std::string format_recipient(const PublicKey& public_key);
// "MODELCRYPT-SECRET-KEY-1..." (uppercase), in wiping memory.
SecretBytes format_identity(ByteView private_key);

// One recipient ("modelcrypt1..." or "age1..."), surrounding whitespace ignored.
// Anything else: Error(invalid_argument) saying what is wrong (the public text may be shown).
PublicKey parse_recipient(std::string_view text);
// A recipients file's content: one recipient per line; blank lines and lines starting with '#'
// ignored. `source` names the file in errors. No recipient at all: Error(invalid_argument).
std::vector<PublicKey> parse_recipients_list(std::string_view content, const std::string& source);

// True when `content` holds an identity line (MODELCRYPT-SECRET-KEY-1... or AGE-SECRET-KEY-1...),
// i.e. it is an identity file rather than a symmetric key file.
bool holds_identity(ByteView content);
// The one identity of an identity file's content (comment and blank lines ignored) as its 32-byte
// private key. Errors (Error(invalid_argument)) name `source` and never show the text.
SecretBytes parse_identity(ByteView content, const std::string& source);

// The Bech32 codec and the line rules above, for other key texts (signing keys, signature.hpp).
SecretBytes bech32_encode(std::string_view hrp, ByteView data);  // lowercase
// False with `why` set for a bad checksum, mixed case, bad characters, ...
bool bech32_decode(std::string_view text, std::string* hrp, SecretBytes* data, std::string* why);
// Calls fn(line, line_number) for each line that is not blank or a '#' comment, trimmed.
void for_each_entry_line(std::string_view content, const std::function<void(std::string_view, size_t)>& fn);

}  // namespace modelcrypt_core::recipient_text
