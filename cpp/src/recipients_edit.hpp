// Adding and removing recipients of a format v2 file without touching its payload
// (docs/FORMAT.md, "Adding and removing recipients"): the caller's credential opens the file key,
// the stanzas are edited, and the recipients section is rewritten in place when it fits, or the
// file is rewritten with a larger block (payload bytes copied unchanged) and replaced atomically.
#pragma once
#include <string>
#include <vector>

#include "credential.hpp"
#include "recipients.hpp"

namespace modelcrypt_core {

struct RecipientChanges {
  std::vector<recipients::PublicKey> add_x25519;     // already present: left as is
  std::vector<SecretBytes> add_symmetric;            // symmetric keys (16, 24 or 32 bytes)
  std::vector<recipients::PublicKey> remove_x25519;  // not present: Error(invalid_argument)
  std::vector<SecretBytes> remove_symmetric;         // no stanza opens with it: Error(invalid_argument)
  bool durable = true;
};

struct RecipientEditResult {
  bool in_place = false;   // only the header's recipients section was rewritten
  size_t stanzas = 0;      // stanzas in the file now
  size_t added = 0;
  size_t removed = 0;
};

// `credential` must open the file (as a reader would: KeyMismatch, AuthFailed...). A v1 file, or
// changes that would leave no stanza or more than 1024: Error(invalid_argument).
RecipientEditResult edit_recipients(const std::string& path, const Credential& credential, const RecipientChanges& changes);

}  // namespace modelcrypt_core
