// SPDX-License-Identifier: Apache-2.0
// Layer: sync. May include: chan, sync, park, sched, stack, time, platform.
// detail::semaphore_base, the core of goro::counting_semaphore: queueing acquirers and handing
// released permits straight to them. docs/sync.md, "counting_semaphore".
//
// Invariants (whenever lock_ is free):
//   - has_waiters is set exactly when the queue is non-empty; it changes only under lock_.
//   - has_waiters implies no free permit: an acquirer queues only in a CAS that sees none, and
//     a release with waiters gives its permits to them, adding to the count only what is left
//     once the queue is empty (clearing has_waiters in the same step). So the lock-free
//     try_acquire never takes a permit ahead of a waiter.
//   - The count never exceeds the maximum: release checks before it adds.
//
// Memory ordering: has_waiters changes are relaxed (the flag publishes nothing; lock_ orders the
// queue). Permits pass through state_ (release on adding, acquire on taking) or, to a parked
// waiter, through claim and unpark.
#include <stdexcept>

#include "goro/detail/thread_safety.hpp"
#include "goro/semaphore.hpp"
#include "park/sync_queue.hpp"

namespace goro::detail {

semaphore_base::semaphore_base(std::ptrdiff_t desired, std::ptrdiff_t max) {
  if (desired < 0 || desired > max) {
    throw std::invalid_argument(
        "goro::counting_semaphore: initial count must be between 0 and max()");
  }
  // Relaxed: the semaphore is not shared yet; whatever shares it publishes it.
  state_.store(static_cast<std::uint64_t>(desired) * one, std::memory_order_relaxed);
}

bool semaphore_base::acquire_slow(const wait_limit& limit) {
  lock_.lock();
  std::uint64_t s = state_.load(std::memory_order_relaxed);
  for (;;) {
    if (s >= one) {
      // Acquire pairs with the release that added the permit.
      if (state_.compare_exchange_weak(s, s - one, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        lock_.unlock();
        return true;
      }
      continue;
    }
    if (limit_reached(limit)) {
      lock_.unlock();
      return false;
    }
    // Relaxed: the flag publishes nothing; lock_ orders the queue.
    if (state_.compare_exchange_weak(s, s | has_waiters, std::memory_order_relaxed)) break;
  }
  sync_node node(semaphore_acquire, this);
  sync_queue(head_, tail_).push_back(&node);
  park_queued(node.w, lock_, limit);
  if (node.w.winner() == granted) return true;  // a release gave us its permit
  // Timed out or cancelled: no permit was given to us, so there is none to give back.
  lock_guard guard(lock_);
  sync_queue q(head_, tail_);
  q.remove(&node);
  if (q.empty()) state_.fetch_and(~has_waiters, std::memory_order_relaxed);
  return false;
}

void semaphore_base::release_slow(std::ptrdiff_t update, std::ptrdiff_t max) {
  if (update < 0) {
    throw std::invalid_argument("goro::counting_semaphore::release: negative update");
  }
  if (update == 0) return;
  sync_node* first = nullptr;
  {
    lock_guard guard(lock_);
    std::uint64_t s = state_.load(std::memory_order_relaxed);
    if (update > max - static_cast<std::ptrdiff_t>(s >> 1)) {
      throw std::logic_error("goro::counting_semaphore::release: release beyond max()");
    }
    // Hand permits to waiters first; claim and unpark order this release before their return.
    sync_queue q(head_, tail_);
    const claimed_batch<sync_node> batch =
        q.pop_claimed_batch(static_cast<std::size_t>(update), granted);
    first = batch.first;
    const std::ptrdiff_t left = update - static_cast<std::ptrdiff_t>(batch.count);
    const std::uint64_t clear = q.empty() ? has_waiters : 0;
    // Add what is left. The count may move meanwhile: try_acquire takes permits, and once
    // has_waiters is clear a lock-free release may add some, so re-check max on every try. If
    // we handed permits out, has_waiters was set and the count is 0 until this CAS, so the
    // check cannot fail after a hand-off. Release pairs with the acquire of whoever takes the
    // permits left over.
    for (;;) {
      if (left > max - static_cast<std::ptrdiff_t>(s >> 1)) {
        throw std::logic_error("goro::counting_semaphore::release: release beyond max()");
      }
      if (state_.compare_exchange_weak(s, (s & ~clear) + static_cast<std::uint64_t>(left) * one,
                                       std::memory_order_release, std::memory_order_relaxed)) {
        break;
      }
    }
  }
  unpark_all(first);
}

}  // namespace goro::detail
