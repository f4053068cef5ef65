#include "signing_text.hpp"

#include <cctype>
#include <cstring>

#include "errors.hpp"
#include "recipient_text.hpp"

namespace modelcrypt_core::signing_text {
namespace {

constexpr char kSignerHrp[] = "modelcrypt-signer";
constexpr char kSigningKeyHrp[] = "modelcrypt-signing-key-";

std::string_view as_text(ByteView v) { return {reinterpret_cast<const char*>(v.data), v.size}; }

bool contains(std::string_view s, const char* needle) { return s.find(needle) != std::string_view::npos; }

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool is_signing_key_line(std::string_view line) { return starts_with_nocase(trim(line), "modelcrypt-signing-key-1"); }

}  // namespace

std::string format_signer(const signature::PublicKey& public_key) {
  const SecretBytes s = recipient_text::bech32_encode(kSignerHrp, {public_key.data(), public_key.size()});
  return std::string(s.begin(), s.end());
}

SecretBytes format_signing_key(ByteView seed) {
  SecretBytes s = recipient_text::bech32_encode(kSigningKeyHrp, seed);
  for (uint8_t& c : s) c = static_cast<uint8_t>(std::toupper(c));
  return s;
}

signature::PublicKey parse_signer(std::string_view text) {
  signature::PublicKey key{};
  if (contains(text, "-----BEGIN")) {
    if (contains(text, "PRIVATE KEY")) {
      throw Error(Status::invalid_argument, "this is a private key, not a signer's public key: keep it secret and "
                                            "trust its public key instead");
    }
    if (!crypto::ed25519_public_from_pem({reinterpret_cast<const uint8_t*>(text.data()), text.size()}, key.data())) {
      throw Error(Status::invalid_argument, "the PEM text is not an Ed25519 public key (expected '-----BEGIN PUBLIC KEY-----' "
                                            "as 'openssl pkey -pubout' writes for an ed25519 key)");
    }
    return key;
  }
  text = trim(text);
  if (is_signing_key_line(text)) {
    throw Error(Status::invalid_argument, "this is a signing key (a private key), not a signer's public key: keep it "
                                          "secret and trust its public key (modelcrypt-signer1...) instead");
  }
  const bool looks_public = starts_with_nocase(text, "modelcrypt-signer1") && text.size() <= 120;
  const std::string shown = looks_public ? "'" + std::string(text) + "'" : "text";
  std::string hrp, why;
  SecretBytes data;
  if (!recipient_text::bech32_decode(text, &hrp, &data, &why)) {
    throw Error(Status::invalid_argument, "signer public key " + shown + " " + why);
  }
  if (hrp != kSignerHrp) {
    throw Error(Status::invalid_argument, "signer public key " + shown +
                                              " is not a signer public key (expected modelcrypt-signer1... or a PEM public key)");
  }
  if (data.size() != key.size()) {
    throw Error(Status::invalid_argument, "signer public key " + shown + " holds " + std::to_string(data.size()) + " bytes, not 32");
  }
  std::memcpy(key.data(), data.data(), key.size());
  return key;
}

std::vector<signature::PublicKey> parse_signers_list(std::string_view content, const std::string& source) {
  // One entry per line (modelcrypt-signer1..., '#' comments and blank lines skipped) and any number of PEM
  // public key blocks among them: every entry counts, none is dropped silently.
  std::vector<signature::PublicKey> out;
  const char* pem_begin = nullptr;
  size_t pem_line = 0;
  auto parse = [&](std::string_view entry, size_t number) {
    try {
      out.push_back(parse_signer(entry));
    } catch (const Error& e) {
      throw Error(Status::invalid_argument, source + ", line " + std::to_string(number) + ": " + e.what());
    }
  };
  recipient_text::for_each_entry_line(content, [&](std::string_view line, size_t number) {
    if (pem_begin == nullptr) {
      if (starts_with_nocase(line, "-----begin")) {
        pem_begin = line.data();
        pem_line = number;
      } else {
        parse(line, number);
      }
      return;
    }
    if (starts_with_nocase(line, "-----end")) {
      parse(std::string_view(pem_begin, static_cast<size_t>(line.data() + line.size() - pem_begin)), pem_line);
      pem_begin = nullptr;
    }
  });
  if (pem_begin != nullptr) {
    throw Error(Status::invalid_argument, source + ", line " + std::to_string(pem_line) + ": a PEM block without its END line");
  }
  if (out.empty()) throw Error(Status::invalid_argument, source + " holds no signer public key");
  return out;
}

bool holds_signing_key(ByteView content) {
  const std::string_view text = as_text(content);
  if (contains(text, "-----BEGIN PRIVATE KEY-----")) return true;
  bool found = false;
  recipient_text::for_each_entry_line(text, [&](std::string_view line, size_t) { found |= is_signing_key_line(line); });
  return found;
}

SecretBytes parse_signing_key(ByteView content, const std::string& source) {
  const std::string_view text = as_text(content);
  if (contains(text, "-----BEGIN")) {
    SecretBytes seed;
    if (!crypto::ed25519_seed_from_pem(content, &seed)) {
      throw Error(Status::invalid_argument, source + " is not an unencrypted Ed25519 private key in PEM (PKCS#8, "
                                                     "as 'openssl genpkey -algorithm ed25519' writes)");
    }
    return seed;
  }
  size_t count = 0, bad_line = 0;
  SecretBytes seed;
  std::string why;
  recipient_text::for_each_entry_line(text, [&](std::string_view line, size_t number) {
    if (++count > 1) return;
    std::string hrp;
    SecretBytes data;
    if (!recipient_text::bech32_decode(line, &hrp, &data, &why)) {
      bad_line = number;
    } else if (hrp != kSigningKeyHrp) {
      bad_line = number;
      why = "is not a signing key (expected MODELCRYPT-SIGNING-KEY-1... or a PEM Ed25519 private key)";
    } else if (data.size() != crypto::kEd25519KeySize) {
      bad_line = number;
      why = "does not hold 32 bytes";
    } else {
      seed = std::move(data);
    }
  });
  if (count == 0) throw Error(Status::invalid_argument, source + " holds no signing key");
  if (count > 1) {
    throw Error(Status::invalid_argument, source + " holds " + std::to_string(count) +
                                              " lines that are not comments; a signing key file holds one key");
  }
  if (bad_line) throw Error(Status::invalid_argument, source + ", line " + std::to_string(bad_line) + ": the signing key " + why);
  return seed;
}

}  // namespace modelcrypt_core::signing_text
