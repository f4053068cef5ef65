// modelcrypt._core.SigningKey (Ed25519 publisher keys), trusted-signer credentials, signer text
// and keyless signature verification (cpp/src/signature*.hpp, signing_text.hpp).
#pragma once
#include <pybind11/pybind11.h>

#include <memory>

#include "credential.hpp"
#include "signature.hpp"

namespace modelcrypt_core::binding {

// The credential of a TrustedCredential object (a key or identity that requires signatures), or
// nullptr when `obj` is not one.
const Credential* trusted_credential(const pybind11::handle& obj);
// The key of a SigningKey object; nullptr for None; TypeError for anything else.
std::shared_ptr<const signature::SigningKey> signing_key_arg(const pybind11::handle& obj);

void bind_signing(pybind11::module_& m);

}  // namespace modelcrypt_core::binding
