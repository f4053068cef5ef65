// libFuzzer harness for format v2 (docs/FORMAT.md "Format version 2"): recipient stanzas, the X25519
// and symmetric wraps, the recipients MAC, recipient / identity text, and adding / removing recipients.
// Byte 0 of the input picks the mode (byte 0 % 4):
//  0  [0][file]: the file opened with each of five credentials (identities A, B, C; keys K, K2):
//     stanza parsing, X25519 / symmetric unwrap, key commitment, header and recipients MACs, chunks.
//     decrypt_memory must agree with load_file, load_source (an in-memory ByteSource), verify_file,
//     and for A and K with load_range and RandomAccessFile::read_range; any two credentials that
//     open the file must give the same plaintext and metadata; an identity only opens a v2/v3 file
//     that has a stanza with its fingerprint.
//  1  [1][text]: recipient_text on arbitrary bytes: parse_recipient, parse_recipients_list,
//     holds_identity, parse_identity (identity files with comments as age-keygen writes them), and
//     bech32_decode of each entry line. What parses must format back to text that parses to the
//     same key (modelcrypt and age forms), and Bech32 decode -> encode must give the lowercased text.
//  2  [2][op0][op1][op2][file]: edit_recipients on a copy of the fuzzed file (in a per-process
//     temporary directory) with the credential and the additions / removals the op bytes pick.
//     op0 % 5: the credential that edits (A, B, C, K, K2); op1 bits 0-2: add A, B, C; op1 bits 4-7:
//     add 2 x that many other recipients (up to 30: a block outgrows its room, the file is rewritten);
//     op2 bits 0-2: remove A, B, C; bits 3-4: remove K, K2; bits 5-6: add K, K2; op1 bit 3 with op0
//     bit 7: add a low-order (all-zero) public key; op2 bit 7 with op0 bit 6: add a 15-byte key.
//  3  [3][op0][op1][op2][build][plaintext]: the same edit on a valid v2 file the harness writes
//     first with encrypt_memory (4 KiB chunks, at most 12 KiB of plaintext): build bits 0-2: to
//     A, B, C (none: A); bit 3: with K (always when no recipient bit); bit 4: else with K2; bit 5:
//     metadata; bit 6: one ciphertext bit flipped (the header authenticates, a chunk does not).
//  Edit oracles: every failure is a typed modelcrypt_core::Error and leaves the file byte for byte as it
//  was and no temporary file behind; a success keeps the core header and every payload byte, reports
//  the stanza counts the file now has, keeps the other stanzas in order, and every credential then
//  opens the file exactly as expected (unchanged, removed: KeyMismatch, added: as the editor did).
// Seeds: tests/fuzz/fuzz_v2_recipients/ (tests/fuzz/make_seeds.py).
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <string>

#include "../src/container.hpp"
#include "../src/random_access.hpp"
#include "../src/recipient_text.hpp"
#include "../src/recipients.hpp"
#include "../src/recipients_edit.hpp"
#include "fuzz_common.hpp"

using namespace modelcrypt_core;
using modelcrypt_core::fuzz::fail;
using modelcrypt_core::fuzz::guarded;

