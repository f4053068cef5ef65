// Small self-contained SHA-256 (FIPS 180-4) so the example needs nothing but modelcrypt.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

std::string sha256_hex(const std::uint8_t* data, std::size_t size);
