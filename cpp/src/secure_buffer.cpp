#include "secure_buffer.hpp"

#include <openssl/crypto.h>
#include <sys/mman.h>

#include <atomic>
#include <utility>

#include "errors.hpp"

namespace modelcrypt {
namespace {
constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kPage = 4096;
// Buffers up to this size are locked in RAM (best effort): the streaming batches, small models and
// everything decrypted for file-to-file work. Larger ones (a whole multi-GiB model) are not: locking
// would pin and pre-fault them single-threaded, and RLIMIT_MEMLOCK (often 8 MiB) refuses it anyway.
constexpr size_t kLockLimit = size_t{64} << 20;
uint8_t g_empty_byte = 0;  // data() of size-0 buffers: a valid, non-null pointer
std::atomic<testing::ReleaseObserver> g_release_observer{nullptr};
}  // namespace

void testing::set_release_observer(ReleaseObserver observer) noexcept { g_release_observer.store(observer); }

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
    madvise(start, rounded, MADV_HUGEPAGE);
  }
#ifdef MADV_DONTDUMP
  madvise(start, rounded, MADV_DONTDUMP);
#endif
  if (rounded <= kLockLimit) (void)mlock(start, rounded);  // best effort: keep plaintext out of swap
  buf.map_ = start;
  buf.map_size_ = rounded;
  buf.data_ = start;
  buf.size_ = size;
  return buf;
}

SecureBuffer::SecureBuffer(SecureBuffer&& other) noexcept { *this = std::move(other); }

SecureBuffer& SecureBuffer::operator=(SecureBuffer&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    map_ = std::exchange(other.map_, nullptr);
    map_size_ = std::exchange(other.map_size_, 0);
  }
  return *this;
}

SecureBuffer::~SecureBuffer() { release(); }

void SecureBuffer::wipe() noexcept {
  if (map_ == nullptr) return;
  OPENSSL_cleanse(map_, map_size_);
  madvise(map_, map_size_, MADV_DONTNEED);
}

void SecureBuffer::release() noexcept {
  if (map_ != nullptr) {
    OPENSSL_cleanse(map_, map_size_);
    if (const testing::ReleaseObserver observe = g_release_observer.load(std::memory_order_acquire)) observe(data_, size_);
    munmap(map_, map_size_);
  }
  data_ = nullptr;
  size_ = 0;
  map_ = nullptr;
  map_size_ = 0;
}

}  // namespace modelcrypt