namespace {

using Bytes = std::vector<uint8_t>;
using PublicKey = recipients::PublicKey;

// Identities A, B, C (private keys a0.., c0.., e0..) and symmetric keys K (00..1f) and K2 (f0..ff).
const Bytes kPrivA = fuzz::counting_key(0xA0, 32);
const Bytes kPrivB = fuzz::counting_key(0xC0, 32);
const Bytes kPrivC = fuzz::counting_key(0xE0, 32);
const Bytes kKeyK = fuzz::counting_key(0x00, 32);
const Bytes kKeyK2 = fuzz::counting_key(0xF0, 16);
constexpr size_t kIdA = 0, kIdB = 1, kIdC = 2, kK = 3, kK2 = 4, kCreds = 5;
const char* const kCredName[kCreds] = {"identity A", "identity B", "identity C", "key K", "key K2"};

PublicKey public_of(const Bytes& priv) {
  PublicKey p{};
  crypto::x25519_public_key(priv.data(), p.data());
  return p;
}

const std::vector<Credential>& creds() {
  static const std::vector<Credential> c = [] {
    std::vector<Credential> v;
    v.push_back(Credential::x25519_identity({kPrivA.data(), kPrivA.size()}));
    v.push_back(Credential::x25519_identity({kPrivB.data(), kPrivB.size()}));
    v.push_back(Credential::x25519_identity({kPrivC.data(), kPrivC.size()}));
    v.emplace_back(ByteView{kKeyK.data(), kKeyK.size()});
    v.emplace_back(ByteView{kKeyK2.data(), kKeyK2.size()});
    return v;
  }();
  return c;
}

const std::array<PublicKey, 3>& identity_publics() {
  static const std::array<PublicKey, 3> p = {public_of(kPrivA), public_of(kPrivB), public_of(kPrivC)};
  return p;
}

// Thirty more recipients (public keys only), to grow a block past its room (the whole-file rewrite).
const std::vector<PublicKey>& extra_recipients() {
  static const std::vector<PublicKey> v = [] {
    std::vector<PublicKey> out;
    for (int i = 0; i < 30; ++i) {  // byte j = 5j + 37i + 11: none is A, B or C (step 1)
      Bytes priv(32);
      for (int j = 0; j < 32; ++j) priv[j] = static_cast<uint8_t>(5 * j + 37 * i + 11);
      out.push_back(public_of(priv));
    }
    return out;
  }();
  return v;
}

// ---- temporary files: one directory per process (tmpfs when there is one)

const std::string& temp_dir() {
  static const std::string dir = [] {
    const char* base = std::getenv("MC_FUZZ_TMPDIR");
    if (base == nullptr || *base == 0) base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/mc_fuzz_v2_XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) fail("mkdtemp failed");
    return tmpl;
  }();
  return dir;
}

void remove_temp_dir();

const std::string& temp_path() {
  static const std::string path = [] {
    std::string p = temp_dir() + "/file.mc";
    std::atexit(remove_temp_dir);  // a normal exit of libFuzzer leaves nothing behind
    return p;
  }();
  return path;
}

void remove_temp_dir() {
  unlink(temp_path().c_str());
  rmdir(temp_dir().c_str());
}

void write_file(const std::string& path, const Bytes& data) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) fail("cannot open the temporary file");
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n <= 0) fail("cannot write the temporary file");
    done += static_cast<size_t>(n);
  }
  close(fd);
}

Bytes read_whole(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) fail("cannot reopen the temporary file");
  Bytes out;
  uint8_t buf[65536];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) fail("cannot read the temporary file");
    if (n == 0) break;
    out.insert(out.end(), buf, buf + n);
  }
  close(fd);
  return out;
}

// Names in the temporary directory other than file.mc (a temporary file an edit left behind).
void check_dir_clean(const char* where) {
  DIR* d = opendir(temp_dir().c_str());
  if (d == nullptr) fail("cannot list the temporary directory");
  while (const dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != ".." && name != "file.mc") {
      closedir(d);
      fail(std::string(where) + " left '" + name + "' in the temporary directory");
    }
  }
  closedir(d);
}

// ---- an in-memory ByteSource (load_source)

class MemorySource final : public ByteSource {
 public:
  explicit MemorySource(const Bytes& b) : b_(b) {}
  uint64_t size() const noexcept override { return b_.size(); }
  const std::string& path() const noexcept override { return name_; }
  size_t read_at(void* buf, size_t n, uint64_t offset) const override {
    if (offset >= b_.size()) return 0;
    const size_t k = std::min<uint64_t>(n, b_.size() - offset);
    if (k) std::memcpy(buf, b_.data() + offset, k);
    return k;
  }

