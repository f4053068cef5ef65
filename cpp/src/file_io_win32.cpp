// Windows implementation of file_io.hpp (file_io.cpp is the POSIX one; CMake compiles one of them).
// Paths are UTF-8 and go through the wide-character API. Positioned reads and writes are ReadFile /
// WriteFile with the offset in an OVERLAPPED (on a synchronous handle: no shared file pointer is
// relied on, so concurrent readers of one InputFile are safe). The output file is a named temporary
// file beside the destination (Windows has no unnamed files), flushed with FlushFileBuffers and
// renamed over the destination through its handle with POSIX semantics (Windows 10 1607+, NTFS), or
// else moved with MoveFileExW(MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH).
#include <windows.h>

#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstring>
#include <vector>

#include "errors.hpp"
#include "file_io.hpp"
#include "win32_util.hpp"

namespace modelcrypt_core {
namespace {

constexpr DWORD kShareAll = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;
constexpr DWORD kMaxIo = 1u << 30;  // bytes per ReadFile/WriteFile call (their counts are DWORDs)

size_t last_separator(const std::string& path) { return path.find_last_of("/\\"); }

std::string base_of(const std::string& path) {
  const size_t slash = last_separator(path);
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

HANDLE as_handle(void* h) { return static_cast<HANDLE>(h); }

OVERLAPPED at_offset(uint64_t offset) {
  OVERLAPPED ov{};
  ov.Offset = static_cast<DWORD>(offset & 0xffffffffu);
  ov.OffsetHigh = static_cast<DWORD>(offset >> 32);
  return ov;
}

// 100 ns ticks since 1601 -> ns (only compared for equality, so the epoch does not matter).
int64_t filetime_ns(const FILETIME& t) {
  const uint64_t ticks = (static_cast<uint64_t>(t.dwHighDateTime) << 32) | t.dwLowDateTime;
  return static_cast<int64_t>(ticks) * 100;
}

FileIdentity identity_of(const BY_HANDLE_FILE_INFORMATION& info) {
  FileIdentity id;
  id.device = info.dwVolumeSerialNumber;
  id.inode = (static_cast<uint64_t>(info.nFileIndexHigh) << 32) | info.nFileIndexLow;
  id.size = (static_cast<uint64_t>(info.nFileSizeHigh) << 32) | info.nFileSizeLow;
  id.mtime_ns = filetime_ns(info.ftLastWriteTime);
  id.ctime_ns = filetime_ns(info.ftCreationTime);  // Windows has no inode change time
  return id;
}

bool handle_identity(HANDLE h, FileIdentity* out) {
  BY_HANDLE_FILE_INFORMATION info;
  if (!GetFileInformationByHandle(h, &info)) return false;
  *out = identity_of(info);
  return true;
}

bool is_directory(const std::wstring& wpath) {
  const DWORD attrs = GetFileAttributesW(wpath.c_str());
  return attrs != INVALID_FILE_ATTRIBUTES && (attrs & FILE_ATTRIBUTE_DIRECTORY) != 0;
}

// Writes all n bytes at offset; returns 0 or the Win32 error.
DWORD write_at(HANDLE h, const uint8_t* p, size_t n, uint64_t offset) {
  while (n > 0) {
    const DWORD want = n > kMaxIo ? kMaxIo : static_cast<DWORD>(n);
    OVERLAPPED ov = at_offset(offset);
    DWORD wrote = 0;
    if (!WriteFile(h, p, want, &wrote, &ov)) return GetLastError();
    if (wrote == 0) return ERROR_WRITE_FAULT;
    p += wrote;
    n -= wrote;
    offset += wrote;
  }
  return 0;
}

// Renames the open file `h` (opened with DELETE access) to `name` in its own directory, replacing
// what is there even while other handles have it open (with FILE_SHARE_DELETE, as InputFile opens
// files: `recipients edit` rewrites the file it reads). FileRenameInfoEx with POSIX semantics needs
// Windows 10 1607 and NTFS; false (the caller then uses MoveFileExW) where it is refused.
bool rename_by_handle_replacing(HANDLE h, const std::wstring& name) {
  struct RenameInfoEx {  // FILE_RENAME_INFO with its Flags member (not in every SDK's headers)
    DWORD flags;
    HANDLE root_directory;
    DWORD file_name_length;
    WCHAR file_name[1];
  };
  constexpr DWORD kReplaceIfExists = 0x1, kPosixSemantics = 0x2;  // FILE_RENAME_FLAG_*
  constexpr int kFileRenameInfoEx = 22;                              // FILE_INFO_BY_HANDLE_CLASS
  const size_t bytes = name.size() * sizeof(WCHAR);
  std::vector<unsigned char> storage(offsetof(RenameInfoEx, file_name) + bytes + sizeof(WCHAR), 0);
  RenameInfoEx info{};
  info.flags = kReplaceIfExists | kPosixSemantics;
  info.root_directory = nullptr;
  info.file_name_length = static_cast<DWORD>(bytes);
  std::memcpy(storage.data(), &info, offsetof(RenameInfoEx, file_name));
  std::memcpy(storage.data() + offsetof(RenameInfoEx, file_name), name.data(), bytes);
  return SetFileInformationByHandle(h, static_cast<FILE_INFO_BY_HANDLE_CLASS>(kFileRenameInfoEx), storage.data(),
                                    static_cast<DWORD>(storage.size())) != 0;
}

}  // namespace

bool path_identity(const std::string& path, FileIdentity* out) {
  const std::wstring wpath = win32::widen(path);
  // No access rights beyond attributes; BACKUP_SEMANTICS lets a directory be opened too.
  HANDLE h = CreateFileW(wpath.c_str(), FILE_READ_ATTRIBUTES, kShareAll, nullptr, OPEN_EXISTING,
                         FILE_FLAG_BACKUP_SEMANTICS, nullptr);
  if (h == INVALID_HANDLE_VALUE) {
    const DWORD err = GetLastError();
    if (err == ERROR_FILE_NOT_FOUND || err == ERROR_PATH_NOT_FOUND) return false;
    win32::throw_error("cannot stat", path, err);
  }
  const bool ok = handle_identity(h, out);
  const DWORD err = GetLastError();
  CloseHandle(h);
  if (!ok) win32::throw_error("cannot stat", path, err);
  return true;
}

InputFile::InputFile(const std::string& path) : path_(path) {
  const std::wstring wpath = win32::widen(path);
  HANDLE h = CreateFileW(wpath.c_str(), GENERIC_READ, kShareAll, nullptr, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, nullptr);
  if (h == INVALID_HANDLE_VALUE) {
    const DWORD err = GetLastError();
    if (is_directory(wpath)) throw_io_error("cannot read", path, EISDIR);  // opening one is ACCESS_DENIED
    win32::throw_error("cannot open", path, err);
  }
  handle_ = h;
  if (GetFileType(h) != FILE_TYPE_DISK) {
    CloseHandle(h);
    handle_ = nullptr;
    throw Error(Status::invalid_argument, "not a regular file: '" + path + "'");
  }
  LARGE_INTEGER size;
  if (!GetFileSizeEx(h, &size)) {
    const DWORD err = GetLastError();
    CloseHandle(h);
    handle_ = nullptr;
    win32::throw_error("cannot stat", path, err);
  }
  size_ = static_cast<uint64_t>(size.QuadPart);
}

InputFile::~InputFile() {
  if (handle_ != nullptr) CloseHandle(as_handle(handle_));
}

FileIdentity InputFile::identity() const {
  FileIdentity id;
  if (!handle_identity(as_handle(handle_), &id)) win32::throw_error("cannot stat", path_, GetLastError());
  return id;
}

uint64_t InputFile::current_size() const {
  LARGE_INTEGER size;
  if (!GetFileSizeEx(as_handle(handle_), &size)) win32::throw_error("cannot stat", path_, GetLastError());
  return static_cast<uint64_t>(size.QuadPart);
}

size_t InputFile::read_at(void* buf, size_t n, uint64_t offset) const {
  size_t done = 0;
  while (done < n) {
    const size_t left = n - done;
    const DWORD want = left > kMaxIo ? kMaxIo : static_cast<DWORD>(left);
    OVERLAPPED ov = at_offset(offset + done);
    DWORD got = 0;
    if (!ReadFile(as_handle(handle_), static_cast<uint8_t*>(buf) + done, want, &got, &ov)) {
      const DWORD err = GetLastError();
      if (err == ERROR_HANDLE_EOF) break;
      win32::throw_error("cannot read", path_, err);
    }
    if (got == 0) break;
    done += got;
  }
  return done;
}

void InputFile::readv_exact_at(IoVec* iov, int iovcnt, uint64_t offset) const {
  for (int i = 0; i < iovcnt; ++i) {
    if (read_at(iov[i].iov_base, iov[i].iov_len, offset) != iov[i].iov_len) {
      throw Error(Status::io, "file '" + path_ + "' became shorter while it was being read", 0, path_);
    }
    offset += iov[i].iov_len;
  }
}

std::string temp_file_prefix(const std::string& destination) {
  const size_t slash = last_separator(destination);
  const std::string dir = slash == std::string::npos ? std::string() : destination.substr(0, slash + 1);
  return dir + "." + base_of(destination) + ".mctmp-";
}

AtomicOutputFile::AtomicOutputFile(const std::string& destination, FileMode mode, bool durable)
    : destination_(destination), durable_(durable) {
  (void)mode;  // no permission bits on Windows: the new file takes its directory's ACL
  for (int attempt = 0; attempt < 16; ++attempt) {
    std::string name = random_temp_name();
    const std::wstring wname = win32::widen(name);
    // Not shared for writing or deleting while we write; the handle is closed before the move.
    HANDLE h = CreateFileW(wname.c_str(), GENERIC_WRITE | DELETE, FILE_SHARE_READ, nullptr, CREATE_NEW,
                           FILE_ATTRIBUTE_NORMAL | FILE_ATTRIBUTE_NOT_CONTENT_INDEXED, nullptr);
    if (h != INVALID_HANDLE_VALUE) {
      handle_ = h;
      temp_path_ = std::move(name);
      return;
    }
    const DWORD err = GetLastError();
    if (err != ERROR_FILE_EXISTS && err != ERROR_ALREADY_EXISTS) {
      win32::throw_error("cannot create a temporary file next to", destination, err);
    }
  }
  throw_io_error("cannot create a temporary file next to", destination, EEXIST);
}

AtomicOutputFile::~AtomicOutputFile() {
  if (handle_ != nullptr) CloseHandle(as_handle(handle_));
  if (!committed_ && !temp_path_.empty()) DeleteFileW(win32::widen(temp_path_).c_str());
}

void AtomicOutputFile::write_all(const void* data, size_t n) {
  IoVec iov = {const_cast<void*>(data), n};
  writev_all(&iov, 1);
}

void AtomicOutputFile::writev_all(IoVec* iov, int iovcnt) {
  for (int i = 0; i < iovcnt; ++i) {
    const DWORD err = write_at(as_handle(handle_), static_cast<const uint8_t*>(iov[i].iov_base), iov[i].iov_len, written_);
    if (err != 0) win32::throw_error("cannot write", destination_, err);
    written_ += iov[i].iov_len;
  }
  flushing_ = written_;  // no incremental writeback hint on Windows: FlushFileBuffers in commit()
}

void AtomicOutputFile::commit(const std::function<void()>& before_rename) {
  HANDLE h = as_handle(handle_);
  if (durable_ && !FlushFileBuffers(h)) win32::throw_error("cannot flush", destination_, GetLastError());
  if (before_rename) before_rename();  // throws: the destructor closes and removes the temporary file
  const std::wstring to = win32::widen(destination_);
  // The same directory: the new name alone (no separators) renames within it.
  if (rename_by_handle_replacing(h, win32::widen(base_of(destination_)))) {
    committed_ = true;
    handle_ = nullptr;
    if (!CloseHandle(h)) win32::throw_error("cannot close", destination_, GetLastError());
    return;
  }
  handle_ = nullptr;
  if (!CloseHandle(h)) win32::throw_error("cannot close", destination_, GetLastError());
  const std::wstring from = win32::widen(temp_path_);
  // WRITE_THROUGH: the move is on disk when it returns (the directory flush of the POSIX version).
  const DWORD flags = MOVEFILE_REPLACE_EXISTING | (durable_ ? MOVEFILE_WRITE_THROUGH : 0);
  if (!MoveFileExW(from.c_str(), to.c_str(), flags)) {
    win32::throw_error("cannot rename the finished file to", destination_, GetLastError());
  }
  committed_ = true;
}

void check_output_path(const std::string& source, const std::string& destination) {
  FileIdentity d;
  if (!path_identity(destination, &d)) return;  // does not exist yet
  if (is_directory(win32::widen(destination))) throw_io_error("destination is a directory:", destination, EISDIR);
  FileIdentity s;
  if (path_identity(source, &s) && s.same_inode(d)) {
    throw Error(Status::invalid_argument, "destination '" + destination + "' is the source file itself");
  }
}

void overwrite_in_place(const std::string& path, const FileIdentity& expected, uint64_t offset, const void* data, size_t n,
                        bool durable) {
  const std::wstring wpath = win32::widen(path);
  HANDLE h = CreateFileW(wpath.c_str(), GENERIC_WRITE | FILE_READ_ATTRIBUTES, kShareAll, nullptr, OPEN_EXISTING,
                         FILE_ATTRIBUTE_NORMAL, nullptr);
  if (h == INVALID_HANDLE_VALUE) win32::throw_error("cannot open for writing", path, GetLastError());
  FileIdentity now;
  if (!handle_identity(h, &now)) {
    const DWORD err = GetLastError();
    CloseHandle(h);
    win32::throw_error("cannot stat", path, err);
  }
  if (!(now == expected)) {
    CloseHandle(h);
    throw Error(Status::auth_failed, "file '" + path + "' changed while its header was being rewritten; nothing was written", 0, path);
  }
  DWORD err = write_at(h, static_cast<const uint8_t*>(data), n, offset);
  if (err == 0 && durable && !FlushFileBuffers(h)) err = GetLastError();
  if (err != 0) {
    CloseHandle(h);
    win32::throw_error(durable ? "cannot write or flush" : "cannot write", path, err);
  }
  if (!CloseHandle(h)) win32::throw_error("cannot close", path, GetLastError());
}

}  // namespace modelcrypt_core
