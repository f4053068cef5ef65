// Windows helpers shared by the Win32 implementations (file_io_win32.cpp, key_text.cpp,
// random_access.cpp): UTF-8 <-> UTF-16 paths and Win32 error codes as errno values, so that
// Error::sys_errno() (and Python's OSError subclasses, chosen by errno) mean the same on every OS.
// Compiled on Windows only.
#pragma once
#ifdef _WIN32
#include <cstdint>
#include <string>

namespace modelcrypt_core::win32 {

// A UTF-8 path as the wide string the W functions take; invalid UTF-8 is Error(invalid_argument).
std::wstring widen(const std::string& utf8);
// A wide string back as UTF-8.
std::string narrow(const std::wstring& wide);
// The errno value closest to a GetLastError() code (ENOENT, EACCES, EEXIST, ENOSPC, ...; EIO otherwise).
int errno_of(unsigned long win32_error);
// Error(io) for `what` on `path`, the Win32 error mapped to errno.
[[noreturn]] void throw_error(const std::string& what, const std::string& path, unsigned long win32_error);

}  // namespace modelcrypt_core::win32
#endif
