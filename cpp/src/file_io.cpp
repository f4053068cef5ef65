#include "file_io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

#include "errors.hpp"

namespace modelcrypt_core {
namespace {

std::string dir_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string base_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Advances an iovec array past `done` bytes.
void consume(IoVec*& iov, int& iovcnt, size_t done) {
  while (iovcnt > 0 && done >= iov->iov_len) {
    done -= iov->iov_len;
    ++iov;
    --iovcnt;
  }
  if (iovcnt > 0) {
    iov->iov_base = static_cast<uint8_t*>(iov->iov_base) + done;
    iov->iov_len -= done;
  }
}

}  // namespace

InputFile::InputFile(const std::string& path) : path_(path) {
  do {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd_ < 0 && errno == EINTR);
  if (fd_ < 0) throw_io_error("cannot open", path);
  struct stat st;
  if (fstat(fd_, &st) != 0) {
    const int err = errno;
    ::close(fd_);
    throw_io_error("cannot stat", path, err);
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd_);
    throw_io_error("cannot read", path, EISDIR);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd_);
    throw Error(Status::invalid_argument, "not a regular file: '" + path + "'");
  }
  size_ = static_cast<uint64_t>(st.st_size);
}

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);
}

namespace {
FileIdentity identity_of(const struct stat& st) {
  FileIdentity id;
  id.device = static_cast<uint64_t>(st.st_dev);
  id.inode = static_cast<uint64_t>(st.st_ino);
  id.size = static_cast<uint64_t>(st.st_size);
#ifdef __APPLE__
  id.mtime_ns = static_cast<int64_t>(st.st_mtimespec.tv_sec) * 1000000000 + st.st_mtimespec.tv_nsec;
  id.ctime_ns = static_cast<int64_t>(st.st_ctimespec.tv_sec) * 1000000000 + st.st_ctimespec.tv_nsec;
#else
  id.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  id.ctime_ns = static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
#endif
  return id;
}
}  // namespace

bool path_identity(const std::string& path, FileIdentity* out) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return false;
    throw_io_error("cannot stat", path);
  }
  *out = identity_of(st);
  return true;
}

FileIdentity InputFile::identity() const {
  struct stat st;
  if (fstat(fd_, &st) != 0) throw_io_error("cannot stat", path_);
  return identity_of(st);
}

uint64_t InputFile::current_size() const {
  struct stat st;
  if (fstat(fd_, &st) != 0) throw_io_error("cannot stat", path_);
  return static_cast<uint64_t>(st.st_size);
}

size_t InputFile::read_at(void* buf, size_t n, uint64_t offset) const {
  size_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(fd_, static_cast<uint8_t*>(buf) + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      throw_io_error("cannot read", path_);
    }
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  return done;
}

void InputFile::readv_exact_at(IoVec* iov, int iovcnt, uint64_t offset) const {
#ifdef __APPLE__
  // preadv needs macOS 11; the wheels target older releases: one pread per entry.
  for (int i = 0; i < iovcnt; ++i) {
    if (read_at(iov[i].iov_base, iov[i].iov_len, offset) != iov[i].iov_len) {
      throw Error(Status::io, "file '" + path_ + "' became shorter while it was being read", 0, path_);
    }
    offset += iov[i].iov_len;
  }
#else
  while (iovcnt > 0 && iov->iov_len == 0) { ++iov; --iovcnt; }
  while (iovcnt > 0) {
    const ssize_t r = ::preadv(fd_, iov, iovcnt < IOV_MAX ? iovcnt : IOV_MAX, static_cast<off_t>(offset));
    if (r < 0) {
      if (errno == EINTR) continue;
      throw_io_error("cannot read", path_);
    }
    if (r == 0) throw Error(Status::io, "file '" + path_ + "' became shorter while it was being read", 0, path_);
    offset += static_cast<uint64_t>(r);
    consume(iov, iovcnt, static_cast<size_t>(r));
  }
#endif
}

