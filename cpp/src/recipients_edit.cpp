#include "recipients_edit.hpp"

#ifndef _WIN32
#include <sys/stat.h>
#endif

#include <algorithm>
#include <cstring>

#include "container_detail.hpp"
#include "errors.hpp"
#include "file_io.hpp"
#include "format.hpp"
#include "recipient_text.hpp"

namespace modelcrypt_core {
namespace {

constexpr size_t kCopyBatch = 16u << 20;

bool is_x25519_for(const recipients::Stanza& s, const recipients::Fingerprint& f) {
  return s.type == recipients::kTypeX25519 && s.fingerprint() == f;
}

// Writes core header + new section + the payload copied unchanged into a new file that replaces `path`.
void rewrite_whole(const detail::OpenedFile& f, const std::string& path, const std::vector<uint8_t>& section, bool durable) {
  const format::Header& h = f.parsed.header;
#ifdef _WIN32
  const FileMode mode = 0666;  // ignored: Windows files have ACLs, not permission bits
#else
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw_io_error("cannot stat", path);
  const FileMode mode = st.st_mode & 07777;
#endif
  const FileIdentity before = f.in.identity();
  AtomicOutputFile out(path, mode, durable);
  out.write_all(f.parsed.raw.data(), static_cast<size_t>(h.core_length()));
  out.write_all(section.data(), section.size());
  SecureBuffer buf = SecureBuffer::allocate(kCopyBatch);  // ciphertext only, but wiped all the same
  const uint64_t start = h.header_length(), end = f.in.size();
  for (uint64_t at = start; at < end;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kCopyBatch, end - at));
    f.in.read_exact_at(buf.data(), n, at);
    out.write_all(buf.data(), n);
    at += n;
  }
  if (!(f.in.identity() == before)) {
    throw Error(Status::auth_failed, "file '" + path + "' changed while it was being rewritten; it was left as it was", 0, path);
  }
  out.commit();
}

}  // namespace

RecipientEditResult edit_recipients(const std::string& path, const Credential& credential, const RecipientChanges& changes) {
  check_credential(credential);
  for (const SecretBytes& k : changes.add_symmetric) format::check_master_key({k.data(), k.size()});
  for (const SecretBytes& k : changes.remove_symmetric) format::check_master_key({k.data(), k.size()});
  detail::OpenedFile f(path);
  f.authenticate(credential);  // the caller must be able to open the file: this gives FK
  const format::Header& h = f.parsed.header;
  if (!h.has_recipients()) {
    throw Error(Status::invalid_argument, "'" + path + "' is a format v1 file (one symmetric key, no recipients block); "
                                          "re-encrypt it to recipients instead (open_encrypted(path, key).reencrypt_to(dst, recipients=[...]))", 0, path);
  }
  std::vector<recipients::Stanza> stanzas = h.stanzas;
  RecipientEditResult result;
  for (const recipients::PublicKey& r : changes.remove_x25519) {
    const recipients::Fingerprint fp = recipients::fingerprint_of(r);
    const size_t before = stanzas.size();
    stanzas.erase(std::remove_if(stanzas.begin(), stanzas.end(), [&](const recipients::Stanza& s) { return is_x25519_for(s, fp); }),
                  stanzas.end());
    if (stanzas.size() == before) {
      throw Error(Status::invalid_argument, "recipient " + recipient_text::format_recipient(r) + " is not a recipient of '" + path + "'", 0, path);
    }
    result.removed += before - stanzas.size();
  }
  for (const SecretBytes& k : changes.remove_symmetric) {
    const Credential key(ByteView{k.data(), k.size()});
    const size_t before = stanzas.size();
    stanzas.erase(std::remove_if(stanzas.begin(), stanzas.end(),
                                 [&](const recipients::Stanza& s) { return recipients::opens(s, key, h.salt.data()); }),
                  stanzas.end());
    if (stanzas.size() == before) {
      throw Error(Status::invalid_argument, "no symmetric-key stanza of '" + path + "' opens with the key to remove", 0, path);
    }
    result.removed += before - stanzas.size();
  }
  const ByteView fk{f.keys.file_key.data(), f.keys.file_key.size()};
  for (const recipients::PublicKey& r : changes.add_x25519) {
    const recipients::Fingerprint fp = recipients::fingerprint_of(r);
    if (std::any_of(stanzas.begin(), stanzas.end(), [&](const recipients::Stanza& s) { return is_x25519_for(s, fp); })) continue;
    stanzas.push_back(recipients::wrap_x25519(fk, r, h.salt.data()));
    ++result.added;
  }
  for (const SecretBytes& k : changes.add_symmetric) {
    const Credential key(ByteView{k.data(), k.size()});
    if (std::any_of(stanzas.begin(), stanzas.end(), [&](const recipients::Stanza& s) { return recipients::opens(s, key, h.salt.data()); })) continue;
    stanzas.push_back(recipients::wrap_symmetric(fk, {k.data(), k.size()}, h.salt.data()));
    ++result.added;
  }
  if (stanzas.empty()) {
    throw Error(Status::invalid_argument, "removing these recipients would leave '" + path + "' with none; nobody could open it", 0, path);
  }
  if (stanzas.size() > recipients::kMaxStanzas) {
    throw Error(Status::invalid_argument, "a file holds at most 1024 stanzas", 0, path);
  }
  result.stanzas = stanzas.size();
  if (result.added == 0 && result.removed == 0) {
    result.in_place = true;
    return result;
  }
  const size_t used = recipients::used_size(stanzas);
  const uint32_t old_block = static_cast<uint32_t>(h.recipients_block.size());
  result.in_place = used <= old_block;
  const uint32_t block = result.in_place ? old_block : recipients::block_size_with_room(used);
  const std::vector<uint8_t> section = format::recipients_section(h.mac, stanzas, block, f.keys);
  if (result.in_place) {
    overwrite_in_place(path, f.in.identity(), h.core_length(), section.data(), section.size(), changes.durable);
  } else {
    rewrite_whole(f, path, section, changes.durable);
  }
  return result;
}

}  // namespace modelcrypt_core
