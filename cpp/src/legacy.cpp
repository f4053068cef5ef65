#include "legacy.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "errors.hpp"
#include "file_io.hpp"
#include "format.hpp"

namespace modelcrypt_core::legacy {
namespace {

constexpr uint32_t kMsMagicGcm = 0x7F3A5ED8;
constexpr uint32_t kMsMagicCbc = 0x7F3A5ED9;
constexpr uint32_t kMsMagicSm4 = 0x7F3A5EDA;
constexpr char kPaddleXMagic[] = "PADDLE1";
constexpr size_t kPaddleXHeader = 7 + 64 + 64;
constexpr size_t kTag = 16;

uint32_t le32(const uint8_t* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}
void put_le32(uint8_t* p, uint32_t v) { for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i)); }

[[noreturn]] void format_error(const std::string& what) { throw Error(Status::format, what); }

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  return s;
}

const char* ms_cipher(uint32_t magic) {
  return magic == kMsMagicGcm ? "AES-GCM" : magic == kMsMagicCbc ? "AES-CBC" : "SM4-CBC";
}

std::string aes_name(size_t key_len, const char* suffix) {
  return "AES-" + std::to_string(key_len * 8) + "-" + suffix;
}

void require_aes_key(ByteView key, const char* what) {
  if (key.size != 16 && key.size != 24 && key.size != 32) {
    throw Error(Status::invalid_argument, std::string(what) + " needs a 16, 24 or 32-byte key, got " + std::to_string(key.size));
  }
}

// The frame header of MindSpore: [magic][tag if GCM][block_len][iv_len][iv 16][cipher_len].
struct Frame {
  size_t header = 0;      // offset of the frame
  size_t ciphertext = 0;  // offset of its ciphertext
  size_t length = 0;      // ciphertext length
};

// Walks the frames of a MindSpore file of `size` bytes. header_at(pos, n) gives the n bytes at pos
// (n <= 48, pos + n <= size): only frame headers are read, so a file on disk needs no full image.
// on_frame(frame) is called for each valid frame. Returns the number of frames; sets *magic_out.
template <class HeaderAt, class OnFrame>
uint64_t walk_ms_frames(uint64_t size, HeaderAt&& header_at, OnFrame&& on_frame, uint32_t* magic_out) {
  uint64_t count = 0;
  uint32_t magic = 0;
  uint64_t pos = 0;
  while (pos < size) {
    const std::string where = "MindSpore frame " + std::to_string(count) + " at offset " + std::to_string(pos);
    if (size - pos < 4) format_error(where + ": truncated frame header");
    const uint32_t m = le32(header_at(pos, 4));
    if (count == 0) {
      if (m != kMsMagicGcm && m != kMsMagicCbc && m != kMsMagicSm4) format_error(where + ": not a MindSpore frame");
      magic = m;
    } else if (m != magic) {
      format_error(where + ": bad frame magic (trailing data or a corrupted frame)");
    }
    const size_t head = (magic == kMsMagicGcm ? 4 + kTag : 4) + 4 + 4 + 16 + 4;
    if (size - pos < head) format_error(where + ": truncated frame header");
    const uint8_t* h = header_at(pos, head) + (magic == kMsMagicGcm ? 4 + kTag : 4);
    const int32_t block_len = static_cast<int32_t>(le32(h));
    const int32_t iv_len = static_cast<int32_t>(le32(h + 4));
    const int32_t cipher_len = static_cast<int32_t>(le32(h + 24));
    if (iv_len != 16) format_error(where + ": iv_len is " + std::to_string(iv_len) + ", expected 16");
    if (cipher_len < 0 || static_cast<size_t>(cipher_len) > kMindSporeFrameMax + 16) {
      format_error(where + ": invalid ciphertext length " + std::to_string(cipher_len));
    }
    if (int64_t{block_len} != int64_t{cipher_len} + 24) format_error(where + ": block_len does not match cipher_len");
    if (magic != kMsMagicGcm && (cipher_len == 0 || cipher_len % 16 != 0)) {
      format_error(where + ": CBC ciphertext length " + std::to_string(cipher_len) + " is not a positive multiple of 16");
    }
    if (static_cast<uint64_t>(cipher_len) > size - pos - head) {
      format_error(where + ": ciphertext length " + std::to_string(cipher_len) + " runs past the end of the file");
    }
    on_frame(Frame{static_cast<size_t>(pos), static_cast<size_t>(pos + head), static_cast<size_t>(cipher_len)});
    ++count;
    pos += head + static_cast<uint64_t>(cipher_len);
  }
  if (count == 0) format_error("empty file: no MindSpore frame");
  *magic_out = magic;
  return count;
}

