// SPDX-License-Identifier: Apache-2.0
/// @file
/// goro::shared_mutex: Go's sync.RWMutex spelled as std::shared_timed_mutex, so std::shared_lock,
/// std::unique_lock and std::lock_guard work with it; for fibers and threads alike. Contract and
/// design (who goes first when): docs/sync.md, "shared_mutex".
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <stop_token>

#include "goro/detail/deadline.hpp"
#include "goro/detail/spinlock.hpp"
#include "goro/detail/thread_safety.hpp"
#include "goro/mutex.hpp"

namespace goro {

/// A reader/writer lock: any number of readers (shared owners), or one writer (exclusive). Meets
/// the standard's SharedTimedMutex requirements. Not recursive.
///
/// Fairness: once a writer waits, new readers queue behind it, so a stream of readers cannot
/// starve writers; when a writer unlocks, the readers that queued meanwhile all go before the
/// next writer, so a stream of writers cannot starve readers (Go's RWMutex policy).
///
/// Memory ordering: unlock() happens-before every later lock() and lock_shared();
/// unlock_shared() happens-before every later lock().
class shared_mutex {
 public:
  constexpr shared_mutex() noexcept = default;
  shared_mutex(const shared_mutex&) = delete;
  shared_mutex& operator=(const shared_mutex&) = delete;
  /// REQUIRES: unlocked, and no fiber or thread waiting for it. As for std::shared_mutex, that
  /// may be as soon as the unlock() or unlock_shared() that freed it has freed it, before that
  /// call has returned: the mutex's last user may delete it.
  ~shared_mutex() = default;

  // ---- exclusive (writer) ----

  /// Blocks until the caller holds the mutex exclusively. Never throws.
  void lock() {
    if (!try_lock()) lock_slow({});
  }
  /// As lock(), but gives up when `stop` is requested: true if the caller now holds it, false
  /// if not. A free mutex is taken even if stop was already requested.
  bool lock(std::stop_token stop) { return try_lock() || lock_slow({.stop = std::move(stop)}); }
  /// Takes the mutex exclusively if that needs no wait.
  bool try_lock() noexcept {
    std::uint32_t expected = 0;
    // Acquire pairs with the release of the last unlock or unlock_shared.
    return state_.compare_exchange_strong(expected, writer, std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }
  /// As lock(), giving up once `d` has passed.
  template <class Rep, class Period>
  bool try_lock_for(const std::chrono::duration<Rep, Period>& d) {
    return try_lock() || lock_slow({.deadline = detail::deadline_after(d), .stop = {}});
  }
  /// As lock(), giving up once `tp` has passed.
  template <class Clock, class Duration>
  bool try_lock_until(const std::chrono::time_point<Clock, Duration>& tp) {
    return try_lock() || lock_slow({.deadline = detail::deadline_at(tp), .stop = {}});
  }
  /// As try_lock_until, also giving up when `stop` is requested.
  template <class Clock, class Duration>
  bool try_lock_until(const std::chrono::time_point<Clock, Duration>& tp, std::stop_token stop) {
    return try_lock() || lock_slow({.deadline = detail::deadline_at(tp), .stop = std::move(stop)});
  }
  /// Releases exclusive ownership. Unlocking when no writer holds it is a fatal error:
  /// "goro::shared_mutex::unlock: unlock of unlocked shared_mutex", then abort.
  void unlock() noexcept {
    std::uint32_t expected = writer;
    // Release pairs with the next owner's acquire. Fails if anyone waits.
    if (state_.compare_exchange_strong(expected, 0, std::memory_order_release,
                                       std::memory_order_relaxed)) {
      return;
    }
    unlock_slow();
  }

  // ---- shared (reader) ----

  /// Blocks until the caller holds the mutex shared. Never throws.
  void lock_shared() {
    if (!try_lock_shared()) lock_shared_slow({});
  }
  /// As lock_shared(), but gives up when `stop` is requested: true if the caller now holds it
  /// shared, false if not.
  bool lock_shared(std::stop_token stop) {
    return try_lock_shared() || lock_shared_slow({.stop = std::move(stop)});
  }
  /// Takes the mutex shared if that needs no wait: no writer holds it or waits for it.
  bool try_lock_shared() noexcept {
    // Relaxed load: a first guess, which the CAS checks.
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    while ((s & (writer | writers_waiting)) == 0) {
      // Acquire pairs with the release of the last writer's unlock.
      if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        return true;
      }
    }
    return false;
  }
  /// As lock_shared(), giving up once `d` has passed.
  template <class Rep, class Period>
  bool try_lock_shared_for(const std::chrono::duration<Rep, Period>& d) {
    return try_lock_shared() ||
           lock_shared_slow({.deadline = detail::deadline_after(d), .stop = {}});
  }
  /// As lock_shared(), giving up once `tp` has passed.
  template <class Clock, class Duration>
  bool try_lock_shared_until(const std::chrono::time_point<Clock, Duration>& tp) {
    return try_lock_shared() || lock_shared_slow({.deadline = detail::deadline_at(tp), .stop = {}});
  }
  /// As try_lock_shared_until, also giving up when `stop` is requested.
  template <class Clock, class Duration>
  bool try_lock_shared_until(const std::chrono::time_point<Clock, Duration>& tp,
                             std::stop_token stop) {
    return try_lock_shared() ||
           lock_shared_slow({.deadline = detail::deadline_at(tp), .stop = std::move(stop)});
  }
  /// Releases one shared ownership. With no reader holding it, a fatal error:
  /// "goro::shared_mutex::unlock_shared: unlock of unlocked shared_mutex", then abort.
  void unlock_shared() noexcept {
    // Relaxed load: a first guess, which the CAS checks.
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    // The last reader keeps its count while a writer waits, and hands the mutex over in the slow
    // path, dropping its count in the same step (so that nobody can find the mutex free and
    // destroy it while this call still has the spinlock to take). Proof that no writer is
    // stranded: a writer queues only in a CAS that sets writers_waiting while it sees a holder;
    // so the last reader's CAS either comes first (the writer's CAS then sees 0 readers and
    // takes the mutex) or fails, and the reader then sees writers_waiting and grants.
    while ((s & readers) != 0 && (s & (readers | writers_waiting)) != (writers_waiting | 1)) {
      // Release: the reader's critical section happens-before the writer that acquires next.
      if (state_.compare_exchange_weak(s, s - 1, std::memory_order_release,
                                       std::memory_order_relaxed)) {
        return;
      }
    }
    unlock_shared_slow();
  }

