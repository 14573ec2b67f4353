// SPDX-License-Identifier: Apache-2.0
// The lock that guards goro's wait queues (channels, wait_group): held only for a few
// instructions (a parking fiber holds it only until it is saved: waiter::park_gated), so
// spinning beats sleeping. It backs off with the CPU's pause instruction, then yields the
// thread, so a preempted holder cannot starve its waiters.
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

// The one spin-then-yield backoff of goro's spin loops: the CPU's pause hint for the first
// spin_limit rounds (a holder on another core is a few instructions from done), then the
// thread yields (the holder may have been preempted, and needs this CPU to finish).
class backoff {
 public:
  void pause() noexcept {
    if (spins_ < spin_limit) {
      ++spins_;
      cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }

 private:
  static constexpr int spin_limit = 64;
  int spins_ = 0;
};

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
    backoff wait;
    for (;;) {
      while (locked_.load(std::memory_order_relaxed)) wait.pause();
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
    }
  }

  std::atomic<bool> locked_{false};
};

}  // namespace goro::detail
