#include "random_access.hpp"

#ifdef _WIN32
#include <windows.h>
#else
#include <unistd.h>
#endif

#include <cerrno>
#include <climits>
#include <type_traits>
#include <utility>
#include <vector>

#include "container_detail.hpp"
#include "errors.hpp"
#ifdef _WIN32
#include "win32_util.hpp"
#endif

namespace modelcrypt_core {
namespace {

std::string absolute(const std::string& path) {
#ifdef _WIN32
  const std::wstring wpath = win32::widen(path);
  std::wstring full(MAX_PATH, L'\0');
  for (;;) {
    const DWORD n = GetFullPathNameW(wpath.c_str(), static_cast<DWORD>(full.size()), &full[0], nullptr);
    if (n == 0) win32::throw_error("cannot resolve the full path of", path, GetLastError());
    if (n < full.size()) {
      full.resize(n);
      return win32::narrow(full);
    }
    full.resize(n);  // n: the size needed, with the terminator
  }
#else
  if (!path.empty() && path[0] == '/') return path;
  std::vector<char> buf(PATH_MAX);
  while (::getcwd(buf.data(), buf.size()) == nullptr) {
    if (errno != ERANGE) throw_io_error("cannot resolve the current directory for", path);
    buf.resize(buf.size() * 2);
  }
  return std::string(buf.data()) + "/" + path;
#endif
}

}  // namespace

RandomAccessFile::RandomAccessFile(const std::string& path, const Credential& key, const std::string& mode)
    : path_(path), check_path_(absolute(path)) {
  file_ = std::make_unique<detail::OpenedFile>(path, key, mode);
  opened_ = file_->in.identity();
}

RandomAccessFile::~RandomAccessFile() = default;

const format::Header& RandomAccessFile::header() const noexcept { return file_->parsed.header; }
uint64_t RandomAccessFile::file_length() const noexcept { return file_->in.size(); }

void RandomAccessFile::check_unchanged() const {
  FileIdentity at_path;
  if (!path_identity(check_path_, &at_path) || !at_path.same_inode(opened_)) {
    throw Error(Status::auth_failed, "file '" + path_ + "' was replaced or removed while it was open; "
                                     "reopen it to read the new contents", 0, path_);
  }
  // (unlinking the old file by a rename over it changes its ctime too: the path is checked first)
  const FileIdentity now = file_->in.identity();
  if (!(now == opened_)) {
    throw Error(Status::auth_failed, "file '" + path_ + "' changed while it was open (" +
                                         (now.size != opened_.size ? "its size went from " + std::to_string(opened_.size) +
                                                                         " to " + std::to_string(now.size) + " bytes"
                                                                   : std::string("it was modified in place")) +
                                         "); reopen it to read the new contents", 0, path_);
  }
}

template <typename Fn>
auto RandomAccessFile::guarded(Fn&& fn) const -> decltype(fn()) {
  check_unchanged();
  try {
    if constexpr (std::is_void_v<decltype(fn())>) {
      fn();
      check_unchanged();
    } else {
      auto result = fn();
      check_unchanged();  // a change during the read: nothing of it is handed out
      return result;
    }
  } catch (const Error& e) {
    if (e.status() != Status::auth_failed) throw;
    check_unchanged();  // the cause, when the change is visible
    throw Error(Status::auth_failed, std::string(e.what()) + " (or the file was rewritten while it was open; "
                                                             "its chunks no longer match the header authenticated "
                                                             "when it was opened)", 0, path_);
  }
}

Decrypted RandomAccessFile::read_range(uint64_t offset, uint64_t length, unsigned threads) const {
  detail::check_range(header(), offset, length);
  return guarded([&] { return detail::load_opened_range(*file_, offset, length, threads); });
}

void RandomAccessFile::read_range_into(uint64_t offset, uint64_t length, uint8_t* out, unsigned threads) const {
  read_spans_into({{offset, length, out}}, threads);
}

void RandomAccessFile::read_spans_into(std::vector<PlaintextSpan> spans, unsigned threads) const {
  const std::vector<PlaintextSpan> checked = detail::checked_spans(header(), std::move(spans));
  try {
    guarded([&] {
      detail::decrypt_spans_into(file_->in, header(), file_->keys, checked, threads, file_->trailer.get());
    });
  } catch (...) {  // e.g. the file changed under the read, seen after it: none of it is handed out
    detail::wipe_spans(checked);
    throw;
  }
}

void RandomAccessFile::decrypt_to_file(const std::string& dst, unsigned threads, const Progress& progress,
                                       bool durable) const {
  // No check after: once renamed into place the output stays (every byte of it authenticated under
  // the pinned keys, so all of it is the file that was opened).
  check_unchanged();
  try {
    detail::decrypt_opened(*file_, dst, threads, progress, durable);
  } catch (const Error& e) {
    if (e.status() == Status::auth_failed) check_unchanged();
    throw;
  }
}

void RandomAccessFile::verify(unsigned threads, const Progress& progress) const {
  guarded([&] { detail::verify_opened(*file_, threads, progress); });
}

}  // namespace modelcrypt_core
