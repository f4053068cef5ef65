// Minimal fork-safe parallelism: threads are started per call (no global pool survives a fork).
#pragma once
#include <cstdint>
#include <functional>

namespace modelcrypt_core {

// Number of CPUs this process may run on (sched_getaffinity), at least 1.
unsigned available_cpus() noexcept;

// 0 means "all available CPUs"; the result is clamped to [1, max_useful].
unsigned resolve_threads(unsigned requested, uint64_t max_useful) noexcept;

// Runs body(i) for every i in [0, n) on `threads` threads (the calling thread is one of them).
// make_worker is called once per thread and returns that thread's body (so each thread can own
// state such as a cipher context). The first exception thrown stops the remaining work and is
// rethrown after all threads have joined.
void parallel_for(uint64_t n, unsigned threads,
                  const std::function<std::function<void(uint64_t)>()>& make_worker);

}  // namespace modelcrypt_core
