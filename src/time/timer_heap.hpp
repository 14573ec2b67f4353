// SPDX-License-Identifier: Apache-2.0
// Layer: time. May include: stack, time, platform.
// A runtime's pending timers: a binary min-heap of timer_entry pointers ordered by deadline,
// with each entry's heap_index kept current so stop() is O(log n). One mutex guards it; the
// earliest deadline is mirrored in an atomic so the hot path can test "anything due?" without
// the lock. Also the binding through which a timer or ticker reaches its runtime, which
// outlives the runtime. See docs/scheduler.md, "Timers".
//
// Invariant: next_ decreases only in push() and in fire_due()'s re-arming, and each reports it
// (push returns true, fire_due returns true), so that the caller can wake the worker that
// sleeps until the earliest deadline (scheduler::wake_for_timer).
#pragma once

#include <atomic>
#include <cstdint>
#include <shared_mutex>
#include <vector>

#include "goro/detail/thread_safety.hpp"
#include "goro/detail/timer_entry.hpp"
#include "platform/thread_mutex.hpp"

namespace goro::detail {

class scheduler;

// The runtime a timer or ticker belongs to, as the timer holds it: shared by the scheduler and
// every timer and ticker made on it, so it lives as long as the last of them. A timer's stop(),
// reset() and destructor hold `mu` shared for as long as they use `sched`; ~scheduler takes it
// exclusively to clear `sched` and empty the heap. So a stop or reset racing ~runtime() on
// another thread either finishes with the scheduler before it goes, or finds null: a timer
// never reaches a scheduler through a pointer that may dangle, whatever state it is in.
struct timer_binding {
  explicit timer_binding(scheduler* s) noexcept : sched(s) {}
  std::shared_mutex mu;
  // Read with mu held shared, cleared with it held exclusively; null once the runtime is
  // destroyed. (Not a GORO_GUARDED_BY: std::shared_mutex and std::shared_lock are not annotated.)
  scheduler* sched;
};

class timer_heap {
 public:
  // Queues `e`; true if it became the earliest deadline.
  bool push(timer_entry& e);
  // True if `e` was queued and is now removed; otherwise waits out a fire in progress.
  bool remove(timer_entry& e) noexcept;
  // Empties the heap when its runtime goes away, once no worker runs: self-owned entries are
  // discarded, the others left idle.
  void detach_all() noexcept;
  // Fires every entry due at `now`, in deadline order. True if an entry fire() queued again
  // became the earliest deadline (as push() returning true).
  bool fire_due(clock::time_point now);
  // The earliest deadline, or clock::time_point::max() if none. Lock-free.
  clock::time_point next_deadline() const noexcept {
    return clock::time_point(clock::duration(next_.load(std::memory_order_acquire)));
  }
  bool due(clock::time_point now) const noexcept { return next_deadline() <= now; }

 private:
  void sift_up(std::size_t i) noexcept GORO_REQUIRES(mu_);
  void sift_down(std::size_t i) noexcept GORO_REQUIRES(mu_);
  void erase_at(std::size_t i) noexcept GORO_REQUIRES(mu_);
  void publish_next() noexcept GORO_REQUIRES(mu_);

  thread_mutex mu_;
  std::vector<timer_entry*> heap_ GORO_GUARDED_BY(mu_);
  std::atomic<clock::rep> next_{clock::time_point::max().time_since_epoch().count()};
};

}  // namespace goro::detail
