#include "parallel.hpp"

#ifdef __linux__
#include <sched.h>
#endif

#include <atomic>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace modelcrypt_core {

unsigned available_cpus() noexcept {
#ifdef __linux__
  // The CPUs this process may run on (a container's or taskset's limit), not all the machine's.
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return static_cast<unsigned>(n);
  }
#endif
  const unsigned hc = std::thread::hardware_concurrency();
  return hc ? hc : 1;
}

unsigned resolve_threads(unsigned requested, uint64_t max_useful) noexcept {
  uint64_t t = requested ? requested : available_cpus();
  if (t > max_useful) t = max_useful;
  return t ? static_cast<unsigned>(t) : 1;
}

void parallel_for(uint64_t n, unsigned threads,
                  const std::function<std::function<void(uint64_t)>()>& make_worker) {
  if (n == 0) return;
  std::atomic<uint64_t> next{0};
  std::atomic<bool> stop{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto run = [&]() {
    try {
      std::function<void(uint64_t)> body = make_worker();
      while (!stop.load(std::memory_order_relaxed)) {
        const uint64_t i = next.fetch_add(1, std::memory_order_relaxed);
        if (i >= n) break;
        body(i);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      stop = true;
    }
  };
  std::vector<std::thread> pool;
  if (threads > n) threads = static_cast<unsigned>(n);
  for (unsigned t = 1; t < threads; ++t) {
    try {
      pool.emplace_back(run);
    } catch (const std::system_error&) {
      break;  // fewer threads than asked for: the calling thread still finishes the work
    }
  }
  run();
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace modelcrypt_core
