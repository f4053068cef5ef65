// Heap watch for key-hygiene tests: replaces the global operator new/delete of the test program so
// that, while watching, the contents of every block given back through operator delete (std::vector,
// std::string, SecretBytes, shared_ptr, std::function, ... on any thread) are copied into a static
// arena before the block is freed. Afterwards a test asks whether any freed block still held a
// secret: a container that wipes on release (SecretBytes, the C++ wrapper's Key) leaves only zeros.
//
// Include in exactly one translation unit per program. Memory that OpenSSL allocates with
// malloc/free (its cipher and KDF contexts) is not seen here; OpenSSL cleanses those itself.
#pragma once
#include <malloc.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

namespace heap_watch {

constexpr size_t kArenaSize = size_t{64} << 20;
constexpr size_t kMaxBlock = size_t{1} << 20;  // larger blocks are scanned for nothing: none hold keys

struct State {
  std::atomic<bool> watching{false};
  std::atomic_flag lock = ATOMIC_FLAG_INIT;
  size_t used = 0;
  size_t blocks = 0;
  bool overflow = false;
};
inline State g_state;
alignas(16) inline unsigned char g_arena[kArenaSize];

inline void record(const void* p, size_t n) {
  if (p == nullptr || !g_state.watching.load(std::memory_order_relaxed)) return;
  if (n > kMaxBlock) n = kMaxBlock;
  while (g_state.lock.test_and_set(std::memory_order_acquire)) {
  }
  if (g_state.used + sizeof(size_t) + n > kArenaSize) {
    g_state.overflow = true;
  } else {
    std::memcpy(g_arena + g_state.used, &n, sizeof n);
    std::memcpy(g_arena + g_state.used + sizeof n, p, n);
    g_state.used += sizeof n + n;
    ++g_state.blocks;
  }
  g_state.lock.clear(std::memory_order_release);
}

// Starts a fresh recording.
inline void start() {
  while (g_state.lock.test_and_set(std::memory_order_acquire)) {
  }
  g_state.used = 0;
  g_state.blocks = 0;
  g_state.overflow = false;
  g_state.lock.clear(std::memory_order_release);
  g_state.watching = true;
}

inline void stop() { g_state.watching = false; }
inline size_t blocks() { return g_state.blocks; }
inline bool overflowed() { return g_state.overflow; }

// Number of recorded freed blocks that contain `secret` (n bytes) anywhere.
inline size_t blocks_containing(const void* secret, size_t n) {
  size_t hits = 0;
  size_t pos = 0;
  while (pos < g_state.used) {
    size_t len;
    std::memcpy(&len, g_arena + pos, sizeof len);
    const unsigned char* block = g_arena + pos + sizeof len;
    if (len >= n && memmem(block, len, secret, n) != nullptr) ++hits;
    pos += sizeof len + len;
  }
  return hits;
}

inline void* allocate(size_t n) {
  void* p = std::malloc(n ? n : 1);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

inline void release(void* p, size_t n) noexcept {
  if (p == nullptr) return;
  record(p, n);
  std::free(p);
}

}  // namespace heap_watch

void* operator new(size_t n) { return heap_watch::allocate(n); }
void* operator new[](size_t n) { return heap_watch::allocate(n); }
void* operator new(size_t n, const std::nothrow_t&) noexcept { return std::malloc(n ? n : 1); }
void* operator new[](size_t n, const std::nothrow_t&) noexcept { return std::malloc(n ? n : 1); }
void operator delete(void* p) noexcept { heap_watch::release(p, p ? malloc_usable_size(p) : 0); }
void operator delete[](void* p) noexcept { heap_watch::release(p, p ? malloc_usable_size(p) : 0); }
void operator delete(void* p, size_t n) noexcept { heap_watch::release(p, n); }
void operator delete[](void* p, size_t n) noexcept { heap_watch::release(p, n); }
void operator delete(void* p, const std::nothrow_t&) noexcept { heap_watch::release(p, p ? malloc_usable_size(p) : 0); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { heap_watch::release(p, p ? malloc_usable_size(p) : 0); }
