// SecureBuffer: page-aligned memory that owns secret bytes (decrypted plaintext, batches of
// plaintext in flight) and wipes them with OPENSSL_cleanse when released.
#pragma once
#include <cstddef>
#include <cstdint>

namespace modelcrypt_core {

class SecureBuffer {
 public:
  SecureBuffer() noexcept = default;
  // Allocates `size` bytes with mmap. Buffers of 2 MiB and more are 2 MiB aligned and advised
  // MADV_HUGEPAGE (filling huge pages is several times faster than 4 KiB pages), except on VMs whose
  // balloon hands free memory back to the host, where fresh huge pages are the slow ones.
  // MODELCRYPT_HUGE_PAGES=always|never overrides the choice. All buffers are
  // advised MADV_DONTDUMP so plaintext stays out of core dumps, and MADV_WIPEONFORK so a fork()
  // child sees zeros instead of the plaintext (where the kernel lacks it, a pthread_atfork child
  // handler discards the child's copy of the pages). macOS: no huge pages or MADV_DONTDUMP, always the
  // pthread_atfork fallback. Windows: VirtualAlloc, VirtualLock up to the same limit as mlock, and no
  // fork to guard against. Throws Error(no_memory).
  static SecureBuffer allocate(size_t size);

  SecureBuffer(SecureBuffer&& other) noexcept;
  SecureBuffer& operator=(SecureBuffer&& other) noexcept;
  SecureBuffer(const SecureBuffer&) = delete;
  SecureBuffer& operator=(const SecureBuffer&) = delete;
  ~SecureBuffer();

  uint8_t* data() noexcept { return data_; }
  const uint8_t* data() const noexcept { return data_; }
  size_t size() const noexcept { return size_; }

  // Overwrites the contents with zeros (OPENSSL_cleanse) and hands the physical pages back to the
  // kernel (MADV_DONTNEED; Windows keeps them). The mapping stays valid: readers that still hold a
  // pointer see zeros.
  void wipe() noexcept;

 private:
  void release() noexcept;
  uint8_t* data_ = nullptr;     // never null for a live buffer, even of size 0
  size_t size_ = 0;
  void* map_ = nullptr;         // the mapping (nullptr for size 0)
  size_t map_size_ = 0;
  bool fork_registered_ = false;  // in the fork fallback registry (no MADV_WIPEONFORK)
};

}  // namespace modelcrypt_core

// Test hook: called (when set) on every release of a mapped buffer, after its bytes were wiped and
// before they are unmapped, with the buffer's data() and size(). Process-wide; for tests only.
namespace modelcrypt_core::testing {
using ReleaseObserver = void (*)(const uint8_t* data, size_t size);
void set_release_observer(ReleaseObserver observer) noexcept;
// Buffers allocated while `force` is set skip MADV_WIPEONFORK and use the pthread_atfork fallback.
void set_fork_fallback(bool force) noexcept;
}  // namespace modelcrypt_core::testing
