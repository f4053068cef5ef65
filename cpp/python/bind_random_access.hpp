// modelcrypt._core.open_encrypted and its handle type (cpp/src/random_access.hpp).
#pragma once
#include <pybind11/pybind11.h>

#include <functional>

#include "container.hpp"

// The header fields inspect reports (version, lengths, salt, metadata_raw, recipients, ...), from
// `header` and the file's length: shared by _core.inspect (unauthenticated) and the handle's
// header_info (the header the handle authenticated).
pybind11::dict header_fields(const modelcrypt_core::format::Header& header, uint64_t file_length);

// `wrap` turns decrypted bytes into the module's DecryptedBuffer object.
void bind_random_access(pybind11::module_& m, std::function<pybind11::object(modelcrypt_core::Decrypted&&)> wrap);
