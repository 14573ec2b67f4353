// SPDX-License-Identifier: Apache-2.0
// The lock that guards goro's wait queues (the sync primitives', and a channel's once its bias is
// gone): held only for a few instructions (a parking fiber holds it only until it is saved:
// waiter::park_gated), so spinning beats sleeping. Here because the primitives' public classes
// hold one by value and take it inline; its contended path, which backs off with the CPU's
// pause instruction and then yields the thread (so a preempted holder cannot starve its
// waiters), is in src/platform/spinlock.cpp.
#pragma once

#include <atomic>

#include "goro/detail/thread_safety.hpp"

namespace goro::detail {

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
  // Spins with backoff until the lock is free, then takes it (src/platform/spinlock.cpp).
  void lock_slow() noexcept;

  std::atomic<bool> locked_{false};
};

}  // namespace goro::detail