std::vector<Frame> ms_frames(const uint8_t* p, size_t size, uint32_t* magic_out) {
  std::vector<Frame> frames;
  walk_ms_frames(size, [p](uint64_t pos, size_t) { return p + pos; },
                 [&frames](const Frame& f) { frames.push_back(f); }, magic_out);
  return frames;
}

Result ms_decrypt(uint8_t* p, size_t size, const Mode& mode, ByteView key) {
  uint32_t magic = 0;
  const std::vector<Frame> frames = ms_frames(p, size, &magic);
  Result r;
  r.frames = frames.size();
  std::string name;
  if (magic == kMsMagicSm4) {
    if (key.size != 16) throw Error(Status::invalid_argument, "SM4-CBC needs a 16-byte key, got " + std::to_string(key.size));
    name = "SM4-CBC";
  } else {
    require_aes_key(key, ms_cipher(magic));
    name = aes_name(key.size, magic == kMsMagicGcm ? "GCM" : "CBC");
  }
  (void)mode;
  r.cipher = name;
  std::unique_ptr<crypto::AesGcm> gcm;
  if (magic == kMsMagicGcm) gcm = std::make_unique<crypto::AesGcm>(key);
  size_t out = 0;  // plaintext is compacted to the front of the image, frame after frame
  for (size_t i = 0; i < frames.size(); ++i) {
    const Frame& f = frames[i];
    uint8_t* ct = p + f.ciphertext;
    const uint8_t* iv = ct - 4 - 16;
    if (magic == kMsMagicGcm) {
      uint8_t tag[kTag];
      std::memcpy(tag, p + f.header + 4, kTag);
      // MindSpore stores a 16-byte IV but GCM uses only its first 12 bytes as the nonce.
      if (!gcm->decrypt({iv, 12}, {}, ct, ct, f.length, tag)) {
        throw Error(Status::auth_failed, "MindSpore AES-GCM frame " + std::to_string(i) +
                                             " failed authentication: wrong key, or the data was modified");
      }
      std::memmove(p + out, ct, f.length);
      out += f.length;
    } else {
      const long long n = crypto::cipher_crypt(name.c_str(), key, {iv, 16}, ct, f.length, ct, false, true);
      if (n < 0) {
        throw Error(Status::auth_failed, "MindSpore " + std::string(ms_cipher(magic)) + " frame " + std::to_string(i) +
                                             ": bad padding (wrong key or corrupted data; CBC cannot tell which)");
      }
      std::memmove(p + out, ct, static_cast<size_t>(n));
      out += static_cast<size_t>(n);
    }
  }
  r.offset = 0;
  r.length = out;
  if (magic == kMsMagicGcm) {
    r.insecure = "MindSpore AES-GCM files authenticate each frame on its own: frames can be dropped, reordered and "
                 "spliced between files under the same key undetected; re-encrypt with `modelcrypt migrate`";
  } else {
    r.insecure = std::string("MindSpore ") + ms_cipher(magic) +
                 " files are not authenticated: modified bytes load silently as changed weights, and frames can be "
                 "dropped or reordered undetected; re-encrypt with `modelcrypt migrate`";
  }
  return r;
}

Result paddlex_decrypt(uint8_t* p, size_t size, ByteView key) {
  if (size < kPaddleXHeader + kTag) format_error("truncated PaddleX file: " + std::to_string(size) + " bytes");
  if (key.size != 32) throw Error(Status::invalid_argument, "PaddleX files need a 32-byte key, got " + std::to_string(key.size));
  uint8_t digest[crypto::kSha256Size];
  crypto::sha256(key, digest);
  static const char hex[] = "0123456789abcdef";
  uint8_t expected[64];
  for (size_t i = 0; i < 32; ++i) {
    expected[2 * i] = static_cast<uint8_t>(hex[digest[i] >> 4]);
    expected[2 * i + 1] = static_cast<uint8_t>(hex[digest[i] & 15]);
  }
  if (!crypto::equal_constant_time(expected, p + 7, 64)) {
    throw Error(Status::key_mismatch, "wrong key: the SHA-256 of the key stored in this PaddleX file does not match");
  }
  crypto::AesGcm gcm(key);
  uint8_t* ct = p + kPaddleXHeader;
  const size_t n = size - kPaddleXHeader - kTag;
  if (!gcm.decrypt({key.data + 16, 16}, {}, ct, ct, n, p + size - kTag)) {
    throw Error(Status::auth_failed, "PaddleX file failed authentication: the data was modified");
  }
  Result r;
  r.offset = kPaddleXHeader;
  r.length = n;
  r.cipher = "AES-256-GCM";
  r.insecure =
      "PaddleX files reuse one AES-GCM nonce (derived from the key) for every file, so two files under one key leak "
      "the XOR of their plaintexts, and each file stores an unsalted hash of the key (an offline key-testing oracle); "
      "re-encrypt with `modelcrypt migrate`";
  return r;
}

