// SPDX-License-Identifier: Apache-2.0
/// @file
/// goro::mutex: Go's sync.Mutex (with its starvation mode) spelled as the standard library's
/// timed mutex, so std::lock_guard, std::unique_lock and std::scoped_lock work with it. A fiber
/// that blocks on it parks and frees its worker; a plain thread sleeps. Contract and design:
/// docs/sync.md, "mutex".
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <stop_token>
#include <type_traits>

#include "goro/detail/deadline.hpp"
#include "goro/detail/spinlock.hpp"
#include "goro/detail/thread_safety.hpp"

namespace goro {

namespace detail {
struct sync_node;
}  // namespace detail

/// A mutual-exclusion lock for fibers and threads alike (Go's sync.Mutex). Meets the standard's
/// Lockable and TimedLockable requirements. Not recursive; it may be unlocked by a fiber or
/// thread other than the one that locked it, as in Go.
///
/// Fairness (Go's starvation mode): a newcomer may take the lock ahead of a woken waiter, which
/// keeps throughput high; but once a waiter has waited more than 1 ms, unlock() hands the lock
/// directly to the longest waiter, and newcomers queue behind it, until the queue drains or a
/// waiter gets it in under 1 ms.
///
/// Memory ordering: an unlock() happens-before every later successful lock of the same mutex.
class mutex {
 public:
  constexpr mutex() noexcept = default;
  mutex(const mutex&) = delete;
  mutex& operator=(const mutex&) = delete;
  /// REQUIRES: unlocked, and no fiber or thread waiting for it. As for std::mutex, that may
  /// be as soon as the unlock() that freed it has freed it, before that call has returned: the
  /// mutex's last user may delete it.
  ~mutex() = default;

  /// Blocks until the caller holds the mutex. Never throws.
  void lock() {
    // The uncontended path, one CAS as std::mutex. Acquire pairs with unlock's release.
    std::uint32_t expected = 0;
    if (state_.compare_exchange_strong(expected, locked, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
      return;
    }
    lock_slow({});
  }

  /// As lock(), but gives up when `stop` is requested: true if the caller now holds the mutex,
  /// false if not (it never half-acquires). A mutex free at the call is taken even if stop was
  /// already requested.
  bool lock(std::stop_token stop);

  /// Takes the mutex if that needs no wait; false otherwise. Does not take it from a waiter the
  /// mutex is being handed to (starvation mode), like Go's TryLock.
  bool try_lock() noexcept {
    // Relaxed load: only a first guess, which the CAS checks. Acquire pairs with unlock's
    // release.
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    while ((s & (locked | starving)) == 0) {
      if (state_.compare_exchange_weak(s, s | locked, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        return true;
      }
    }
    return false;
  }

  /// As lock(), giving up once `d` has passed; true if the caller now holds the mutex.
  template <class Rep, class Period>
  bool try_lock_for(const std::chrono::duration<Rep, Period>& d) {
    return try_lock() || lock_slow({.deadline = detail::deadline_after(d), .stop = {}});
  }

  /// As lock(), giving up once `tp` has passed; true if the caller now holds the mutex.
  template <class Clock, class Duration>
  bool try_lock_until(const std::chrono::time_point<Clock, Duration>& tp) {
    return try_lock() || lock_slow({.deadline = detail::deadline_at(tp), .stop = {}});
  }

  /// As try_lock_until, also giving up when `stop` is requested.
  template <class Clock, class Duration>
  bool try_lock_until(const std::chrono::time_point<Clock, Duration>& tp, std::stop_token stop) {
    return try_lock() || lock_slow({.deadline = detail::deadline_at(tp), .stop = std::move(stop)});
  }

  /// Releases the mutex, waking a waiter if there is one. Unlocking a mutex that is not locked
  /// is a fatal error: it prints "goro::mutex::unlock: unlock of unlocked mutex" and aborts
  /// (as Go's "fatal error: sync: unlock of unlocked mutex"; unlock() is noexcept, as std's).
  void unlock() noexcept {
    // Proof that nobody is left waiting: the CAS succeeds only on exactly `locked`, so no
    // waiter is queued, none is awake and no hand-off is due. A locker queues only after a CAS
    // that sets has_waiters while it sees `locked`; so either it sees our 0 and takes the mutex,
    // or our CAS fails and unlock_slow wakes it. Release pairs with the next owner's acquire.
    std::uint32_t expected = locked;
    if (state_.compare_exchange_strong(expected, 0, std::memory_order_release,
                                       std::memory_order_relaxed)) {
      return;
    }
    unlock_slow();
  }

 private:
  // state_ bits. Go's mutexLocked, mutexWoken and mutexStarving, plus has_waiters in place of
  // Go's waiter count (our waiters are in a queue, not behind a semaphore).
  static constexpr std::uint32_t locked = 1;       // held (or being handed to a waiter)
  static constexpr std::uint32_t woken = 2;        // a woken waiter is on its way to compete
  static constexpr std::uint32_t starving = 4;     // unlock hands off; newcomers queue
  static constexpr std::uint32_t has_waiters = 8;  // the queue is non-empty

  bool lock_slow(const detail::wait_limit& limit);
  void unlock_slow() noexcept;
  // Wake one waiter and free the mutex (wake_one), or hand it to the first waiter (hand_off);
  // false, the mutex still held, if every waiter had given up.
  bool wake_one() noexcept;
  bool hand_off() noexcept;
  bool may_spin(int iteration) const noexcept;

  std::atomic<std::uint32_t> state_{0};
  detail::spinlock lock_;  // guards the queue and has_waiters
  detail::sync_node* head_ GORO_GUARDED_BY(lock_) = nullptr;
  detail::sync_node* tail_ GORO_GUARDED_BY(lock_) = nullptr;
};

}  // namespace goro
