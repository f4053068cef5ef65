#include "recipient_text.hpp"

#include <cctype>
#include <cstring>

#include "errors.hpp"

namespace modelcrypt_core::recipient_text {
namespace {

constexpr char kCharset[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
constexpr char kRecipientHrp[] = "modelcrypt";
constexpr char kIdentityHrp[] = "modelcrypt-secret-key-";
constexpr char kAgeRecipientHrp[] = "age";
constexpr char kAgeIdentityHrp[] = "age-secret-key-";
constexpr size_t kChecksumLength = 6;

uint32_t polymod(const SecretBytes& values) {
  static const uint32_t generator[5] = {0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3};
  uint32_t chk = 1;
  for (uint8_t v : values) {
    const uint32_t top = chk >> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (int i = 0; i < 5; ++i) {
      if ((top >> i) & 1) chk ^= generator[i];
    }
  }
  return chk;
}

// The checksum input: the expanded hrp, then (appended by the callers) the data's 5-bit groups, which
// for an identity are its private key: wiping memory, so that no reallocation while they are
// appended leaves a copy behind.
SecretBytes hrp_expand(std::string_view hrp) {
  SecretBytes out;
  for (char c : hrp) out.push_back(static_cast<uint8_t>(static_cast<unsigned char>(c) >> 5));
  out.push_back(0);
  for (char c : hrp) out.push_back(static_cast<uint8_t>(static_cast<unsigned char>(c) & 31));
  return out;
}

// Bech32 of 32 bytes under `hrp`, lowercase; `out` is wiping memory (identities are secrets).
SecretBytes encode(std::string_view hrp, ByteView data) {
  SecretBytes five;  // 8-bit groups regrouped into 5-bit groups, zero-padded
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < data.size; ++i) {
    acc = ((acc << 8) | data.data[i]) & 0xfff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      five.push_back(static_cast<uint8_t>((acc >> bits) & 31));
    }
  }
  if (bits) five.push_back(static_cast<uint8_t>((acc << (5 - bits)) & 31));
  SecretBytes values = hrp_expand(hrp);
  values.insert(values.end(), five.begin(), five.end());
  values.insert(values.end(), kChecksumLength, 0);
  const uint32_t mod = polymod(values) ^ 1;
  SecretBytes out(hrp.begin(), hrp.end());
  out.push_back('1');
  for (uint8_t v : five) out.push_back(static_cast<uint8_t>(kCharset[v]));
  for (size_t i = 0; i < kChecksumLength; ++i) out.push_back(static_cast<uint8_t>(kCharset[(mod >> (5 * (5 - i))) & 31]));
  acc = 0;
  return out;
}

// Decodes Bech32 text to (lowercase hrp, 8-bit data) or explains what is wrong in `why`.
bool decode(std::string_view text, std::string* hrp, SecretBytes* data, std::string* why) {
  bool lower = false, upper = false;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 33 || u > 126) { *why = "contains a character that is not printable ASCII"; return false; }
    lower |= std::islower(u) != 0;
    upper |= std::isupper(u) != 0;
  }
  if (lower && upper) { *why = "mixes upper and lower case"; return false; }
  const size_t sep = text.rfind('1');
  if (sep == std::string_view::npos || sep == 0 || sep + 1 + kChecksumLength > text.size()) {
    *why = "is not Bech32 text (no '1' separator followed by a checksum)";
    return false;
  }
  hrp->clear();
  for (char c : text.substr(0, sep)) hrp->push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  SecretBytes values = hrp_expand(*hrp);
  SecretBytes five;
  for (char c : text.substr(sep + 1)) {
    const char* p = std::strchr(kCharset, std::tolower(static_cast<unsigned char>(c)));
    if (p == nullptr || *p == '\0') { *why = "has a character outside the Bech32 alphabet"; return false; }
    five.push_back(static_cast<uint8_t>(p - kCharset));
  }
  values.insert(values.end(), five.begin(), five.end());
  const bool checksum_ok = polymod(values) == 1;
  if (!checksum_ok) { *why = "has a bad checksum (mistyped or truncated)"; return false; }
  five.resize(five.size() - kChecksumLength);
  data->clear();
  uint32_t acc = 0;
  int bits = 0;
  for (uint8_t v : five) {
    acc = ((acc << 5) | v) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      data->push_back(static_cast<uint8_t>((acc >> bits) & 0xff));
    }
  }
  const bool padding_ok = bits < 5 && (acc & ((1u << bits) - 1)) == 0;
  acc = 0;
  if (!padding_ok) *why = "has invalid padding bits";
  return padding_ok;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Calls fn(line, line_number) for every line that is not blank and not a '#' comment.
template <typename Fn>
void for_each_entry(std::string_view content, Fn&& fn) {
  size_t line_number = 0;
  while (!content.empty()) {
    const size_t end = content.find('\n');
    std::string_view line = trim(content.substr(0, end));
    ++line_number;
    if (!line.empty() && line.front() != '#') fn(line, line_number);
    if (end == std::string_view::npos) break;
    content.remove_prefix(end + 1);
  }
}

