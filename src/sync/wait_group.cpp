// SPDX-License-Identifier: Apache-2.0
// Layer: sync. May include: chan, sync, park, sched, stack, time, platform.
// wait_group: a counter and a queue of parked waiters. done() without waiters is one atomic
// add; the lock is taken only by wait() and by the add() that releases waiters. Its queue is the
// sync primitives' (docs/sync.md, "Waiting").
//
// Invariants: the waiter count (low half of state_) changes only under lock_, and equals the
// number of queued nodes except while a wait() that found the counter at zero backs out. A
// releasing add() takes every node out and the whole count with them; a waiter whose limit won
// takes its own node out, and its count, only if the node is still queued.
#include <cstdint>
#include <stdexcept>
#include <utility>

#include "goro/detail/thread_safety.hpp"
#include "goro/wait_group.hpp"
#include "park/sync_queue.hpp"

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
    throw std::logic_error("goro::wait_group::add: negative wait_group counter");
  }
  if (counter > 0 || static_cast<std::uint32_t>(s) == 0) return;
  // The counter reached zero with waiters registered: release them all. Claims are made under
  // the lock, so a waiter whose deadline or stop token won cannot have unlinked its node and
  // gone meanwhile; the pop drops such nodes. Claimed waiters stay parked until our unpark,
  // after the lock is released.
  detail::sync_node* claimed = nullptr;
  {
    detail::lock_guard lock(lock_);
    const std::uint64_t now = state_.load(std::memory_order_acquire);
    if (counter_of(now) != 0) return;  // re-armed by a concurrent add(); its waiters wait on
    state_.fetch_sub(static_cast<std::uint32_t>(now), std::memory_order_acq_rel);
    claimed = detail::sync_queue(head_, tail_).pop_all_claimed(detail::granted).first;
  }
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
  if (counter_of(state_.load(std::memory_order_acquire)) == 0) return true;
  detail::sync_node node(detail::wait_group_wait, this);
  lock_.lock();
  const std::uint64_t s = state_.fetch_add(1, std::memory_order_acq_rel);
  if (counter_of(s) == 0) {
    state_.fetch_sub(1, std::memory_order_acq_rel);
    lock_.unlock();
    return true;
  }
  detail::sync_queue(head_, tail_).push_back(&node);
  detail::park_queued(node.w, lock_, limit);
  if (node.w.winner() == detail::granted) return true;
  // The deadline or stop token won: unregister, unless the releasing add() already took the
  // node (and our count) away.
  detail::lock_guard lock(lock_);
  if (detail::sync_queue(head_, tail_).remove(&node)) {
    state_.fetch_sub(1, std::memory_order_acq_rel);
  }
  return false;
}

std::int64_t wait_group::count() const noexcept {
  return counter_of(state_.load(std::memory_order_acquire));
}

}  // namespace goro