 private:
  const Bytes& b_;
  std::string name_ = "fuzz memory source";
};

// ---- opening

struct Outcome {
  Status status = Status::ok;
  Bytes plaintext;
  Bytes metadata;
};

bool same_outcome(const Outcome& a, const Outcome& b) {
  return a.status == b.status && (a.status != Status::ok || (a.plaintext == b.plaintext && a.metadata == b.metadata));
}

Outcome take(Status s, const Decrypted& d) {
  Outcome o;
  o.status = s;
  if (s == Status::ok) {
    o.plaintext.assign(d.data(), d.data() + d.size());
    o.metadata = d.metadata;
  }
  return o;
}

Outcome open_memory(const Bytes& image, const Credential& c, const char* where) {
  Decrypted d;
  const Status s = guarded(where, [&] { d = decrypt_memory({image.data(), image.size()}, c, "AES-GCM", "modelcrypt", 1); });
  return take(s, d);
}

std::string describe(const char* what, size_t cred, const Outcome& a, const Outcome& b) {
  return std::string(what) + " (" + kCredName[cred] + "): " + status_name(a.status) + " vs " + status_name(b.status) +
         (a.status == b.status ? " (different plaintext)" : "");
}

std::vector<Outcome> open_all(const Bytes& image, const char* where) {
  std::vector<Outcome> out;
  for (size_t i = 0; i < kCreds; ++i) out.push_back(open_memory(image, creds()[i], where));
  return out;
}

// Keyless header parse (reader steps 1-6) of the bytes in temp_path().
bool keyless_header(format::Header* h) {
  return guarded("inspect_file", [&] { *h = inspect_file(temp_path()).header; }) == Status::ok;
}

void mode_open(const Bytes& image) {
  const std::vector<Outcome> mem = open_all(image, "decrypt_memory");
  write_file(temp_path(), image);
  format::Header h;
  const bool parsed = keyless_header(&h);
  const Outcome* first_ok = nullptr;
  for (size_t i = 0; i < kCreds; ++i) {
    const Credential& c = creds()[i];
    const Outcome& m = mem[i];
    if (m.status == Status::ok) {
      if (first_ok && (first_ok->plaintext != m.plaintext || first_ok->metadata != m.metadata)) {
        fail(std::string("two credentials open the file to different plaintexts (") + kCredName[i] + ")");
      }
      first_ok = &m;
      if (!parsed) fail(std::string("decrypt_memory opened a file inspect_file cannot parse (") + kCredName[i] + ")");
      if (c.is_identity()) {
        if (!h.has_recipients()) fail("an identity opened a v1 file");
        const recipients::Fingerprint mine = recipients::fingerprint_of(c.public_key());
        if (std::none_of(h.stanzas.begin(), h.stanzas.end(), [&](const recipients::Stanza& s) {
              return s.type == recipients::kTypeX25519 && s.fingerprint() == mine;
            })) {
          fail("an identity opened a file without a stanza for it");
        }
      }
      if (m.plaintext.size() != h.plaintext_length) fail("plaintext length differs from the header's");
    }
    // The same bytes from a file and from a ByteSource must give the same outcome.
    Decrypted d;
    const Outcome file = take(guarded("load_file", [&] { d = load_file(temp_path(), c, "AES-GCM", "modelcrypt", 1); }), d);
    if (!same_outcome(file, m)) fail(describe("load_file vs decrypt_memory", i, file, m));
    const MemorySource src(image);
    const Outcome source = take(guarded("load_source", [&] { d = load_source(src, c, "AES-GCM", 1); }), d);
    if (!same_outcome(source, m)) fail(describe("load_source vs decrypt_memory", i, source, m));
    const Status v = guarded("verify_file", [&] { verify_file(temp_path(), c, "AES-GCM", "modelcrypt", 1); });
    if (v != m.status) fail(describe("verify_file vs decrypt_memory", i, take(v, d), m));
    if (i != kIdA && i != kK) continue;
    // Random access, for the harness identity and key: a range from the middle.
    const uint64_t length = m.status == Status::ok ? m.plaintext.size() : (parsed ? h.plaintext_length : 0);
    const uint64_t off = length / 3, len = length / 2;
    Decrypted r;
    const Status rs = guarded("load_range", [&] { r = load_range(temp_path(), c, "AES-GCM", off, len, 1); });
    if (m.status == Status::ok) {
      if (rs != Status::ok) fail(std::string("load_range fails (") + status_name(rs) + ") where the whole file opens");
      if (!fuzz::same(r.data(), r.size(), Bytes(m.plaintext.begin() + off, m.plaintext.begin() + off + len))) {
        fail("load_range gives other bytes than decrypt_memory");
      }
    }
    guarded("RandomAccessFile", [&] {
      const RandomAccessFile f(temp_path(), c, "AES-GCM");
      const Decrypted part = f.read_range(off, len, 1);
      if (m.status == Status::ok &&
          !fuzz::same(part.data(), part.size(), Bytes(m.plaintext.begin() + off, m.plaintext.begin() + off + len))) {
        fail("RandomAccessFile::read_range gives other bytes than decrypt_memory");
      }
    });
  }
  unlink(temp_path().c_str());
}

