// SPDX-License-Identifier: Apache-2.0
// Layer: sched. May include: sched, stack, time, platform.
// The interface the scheduler polls for I/O through (docs/net.md, "Where polling happens"):
// implemented above, in the net layer (epoll today; io_uring could be added behind it), and
// installed in a scheduler the first time a socket is made on it.
//
// Invariants:
//   - waiters_ counts the fibers and threads between publishing themselves as waiting on a
//     descriptor of this poller and returning from that wait. While it is non-zero, some worker
//     of the scheduler polls: a busy one before stealing and every fairness turn, an idle one
//     by sleeping in the poller with the timer duty (docs/net.md, "Who makes sure someone
//     polls").
#pragma once

#include <atomic>

#include "goro/detail/timer_entry.hpp"

namespace goro::detail {

class io_poller {
 public:
  io_poller() = default;
  io_poller(const io_poller&) = delete;
  io_poller& operator=(const io_poller&) = delete;
  virtual ~io_poller() = default;

  // Makes runnable the waiters of the descriptors found ready, blocking until `until` at the
  // latest (not at all if it has passed) or until wake(). Called by the scheduler's workers;
  // several may poll at once, but only the timer-duty holder blocks; the others pass
  // clock::time_point::min(), and leave a wake-up to it.
  virtual void poll(clock::time_point until) noexcept = 0;
  // Makes a poll blocked now, or the next one to block, return at once.
  virtual void wake() noexcept = 0;
  // The scheduler is being destroyed: sockets left open fail their next wait.
  virtual void detach() noexcept = 0;

  // A hint (relaxed): true while anyone waits on I/O here.
  bool has_waiters() const noexcept { return waiters_.load(std::memory_order_relaxed) > 0; }
  // seq_cst: the increment is one side of the Dekker pair in docs/net.md, "Who makes sure
  // someone polls".
  void add_waiter() noexcept { waiters_.fetch_add(1, std::memory_order_seq_cst); }
  // Relaxed: a count too high for a moment costs one needless poll; the decrement follows the
  // waiter's own wake-up, which needs nothing more from the poller.
  void remove_waiter() noexcept { waiters_.fetch_sub(1, std::memory_order_relaxed); }

 private:
  std::atomic<int> waiters_{0};
};

}  // namespace goro::detail
