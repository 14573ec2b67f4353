// SPDX-License-Identifier: Apache-2.0
/// @file
/// goro::wait_group: Go's sync.WaitGroup. Waits for a collection of fibers (or threads) to finish.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <stop_token>

#include "goro/detail/deadline.hpp"
#include "goro/detail/spinlock.hpp"
#include "goro/detail/thread_safety.hpp"

namespace goro {

namespace detail {
struct sync_node;
}

/// A counter that wait() blocks on until it reaches zero.
///
/// Memory ordering: every done() (and add()) happens-before the wait() that it lets return.
///
/// Lifetime: once a wait() has returned true, its caller may destroy the wait_group (as a
/// std::latch), even while other waiters are still being released: the add() that released
/// them no longer touches it.
class wait_group {
 public:
  wait_group() = default;
  wait_group(const wait_group&) = delete;
  wait_group& operator=(const wait_group&) = delete;
  ~wait_group() = default;

  /// Adds `delta` (which may be negative) to the counter; at zero, releases every waiter.
  /// Throws std::logic_error if the counter would drop below zero, or rise above INT32_MAX (it
  /// is 32 bits wide, as Go's); either way it is left unchanged.
  void add(std::int64_t delta = 1);
  /// add(-1).
  void done() { add(-1); }
  /// Blocks the fiber, or the thread, until the counter is zero.
  void wait();
  /// As wait(), but gives up when `stop` is requested: true if the counter reached zero, false
  /// if cancelled first.
  bool wait(std::stop_token stop);
  /// As wait(), but gives up at the deadline: true if the counter reached zero.
  bool wait_until(std::chrono::steady_clock::time_point deadline);
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> timeout) {
    return wait_until(detail::deadline_after(timeout));
  }

  /// The counter, for tests and diagnostics.
  std::int64_t count() const noexcept;

 private:
  bool wait_limited(const detail::wait_limit& limit);

  // Counter in the high 32 bits, number of waiters in the low 32 (as Go's WaitGroup).
  std::atomic<std::uint64_t> state_{0};
  detail::spinlock lock_;
  // The queue of parked waiters (src/park/sync_queue.hpp).
  detail::sync_node* head_ GORO_GUARDED_BY(lock_) = nullptr;
  detail::sync_node* tail_ GORO_GUARDED_BY(lock_) = nullptr;
};

}  // namespace goro
