// SPDX-License-Identifier: Apache-2.0
/// @file
/// goro::condition_variable: Go's sync.Cond spelled as std::condition_variable, waiting on a
/// std::unique_lock<goro::mutex>; with std::condition_variable_any's stop-token waits. For fibers
/// and threads alike. Contract: docs/sync.md, "condition_variable".
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stop_token>
#include <utility>

#include "goro/detail/deadline.hpp"
#include "goro/detail/spinlock.hpp"
#include "goro/detail/thread_safety.hpp"
#include "goro/mutex.hpp"

namespace goro {

/// Lets fibers and threads wait until notified, releasing a goro::mutex while they wait.
///
/// Every wait registers the waiter before it unlocks the mutex, so a notify that follows a
/// change made under the mutex is never lost. Waiters are woken in the order they started
/// waiting. A wait returns with the lock held again, whatever ended it (notify, deadline, stop).
/// Waits may also return spuriously, as std's may; use the predicate forms.
///
/// Misuse: waiting on a std::unique_lock that does not own its mutex throws std::logic_error
/// ("goro::condition_variable::wait: lock not held").
///
/// Memory ordering: a notify happens-before the return of the wait it wakes.
class condition_variable {
 public:
  constexpr condition_variable() noexcept = default;
  condition_variable(const condition_variable&) = delete;
  condition_variable& operator=(const condition_variable&) = delete;
  /// REQUIRES: no waiter left that has not been notified (as for std::condition_variable).
  ~condition_variable() = default;

  /// Wakes the longest waiter, if any.
  void notify_one() noexcept;
  /// Wakes every waiter.
  void notify_all() noexcept;

  /// Unlocks `lock`, blocks until notified, relocks.
  void wait(std::unique_lock<mutex>& lock) { wait_core(lock, {}); }

  /// Waits until pred() is true; pred is checked under the lock before every wait.
  template <class Predicate>
  void wait(std::unique_lock<mutex>& lock, Predicate pred) {
    while (!pred()) wait(lock);
  }

  /// As wait(lock), giving up once `tp` has passed: std::cv_status::timeout if it did.
  template <class Clock, class Duration>
  std::cv_status wait_until(std::unique_lock<mutex>& lock,
                            const std::chrono::time_point<Clock, Duration>& tp) {
    return wait_core(lock, {.deadline = detail::deadline_at(tp), .stop = {}})
               ? std::cv_status::no_timeout
               : std::cv_status::timeout;
  }
  /// As wait(lock), giving up once `d` has passed.
  template <class Rep, class Period>
  std::cv_status wait_for(std::unique_lock<mutex>& lock,
                          const std::chrono::duration<Rep, Period>& d) {
    return wait_core(lock, {.deadline = detail::deadline_after(d), .stop = {}})
               ? std::cv_status::no_timeout
               : std::cv_status::timeout;
  }

  /// Waits until pred() is true or `tp` has passed; returns pred() as last evaluated.
  template <class Clock, class Duration, class Predicate>
  bool wait_until(std::unique_lock<mutex>& lock, const std::chrono::time_point<Clock, Duration>& tp,
                  Predicate pred) {
    return wait_limited(lock, {.deadline = detail::deadline_at(tp), .stop = {}}, std::move(pred));
  }
  /// Waits until pred() is true or `d` has passed; returns pred() as last evaluated.
  template <class Rep, class Period, class Predicate>
  bool wait_for(std::unique_lock<mutex>& lock, const std::chrono::duration<Rep, Period>& d,
                Predicate pred) {
    return wait_limited(lock, {.deadline = detail::deadline_after(d), .stop = {}}, std::move(pred));
  }

  /// Waits until pred() is true or `stop` is requested; returns pred() as last evaluated, so
  /// false means cancelled (std::condition_variable_any::wait with a stop token).
  template <class Predicate>
  bool wait(std::unique_lock<mutex>& lock, std::stop_token stop, Predicate pred) {
    return wait_limited(lock, {.stop = std::move(stop)}, std::move(pred));
  }
  /// As wait(lock, stop, pred), also giving up once `tp` has passed.
  template <class Clock, class Duration, class Predicate>
  bool wait_until(std::unique_lock<mutex>& lock, const std::chrono::time_point<Clock, Duration>& tp,
                  std::stop_token stop, Predicate pred) {
    return wait_limited(lock, {.deadline = detail::deadline_at(tp), .stop = std::move(stop)},
                        std::move(pred));
  }
  /// As wait(lock, stop, pred), also giving up once `d` has passed.
  template <class Rep, class Period, class Predicate>
  bool wait_for(std::unique_lock<mutex>& lock, const std::chrono::duration<Rep, Period>& d,
                std::stop_token stop, Predicate pred) {
    return wait_limited(lock, {.deadline = detail::deadline_after(d), .stop = std::move(stop)},
                        std::move(pred));
  }

 private:
  // Unlocks, parks within `limit`, relocks. True if notified, false if the limit ended it.
  bool wait_core(std::unique_lock<mutex>& lock, const detail::wait_limit& limit);

  template <class Predicate>
  bool wait_limited(std::unique_lock<mutex>& lock, const detail::wait_limit& limit,
                    Predicate pred) {
    // A limit already reached ends the first wait at once (park_limited claims it).
    while (!pred()) {
      if (!wait_core(lock, limit)) return pred();
    }
    return true;
  }

  detail::spinlock lock_;  // guards the queue
  detail::sync_node* head_ GORO_GUARDED_BY(lock_) = nullptr;
  detail::sync_node* tail_ GORO_GUARDED_BY(lock_) = nullptr;
};

}  // namespace goro
