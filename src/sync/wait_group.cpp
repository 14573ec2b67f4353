// SPDX-License-Identifier: Apache-2.0
// Layer: sync. May include: chan, sync, park, sched, stack, time, platform.
// wait_group: a counter and a queue of parked waiters. done() without waiters is one atomic
// add; the lock is taken only by wait() and by the add() that releases waiters. Its queue is the
// sync primitives' (docs/sync.md, "Waiting").
//
// Invariants: the waiter count (low half of state_) grows only under lock_, and equals the
// number of queued nodes, plus the nodes a releasing add() has taken out and not yet uncounted,
// except while a wait() that found the counter at zero backs out. A releasing add() takes every
// node out under lock_, then uncounts what it saw counted, after unlocking: that subtraction is
// its last touch of the wait_group. So a counter at zero with waiters still counted means a
// releasing add() is at work on the wait_group, and a wait() that finds that waits for it to
// finish before it returns: once any wait() has returned, the wait_group may be destroyed (as
// std::latch, and absl's BlockingCounter, allow; Go's collector makes the question moot). A
// waiter whose limit won takes its own node out if it is still queued, and uncounts itself only
// if the counter is not zero: at zero, the releasing add() on its way counted it, and uncounts it.
#include <cstdint>
#include <stdexcept>
#include <utility>

#include "goro/detail/thread_safety.hpp"
#include "goro/wait_group.hpp"
#include "park/sync_queue.hpp"
#include "platform/cpu.hpp"

namespace goro {

namespace {
constexpr std::int32_t counter_of(std::uint64_t state) {
  return static_cast<std::int32_t>(state >> 32);
}
}  // namespace

void wait_group::add(std::int64_t delta) {
  // The counter is 32 bits wide (Go's is too); a delta outside that range is misuse.
  if (delta < -static_cast<std::int64_t>(INT32_MAX) || delta > INT32_MAX) {
    throw std::logic_error(delta < 0 ? "goro::wait_group::add: negative wait_group counter"
                                     : "goro::wait_group::add: wait_group counter overflow");
  }
  const std::uint64_t d = static_cast<std::uint64_t>(delta) << 32;
  const std::uint64_t s = state_.fetch_add(d, std::memory_order_acq_rel) + d;
  const std::int64_t counter = counter_of(s);
  if (counter < 0 || counter - delta != counter_of(s - d)) {
    state_.fetch_sub(d, std::memory_order_acq_rel);
    // Below zero, or (a positive delta) past INT32_MAX: the 32-bit counter wrapped.
    throw std::logic_error(delta < 0 ? "goro::wait_group::add: negative wait_group counter"
                                     : "goro::wait_group::add: wait_group counter overflow");
  }
  if (counter > 0 || static_cast<std::uint32_t>(s) == 0) return;
  // The counter reached zero with waiters registered: release them all. Claims are made under
  // the lock, so a waiter whose deadline or stop token won cannot have unlinked its node and
  // gone meanwhile; the pop drops such nodes. Claimed waiters stay parked until our unpark,
  // after the lock is released.
  detail::sync_node* claimed = nullptr;
  std::uint32_t counted = 0;
  {
    detail::lock_guard lock(lock_);
    const std::uint64_t now = state_.load(std::memory_order_acquire);
    if (counter_of(now) != 0) return;  // re-armed by a concurrent add(); its waiters wait on
    counted = static_cast<std::uint32_t>(now);
    claimed = detail::sync_queue(head_, tail_).pop_all_claimed(detail::granted).first;
  }
  // Our last touch of the wait_group, after the unlock: a wait() that finds the counter at zero
  // returns only once no waiter is counted (wait_limited), and the waiters we claimed only once
  // unparked, below, so none of them can destroy it while we still use it. Release pairs with
  // that wait()'s acquire.
  state_.fetch_sub(counted, std::memory_order_acq_rel);
  detail::unpark_all(claimed);
}

void wait_group::wait() { wait_limited({}); }

bool wait_group::wait(std::stop_token stop) {
  return wait_limited({.deadline = detail::clock::time_point::max(), .stop = std::move(stop)});
}

bool wait_group::wait_until(std::chrono::steady_clock::time_point deadline) {
  return wait_limited({.deadline = deadline, .stop = {}});
}

bool wait_group::wait_limited(const detail::wait_limit& limit) {
  for (;;) {
    // At zero, wait out a releasing add() still at work (waiters still counted): it is a few
    // instructions from done, and never parks. Then nothing touches the wait_group for it any
    // more, and our caller may destroy it.
    std::uint64_t s = state_.load(std::memory_order_acquire);
    for (detail::backoff spin; counter_of(s) == 0; spin.pause()) {
      if (static_cast<std::uint32_t>(s) == 0) return true;
      s = state_.load(std::memory_order_acquire);
    }
    detail::sync_node node(detail::wait_group_wait, this);
    lock_.lock();
    s = state_.fetch_add(1, std::memory_order_acq_rel);
    if (counter_of(s) == 0) {  // reached zero meanwhile: back out, and look again
      state_.fetch_sub(1, std::memory_order_acq_rel);
      lock_.unlock();
      continue;
    }
    detail::sync_queue(head_, tail_).push_back(&node);
    detail::park_queued(node.w, lock_, limit);
    if (node.w.winner() == detail::granted) return true;
    // The deadline or stop token won: unlink the node, unless the releasing add() already took
    // it (and will uncount it). Uncount ourselves only while the counter is not zero: at zero, a
    // releasing add() has counted us and will uncount us with the rest (the CAS keeps that
    // decision and the subtraction one step).
    detail::lock_guard lock(lock_);
    if (detail::sync_queue(head_, tail_).remove(&node)) {
      // Relaxed: only the CAS's expected value; a stale one fails it, which reloads.
      s = state_.load(std::memory_order_relaxed);
      while (counter_of(s) != 0 &&
             !state_.compare_exchange_weak(s, s - 1, std::memory_order_acq_rel,
                                           std::memory_order_relaxed)) {
      }
    }
    return false;
  }
}

std::int64_t wait_group::count() const noexcept {
  return counter_of(state_.load(std::memory_order_acquire));
}

}  // namespace goro
