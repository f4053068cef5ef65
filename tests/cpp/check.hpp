// Minimal assertion helpers for the C++ unit tests (no test framework): CHECK records a failure
// and goes on; finish() prints "N passed, M failed" and gives the exit status.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <string>

namespace check {
inline int passed = 0;
inline int failed = 0;
inline int finish() {
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
}  // namespace check

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (cond) {                                                                  \
      ++check::passed;                                                           \
    } else {                                                                     \
      ++check::failed;                                                           \
      std::printf("FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond);              \
    }                                                                            \
  } while (0)

#define CHECK_MSG(cond, msg)                                                     \
  do {                                                                           \
    if (cond) {                                                                  \
      ++check::passed;                                                           \
    } else {                                                                     \
      ++check::failed;                                                           \
      std::printf("FAILED %s:%d: %s (%s)\n", __FILE__, __LINE__, #cond,          \
                  std::string(msg).c_str());                                     \
    }                                                                            \
  } while (0)

// A scratch directory: argv[1] when given (kept), else a fresh mkdtemp under $TMPDIR or /tmp that
// is removed with its contents when the object goes away.
#include <unistd.h>

#include <filesystem>
namespace check {
class WorkDir {
 public:
  WorkDir(int argc, char** argv) {
    if (argc >= 2) {
      path_ = argv[1];
      return;
    }
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/modelcrypt-unit-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) {
      std::perror("mkdtemp");
      std::exit(2);
    }
    path_ = tmpl;
    owned_ = true;
  }
  ~WorkDir() {
    std::error_code ec;
    if (owned_) std::filesystem::remove_all(path_, ec);
  }
  WorkDir(const WorkDir&) = delete;
  WorkDir& operator=(const WorkDir&) = delete;
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
  bool owned_ = false;
};
}  // namespace check