Result paddle_decrypt(uint8_t* p, size_t size, const Mode& mode, ByteView key) {
  require_aes_key(key, "Paddle AES cipher");
  const size_t iv = mode.iv_bytes;
  Result r;
  r.offset = iv;
  if (mode.paddle_cipher == Mode::PaddleCipher::gcm) {
    if (size < iv + mode.tag_bytes) format_error("truncated Paddle GCM file: " + std::to_string(size) + " bytes");
    crypto::AesGcm gcm(key);
    const size_t n = size - iv - mode.tag_bytes;
    if (!gcm.decrypt({p, iv}, {}, p + iv, p + iv, n, p + size - mode.tag_bytes, mode.tag_bytes)) {
      throw Error(Status::auth_failed, "Paddle AES-GCM file failed authentication: wrong key, or the data was modified");
    }
    r.length = n;
    r.cipher = aes_name(key.size, "GCM");
    if (mode.tag_bytes < kTag) {
      r.insecure = "this Paddle AES-GCM file has a " + std::to_string(mode.tag_bytes * 8) +
                   "-bit tag: forgeries succeed with far better odds than with 128-bit tags; re-encrypt with `modelcrypt migrate`";
    }
    return r;
  }
  const bool ecb = mode.paddle_cipher == Mode::PaddleCipher::ecb;
  const size_t iv_len = ecb ? 0 : iv;  // Paddle writes no IV in front of ECB files
  r.offset = iv_len;
  if (size < iv_len) format_error("truncated Paddle cipher file: shorter than its IV");
  const bool padded = mode.paddle_cipher != Mode::PaddleCipher::ctr;
  const char* suffix = mode.paddle_cipher == Mode::PaddleCipher::ctr ? "CTR" : mode.paddle_cipher == Mode::PaddleCipher::cbc ? "CBC" : "ECB";
  r.cipher = aes_name(key.size, suffix);
  const size_t n = size - iv_len;
  if (padded && (n == 0 || n % 16 != 0)) format_error("Paddle " + r.cipher + " body is not a positive multiple of 16 bytes");
  const ByteView ivv = ecb ? ByteView{} : ByteView{p, iv_len};
  const long long out = crypto::cipher_crypt(r.cipher.c_str(), key, ivv, p + iv_len, n, p + iv_len, false, padded);
  if (out < 0) throw Error(Status::auth_failed, "Paddle " + r.cipher + ": bad padding (wrong key or corrupted data)");
  r.length = static_cast<size_t>(out);
  r.insecure = "Paddle " + r.cipher + " files are not authenticated: modified bytes load silently; re-encrypt with `modelcrypt migrate`";
  return r;
}

}  // namespace

const char* format_name(Format f) noexcept {
  switch (f) {
    case Format::modelcrypt: return "modelcrypt";
    case Format::mindspore: return "mindspore";
    case Format::paddlex: return "paddlex";
    case Format::paddle_cipher: return "paddle-cipher";
    case Format::unknown: return "unknown";
  }
  return "unknown";
}

const std::vector<std::string>& fixed_mode_names() {
  static const std::vector<std::string> names = {"AES-GCM", "AES-CBC", "SM4-CBC"};
  return names;
}

