// File helpers for the core: positional reads of a regular input file, and an output file that
// appears at its destination only when complete (an unnamed O_TMPFILE file, or a named temp file,
// in the same directory; fsync; rename). Two implementations behind this interface: file_io.cpp
// (POSIX) and file_io_win32.cpp (Windows: UTF-8 paths through the wide-character API, ReadFile at
// OVERLAPPED offsets, FlushFileBuffers, a POSIX-semantics rename by handle or else
// MoveFileExW(MOVEFILE_REPLACE_EXISTING|MOVEFILE_WRITE_THROUGH)).
#pragma once
#ifndef _WIN32
#include <sys/types.h>
#endif

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "byte_source.hpp"

namespace modelcrypt_core {

// Permission bits for a new file (umask applies). Windows has none: files there take their
// directory's access control list, and the bits are ignored.
#ifdef _WIN32
using FileMode = unsigned int;
#else
using FileMode = mode_t;
#endif

// What identifies a file's contents as of one moment: its inode (on Windows: volume serial number
// and file index), size and modification time.
// (ctime is recorded but not compared: chmod, a new hard link or an xattr change it without
// touching the contents.)
struct FileIdentity {
  uint64_t device = 0;
  uint64_t inode = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  bool same_inode(const FileIdentity& o) const noexcept { return device == o.device && inode == o.inode; }
  bool operator==(const FileIdentity& o) const noexcept {
    return same_inode(o) && size == o.size && mtime_ns == o.mtime_ns;
  }
};

// The identity of what `path` names now (stat, links followed); false when nothing is there.
bool path_identity(const std::string& path, FileIdentity* out);

class InputFile : public ByteSource {
 public:
  // Opens a regular file for reading. Missing file, directory, permission: Error(io) with errno.
  explicit InputFile(const std::string& path);
  ~InputFile() override;
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  uint64_t size() const noexcept override { return size_; }
  const std::string& path() const noexcept override { return path_; }
  // Current size from fstat (to notice a source that changed while it was read).
  uint64_t current_size() const;
  // The open file's identity now (fstat).
  FileIdentity identity() const;
  // Reads up to n bytes at offset; returns the count (short only at end of file).
  size_t read_at(void* buf, size_t n, uint64_t offset) const override;
  // Reads exactly the bytes described by iov (modified) at offset; a short read is Error(io).
  void readv_exact_at(IoVec* iov, int iovcnt, uint64_t offset) const override;

 private:
#ifdef _WIN32
  void* handle_ = nullptr;  // HANDLE
#else
  int fd_ = -1;
#endif
  uint64_t size_ = 0;
  std::string path_;
};

class AtomicOutputFile {
 public:
  // Creates an unnamed file (Linux O_TMPFILE) in the directory of `destination` with permission bits
  // `mode` (umask applies): a process killed before commit() leaves nothing behind. Where the
  // filesystem has no O_TMPFILE, creates ".<name>.mctmp-XXXXXXXXXXXX" beside `destination` instead
  // (left behind by a kill; removed on every error). commit() gives the unnamed file that temporary
  // name (linkat) just before the rename.
  // `durable`: commit() flushes the data to the device before the rename (and writeback starts while
  // writing), so even a power loss leaves either the old or the new file. Without it the rename is
  // still atomic for other processes and against a crash of this process, but not against a
  // power loss or kernel crash.
  AtomicOutputFile(const std::string& destination, FileMode mode, bool durable = true);
  ~AtomicOutputFile();  // not committed: closes and removes the temporary file
  AtomicOutputFile(const AtomicOutputFile&) = delete;
  AtomicOutputFile& operator=(const AtomicOutputFile&) = delete;

  void write_all(const void* data, size_t n);
  void writev_all(IoVec* iov, int iovcnt);  // iov is modified
  // fsync (when durable), `before_rename()` (a last chance to cancel: if it throws, the temporary
  // file is removed and the destination is untouched), link the unnamed file to a temporary name,
  // rename over the destination, fsync the directory (when durable).
  void commit(const std::function<void()>& before_rename = {});

 private:
#ifdef _WIN32
  void* handle_ = nullptr;  // HANDLE of the named temporary file
#else
  int fd_ = -1;
#endif
  std::string destination_;
  std::string random_temp_name() const;
  std::string temp_path_;   // named temporary file (empty while the file is unnamed)
  bool unnamed_ = false;    // O_TMPFILE: no name until commit()
  bool committed_ = false;
  bool durable_ = true;
  uint64_t written_ = 0;    // bytes written so far
  uint64_t flushing_ = 0;   // bytes whose writeback has been started
};

// Refuses (Error(invalid_argument)) a destination that is the source file itself, and
// (Error(io), EISDIR) a destination that is a directory.
void check_output_path(const std::string& source, const std::string& destination);

// Writes `n` bytes at `offset` of the existing file `path` in one pass (then fdatasync when durable),
// after checking that the file is still `expected` (same inode, size, mtime): Error(auth_failed)
// otherwise, with nothing written. Used to rewrite a v2 header's recipients section in place.
void overwrite_in_place(const std::string& path, const FileIdentity& expected, uint64_t offset, const void* data, size_t n,
                        bool durable);

// Prefix of temporary files: ".<name>.mctmp-".
std::string temp_file_prefix(const std::string& destination);

}  // namespace modelcrypt_core
