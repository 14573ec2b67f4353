// SPDX-License-Identifier: Apache-2.0
// Layer: sync. May include: chan, sync, park, sched, stack, time, platform.
// detail::semaphore_base, the core of goro::counting_semaphore: queueing acquirers and handing
// released permits straight to them. docs/sync.md, "counting_semaphore".
//
// Invariants (whenever lock_ is free):
//   - has_waiters is set when the queue is non-empty, and otherwise only while a release is
//     finishing: one that has handed permits to every waiter, emptying the queue, and has
//     released lock_ to add the rest to the count (release_slow). It changes only under lock_,
//     but for that release's last step.
//   - has_waiters implies no free permit: an acquirer queues only in a CAS that sees none, and
//     a release with waiters gives its permits to them, adding to the count only what is left
//     once the queue is empty (clearing has_waiters in the same step). So the lock-free
//     try_acquire never takes a permit ahead of a waiter.
//   - The count never exceeds the maximum: release checks before it adds.
//   - A release's last touch of the semaphore is the step on state_ that adds its permits, or,
//     if it handed them all to waiters, the release of lock_ (they cannot return before it
//     unparks them, after): whoever takes a permit may destroy the semaphore at once.
//
// Memory ordering: has_waiters changes are relaxed (the flag publishes nothing; lock_ orders the
// queue). Permits pass through state_ (release on adding, acquire on taking) or, to a parked
// waiter, through claim and unpark.
#include <stdexcept>

#include "goro/detail/thread_safety.hpp"
#include "goro/semaphore.hpp"
#include "park/sync_queue.hpp"
#include "platform/cpu.hpp"

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
  backoff wait;
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
    if (s == has_waiters && sync_queue(head_, tail_).empty()) {
      // A release is finishing: its next step adds permits and clears has_waiters, which would
      // strand us if we queued now. It is a few instructions from done: let it finish. (Not a
      // spin on has_waiters alone: others may have taken its permits and queued by then.)
      lock_.unlock();
      wait.pause();
      lock_.lock();
      s = state_.load(std::memory_order_relaxed);
      continue;
    }
    // Relaxed: the flag publishes nothing; lock_ orders the queue.
    if (state_.compare_exchange_weak(s, s | has_waiters, std::memory_order_relaxed)) break;
  }
  sync_node node(semaphore_acquire, this);
  sync_queue(head_, tail_).push_back(&node);
  park_queued(node.w, lock_, limit);
  if (node.w.winner() == granted) return true;  // a release gave us its permit
  // Timed out or cancelled: no permit was given to us, so there is none to give back. If a
  // release unlinked our node (finding it claimed), has_waiters is that release's to change.
  lock_guard guard(lock_);
  sync_queue q(head_, tail_);
  if (q.remove(&node) && q.empty()) state_.fetch_and(~has_waiters, std::memory_order_relaxed);
  return false;
}

// The permits left once every waiter has one are added to the count after lock_ is released,
// as the release's last touch: an acquirer may take one at once, lock-free, and destroy the
// semaphore (a completion signal). Meanwhile has_waiters stays set with the queue empty, which
// keeps everyone else off: try_acquire finds no permit, a lock-free release takes the slow path,
// and acquire_slow and release_slow wait for the count to change.
void semaphore_base::release_slow(std::ptrdiff_t update, std::ptrdiff_t max) {
  if (update < 0) {
    throw std::invalid_argument("goro::counting_semaphore::release: negative update");
  }
  if (update == 0) return;
  backoff wait;
  // Relaxed: a guess, which the CAS checks; under lock_ it is read again.
  std::uint64_t s = state_.load(std::memory_order_relaxed);
  for (;;) {
    if ((s & has_waiters) == 0) {
      // Nobody waits: add them as release() does. The count may move meanwhile (try_acquire,
      // lock-free releases), so check max on every try.
      if (update > max - static_cast<std::ptrdiff_t>(s >> 1)) {
        throw std::logic_error("goro::counting_semaphore::release: release beyond max()");
      }
      // Release pairs with the acquire of whoever takes these permits.
      if (state_.compare_exchange_weak(s, s + static_cast<std::uint64_t>(update) * one,
                                       std::memory_order_release, std::memory_order_relaxed)) {
        return;
      }
      continue;
    }
    sync_node* first = nullptr;
    std::ptrdiff_t left = 0;
    bool finishing = false;  // another release is adding its last permits
    {
      lock_guard guard(lock_);
      sync_queue q(head_, tail_);
      s = state_.load(std::memory_order_relaxed);
      if (s != has_waiters) continue;  // the waiters left: nobody waits now
      if (q.empty()) {
        finishing = true;
      } else {
        // The count is 0 while anyone waits.
        if (update > max) {
          throw std::logic_error("goro::counting_semaphore::release: release beyond max()");
        }
        // Hand permits to waiters first; claim and unpark order this release before their
        // return.
        const claimed_batch<sync_node> batch =
            q.pop_claimed_batch(static_cast<std::size_t>(update), granted);
        first = batch.first;
        left = update - static_cast<std::ptrdiff_t>(batch.count);
        // Relaxed: no permit is free; the waiters given one are ordered by claim and unpark.
        // With permits left, has_waiters stays set until the store below.
        if (q.empty() && left == 0) state_.store(0, std::memory_order_relaxed);
      }
    }
    if (finishing) {  // it is a few instructions from done (see acquire_slow)
      wait.pause();
      s = state_.load(std::memory_order_relaxed);
      continue;
    }
    if (left > 0) {
      // The queue is empty and has_waiters still set, so nobody else has changed state_: it
      // is still has_waiters, and left <= update <= max. Release pairs with the acquire of
      // whoever takes these permits. Our last touch of the semaphore.
      state_.store(static_cast<std::uint64_t>(left) * one, std::memory_order_release);
    }
    unpark_all(first);
    return;
  }
}

}  // namespace goro::detail