Mode parse_mode(const std::string& text) {
  Mode m;
  m.name = text;
  const std::string u = upper(text);
  if (u == "AES-GCM") return m;
  if (u == "AES-CBC") { m.kind = Mode::Kind::aes_cbc; return m; }
  if (u == "SM4-CBC") { m.kind = Mode::Kind::sm4_cbc; return m; }
  if (u.rfind("PADDLE:", 0) == 0) {
    m.kind = Mode::Kind::paddle;
    std::vector<std::string> fields;
    size_t start = 7;
    while (true) {
      const size_t colon = text.find(':', start);
      fields.push_back(text.substr(start, colon == std::string::npos ? std::string::npos : colon - start));
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
    const std::string& cipher = fields[0];
    if (cipher == "AES_CTR_NoPadding") m.paddle_cipher = Mode::PaddleCipher::ctr;
    else if (cipher == "AES_CBC_PKCSPadding") m.paddle_cipher = Mode::PaddleCipher::cbc;
    else if (cipher == "AES_ECB_PKCSPadding") m.paddle_cipher = Mode::PaddleCipher::ecb;
    else if (cipher == "AES_GCM_NoPadding") m.paddle_cipher = Mode::PaddleCipher::gcm;
    else {
      throw Error(Status::invalid_argument, "unknown Paddle cipher '" + cipher + "' in mode '" + text +
                  "'; known: AES_CTR_NoPadding, AES_CBC_PKCSPadding, AES_ECB_PKCSPadding, AES_GCM_NoPadding");
    }
    for (size_t i = 1; i < fields.size(); ++i) {
      const std::string& f = fields[i];
      const size_t eq = f.find('=');
      const std::string k = f.substr(0, eq);
      unsigned long bits = 0;
      try {
        if (eq == std::string::npos) throw std::invalid_argument("no value");
        size_t used = 0;
        bits = std::stoul(f.substr(eq + 1), &used);
        if (used != f.size() - eq - 1) throw std::invalid_argument("junk");
      } catch (const std::exception&) {
        throw Error(Status::invalid_argument, "bad field '" + f + "' in mode '" + text + "' (expected iv=<bits> or tag=<bits>)");
      }
      if (bits == 0 || bits % 8 != 0 || bits > 1024) {
        throw Error(Status::invalid_argument, "'" + f + "' in mode '" + text + "': sizes are bits, a positive multiple of 8");
      }
      if (k == "iv") m.iv_bytes = bits / 8;
      else if (k == "tag") m.tag_bytes = bits / 8;
      else throw Error(Status::invalid_argument, "unknown field '" + k + "' in mode '" + text + "'");
    }
    const bool gcm = m.paddle_cipher == Mode::PaddleCipher::gcm;
    if (!gcm && m.paddle_cipher != Mode::PaddleCipher::ecb && m.iv_bytes != 16) {
      throw Error(Status::invalid_argument, "Paddle CTR/CBC files need a 128-bit IV; mode '" + text + "' says " + std::to_string(m.iv_bytes * 8));
    }
    if (gcm && (m.tag_bytes < 4 || m.tag_bytes > 16)) {
      throw Error(Status::invalid_argument, "GCM tags are 32 to 128 bits; mode '" + text + "' says " + std::to_string(m.tag_bytes * 8));
    }
    if (gcm && m.iv_bytes > crypto::kMaxGcmIvSize) {
      throw Error(Status::invalid_argument, "GCM IVs longer than 1024 bits are not supported");
    }
    return m;
  }
  std::string list;
  for (const auto& n : fixed_mode_names()) list += "'" + n + "', ";
  throw Error(Status::invalid_argument, "unsupported mode '" + text + "'; supported modes: " + list +
                                            "and 'paddle:<cipher_name>[:iv=<bits>][:tag=<bits>]' for Paddle cipher files");
}

Format detect(const uint8_t* p, size_t n) noexcept {
  if (n >= sizeof format::kMagic && std::memcmp(p, format::kMagic, sizeof format::kMagic) == 0) return Format::modelcrypt;
  if (n >= 7 && std::memcmp(p, kPaddleXMagic, 7) == 0) return Format::paddlex;
  if (n >= 4) {
    const uint32_t m = le32(p);
    if (m == kMsMagicGcm || m == kMsMagicCbc || m == kMsMagicSm4) return Format::mindspore;
  }
  return Format::unknown;
}

void check_mode_matches(Format f, const Mode& mode, const uint8_t* p, size_t n) {
  std::string file_says;
  bool ok = false;
  switch (f) {
    case Format::modelcrypt:
      ok = mode.kind == Mode::Kind::aes_gcm;
      file_says = "a modelcrypt file (AES-256-GCM), read with mode 'AES-GCM'";
      break;
    case Format::paddlex:
      ok = mode.kind == Mode::Kind::aes_gcm;
      file_says = "a PaddleX file (AES-GCM), read with mode 'AES-GCM'";
      break;
    case Format::mindspore: {
      const uint32_t m = le32(p);
      const Mode::Kind want = m == kMsMagicGcm ? Mode::Kind::aes_gcm : m == kMsMagicCbc ? Mode::Kind::aes_cbc : Mode::Kind::sm4_cbc;
      ok = mode.kind == want;
      file_says = std::string("a MindSpore ") + ms_cipher(m) + " file, read with mode '" + ms_cipher(m) + "' (CLI --mode " +
                  ms_cipher(m) + ")";
      break;
    }
    case Format::paddle_cipher:
      ok = true;
      break;
    case Format::unknown:
      if (mode.kind == Mode::Kind::paddle) return;
      format_error("not a modelcrypt, MindSpore or PaddleX encrypted file (Paddle cipher files have no magic: "
                   "pass mode='paddle:<cipher_name>')");
  }
  (void)n;
  if (!ok) throw Error(Status::invalid_argument, "mode '" + mode.name + "' does not match the file: it is " + file_says);
}

const std::vector<std::string>& format_choices() {
  static const std::vector<std::string> names = {"modelcrypt", "mindspore", "paddlex", "paddle-cipher", "auto"};
  return names;
}

FormatSet accepted_formats(const std::string& choice, const Mode& mode) {
  const FormatSet v1 = format_bit(Format::modelcrypt);
  const bool paddle_mode = mode.kind == Mode::Kind::paddle;
  const bool mindspore_only_mode = mode.kind == Mode::Kind::aes_cbc || mode.kind == Mode::Kind::sm4_cbc;
  if (choice.empty() || choice == "modelcrypt") {
    if (paddle_mode) return v1 | format_bit(Format::paddle_cipher);
    if (mindspore_only_mode) return v1 | format_bit(Format::mindspore);
    return v1;
  }
  if (choice == "auto") {
    return v1 | format_bit(Format::mindspore) | format_bit(Format::paddlex) | format_bit(Format::paddle_cipher);
  }
  if (choice == "mindspore") {
    if (paddle_mode) {
      throw Error(Status::invalid_argument, "format 'mindspore' reads MindSpore files, with mode 'AES-GCM', 'AES-CBC' or "
                                            "'SM4-CBC', not mode '" + mode.name + "'");
    }
    return v1 | format_bit(Format::mindspore);
  }
  if (choice == "paddlex") {
    if (mode.kind != Mode::Kind::aes_gcm) {
      throw Error(Status::invalid_argument, "format 'paddlex' reads PaddleX files, whose mode is 'AES-GCM', not mode '" +
                                            mode.name + "'");
    }
    return v1 | format_bit(Format::paddlex);
  }
  if (choice == "paddle-cipher") {
    if (!paddle_mode) {
      throw Error(Status::invalid_argument, "format 'paddle-cipher' needs the file's cipher as the mode, "
                                            "'paddle:<cipher_name>[:iv=<bits>][:tag=<bits>]', not mode '" + mode.name + "'");
    }
    return format_bit(Format::paddle_cipher);
  }
  throw Error(Status::invalid_argument, "unknown format choice; expected one of 'modelcrypt', 'mindspore', 'paddlex', "
                                        "'paddle-cipher', 'auto'");
}

Format choose_format(const Mode& mode, FormatSet accepted, const uint8_t* p, size_t n) {
  if (mode.kind == Mode::Kind::paddle && detect(p, n) == Format::modelcrypt) {
    // Paddle cipher files start with a random IV: one that starts with the v1 magic is a v1 file.
    throw Error(Status::invalid_argument, "mode '" + mode.name + "' does not match the file: it is a modelcrypt file "
                                          "(AES-256-GCM), read with mode 'AES-GCM'");
  }
  const Format f = mode.kind == Mode::Kind::paddle ? Format::paddle_cipher : detect(p, n);
  if (f != Format::unknown && (accepted & format_bit(f)) == 0) {
    std::string what, why;
    if (f == Format::mindspore && le32(p) != kMsMagicGcm) {
      // CBC/SM4: the mode, which only MindSpore has, is the opt-in.
      throw Error(Status::format, std::string("this is a MindSpore ") + ms_cipher(le32(p)) +
                                      " file, a legacy format that is read only when asked for (it is not "
                                      "authenticated at all): read it with mode '" + ms_cipher(le32(p)) +
                                      "' (CLI --mode " + ms_cipher(le32(p)) +
                                      "), or convert it once with `modelcrypt migrate`");
    }
    if (f == Format::mindspore) {
      what = "a MindSpore AES-GCM file";
      why = "MindSpore frames can be dropped, reordered and spliced undetected";
    } else if (f == Format::paddlex) {
      what = "a PaddleX file";
      why = "PaddleX reuses one nonce for every file under a key";
    } else {
      what = std::string("a ") + format_name(f) + " file";
    }
    if (f == Format::modelcrypt) {
      throw Error(Status::format, "this is a modelcrypt file, but format 'paddle-cipher' was asked for");
    }
    throw Error(Status::format, "this is " + what + ", a legacy format that is read only when asked for (" + why +
                                    "): pass format='" + format_name(f) + "' (CLI --format " + format_name(f) +
                                    "), or convert it once with `modelcrypt migrate`");
  }
  check_mode_matches(f, mode, p, n);
  return f;
}

Result decrypt_in_place(Format f, const Mode& mode, uint8_t* image, size_t size, ByteView key) {
  switch (f) {
    case Format::mindspore: return ms_decrypt(image, size, mode, key);
    case Format::paddlex: return paddlex_decrypt(image, size, key);
    case Format::paddle_cipher: return paddle_decrypt(image, size, mode, key);
    default: throw Error(Status::internal, "decrypt_in_place: not a legacy format");
  }
}

Description describe(Format f, const uint8_t* image, size_t size) {
  Description d;
  if (f == Format::mindspore) {
    uint32_t magic = 0;
    const std::vector<Frame> frames = ms_frames(image, size, &magic);
    d.cipher = ms_cipher(magic);
    d.frames = frames.size();
    if (magic == kMsMagicGcm) {
      d.plaintext_length = 0;
      for (const Frame& fr : frames) d.plaintext_length += static_cast<int64_t>(fr.length);
    }
  } else if (f == Format::paddlex) {
    if (size < kPaddleXHeader + kTag) format_error("truncated PaddleX file");
    d.cipher = "AES-256-GCM";
    d.frames = 1;
    d.plaintext_length = static_cast<int64_t>(size - kPaddleXHeader - kTag);
  } else {
    throw Error(Status::format, "not a MindSpore or PaddleX file");
  }
  return d;
}

FileDescription describe_file(const std::string& path) {
  InputFile in(path);
  FileDescription out;
  out.file_length = in.size();
  uint8_t prefix[8] = {};
  const size_t got = in.read_at(prefix, sizeof prefix, 0);
  out.format = detect(prefix, got);
  if (out.format != Format::mindspore) {  // PaddleX needs only the size; anything else is refused
    out.description = describe(out.format, prefix, out.format == Format::paddlex ? static_cast<size_t>(in.size()) : got);
    return out;
  }
  // Only the frame headers are read, through a small window (frames are up to 64 MiB apart, and a
  // file of tiny frames is walked without one read per frame).
  std::vector<uint8_t> window(64 << 10);
  uint64_t window_pos = 0;
  size_t window_len = 0;
  auto header_at = [&](uint64_t pos, size_t n) -> const uint8_t* {
    if (pos < window_pos || pos + n > window_pos + window_len) {
      window_pos = pos;
      window_len = in.read_at(window.data(), static_cast<size_t>(std::min<uint64_t>(window.size(), in.size() - pos)), pos);
      if (window_len < n) throw Error(Status::io, "file '" + path + "' became shorter while it was being read", 0, path);
    }
    return window.data() + (pos - window_pos);
  };
  Description& d = out.description;
  uint32_t magic = 0;
  int64_t plaintext = 0;
  d.frames = walk_ms_frames(in.size(), header_at, [&plaintext](const Frame& f) { plaintext += static_cast<int64_t>(f.length); }, &magic);
  d.cipher = ms_cipher(magic);
  if (magic == kMsMagicGcm) d.plaintext_length = plaintext;
  return out;
}

uint64_t mindspore_encrypted_length(uint64_t plaintext_length, const Mode& mode) {
  const bool gcm = mode.kind == Mode::Kind::aes_gcm;
  const uint64_t head = gcm ? 4 + kTag + 28 : 4 + 28;
  const uint64_t frames = plaintext_length == 0 ? 1 : (plaintext_length + kMindSporeFrameMax - 1) / kMindSporeFrameMax;
  if (gcm) return frames * head + plaintext_length;
  // CBC: each frame is padded up to the next multiple of 16 (a full block when already aligned)
  const uint64_t full = plaintext_length / kMindSporeFrameMax;
  const uint64_t rest = plaintext_length - full * kMindSporeFrameMax;
  uint64_t total = frames * head + full * (kMindSporeFrameMax + 16);
  if (rest || plaintext_length == 0) total += (rest / 16 + 1) * 16;
  return total;
}

namespace {

// Writes one frame of `n` plaintext bytes at `out`; returns the bytes written.
size_t ms_write_frame(const Mode& mode, ByteView key, const uint8_t* pt, size_t n, uint8_t* out) {
  const bool gcm = mode.kind == Mode::Kind::aes_gcm;
  const uint32_t magic = gcm ? kMsMagicGcm : mode.kind == Mode::Kind::aes_cbc ? kMsMagicCbc : kMsMagicSm4;
  uint8_t* h = out + (gcm ? 4 + kTag : 4);
  uint8_t* iv = h + 8;
  uint8_t* ct = h + 28;
  crypto::random_bytes(iv, 16);
  size_t ct_len = n;
  if (gcm) {
    crypto::AesGcm aes(key);
    aes.encrypt({iv, 12}, {}, pt, ct, n, out + 4);
  } else {
    const std::string name = mode.kind == Mode::Kind::sm4_cbc ? "SM4-CBC" : aes_name(key.size, "CBC");
    const long long m = crypto::cipher_crypt(name.c_str(), key, {iv, 16}, pt, n, ct, true, true);
    if (m < 0) throw Error(Status::internal, "CBC encryption failed");
    ct_len = static_cast<size_t>(m);
  }
  put_le32(out, magic);
  put_le32(h, static_cast<uint32_t>(ct_len + 24));
  put_le32(h + 4, 16);
  put_le32(h + 24, static_cast<uint32_t>(ct_len));
  return static_cast<size_t>(ct - out) + ct_len;
}

void check_writer(const Mode& mode, ByteView key) {
  if (mode.kind == Mode::Kind::paddle) throw Error(Status::invalid_argument, "format='mindspore' takes mode 'AES-GCM', 'AES-CBC' or 'SM4-CBC'");
  if (mode.kind == Mode::Kind::sm4_cbc) {
    if (key.size != 16) throw Error(Status::invalid_argument, "SM4-CBC needs a 16-byte key, got " + std::to_string(key.size));
  } else {
    require_aes_key(key, "MindSpore AES");
  }
}

}  // namespace

void mindspore_encrypt(ByteView plaintext, const Mode& mode, ByteView key, uint8_t* out, uint64_t out_size) {
  check_writer(mode, key);
  if (out_size != mindspore_encrypted_length(plaintext.size, mode)) throw Error(Status::internal, "output size mismatch");
  size_t done = 0, written = 0;
  do {
    const size_t n = std::min(plaintext.size - done, kMindSporeFrameMax);
    written += ms_write_frame(mode, key, plaintext.data + done, n, out + written);
    done += n;
  } while (done < plaintext.size);
}

void mindspore_encrypt_file(const std::string& src, const std::string& dst, const Mode& mode, ByteView key) {
  check_writer(mode, key);
  InputFile in(src);
  check_output_path(src, dst);
  SecureBuffer frame_in = SecureBuffer::allocate(std::min<uint64_t>(in.size(), kMindSporeFrameMax));
  std::vector<uint8_t> frame_out(std::min<uint64_t>(in.size(), kMindSporeFrameMax) + 64 + 16);
  AtomicOutputFile out(dst, 0666);
  uint64_t done = 0;
  do {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(in.size() - done, kMindSporeFrameMax));
    in.read_exact_at(frame_in.data(), n, done);
    out.write_all(frame_out.data(), ms_write_frame(mode, key, frame_in.data(), n, frame_out.data()));
    done += n;
  } while (done < in.size());
  if (in.current_size() != in.size()) throw Error(Status::io, "source file '" + src + "' changed size while it was being encrypted", 0, src);
  out.commit();
}

}  // namespace modelcrypt_core::legacy