// ---- text

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

void check_recipient_round_trip(const PublicKey& k) {
  const std::string text = recipient_text::format_recipient(k);
  if (text.rfind("modelcrypt1", 0) != 0) fail("format_recipient does not start with modelcrypt1");
  if (recipient_text::parse_recipient(text) != k) fail("recipient text does not round-trip");
  const SecretBytes age = recipient_text::bech32_encode("age", {k.data(), k.size()});
  if (recipient_text::parse_recipient(std::string(age.begin(), age.end())) != k) fail("age recipient text does not round-trip");
}

void mode_text(const Bytes& input) {
  const std::string_view text(reinterpret_cast<const char*>(input.data()), input.size());
  const ByteView view{input.data(), input.size()};
  guarded("parse_recipient", [&] {
    const PublicKey k = recipient_text::parse_recipient(text);
    check_recipient_round_trip(k);
  });
  guarded("parse_recipients_list", [&] {
    const std::vector<PublicKey> list = recipient_text::parse_recipients_list(text, "fuzz input");
    if (list.empty()) fail("parse_recipients_list returned no recipient without an error");
    for (const PublicKey& k : list) check_recipient_round_trip(k);
  });
  const bool holds = recipient_text::holds_identity(view);
  guarded("parse_identity", [&] {
    const SecretBytes key = recipient_text::parse_identity(view, "fuzz input");
    if (key.size() != 32) fail("an identity that is not 32 bytes");
    if (!holds) fail("parse_identity accepted content holds_identity says has no identity");
    const SecretBytes again = recipient_text::format_identity({key.data(), key.size()});
    if (recipient_text::parse_identity({again.data(), again.size()}, "round trip") != key) fail("identity text does not round-trip");
    SecretBytes age = recipient_text::bech32_encode("age-secret-key-", {key.data(), key.size()});
    for (uint8_t& c : age) c = static_cast<uint8_t>(std::toupper(c));
    std::string file = "# created: 2026-01-01T00:00:00Z\n# public key: age1...\n";
    file.append(age.begin(), age.end());
    file += "\n";
    if (recipient_text::parse_identity({reinterpret_cast<const uint8_t*>(file.data()), file.size()}, "age round trip") != key) {
      fail("age identity file does not round-trip");
    }
    // The identity's recipient, and its text, must not be taken for a recipient.
    const Credential id = Credential::x25519_identity({key.data(), key.size()});
    check_recipient_round_trip(id.public_key());
    if (guarded("parse_recipient(identity)", [&] {
          recipient_text::parse_recipient(std::string_view(reinterpret_cast<const char*>(again.data()), again.size()));
        }) == Status::ok) {
      fail("an identity text parsed as a recipient");
    }
  });
  // Bech32 of each entry line (at most 8): decode -> encode is the lowercased line.
  size_t lines = 0;
  recipient_text::for_each_entry_line(text, [&](std::string_view line, size_t) {
    if (++lines > 8) return;
    std::string hrp, why;
    SecretBytes data;
    if (!recipient_text::bech32_decode(line, &hrp, &data, &why)) {
      if (why.empty()) fail("bech32_decode failed without saying why");
      return;
    }
    const SecretBytes again = recipient_text::bech32_encode(hrp, {data.data(), data.size()});
    if (std::string(again.begin(), again.end()) != lower(line)) fail("Bech32 decode -> encode does not give the text back");
  });
}

