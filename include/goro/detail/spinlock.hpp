// SPDX-License-Identifier: Apache-2.0
// The lock that guards goro's wait queues (channels, wait_group): held only for a few
// instructions and never across a park, so spinning beats sleeping. It backs off with the CPU's
// pause instruction, then yields the thread, so a preempted holder cannot starve its waiters.
#pragma once

#include <atomic>
#include <thread>

#include "goro/detail/thread_safety.hpp"

namespace goro::detail {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

class GORO_CAPABILITY("mutex") spinlock {
 public:
  void lock() noexcept GORO_ACQUIRE() {
    // Acquire pairs with unlock's release: the previous holder's writes are visible.
    if (!locked_.exchange(true, std::memory_order_acquire)) return;
    lock_slow();
  }
  bool try_lock() noexcept GORO_TRY_ACQUIRE(true) {
    return !locked_.load(std::memory_order_relaxed) &&
           !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept GORO_RELEASE() { locked_.store(false, std::memory_order_release); }

 private:
  void lock_slow() noexcept {
    for (int spins = 0;; ++spins) {
      while (locked_.load(std::memory_order_relaxed)) {
        if (spins < 64) {
          cpu_relax();
        } else {
          std::this_thread::yield();
        }
        ++spins;
      }
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
    }
  }

  std::atomic<bool> locked_{false};
};

}  // namespace goro::detail