std::string temp_file_prefix(const std::string& destination) {
  const std::string dir = dir_of(destination);
  return (dir == "/" ? std::string("/") : dir + "/") + "." + base_of(destination) + ".mctmp-";
}

AtomicOutputFile::AtomicOutputFile(const std::string& destination, FileMode mode, bool durable)
    : destination_(destination), durable_(durable) {
#ifdef O_TMPFILE
  // Linux: an unnamed file in the destination's directory, given a name only once complete, so a
  // process killed at any point before commit() leaves nothing behind. It needs /proc/self/fd to
  // be linked later (linkat with AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH). Any failure (a filesystem
  // without O_TMPFILE: EOPNOTSUPP, EISDIR on old kernels, EINVAL; or a real error such as EACCES,
  // which the named path below reports as before) falls back to a named temporary file.
  do {
    fd_ = ::open(dir_of(destination).c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, mode);
  } while (fd_ < 0 && errno == EINTR);
  if (fd_ >= 0) {
    if (::access(("/proc/self/fd/" + std::to_string(fd_)).c_str(), F_OK) == 0) {
      unnamed_ = true;
      return;
    }
    ::close(fd_);
    fd_ = -1;
  }
#endif
  for (int attempt = 0; attempt < 16; ++attempt) {
    std::string name = random_temp_name();
    do {
      fd_ = ::open(name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    } while (fd_ < 0 && errno == EINTR);
    if (fd_ >= 0) {
      temp_path_ = std::move(name);
      return;
    }
    if (errno != EEXIST) throw_io_error("cannot create a temporary file next to", destination);
  }
  throw_io_error("cannot create a temporary file next to", destination, EEXIST);
}

AtomicOutputFile::~AtomicOutputFile() {
  if (fd_ >= 0) ::close(fd_);  // an unnamed file that was never linked goes with its last descriptor
  if (!committed_ && !temp_path_.empty()) ::unlink(temp_path_.c_str());
}

void AtomicOutputFile::write_all(const void* data, size_t n) {
  IoVec iov = {const_cast<void*>(data), n};
  writev_all(&iov, 1);
}

void AtomicOutputFile::writev_all(IoVec* iov, int iovcnt) {
  while (iovcnt > 0 && iov->iov_len == 0) { ++iov; --iovcnt; }
  while (iovcnt > 0) {
    const ssize_t w = ::writev(fd_, iov, iovcnt < IOV_MAX ? iovcnt : IOV_MAX);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw_io_error("cannot write", destination_);
    }
    written_ += static_cast<uint64_t>(w);
    consume(iov, iovcnt, static_cast<size_t>(w));
  }
  // Durable files: start the device writeback of every full 8 MiB written so far, so the disk works
  // while we encrypt and the final fsync has little left to wait for.
#ifdef __linux__
  constexpr uint64_t kWritebackStep = 8u << 20;
  if (durable_ && written_ - flushing_ >= kWritebackStep) {
    const uint64_t upto = written_ / kWritebackStep * kWritebackStep;
    (void)::sync_file_range(fd_, static_cast<off_t>(flushing_), static_cast<off_t>(upto - flushing_),
                            SYNC_FILE_RANGE_WRITE);  // a hint: fsync in commit() is what guarantees
    flushing_ = upto;
  }
#else
  flushing_ = written_;  // no writeback hint (sync_file_range is Linux's): the fsync in commit() does it all
#endif
}

namespace {
// fsync, or on macOS F_FULLFSYNC (its fsync leaves the data in the drive's cache); 0 or -1/errno.
int flush_to_device(int fd, bool data_only) {
#ifdef __APPLE__
  (void)data_only;
  if (::fcntl(fd, F_FULLFSYNC) == 0) return 0;
  return ::fsync(fd);  // filesystems without F_FULLFSYNC
#else
  return data_only ? ::fdatasync(fd) : ::fsync(fd);
#endif
}

// Durability of a new name in `path`'s directory; best effort on filesystems that refuse it.
void sync_directory_of(const std::string& path, bool durable) {
  if (!durable) return;
  const int dfd = ::open(dir_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)flush_to_device(dfd, false);
    ::close(dfd);
  }
}
}  // namespace