// ---- editing

struct EditPlan {
  size_t used = 0;             // credential index that opens the file
  bool add_id[3] = {};         // add A, B, C
  bool remove_id[3] = {};      // remove A, B, C
  bool add_key[2] = {};        // add K, K2
  bool remove_key[2] = {};     // remove K, K2
  size_t extra = 0;            // add this many of extra_recipients() (0..30)
  bool low_order = false;      // add an all-zero public key (refused)
  bool bad_key = false;        // add a 15-byte symmetric key (refused)
};

EditPlan plan_from(const uint8_t op[3]) {
  EditPlan p;
  p.used = op[0] % kCreds;
  for (int i = 0; i < 3; ++i) {
    p.add_id[i] = (op[1] >> i) & 1;
    p.remove_id[i] = (op[2] >> i) & 1;
  }
  p.remove_key[0] = (op[2] >> 3) & 1;
  p.remove_key[1] = (op[2] >> 4) & 1;
  p.add_key[0] = (op[2] >> 5) & 1;
  p.add_key[1] = (op[2] >> 6) & 1;
  p.extra = 2 * (op[1] >> 4);
  p.low_order = ((op[1] >> 3) & 1) && ((op[0] >> 7) & 1);
  p.bad_key = (op[2] >> 7) & 1 && ((op[0] >> 6) & 1);
  return p;
}

RecipientChanges changes_of(const EditPlan& p) {
  RecipientChanges c;
  c.durable = false;
  for (int i = 0; i < 3; ++i) {
    if (p.add_id[i]) c.add_x25519.push_back(identity_publics()[i]);
    if (p.remove_id[i]) c.remove_x25519.push_back(identity_publics()[i]);
  }
  for (size_t i = 0; i < p.extra; ++i) c.add_x25519.push_back(extra_recipients()[i]);
  if (p.low_order) c.add_x25519.push_back(PublicKey{});
  const Bytes* keys[2] = {&kKeyK, &kKeyK2};
  for (int i = 0; i < 2; ++i) {
    if (p.add_key[i]) c.add_symmetric.emplace_back(keys[i]->begin(), keys[i]->end());
    if (p.remove_key[i]) c.remove_symmetric.emplace_back(keys[i]->begin(), keys[i]->end());
  }
  if (p.bad_key) c.add_symmetric.emplace_back(kKeyK.begin(), kKeyK.begin() + 15);
  return c;
}

bool is_x25519_for(const recipients::Stanza& s, const PublicKey& k) {
  return s.type == recipients::kTypeX25519 && s.fingerprint() == recipients::fingerprint_of(k);
}

bool same_stanza(const recipients::Stanza& a, const recipients::Stanza& b) { return a.type == b.type && a.body == b.body; }

