// Text forms of publisher signing keys (Ed25519): Bech32 "modelcrypt-signer1..." for public keys
// (what devices trust) and "MODELCRYPT-SIGNING-KEY-1..." for private seeds, and PEM keys as
// OpenSSL writes them. docs/FORMAT.md, "Signing key text". Errors never show a private key.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "crypto.hpp"
#include "signature.hpp"

namespace modelcrypt_core::signing_text {

std::string format_signer(const signature::PublicKey& public_key);  // "modelcrypt-signer1..."
SecretBytes format_signing_key(ByteView seed);                       // "MODELCRYPT-SIGNING-KEY-1..."

// One signer public key: Bech32 text or a PEM "PUBLIC KEY" (Ed25519). Else Error(invalid_argument).
signature::PublicKey parse_signer(std::string_view text);
// A trusted-signers file: a PEM public key, or one Bech32 signer per line ('#' comments and blank
// lines ignored). `source` names it in errors. No signer at all: Error(invalid_argument).
std::vector<signature::PublicKey> parse_signers_list(std::string_view content, const std::string& source);

// True when `content` holds a signing key (a MODELCRYPT-SIGNING-KEY-1 line or a PEM private key).
bool holds_signing_key(ByteView content);
// The one signing key of a signing key file (Bech32 line, comments ignored, or PEM PKCS#8 Ed25519)
// as its 32-byte seed. Errors name `source` and never show the key.
SecretBytes parse_signing_key(ByteView content, const std::string& source);

}  // namespace modelcrypt_core::signing_text