void AtomicOutputFile::commit(const std::function<void()>& before_rename) {
  if (durable_ && flush_to_device(fd_, false) != 0) throw_io_error("cannot flush", destination_);
  if (unnamed_) {
    if (before_rename) before_rename();  // throws: the unnamed file goes with its descriptor
    const std::string fd_path = "/proc/self/fd/" + std::to_string(fd_);
    // A new destination: the complete file gets its name in one step, so no kill leaves anything else.
    bool linked = ::linkat(AT_FDCWD, fd_path.c_str(), AT_FDCWD, destination_.c_str(), AT_SYMLINK_FOLLOW) == 0;
    if (!linked && errno != EEXIST) throw_io_error("cannot create", destination_);
    if (linked) {
      const int fd = fd_;
      fd_ = -1;
      committed_ = true;  // in place: a failed close below must not remove it
      if (::close(fd) != 0) throw_io_error("cannot close", destination_);
      sync_directory_of(destination_, durable_);
      return;
    }
    // An existing destination: name the complete file with a temporary name (linkat cannot replace
    // a file), then rename it over the destination. Only a kill between the two leaves a (complete)
    // temporary file.
    for (int attempt = 0; attempt < 16 && temp_path_.empty(); ++attempt) {
      std::string name = random_temp_name();
      if (::linkat(AT_FDCWD, fd_path.c_str(), AT_FDCWD, name.c_str(), AT_SYMLINK_FOLLOW) == 0) {
        temp_path_ = std::move(name);
      } else if (errno != EEXIST) {
        throw_io_error("cannot create a temporary file next to", destination_);
      }
    }
    if (temp_path_.empty()) throw_io_error("cannot create a temporary file next to", destination_, EEXIST);
  }
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) throw_io_error("cannot close", destination_);
  if (!unnamed_ && before_rename) before_rename();  // throws: the destructor removes the temporary file
  if (::rename(temp_path_.c_str(), destination_.c_str()) != 0) throw_io_error("cannot rename the finished file to", destination_);
  committed_ = true;
  sync_directory_of(destination_, durable_);
}

void check_output_path(const std::string& source, const std::string& destination) {
  struct stat d;
  if (::stat(destination.c_str(), &d) != 0) return;  // does not exist yet
  if (S_ISDIR(d.st_mode)) throw_io_error("destination is a directory:", destination, EISDIR);
  struct stat s;
  if (::stat(source.c_str(), &s) == 0 && s.st_dev == d.st_dev && s.st_ino == d.st_ino) {
    throw Error(Status::invalid_argument, "destination '" + destination + "' is the source file itself");
  }
}

}  // namespace modelcrypt_core

namespace modelcrypt_core {

void overwrite_in_place(const std::string& path, const FileIdentity& expected, uint64_t offset, const void* data, size_t n,
                        bool durable) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw_io_error("cannot open for writing", path);
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw_io_error("cannot stat", path, err);
  }
  if (!(identity_of(st) == expected)) {
    ::close(fd);
    throw Error(Status::auth_failed, "file '" + path + "' changed while its header was being rewritten; nothing was written", 0, path);
  }
  const auto* p = static_cast<const uint8_t*>(data);
  size_t done = 0;
  while (done < n) {
    const ssize_t w = ::pwrite(fd, p + done, n - done, static_cast<off_t>(offset + done));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const int err = w < 0 ? errno : EIO;
      ::close(fd);
      throw_io_error("cannot write", path, err);
    }
    done += static_cast<size_t>(w);
  }
  if (durable && flush_to_device(fd, true) != 0) {
    const int err = errno;
    ::close(fd);
    throw_io_error("cannot flush", path, err);
  }
  if (::close(fd) != 0) throw_io_error("cannot close", path);
}

}  // namespace modelcrypt_core
