// SPDX-License-Identifier: Apache-2.0
// A runtime's pending timers: a binary min-heap of timer_entry pointers ordered by deadline,
// with each entry's heap_index kept current so stop() is O(log n). One mutex guards it; the
// earliest deadline is mirrored in an atomic so the hot path can test "anything due?" without
// the lock. See docs/scheduler.md, "Timers".
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "goro/detail/timer_entry.hpp"

namespace goro::detail {

class timer_heap {
 public:
  // Queues `e`; true if it became the earliest deadline.
  bool push(timer_entry& e);
  // True if `e` was queued and is now removed; otherwise waits out a fire in progress.
  bool remove(timer_entry& e) noexcept;
  // Empties the heap when its runtime goes away: self-owned entries are discarded, the others
  // left idle and detached (a later timer_stop() returns false).
  void detach_all() noexcept;
  // Fires every entry due at `now`; returns how many fired.
  std::size_t fire_due(clock::time_point now);
  // The earliest deadline, or clock::time_point::max() if none. Lock-free.
  clock::time_point next_deadline() const noexcept {
    return clock::time_point(clock::duration(next_.load(std::memory_order_acquire)));
  }
  bool due(clock::time_point now) const noexcept { return next_deadline() <= now; }

 private:
  void sift_up(std::size_t i) noexcept;
  void sift_down(std::size_t i) noexcept;
  void erase_at(std::size_t i) noexcept;
  void publish_next() noexcept;

  std::mutex mu_;
  std::vector<timer_entry*> heap_;  // GUARDED_BY(mu_)
  std::atomic<clock::rep> next_{clock::time_point::max().time_since_epoch().count()};
};

}  // namespace goro::detail
