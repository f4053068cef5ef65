// The parts of the file layer that are the same on every platform (file_io.cpp: POSIX; file_io_win32.cpp:
// Windows). temp_file_prefix is per platform (path separators); the random suffix is not.
#include <cstdint>
#include <string>

#include "crypto.hpp"
#include "file_io.hpp"

namespace modelcrypt_core {

std::string AtomicOutputFile::random_temp_name() const {
  static const char hex[] = "0123456789abcdef";
  uint8_t rnd[6];
  crypto::random_bytes(rnd, sizeof rnd);
  std::string name = temp_file_prefix(destination_);
  for (uint8_t b : rnd) { name += hex[b >> 4]; name += hex[b & 15]; }
  return name;
}

}  // namespace modelcrypt_core
