// SPDX-License-Identifier: Apache-2.0
/// @file
/// goro::counting_semaphore and goro::binary_semaphore: std's semaphores for fibers and threads
/// alike, with a FIFO of waiters, direct hand-off of released permits, deadlines and stop
/// tokens. The non-template core is detail::semaphore_base (src/sync/semaphore.cpp). Contract:
/// docs/sync.md, "counting_semaphore".
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stop_token>

#include "goro/detail/deadline.hpp"
#include "goro/detail/spinlock.hpp"
#include "goro/detail/thread_safety.hpp"
#include "goro/mutex.hpp"

namespace goro {

namespace detail {

// A count of permits and a FIFO of waiters; counting_semaphore adds its maximum.
class semaphore_base {
 public:
  // Throws std::invalid_argument unless 0 <= desired <= max.
  semaphore_base(std::ptrdiff_t desired, std::ptrdiff_t max);
  semaphore_base(const semaphore_base&) = delete;
  semaphore_base& operator=(const semaphore_base&) = delete;

  // Takes a permit if one is free now.
  bool try_acquire() noexcept {
    // Relaxed load: a first guess, which the CAS checks.
    std::uint64_t s = state_.load(std::memory_order_relaxed);
    // A permit is only ever free when nobody waits (see src/sync/semaphore.cpp), so taking one here
    // never overtakes a waiter.
    while (s >= one) {
      // Acquire pairs with the release that added the permit.
      if (state_.compare_exchange_weak(s, s - one, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        return true;
      }
    }
    return false;
  }
  // Takes a permit, waiting within `limit`; false if the limit ended the wait first.
  bool acquire(const wait_limit& limit) { return try_acquire() || acquire_slow(limit); }

  // Adds `update` permits, handing them to waiters first. Throws as counting_semaphore::release.
  void release(std::ptrdiff_t update, std::ptrdiff_t max) {
    // Lock-free only while nobody waits: an acquirer queues only in a CAS that sets has_waiters
    // while it sees no permit, so either it sees our permits or our CAS fails and the slow path
    // hands them to it. Relaxed load: a first guess, which the CAS checks.
    std::uint64_t s = state_.load(std::memory_order_relaxed);
    while (update > 0 && (s & has_waiters) == 0 &&
           update <= max - static_cast<std::ptrdiff_t>(s >> 1)) {
      // Release pairs with the acquire of whoever takes these permits.
      if (state_.compare_exchange_weak(s, s + static_cast<std::uint64_t>(update) * one,
                                       std::memory_order_release, std::memory_order_relaxed)) {
        return;
      }
    }
    release_slow(update, max);
  }

 private:
  // state_: free permits in bits 1..63 (so up to PTRDIFF_MAX), has_waiters in bit 0.
  static constexpr std::uint64_t has_waiters = 1;
  static constexpr std::uint64_t one = 2;

  bool acquire_slow(const wait_limit& limit);
  void release_slow(std::ptrdiff_t update, std::ptrdiff_t max);

  std::atomic<std::uint64_t> state_;
  spinlock lock_;  // guards the queue and has_waiters
  sync_node* head_ GORO_GUARDED_BY(lock_) = nullptr;
  sync_node* tail_ GORO_GUARDED_BY(lock_) = nullptr;
};

}  // namespace detail

/// A semaphore holding between 0 and LeastMaxValue permits (std::counting_semaphore). Blocked
/// acquirers are served in arrival order: a release hands its permits straight to them.
///
/// Misuse: a release that would take the count above max() throws std::logic_error
/// ("goro::counting_semaphore::release: release beyond max()"), and a negative update throws
/// std::invalid_argument; either way the count is left as it was.
///
/// Memory ordering: a release happens-before the acquire that takes one of its permits.
template <std::ptrdiff_t LeastMaxValue = PTRDIFF_MAX>
class counting_semaphore {
  static_assert(LeastMaxValue >= 0, "goro::counting_semaphore: LeastMaxValue must be >= 0");

 public:
  /// The largest count: exactly LeastMaxValue.
  static constexpr std::ptrdiff_t max() noexcept { return LeastMaxValue; }

  /// Starts with `desired` permits. Throws std::invalid_argument unless 0 <= desired <= max().
  explicit counting_semaphore(std::ptrdiff_t desired) : base_(desired, max()) {}
  counting_semaphore(const counting_semaphore&) = delete;
  counting_semaphore& operator=(const counting_semaphore&) = delete;
  /// REQUIRES: no fiber or thread waiting on it. That may be as soon as a permit it waits for
  /// has been taken, before the release() that added the permit has returned: whoever takes
  /// the last permit may delete it (a semaphore as a completion signal).
  ~counting_semaphore() = default;

  /// Adds `update` permits, waking that many waiters (first come, first served).
  void release(std::ptrdiff_t update = 1) { base_.release(update, max()); }

  /// Takes a permit, blocking until one is free. Never throws.
  void acquire() { base_.acquire({}); }
  /// As acquire(), but gives up when `stop` is requested: true if a permit was taken, false if
  /// not. A free permit is taken even if stop was already requested.
  bool acquire(std::stop_token stop) { return base_.acquire({.stop = std::move(stop)}); }
  /// Takes a permit if one is free now.
  bool try_acquire() noexcept { return base_.try_acquire(); }
  /// As acquire(), giving up once `d` has passed.
  template <class Rep, class Period>
  bool try_acquire_for(const std::chrono::duration<Rep, Period>& d) {
    return base_.try_acquire() ||
           base_.acquire({.deadline = detail::deadline_after(d), .stop = {}});
  }
  /// As acquire(), giving up once `tp` has passed.
  template <class Clock, class Duration>
  bool try_acquire_until(const std::chrono::time_point<Clock, Duration>& tp) {
    return base_.try_acquire() || base_.acquire({.deadline = detail::deadline_at(tp), .stop = {}});
  }
  /// As try_acquire_until, also giving up when `stop` is requested.
  template <class Clock, class Duration>
  bool try_acquire_until(const std::chrono::time_point<Clock, Duration>& tp, std::stop_token stop) {
    return base_.try_acquire() ||
           base_.acquire({.deadline = detail::deadline_at(tp), .stop = std::move(stop)});
  }

 private:
  detail::semaphore_base base_;
};

/// A semaphore with at most one permit (std::binary_semaphore).
using binary_semaphore = counting_semaphore<1>;

}  // namespace goro
