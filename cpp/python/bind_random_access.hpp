// modelcrypt._core.open_encrypted and its handle type (cpp/src/random_access.hpp).
#pragma once
#include <pybind11/pybind11.h>

#include <functional>

#include "container.hpp"

// `wrap` turns decrypted bytes into the module's DecryptedBuffer object.
void bind_random_access(pybind11::module_& m, std::function<pybind11::object(modelcrypt::Decrypted&&)> wrap);