 private:
  // state_: the number of active readers in the low 29 bits, and three flags.
  static constexpr std::uint32_t writer = 1u << 31;           // a writer holds it
  static constexpr std::uint32_t writers_waiting = 1u << 30;  // the writer queue is non-empty
  static constexpr std::uint32_t readers_waiting = 1u << 29;  // the reader queue is non-empty
  static constexpr std::uint32_t readers = readers_waiting - 1;

  bool lock_slow(const detail::wait_limit& limit) { return acquire_slow(true, limit); }
  bool lock_shared_slow(const detail::wait_limit& limit) { return acquire_slow(false, limit); }
  // Both slow paths: take the mutex, as a writer or a reader, or queue and park within `limit`.
  bool acquire_slow(bool as_writer, const detail::wait_limit& limit);
  void unlock_slow() noexcept;
  void unlock_shared_slow() noexcept;
  // Hand-overs under lock_, from a caller that holds the mutex as `held` (writer, the last
  // reader's 1, or 0 for a writer giving up, which holds nothing): src/sync/shared_mutex.cpp.
  detail::sync_node* admit_readers_locked(std::uint32_t held) noexcept GORO_REQUIRES(lock_);
  detail::sync_node* grant_writer_locked(std::uint32_t held) noexcept GORO_REQUIRES(lock_);
  detail::sync_node* readers_behind_locked() noexcept GORO_REQUIRES(lock_);

  std::atomic<std::uint32_t> state_{0};
  detail::spinlock lock_;  // guards both queues and the *_waiting flags
  detail::sync_node* readers_head_ GORO_GUARDED_BY(lock_) = nullptr;
  detail::sync_node* readers_tail_ GORO_GUARDED_BY(lock_) = nullptr;
  detail::sync_node* writers_head_ GORO_GUARDED_BY(lock_) = nullptr;
  detail::sync_node* writers_tail_ GORO_GUARDED_BY(lock_) = nullptr;
};

}  // namespace goro