void edit_and_check(const Bytes& image, const uint8_t op[3]) {
  const EditPlan plan = plan_from(op);
  const RecipientChanges changes = changes_of(plan);
  const std::vector<Outcome> before = open_all(image, "decrypt_memory (before the edit)");
  write_file(temp_path(), image);
  format::Header old_h;
  const bool parsed = keyless_header(&old_h);

  RecipientEditResult result;
  const Status s = guarded("edit_recipients", [&] { result = edit_recipients(temp_path(), creds()[plan.used], changes); });
  check_dir_clean("edit_recipients");
  const Bytes after = read_whole(temp_path());
  if (s != Status::ok) {
    if (after != image) fail(std::string("a failed edit (") + status_name(s) + ") changed the file");
    if (before[plan.used].status == Status::ok && s != Status::invalid_argument) {
      fail(std::string("the edit fails with ") + status_name(s) + " on a file its credential opens");
    }
    unlink(temp_path().c_str());
    return;
  }
  // Success: the credential authenticated the header (its chunks may still be bad).
  const Status ref = before[plan.used].status;
  if (!parsed || !old_h.has_recipients()) fail("an edit succeeded on a file that is not v2/v3");
  if (ref != Status::ok && ref != Status::auth_failed) fail(std::string("an edit succeeded where the credential gets ") + status_name(ref));
  if (plan.low_order || plan.bad_key) fail("an edit with a refused recipient or key succeeded");

  // What the stanzas must be now: the old ones minus the removed (in order), then the added.
  std::vector<recipients::Stanza> kept;
  for (const recipients::Stanza& st : old_h.stanzas) {
    bool drop = false;
    for (int i = 0; i < 3; ++i) drop |= plan.remove_id[i] && is_x25519_for(st, identity_publics()[i]);
    for (int i = 0; i < 2; ++i) drop |= plan.remove_key[i] && recipients::opens(st, creds()[kK + i], old_h.salt.data());
    if (!drop) kept.push_back(st);
  }
  format::Header h;
  if (!keyless_header(&h)) fail("the edited file does not parse");
  if (h.stanzas.size() != result.stanzas) fail("edit result's stanza count differs from the file's");
  if (old_h.stanzas.size() - kept.size() != result.removed) fail("edit result's removed count is wrong");
  if (h.stanzas.size() != kept.size() + result.added) fail("edit result's added count is wrong");
  for (size_t i = 0; i < kept.size(); ++i) {
    if (!same_stanza(h.stanzas[i], kept[i])) fail("an edit changed or reordered a stanza it kept");
  }
  // Which added ones are fresh (an X25519 recipient still present, or a key a kept stanza opens, is skipped).
  bool fresh[kCreds] = {};
  for (int i = 0; i < 3; ++i) {
    fresh[i] = plan.add_id[i] && std::none_of(kept.begin(), kept.end(), [&](const recipients::Stanza& st) {
                 return is_x25519_for(st, identity_publics()[i]);
               });
  }
  for (int i = 0; i < 2; ++i) {
    fresh[kK + i] = plan.add_key[i] && std::none_of(kept.begin(), kept.end(), [&](const recipients::Stanza& st) {
                      return recipients::opens(st, creds()[kK + i], old_h.salt.data());
                    });
  }
  size_t expect_added = 0;
  for (bool f : fresh) expect_added += f;
  std::vector<PublicKey> extras;  // extra recipients not already present
  for (size_t i = 0; i < plan.extra; ++i) {
    const PublicKey& k = extra_recipients()[i];
    if (std::none_of(kept.begin(), kept.end(), [&](const recipients::Stanza& st) { return is_x25519_for(st, k); })) ++expect_added;
  }
  if (result.added != expect_added) fail("edit added " + std::to_string(result.added) + " stanzas, expected " + std::to_string(expect_added));
  for (size_t i = kept.size(); i < h.stanzas.size(); ++i) {
    const recipients::Stanza& st = h.stanzas[i];
    if (st.type != recipients::kTypeX25519 && st.type != recipients::kTypeSymmetric) fail("an edit added a stanza of unknown type");
  }

  // The core header and the payload are byte for byte the same; in place means same length.
  const uint64_t core = old_h.core_length(), old_len = old_h.header_length(), new_len = h.header_length();
  if (after.size() < new_len || after.size() - new_len != image.size() - old_len) fail("an edit changed the payload length");
  if (!std::equal(image.begin(), image.begin() + core, after.begin())) fail("an edit changed the core header");
  if (!std::equal(image.begin() + old_len, image.end(), after.begin() + new_len)) fail("an edit changed the payload");
  if (result.in_place != (new_len == old_len)) fail("edit result's in_place does not match the header length");
  if (result.added == 0 && result.removed == 0 && after != image) fail("an edit that changed nothing rewrote the file");

  // Each credential now: the editor's as before; removed ones KeyMismatch; fresh ones as the editor.
  const std::vector<Outcome> now = open_all(after, "decrypt_memory (after the edit)");
  bool removed[kCreds] = {plan.remove_id[0], plan.remove_id[1], plan.remove_id[2], plan.remove_key[0], plan.remove_key[1]};
  for (size_t i = 0; i < kCreds; ++i) {
    if (fresh[i]) {
      if (!same_outcome(now[i], before[plan.used])) fail(describe("added credential vs the editor's before", i, now[i], before[plan.used]));
    } else if (removed[i]) {
      if (now[i].status != Status::key_mismatch) fail(std::string("a removed credential gets ") + status_name(now[i].status) + " (" + kCredName[i] + ")");
    } else if (!same_outcome(now[i], before[i])) {
      fail(describe("untouched credential before vs after the edit", i, before[i], now[i]));
    }
  }
  unlink(temp_path().c_str());
}