bool starts_with_nocase(std::string_view s, const char* prefix) {
  const size_t n = std::strlen(prefix);
  if (s.size() < n) return false;
  for (size_t i = 0; i < n; ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != std::tolower(static_cast<unsigned char>(prefix[i]))) return false;
  }
  return true;
}

bool is_identity_line(std::string_view line) {
  return starts_with_nocase(line, "modelcrypt-secret-key-1") || starts_with_nocase(line, "age-secret-key-1");
}

std::string_view as_text(ByteView v) { return {reinterpret_cast<const char*>(v.data), v.size}; }

}  // namespace

std::string format_recipient(const PublicKey& public_key) {
  const SecretBytes s = encode(kRecipientHrp, {public_key.data(), public_key.size()});
  return std::string(s.begin(), s.end());
}

SecretBytes format_identity(ByteView private_key) {
  SecretBytes s = encode(kIdentityHrp, private_key);
  for (uint8_t& c : s) c = static_cast<uint8_t>(std::toupper(c));
  return s;
}

PublicKey parse_recipient(std::string_view text) {
  text = trim(text);
  if (is_identity_line(text)) {
    throw Error(Status::invalid_argument, "this is an identity (a private key), not a recipient: keep it secret and pass "
                                          "its public recipient (modelcrypt1... or age1...) instead");
  }
  std::string hrp, why;
  SecretBytes data;
  // Shown only when it looks like a recipient (public); anything else may be a key given by mistake.
  const bool looks_public = (starts_with_nocase(text, "modelcrypt1") || starts_with_nocase(text, "age1")) && text.size() <= 100;
  const std::string shown = looks_public ? "'" + std::string(text) + "'" : "text";
  if (!decode(text, &hrp, &data, &why)) {
    throw Error(Status::invalid_argument, "recipient " + shown + " " + why);
  }
  if (hrp != kRecipientHrp && hrp != kAgeRecipientHrp) {
    throw Error(Status::invalid_argument, "recipient " + shown + " is not an X25519 recipient (expected modelcrypt1... or age1...)");
  }
  if (data.size() != crypto::kX25519KeySize) {
    throw Error(Status::invalid_argument, "recipient " + shown + " holds " + std::to_string(data.size()) + " bytes, not 32");
  }
  PublicKey key{};
  std::memcpy(key.data(), data.data(), key.size());
  return key;
}

std::vector<PublicKey> parse_recipients_list(std::string_view content, const std::string& source) {
  std::vector<PublicKey> out;
  for_each_entry(content, [&](std::string_view line, size_t number) {
    try {
      out.push_back(parse_recipient(line));
    } catch (const Error& e) {
      throw Error(Status::invalid_argument, source + ", line " + std::to_string(number) + ": " + e.what());
    }
  });
  if (out.empty()) throw Error(Status::invalid_argument, source + " holds no recipient");
  return out;
}

bool holds_identity(ByteView content) {
  bool found = false;
  for_each_entry(as_text(content), [&](std::string_view line, size_t) { found |= is_identity_line(line); });
  return found;
}

SecretBytes parse_identity(ByteView content, const std::string& source) {
  size_t count = 0, bad_line = 0;
  SecretBytes key;
  std::string why;
  for_each_entry(as_text(content), [&](std::string_view line, size_t number) {
    ++count;
    if (count > 1) return;
    std::string hrp;
    SecretBytes data;
    if (!decode(line, &hrp, &data, &why)) {
      bad_line = number;
    } else if (hrp != kIdentityHrp && hrp != kAgeIdentityHrp) {
      bad_line = number;
      why = "is not an X25519 identity (expected MODELCRYPT-SECRET-KEY-1... or AGE-SECRET-KEY-1...)";
    } else if (data.size() != crypto::kX25519KeySize) {
      bad_line = number;
      why = "does not hold 32 bytes";
    } else {
      key = std::move(data);
    }
  });
  if (count == 0) throw Error(Status::invalid_argument, source + " holds no identity");
  if (count > 1) throw Error(Status::invalid_argument, source + " holds " + std::to_string(count) + " lines that are not comments; an identity file holds one identity");
  if (bad_line) throw Error(Status::invalid_argument, source + ", line " + std::to_string(bad_line) + ": the identity " + why);
  return key;
}

SecretBytes bech32_encode(std::string_view hrp, ByteView data) { return encode(hrp, data); }

bool bech32_decode(std::string_view text, std::string* hrp, SecretBytes* data, std::string* why) {
  return decode(text, hrp, data, why);
}

void for_each_entry_line(std::string_view content, const std::function<void(std::string_view, size_t)>& fn) {
  for_each_entry(content, fn);
}

}  // namespace modelcrypt_core::recipient_text
