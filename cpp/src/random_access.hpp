// Random access to one encrypted file: it is opened once, its header read and authenticated once,
// and every later read goes through that same descriptor with those same keys. So all the bytes a
// handle hands out belong to the one file whose header was authenticated: a file replaced (rename
// over the path) or rewritten in place while the handle is open is an error, never a mix of two files.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "container.hpp"
#include "decrypt_into.hpp"
#include "file_io.hpp"

namespace modelcrypt_core {
namespace detail {
struct OpenedFile;
}

class RandomAccessFile {
 public:
  // Reader steps 1-8 of FORMAT.md, once. Wrong key: Error(key_mismatch); modified header:
  // Error(auth_failed); not a modelcrypt file: Error(format); `mode` must be "AES-GCM".
  RandomAccessFile(const std::string& path, const Credential& key, const std::string& mode);
  ~RandomAccessFile();
  RandomAccessFile(const RandomAccessFile&) = delete;
  RandomAccessFile& operator=(const RandomAccessFile&) = delete;

  const std::string& path() const noexcept { return path_; }
  const format::Header& header() const noexcept;
  uint64_t file_length() const noexcept;

  // Plaintext bytes [offset, offset + length): only the chunks covering them are read and
  // decrypted. Out of range: Error(invalid_argument). The file changed (size or times, in place)
  // or replaced or removed at its path since it was opened: Error(auth_failed) saying so; a chunk
  // that fails authentication: Error(auth_failed). Safe to call from several threads at once.
  Decrypted read_range(uint64_t offset, uint64_t length, unsigned threads = 0) const;
  // read_range decrypted into the caller's memory `out` (`length` bytes, not shared with anyone
  // during the call), as read_spans_into. On any error `out` is wiped.
  void read_range_into(uint64_t offset, uint64_t length, uint8_t* out, unsigned threads = 0) const;
  // Several ranges at once, each into its own destination (the tensors of a checkpoint): every
  // chunk covering them is read once (in bounded batches into our memory), decrypted in a
  // per-thread scratch chunk and authenticated there before its bytes are copied out, so the
  // destinations only ever hold authenticated plaintext (detail::decrypt_spans_into). Ranges out of
  // bounds or overlapping: Error(invalid_argument), before anything is read. On any error every
  // destination is wiped (zeroed).
  void read_spans_into(std::vector<PlaintextSpan> spans, unsigned threads = 0) const;
  // decrypt_file / verify_file of this file, through the same descriptor and keys.
  void decrypt_to_file(const std::string& dst, unsigned threads, const Progress& progress, bool durable) const;
  void verify(unsigned threads, const Progress& progress) const;
  // Key rotation without plaintext on disk and in bounded memory: the plaintext, decrypted batch by
  // batch through this handle (each batch authenticated first), is encrypted to dst as a new file
  // under new_key with `options` (metadata, chunk size, ...). dst is replaced atomically.
  void reencrypt_to_file(const std::string& dst, ByteView new_key, const EncryptOptions& options) const;

 private:
  void check_unchanged() const;
  // Runs fn; an authentication failure is re-reported as a change of the file when it changed.
  template <typename Fn>
  auto guarded(Fn&& fn) const -> decltype(fn());

  std::string path_;
  std::string check_path_;  // absolute form of path_, to compare what the path names later
  std::unique_ptr<detail::OpenedFile> file_;
  FileIdentity opened_;
};

}  // namespace modelcrypt_core