// Mode 3: a valid v2 file from the fuzz bytes, then the edit.
void mode_build_and_edit(const uint8_t op[3], uint8_t build, const uint8_t* data, size_t size) {
  EncryptOptions o;
  o.chunk_size = 4096;
  o.threads = 1;
  o.durable = false;
  for (int i = 0; i < 3; ++i) {
    if ((build >> i) & 1) o.recipients.push_back(identity_publics()[i]);
  }
  const bool with_k = ((build >> 3) & 1) || o.recipients.empty();
  const bool with_k2 = !with_k && ((build >> 4) & 1);  // a 16-byte key stanza
  o.with_key = with_k || with_k2;
  if (o.recipients.empty()) o.recipients.push_back(identity_publics()[0]);  // v2 needs a recipient
  const std::string meta = R"({"framework":"fuzz"})";
  size_t plain = std::min<size_t>(size, 12288);
  if ((build >> 5) & 1) o.metadata = {reinterpret_cast<const uint8_t*>(meta.data()), meta.size()};
  const ByteView key = with_k ? ByteView{kKeyK.data(), kKeyK.size()} : with_k2 ? ByteView{kKeyK2.data(), kKeyK2.size()} : ByteView{};
  Bytes image(encrypted_length(plain, o));
  guarded("encrypt_memory (v2)", [&] { encrypt_memory({data, plain}, key, "AES-GCM", o, image.data(), image.size()); });
  if ((build >> 6) & 1) {  // a file that does not open with everything: flip a bit of a chunk
    if (image.size() > 0) image[image.size() - 1 - (size % std::min<size_t>(image.size(), 64))] ^= 0x01;
  }
  edit_and_check(image, op);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0] % 4;
  if (mode == 0) {
    mode_open(Bytes(data + 1, data + size));  // exact-size heap copy for ASan
  } else if (mode == 1) {
    mode_text(Bytes(data + 1, data + size));
  } else if (mode == 2) {
    if (size < 4) return 0;
    edit_and_check(Bytes(data + 4, data + size), data + 1);
  } else {
    if (size < 5) return 0;
    const Bytes plain(data + 5, data + size);
    mode_build_and_edit(data + 1, data[4], plain.data(), plain.size());
  }
  return 0;
}
