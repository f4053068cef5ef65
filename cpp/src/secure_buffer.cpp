#include "secure_buffer.hpp"

#include <openssl/crypto.h>
#ifdef _WIN32
#include <windows.h>
#else
#include <dirent.h>
#include <pthread.h>
#include <sys/mman.h>
#endif

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "errors.hpp"

namespace modelcrypt_core {
namespace {
constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kPage = 4096;
// Buffers up to this size are locked in RAM (best effort): the streaming batches, small models and
// everything decrypted for file-to-file work. Larger ones (a whole multi-GiB model) are not: locking
// would pin and pre-fault them single-threaded, and RLIMIT_MEMLOCK (often 8 MiB) refuses it anyway.
constexpr size_t kLockLimit = size_t{64} << 20;
uint8_t g_empty_byte = 0;  // data() of size-0 buffers: a valid, non-null pointer
std::atomic<testing::ReleaseObserver> g_release_observer{nullptr};
enum class HugePages { automatic, always, never };

#ifndef _WIN32
#if defined(__linux__) && !defined(MADV_WIPEONFORK)
#define MADV_WIPEONFORK 18  // Linux 4.14; older headers lack the name
#endif

// fork() children must not inherit plaintext. MADV_WIPEONFORK (Linux 4.14+) gives the child zero
// pages in place of the mapping. Where the kernel refuses it (EINVAL), the mapping is registered
// here and a pthread_atfork child handler drops the child's copy of its pages (MADV_DONTNEED on a
// private anonymous mapping: the child reads zeros, the parent's pages are untouched). Only a
// fork() through the C library runs the handler (a raw clone syscall does not): hence second best.
std::atomic<bool> g_force_fork_fallback{false};
std::mutex g_fork_registry_mutex;
std::vector<std::pair<void*, size_t>>& fork_registry() {
  static auto* registry = new std::vector<std::pair<void*, size_t>>();  // never destroyed: used at exit
  return *registry;
}
void fork_prepare() { g_fork_registry_mutex.lock(); }
void fork_parent() { g_fork_registry_mutex.unlock(); }
void fork_child() {
#ifdef __linux__
  for (const auto& m : fork_registry()) madvise(m.first, m.second, MADV_DONTNEED);
#else
  // Elsewhere (macOS) MADV_DONTNEED is only a hint that may keep the contents: map fresh zero pages
  // over the child's copy instead.
  for (const auto& m : fork_registry()) {
    (void)mmap(m.first, m.second, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  }
#endif
  g_fork_registry_mutex.unlock();
}

// Returns whether the mapping went into the fallback registry.
// (macOS and other systems without MADV_WIPEONFORK always take the fallback.)
bool protect_from_fork(void* start, size_t size) {
#ifdef MADV_WIPEONFORK
  if (!g_force_fork_fallback.load(std::memory_order_relaxed) && madvise(start, size, MADV_WIPEONFORK) == 0) return false;
#endif
  static const bool installed = pthread_atfork(fork_prepare, fork_parent, fork_child) == 0;
  (void)installed;
  std::lock_guard<std::mutex> lock(g_fork_registry_mutex);
  fork_registry().emplace_back(start, size);  // may throw bad_alloc: the caller unmaps
  return true;
}

void forget_fork_fallback(void* start) noexcept {
  std::lock_guard<std::mutex> lock(g_fork_registry_mutex);
  auto& r = fork_registry();
  const auto it = std::find_if(r.begin(), r.end(), [start](const auto& m) { return m.first == start; });
  if (it != r.end()) r.erase(it);
}

#ifdef MADV_HUGEPAGE  // Linux: transparent huge pages
// MODELCRYPT_HUGE_PAGES=auto (default) | always | never, read once.
HugePages huge_page_policy() {
  static const HugePages policy = [] {
    const char* v = std::getenv("MODELCRYPT_HUGE_PAGES");
    if (v != nullptr && (std::strcmp(v, "always") == 0 || std::strcmp(v, "1") == 0)) return HugePages::always;
    if (v != nullptr && (std::strcmp(v, "never") == 0 || std::strcmp(v, "0") == 0)) return HugePages::never;
    return HugePages::automatic;
  }();
  return policy;
}

// True on a VM whose balloon device hands free memory back to the host (virtio-balloon with
// free page reporting, VIRTIO_BALLOON_F_REPORTING = feature bit 5; Firecracker and other microVMs).
// There a fresh 2 MiB page is 512 faults on the host (a new process fills huge pages at about
// 0.5 GB/s), while 4 KiB pages mostly reuse memory the host still backs (about 2 GB/s): measured
// on the project's VMs, load ran 3x faster with 4 KiB pages in a fresh process.
bool host_reclaims_free_memory() {
  static const bool reclaims = [] {
    DIR* dir = opendir("/sys/bus/virtio/devices");
    if (dir == nullptr) return false;
    bool found = false;
    while (const dirent* e = readdir(dir)) {
      if (e->d_name[0] == '.') continue;
      const std::string base = std::string("/sys/bus/virtio/devices/") + e->d_name;
      std::ifstream device(base + "/device"), features(base + "/features");
      std::string id, bits;
      if (!(device >> id) || !(features >> bits)) continue;
      if ((id == "0x0005" || id == "0x5") && bits.size() > 5 && bits[5] == '1') found = true;
    }
    closedir(dir);
    return found;
  }();
  return reclaims;
}
#endif  // MADV_HUGEPAGE
#endif  // !_WIN32

}  // namespace

void testing::set_release_observer(ReleaseObserver observer) noexcept { g_release_observer.store(observer); }
#ifdef _WIN32
// Windows has no fork() (CreateProcess children share no memory), no core dumps of the POSIX kind
// and no transparent huge pages for ordinary processes: committed pages, locked in the working set
// (best effort, like mlock) so they stay out of the page file.
void testing::set_fork_fallback(bool) noexcept {}

SecureBuffer SecureBuffer::allocate(size_t size) {
  SecureBuffer buf;
  if (size == 0) {
    buf.data_ = &g_empty_byte;
    return buf;
  }
  const size_t rounded = (size + kPage - 1) / kPage * kPage;
  if (rounded < size) throw Error(Status::no_memory, "buffer size overflows");
  void* p = VirtualAlloc(nullptr, rounded, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
  if (p == nullptr) {
    throw Error(Status::no_memory, "cannot allocate " + std::to_string(size) + " bytes for the decrypted data");
  }
  if (rounded <= kLockLimit) (void)VirtualLock(p, rounded);  // best effort (working-set quota)
  buf.map_ = p;
  buf.map_size_ = rounded;
  buf.data_ = static_cast<uint8_t*>(p);
  buf.size_ = size;
  return buf;
}
#else
void testing::set_fork_fallback(bool force) noexcept { g_force_fork_fallback.store(force); }

SecureBuffer SecureBuffer::allocate(size_t size) {
  SecureBuffer buf;
  if (size == 0) {
    buf.data_ = &g_empty_byte;
    return buf;
  }
  const bool huge = size >= kHugePage;
  const size_t align = huge ? kHugePage : kPage;
  const size_t rounded = (size + align - 1) / align * align;
  if (rounded < size) throw Error(Status::no_memory, "buffer size overflows");
  const size_t reserve = huge ? rounded + kHugePage : rounded;
  void* p = mmap(nullptr, reserve, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    throw Error(Status::no_memory, "cannot allocate " + std::to_string(size) + " bytes for the decrypted data");
  }
  uint8_t* base = static_cast<uint8_t*>(p);
  uint8_t* start = base;
  if (huge) {  // trim the mapping to a 2 MiB aligned window
    const uintptr_t addr = reinterpret_cast<uintptr_t>(base);
    start = reinterpret_cast<uint8_t*>((addr + kHugePage - 1) & ~(kHugePage - 1));
    const size_t head = static_cast<size_t>(start - base);
    const size_t tail = reserve - head - rounded;
    if (head) munmap(base, head);
    if (tail) munmap(start + rounded, tail);
#ifdef MADV_HUGEPAGE
    const HugePages policy = huge_page_policy();
    if (policy == HugePages::always || (policy == HugePages::automatic && !host_reclaims_free_memory())) {
      madvise(start, rounded, MADV_HUGEPAGE);
    }
#endif
  }
#ifdef MADV_DONTDUMP
  madvise(start, rounded, MADV_DONTDUMP);
#endif
  try {
    buf.fork_registered_ = protect_from_fork(start, rounded);
  } catch (...) {
    munmap(start, rounded);
    throw Error(Status::no_memory, "cannot allocate " + std::to_string(size) + " bytes for the decrypted data");
  }
  if (rounded <= kLockLimit) (void)mlock(start, rounded);  // best effort: keep plaintext out of swap
  buf.map_ = start;
  buf.map_size_ = rounded;
  buf.data_ = start;
  buf.size_ = size;
  return buf;
}
#endif  // _WIN32

SecureBuffer::SecureBuffer(SecureBuffer&& other) noexcept { *this = std::move(other); }

SecureBuffer& SecureBuffer::operator=(SecureBuffer&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    map_ = std::exchange(other.map_, nullptr);
    map_size_ = std::exchange(other.map_size_, 0);
    fork_registered_ = std::exchange(other.fork_registered_, false);
  }
  return *this;
}

SecureBuffer::~SecureBuffer() { release(); }

void SecureBuffer::wipe() noexcept {
  if (map_ == nullptr) return;
  OPENSSL_cleanse(map_, map_size_);
#ifndef _WIN32
  madvise(map_, map_size_, MADV_DONTNEED);  // (Windows: MEM_RESET would not guarantee zeros; keep the pages)
#endif
}

void SecureBuffer::release() noexcept {
  if (map_ != nullptr) {
    OPENSSL_cleanse(map_, map_size_);
    if (const testing::ReleaseObserver observe = g_release_observer.load(std::memory_order_acquire)) observe(data_, size_);
#ifdef _WIN32
    VirtualUnlock(map_, map_size_);  // fails harmlessly when the lock was refused
    VirtualFree(map_, 0, MEM_RELEASE);
#else
    if (fork_registered_) forget_fork_fallback(map_);
    munmap(map_, map_size_);
#endif
  }
  data_ = nullptr;
  size_ = 0;
  map_ = nullptr;
  map_size_ = 0;
  fork_registered_ = false;
}

}  // namespace modelcrypt_core
