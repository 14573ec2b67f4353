// SPDX-License-Identifier: Apache-2.0
// Layer: sync. May include: chan, sync, park, sched, stack, time, platform.
// goro::condition_variable: a FIFO of parked waiters under a spinlock. A wait queues its node
// before it unlocks the mutex, so a notify issued after a change made under the mutex finds it
// (Go's sync.Cond does the same with its notifyList ticket). docs/sync.md, "condition_variable".
//
// Invariants: a node is queued from the moment its wait registers it until a notify claims it
// (and unlinks it) or its own deadline or stop request claims it (and it unlinks itself).
// A notify only claims, so a waiter that gave up is never counted as woken.
#include <mutex>
#include <stdexcept>

#include "goro/condition_variable.hpp"
#include "goro/detail/thread_safety.hpp"
#include "park/sync_queue.hpp"

namespace goro {

void condition_variable::notify_one() noexcept {
  detail::sync_node* n = nullptr;
  {
    detail::lock_guard guard(lock_);
    n = detail::sync_queue(head_, tail_).pop_claimed(detail::granted);
  }
  if (n != nullptr) n->w.unpark();
}

void condition_variable::notify_all() noexcept {
  detail::sync_node* woken = nullptr;
  {
    detail::lock_guard guard(lock_);
    woken = detail::sync_queue(head_, tail_).pop_all_claimed(detail::granted).first;
  }
  detail::unpark_all(woken);
}

bool condition_variable::wait_core(std::unique_lock<mutex>& lock, const detail::wait_limit& limit) {
  if (!lock.owns_lock()) {
    throw std::logic_error("goro::condition_variable::wait: lock not held");
  }
  detail::sync_node node(detail::condition_variable_wait, this);
  {
    detail::lock_guard guard(lock_);
    detail::sync_queue(head_, tail_).push_back(&node);
  }
  lock.unlock();
  detail::park_limited(node.w, limit);
  const bool notified = node.w.winner() == detail::granted;
  if (!notified) {
    detail::lock_guard guard(lock_);
    detail::sync_queue(head_, tail_).remove(&node);
  }
  lock.lock();
  return notified;
}

}  // namespace goro
