// modelcrypt._core.X25519Identity, recipient text, inspection of stanzas and edit_recipients
// (cpp/src/recipients*.hpp, recipient_text.hpp).
#pragma once
#include <pybind11/pybind11.h>

#include <vector>

#include "credential.hpp"
#include "recipients.hpp"

namespace modelcrypt_core::binding {

// The credential held by an X25519Identity object, or nullptr when `obj` is not one.
const Credential* identity_credential(const pybind11::handle& obj);

// [{"type": "x25519"|"symmetric"|"unknown", "type_id": int, "fingerprint": bytes | None}, ...]
pybind11::list stanzas_info(const std::vector<recipients::Stanza>& stanzas);

void bind_recipients(pybind11::module_& m);

}  // namespace modelcrypt_core::binding
